// Bills stream (issue 8: "Large files stream with bounded memory"): Alipay's zip of GBK CSVs and
// UnionPay's zip of its INN file are spooled to disk, then inflated and parsed a piece at a time.
// A large generated Alipay bill is read holding one line at a time (the reader's high-water mark,
// and the process's peak RSS where Linux lets a test reset it); an INN zip yields its records; and
// an Alipay bill imported by streaming reconciles against our attempts in a real PostgreSQL.
#include <utility>  // Before Asio (DESIGN.md §2).

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "adapters/alipay/bill.h"
#include "adapters/bill_files.h"
#include "adapters/common/archive.h"
#include "adapters/common/money.h"
#include "adapters/unionpay/bill.h"
#include "adapters/wechatpay/bill.h"
#include "ledger/db/migrations.h"
#include "ledger/db/pg_pool.h"
#include "ledger/ledger/chart.h"
#include "ledger/ledger/postgres_ledger.h"
#include "ledger/recon/reconciler.h"
#include "tests/integration/db/db_test_util.h"
#include "tests/testing/run_async.h"
#include "tests/testing/sanitizers.h"
#include "tests/testing/wechat_bill_rows.h"

namespace paygate::recon {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using db::test::FreshDatabase;
using db::test::In;
using db::test::MakePoolOptions;

constexpr const char* kDay = "2026-03-10";

using testing::RunUntilDone;

std::string OrderId(std::int64_t i) { return fmt::format("pay_{:024}", i); }
std::int64_t Amount(std::int64_t i) { return 100 + i % 9000; }

// The WeChat Pay bill line of OrderId(i)'s attempt at `amount` with `fee`, at second i of kDay.
adapters::wechatpay::TradeBillRow WechatLine(std::int64_t i, std::int64_t amount,
                                             std::int64_t fee) {
  const std::int64_t s = i % 80000;
  return testing::NativePaymentLine(
      fmt::format("{} {:02}:{:02}:{:02}", kDay, s / 3600, s / 60 % 60, s % 60),
      fmt::format("4200{:024}", i), OrderId(i) + "_1", amount, fee);
}

// TMPDIR set to `dir` while it lives (where the reconciler spills), then as it was.
class ScopedTmpdir {
 public:
  explicit ScopedTmpdir(const char* dir) {
    const char* was = std::getenv("TMPDIR");
    if (was != nullptr) saved_ = was;
    setenv("TMPDIR", dir, 1);
  }
  ~ScopedTmpdir() {
    if (saved_) {
      setenv("TMPDIR", saved_->c_str(), 1);
    } else {
      unsetenv("TMPDIR");
    }
  }
  ScopedTmpdir(const ScopedTmpdir&) = delete;
  ScopedTmpdir& operator=(const ScopedTmpdir&) = delete;

 private:
  std::optional<std::string> saved_;
};

// Alipay's detail CSV (UTF-8 here, GBK once converted) of `lines` payments of OrderId(i)'s
// attempts, with the footer totals the parser checks.
std::string DetailCsv(std::int64_t lines) {
  std::string csv =
      "#支付宝业务明细查询\n#账号：[20880211096256330156]\n"
      "#起始日期：[2026年03月10日 00:00:00]   终止日期：[2026年03月11日 00:00:00]\n"
      "#-----------------------------------------业务明细列表----------------------------------------\n"
      "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,"
      "对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,"
      "商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,"
      "退款批次号/请求号,服务费（元）,分润（元）,备注\n";
  std::int64_t sum = 0;
  for (std::int64_t i = 0; i < lines; ++i) {
    const std::int64_t s = i % 80000;
    const std::string at = fmt::format("{} {:02}:{:02}:{:02}", kDay, s / 3600, s / 60 % 60, s % 60);
    const std::string amount = adapters::money::FormatDecimal(Amount(i));
    const std::int64_t fee = Amount(i) * 6 / 1000;
    fmt::format_to(std::back_inserter(csv),
                   "2026031022{:018}\t,{}_1\t,交易\t,保费,{},{},store\t,store\t,op\t,\t,*三(1***@qq.com)"
                   "\t,{},{},0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,\t,{},0.00,保费\n",
                   i, OrderId(i), at, at, amount, amount, adapters::money::FormatDecimal(fee));
    sum += Amount(i);
  }
  fmt::format_to(std::back_inserter(csv),
                 "#-----------------------------------------业务明细列表结束------------------------------------\n"
                 "#交易合计：{}笔，商家实收共{}元，商家优惠共0.00元\n"
                 "#退款合计：0笔，商家实收退款共0.00元，商家优惠退款共0.00元\n"
                 "#导出时间：[2026年03月11日 05:46:49]\n",
                 lines, adapters::money::FormatDecimal(sum));
  return csv;
}

// The zip Alipay serves: the GBK detail CSV and its summary, GBK names.
std::string BillZip(std::int64_t lines) {
  auto gbk = adapters::alipay::Utf8ToGbk(DetailCsv(lines));
  auto detail_name = adapters::alipay::Utf8ToGbk("2088021109625633_20260310_业务明细.csv");
  auto summary_name = adapters::alipay::Utf8ToGbk("2088021109625633_20260310_业务明细(汇总).csv");
  EXPECT_TRUE(gbk && detail_name && summary_name);
  auto zip = adapters::archive::WriteZip({{std::move(detail_name).value(), std::move(gbk).value()},
                                          {std::move(summary_name).value(), "#summary\n"}});
  EXPECT_TRUE(zip);
  return zip ? std::move(zip).value() : std::string();
}

// Reads `stream` to its end: "" when it got there, else the first error.
std::string ReadToEnd(adapters::BillFileStream& stream) {
  for (;;) {
    auto more = stream.Next();
    if (!more) return more.error();
    if (!more.value()) return "";
  }
}

// Peak resident memory since the last reset, in KiB (VmHWM); -1 where unreadable.
long PeakRssKib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// Resets VmHWM to the current RSS (Linux >= 4.0); false where not permitted.
bool ResetPeakRss() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
  clear.flush();
  return static_cast<bool>(clear);
}

// 300,000 lines (about 60 MiB of CSV): read from a file holding one line at a time; the process's
// peak RSS grows by far less than the file.
TEST(AlipayBillStream, LargeBillIsReadInBoundedMemory) {
  constexpr std::int64_t kLines = 300000;
  const char* tmpdir = std::getenv("TMPDIR");
  std::string path = fmt::format("{}/paygate-alipay-XXXXXX", tmpdir ? tmpdir : "/tmp");
  const int fd = mkstemp(path.data());
  ASSERT_GE(fd, 0);
  unlink(path.c_str());
  std::size_t inflated = 0;
  {
    const std::size_t row = DetailCsv(2).size() - DetailCsv(1).size();  // UTF-8; GBK is smaller
    std::string zip = BillZip(kLines);
    ASSERT_FALSE(zip.empty());
    ASSERT_EQ(write(fd, zip.data(), zip.size()), static_cast<ssize_t>(zip.size()));
    inflated = row * kLines * 3 / 4;  // about: the GBK rows, their Chinese 2 bytes a character
  }
  ASSERT_GT(inflated, 40u << 20);
  const bool can_measure = ResetPeakRss();
  const long rss_before = PeakRssKib();

  std::int64_t records = 0, amount = 0;
  auto stream = adapters::BillFileStream::Open(
      "alipay", "bill.zip", fd, [&](adapters::bill::Record&& r) -> Result<void, std::string> {
        ++records;
        amount += r.amount_minor;
        return outcome::success();
      });
  ASSERT_TRUE(stream) << stream.error();
  ASSERT_EQ(ReadToEnd(*stream.value()), "");
  close(fd);
  EXPECT_EQ(records, kLines);
  EXPECT_EQ(stream.value()->totals().payment_count, kLines);
  EXPECT_EQ(stream.value()->totals().payment_amount_minor, amount);
  // One line at a time: a row is a few hundred bytes.
  EXPECT_LT(stream.value()->held_bytes_max(), 1024u);
  if (can_measure && rss_before > 0 && !testing::kUnderAddressSanitizer) {
    const long grown_kib = PeakRssKib() - rss_before;
    RecordProperty("peak_rss_growth_kib", std::to_string(grown_kib));
    EXPECT_LT(grown_kib, 16 * 1024) << "peak RSS grew by " << grown_kib << " KiB reading "
                                    << (inflated >> 20) << "+ MiB";
  }
}

// An open file holding `bytes` (unlinked); -1 on failure.
int TempFileWith(const std::string& bytes) {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string path = fmt::format("{}/paygate-bill-XXXXXX", tmpdir ? tmpdir : "/tmp");
  const int fd = mkstemp(path.data());
  if (fd < 0) return -1;
  unlink(path.c_str());
  if (write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
    close(fd);
    return -1;
  }
  return fd;
}

// UnionPay's zip of its INN file streams too: the settle date comes from the entry's name, and a
// zip without an INN entry, or a bare INN file under another name, is refused as the whole-file
// parser refuses them.
TEST(UnionPayBillStream, InnZipStreamsRecordByRecord) {
  std::string inn;
  std::int64_t sum = 0;
  for (int i = 0; i < 500; ++i) {
    auto line = adapters::unionpay::FormatInnRecord(
        {{"txnTime", "1126093015"},
         {"txnAmt", std::to_string(100 + i)},
         {"queryId", fmt::format("Q{:020}", i)},
         {"orderId", fmt::format("payZ{:08}Z1", i)},
         {"merCharge", "D1"},
         {"txnType", "01"},
         {"merId", "777290058165621"}},
        true);
    ASSERT_TRUE(line);
    inn += *line + "\r\n";
    sum += 100 + i;
  }
  auto zip = adapters::archive::WriteZip({{"INN26112688ZM_777290058165621", inn}});
  ASSERT_TRUE(zip);
  const int fd = TempFileWith(zip.value());
  ASSERT_GE(fd, 0);
  std::vector<adapters::bill::Record> records;
  auto stream = adapters::BillFileStream::Open(
      "unionpay", "download.zip", fd, [&](adapters::bill::Record&& r) -> Result<void, std::string> {
        records.push_back(std::move(r));
        return outcome::success();
      });
  ASSERT_TRUE(stream) << stream.error();
  ASSERT_EQ(ReadToEnd(*stream.value()), "");
  close(fd);
  ASSERT_EQ(records.size(), 500u);
  EXPECT_EQ(records[7].merchant_reference, "pay_00000007_1");
  EXPECT_EQ(records[7].occurred_at, "2026-11-26T09:30:15+08:00");
  EXPECT_EQ(stream.value()->totals().payment_amount_minor, sum);
  EXPECT_EQ(stream.value()->totals().fee_amount_minor, 500);

  auto other = adapters::archive::WriteZip({{"README.txt", "x"}});
  ASSERT_TRUE(other);
  const int other_fd = TempFileWith(other.value());
  auto refused = adapters::BillFileStream::Open(
      "unionpay", "download.zip", other_fd,
      [](adapters::bill::Record&&) -> Result<void, std::string> { return outcome::success(); });
  close(other_fd);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), "the archive holds no INN file");
  const int bare_fd = TempFileWith(inn);
  auto unnamed = adapters::BillFileStream::Open(
      "unionpay", "bill.txt", bare_fd,
      [](adapters::bill::Record&&) -> Result<void, std::string> { return outcome::success(); });
  close(bare_fd);
  ASSERT_FALSE(unnamed);
  EXPECT_NE(unnamed.error().find("not an INN file name"), std::string::npos);
}

class ReconStreamTest : public ::testing::Test {
 public:
  ReconStreamTest() : pool_(io_.get_executor(), MakePoolOptions(FreshDatabase(), 4)) {
    auto applied = RunUntilDone(io_, db::ApplyMigrations(pool_, In(30s)));
    EXPECT_TRUE(applied) << applied.error().message;
    ledger::PostgresLedgerOptions options;
    options.batcher.batch_wait_max_us = 200us;
    ledger_ = std::make_unique<ledger::PostgresLedger>(pool_, io_.get_executor(), options);
    reconciler_ = std::make_unique<Reconciler>(pool_, *ledger_, Options{});
  }
  ~ReconStreamTest() override {
    bool done = false;
    asio::co_spawn(io_, ledger_->Stop(), [&](std::exception_ptr) { done = true; });
    io_.restart();
    while (!done) io_.run_one();
  }

  Result<db::PgResult> Sql(std::string sql) {
    return RunUntilDone(io_, [this, sql]() -> asio::awaitable<Result<db::PgResult>> {
      auto lease = co_await pool_.Acquire(In(10s));
      if (!lease) co_return lease.error();
      co_return co_await lease.value()->ExecuteSimple(sql, In(60s));
    }());
  }

  // OrderId(0..n-1): succeeded orders and attempts of the day (Alipay's unless `provider` says
  // otherwise), as payments leaves them.
  void AddAttempts(std::int64_t n, std::string_view provider = "alipay") {
    const std::string ts = fmt::format("'{}T00:00:00+08:00'::timestamptz", kDay);
    auto r = Sql(fmt::format(
        "INSERT INTO payment_orders (id, principal, client_reference, policy_number, "
        "amount_minor, currency, method, provider, merchant_account, status, captured_minor, "
        "expires_at, created_at, updated_at) SELECT 'pay_' || lpad(i::text, 24, '0'), 'sales', "
        "'c' || i, 'POL', 100 + i % 9000, 'CNY', 'alipay_qr', '{2}', 'm1', 'succeeded', "
        "100 + i % 9000, {0} + interval '2 days', {0}, {0} + (i % 80000) * interval '1 second' "
        "FROM generate_series(0, {1} - 1) i; "
        "INSERT INTO payment_attempts (order_id, seq, provider, merchant_account, "
        "provider_reference, routing_reason, status, provider_transaction_id, created_at, "
        "updated_at) SELECT 'pay_' || lpad(i::text, 24, '0'), 1, '{2}', 'm1', "
        "'pay_' || lpad(i::text, 24, '0') || '_1', 'route', 'succeeded', "
        "'2026031022' || lpad(i::text, 18, '0'), {0}, {0} + (i % 80000) * interval '1 second' "
        "FROM generate_series(0, {1} - 1) i",
        ts, n, provider));
    ASSERT_TRUE(r) << r.error().message();
  }

  // Imports a WeChat Pay bill of kDay for account m1, spilling to `tmpdir` when given.
  RResult<Report> ImportWechat(const std::string& bill, const char* tmpdir = nullptr) {
    std::optional<ScopedTmpdir> spill_dir;
    if (tmpdir != nullptr) spill_dir.emplace(tmpdir);
    ImportRequest request{.provider = "wechatpay",
                          .merchant_account = "m1",
                          .bill_date = kDay,
                          .file_name = "tradebill.csv",
                          .principal = "finance-1"};
    return RunUntilDone(io_, reconciler_->Import(request, bill, In(120s)));
  }

 protected:
  asio::io_context io_;
  db::PgPool pool_;
  std::unique_ptr<ledger::PostgresLedger> ledger_;
  std::unique_ptr<Reconciler> reconciler_;
};

// Attempts made before 0012 carry no amount of their own: the import reads their order's.
TEST_F(ReconStreamTest, AttemptsWithoutTheirOwnAmountUseTheOrders) {
  AddAttempts(3);
  ASSERT_TRUE(Sql("UPDATE payment_attempts SET amount_minor = NULL, currency = NULL"));
  const std::string zip = BillZip(3);
  ImportRequest request{.provider = "alipay",
                        .merchant_account = "m1",
                        .bill_date = kDay,
                        .file_name = "alipay_bill.zip",
                        .principal = "finance-1"};
  auto report = RunUntilDone(io_, reconciler_->Import(request, zip, In(60s)));
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report.value().classes["matched"].count, 3);
  EXPECT_EQ(report.value().classes["matched"].our_amount_minor, Amount(0) + Amount(1) + Amount(2));
  EXPECT_EQ(report.value().classes.count("amount_mismatch"), 0u);
}

// A 20,000-line Alipay zip streamed in 64 KiB pieces: every line matches its attempt, the totals
// are the file's, and one attempt the bill lacks is missing_provider, as for WeChat bills.
TEST_F(ReconStreamTest, AlipayZipStreamsAndReconciles) {
  constexpr std::int64_t kLines = 20000;
  AddAttempts(kLines + 1);  // the last one is not in the bill
  const std::string zip = BillZip(kLines);
  ASSERT_FALSE(zip.empty());
  std::size_t at = 0;
  ChunkReader read = [&]() -> Result<std::string_view, Error> {
    const std::string_view piece = std::string_view(zip).substr(at, 64 * 1024);
    at += piece.size();
    return piece;
  };
  ImportRequest request{.provider = "alipay",
                        .merchant_account = "m1",
                        .bill_date = kDay,
                        .file_name = "alipay_bill.zip",
                        .principal = "finance-1"};
  auto report = RunUntilDone(
      io_, reconciler_->ImportStream(request, Sha256Hex(zip), read, {}, In(120s)));
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report.value().lines, kLines);
  EXPECT_EQ(report.value().classes["matched"].count, kLines);
  EXPECT_EQ(report.value().classes["missing_provider"].count, 1);
  EXPECT_EQ(report.value().classes["missing_provider"].our_amount_minor, Amount(kLines));
  std::int64_t sum = 0;
  for (std::int64_t i = 0; i < kLines; ++i) sum += Amount(i);
  EXPECT_EQ(report.value().payment_amount_minor, sum);

  // Attempts carry their order's amount and currency from the insert on (0012).
  EXPECT_EQ(Sql(fmt::format("SELECT count(*) FROM payment_attempts WHERE amount_minor = 100 + "
                            "substr(order_id, 5)::bigint % 9000 AND currency = 'CNY'"))
                .value()
                .GetInt64(0, 0)
                .value(),
            kLines + 1);

  // The same bytes in one piece (an API upload) are the same file: already imported.
  auto again = RunUntilDone(io_, reconciler_->Import(request, zip, In(120s)));
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(again.value().already_imported);

  // A zip without the detail CSV is refused as a bad file, nothing written.
  auto empty = adapters::archive::WriteZip({{"other.csv", "x\n"}});
  ASSERT_TRUE(empty);
  request.bill_date = "2026-03-11";
  auto refused = RunUntilDone(io_, reconciler_->Import(request, empty.value(), In(60s)));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, make_error_code(Errc::bad_file));
}

// Lines that match nothing while streaming wait until every item is known, then are looked up and
// matched by rule. A bill of 300,000 such lines (another account's bill, or a day our side lost)
// waits on disk, not in memory: the process's peak RSS grows by far less than the lines and
// their exception rows would take, and every line is still a missing_ours exception.
TEST_F(ReconStreamTest, UnmatchedLinesWaitOnDiskNotInMemory) {
  constexpr std::int64_t kLines = 300000;
  AddAttempts(1);  // one attempt of ours, which the bill's first line names
  std::string zip = BillZip(kLines);
  ASSERT_FALSE(zip.empty());
  ASSERT_TRUE(Sql("UPDATE payment_attempts SET provider_reference = 'elsewhere', "
                  "provider_transaction_id = ''"));
  ImportRequest request{.provider = "alipay",
                        .merchant_account = "m1",
                        .bill_date = kDay,
                        .file_name = "alipay_bill.zip",
                        .principal = "finance-1"};
  const bool can_measure = ResetPeakRss();
  const long rss_before = PeakRssKib();
  auto report = RunUntilDone(io_, reconciler_->Import(request, zip, In(300s)));
  const long grown_kib = PeakRssKib() - rss_before;
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report.value().lines, kLines);
  // The attempt matches its line by rule (same amount, time within the window); the rest are ours
  // to find.
  EXPECT_EQ(report.value().classes["matched"].count, 1);
  EXPECT_EQ(report.value().classes["missing_ours"].count, kLines - 1);
  EXPECT_EQ(Sql("SELECT count(*) FROM recon_exceptions WHERE class = 'missing_ours'")
                .value()
                .GetInt64(0, 0)
                .value(),
            kLines - 1);
  EXPECT_EQ(Sql("SELECT count(*), count(DISTINCT line_no), min(line_no), max(line_no) FROM "
                "recon_bill_items")
                .value()
                .GetInt64(0, 1)
                .value(),
            kLines);
  if (can_measure && rss_before > 0 && !testing::kUnderAddressSanitizer) {
    RecordProperty("peak_rss_growth_kib", std::to_string(grown_kib));
    // Held in memory, the lines alone took about 150 MB and their exception rows 60 MB more.
    EXPECT_LT(grown_kib, 80 * 1024) << "peak RSS grew by " << grown_kib << " KiB";
  }
}

// A gzip WeChat bill (what the scheduled download fetches, tar_type=GZIP) is inflated as its
// compressed pieces arrive and parsed record by record like a plain one: 20,000 lines in 4 KiB
// pieces all match, with the file's totals; a truncated one is a bad file and writes nothing.
TEST_F(ReconStreamTest, GzipWechatBillInflatesAsItStreams) {
  constexpr std::int64_t kLines = 20000;
  AddAttempts(kLines, "wechatpay");
  std::vector<adapters::wechatpay::TradeBillRow> rows;
  std::int64_t sum = 0;
  for (std::int64_t i = 0; i < kLines; ++i) {
    rows.push_back(WechatLine(i, Amount(i), Amount(i) * 6 / 1000));
    sum += Amount(i);
  }
  const std::string gz = adapters::archive::Gzip(adapters::wechatpay::FormatTradeBill(rows));
  ImportRequest request{.provider = "wechatpay",
                        .merchant_account = "m1",
                        .bill_date = kDay,
                        .file_name = "wechatpay-tradebill-2026-03-10.csv.gz",
                        .principal = "finance-1"};
  auto pieces = [](std::string_view file) {
    return [file, at = std::size_t{0}]() mutable -> Result<std::string_view, Error> {
      const std::string_view piece = file.substr(at, 4096);
      at += piece.size();
      return piece;
    };
  };

  const std::string truncated = gz.substr(0, gz.size() - 100);
  auto refused = RunUntilDone(io_, reconciler_->ImportStream(request, Sha256Hex(truncated),
                                                             pieces(truncated), {}, In(60s)));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, make_error_code(Errc::bad_file));
  EXPECT_EQ(Sql("SELECT count(*) FROM recon_imports").value().GetInt64(0, 0).value(), 0);

  auto report = RunUntilDone(
      io_, reconciler_->ImportStream(request, Sha256Hex(gz), pieces(gz), {}, In(120s)));
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report.value().lines, kLines);
  EXPECT_EQ(report.value().classes["matched"].count, kLines);
  EXPECT_EQ(report.value().payment_amount_minor, sum);
  EXPECT_EQ(report.value().classes.count("missing_provider"), 0u);
}

// Held lines that cannot wait on disk (no temporary directory) fail the import with the disk's
// error, not as a bad file, and nothing of it is written.
TEST_F(ReconStreamTest, HeldLinesThatCannotSpillFailTheImportCleanly) {
  constexpr std::int64_t kLines = 40000;  // more than one chunk of held lines
  std::vector<adapters::wechatpay::TradeBillRow> rows;
  for (std::int64_t i = 0; i < kLines; ++i) {
    rows.push_back(WechatLine(i, Amount(i), Amount(i) * 6 / 1000));
  }
  const std::string bill = adapters::wechatpay::FormatTradeBill(rows);
  auto refused = ImportWechat(bill, "/nonexistent/paygate-test");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, std::error_code(ENOENT, std::generic_category()));
  EXPECT_NE(refused.error().message.find("cannot spill held lines"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(Sql("SELECT count(*) FROM recon_imports").value().GetInt64(0, 0).value(), 0);
  EXPECT_EQ(Sql("SELECT count(*) FROM recon_bill_items").value().GetInt64(0, 0).value(), 0);

  // With its temporary directory back, the same bill imports: every line is ours to find.
  auto report = ImportWechat(bill);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report.value().classes["missing_ours"].count, kLines);
}

// Exception rows that cannot wait on disk fail the import the same way: 20,000 lines that match
// our attempts at another amount, each an amount_mismatch exception, written nowhere.
TEST_F(ReconStreamTest, ExceptionRowsThatCannotSpillFailTheImportCleanly) {
  constexpr std::int64_t kLines = 20000;
  AddAttempts(kLines, "wechatpay");
  std::vector<adapters::wechatpay::TradeBillRow> rows;
  for (std::int64_t i = 0; i < kLines; ++i) {
    rows.push_back(WechatLine(i, Amount(i) + 1, 0));
  }
  auto refused = ImportWechat(adapters::wechatpay::FormatTradeBill(rows),
                              "/nonexistent/paygate-test");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, std::error_code(ENOENT, std::generic_category()));
  EXPECT_NE(refused.error().message.find("cannot spill exception rows"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(Sql("SELECT count(*) FROM recon_imports").value().GetInt64(0, 0).value(), 0);
  EXPECT_EQ(Sql("SELECT count(*) FROM recon_exceptions").value().GetInt64(0, 0).value(), 0);
}

}  // namespace
}  // namespace paygate::recon
