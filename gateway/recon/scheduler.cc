#include "gateway/recon/scheduler.h"

#include <ctime>

#include <fmt/format.h>

#include "adapters/alipay/alipay_adapter.h"
#include "adapters/unionpay/unionpay_adapter.h"
#include "adapters/wechatpay/wechatpay_adapter.h"
#include "config/logging.h"
#include "gateway/edge/asio_fwd.h"
#include "gateway/payments/service.h"
#include "ledger/db/params.h"

namespace paygate::gateway::recon {

namespace asio = edge::asio;

namespace {

constexpr std::string_view kPrincipal = "scheduler";

std::string DateOf(std::int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

}  // namespace

std::vector<std::string> DueBillDates(std::chrono::system_clock::time_point now,
                                      std::int64_t utc_offset_s, int download_after_minutes,
                                      int lookback_days) {
  const std::int64_t local =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count() +
      utc_offset_s;
  const std::int64_t today = local - ((local % 86400) + 86400) % 86400;  // local midnight
  const bool published_today = local - today >= download_after_minutes * 60;
  std::vector<std::string> out;
  for (int back = lookback_days; back >= 1; --back) {
    // Yesterday's bill only once it is published; older ones are.
    if (back == 1 && !published_today) continue;
    out.push_back(DateOf(today - back * 86400));
  }
  return out;
}

ScheduleOptions ScheduleOptionsFromConfig(const config::v1::Recon& section) {
  ScheduleOptions options;
  for (const auto& a : section.accounts()) {
    if (!a.download()) continue;
    ScheduledAccount account;
    account.provider = a.provider();
    account.merchant_account = a.merchant_account();
    const std::string& at = a.download_after();
    if (at.size() == 5) {
      account.download_after_minutes = ((at[0] - '0') * 10 + (at[1] - '0')) * 60 +
                                       (at[3] - '0') * 10 + (at[4] - '0');
    }
    options.accounts.push_back(std::move(account));
  }
  if (section.download_check_interval_s() != 0) {
    options.interval = std::chrono::seconds(section.download_check_interval_s());
  }
  if (section.download_lookback_days() != 0) {
    options.lookback_days = static_cast<int>(section.download_lookback_days());
  }
  if (auto offset = ParseUtcOffset(section.bill_utc_offset())) options.utc_offset_s = *offset;
  return options;
}

namespace {

// Free functions, not capturing lambdas: GCC 12 mishandles captures of coroutine lambdas.
asio::awaitable<Result<FetchedBill, std::string>> FetchFromAdapter(
    std::shared_ptr<payments::AdapterRegistry> adapters, std::string provider,
    std::string merchant_account, std::string bill_date) {
  adapters::Adapter* adapter = adapters->Find(provider, merchant_account);
  if (adapter == nullptr) co_return std::string("no adapter for the account");
  if (auto* wx = dynamic_cast<adapters::wechatpay::WechatPayAdapter*>(adapter)) {
    // Gzip'd, as the import streams it: the inflated file is never held (ledger/recon).
    auto bill = co_await wx->DownloadTradeBillGzip(bill_date, "ALL");
    if (!bill) co_return bill.error();
    co_return FetchedBill{fmt::format("wechatpay-tradebill-{}.csv.gz", bill_date),
                          std::move(bill.value().raw)};
  }
  if (auto* ali = dynamic_cast<adapters::alipay::AlipayAdapter*>(adapter)) {
    auto bill = co_await ali->DownloadBill(bill_date);
    if (!bill) co_return bill.error().message;
    co_return FetchedBill{fmt::format("alipay-trade-{}.zip", bill_date),
                          std::move(bill.value().raw)};
  }
  if (auto* up = dynamic_cast<adapters::unionpay::UnionPayAdapter*>(adapter)) {
    std::string settle = bill_date.substr(0, 4) + bill_date.substr(5, 2) + bill_date.substr(8, 2);
    auto bill = co_await up->DownloadBill(std::move(settle));
    if (!bill) co_return bill.error();
    co_return FetchedBill{bill.value().file_name, std::move(bill.value().archive)};
  }
  co_return fmt::format("provider {} has no bill download", provider);
}

}  // namespace

BillFetcher AdapterBillFetcher(std::shared_ptr<payments::AdapterRegistry> adapters) {
  return [adapters](std::string provider, std::string merchant_account, std::string bill_date) {
    return FetchFromAdapter(adapters, std::move(provider), std::move(merchant_account),
                            std::move(bill_date));
  };
}

struct BillScheduler::State {
  State(asio::any_io_executor executor, db::PgPool& p, std::shared_ptr<Reconcilers> r,
        BillFetcher f, ScheduleOptions o)
      : strand(asio::make_strand(executor)),
        timer(strand),
        pool(p),
        reconcilers(std::move(r)),
        fetch(std::move(f)),
        options(std::move(o)) {}

  asio::strand<asio::any_io_executor> strand;
  asio::steady_timer timer;
  db::PgPool& pool;
  std::shared_ptr<Reconcilers> reconcilers;
  BillFetcher fetch;
  ScheduleOptions options;
  std::atomic<bool> stopping{false};
  std::atomic<bool> finished{true};

  std::chrono::system_clock::time_point Now() const {
    return options.clock ? options.clock() : std::chrono::system_clock::now();
  }

  asio::awaitable<Result<bool, std::string>> Imported(const ScheduledAccount& account,
                                                      const std::string& date) {
    const db::Deadline deadline = db::Clock::now() + std::chrono::seconds(10);
    auto lease = co_await pool.Acquire(deadline);
    if (!lease) co_return lease.error().message();
    auto rows = co_await lease.value()->Execute(
        "SELECT 1 FROM recon_imports WHERE provider = $1 AND merchant_account = $2 AND "
        "bill_date = $3::date LIMIT 1",
        db::Params().Add(account.provider).Add(account.merchant_account).Add(date), deadline);
    if (!rows) co_return rows.error().message();
    co_return rows.value().rows() > 0;
  }

  asio::awaitable<ScheduleRun> Round() {
    ScheduleRun run;
    auto logger = log::Get("recon");
    for (const ScheduledAccount& account : options.accounts) {
      for (const std::string& date : DueBillDates(Now(), options.utc_offset_s,
                                                  account.download_after_minutes,
                                                  options.lookback_days)) {
        if (stopping) co_return run;
        auto imported = co_await Imported(account, date);
        if (!imported) {
          logger->warn("bill {}/{} {}: {}", account.provider, account.merchant_account, date,
                       imported.error());
          ++run.failed;
          continue;
        }
        if (imported.value()) {
          ++run.skipped;
          continue;
        }
        auto bill = co_await fetch(account.provider, account.merchant_account, date);
        if (!bill) {
          // Routine before the provider publishes, or on a day without traffic: tried again
          // next round.
          logger->info("bill {}/{} {} not fetched: {}", account.provider,
                       account.merchant_account, date, bill.error());
          ++run.failed;
          continue;
        }
        paygate::recon::ImportRequest request;
        request.provider = account.provider;
        request.merchant_account = account.merchant_account;
        request.bill_date = date;
        request.file_name = bill.value().file_name;
        request.principal = std::string(kPrincipal);
        const db::Deadline deadline = db::Clock::now() + options.import_timeout;
        auto& reconciler = reconcilers->For(account.provider, account.merchant_account);
        auto report =
            co_await reconciler.Import(std::move(request), bill.value().bytes, deadline);
        if (!report) {
          logger->error("bill {}/{} {} refused: {}", account.provider, account.merchant_account,
                        date, report.error().message);
          ++run.failed;
          continue;
        }
        logger->info("bill {}/{} {} imported as reconciliation {} ({} lines, drift {})",
                     account.provider, account.merchant_account, date, report.value().import_id,
                     report.value().lines, report.value().drift_minor);
        if (report.value().already_imported) {
          ++run.skipped;
        } else {
          ++run.imported;
        }
      }
    }
    co_return run;
  }

  static asio::awaitable<void> Loop(std::shared_ptr<State> self) {
    while (!self->stopping) {
      co_await self->Round();
      if (self->stopping) break;
      self->timer.expires_after(self->options.interval);
      boost::system::error_code ec;
      co_await self->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    self->finished = true;
  }
};

BillScheduler::BillScheduler(asio::any_io_executor executor, db::PgPool& pool,
                             std::shared_ptr<Reconcilers> reconcilers, BillFetcher fetch,
                             ScheduleOptions options)
    : state_(std::make_shared<State>(std::move(executor), pool, std::move(reconcilers),
                                     std::move(fetch), std::move(options))) {}

BillScheduler::~BillScheduler() = default;

void BillScheduler::Start() {
  if (state_->options.accounts.empty()) return;
  state_->finished = false;
  asio::co_spawn(state_->strand, State::Loop(state_), asio::detached);
}

asio::awaitable<void> BillScheduler::Stop() {
  state_->stopping = true;
  asio::post(state_->strand, [state = state_] { state->timer.cancel(); });
  // The import in progress finishes (bounded by its deadline); as the janitor does.
  asio::steady_timer poll(co_await asio::this_coro::executor);
  while (!state_->finished.load()) {
    poll.expires_after(std::chrono::milliseconds(10));
    boost::system::error_code ec;
    co_await poll.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

asio::awaitable<ScheduleRun> BillScheduler::RunOnce() { co_return co_await state_->Round(); }

}  // namespace paygate::gateway::recon
