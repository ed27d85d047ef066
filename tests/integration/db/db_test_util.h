#pragma once

// Helpers shared by the database integration tests.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <chrono>
#include <string>
#include <system_error>

#include <gtest/gtest.h>

#include "ledger/db/errc.h"
#include "ledger/db/pg_pool.h"
#include "tests/testing/pg_cluster.h"

namespace paygate::db::test {

using namespace std::chrono_literals;

inline Deadline In(Clock::duration d) { return Clock::now() + d; }

inline PoolOptions MakePoolOptions(std::string url, std::uint32_t size = 4,
                                   std::chrono::milliseconds acquire_timeout = 2000ms) {
  PoolOptions options;
  options.connect.url = std::move(url);
  options.connect.statement_timeout = 30000ms;
  options.pool_size_max = size;
  options.connect_timeout = 5000ms;
  options.acquire_timeout = acquire_timeout;
  return options;
}

// A database of its own for each test, on the binary's shared cluster, so tests never see each
// other's tables or migrations.
inline std::string FreshDatabase() {
  static int counter = 0;
  std::string url = testing::SharedPgCluster().CreateDatabase("t" + std::to_string(++counter));
  EXPECT_FALSE(url.empty());
  return url;
}

inline std::string ErrorText(const std::error_code& ec) { return ec.message(); }
inline std::string ErrorText(const DetailedError& e) { return e.message; }

// ASSERT_* returns from the function, which a coroutine cannot do; these co_return instead.
#define CO_ASSERT_TRUE(cond)                       \
  do {                                             \
    if (!(cond)) {                                 \
      ADD_FAILURE() << "Assertion failed: " #cond; \
      co_return;                                   \
    }                                              \
  } while (0)

// Asserts that a Result holds a value; prints the error otherwise.
#define CO_ASSERT_OK(result)                                                                    \
  do {                                                                                          \
    if (!(result)) {                                                                            \
      ADD_FAILURE() << #result " failed: " << ::paygate::db::test::ErrorText((result).error()); \
      co_return;                                                                                \
    }                                                                                           \
  } while (0)

}  // namespace paygate::db::test
