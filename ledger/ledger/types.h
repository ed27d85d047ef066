#pragma once

// Value types of the double-entry ledger (DESIGN.md §4): accounts, transfers and per-transfer
// results. Money is int64 minor units of the account's currency.
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

namespace paygate::ledger {

// Caller-chosen account id (> 0). Accounts are locked in ascending id order.
struct AccountId {
  std::int64_t value = 0;
  friend auto operator<=>(const AccountId&, const AccountId&) = default;
};

// Caller-chosen transfer id: 1..120 characters of [A-Za-z0-9_.:@/-] (the database allows 128 so
// that "expire:" + a pending id fits). Makes posting idempotent.
struct TransferId {
  std::string value;
  friend auto operator<=>(const TransferId&, const TransferId&) = default;
};

enum class AccountType { kAsset, kLiability, kIncome, kExpense, kEquity };

struct AccountFlags {
  // Debits (pending + posted) may never exceed posted credits, e.g. claims_payable (a liability)
  // must not pay out more than is owed.
  bool debits_must_not_exceed_credits = false;
  // Credits (pending + posted) may never exceed posted debits, e.g. a clearing account (an asset)
  // must not pay out money it has not received.
  bool credits_must_not_exceed_debits = false;
  // A closed account takes no new postings; reservations on it can still be voided or expire.
  bool closed = false;
  // Keep per-transfer balance history (reads at an instant work for every account regardless).
  bool history = false;
};

struct Account {
  AccountId id;
  AccountType type = AccountType::kAsset;
  std::string currency;   // ISO 4217, three upper-case letters.
  std::int32_t code = 0;  // Chart-of-accounts category chosen by the caller, >= 0.
  std::string name;       // Unique per currency, e.g. "premiums_received".
  AccountFlags flags;
};

struct Balance {
  std::int64_t debits_pending = 0;
  std::int64_t debits_posted = 0;
  std::int64_t credits_pending = 0;
  std::int64_t credits_posted = 0;
  friend bool operator==(const Balance&, const Balance&) = default;
};

enum class TransferKind {
  kSingle,         // Posted at once.
  kPending,        // Reserves the amount (pending counters) until posted, voided or expired.
  kPostPending,    // Posts all or part of `pending_id`; the rest of the reservation is released.
  kVoidPending,    // Releases `pending_id` without posting.
  kExpirePending,  // Releases a timed-out `pending_id`; written by ExpirePendingTransfers().
};

struct Transfer {
  TransferId id;
  // For post/void/expire, 0 means "the pending transfer's".
  AccountId debit_account_id;
  AccountId credit_account_id;
  // > 0 minor units. For post, 0 means the full pending amount; for void/expire it must be 0 or
  // the pending amount.
  std::int64_t amount = 0;
  // Must equal both accounts' currency; empty means the pending transfer's for post/void/expire.
  std::string currency;
  TransferKind kind = TransferKind::kSingle;
  // Links this transfer to the next one in the same request: the chain commits all-or-nothing and
  // forms one journal entry. The last transfer of a chain has linked = false.
  bool linked = false;
  TransferId pending_id;         // Only for post/void/expire.
  std::int32_t timeout_s = 0;    // Only for pending: expires after this many seconds; 0 = never.
  std::int32_t reason_code = 0;  // Why the money moved (premium, refund, payout, fee...), >= 0.
  std::string external_ref;      // Order, refund, payout or recon item id; UTF-8, <= 256 bytes.
};

// One result per submitted transfer. Everything but kOk and kExists means nothing was written for
// that transfer.
enum class TransferResult {
  kOk,
  kExists,                     // Same id, same fields: already posted (idempotent retry).
  kExistsWithDifferentFields,  // Same id, different fields.
  kIdAlreadyFailed,            // The id failed for a business reason before; choose a new id.
  kIdInvalid,
  kAmountMustBePositive,
  kCurrencyInvalid,
  kExternalRefInvalid,  // Longer than 256 bytes, not UTF-8, or holds a NUL byte.
  kReasonCodeInvalid,
  kTimeoutInvalid,        // Negative, or set on a non-pending transfer.
  kPendingIdMustBeEmpty,  // pending_id set on a single or pending transfer.
  kPendingIdRequired,
  kAccountsMustBeDifferent,
  kAccountNotFound,
  kCurrencyMismatch,  // Transfer and account currencies differ.
  kAccountClosed,
  kExceedsCredits,  // Would break debits_must_not_exceed_credits.
  kExceedsDebits,   // Would break credits_must_not_exceed_debits.
  kOverflow,        // A counter would exceed int64.
  kPendingNotFound,
  kPendingNotPending,  // pending_id names a transfer that is not a pending one.
  kPendingAlreadyPosted,
  kPendingAlreadyVoided,
  kPendingAlreadyExpired,
  kPendingExpired,            // Its timeout passed; it can only expire now.
  kPendingNotExpired,         // Expire requested before the timeout.
  kPendingDifferentAccounts,  // Post/void names other accounts or currency than the pending.
  kAmountExceedsPending,
  kVoidAmountMustMatchPending,
  kLinkedEventFailed,     // Another transfer of the linked chain failed.
  kLinkedEventChainOpen,  // The request ended with linked = true.
};

std::string_view ToString(TransferResult result);
std::string_view ToString(TransferKind kind);
std::string_view ToString(AccountType type);

// Whether an id that got `result` is recorded as failed (so it cannot be reused silently): every
// business rejection of a well-formed id, but not idempotency answers and not linked_event_failed
// (the transfer itself was fine).
bool IsRecordedFailure(TransferResult result);

bool IsValidTransferId(std::string_view id);
bool IsValidCurrency(std::string_view currency);
// At most 256 bytes of UTF-8 without NUL (PostgreSQL text cannot hold NUL; invalid UTF-8 would fail
// the whole batch at the server instead of this one transfer).
bool IsValidExternalRef(std::string_view ref);

}  // namespace paygate::ledger
