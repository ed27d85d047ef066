#pragma once

// Ledger: the book of record (DESIGN.md §4). The interface is the contract; PostgresLedger
// (ledger/ledger/postgres_ledger.h) implements it.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "config/result.h"
#include "ledger/db/pg_connection.h"
#include "ledger/ledger/errc.h"
#include "ledger/ledger/types.h"

namespace paygate::ledger {

using Deadline = db::Deadline;
// Instants in the journal, microsecond precision as PostgreSQL stores them.
using Timestamp = std::chrono::sys_time<std::chrono::microseconds>;

enum class AccountResult { kOk, kExists, kExistsWithDifferentFields, kNameTaken, kInvalid };
std::string_view ToString(AccountResult result);

// One difference found by Verify(), for operators (`paygatectl ledger verify`).
struct VerifyDifference {
  enum class Kind {
    kAccountCounters,  // Stored counters differ from the sum of the journal.
    kBatchHash,        // A batch's stored hash differs from the hash of its rows.
    kBatchChainLink,   // A batch's prev_hash is not the previous batch's hash, or ids have gaps.
    kChainHead,        // The head does not name the last batch and its hash.
    kOrphanTransfers,  // Transfers whose batch is not in the chain.
    kAccountHistory,   // A history account's last history row differs from its counters.
  };
  Kind kind;
  std::string detail;  // E.g. "account 7 debits_posted stored 100 journal 101".
};

struct VerifyReport {
  std::int64_t accounts_checked = 0;
  std::int64_t batches_checked = 0;
  std::vector<VerifyDifference> differences;
  bool ok() const { return differences.empty(); }
};

struct StatementLine {
  TransferId transfer_id;
  Timestamp created_at;
  TransferKind kind = TransferKind::kSingle;
  std::int32_t reason_code = 0;
  std::string external_ref;
  Balance delta;            // This transfer's effect on the account's counters.
  Balance running_balance;  // The account's counters after this transfer.
};

// Position in a statement: lines strictly after (created_at, transfer_id). Default: the start.
struct StatementCursor {
  Timestamp created_at{};
  TransferId transfer_id;
};

struct StatementPage {
  std::vector<StatementLine> lines;
  std::optional<StatementCursor> next;  // Set when more lines may follow.
};

struct TrialBalanceLine {
  AccountId account_id;
  AccountType type = AccountType::kAsset;
  std::string name;
  Balance balance;
};

struct TrialBalance {
  std::string currency;
  std::vector<TrialBalanceLine> lines;  // By account id.
  Balance total;  // Sums over all lines; debits equal credits (posted and pending) in a sound book.
};

// Thread-safety: every member may be called concurrently from any coroutine on any executor.
// Errors are std::error_code from ledger::Errc or db::Errc; per-transfer business outcomes
// ("exceeds_credits") are TransferResult values, never errors.
class Ledger {
 public:
  virtual ~Ledger() = default;

  // Creates accounts, one result per account. Idempotent: an existing id with the same fields
  // answers kExists, with different fields kExistsWithDifferentFields; a name already used in the
  // currency by another id answers kNameTaken. Counters start at zero.
  virtual boost::asio::awaitable<Result<std::vector<AccountResult>>> CreateAccounts(
      std::vector<Account> accounts, Deadline deadline) = 0;

  // Posts transfers, one result per transfer, in order; each transfer sees the effects of the ones
  // before it. Guarantees:
  //  * Atomic per transfer, and per linked chain (all-or-nothing, one journal entry); a chain never
  //    spans requests (a request ending in linked = true answers kLinkedEventChainOpen).
  //  * Idempotent by id: a retry with the same fields answers kExists and writes nothing; different
  //    fields answer kExistsWithDifferentFields; an id that failed for a business reason answers
  //    kIdAlreadyFailed forever after.
  //  * Durable when the result is returned (the batch is committed).
  // On an error (database down, deadline, overloaded) the outcome is unknown for database errors at
  // commit and "nothing written" otherwise; retrying the same request is always safe.
  virtual boost::asio::awaitable<Result<std::vector<TransferResult>>> PostTransfers(
      std::vector<Transfer> transfers, Deadline deadline) = 0;

  // Writes an expire_pending transfer (id "expire:<pending id>") for up to `limit` pending
  // transfers whose timeout has passed and that are still unresolved; returns how many expired. For
  // the janitor; safe to run concurrently with posting and with itself.
  virtual boost::asio::awaitable<Result<std::int64_t>> ExpirePendingTransfers(
      std::int32_t limit, Deadline deadline) = 0;

  // Closes an account to new postings (single, pending and post_pending transfers naming it are
  // refused with kAccountClosed; voids and expiries of its reservations still apply), or reopens
  // it. Idempotent. Errors: Errc::not_found.
  virtual boost::asio::awaitable<Result<void>> SetAccountClosed(AccountId account, bool closed,
                                                                Deadline deadline) = 0;

  // The account's counters now, or as of `at`: the effect of every transfer with
  // created_at <= at. An account with the `history` flag answers from its stored history (one
  // index look-up); others are recomputed from the journal. Errors: Errc::not_found.
  virtual boost::asio::awaitable<Result<Balance>> GetBalance(AccountId account,
                                                             std::optional<Timestamp> at,
                                                             Deadline deadline) = 0;

  // Journal lines of one account in (created_at, id) order after `cursor`, at most `limit`
  // (1..1000) lines, each with the running counters. With the `history` flag a page costs its own
  // lines; without it the running counters are recomputed from the start of the account's journal.
  // Errors: Errc::not_found.
  virtual boost::asio::awaitable<Result<StatementPage>> GetStatement(AccountId account,
                                                                     StatementCursor cursor,
                                                                     std::int32_t limit,
                                                                     Deadline deadline) = 0;

  // Every account of `currency` with its counters as of `at` (now when empty), and the totals.
  virtual boost::asio::awaitable<Result<TrialBalance>> GetTrialBalance(std::string currency,
                                                                       std::optional<Timestamp> at,
                                                                       Deadline deadline) = 0;

  // Recomputes every account's counters from the journal and every batch hash of the chain, on one
  // consistent snapshot, and reports every difference. Read-only.
  virtual boost::asio::awaitable<Result<VerifyReport>> Verify(Deadline deadline) = 0;
};

}  // namespace paygate::ledger
