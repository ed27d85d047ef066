// Async libpq connection against a real private PostgreSQL: typed parameters, prepared statements,
// deadlines and non-blocking I/O.
#include <utility>  // Before Asio (DESIGN.md §2).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "ledger/db/pg_connection.h"
#include "ledger/db/pg_pool.h"
#include "tests/integration/db/db_test_util.h"
#include "tests/testing/run_async.h"

namespace paygate::db {
namespace {

namespace asio = boost::asio;
using namespace test;
using testing::RunAsync;

TEST(PgConnectionTest, ArrayLiteralsArriveElementForElement) {
  // Proves ArrayLiteral's text arrays reach the server as exactly the elements given, whatever
  // they contain (separators, braces, quotes, backslashes, the word NULL, empty, unicode), and
  // integer arrays keep their extremes: the server unnests and compares each element.
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase()));
  const std::vector<std::string> texts = {"a,b", "{x}", "q\"uote", "back\\slash", "NULL", "",
                                          " padded ", "ünï 💳"};
  const std::vector<std::int64_t> ints = {std::numeric_limits<std::int64_t>::min(), -1, 0,
                                          std::numeric_limits<std::int64_t>::max()};
  RunAsync(io, [&]() -> asio::awaitable<void> {
    auto lease = co_await pool.Acquire(In(5s));
    CO_ASSERT_OK(lease);
    auto result = co_await lease.value()->Execute(
        "SELECT t.v, t.n, (SELECT array_agg(i ORDER BY o) FROM unnest($2::bigint[]) "
        "WITH ORDINALITY u(i, o))::text FROM unnest($1::text[]) WITH ORDINALITY t(v, n) ORDER BY n",
        Params().AddUntyped(ArrayLiteral(texts)).AddUntyped(ArrayLiteral(ints)), In(5s));
    CO_ASSERT_OK(result);
    const PgResult& rows = result.value();
    CO_ASSERT_TRUE(rows.rows() == static_cast<int>(texts.size()));
    for (int i = 0; i < rows.rows(); ++i) {
      EXPECT_FALSE(rows.IsNull(i, 0)) << i;
      EXPECT_EQ(rows.GetText(i, 0).value(), texts[static_cast<std::size_t>(i)]);
    }
    EXPECT_EQ(rows.GetText(0, 2).value(),
              "{-9223372036854775808,-1,0,9223372036854775807}");
    auto empty = co_await lease.value()->Execute(
        "SELECT cardinality($1::text[]), cardinality($2::bigint[])",
        Params().AddUntyped(ArrayLiteral(std::vector<std::string>{}))
            .AddUntyped(ArrayLiteral(std::vector<std::int64_t>{})),
        In(5s));
    CO_ASSERT_OK(empty);
    EXPECT_EQ(empty.value().GetInt64(0, 0).value(), 0);
    EXPECT_EQ(empty.value().GetInt64(0, 1).value(), 0);
  }());
}

TEST(PgConnectionTest, TypedParamsRoundTripWithTheirTypes) {
  // Proves parameters reach the server with their declared types and come back unchanged: int64
  // extremes, text with quotes/backslash/unicode, NULL, both booleans, bytea with NUL and 0xff
  // bytes.
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase()));
  const std::string text = "it's \"quoted\" \\ ünïcødé 💳 -- ; DROP TABLE x";
  const std::string bytes("\x00\x01\xff\x7f'\\", 6);
  RunAsync(io, [&]() -> asio::awaitable<void> {
    auto lease = co_await pool.Acquire(In(5s));
    CO_ASSERT_OK(lease);
    Params params;
    params.Add(std::numeric_limits<std::int64_t>::min())
        .Add(std::numeric_limits<std::int64_t>::max())
        .Add(text)
        .AddNull()
        .Add(true)
        .Add(false)
        .AddBytea(bytes)
        .Add(std::int32_t{-7})
        .Add(std::optional<std::int64_t>());
    // No casts on $1..$8: pg_typeof shows the server used the OIDs we sent.
    auto result = co_await lease.value()->Execute(
        "SELECT $1, $2, $3, $4::text, $5, $6, $7, $8, $9::int8, "
        "pg_typeof($1)::text, pg_typeof($3)::text, pg_typeof($5)::text, pg_typeof($7)::text, "
        "pg_typeof($8)::text, $3 = 'it''s \"quoted\" \\ ünïcødé 💳 -- ; DROP TABLE x', "
        "char_length($3)",
        std::move(params), In(5s));
    CO_ASSERT_OK(result);
    const PgResult& row = result.value();
    CO_ASSERT_TRUE(row.rows() == 1);
    EXPECT_EQ(row.GetInt64(0, 0).value(), std::numeric_limits<std::int64_t>::min());
    EXPECT_EQ(row.GetInt64(0, 1).value(), std::numeric_limits<std::int64_t>::max());
    EXPECT_EQ(row.GetText(0, 2).value(), text);
    EXPECT_TRUE(row.IsNull(0, 3));
    EXPECT_EQ(row.GetText(0, 3).error(), Errc::unexpected_null);
    EXPECT_TRUE(row.GetBool(0, 4).value());
    EXPECT_FALSE(row.GetBool(0, 5).value());
    EXPECT_EQ(row.GetBytea(0, 6).value(), bytes);
    EXPECT_EQ(row.GetInt64(0, 7).value(), -7);
    EXPECT_TRUE(row.IsNull(0, 8));
    EXPECT_EQ(row.GetText(0, 9).value(), "bigint");
    EXPECT_EQ(row.GetText(0, 10).value(), "text");
    EXPECT_EQ(row.GetText(0, 11).value(), "boolean");
    EXPECT_EQ(row.GetText(0, 12).value(), "bytea");
    EXPECT_EQ(row.GetText(0, 13).value(), "integer");
    EXPECT_TRUE(row.GetBool(0, 14).value());
    EXPECT_EQ(row.GetInt64(0, 15).value(), 43);  // Code points (50 bytes): the encoding survived.
    EXPECT_EQ(row.GetInt64(0, 2).error(), Errc::bad_value);  // Text is not an integer.
  }());
}

TEST(PgConnectionTest, TextWithNulIsRefusedNotTruncated) {
  // Proves a text parameter with a NUL byte fails with bad_value instead of being cut at the NUL.
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase()));
  RunAsync(io, [&]() -> asio::awaitable<void> {
    auto lease = co_await pool.Acquire(In(5s));
    CO_ASSERT_OK(lease);
    auto result = co_await lease.value()->Execute(
        "SELECT $1", Params().Add(std::string_view("ab\0cd", 5)), In(5s));
    CO_ASSERT_TRUE(!result);
    EXPECT_EQ(result.error(), Errc::bad_value);
    EXPECT_TRUE(lease.value()->usable());
  }());
}

TEST(PgConnectionTest, ServerErrorsCarrySqlStateAndKeepTheConnection) {
  // Proves server errors map to their Errc with SQLSTATE, message and constraint available, and
  // that a statement error leaves the connection usable.
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase()));
  RunAsync(io, [&]() -> asio::awaitable<void> {
    auto lease = co_await pool.Acquire(In(5s));
    CO_ASSERT_OK(lease);
    PgConnection& conn = *lease.value();
    auto division = co_await conn.Execute("SELECT 1 / $1", Params().Add(std::int64_t{0}), In(5s));
    CO_ASSERT_TRUE(!division);
    EXPECT_EQ(division.error(), Errc::query_failed);
    EXPECT_EQ(conn.last_error().sqlstate, "22012");
    EXPECT_EQ(conn.last_error().message, "division by zero");

    auto script = co_await conn.ExecuteSimple(
        "CREATE TABLE u (id int8 CONSTRAINT u_pkey PRIMARY KEY); INSERT INTO u VALUES (1), (2); "
        "SELECT count(*) FROM u",
        In(5s));
    CO_ASSERT_OK(script);
    EXPECT_EQ(script.value().GetInt64(0, 0).value(), 2);  // The last statement's result.

    auto duplicate =
        co_await conn.Execute("INSERT INTO u VALUES ($1)", Params().Add(std::int64_t{1}), In(5s));
    CO_ASSERT_TRUE(!duplicate);
    EXPECT_EQ(duplicate.error(), Errc::unique_violation);
    EXPECT_EQ(conn.last_error().sqlstate, "23505");
    EXPECT_EQ(conn.last_error().constraint, "u_pkey");

    auto inserted =
        co_await conn.Execute("INSERT INTO u VALUES ($1)", Params().Add(std::int64_t{3}), In(5s));
    CO_ASSERT_OK(inserted);
    EXPECT_EQ(inserted.value().affected_rows(), 1);
    EXPECT_TRUE(conn.usable());
    EXPECT_EQ(conn.last_error().sqlstate, "");
  }());
}

TEST(PgConnectionTest, NewConnectionsSetStatementTimeoutAndApplicationName) {
  // Proves every pooled connection carries statement_timeout from the options and
  // application_name=paygated, whatever the URL says.
  asio::io_context io;
  PoolOptions options = MakePoolOptions(FreshDatabase() + "?application_name=other");
  options.connect.statement_timeout = 1234ms;
  PgPool pool(io.get_executor(), std::move(options));
  RunAsync(io, [&]() -> asio::awaitable<void> {
    auto lease = co_await pool.Acquire(In(5s));
    CO_ASSERT_OK(lease);
    auto result = co_await lease.value()->Execute(
        "SELECT current_setting('statement_timeout'), current_setting('application_name')", {},
        In(5s));
    CO_ASSERT_OK(result);
    EXPECT_EQ(result.value().GetText(0, 0).value(), "1234ms");
    EXPECT_EQ(result.value().GetText(0, 1).value(), "paygated");
  }());
}

TEST(PgConnectionTest, PreparedStatementIsPreparedOncePerConnection) {
  // Proves a Statement is prepared once on a connection and then executed by name: the server lists
  // it once in pg_prepared_statements with one plan use per execution.
  constexpr Statement kAdd{"test_add", "SELECT $1::int8 + $2::int8"};
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase(), 1));
  RunAsync(io, [&]() -> asio::awaitable<void> {
    for (std::int64_t i = 0; i < 3; ++i) {
      auto lease = co_await pool.Acquire(In(5s));  // The same connection each time (pool of one).
      CO_ASSERT_OK(lease);
      auto sum =
          co_await lease.value()->Execute(kAdd, Params().Add(i).Add(std::int64_t{10}), In(5s));
      CO_ASSERT_OK(sum);
      EXPECT_EQ(sum.value().GetInt64(0, 0).value(), i + 10);
    }
    auto lease = co_await pool.Acquire(In(5s));
    CO_ASSERT_OK(lease);
    EXPECT_EQ(lease.value()->statements_prepared(), 1u);
    auto listed = co_await lease.value()->Execute(
        "SELECT count(*), sum(generic_plans + custom_plans) FROM pg_prepared_statements "
        "WHERE name = $1",
        Params().Add("test_add"), In(5s));
    CO_ASSERT_OK(listed);
    EXPECT_EQ(listed.value().GetInt64(0, 0).value(), 1);
    EXPECT_EQ(listed.value().GetInt64(0, 1).value(), 3);
    EXPECT_EQ(pool.Stats().connections_opened_total, 1u);
  }());
}

TEST(PgConnectionTest, PipelineRunsStepsInOrderAndPreparesEachStatementOnce) {
  // Proves ExecutePipeline runs its steps in order, each seeing the ones before it, returns one
  // result per step, and prepares a statement used twice in one pipeline once; an unnamed step
  // is sent unprepared.
  constexpr Statement kCount{"test_pipeline_count", "SELECT count(*), max(v) FROM p"};
  constexpr Statement kInsert{"test_pipeline_insert", "INSERT INTO p VALUES ($1)"};
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase(), 1));
  RunAsync(io, [&]() -> asio::awaitable<void> {
    auto lease = co_await pool.Acquire(In(5s));
    CO_ASSERT_OK(lease);
    PgConnection& conn = *lease.value();
    CO_ASSERT_OK(co_await conn.ExecuteSimple("CREATE TABLE p (v int8)", In(5s)));
    std::vector<PipelineStep> steps;
    steps.push_back({kInsert, Params().Add(std::int64_t{7})});
    steps.push_back({kCount, Params()});
    steps.push_back({Statement{"", "INSERT INTO p VALUES ($1)"}, Params().Add(std::int64_t{9})});
    steps.push_back({kCount, Params()});
    auto results = co_await conn.ExecutePipeline(std::move(steps), In(5s));
    CO_ASSERT_OK(results);
    CO_ASSERT_TRUE(results.value().size() == 4u);
    EXPECT_EQ(results.value()[0].affected_rows(), 1);
    EXPECT_EQ(results.value()[1].GetInt64(0, 0).value(), 1);
    EXPECT_EQ(results.value()[1].GetInt64(0, 1).value(), 7);
    EXPECT_EQ(results.value()[2].affected_rows(), 1);
    EXPECT_EQ(results.value()[3].GetInt64(0, 0).value(), 2);
    EXPECT_EQ(results.value()[3].GetInt64(0, 1).value(), 9);
    EXPECT_EQ(conn.statements_prepared(), 2u);
    // Prepared statements stay known to the connection: a later Execute does not prepare again.
    auto again = co_await conn.Execute(kCount, Params(), In(5s));
    CO_ASSERT_OK(again);
    EXPECT_EQ(again.value().GetInt64(0, 0).value(), 2);
    EXPECT_EQ(conn.statements_prepared(), 2u);
    EXPECT_EQ(conn.transaction_status(), TransactionStatus::kIdle);
  }());
}

TEST(PgConnectionTest, PipelineStopsAtTheFirstErrorAndTheConnectionStaysUsable) {
  // Proves a failing step reports its error and SQLSTATE, the steps after it do not run, and the
  // steps before it (one implicit transaction outside BEGIN) are rolled back with it; the
  // connection is idle and usable afterwards.
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase(), 1));
  RunAsync(io, [&]() -> asio::awaitable<void> {
    auto lease = co_await pool.Acquire(In(5s));
    CO_ASSERT_OK(lease);
    PgConnection& conn = *lease.value();
    CO_ASSERT_OK(co_await conn.ExecuteSimple("CREATE TABLE p (v int8)", In(5s)));
    std::vector<PipelineStep> steps;
    steps.push_back({Statement{"", "INSERT INTO p VALUES (1)"}, Params()});
    steps.push_back({Statement{"", "SELECT 1 / $1"}, Params().Add(std::int64_t{0})});
    steps.push_back({Statement{"", "INSERT INTO p VALUES (2)"}, Params()});
    auto results = co_await conn.ExecutePipeline(std::move(steps), In(5s));
    CO_ASSERT_TRUE(!results);
    EXPECT_EQ(results.error(), Errc::query_failed);
    EXPECT_EQ(conn.last_error().sqlstate, "22012");
    EXPECT_TRUE(conn.usable());
    EXPECT_EQ(conn.transaction_status(), TransactionStatus::kIdle);
    auto count = co_await conn.Execute("SELECT count(*) FROM p", {}, In(5s));
    CO_ASSERT_OK(count);
    EXPECT_EQ(count.value().GetInt64(0, 0).value(), 0);
  }());
}

TEST(PgConnectionTest, DeferredStatementGoesOutWithTheNextOne) {
  // Proves a Defer()red BEGIN is sent with the next Execute (the statement then runs inside the
  // transaction), with the next ExecuteSimple too, that a failing deferred statement fails that
  // call without running its statement, and that ClearDeferred() drops what was queued.
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase(), 1));
  RunAsync(io, [&]() -> asio::awaitable<void> {
    auto lease = co_await pool.Acquire(In(5s));
    CO_ASSERT_OK(lease);
    PgConnection& conn = *lease.value();
    CO_ASSERT_OK(co_await conn.ExecuteSimple("CREATE TABLE p (v int8)", In(5s)));

    conn.Defer("BEGIN");
    EXPECT_EQ(conn.transaction_status(), TransactionStatus::kIdle);  // Nothing sent yet.
    CO_ASSERT_OK(co_await conn.Execute("INSERT INTO p VALUES ($1)", Params().Add(std::int64_t{1}),
                                       In(5s)));
    EXPECT_EQ(conn.transaction_status(), TransactionStatus::kInTransaction);
    CO_ASSERT_OK(co_await conn.ExecuteSimple("ROLLBACK", In(5s)));

    conn.Defer("BEGIN");
    CO_ASSERT_OK(co_await conn.ExecuteSimple("INSERT INTO p VALUES (2)", In(5s)));
    EXPECT_EQ(conn.transaction_status(), TransactionStatus::kInTransaction);
    CO_ASSERT_OK(co_await conn.ExecuteSimple("ROLLBACK", In(5s)));

    conn.Defer("SELECT no_such_column");
    auto failed =
        co_await conn.Execute("INSERT INTO p VALUES ($1)", Params().Add(std::int64_t{3}), In(5s));
    CO_ASSERT_TRUE(!failed);
    EXPECT_EQ(conn.last_error().sqlstate, "42703");

    conn.Defer("BEGIN");
    conn.ClearDeferred();
    CO_ASSERT_OK(co_await conn.Execute("INSERT INTO p VALUES ($1)", Params().Add(std::int64_t{4}),
                                       In(5s)));
    EXPECT_EQ(conn.transaction_status(), TransactionStatus::kIdle);
    auto values = co_await conn.Execute("SELECT string_agg(v::text, ',') FROM p", {}, In(5s));
    CO_ASSERT_OK(values);
    EXPECT_EQ(values.value().GetText(0, 0).value(), "4");
  }());
}

TEST(PgConnectionTest, ConnectionReturnedWithDeferredStatementsIsNotReused) {
  // Proves a connection given back to the pool with a statement still deferred is dropped, so the
  // next user's first statement never runs inside someone else's BEGIN.
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase(), 1));
  RunAsync(io, [&]() -> asio::awaitable<void> {
    {
      auto lease = co_await pool.Acquire(In(5s));
      CO_ASSERT_OK(lease);
      lease.value()->Defer("BEGIN");
    }
    auto lease = co_await pool.Acquire(In(5s));
    CO_ASSERT_OK(lease);
    CO_ASSERT_OK(co_await lease.value()->Execute("SELECT 1", {}, In(5s)));
    EXPECT_EQ(lease.value()->transaction_status(), TransactionStatus::kIdle);
    EXPECT_EQ(pool.Stats().connections_opened_total, 2u);
  }());
}

TEST(PgConnectionTest, DeadlineExceededReturnsTimeoutAndConnectionIsNotReused) {
  // Proves a statement that outlives its deadline returns timeout on time, and the pool replaces
  // the connection instead of handing out one whose protocol state is unknown.
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase(), 1));
  RunAsync(io, [&]() -> asio::awaitable<void> {
    int first_pid = 0;
    {
      auto lease = co_await pool.Acquire(In(5s));
      CO_ASSERT_OK(lease);
      first_pid = lease.value()->backend_pid();
      auto start = Clock::now();
      auto slow = co_await lease.value()->Execute("SELECT pg_sleep(3)", {}, In(200ms));
      auto elapsed = Clock::now() - start;
      CO_ASSERT_TRUE(!slow);
      EXPECT_EQ(slow.error(), Errc::timeout);
      EXPECT_GE(elapsed, 190ms);
      EXPECT_LT(elapsed, 1s);
      EXPECT_FALSE(lease.value()->usable());
    }
    EXPECT_EQ(pool.Stats().connections_discarded_total, 1u);
    EXPECT_EQ(pool.Stats().size, 0u);

    auto start = Clock::now();
    auto lease = co_await pool.Acquire(In(5s));
    CO_ASSERT_OK(lease);
    EXPECT_NE(lease.value()->backend_pid(), first_pid);
    auto quick = co_await lease.value()->Execute("SELECT 1", {}, In(5s));
    CO_ASSERT_OK(quick);
    EXPECT_LT(Clock::now() - start, 1s);  // Did not wait for the abandoned pg_sleep(3).
    EXPECT_EQ(pool.Stats().connections_opened_total, 2u);
  }());
}

TEST(PgConnectionTest, ConnectHonoursItsDeadline) {
  // Proves connecting to a server that accepts TCP but never answers fails with timeout when
  // connect_timeout passes, and the pool counts the failure and frees the slot.
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(listener, 8), 0);  // The kernel completes handshakes; nobody ever reads.
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  asio::io_context io;
  PoolOptions options = MakePoolOptions(
      "postgresql://postgres@127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/x", 1);
  options.connect_timeout = 300ms;
  PgPool pool(io.get_executor(), std::move(options));
  RunAsync(io, [&]() -> asio::awaitable<void> {
    auto start = Clock::now();
    auto lease = co_await pool.Acquire(In(5s));
    auto elapsed = Clock::now() - start;
    CO_ASSERT_TRUE(!lease);
    EXPECT_EQ(lease.error(), Errc::timeout);
    EXPECT_GE(elapsed, 290ms);
    EXPECT_LT(elapsed, 1500ms);
  }());
  PoolStats stats = pool.Stats();
  EXPECT_EQ(stats.connect_failures_total, 1u);
  EXPECT_EQ(stats.size, 0u);
  ::close(listener);
}

TEST(PgConnectionTest, FallsBackToTheNextHostOfAMultiHostUrl) {
  // Proves a connection survives libpq replacing its socket while connecting: the first host of the
  // URL refuses, libpq opens a new socket (usually with the same number) for the second one.
  int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(probe, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::getsockname(probe, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(probe);  // Nothing listens on this port any more: connections to it are refused.
  const int port = testing::SharedPgCluster().port();
  asio::io_context io;
  PgPool pool(
      io.get_executor(),
      MakePoolOptions("postgresql://postgres@127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) +
                          ",127.0.0.1:" + std::to_string(port) + "/postgres",
                      1));
  auto ping = RunAsync(io, pool.Ping(In(5s)));
  EXPECT_TRUE(ping) << ping.error().message();
}

TEST(PgConnectionTest, MalformedUrlFailsToConnect) {
  // Proves a URL libpq cannot parse is answered with connect_failed rather than a crash or a hang.
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions("postgresql://[::1", 1));
  auto lease = RunAsync(io, pool.Acquire(In(5s)));
  ASSERT_FALSE(lease);
  EXPECT_EQ(lease.error(), Errc::connect_failed);
  EXPECT_EQ(pool.Stats().connect_failures_total, 1u);
}

TEST(PgConnectionTest, TwoSlowQueriesOverlapOnOneIoThread) {
  // Proves the I/O thread never blocks on the database: two pg_sleep(0.5) on two connections,
  // driven by one thread running one io_context, finish together in well under the 1 s a blocking
  // driver needs.
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase(), 2));
  // Open both connections first so connection set-up is not part of the measurement.
  RunAsync(io, [&]() -> asio::awaitable<void> {
    auto a = co_await pool.Acquire(In(5s));
    auto b = co_await pool.Acquire(In(5s));
    CO_ASSERT_OK(a);
    CO_ASSERT_OK(b);
  }());
  ASSERT_EQ(pool.Stats().idle, 2u);

  int finished = 0;
  auto sleeper = [&]() -> asio::awaitable<void> {
    auto lease = co_await pool.Acquire(In(5s));
    CO_ASSERT_OK(lease);
    auto slept = co_await lease.value()->Execute("SELECT pg_sleep(0.5)", {}, In(5s));
    CO_ASSERT_OK(slept);
    ++finished;
  };
  auto start = Clock::now();
  asio::co_spawn(io, sleeper(), [](std::exception_ptr) {});
  asio::co_spawn(io, sleeper(), [](std::exception_ptr) {});
  io.restart();
  io.run();  // This thread is the only one running `io`.
  auto elapsed = Clock::now() - start;
  EXPECT_EQ(finished, 2);
  EXPECT_GE(elapsed, 500ms);
  EXPECT_LT(elapsed, 900ms);  // One after the other would take 1 s.
  EXPECT_EQ(pool.Stats().connections_opened_total, 2u);
}

}  // namespace
}  // namespace paygate::db
