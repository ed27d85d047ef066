#pragma once

// The daily bill download (issue 8): for each provider account of recon.accounts with download
// set, once the provider has published the previous day's bill (download_after, in the bill's
// time zone), the daemon fetches it through the account's adapter and imports it as principal
// "scheduler". A day that has any import already (the schedule's or finance's upload) is never
// fetched again, so a second run imports nothing new and never overrides a file finance
// corrected; the engine's per-file idempotency covers a crash between import and the next check.
// Days missed while the daemon was down are caught up, download_lookback_days back.
//
// Bills: WeChat Pay's trade bill (type ALL, gzip in transit, SHA-1 checked), Alipay's trade bill
// zip, UnionPay's reconciliation file (zip holding the INN file).
#include <utility>  // Before Asio (DESIGN.md §2).

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "config/paygate_config.pb.h"
#include "config/result.h"
#include "gateway/recon/reconcilers.h"

namespace paygate::payments {
class AdapterRegistry;
}

namespace paygate::gateway::recon {

struct FetchedBill {
  std::string file_name;
  std::string bytes;
};

// Fetches one provider account's bill of one day ("YYYY-MM-DD"). An error names why (the
// provider has no bill for the day, the download failed); never secrets.
using BillFetcher = std::function<boost::asio::awaitable<Result<FetchedBill, std::string>>(
    std::string provider, std::string merchant_account, std::string bill_date)>;

// Through the configured accounts' adapters (their bill download methods).
BillFetcher AdapterBillFetcher(std::shared_ptr<payments::AdapterRegistry> adapters);

struct ScheduledAccount {
  std::string provider;
  std::string merchant_account;
  int download_after_minutes = 600;  // minutes after midnight, bill time zone
};

struct ScheduleOptions {
  std::vector<ScheduledAccount> accounts;
  std::chrono::seconds interval{300};
  int lookback_days = 3;
  std::int64_t utc_offset_s = 8 * 3600;
  std::chrono::seconds import_timeout{600};
  // Wall clock; empty: the system clock (tests move it).
  std::function<std::chrono::system_clock::time_point()> clock;
};

// The accounts with download set, and the section's schedule.
ScheduleOptions ScheduleOptionsFromConfig(const config::v1::Recon& section);

// The bill days due at `now`: the last `lookback_days` days before today (bill time zone), each
// once today's time of day has passed download_after (the bill of D is published on D+1).
// Oldest first.
std::vector<std::string> DueBillDates(std::chrono::system_clock::time_point now,
                                      std::int64_t utc_offset_s, int download_after_minutes,
                                      int lookback_days);

struct ScheduleRun {
  int imported = 0;  // new imports
  int skipped = 0;   // days already imported
  int failed = 0;    // fetch or import failed (retried next round)
};

class BillScheduler {
 public:
  BillScheduler(boost::asio::any_io_executor executor, db::PgPool& pool,
                std::shared_ptr<Reconcilers> reconcilers, BillFetcher fetch,
                ScheduleOptions options);
  ~BillScheduler();

  // Runs RunOnce every interval until Stop (nothing when no account downloads).
  void Start();
  boost::asio::awaitable<void> Stop();
  // One round over every account and due day.
  boost::asio::awaitable<ScheduleRun> RunOnce();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace paygate::gateway::recon
