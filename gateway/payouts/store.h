#pragma once

// The payouts' rows in PostgreSQL (ledger/migrations/0010_payouts.sql) and the transactions that
// change them. PayoutService (service.h) calls providers between these transactions; every
// function here is one transaction (on the pool) or one step inside a caller's (`...Tx`, on a
// connection). Lock order, the same everywhere: the payout row, then its attempt row, then the
// ledger. The ledger postings of a payout (DESIGN.md §4) are written here, in the transaction of
// the state change they belong to, with ids derived from the payout and attempt ids:
//   payout_submitted:<id>   Dr claims_expense / Cr claims_payable, when the payout is accepted;
//   payout_reserve:<ref>    pending Dr claims_payable / Cr provider_clearing:<provider>:<account>,
//                           when an attempt <ref> = "<id>_<seq>" is made (after approval);
//   payout_paid:<ref>       posts that reservation on the provider's success;
//   payout_void:<ref>       voids it when the attempt provably moved nothing;
//   payout_reversed:<id>    Dr claims_payable / Cr claims_expense when the payout ends unpaid.
// The clearing account refuses credits beyond its debits (credits_must_not_exceed_debits), so a
// reservation the account cannot fund is refused and the payout fails `insufficient_funds`.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "adapters/adapter.h"
#include "config/result.h"
#include "gateway/api/v1/payouts.pb.h"
#include "gateway/payments/store.h"
#include "ledger/db/pg_pool.h"

namespace paygate::payouts::store {

using payments::store::Books;
using payments::store::TxHook;

struct Payout {
  std::string id;
  std::string principal;
  std::string client_reference;
  std::string claim_number;
  std::string policy_number;
  std::string claimant_id;
  std::int64_t amount_minor = 0;
  std::string currency;
  std::string method;
  std::string reason;
  std::string account_type;
  std::string bank;
  std::string name_masked;
  std::string account_masked;
  std::string id_number_masked;
  std::string account_hash;
  std::string status;
  std::int32_t approvals_required = 0;
  std::int32_t approvals_count = 0;
  std::string risk_outcome;
  std::string risk_reasons;
  std::string failure_code;
  std::string failure_message;
  std::string manual_reason;
  std::int32_t attempt_count = 0;
  std::int64_t paid_minor = 0;
  std::int64_t created_at_us = 0;
  std::int64_t updated_at_us = 0;
};

// The encrypted beneficiary columns (keys::FieldCipher blobs); id_number may be absent.
struct SealedBeneficiary {
  std::string name;
  std::string account;
  std::optional<std::string> id_number;
};

struct Attempt {
  std::string payout_id;
  std::int32_t seq = 0;
  std::string provider;
  std::string merchant_account;
  std::string provider_reference;
  std::string routing_reason;
  std::string status;
  std::string provider_transaction_id;
  std::string decline_code;
  std::string detail;
  std::int32_t inquiries = 0;
  std::string last_inquiry;
  std::int64_t created_at_us = 0;
  std::int64_t updated_at_us = 0;
};

struct Approval {
  std::string principal;
  std::string decision;
  std::string note;
  std::int64_t created_at_us = 0;
};

// A payout with what the API shows about it.
struct PayoutView {
  Payout payout;
  std::vector<Attempt> attempts;
  std::vector<Approval> approvals;
};
api::v1::Payout ToApi(const PayoutView& view);

// "<payout id>_<seq>": the provider's idempotency key for the attempt (DESIGN.md §4).
std::string AttemptReference(std::string_view payout_id, std::int32_t seq);
std::optional<std::pair<std::string, std::int32_t>> ParseAttemptReference(std::string_view ref);

// One provider account a payout method is routed to.
struct Route {
  std::string provider;
  std::string merchant_account;
};

// What the transactions need to know of the configuration.
struct Policy {
  // The method's routes in order; attempt n uses routes[(n-1) % size].
  std::vector<Route> routes;
  // Attempts per payout (only provably unsent ones are followed by another).
  std::int32_t attempts_max = 3;
  // Seconds until the first status inquiry about a new attempt.
  std::int64_t first_inquiry_s = 60;
};

// The outcome of a step that may have started a new attempt, which the caller then sends.
struct Step {
  std::string effect;
  std::optional<Attempt> send;  // A new attempt in `sending`, committed with the step.
};

enum class InsertOutcome { kInserted, kExisting };
struct Inserted {
  InsertOutcome outcome = InsertOutcome::kInserted;
  Payout payout;
  std::optional<Attempt> send;
};
// Transaction: a new payout in `payout.status` with its sealed beneficiary, its submission posting
// (unless it failed at once) and its outbox event; a `processing` one (no approval needed) gets
// its first attempt and reservation as StartAttemptTx makes them. Or the payout the client
// reference already names. `also` runs in the same transaction after a new payout was inserted.
boost::asio::awaitable<Result<Inserted>> InsertPayout(db::PgPool& pool, const Books& books,
                                                      const Payout& payout,
                                                      const SealedBeneficiary& sealed,
                                                      const Policy& policy, db::Deadline deadline,
                                                      const TxHook& also = {});

// Reads. The principal's payout (nullopt also for another principal's), or any payout.
boost::asio::awaitable<Result<std::optional<PayoutView>>> FindPayout(
    db::PgPool& pool, const std::optional<std::string>& principal, const std::string& id,
    db::Deadline deadline);
boost::asio::awaitable<Result<std::optional<Payout>>> FindByClientReference(
    db::PgPool& pool, const std::string& principal, const std::string& client_reference,
    db::Deadline deadline);
boost::asio::awaitable<Result<SealedBeneficiary>> ReadSealed(db::PgPool& pool,
                                                             const std::string& id,
                                                             db::Deadline deadline);
boost::asio::awaitable<Result<std::optional<Attempt>>> FindAttempt(db::PgPool& pool,
                                                                   const std::string& payout_id,
                                                                   std::int32_t seq,
                                                                   db::Deadline deadline);
// The same inside the caller's transaction.
boost::asio::awaitable<Result<std::optional<Attempt>>> FindAttemptTx(db::PgConnection& conn,
                                                                     const std::string& payout_id,
                                                                     std::int32_t seq,
                                                                     db::Deadline deadline);

struct ListQuery {
  std::optional<std::string> principal;  // nullopt: every principal's (approvers, operators).
  std::vector<std::string> statuses;     // Empty: any.
  std::string claim_number;
  std::int32_t limit = 20;
  std::optional<std::pair<std::int64_t, std::string>> after;  // (created_at_us, id)
};
struct Page {
  std::vector<PayoutView> payouts;
  std::string next_cursor;
};
boost::asio::awaitable<Result<Page>> ListPayouts(db::PgPool& pool, const ListQuery& query,
                                                 db::Deadline deadline);
std::optional<std::pair<std::int64_t, std::string>> ParseCursor(std::string_view text);

// What the fraud rules need to know of earlier payouts: how many distinct claimants used the
// account (by its keyed hash), and when the claimant's account last changed.
struct AccountHistory {
  std::int64_t other_claimants = 0;
  std::optional<std::int64_t> claimant_previous_account_at_us;  // Last payout to another account.
  bool claimant_account_changed = false;
};
boost::asio::awaitable<Result<AccountHistory>> ReadAccountHistory(db::PgPool& pool,
                                                                  const std::string& principal,
                                                                  const std::string& claimant_id,
                                                                  const std::string& account_hash,
                                                                  db::Deadline deadline);

// Transaction: an approver's decision. Refusals are values, not errors.
enum class DecisionOutcome {
  kRecorded,  // Approval recorded; more approvals are needed.
  kStarted,   // Last approval: the payout is processing (see Step::send) or failed (funds).
  kRejected,  // Rejected: failed.
  kNotFound,
  kBySubmitter,     // The submitter never approves or rejects its own payout.
  kAlreadyDecided,  // This principal already decided on this payout.
  kNotAwaiting,     // Not waiting for approval (any more).
};
struct Decision {
  DecisionOutcome outcome = DecisionOutcome::kNotFound;
  Step step;
};
boost::asio::awaitable<Result<Decision>> Decide(db::PgPool& pool, const Books& books,
                                                const std::string& payout_id,
                                                const std::string& principal, bool approve,
                                                const std::string& note, const Policy& policy,
                                                db::Deadline deadline);

enum class CancelOutcome { kCancelled, kNotFound, kNotCancellable };
boost::asio::awaitable<Result<CancelOutcome>> Cancel(db::PgPool& pool, const Books& books,
                                                     const std::string& principal,
                                                     const std::string& payout_id,
                                                     db::Deadline deadline);

// Inside a transaction: records a provider answer about attempt `seq` (transition tables, ledger,
// outbox). When the attempt provably never reached the provider and attempts remain, the next
// attempt is made in the same transaction (Step::send). `policy` may be empty of routes when the
// caller cannot send (a callback): then no next attempt is made and the payout fails.
boost::asio::awaitable<Result<Step>> ApplyAttemptResultTx(
    db::PgConnection& conn, const Books& books, const std::string& payout_id, std::int32_t seq,
    const adapters::ProviderResult& result, const Policy& policy, db::Deadline deadline);
// Inside a transaction: notes an inquiry that did not settle the attempt (for the evidence).
boost::asio::awaitable<Result<void>> NoteInquiryTx(db::PgConnection& conn,
                                                   const std::string& payout_id, std::int32_t seq,
                                                   const std::string& said, db::Deadline deadline);
// Transaction: the inquiry schedule ran out: the payout goes to the manual-resolution queue with
// `reason` (its evidence), and the task stops (janitor_tasks.manual).
boost::asio::awaitable<Result<void>> MoveToManual(db::PgPool& pool, const Books& books,
                                                  const std::string& payout_id, std::int32_t seq,
                                                  const std::string& reason, db::Deadline deadline);

}  // namespace paygate::payouts::store
