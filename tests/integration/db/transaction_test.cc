// RunInTransaction against a real private PostgreSQL: commits, retries of serialization failures
// and deadlocks, bounded retries, rollbacks.
#include <utility>  // Before Asio (DESIGN.md §2).

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "ledger/db/transaction.h"
#include "tests/integration/db/db_test_util.h"
#include "tests/testing/run_async.h"

namespace paygate::db {
namespace {

namespace asio = boost::asio;
using namespace test;
using testing::RunAsync;

// Deterministic randomness: a counter, so backoffs are small and repeatable.
std::function<std::uint64_t()> CountingRandom(int* calls) {
  return [calls] { return static_cast<std::uint64_t>((*calls)++); };
}

// Lets two transactions meet at a point before either goes on (first attempt only), so they overlap
// exactly where a conflict is wanted. Single-threaded io_context: plain ints suffice.
asio::awaitable<void> Rendezvous(int* arrived, int expected) {
  ++*arrived;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (*arrived < expected) {
    timer.expires_after(std::chrono::milliseconds(2));
    boost::system::error_code ignored;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
}

void CreateSchema(const std::string& url, std::string_view sql) {
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(url, 1));
  RunAsync(io, [&]() -> asio::awaitable<void> {
    auto lease = co_await pool.Acquire(In(5s));
    CO_ASSERT_OK(lease);
    auto done = co_await lease.value()->ExecuteSimple(sql, In(5s));
    CO_ASSERT_OK(done);
  }());
}

TEST(RetryBackoffTest, FullJitterBoundDoublesAndIsCapped) {
  // Proves each retry waits random() mod (base * 2^(n-1) + 1) ms, so the bound doubles per failure
  // and a huge failure count cannot overflow it.
  RetryPolicy policy{.attempts_max = 5, .backoff_base = 10ms, .random = [] { return 1000u; }};
  EXPECT_EQ(RetryBackoff(policy, 1), 1000ms % 11);
  EXPECT_EQ(RetryBackoff(policy, 2), 1000ms % 21);
  EXPECT_EQ(RetryBackoff(policy, 3), 1000ms % 41);
  policy.random = [] { return std::numeric_limits<std::uint64_t>::max(); };
  EXPECT_LE(RetryBackoff(policy, 1), 10ms);
  EXPECT_LE(RetryBackoff(policy, 1000), std::chrono::milliseconds(10ll << 20));
  policy.random = [] { return 0u; };
  EXPECT_EQ(RetryBackoff(policy, 7), 0ms);
}

TEST(RunInTransactionTest, CommitsAndReturnsTheValue) {
  // Proves the body runs inside BEGIN/COMMIT at the requested isolation level and its value comes
  // back.
  const std::string url = FreshDatabase();
  CreateSchema(url, "CREATE TABLE t (v int8)");
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(url, 2));
  TransactionReport report;
  auto result = RunAsync(
      io, RunInTransaction(
              pool, In(5s),
              {.isolation = IsolationLevel::kRepeatableRead, .retry = {}, .report = &report},
              [](PgConnection& conn) -> asio::awaitable<Result<std::string>> {
                auto inserted = co_await conn.Execute("INSERT INTO t VALUES (42)", {}, In(5s));
                if (!inserted) co_return inserted.error();
                auto level = co_await conn.Execute("SHOW transaction_isolation", {}, In(5s));
                if (!level) co_return level.error();
                co_return std::string(level.value().GetText(0, 0).value());
              }));
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(result.value(), "repeatable read");
  EXPECT_EQ(report.attempts, 1u);
  auto count = RunAsync(io, [&]() -> asio::awaitable<Result<PgResult>> {
    auto lease = co_await pool.Acquire(In(5s));
    if (!lease) co_return lease.error();
    co_return co_await lease.value()->Execute("SELECT count(*) FROM t", {}, In(5s));
  }());
  ASSERT_TRUE(count);
  EXPECT_EQ(count.value().GetInt64(0, 0).value(), 1);
}

TEST(RunInTransactionTest, BeginWithFirstStatementCommitsAndRollsBack) {
  // Proves that with begin_with_first_statement the body still runs inside BEGIN (at the requested
  // isolation level) and is committed; that a failing body rolls back, a body that runs nothing
  // commits, and neither leaves a BEGIN queued on the pooled connection; and that with
  // body_may_commit a body that sent COMMIT with its last statement is not committed twice.
  const std::string url = FreshDatabase();
  CreateSchema(url, "CREATE TABLE t (v int8)");
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(url, 1));
  const TransactionOptions options{.isolation = IsolationLevel::kRepeatableRead,
                                   .retry = {},
                                   .report = nullptr,
                                   .begin_with_first_statement = true,
                                   .body_may_commit = true};
  auto level = RunAsync(
      io, RunInTransaction(pool, In(5s), options,
                           [](PgConnection& conn) -> asio::awaitable<Result<std::string>> {
                             auto inserted =
                                 co_await conn.Execute("INSERT INTO t VALUES (1)", {}, In(5s));
                             if (!inserted) co_return inserted.error();
                             if (conn.transaction_status() != TransactionStatus::kInTransaction) {
                               co_return make_error_code(Errc::protocol_error);
                             }
                             auto shown =
                                 co_await conn.Execute("SHOW transaction_isolation", {}, In(5s));
                             if (!shown) co_return shown.error();
                             co_return std::string(shown.value().GetText(0, 0).value());
                           }));
  ASSERT_TRUE(level) << level.error().message();
  EXPECT_EQ(level.value(), "repeatable read");

  auto failed = RunAsync(
      io, RunInTransaction(pool, In(5s), options,
                           [](PgConnection& conn) -> asio::awaitable<Result<int>> {
                             auto inserted =
                                 co_await conn.Execute("INSERT INTO t VALUES (2)", {}, In(5s));
                             if (!inserted) co_return inserted.error();
                             co_return make_error_code(Errc::bad_value);
                           }));
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error(), Errc::bad_value);
  auto early = RunAsync(io, RunInTransaction(pool, In(5s), options,
                                             [](PgConnection&) -> asio::awaitable<Result<int>> {
                                               co_return make_error_code(Errc::bad_value);
                                             }));
  ASSERT_FALSE(early);
  auto empty = RunAsync(io, RunInTransaction(pool, In(5s), options,
                                             [](PgConnection&) -> asio::awaitable<Result<int>> {
                                               co_return 5;
                                             }));
  ASSERT_TRUE(empty) << empty.error().message();
  EXPECT_EQ(empty.value(), 5);

  auto self_committed = RunAsync(
      io, RunInTransaction(pool, In(5s), options,
                           [](PgConnection& conn) -> asio::awaitable<Result<int>> {
                             std::vector<PipelineStep> steps;
                             steps.push_back({Statement{"", "INSERT INTO t VALUES (3)"}, Params()});
                             steps.push_back({Statement{"", "COMMIT"}, Params()});
                             auto done = co_await conn.ExecutePipeline(std::move(steps), In(5s));
                             if (!done) co_return done.error();
                             co_return static_cast<int>(conn.transaction_status());
                           }));
  ASSERT_TRUE(self_committed) << self_committed.error().message();
  EXPECT_EQ(self_committed.value(), static_cast<int>(TransactionStatus::kIdle));

  // The one pooled connection: outside any transaction, holding only the committed rows.
  auto after = RunAsync(io, [&]() -> asio::awaitable<Result<PgResult>> {
    auto lease = co_await pool.Acquire(In(5s));
    if (!lease) co_return lease.error();
    auto rows = co_await lease.value()->Execute(
        "SELECT string_agg(v::text, ',' ORDER BY v) FROM t", {}, In(5s));
    if (lease.value()->transaction_status() != TransactionStatus::kIdle) {
      co_return make_error_code(Errc::protocol_error);
    }
    co_return rows;
  }());
  ASSERT_TRUE(after) << after.error().message();
  EXPECT_EQ(after.value().GetText(0, 0).value(), "1,3");
  EXPECT_EQ(pool.Stats().connections_opened_total, 1u);
}

TEST(RunInTransactionTest, SerializationFailureIsRetriedAndBothCommit) {
  // Proves two overlapping SERIALIZABLE transactions with a write skew (each reads what the other
  // writes) both end up committed: PostgreSQL aborts one with 40001 and RunInTransaction reruns it.
  const std::string url = FreshDatabase();
  CreateSchema(url,
               "CREATE TABLE oncall (name text PRIMARY KEY, on_duty bool NOT NULL);"
               "INSERT INTO oncall VALUES ('alice', true), ('bob', true)");
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(url, 2));
  int arrived = 0;
  int random_calls = 0;
  auto go_off_duty = [&](std::string name, TransactionReport* report,
                         std::optional<Result<std::int64_t>>* out) -> asio::awaitable<void> {
    int attempt = 0;
    *out = co_await RunInTransaction(
        pool, In(10s),
        {.isolation = IsolationLevel::kSerializable,
         .retry = {.attempts_max = 5, .backoff_base = 5ms, .random = CountingRandom(&random_calls)},
         .report = report},
        [&](PgConnection& conn) -> asio::awaitable<Result<std::int64_t>> {
          auto on_duty =
              co_await conn.Execute("SELECT count(*) FROM oncall WHERE on_duty", {}, In(10s));
          if (!on_duty) co_return on_duty.error();
          if (++attempt == 1) co_await Rendezvous(&arrived, 2);
          auto updated = co_await conn.Execute("UPDATE oncall SET on_duty = false WHERE name = $1",
                                               Params().Add(name), In(10s));
          if (!updated) co_return updated.error();
          co_return on_duty.value().GetInt64(0, 0).value();
        });
  };
  TransactionReport alice_report;
  TransactionReport bob_report;
  std::optional<Result<std::int64_t>> alice;
  std::optional<Result<std::int64_t>> bob;
  asio::co_spawn(io, go_off_duty("alice", &alice_report, &alice), [](std::exception_ptr) {});
  asio::co_spawn(io, go_off_duty("bob", &bob_report, &bob), [](std::exception_ptr) {});
  io.run();

  ASSERT_TRUE(alice && bob);
  ASSERT_TRUE(*alice) << alice->error().message();
  ASSERT_TRUE(*bob) << bob->error().message();
  // At least one retry; more are legitimate when a rerun overlaps the other transaction again.
  const std::uint32_t attempts = alice_report.attempts + bob_report.attempts;
  EXPECT_GE(attempts, 3u);
  EXPECT_EQ(random_calls, static_cast<int>(attempts) - 2);  // One backoff per retry.
  const TransactionReport& retried = alice_report.attempts > 1 ? alice_report : bob_report;
  EXPECT_GT(retried.attempts, 1u);
  EXPECT_EQ(retried.last_error.sqlstate, "40001");
  // Serializable outcome: as if one ran after the other, the first saw two on duty, the second one.
  EXPECT_EQ(alice->value() + bob->value(), 3);
  EXPECT_EQ(std::min(alice->value(), bob->value()), 1);
}

TEST(RunInTransactionTest, DeadlockIsRetriedAndBothCommit) {
  // Proves a deadlock (40P01) between two transactions locking two rows in opposite order is
  // resolved by PostgreSQL aborting one, which RunInTransaction reruns: both increments land.
  const std::string url = FreshDatabase();
  CreateSchema(
      url,
      "CREATE TABLE t (id int8 PRIMARY KEY, v int8 NOT NULL); INSERT INTO t VALUES (1, 0), (2, 0)");
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(url, 2));
  int arrived = 0;
  int random_calls = 0;
  auto bump = [&](std::int64_t first, std::int64_t second, TransactionReport* report,
                  std::optional<Result<bool>>* out) -> asio::awaitable<void> {
    int attempt = 0;
    *out = co_await RunInTransaction(
        pool, In(10s),
        {.isolation = IsolationLevel::kReadCommitted,
         .retry = {.attempts_max = 5, .backoff_base = 5ms, .random = CountingRandom(&random_calls)},
         .report = report},
        [&](PgConnection& conn) -> asio::awaitable<Result<bool>> {
          // Detect the deadlock quickly instead of after the default second.
          auto fast = co_await conn.ExecuteSimple("SET LOCAL deadlock_timeout = '100ms'", In(10s));
          if (!fast) co_return fast.error();
          constexpr std::string_view kBump = "UPDATE t SET v = v + 1 WHERE id = $1";
          auto a = co_await conn.Execute(kBump, Params().Add(first), In(10s));
          if (!a) co_return a.error();
          if (++attempt == 1) co_await Rendezvous(&arrived, 2);
          auto b = co_await conn.Execute(kBump, Params().Add(second), In(10s));
          if (!b) co_return b.error();
          co_return true;
        });
  };
  TransactionReport one_report;
  TransactionReport two_report;
  std::optional<Result<bool>> one;
  std::optional<Result<bool>> two;
  asio::co_spawn(io, bump(1, 2, &one_report, &one), [](std::exception_ptr) {});
  asio::co_spawn(io, bump(2, 1, &two_report, &two), [](std::exception_ptr) {});
  io.run();

  ASSERT_TRUE(one && two);
  ASSERT_TRUE(*one) << one->error().message();
  ASSERT_TRUE(*two) << two->error().message();
  EXPECT_GE(one_report.attempts + two_report.attempts, 3u);
  const TransactionReport& retried = one_report.attempts > 1 ? one_report : two_report;
  EXPECT_GT(retried.attempts, 1u);
  EXPECT_EQ(retried.last_error.sqlstate, "40P01");

  auto sums = RunAsync(io, [&]() -> asio::awaitable<Result<PgResult>> {
    auto lease = co_await pool.Acquire(In(5s));
    if (!lease) co_return lease.error();
    co_return co_await lease.value()->Execute("SELECT sum(v), min(v) FROM t", {}, In(5s));
  }());
  ASSERT_TRUE(sums);
  EXPECT_EQ(sums.value().GetInt64(0, 0).value(), 4);  // Two transactions x two rows, nothing lost.
  EXPECT_EQ(sums.value().GetInt64(0, 1).value(), 2);
}

TEST(RunInTransactionTest, RetriesStopAfterAttemptsMax) {
  // Proves a body that always fails with 40001 runs exactly retry_attempts_max times, backs off
  // between attempts, and the caller gets serialization_failure.
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase(), 2));
  int calls = 0;
  int random_calls = 0;
  TransactionReport report;
  auto result = RunAsync(
      io, RunInTransaction(pool, In(10s),
                           {.isolation = IsolationLevel::kSerializable,
                            .retry = {.attempts_max = 3,
                                      .backoff_base = 1ms,
                                      .random = CountingRandom(&random_calls)},
                            .report = &report},
                           [&](PgConnection& conn) -> asio::awaitable<Result<int>> {
                             ++calls;
                             auto raised = co_await conn.ExecuteSimple(
                                 "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001'; END $$",
                                 In(5s));
                             if (!raised) co_return raised.error();
                             co_return 0;
                           }));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), Errc::serialization_failure);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(report.attempts, 3u);
  EXPECT_EQ(random_calls, 2);  // One backoff between each pair of attempts.
  EXPECT_EQ(report.last_error.sqlstate, "40001");
  PoolStats stats = pool.Stats();
  EXPECT_EQ(stats.in_use, 0u);
  EXPECT_EQ(stats.connections_discarded_total, 0u);  // Rolled back cleanly, connection reused.
}

TEST(RunInTransactionTest, OtherErrorsRollBackWithoutRetry) {
  // Proves a non-retryable error is returned after one attempt and its writes are rolled back.
  const std::string url = FreshDatabase();
  CreateSchema(url, "CREATE TABLE t (v int8)");
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(url, 1));
  int calls = 0;
  auto result = RunAsync(
      io,
      RunInTransaction(pool, In(5s), {}, [&](PgConnection& conn) -> asio::awaitable<Result<int>> {
        ++calls;
        auto inserted = co_await conn.Execute("INSERT INTO t VALUES (1)", {}, In(5s));
        if (!inserted) co_return inserted.error();
        auto failed = co_await conn.Execute("SELECT 1 / 0", {}, In(5s));
        if (!failed) co_return failed.error();
        co_return 0;
      }));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), Errc::query_failed);
  EXPECT_EQ(calls, 1);
  auto count = RunAsync(io, [&]() -> asio::awaitable<Result<PgResult>> {
    auto lease = co_await pool.Acquire(In(5s));
    if (!lease) co_return lease.error();
    co_return co_await lease.value()->Execute("SELECT count(*) FROM t", {}, In(5s));
  }());
  ASSERT_TRUE(count);
  EXPECT_EQ(count.value().GetInt64(0, 0).value(), 0);
}

TEST(RunInTransactionTest, SwallowedErrorMakesCommitFail) {
  // Proves a body that ignores a failed statement cannot report success: PostgreSQL answers COMMIT
  // with ROLLBACK and RunInTransaction returns transaction_rolled_back.
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase(), 1));
  auto result = RunAsync(
      io,
      RunInTransaction(pool, In(5s), {}, [](PgConnection& conn) -> asio::awaitable<Result<int>> {
        auto ignored = co_await conn.Execute("SELECT 1 / 0", {}, In(5s));
        (void)ignored;
        co_return 7;
      }));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), Errc::transaction_rolled_back);
  EXPECT_EQ(pool.Stats().connections_discarded_total, 0u);
}

}  // namespace
}  // namespace paygate::db
