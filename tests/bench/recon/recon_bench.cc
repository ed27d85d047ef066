// recon_bench: the reconciliation benchmark's driver (tests/bench/recon/run.sh, DESIGN.md §8).
//   recon_bench --generate DIR --lines N   writes DIR/bill.csv (a WeChat Pay ALL trade bill of N
//                                          payment lines) and DIR/anchor.tsv (the same rows as
//                                          COPY text), in batches so memory stays small;
//   recon_bench --url URL --setup --lines N  migrates and inserts N succeeded orders + attempts;
//   recon_bench --url URL --run DIR          times the anchor (COPY anchor.tsv + one hash join on
//                                          the reference), then paygate's import of bill.csv, and
//                                          prints "lines=.. seconds=.. anchor_seconds=.. ratio=..
//                                          peak_rss_mb=.. matched=..".
// Every line matches one of our attempts by reference, as on an ordinary day.
#include <utility>  // Before Asio (DESIGN.md §2).

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "adapters/common/money.h"
#include "adapters/wechatpay/bill.h"
#include "ledger/db/migrations.h"
#include "ledger/db/pg_pool.h"
#include "ledger/ledger/postgres_ledger.h"
#include "ledger/recon/reconciler.h"
#include "tests/testing/wechat_bill_rows.h"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using paygate::db::Clock;

constexpr const char* kDay = "2026-03-10";

std::int64_t Amount(std::int64_t i) { return 1000 + i % 5000; }
// Our order ids are random (payments' NewId), so a bill's lines reach the claims index in no
// order of its keys: line i names order IdNumber(i), a permutation of the line numbers spread over
// [0, 10^12) (the multiplier is prime to 10^12). Sequential ids would make every insert an append
// to the index's last page, which halved the cost of the load against ids in a random order.
constexpr std::int64_t kIdScramble = 999999999989;
constexpr std::int64_t kIdSpace = 1000000000000;
std::int64_t IdNumber(std::int64_t i) { return i * kIdScramble % kIdSpace; }
std::string Reference(std::int64_t i) { return fmt::format("pay_{:024}_1", IdNumber(i)); }
// The order id of row i in the setup's SQL (generate_series' i), as IdNumber and Reference make it.
std::string OrderIdSql() {
  return fmt::format("'pay_' || lpad((i * {} % {})::text, 24, '0')", kIdScramble, kIdSpace);
}
std::string Txid(std::int64_t i) { return fmt::format("42{:026}", i); }
// Seconds after the day's midnight (China time), away from the cut-off window.
std::int64_t Second(std::int64_t i) { return i % 80000; }

template <class T>
asio::awaitable<void> Store(asio::awaitable<T> task, std::optional<T>* out) {
  out->emplace(co_await std::move(task));
}

// Runs `task` until it completes (the ledger's batcher keeps a timer armed, so io never idles).
template <class T>
T Run(asio::io_context& io, asio::awaitable<T> task) {
  std::optional<T> result;
  bool done = false;
  asio::co_spawn(io, Store(std::move(task), &result), [&](std::exception_ptr) { done = true; });
  io.restart();
  while (!done) io.run_one();
  if (!result) std::abort();
  return std::move(*result);
}

int Generate(const std::string& dir, std::int64_t lines) {
  std::ofstream bill(dir + "/bill.csv", std::ios::binary);
  std::ofstream anchor(dir + "/anchor.tsv", std::ios::binary);
  std::int64_t sum = 0, fees = 0;
  std::string summary_header;
  constexpr std::int64_t kBatch = 10000;
  for (std::int64_t start = 0; start < lines; start += kBatch) {
    std::vector<paygate::adapters::wechatpay::TradeBillRow> rows;
    std::string tsv;
    for (std::int64_t i = start; i < std::min(lines, start + kBatch); ++i) {
      const std::int64_t s = Second(i);
      paygate::adapters::wechatpay::TradeBillRow row = paygate::testing::NativePaymentLine(
          fmt::format("{} {:02}:{:02}:{:02}", kDay, s / 3600, s / 60 % 60, s % 60), Txid(i),
          Reference(i), Amount(i), Amount(i) * 6 / 1000);
      sum += row.total_fen;
      fees += row.fee_fen;
      tsv += fmt::format("{}\tpayment\t{}\t{}\t{}\t{}\tCNY\t{}T{:02}:{:02}:{:02}+08:00\tSUCCESS\n",
                         i + 1, row.transaction_id, row.out_trade_no, row.total_fen, row.fee_fen,
                         kDay, s / 3600, s / 60 % 60, s % 60);
      rows.push_back(std::move(row));
    }
    std::string text = paygate::adapters::wechatpay::FormatTradeBill(rows);
    // Keep the header once; drop each batch's summary (the last two lines), written at the end.
    std::size_t end = text.rfind("\r\n", text.size() - 3);
    end = text.rfind("\r\n", end - 1);  // the end of the last detail row
    const std::size_t summary_end = text.rfind("\r\n", text.size() - 3);
    summary_header = text.substr(end + 2, summary_end - end);
    std::size_t begin = start == 0 ? 0 : text.find("\r\n") + 2;
    bill.write(text.data() + begin, static_cast<std::streamsize>(end + 2 - begin));
    anchor << tsv;
  }
  using paygate::adapters::money::FormatDecimal;
  bill << summary_header;
  bill << fmt::format("`{}.0,`{},`0.00,`0.0,`{},`{},`0.00\r\n", lines, FormatDecimal(sum),
                      FormatDecimal(fees), FormatDecimal(sum));
  return bill && anchor ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string url, generate, run_dir;
  std::int64_t lines = 1000;
  bool setup = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--url") url = next();
    else if (a == "--generate") generate = next();
    else if (a == "--run") run_dir = next();
    else if (a == "--lines") lines = std::stoll(next());
    else if (a == "--setup") setup = true;
    else {
      std::cerr << "unknown argument " << a << "\n";
      return 2;
    }
  }
  if (!generate.empty()) return Generate(generate, lines);

  asio::io_context io;
  paygate::db::PoolOptions pool_options;
  pool_options.connect.url = url;
  pool_options.connect.application_name = "recon_bench";
  pool_options.pool_size_max = 4;
  paygate::db::PgPool pool(io.get_executor(), std::move(pool_options));
  auto sql = [&](std::string text) {
    return Run(io, [&]() -> asio::awaitable<paygate::Result<paygate::db::PgResult>> {
      auto lease = co_await pool.Acquire(Clock::now() + 10s);
      if (!lease) co_return lease.error();
      co_return co_await lease.value()->ExecuteSimple(text, Clock::now() + 600s);
    }());
  };
  if (setup) {
    auto migrated = Run(io, paygate::db::ApplyMigrations(pool, Clock::now() + 60s));
    if (!migrated) {
      std::cerr << "migrations: " << migrated.error().message << "\n";
      return 1;
    }
    const std::string ts = fmt::format("'{}T00:00:00+08:00'::timestamptz", kDay);
    auto inserted = sql(fmt::format(
        "INSERT INTO payment_orders (id, principal, client_reference, policy_number, "
        "amount_minor, currency, method, provider, merchant_account, status, captured_minor, "
        "expires_at, created_at, updated_at) SELECT {2}, 'bench', 'c' || i, 'POL', "
        "1000 + i % 5000, 'CNY', 'wechat_native', 'wechatpay', 'm1', 'succeeded', "
        "1000 + i % 5000, {0} + interval '2 days', {0}, "
        "{0} + (i % 80000) * interval '1 second' FROM generate_series(0, {1} - 1) i; "
        "INSERT INTO payment_attempts (order_id, seq, provider, merchant_account, "
        "provider_reference, routing_reason, status, provider_transaction_id, created_at, "
        "updated_at) SELECT {2}, 1, 'wechatpay', 'm1', {2} || '_1', 'bench', 'succeeded', "
        "'42' || lpad(i::text, 26, '0'), {0}, {0} + (i % 80000) * interval '1 second' "
        "FROM generate_series(0, {1} - 1) i; "
        "CREATE TABLE anchor_bill (line_no integer, kind text, provider_transaction_id text, "
        "merchant_reference text, amount_minor bigint, fee_minor bigint, currency char(3), "
        "occurred_at timestamptz, status text); ANALYZE",
        ts, lines, OrderIdSql()));
    if (!inserted) {
      std::cerr << "setup failed\n";
      return 1;
    }
    // Vacuumed now, not by autovacuum in the middle of the measured part (two million inserted
    // rows trigger it): that took CPU and I/O from whichever side it overlapped, by chance.
    if (!sql("VACUUM (ANALYZE) payment_orders, payment_attempts")) {
      std::cerr << "vacuum failed\n";
      return 1;
    }
    return 0;
  }

  // Warm the tables both sides read, so neither pays for a cold cache alone.
  (void)sql("SELECT count(*) FROM payment_attempts a JOIN payment_orders o ON o.id = a.order_id");

  // The anchor: COPY of the same rows, then one hash join on the reference.
  const auto anchor_start = Clock::now();
  auto anchored = Run(io, [&]() -> asio::awaitable<paygate::Result<std::int64_t>> {
    auto lease = co_await pool.Acquire(Clock::now() + 10s);
    if (!lease) co_return lease.error();
    auto& conn = *lease.value();
    const auto deadline = Clock::now() + 600s;
    auto begun = co_await conn.CopyBegin("COPY anchor_bill FROM STDIN", deadline);
    if (!begun) co_return begun.error();
    std::FILE* f = std::fopen((run_dir + "/anchor.tsv").c_str(), "rb");
    std::vector<char> buf(1 << 20);
    for (;;) {
      const std::size_t n = std::fread(buf.data(), 1, buf.size(), f);
      if (n == 0) break;
      auto sent = co_await conn.CopyData(std::string_view(buf.data(), n), deadline);
      if (!sent) co_return sent.error();
    }
    std::fclose(f);
    auto ended = co_await conn.CopyEnd(deadline);
    if (!ended) co_return ended.error();
    auto joined = co_await conn.ExecuteSimple(
        "SET enable_mergejoin = off; SET enable_nestloop = off; "
        "SELECT count(*) FROM anchor_bill b JOIN payment_attempts a "
        "ON a.provider_reference = b.merchant_reference",
        deadline);
    if (!joined) co_return joined.error();
    co_return joined.value().GetInt64(0, 0);
  }());
  const double anchor_seconds = std::chrono::duration<double>(Clock::now() - anchor_start).count();
  if (!anchored || anchored.value() != lines) {
    std::cerr << "anchor failed or joined " << (anchored ? anchored.value() : -1) << " rows\n";
    return 1;
  }

  paygate::ledger::PostgresLedger ledger(pool, io.get_executor(), {});
  paygate::recon::Reconciler reconciler(pool, ledger, {});
  std::FILE* f = std::fopen((run_dir + "/bill.csv").c_str(), "rb");
  std::vector<char> buf(1 << 20);
  paygate::recon::ChunkReader read = [&]() -> paygate::Result<std::string_view,
                                                              paygate::recon::Error> {
    const std::size_t n = std::fread(buf.data(), 1, buf.size(), f);
    return std::string_view(buf.data(), n);
  };
  paygate::recon::ImportRequest request{.provider = "wechatpay",
                                        .merchant_account = "m1",
                                        .bill_date = kDay,
                                        .file_name = "bill.csv",
                                        .principal = "bench"};
  const auto start = Clock::now();
  auto report = Run(io, reconciler.ImportStream(request, std::string(64, '0'), read, {},
                                                Clock::now() + 1200s));
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::fclose(f);
  Run(io, [&]() -> asio::awaitable<int> {
    co_await ledger.Stop();
    co_return 0;
  }());
  if (!report) {
    std::cerr << "import failed: " << report.error().message << "\n";
    return 1;
  }
  const std::int64_t matched = report.value().classes["matched"].count;
  if (matched != lines) {
    std::cerr << "matched " << matched << " of " << lines << " lines\n";
    return 1;
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::cout << fmt::format("lines={} seconds={:.3f} anchor_seconds={:.3f} ratio={:.3f} "
                           "peak_rss_mb={:.1f} matched={}\n",
                           lines, seconds, anchor_seconds, anchor_seconds / seconds,
                           usage.ru_maxrss / 1024.0, matched);
  return 0;
}
