#include "gateway/recon/ctl.h"

#include <openssl/evp.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "gateway/ctl_database.h"
#include "gateway/recon/reconcilers.h"
#include "gateway/recon/report.h"
#include "ledger/ledger/postgres_ledger.h"

namespace paygate::gateway::recon {
namespace {

namespace asio = edge::asio;
using namespace std::chrono_literals;

constexpr auto kCommandTime = 60min;
// Read size of the streamed file: large enough for COPY to stay busy, small enough to bound memory.
constexpr std::size_t kChunkBytes = 1 << 20;

std::string Principal() {
  const char* user = std::getenv("USER");
  return std::string("paygatectl:") + (user != nullptr && *user != '\0' ? user : "unknown");
}

// SHA-256 of a file read in chunks (the engine's idempotency key), or nullopt when unreadable.
std::optional<std::string> FileSha256(const std::string& path, std::uint64_t* size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<char> buffer(kChunkBytes);
  *size = 0;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto got = in.gcount();
    if (got > 0) {
      EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<std::size_t>(got));
      *size += static_cast<std::uint64_t>(got);
    }
  }
  if (in.bad()) return std::nullopt;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &length);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    fmt::format_to(std::back_inserter(hex), "{:02x}", digest[i]);
  }
  return hex;
}

// "[#########           ]  45%  12.3/27.1 MiB", redrawn in place, only when the percentage moves.
class ProgressBar {
 public:
  ProgressBar(std::ostream& err, std::uint64_t total, bool enabled)
      : err_(err), total_(total), enabled_(enabled) {}
  void Update(std::uint64_t done) {
    if (!enabled_) return;
    const int percent = total_ == 0 ? 100 : static_cast<int>(done * 100 / total_);
    if (percent == last_) return;
    last_ = percent;
    constexpr int kWidth = 30;
    const int filled = percent * kWidth / 100;
    err_ << fmt::format("\r[{}{}] {:>3}%  {:.1f}/{:.1f} MiB", std::string(filled, '#'),
                        std::string(kWidth - filled, ' '), percent, done / 1048576.0,
                        total_ / 1048576.0)
         << std::flush;
  }
  void Finish() {
    if (enabled_ && last_ >= 0) err_ << "\n" << std::flush;
  }

 private:
  std::ostream& err_;
  std::uint64_t total_;
  bool enabled_;
  int last_ = -1;
};

bool IsDate(const std::string& text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return false;
  for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (text[i] < '0' || text[i] > '9') return false;
  }
  return true;
}

// "129.22", "-5", "0.5" -> minor units (two decimals, as CNY); nullopt when malformed.
std::optional<std::int64_t> ParseMajor(const std::string& text) {
  std::size_t i = 0;
  const bool negative = !text.empty() && text[0] == '-';
  if (negative) ++i;
  std::int64_t units = 0;
  std::size_t digits = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, ++digits) {
    if (units > 1'000'000'000'000'000) return std::nullopt;
    units = units * 10 + (text[i] - '0');
  }
  if (digits == 0) return std::nullopt;
  std::int64_t cents = 0;
  if (i < text.size()) {
    if (text[i] != '.') return std::nullopt;
    ++i;
    const std::size_t decimals = text.size() - i;
    if (decimals == 0 || decimals > 2) return std::nullopt;
    for (std::size_t k = 0; k < 2; ++k, ++i) {
      const char c = i < text.size() ? text[i] : '0';
      if (c < '0' || c > '9') return std::nullopt;
      cents = cents * 10 + (c - '0');
    }
  }
  const std::int64_t minor = units * 100 + cents;
  return negative ? -minor : minor;
}

}  // namespace

int RunReconSettle(const config::v1::Config& config, const ReconSettleArgs& args,
                   std::ostream& out, std::ostream& err) {
  bool configured = false;
  for (const auto& p : config.providers()) {
    configured |= p.provider() == args.provider && p.merchant_account() == args.merchant_account;
  }
  if (!configured) {
    err << fmt::format("paygatectl recon settle: no providers[] entry {}/{} in the configuration\n",
                       args.provider, args.merchant_account);
    return 2;
  }
  const auto amount = ParseMajor(args.amount);
  if (!amount) {
    err << "paygatectl recon settle: --amount must be a decimal amount such as 129.22\n";
    return 2;
  }
  if (args.references.empty() == args.bill_date.empty()) {
    err << "paygatectl recon settle: name the covered references or --date, not both\n";
    return 2;
  }
  return WithDatabase(
      config, "recon settle", [&](db::PgPool& pool, asio::io_context& ioc) -> asio::awaitable<int> {
        ledger::PostgresLedger ledger(pool, ioc.get_executor(), {});
        Reconcilers reconcilers(config.recon(), pool, ledger);
        paygate::recon::SettlementRequest request;
        request.provider = args.provider;
        request.merchant_account = args.merchant_account;
        request.provider_reference = args.provider_reference;
        request.value_date = args.value_date;
        request.currency = args.currency;
        request.amount_minor = *amount;
        request.references = args.references;
        request.bill_date = args.bill_date;
        request.principal = Principal();
        const db::Deadline deadline = db::Clock::now() + kCommandTime;
        auto settled = co_await reconcilers.Settle(std::move(request), deadline);
        co_await ledger.Stop();
        if (!settled) {
          err << "paygatectl recon settle: " << settled.error().message << "\n";
          const std::error_code ec = settled.error().code;
          co_return ec == paygate::recon::Errc::invalid_argument ||
                          ec == paygate::recon::Errc::not_found ||
                          ec == paygate::recon::Errc::already_settled
                      ? 2
                      : 1;
        }
        const paygate::recon::Settlement& s = settled.value();
        if (s.already_settled) {
          out << fmt::format("already recorded as settlement {}: nothing changed\n", s.id);
        }
        out << fmt::format(
            "settlement {} {}/{} {} value {}: {} lines, expected {:.2f}, received {:.2f} {}, "
            "difference {:.2f}\n",
            s.id, s.provider, s.merchant_account, s.provider_reference, s.value_date, s.lines,
            s.expected_minor / 100.0, s.amount_minor / 100.0, s.currency, s.delta_minor / 100.0);
        if (!s.transfer_id.empty()) out << fmt::format("posted {}\n", s.transfer_id);
        if (s.exception_id != 0) {
          out << fmt::format("settlement_mismatch exception {} is open\n", s.exception_id);
        }
        co_return 0;
      });
}

int RunReconImport(const config::v1::Config& config, const ReconImportArgs& args,
                   std::ostream& out, std::ostream& err) {
  bool configured = false;
  for (const auto& p : config.providers()) {
    configured |= p.provider() == args.provider && p.merchant_account() == args.merchant_account;
  }
  if (!configured) {
    err << fmt::format("paygatectl recon import: no providers[] entry {}/{} in the configuration\n",
                       args.provider, args.merchant_account);
    return 2;
  }
  if (!IsDate(args.bill_date)) {
    err << "paygatectl recon import: --date must be YYYY-MM-DD\n";
    return 2;
  }
  std::uint64_t size = 0;
  const auto sha256 = FileSha256(args.file, &size);
  if (!sha256) {
    err << fmt::format("paygatectl recon import: cannot read {}\n", args.file);
    return 2;
  }
  return WithDatabase(
      config, "recon import", [&](db::PgPool& pool, asio::io_context& ioc) -> asio::awaitable<int> {
        ledger::PostgresLedger ledger(pool, ioc.get_executor(), {});
        Reconcilers reconcilers(config.recon(), pool, ledger);
        auto in = std::make_shared<std::ifstream>(args.file, std::ios::binary);
        auto buffer = std::make_shared<std::vector<char>>(kChunkBytes);
        paygate::recon::ChunkReader read =
            [in, buffer]() -> Result<std::string_view, paygate::recon::Error> {
          if (!*in) return std::string_view();
          in->read(buffer->data(), static_cast<std::streamsize>(buffer->size()));
          if (in->bad()) {
            return paygate::recon::Error(make_error_code(paygate::recon::Errc::bad_file),
                                         "the file could not be read");
          }
          return std::string_view(buffer->data(), static_cast<std::size_t>(in->gcount()));
        };
        auto bar = std::make_shared<ProgressBar>(err, size, args.progress);
        paygate::recon::Progress progress = [bar](std::uint64_t bytes) { bar->Update(bytes); };
        paygate::recon::ImportRequest request;
        request.provider = args.provider;
        request.merchant_account = args.merchant_account;
        request.bill_date = args.bill_date;
        const auto slash = args.file.find_last_of('/');
        request.file_name = slash == std::string::npos ? args.file : args.file.substr(slash + 1);
        request.principal = Principal();
        auto& reconciler = reconcilers.For(args.provider, args.merchant_account);
        const db::Deadline deadline = db::Clock::now() + kCommandTime;
        std::string hash = *sha256;
        auto report = co_await reconciler.ImportStream(std::move(request), std::move(hash),
                                                       std::move(read), std::move(progress),
                                                       deadline);
        bar->Finish();
        co_await ledger.Stop();
        if (!report) {
          err << "paygatectl recon import: " << report.error().message << "\n";
          co_return report.error().code == paygate::recon::Errc::bad_file ||
                          report.error().code == paygate::recon::Errc::invalid_argument
                      ? 2
                      : 1;
        }
        if (report.value().already_imported) {
          out << fmt::format("already imported as reconciliation {}: nothing changed\n",
                             report.value().import_id);
        }
        api::v1::ReconciliationList list;
        list.set_bill_date(args.bill_date);
        *list.add_reconciliations() = ToProto(report.value());
        out << FormatReportTable(list);
        co_return 0;
      });
}

int RunReconReport(const config::v1::Config& config, const std::string& bill_date, bool csv,
                   std::ostream& out, std::ostream& err) {
  if (!IsDate(bill_date)) {
    err << "paygatectl recon report: DATE must be YYYY-MM-DD\n";
    return 2;
  }
  return WithDatabase(
      config, "recon report", [&](db::PgPool& pool, asio::io_context& ioc) -> asio::awaitable<int> {
        ledger::PostgresLedger ledger(pool, ioc.get_executor(), {});
        Reconcilers reconcilers(config.recon(), pool, ledger);
        const db::Deadline deadline = db::Clock::now() + kCommandTime;
        std::string date = bill_date;
        auto reports = co_await reconcilers.Default().ReportsForDate(std::move(date), deadline);
        co_await ledger.Stop();
        if (!reports) {
          err << "paygatectl recon report: " << reports.error().message << "\n";
          co_return reports.error().code == paygate::recon::Errc::invalid_argument ? 2 : 1;
        }
        api::v1::ReconciliationList list;
        list.set_bill_date(bill_date);
        for (const auto& r : reports.value()) *list.add_reconciliations() = ToProto(r);
        out << (csv ? FormatReportCsv(list) : FormatReportTable(list));
        co_return 0;
      });
}

}  // namespace paygate::gateway::recon
