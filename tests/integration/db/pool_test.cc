// The bounded connection pool against a real private PostgreSQL: bounds, waiting, recovery after
// the server restarts or crashes, readiness probe.
#include <utility>  // Before Asio (DESIGN.md §2).

#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "config/paygate_config.pb.h"
#include "ledger/db/pg_pool.h"
#include "tests/integration/db/db_test_util.h"
#include "tests/testing/pg_cluster.h"
#include "tests/testing/run_async.h"

namespace paygate::db {
namespace {

namespace asio = boost::asio;
using namespace test;
using testing::RunAsync;

asio::awaitable<void> Sleep(std::chrono::milliseconds duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  boost::system::error_code ignored;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

TEST(PgPoolTest, OptionsFromConfigUseValuesAndDefaults) {
  // Proves the pool options follow the database config section, with schema defaults for zeros.
  config::v1::Database database;
  database.set_url("postgresql://app@db.internal/paygate");
  database.set_pool_size_max(3);
  database.set_statement_timeout_ms(1500);
  PoolOptions options = PoolOptionsFromConfig(database, keys::Secret(std::string_view("pw")));
  EXPECT_EQ(options.connect.url, "postgresql://app@db.internal/paygate");
  EXPECT_EQ(options.connect.password.reveal(), "pw");
  EXPECT_EQ(options.connect.application_name, "paygated");
  EXPECT_EQ(options.pool_size_max, 3u);
  EXPECT_EQ(options.connect.statement_timeout, 1500ms);
  EXPECT_EQ(options.connect_timeout, 5000ms);
  EXPECT_EQ(options.acquire_timeout, 2000ms);
}

TEST(PgPoolTest, BoundIsRespectedAndThirdAcquireTimesOut) {
  // Proves at most pool_size_max connections exist and a caller waiting longer than acquire_timeout
  // gets pool_exhausted (on time), after which a released connection is reused.
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase(), 2, 200ms));
  RunAsync(io, [&]() -> asio::awaitable<void> {
    auto a = co_await pool.Acquire(In(5s));
    auto b = co_await pool.Acquire(In(5s));
    CO_ASSERT_OK(a);
    CO_ASSERT_OK(b);
    auto start = Clock::now();
    auto c = co_await pool.Acquire(In(5s));
    auto waited = Clock::now() - start;
    CO_ASSERT_TRUE(!c);
    EXPECT_EQ(c.error(), Errc::pool_exhausted);
    EXPECT_GE(waited, 190ms);
    EXPECT_LT(waited, 1s);
    PoolStats stats = pool.Stats();
    EXPECT_EQ(stats.size, 2u);
    EXPECT_EQ(stats.in_use, 2u);
    EXPECT_EQ(stats.idle, 0u);
    EXPECT_EQ(stats.waiting, 0u);
    EXPECT_EQ(stats.acquire_timeouts_total, 1u);

    a.value().Release();
    auto d = co_await pool.Acquire(In(5s));
    CO_ASSERT_OK(d);
    EXPECT_EQ(pool.Stats().connections_opened_total, 2u);
  }());
}

TEST(PgPoolTest, WaiterReceivesTheNextReturnedConnection) {
  // Proves a caller waiting on a full pool is handed the connection another caller returns, without
  // waiting for its timeout and without a new connection being opened.
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase(), 2, 5000ms));
  std::optional<PgLease> held;
  std::uint32_t waiting_seen = 0;
  RunAsync(io, [&]() -> asio::awaitable<void> {
    auto a = co_await pool.Acquire(In(5s));
    auto b = co_await pool.Acquire(In(5s));
    CO_ASSERT_OK(a);
    CO_ASSERT_OK(b);
    held.emplace(std::move(b).value());
    asio::co_spawn(
        co_await asio::this_coro::executor,
        [&]() -> asio::awaitable<void> {
          co_await Sleep(100ms);
          waiting_seen = pool.Stats().waiting;
          held.reset();  // Returns b.
        },
        [](std::exception_ptr) {});
    auto start = Clock::now();
    auto c = co_await pool.Acquire(In(5s));
    CO_ASSERT_OK(c);
    EXPECT_LT(Clock::now() - start, 1s);
    EXPECT_EQ(waiting_seen, 1u);
    auto ok = co_await c.value()->Execute("SELECT 1", {}, In(5s));
    CO_ASSERT_OK(ok);
    EXPECT_EQ(pool.Stats().connections_opened_total, 2u);
  }());
}

TEST(PgPoolTest, SafeFromSeveralThreads) {
  // Proves the pool keeps its bound and its books when four threads share it: 200 leases, never
  // more than pool_size_max connections, every query answered.
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase(), 3, 10000ms));
  std::atomic<int> ok{0};
  std::atomic<std::uint32_t> size_max{0};
  for (int i = 0; i < 50; ++i) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          for (int j = 0; j < 4; ++j) {
            auto lease = co_await pool.Acquire(In(20s));
            CO_ASSERT_OK(lease);
            std::uint32_t size = pool.Stats().size;
            std::uint32_t seen = size_max.load();
            while (size > seen && !size_max.compare_exchange_weak(seen, size)) {
            }
            auto result = co_await lease.value()->Execute("SELECT 1", {}, In(20s));
            CO_ASSERT_OK(result);
            ++ok;
          }
        },
        [](std::exception_ptr) {});
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back([&] { io.run(); });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), 200);
  EXPECT_LE(size_max.load(), 3u);
  PoolStats stats = pool.Stats();
  EXPECT_EQ(stats.in_use, 0u);
  EXPECT_EQ(stats.waiting, 0u);
  EXPECT_EQ(stats.idle, stats.size);
  EXPECT_LE(stats.connections_opened_total, 3u);
}

TEST(PgPoolTest, RecoversAfterServerRestartAndCrashWithoutNewPool) {
  // Proves the same pool works again after PostgreSQL is stopped and started, and after it is
  // killed with SIGKILL and restarted: broken connections are discarded and replaced lazily.
  testing::PgCluster& cluster = testing::SharedPgCluster();
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase(), 2, 500ms));
  std::optional<PgLease> held;
  RunAsync(io, [&]() -> asio::awaitable<void> {
    auto ping = co_await pool.Ping(In(5s));
    CO_ASSERT_OK(ping);
    auto a = co_await pool.Acquire(In(5s));
    auto b = co_await pool.Acquire(In(5s));
    CO_ASSERT_OK(a);
    CO_ASSERT_OK(b);
    held.emplace(std::move(a).value());  // Leased across the restart; b goes back idle.
  }());
  EXPECT_EQ(pool.Stats().idle, 1u);

  ASSERT_TRUE(cluster.Stop());
  RunAsync(io, [&]() -> asio::awaitable<void> {
    auto in_use = co_await (*held)->Execute("SELECT 1", {}, In(5s));
    CO_ASSERT_TRUE(!in_use);
    EXPECT_EQ(in_use.error(), Errc::connection_lost);
    held.reset();
    auto down = co_await pool.Ping(In(5s));
    CO_ASSERT_TRUE(!down);
    EXPECT_EQ(down.error(), Errc::connect_failed);
  }());
  PoolStats stats = pool.Stats();
  EXPECT_GE(stats.connect_failures_total, 1u);
  EXPECT_EQ(stats.connections_discarded_total, 2u);  // The leased one and the idle one.
  EXPECT_EQ(stats.size, 0u);

  ASSERT_TRUE(cluster.Restart());
  RunAsync(io, [&]() -> asio::awaitable<void> {
    auto up = co_await pool.Ping(In(5s));
    CO_ASSERT_OK(up);
  }());

  cluster.KillHard();
  ASSERT_TRUE(cluster.Restart());  // Crash recovery on the same port and data directory.
  RunAsync(io, [&]() -> asio::awaitable<void> {
    auto up = co_await pool.Ping(In(5s));
    CO_ASSERT_OK(up);
  }());
  EXPECT_GE(pool.Stats().connections_opened_total, 3u);
}

TEST(PgPoolTest, CloseWakesWaitersAndRefusesNewCallers) {
  // Proves Close() answers waiting and later Acquire() calls with pool_closed (ordered shutdown).
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase(), 1, 5000ms));
  RunAsync(io, [&]() -> asio::awaitable<void> {
    auto a = co_await pool.Acquire(In(5s));
    CO_ASSERT_OK(a);
    asio::co_spawn(
        co_await asio::this_coro::executor,
        [&]() -> asio::awaitable<void> {
          co_await Sleep(50ms);
          pool.Close();
        },
        [](std::exception_ptr) {});
    auto start = Clock::now();
    auto waiting = co_await pool.Acquire(In(5s));
    CO_ASSERT_TRUE(!waiting);
    EXPECT_EQ(waiting.error(), Errc::pool_closed);
    EXPECT_LT(Clock::now() - start, 1s);
    auto later = co_await pool.Acquire(In(5s));
    CO_ASSERT_TRUE(!later);
    EXPECT_EQ(later.error(), Errc::pool_closed);
  }());
  EXPECT_EQ(pool.Stats().size, 0u);  // The returned lease was closed, not pooled.
}

}  // namespace
}  // namespace paygate::db
