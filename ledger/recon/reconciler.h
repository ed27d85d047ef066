#pragma once

// Reconciliation (issue 8, DESIGN.md §3): a provider's daily bill against our payment attempts and
// refunds, with the ledger effects and the exceptions finance resolves. Schema:
// ledger/migrations/0009_recon.sql.
//
// One import is one PostgreSQL transaction: our items around the bill day come out by one binary
// COPY into a compact in-memory index (ledger/recon/items.h, about 200 bytes an item), then the
// bill's lines go in by binary COPY as they are parsed (bills are read a record at a time; only
// lines no item matched are held until the end), each with its match result;
// what did not agree becomes a named exception; fees, the settlement to the bank and tolerated
// differences are posted to the ledger; the clearing account's balance is reconciled against the
// bill's day-end figures and the drift recorded. Either all of it commits or none of it.
//
// Matching, in this order, each internal item and each bill line at most once (the unique index
// on recon_bill_items enforces it across imports):
//   1. our provider reference (attempt out_trade_no / refund out_refund_no);
//   2. the provider's transaction id (refund id for refunds);
//   3. rules: same currency, amount within the tolerance, time within the window (closest first).
// Classes: matched; missing_ours (bill only); missing_provider (ours only); amount_mismatch;
// status_mismatch (most urgent when the provider says paid: a status inquiry is scheduled in the
// payments janitor's table); timing (one side only, within the cut-off window before the day's
// end: expected to appear on the other side next day, and resolved automatically when it does);
// duplicate (a line naming an item another line already took).
//
// Thread-safety: every method may run concurrently; imports of one (provider, account, day) are
// serialised by an advisory lock, and idempotent per file hash.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "config/result.h"
#include "ledger/db/errc.h"
#include "ledger/db/pg_pool.h"
#include "ledger/ledger/postgres_ledger.h"
#include "ledger/recon/errc.h"

namespace paygate::recon {

using db::Deadline;
using Error = db::DetailedError;
template <class T>
using RResult = Result<T, Error>;

struct Options {
  // Items on one side only whose time falls in the last cutoff_window of the bill day are timing
  // differences, not errors (config: recon.cutoff_window_s; default 300 s).
  std::chrono::seconds cutoff_window{300};
  // Rule matching accepts amounts this far apart, and matches by reference whose amounts differ
  // by at most this are matched, the difference posted to suspense (recon.amount_tolerance_minor).
  std::int64_t amount_tolerance_minor = 0;
  // Rule matching: the two sides' times at most this far apart (recon.rule_window_s); 0 disables
  // rule matching.
  std::chrono::seconds rule_window{600};
  // Settlements go to bank:<settlement_bank> (recon.settlement_bank; default "settlement").
  std::string settlement_bank = "settlement";
  // Whether an import posts the day's net to the bank itself (recon.accounts[].settle_on_import).
  // false: the lines wait for the provider's settlement line (settlement.h SettleNet) and the
  // balance reconciliation counts them as explained until then.
  bool settle_on_import = true;
  // The providers' bill day is a calendar day at this UTC offset (China: +8 h).
  std::chrono::seconds bill_utc_offset{8 * 3600};
};

struct ImportRequest {
  std::string provider;          // "wechatpay", "alipay", "unionpay"
  std::string merchant_account;  // our name of the account (providers[].merchant_account)
  std::string bill_date;         // "YYYY-MM-DD", the provider's calendar day
  std::string file_name;         // as uploaded; UnionPay's INN name carries its settle date
  std::string principal;         // who imports (audited)
};

// One class's lines and amounts (minor units; ours and the provider's side).
struct ClassTotals {
  std::int64_t count = 0;
  std::int64_t our_amount_minor = 0;
  std::int64_t their_amount_minor = 0;
};

struct Report {
  std::int64_t import_id = 0;
  std::string provider;
  std::string merchant_account;
  std::string bill_date;
  std::int32_t version = 0;
  std::string state;           // current, superseded
  bool already_imported = false;  // this exact file was imported before: nothing changed
  std::int64_t lines = 0;
  std::string currency;
  std::int64_t payment_amount_minor = 0;
  std::int64_t refund_amount_minor = 0;
  std::int64_t fee_amount_minor = 0;
  std::int64_t clearing_balance_minor = 0;
  // What open exceptions, later traffic and lines awaiting their settlement line account for.
  std::int64_t explained_minor = 0;
  std::int64_t drift_minor = 0;      // unexplained: clearing minus explained
  std::int64_t diff_added = 0, diff_removed = 0, diff_changed = 0;
  std::map<std::string, ClassTotals> classes;  // by class name
};

struct Exception {
  std::int64_t id = 0;
  std::int64_t import_id = 0;
  std::string klass;
  std::string status;
  std::int32_t priority = 0;
  std::string provider, merchant_account, bill_date;
  std::string our_kind, our_id, reference;
  std::optional<std::int64_t> our_amount_minor, their_amount_minor;
  std::int64_t delta_minor = 0;
  std::string currency, detail, assignee, resolution, adjustment_transfer_id;
};

struct ExceptionFilter {
  std::string klass, status, provider, bill_date, assignee;  // empty: any
  std::int64_t after_id = 0;  // paging: ids above this
  std::int32_t limit = 100;   // 1..1000
};

// Reads the bill in pieces: each call returns the next piece, an empty view at the end. A piece
// stays valid until the next call.
using ChunkReader = std::function<Result<std::string_view, Error>()>;
// Called with bytes read so far (progress bars).
using Progress = std::function<void(std::uint64_t bytes)>;

class Reconciler {
 public:
  Reconciler(db::PgPool& pool, ledger::PostgresLedger& ledger, Options options);

  // Imports and reconciles a whole file held in memory (an API upload).
  boost::asio::awaitable<RResult<Report>> Import(ImportRequest request, std::string_view bytes,
                                                 Deadline deadline);
  // The same, streaming: `sha256_hex` is the file's hash (the caller reads the file twice rather
  // than hold it), `read` yields its bytes. WeChat bills stream record by record, a gzip one
  // inflated as it arrives; Alipay's and UnionPay's (zip archives, whose directory is at their end)
  // are spooled to an unlinked temporary file in TMPDIR and then inflated and parsed a piece at a
  // time. Lines nothing matched while streaming, and exception rows, wait in temporary files too.
  boost::asio::awaitable<RResult<Report>> ImportStream(ImportRequest request,
                                                       std::string sha256_hex, ChunkReader read,
                                                       Progress progress, Deadline deadline);

  // Counts and amounts per class of one import. Errors: recon::Errc::not_found.
  boost::asio::awaitable<RResult<Report>> GetReport(std::int64_t import_id, Deadline deadline);
  // The current imports of a day, every provider and account.
  boost::asio::awaitable<RResult<std::vector<Report>>> ReportsForDate(std::string bill_date,
                                                                      Deadline deadline);

  // The exceptions workflow; every change is audited with `principal`.
  boost::asio::awaitable<RResult<std::vector<Exception>>> ListExceptions(ExceptionFilter filter,
                                                                         Deadline deadline);
  boost::asio::awaitable<RResult<Exception>> Assign(std::int64_t id, std::string assignee,
                                                    std::string principal, Deadline deadline);
  boost::asio::awaitable<RResult<Exception>> Comment(std::int64_t id, std::string body,
                                                     std::string principal, Deadline deadline);
  // Resolves with a reason. With `post_adjustment`, the exception's delta goes to suspense
  // (transfer "recon:adj:<id>", in the same transaction), leaving the clearing account as if the
  // two sides had agreed. Errors: not_found, invalid_state (already resolved or superseded).
  boost::asio::awaitable<RResult<Exception>> Resolve(std::int64_t id, std::string reason,
                                                     bool post_adjustment, std::string principal,
                                                     Deadline deadline);

  const Options& options() const { return options_; }

 private:
  struct Run;
  boost::asio::awaitable<RResult<Report>> ImportRecords(
      ImportRequest request, std::string sha256_hex,
      std::function<Result<bool, Error>(Run&)> feed, Deadline deadline);

  db::PgPool& pool_;
  ledger::PostgresLedger& ledger_;
  Options options_;
};

// SHA-256 of bytes, lower-case hex.
std::string Sha256Hex(std::string_view bytes);

}  // namespace paygate::recon
