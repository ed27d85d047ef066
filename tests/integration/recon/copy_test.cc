// PgConnection's COPY paths as reconciliation drives them, against a real PostgreSQL:
// CopyOut streams a query's rows (text and binary) without holding them in one result, and the
// binary COPY reconciliation writes is accepted and read back value for value.
#include <utility>  // Before Asio (DESIGN.md §2).

#include <chrono>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "ledger/db/pg_pool.h"
#include "ledger/recon/binary_copy.h"
#include "tests/integration/db/db_test_util.h"
#include "tests/testing/run_async.h"

namespace paygate::recon {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using db::test::FreshDatabase;
using db::test::In;
using db::test::MakePoolOptions;

class CopyTest : public ::testing::Test {
 protected:
  CopyTest() : pool_(io_.get_executor(), MakePoolOptions(FreshDatabase(), 2)) {}

  template <class T>
  T Run(asio::awaitable<T> task) {
    return testing::RunAsync(io_, std::move(task));
  }

  asio::io_context io_;
  db::PgPool pool_;
};

TEST_F(CopyTest, CopyOutStreamsEveryRowInTextAndBinary) {
  std::vector<std::string> text_rows;
  BinaryCopyReader reader;
  std::vector<BinaryField> fields;
  std::int64_t binary_rows = 0, sum = 0, ended = 0;
  auto done = Run([&]() -> asio::awaitable<Result<std::pair<std::int64_t, std::int64_t>>> {
    auto lease = co_await pool_.Acquire(In(10s));
    if (!lease) co_return lease.error();
    auto& conn = *lease.value();
    auto text = co_await conn.CopyOut(
        "COPY (SELECT i, 'x' || i FROM generate_series(1, 3) i) TO STDOUT",
        [&](std::string_view row) { text_rows.emplace_back(row); }, In(10s));
    if (!text) co_return text.error();
    auto binary = co_await conn.CopyOut(
        "COPY (SELECT i::bigint, ts FROM generate_series(1, 50000) i, "
        "(SELECT '2026-03-10T08:00:00+08:00'::timestamptz AS ts) t) TO STDOUT (FORMAT binary)",
        [&](std::string_view message) {
          switch (reader.Next(message, fields)) {
            case BinaryCopyReader::Status::kRow:
              ++binary_rows;
              sum += BinaryCopyReader::Int8(fields.at(0)).value_or(-1000000);
              if (BinaryCopyReader::TimestampUnix(fields.at(1)) != 1773100800) sum = -1;
              break;
            case BinaryCopyReader::Status::kEnd:
              ++ended;
              break;
            case BinaryCopyReader::Status::kMalformed:
              sum = -1;
              break;
          }
        },
        In(30s));
    if (!binary) co_return binary.error();
    // The connection is fit for more afterwards.
    auto after = co_await conn.Execute("SELECT 41 + 1", db::Params(), In(10s));
    if (!after) co_return after.error();
    co_return std::pair{binary.value().affected_rows(), after.value().GetInt64(0, 0).value()};
  }());
  ASSERT_TRUE(done) << done.error().message();
  EXPECT_EQ(text_rows, (std::vector<std::string>{"1\tx1\n", "2\tx2\n", "3\tx3\n"}));
  EXPECT_EQ(binary_rows, 50000);
  EXPECT_EQ(sum, 50000LL * 50001 / 2);
  EXPECT_EQ(ended, 1);
  EXPECT_EQ(done.value().first, 50000);
  EXPECT_EQ(done.value().second, 42);
}

TEST_F(CopyTest, CopyOutReportsTheServersError) {
  int rows = 0;
  auto done = Run([&]() -> asio::awaitable<Result<std::int64_t>> {
    auto lease = co_await pool_.Acquire(In(10s));
    if (!lease) co_return lease.error();
    auto& conn = *lease.value();
    // Fails half-way, after rows were sent.
    auto copied = co_await conn.CopyOut(
        "COPY (SELECT 1 / (1000 - i) FROM generate_series(1, 2000) i) TO STDOUT",
        [&](std::string_view) { ++rows; }, In(10s));
    if (copied) co_return std::int64_t{-1};
    auto missing = co_await conn.CopyOut("COPY (SELECT * FROM no_such_table) TO STDOUT",
                                         [&](std::string_view) { ++rows; }, In(10s));
    if (missing) co_return std::int64_t{-2};
    auto after = co_await conn.Execute("SELECT 7", db::Params(), In(10s));
    if (!after) co_return after.error();
    co_return after.value().GetInt64(0, 0);
  }());
  ASSERT_TRUE(done) << done.error().message();
  EXPECT_EQ(done.value(), 7);
  EXPECT_LT(rows, 1000);
}

TEST_F(CopyTest, BinaryCopyInRoundTrips) {
  std::string data;
  BinaryCopyWriter w(data);
  w.Header();
  for (int i = 0; i < 3; ++i) {
    w.Row(5);
    w.Int8(int64_t{1} << (40 + i));
    w.Int4(-i);
    w.Text(fmt::format("名{}\t\\", i));  // UTF-8, a tab and a backslash go in unescaped
    w.TimestampUnix(1773100800 + i);
    if (i == 1) {
      w.Null();
    } else {
      w.Bool(i == 0);
    }
  }
  w.Trailer();
  auto done = Run([&]() -> asio::awaitable<Result<db::PgResult>> {
    auto lease = co_await pool_.Acquire(In(10s));
    if (!lease) co_return lease.error();
    auto& conn = *lease.value();
    auto made = co_await conn.ExecuteSimple(
        "CREATE TABLE t (a bigint, b integer, c text, d timestamptz, e boolean)", In(10s));
    if (!made) co_return made.error();
    auto begun = co_await conn.CopyBegin("COPY t FROM STDIN (FORMAT binary)", In(10s));
    if (!begun) co_return begun.error();
    // Split anywhere: the server reassembles the stream.
    for (std::size_t at = 0; at < data.size(); at += 7) {
      auto sent = co_await conn.CopyData(std::string_view(data).substr(at, 7), In(10s));
      if (!sent) co_return sent.error();
    }
    auto ended = co_await conn.CopyEnd(In(10s));
    if (!ended) co_return ended.error();
    co_return co_await conn.ExecuteSimple(
        "SELECT a, b, c, extract(epoch FROM d)::bigint, coalesce(e::text, 'null') FROM t "
        "ORDER BY a",
        In(10s));
  }());
  ASSERT_TRUE(done) << done.error().message();
  const db::PgResult& r = done.value();
  ASSERT_EQ(r.rows(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(r.GetInt64(i, 0).value(), int64_t{1} << (40 + i));
    EXPECT_EQ(r.GetInt64(i, 1).value(), -i);
    EXPECT_EQ(r.GetText(i, 2).value(), fmt::format("名{}\t\\", i));
    EXPECT_EQ(r.GetInt64(i, 3).value(), 1773100800 + i);
  }
  EXPECT_EQ(r.GetText(0, 4).value(), "true");
  EXPECT_EQ(r.GetText(1, 4).value(), "null");
  EXPECT_EQ(r.GetText(2, 4).value(), "false");
}

}  // namespace
}  // namespace paygate::recon
