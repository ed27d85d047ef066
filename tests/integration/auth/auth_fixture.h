#pragma once

// Shared pieces of the authentication and idempotency tests: a fresh migrated database per test
// (on the binary's private cluster) with a pool whose I/O runs on a thread of its own, the dev PKI,
// API key secret files, and an in-process API listener with the HMAC authenticator.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "gateway/auth/hmac_authenticator.h"
#include "gateway/auth/nonce_store.h"
#include "gateway/auth/signing.h"
#include "ledger/db/pg_pool.h"
#include "tests/integration/edge/edge_fixture.h"

namespace paygate::testing {

namespace asio = edge::asio;
using edge::http::status;
using edge::http::verb;

// API keys of the test configuration.
struct TestKey {
  std::string key_id;
  std::string secret;
};
// sales-platform (certificate and key), role sales.
inline const TestKey kSalesKey{"sales-k1", std::string(40, 's')};
// batch: API key only, role claims.
inline const TestKey kBatchKey{"batch-k1", "0123456789abcdef0123456789abcdef-batch"};
// limited: API key only, role sales; the key allows 1 request/s with a burst of 2.
inline const TestKey kLimitedKey{"limited-k1", std::string(32, 'L')};

class AuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;
  void TearDown() override;

  // The configuration: TestConfig's sales-platform and finance, plus the keys above, and risk-team
  // (certificate only) limited to 1 request/s with a burst of 2 as a principal.
  config::v1::Config MakeConfig() const;
  // A listener on the API router `router`, with its own authenticator over `pool` (default: the
  // test's pool) sharing the test's database.
  std::unique_ptr<RunningServer> StartServer(std::shared_ptr<const edge::Router> router,
                                             db::PgPool* pool = nullptr);
  // A pool on the test's database, its I/O on the test's database thread.
  std::unique_ptr<db::PgPool> MakePool(std::uint32_t size = 8);

  // Runs `task` on the database thread and waits for its result.
  template <class T>
  T OnDb(asio::awaitable<T> task) {
    std::promise<T> promise;
    asio::co_spawn(
        db_ioc_, [&]() -> asio::awaitable<void> { promise.set_value(co_await std::move(task)); },
        asio::detached);
    return promise.get_future().get();
  }

  // Runs `sql` on the test's database; returns the first column of the first row as an integer
  // (0 when the statement returns no rows). Fails the test on errors.
  std::int64_t Sql(std::string sql);

  ClientOptions As(const std::string& principal) const;
  ClientOptions Anonymous() const;

  static const std::filesystem::path& pki() { return *pki_; }
  static const std::filesystem::path& secrets() { return *secrets_; }

  config::v1::Config config_;
  std::string db_url_;
  asio::io_context db_ioc_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> db_work_;
  std::thread db_thread_;
  std::unique_ptr<db::PgPool> pool_;

 private:
  static std::filesystem::path* pki_;
  static std::filesystem::path* secrets_;
};

// Unix time now, seconds.
std::int64_t UnixNow();

// A request with `body`, signed with `key` unless `key` is null.
edge::Request MakeRequest(verb method, std::string_view target, std::string body = {},
                          const TestKey* key = nullptr);
// Signs `request` as it stands (method, target, body) with an explicit timestamp and nonce.
void Sign(edge::Request& request, const TestKey& key, std::int64_t timestamp,
          std::string_view nonce);

// One request on a fresh connection; throws on transport errors.
edge::Response Exchange(std::uint16_t port, const ClientOptions& options, edge::Request request);

// The "code" of a JSON error body, or "" when there is none.
std::string ErrorCode(const edge::Response& response);

}  // namespace paygate::testing
