#include "gateway/payouts/store.h"

#include <charconv>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include "config/logging.h"
#include "gateway/attempt_reference.h"
#include "gateway/payouts/state.h"
#include "gateway/utc_time.h"
#include "ledger/db/params.h"
#include "ledger/db/pg_result.h"
#include "ledger/db/transaction.h"
#include "ledger/ledger/chart.h"
#include "ledger/ledger/try.h"

namespace paygate::payouts::store {

namespace asio = boost::asio;
using db::Params;
using db::PgConnection;
using db::PgResult;
using db::Statement;

namespace {

#define PAYGATE_PAYOUT_COLUMNS                                                                \
  "id, principal, client_reference, claim_number, policy_number, claimant_id, amount_minor, " \
  "currency, method, reason, beneficiary_account_type, beneficiary_bank, "                    \
  "beneficiary_name_masked, beneficiary_account_masked, beneficiary_id_number_masked, "       \
  "beneficiary_account_hash, status, approvals_required, approvals_count, risk_outcome, "     \
  "risk_reasons, failure_code, failure_message, manual_reason, attempt_count, paid_minor, "   \
  "(extract(epoch FROM created_at) * 1000000)::bigint, "                                      \
  "(extract(epoch FROM updated_at) * 1000000)::bigint"

#define PAYGATE_ATTEMPT_COLUMNS                                                              \
  "payout_id, seq, provider, merchant_account, provider_reference, routing_reason, status, " \
  "provider_transaction_id, decline_code, detail, inquiries, last_inquiry, "                 \
  "(extract(epoch FROM created_at) * 1000000)::bigint, "                                     \
  "(extract(epoch FROM updated_at) * 1000000)::bigint"

#define PAYGATE_US(n) "timestamptz 'epoch' + $" #n "::bigint * interval '1 microsecond'"

constexpr Statement kInsertPayout{
    "payouts_insert",
    "INSERT INTO payouts (id, principal, client_reference, claim_number, policy_number, "
    "claimant_id, amount_minor, currency, method, reason, beneficiary_account_type, "
    "beneficiary_bank, beneficiary_name_enc, beneficiary_account_enc, beneficiary_id_number_enc, "
    "beneficiary_name_masked, beneficiary_account_masked, beneficiary_id_number_masked, "
    "beneficiary_account_hash, status, approvals_required, risk_outcome, risk_reasons, "
    "failure_code, failure_message) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
    "$13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25) "
    "ON CONFLICT (principal, client_reference) DO NOTHING RETURNING " PAYGATE_PAYOUT_COLUMNS};

constexpr Statement kSelectByKey{"payouts_select_by_key",
                                 "SELECT " PAYGATE_PAYOUT_COLUMNS
                                 " FROM payouts WHERE principal = $1 AND client_reference = $2"};

constexpr Statement kSelect{"payouts_select",
                            "SELECT " PAYGATE_PAYOUT_COLUMNS
                            " FROM payouts WHERE id = $1 AND ($2::text IS NULL OR principal = $2)"};

constexpr Statement kLock{
    "payouts_lock", "SELECT " PAYGATE_PAYOUT_COLUMNS " FROM payouts WHERE id = $1 FOR UPDATE"};

constexpr Statement kSelectSealed{
    "payouts_select_sealed",
    "SELECT beneficiary_name_enc, beneficiary_account_enc, beneficiary_id_number_enc "
    "FROM payouts WHERE id = $1"};

constexpr Statement kUpdatePayout{
    "payouts_update",
    "UPDATE payouts SET status = $2, failure_code = $3, failure_message = $4, paid_minor = $5, "
    "manual_reason = $6, updated_at = now() WHERE id = $1 RETURNING " PAYGATE_PAYOUT_COLUMNS};

constexpr Statement kStartAttempt{
    "payouts_start_attempt",
    "UPDATE payouts SET status = 'processing', attempt_count = $2, updated_at = now() "
    "WHERE id = $1 RETURNING " PAYGATE_PAYOUT_COLUMNS};

constexpr Statement kCountApproval{
    "payouts_count_approval",
    "UPDATE payouts SET approvals_count = approvals_count + 1, updated_at = now() WHERE id = $1 "
    "RETURNING " PAYGATE_PAYOUT_COLUMNS};

constexpr Statement kInsertAttempt{
    "payouts_insert_attempt",
    "INSERT INTO payout_attempts (payout_id, seq, provider, merchant_account, provider_reference, "
    "routing_reason, status) VALUES ($1, $2, $3, $4, $5, $6, 'sending') "
    "RETURNING " PAYGATE_ATTEMPT_COLUMNS};

constexpr Statement kSelectAttempts{"payouts_select_attempts",
                                    "SELECT " PAYGATE_ATTEMPT_COLUMNS
                                    " FROM payout_attempts WHERE payout_id = $1 ORDER BY seq"};

constexpr Statement kSelectAttempt{"payouts_select_attempt",
                                   "SELECT " PAYGATE_ATTEMPT_COLUMNS
                                   " FROM payout_attempts WHERE payout_id = $1 AND seq = $2"};

constexpr Statement kLockAttempt{"payouts_lock_attempt",
                                 "SELECT " PAYGATE_ATTEMPT_COLUMNS
                                 " FROM payout_attempts WHERE payout_id = $1 AND seq = $2 "
                                 "FOR UPDATE"};

constexpr Statement kUpdateAttempt{
    "payouts_update_attempt",
    "UPDATE payout_attempts SET status = $3, "
    "provider_transaction_id = CASE WHEN $4 = '' THEN provider_transaction_id ELSE $4 END, "
    "decline_code = $5, detail = $6, updated_at = now() WHERE payout_id = $1 AND seq = $2"};

constexpr Statement kNoteInquiry{
    "payouts_note_inquiry",
    "UPDATE payout_attempts SET inquiries = inquiries + 1, last_inquiry = $3, updated_at = now() "
    "WHERE payout_id = $1 AND seq = $2"};

constexpr Statement kSelectApprovals{
    "payouts_select_approvals",
    "SELECT principal, decision, note, (extract(epoch FROM created_at) * 1000000)::bigint "
    "FROM payout_approvals WHERE payout_id = $1 ORDER BY created_at, principal"};

constexpr Statement kInsertApproval{
    "payouts_insert_approval",
    "INSERT INTO payout_approvals (payout_id, principal, decision, note) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (payout_id, principal) DO NOTHING"};

constexpr Statement kList{
    "payouts_list",
    "SELECT " PAYGATE_PAYOUT_COLUMNS " FROM payouts WHERE ($1::text IS NULL OR principal = $1) "
    "AND (cardinality($2::text[]) = 0 OR status = ANY ($2::text[])) "
    "AND ($3 = '' OR claim_number = $3) "
    "AND ($4::bigint IS NULL OR (created_at, id) < (" PAYGATE_US(4) ", $5)) "
    "ORDER BY created_at DESC, id DESC LIMIT $6"};

// Distinct other claimants on the account (all clients: a shared account is a red flag whoever
// submitted the earlier payouts), and the claimant's latest payout to another account.
constexpr Statement kAccountHistory{
    "payouts_account_history",
    "SELECT (SELECT count(DISTINCT claimant_id) FROM payouts WHERE $3 <> '' "
    "        AND beneficiary_account_hash = $3 AND claimant_id <> $2 AND claimant_id <> ''), "
    "       (SELECT (extract(epoch FROM max(created_at)) * 1000000)::bigint FROM payouts "
    "        WHERE $2 <> '' AND principal = $1 AND claimant_id = $2 "
    "        AND beneficiary_account_hash <> $3), "
    "       EXISTS (SELECT 1 FROM payouts WHERE $2 <> '' AND principal = $1 AND claimant_id = $2)"};

constexpr Statement kScheduleTask{"payouts_schedule_task",
                                  "INSERT INTO janitor_tasks (kind, object_id, due_at) "
                                  "VALUES ($1, $2, now() + $3::bigint * interval '1 second') "
                                  "ON CONFLICT (kind, object_id) DO NOTHING"};

constexpr Statement kDeleteTask{"payouts_delete_task",
                                "DELETE FROM janitor_tasks WHERE kind = $1 AND object_id = $2"};

constexpr Statement kManualTask{
    "payouts_manual_task",
    "UPDATE janitor_tasks SET manual = true, last_error = $2 WHERE kind = $1 AND object_id = $3"};

constexpr Statement kInsertEvent{
    "payouts_insert_event",
    "WITH e AS (INSERT INTO outbox_events (id, principal, type, object_id, payload) "
    "VALUES ($1, $2, $3, $4, $5) RETURNING id) "
    "INSERT INTO event_deliveries (event_id, state, give_up_at) "
    "SELECT id, 'pending', now() + $6::bigint * interval '1 second' FROM e"};

constexpr char kInquireTask[] = "payout_inquire";
constexpr std::int32_t kReasonPayout = 3;

class RowReader {
 public:
  RowReader(const PgResult& result, int row) : result_(result), row_(row) {}
  Result<void> Text(std::string* out) {
    LEDGER_TRY(auto value, result_.GetText(row_, column_++));
    out->assign(value);
    return outcome::success();
  }
  Result<void> Int64(std::int64_t* out) {
    LEDGER_TRY(*out, result_.GetInt64(row_, column_++));
    return outcome::success();
  }
  Result<void> Int32(std::int32_t* out) {
    LEDGER_TRY(auto value, result_.GetInt64(row_, column_++));
    *out = static_cast<std::int32_t>(value);
    return outcome::success();
  }

 private:
  const PgResult& result_;
  const int row_;
  int column_ = 0;
};

Result<Payout> ParsePayout(const PgResult& r, int row) {
  Payout p;
  RowReader in(r, row);
  for (std::string* field : {&p.id, &p.principal, &p.client_reference, &p.claim_number,
                             &p.policy_number, &p.claimant_id}) {
    BOOST_OUTCOME_TRYV(in.Text(field));
  }
  BOOST_OUTCOME_TRYV(in.Int64(&p.amount_minor));
  for (std::string* field :
       {&p.currency, &p.method, &p.reason, &p.account_type, &p.bank, &p.name_masked,
        &p.account_masked, &p.id_number_masked, &p.account_hash, &p.status}) {
    BOOST_OUTCOME_TRYV(in.Text(field));
  }
  BOOST_OUTCOME_TRYV(in.Int32(&p.approvals_required));
  BOOST_OUTCOME_TRYV(in.Int32(&p.approvals_count));
  for (std::string* field :
       {&p.risk_outcome, &p.risk_reasons, &p.failure_code, &p.failure_message, &p.manual_reason}) {
    BOOST_OUTCOME_TRYV(in.Text(field));
  }
  BOOST_OUTCOME_TRYV(in.Int32(&p.attempt_count));
  BOOST_OUTCOME_TRYV(in.Int64(&p.paid_minor));
  BOOST_OUTCOME_TRYV(in.Int64(&p.created_at_us));
  BOOST_OUTCOME_TRYV(in.Int64(&p.updated_at_us));
  return p;
}

Result<Attempt> ParseAttempt(const PgResult& r, int row) {
  Attempt a;
  RowReader in(r, row);
  BOOST_OUTCOME_TRYV(in.Text(&a.payout_id));
  BOOST_OUTCOME_TRYV(in.Int32(&a.seq));
  for (std::string* field :
       {&a.provider, &a.merchant_account, &a.provider_reference, &a.routing_reason, &a.status,
        &a.provider_transaction_id, &a.decline_code, &a.detail}) {
    BOOST_OUTCOME_TRYV(in.Text(field));
  }
  BOOST_OUTCOME_TRYV(in.Int32(&a.inquiries));
  BOOST_OUTCOME_TRYV(in.Text(&a.last_inquiry));
  BOOST_OUTCOME_TRYV(in.Int64(&a.created_at_us));
  BOOST_OUTCOME_TRYV(in.Int64(&a.updated_at_us));
  return a;
}

std::string FormatUs(std::int64_t us) {
  return gateway::FormatUtc(ledger::Timestamp(std::chrono::microseconds(us)));
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

std::string ClearingAccount(const Attempt& attempt) {
  return "provider_clearing:" + attempt.provider + ":" + attempt.merchant_account;
}

asio::awaitable<Result<PayoutView>> ViewTx(PgConnection& conn, Payout payout,
                                           db::Deadline deadline) {
  PayoutView view;
  LEDGER_CO_TRY(auto attempts,
                co_await conn.Execute(kSelectAttempts, Params().Add(payout.id), deadline));
  for (int row = 0; row < attempts.rows(); ++row) {
    LEDGER_CO_TRY(auto attempt, ParseAttempt(attempts, row));
    view.attempts.push_back(std::move(attempt));
  }
  LEDGER_CO_TRY(auto approvals,
                co_await conn.Execute(kSelectApprovals, Params().Add(payout.id), deadline));
  for (int row = 0; row < approvals.rows(); ++row) {
    Approval a;
    RowReader in(approvals, row);
    LEDGER_CO_TRYV(in.Text(&a.principal));
    LEDGER_CO_TRYV(in.Text(&a.decision));
    LEDGER_CO_TRYV(in.Text(&a.note));
    LEDGER_CO_TRYV(in.Int64(&a.created_at_us));
    view.approvals.push_back(std::move(a));
  }
  view.payout = std::move(payout);
  co_return view;
}

// The outbox row of a state change, in the change's transaction (DESIGN.md §3). The payload is
// the API's masked view: no beneficiary plaintext ever reaches an event.
asio::awaitable<Result<void>> WriteEventTx(PgConnection& conn, const Books& books,
                                           const Payout& payout, db::Deadline deadline) {
  LEDGER_CO_TRY(auto view, co_await ViewTx(conn, payout, deadline));
  api::v1::Event event;
  event.set_id(payments::store::NewId("evt_"));
  event.set_type("payout." + payout.status);
  event.set_created_at(gateway::FormatUtc(
      std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now())));
  *event.mutable_payout() = ToApi(view);
  LEDGER_CO_TRYV(
      co_await conn.Execute(kInsertEvent,
                            Params()
                                .Add(event.id())
                                .Add(payout.principal)
                                .Add(event.type())
                                .Add(payout.id)
                                .Add(ToJson(event))
                                .Add(static_cast<std::int64_t>(books.event_retry_window.count())),
                            deadline));
  co_return outcome::success();
}

// Posts one transfer inside the caller's transaction and returns the ledger's answer; anything but
// ok/exists/exceeds is a broken invariant (the chart is created at start-up): the transaction must
// not commit.
asio::awaitable<Result<ledger::TransferResult>> PostTx(PgConnection& conn, const Books& books,
                                                       ledger::Transfer transfer,
                                                       db::Deadline deadline) {
  const std::string id = transfer.id.value;
  std::vector<ledger::Transfer> transfers;
  transfers.push_back(std::move(transfer));
  LEDGER_CO_TRY(auto results, co_await books.ledger.PostTransfersInTransaction(
                                  conn, std::move(transfers), deadline));
  const auto result = results.empty() ? ledger::TransferResult::kLinkedEventFailed : results[0];
  if (result == ledger::TransferResult::kOk || result == ledger::TransferResult::kExists ||
      result == ledger::TransferResult::kExceedsCredits ||
      result == ledger::TransferResult::kExceedsDebits) {
    co_return result;
  }
  log::Get("payouts")->critical("ledger refused transfer {}: {}", id, ledger::ToString(result));
  co_return make_error_code(ledger::Errc::inconsistent_state);
}

ledger::Transfer Single(std::string id, const Payout& p, std::string_view debit,
                        std::string_view credit) {
  ledger::Transfer t;
  t.id.value = std::move(id);
  t.debit_account_id = ledger::AccountIdFor(p.currency, debit);
  t.credit_account_id = ledger::AccountIdFor(p.currency, credit);
  t.amount = p.amount_minor;
  t.currency = p.currency;
  t.reason_code = kReasonPayout;
  t.external_ref = p.id;
  return t;
}

asio::awaitable<Result<void>> MustPost(PgConnection& conn, const Books& books, ledger::Transfer t,
                                       db::Deadline deadline) {
  const std::string id = t.id.value;
  LEDGER_CO_TRY(auto result, co_await PostTx(conn, books, std::move(t), deadline));
  if (result != ledger::TransferResult::kOk && result != ledger::TransferResult::kExists) {
    log::Get("payouts")->critical("ledger refused transfer {}: {}", id, ledger::ToString(result));
    co_return make_error_code(ledger::Errc::inconsistent_state);
  }
  co_return outcome::success();
}

// Releases attempt `ref`'s reservation: posted (paid) or voided (nothing moved).
asio::awaitable<Result<void>> SettleReservationTx(PgConnection& conn, const Books& books,
                                                  const Payout& payout, const std::string& ref,
                                                  bool paid, db::Deadline deadline) {
  ledger::Transfer t;
  t.id.value = (paid ? "payout_paid:" : "payout_void:") + ref;
  t.kind = paid ? ledger::TransferKind::kPostPending : ledger::TransferKind::kVoidPending;
  t.pending_id.value = "payout_reserve:" + ref;
  t.amount = paid ? payout.amount_minor : 0;
  t.reason_code = kReasonPayout;
  t.external_ref = payout.id;
  co_return co_await MustPost(conn, books, std::move(t), deadline);
}

// Ends a payout unpaid: status, the reversal of its submission, the event.
asio::awaitable<Result<Payout>> FailTx(PgConnection& conn, const Books& books, const Payout& payout,
                                       PayoutStatus to, std::string code, std::string message,
                                       db::Deadline deadline) {
  LEDGER_CO_TRY(auto updated, co_await conn.Execute(kUpdatePayout,
                                                    Params()
                                                        .Add(payout.id)
                                                        .Add(ToString(to))
                                                        .Add(code)
                                                        .Add(message)
                                                        .Add(std::int64_t{0})
                                                        .Add(payout.manual_reason),
                                                    deadline));
  LEDGER_CO_TRY(Payout after, ParsePayout(updated, 0));
  LEDGER_CO_TRYV(co_await MustPost(
      conn, books,
      Single("payout_reversed:" + payout.id, payout, "claims_payable", "claims_expense"),
      deadline));
  LEDGER_CO_TRYV(co_await WriteEventTx(conn, books, after, deadline));
  co_return after;
}

// Makes the payout's next attempt: the attempt row (`sending`), the reservation of the amount on
// the route's clearing account, the inquiry that backs up the provider's answer. A reservation the
// clearing account cannot fund fails the payout instead (insufficient_funds): nothing is sent.
asio::awaitable<Result<Step>> StartAttemptTx(PgConnection& conn, const Books& books,
                                             const Payout& payout, const Policy& policy,
                                             db::Deadline deadline) {
  Step step;
  const std::int32_t seq = payout.attempt_count + 1;
  if (policy.routes.empty()) {
    LEDGER_CO_TRYV(co_await FailTx(conn, books, payout, PayoutStatus::kFailed, "no_route",
                                   "No provider account serves this payout method.", deadline));
    step.effect = "failed: no route";
    co_return step;
  }
  const Route& route = policy.routes[static_cast<std::size_t>(seq - 1) % policy.routes.size()];
  const std::string ref = AttemptReference(payout.id, seq);
  Attempt probe;
  probe.provider = route.provider;
  probe.merchant_account = route.merchant_account;

  ledger::Transfer reserve =
      Single("payout_reserve:" + ref, payout, "claims_payable", ClearingAccount(probe));
  reserve.kind = ledger::TransferKind::kPending;
  LEDGER_CO_TRY(auto reserved, co_await PostTx(conn, books, std::move(reserve), deadline));
  if (reserved == ledger::TransferResult::kExceedsCredits ||
      reserved == ledger::TransferResult::kExceedsDebits) {
    log::Get("payouts")->warn("payout {}: {} cannot fund {} {}", payout.id, ClearingAccount(probe),
                              payout.amount_minor, payout.currency);
    LEDGER_CO_TRYV(co_await FailTx(
        conn, books, payout, PayoutStatus::kFailed, "insufficient_funds",
        "The payout account is not funded for this amount; nothing was sent.", deadline));
    step.effect = "failed: insufficient funds";
    co_return step;
  }

  LEDGER_CO_TRY(auto started,
                co_await conn.Execute(kStartAttempt, Params().Add(payout.id).Add(seq), deadline));
  LEDGER_CO_TRY(Payout after, ParsePayout(started, 0));
  const std::string routing =
      seq == 1 ? fmt::format("route 1 of {} for method {}", policy.routes.size(), payout.method)
               : fmt::format("route {} of {} for method {}: attempt {} was never sent",
                             (seq - 1) % policy.routes.size() + 1, policy.routes.size(),
                             payout.method, seq - 1);
  LEDGER_CO_TRY(auto inserted, co_await conn.Execute(kInsertAttempt,
                                                     Params()
                                                         .Add(payout.id)
                                                         .Add(seq)
                                                         .Add(route.provider)
                                                         .Add(route.merchant_account)
                                                         .Add(ref)
                                                         .Add(routing),
                                                     deadline));
  LEDGER_CO_TRY(Attempt attempt, ParseAttempt(inserted, 0));
  LEDGER_CO_TRYV(co_await conn.Execute(
      kScheduleTask, Params().Add(kInquireTask).Add(ref).Add(policy.first_inquiry_s), deadline));
  if (seq == 1) LEDGER_CO_TRYV(co_await WriteEventTx(conn, books, after, deadline));
  step.effect =
      fmt::format("attempt {} sending via {}/{}", seq, route.provider, route.merchant_account);
  step.send = std::move(attempt);
  co_return step;
}

}  // namespace

// ---- Conversions ----

std::string AttemptReference(std::string_view payout_id, std::int32_t seq) {
  return attempt_reference::Make(payout_id, seq);
}

std::optional<std::pair<std::string, std::int32_t>> ParseAttemptReference(std::string_view ref) {
  return attempt_reference::Parse(ref, "po_");
}

api::v1::Payout ToApi(const PayoutView& view) {
  const Payout& p = view.payout;
  api::v1::Payout out;
  out.set_id(p.id);
  out.set_client_reference(p.client_reference);
  out.set_claim_number(p.claim_number);
  out.set_policy_number(p.policy_number);
  out.set_claimant_id(p.claimant_id);
  api::v1::Beneficiary* b = out.mutable_beneficiary();
  b->set_name(p.name_masked);
  b->set_account_type(p.account_type);
  b->set_account(p.account_masked);
  b->set_bank(p.bank);
  b->set_id_number(p.id_number_masked);
  out.set_amount_minor(p.amount_minor);
  out.set_currency(p.currency);
  out.set_method(p.method);
  out.set_reason(p.reason);
  out.set_status(p.status);
  out.set_approvals_required(p.approvals_required);
  for (const Approval& a : view.approvals) {
    api::v1::PayoutApproval* approval = out.add_approvals();
    approval->set_principal(a.principal);
    approval->set_decision(a.decision);
    approval->set_note(a.note);
    approval->set_created_at(FormatUs(a.created_at_us));
  }
  out.set_risk_outcome(p.risk_outcome);
  out.set_risk_reasons(p.risk_reasons);
  if (!p.failure_code.empty()) {
    out.mutable_failure()->set_code(p.failure_code);
    out.mutable_failure()->set_message(p.failure_message);
  }
  out.set_manual_reason(p.manual_reason);
  for (const Attempt& a : view.attempts) {
    api::v1::PayoutAttempt* attempt = out.add_attempts();
    attempt->set_seq(a.seq);
    attempt->set_provider(a.provider);
    attempt->set_merchant_account(a.merchant_account);
    attempt->set_provider_reference(a.provider_reference);
    attempt->set_status(a.status);
    attempt->set_decline_code(a.decline_code);
    attempt->set_detail(a.detail);
    attempt->set_inquiries(a.inquiries);
    attempt->set_last_inquiry(a.last_inquiry);
    attempt->set_created_at(FormatUs(a.created_at_us));
    attempt->set_updated_at(FormatUs(a.updated_at_us));
  }
  out.set_paid_minor(p.paid_minor);
  out.set_submitted_by(p.principal);
  out.set_created_at(FormatUs(p.created_at_us));
  out.set_updated_at(FormatUs(p.updated_at_us));
  return out;
}

std::optional<std::pair<std::int64_t, std::string>> ParseCursor(std::string_view text) {
  const auto dot = text.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  std::int64_t us = 0;
  const char* end = text.data() + dot;
  const auto [ptr, ec] = std::from_chars(text.data(), end, us);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  std::string id(text.substr(dot + 1));
  if (id.substr(0, 3) != "po_") return std::nullopt;
  return std::pair<std::int64_t, std::string>(us, std::move(id));
}

// ---- Create ----

asio::awaitable<Result<Inserted>> InsertPayout(db::PgPool& pool, const Books& books,
                                               const Payout& payout,
                                               const SealedBeneficiary& sealed,
                                               const Policy& policy, db::Deadline deadline,
                                               const TxHook& also) {
  co_return co_await db::RunInTransaction(
      pool, deadline, db::TransactionOptions{},
      [&](PgConnection& conn) -> asio::awaitable<Result<Inserted>> {
        Params params;
        params.Add(payout.id)
            .Add(payout.principal)
            .Add(payout.client_reference)
            .Add(payout.claim_number)
            .Add(payout.policy_number)
            .Add(payout.claimant_id)
            .Add(payout.amount_minor)
            .Add(payout.currency)
            .Add(payout.method)
            .Add(payout.reason)
            .Add(payout.account_type)
            .Add(payout.bank)
            .AddBytea(std::string_view(sealed.name))
            .AddBytea(std::string_view(sealed.account));
        if (sealed.id_number) {
          params.AddBytea(std::string_view(*sealed.id_number));
        } else {
          params.AddNull();
        }
        params.Add(payout.name_masked)
            .Add(payout.account_masked)
            .Add(payout.id_number_masked)
            .Add(payout.account_hash)
            .Add(payout.status)
            .Add(payout.approvals_required)
            .Add(payout.risk_outcome)
            .Add(payout.risk_reasons)
            .Add(payout.failure_code)
            .Add(payout.failure_message);
        LEDGER_CO_TRY(auto inserted,
                      co_await conn.Execute(kInsertPayout, std::move(params), deadline));
        Inserted out;
        if (inserted.rows() == 0) {
          LEDGER_CO_TRY(auto existing,
                        co_await conn.Execute(
                            kSelectByKey,
                            Params().Add(payout.principal).Add(payout.client_reference), deadline));
          if (existing.rows() != 1) co_return make_error_code(db::Errc::bad_value);
          out.outcome = InsertOutcome::kExisting;
          LEDGER_CO_TRY(out.payout, ParsePayout(existing, 0));
          co_return out;
        }
        LEDGER_CO_TRY(out.payout, ParsePayout(inserted, 0));
        if (also) LEDGER_CO_TRYV(co_await also(conn));
        if (payout.status == ToString(PayoutStatus::kFailed)) {
          // Refused by the fraud rules: never owed, so never booked.
          LEDGER_CO_TRYV(co_await WriteEventTx(conn, books, out.payout, deadline));
          co_return out;
        }
        LEDGER_CO_TRYV(co_await MustPost(
            conn, books,
            Single("payout_submitted:" + payout.id, payout, "claims_expense", "claims_payable"),
            deadline));
        if (payout.status == ToString(PayoutStatus::kProcessing)) {
          // Needs no approval: the first attempt is made in this transaction.
          Payout before = out.payout;
          LEDGER_CO_TRY(auto step, co_await StartAttemptTx(conn, books, before, policy, deadline));
          out.send = std::move(step.send);
          LEDGER_CO_TRY(auto reread,
                        co_await conn.Execute(kLock, Params().Add(payout.id), deadline));
          LEDGER_CO_TRY(out.payout, ParsePayout(reread, 0));
        } else {
          LEDGER_CO_TRYV(co_await WriteEventTx(conn, books, out.payout, deadline));
        }
        co_return out;
      });
}

// ---- Reads ----

asio::awaitable<Result<std::optional<PayoutView>>> FindPayout(
    db::PgPool& pool, const std::optional<std::string>& principal, const std::string& id,
    db::Deadline deadline) {
  LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(auto rows,
                co_await lease->Execute(kSelect, Params().Add(id).Add(principal), deadline));
  if (rows.rows() == 0) co_return std::optional<PayoutView>();
  LEDGER_CO_TRY(auto payout, ParsePayout(rows, 0));
  LEDGER_CO_TRY(auto view, co_await ViewTx(*lease, std::move(payout), deadline));
  co_return std::optional<PayoutView>(std::move(view));
}

asio::awaitable<Result<std::optional<Payout>>> FindByClientReference(
    db::PgPool& pool, const std::string& principal, const std::string& client_reference,
    db::Deadline deadline) {
  LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(auto rows,
                co_await lease->Execute(kSelectByKey, Params().Add(principal).Add(client_reference),
                                        deadline));
  if (rows.rows() == 0) co_return std::optional<Payout>();
  LEDGER_CO_TRY(auto payout, ParsePayout(rows, 0));
  co_return std::optional<Payout>(std::move(payout));
}

asio::awaitable<Result<SealedBeneficiary>> ReadSealed(db::PgPool& pool, const std::string& id,
                                                      db::Deadline deadline) {
  LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(auto rows, co_await lease->Execute(kSelectSealed, Params().Add(id), deadline));
  if (rows.rows() != 1) co_return make_error_code(db::Errc::bad_value);
  SealedBeneficiary sealed;
  LEDGER_CO_TRY(sealed.name, rows.GetBytea(0, 0));
  LEDGER_CO_TRY(sealed.account, rows.GetBytea(0, 1));
  if (!rows.IsNull(0, 2)) {
    LEDGER_CO_TRY(auto id_number, rows.GetBytea(0, 2));
    sealed.id_number = std::move(id_number);
  }
  co_return sealed;
}

asio::awaitable<Result<std::optional<Attempt>>> FindAttempt(db::PgPool& pool,
                                                            const std::string& payout_id,
                                                            std::int32_t seq,
                                                            db::Deadline deadline) {
  LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(auto rows, co_await lease->Execute(kSelectAttempt, Params().Add(payout_id).Add(seq),
                                                   deadline));
  if (rows.rows() == 0) co_return std::optional<Attempt>();
  LEDGER_CO_TRY(auto attempt, ParseAttempt(rows, 0));
  co_return std::optional<Attempt>(std::move(attempt));
}

asio::awaitable<Result<std::optional<Attempt>>> FindAttemptTx(PgConnection& conn,
                                                              const std::string& payout_id,
                                                              std::int32_t seq,
                                                              db::Deadline deadline) {
  LEDGER_CO_TRY(auto rows,
                co_await conn.Execute(kSelectAttempt, Params().Add(payout_id).Add(seq), deadline));
  if (rows.rows() == 0) co_return std::optional<Attempt>();
  LEDGER_CO_TRY(auto attempt, ParseAttempt(rows, 0));
  co_return std::optional<Attempt>(std::move(attempt));
}

asio::awaitable<Result<Page>> ListPayouts(db::PgPool& pool, const ListQuery& query,
                                          db::Deadline deadline) {
  LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
  // A text[] literal of the wanted statuses (validated names: no quoting needed).
  std::string statuses = "{";
  for (std::size_t i = 0; i < query.statuses.size(); ++i) {
    if (i > 0) statuses += ',';
    statuses += query.statuses[i];
  }
  statuses += '}';
  Params params;
  params.Add(query.principal).AddUntyped(statuses).Add(query.claim_number);
  if (query.after) {
    params.Add(query.after->first).Add(query.after->second);
  } else {
    params.Add(std::optional<std::int64_t>()).Add("");
  }
  params.Add(query.limit + 1);
  LEDGER_CO_TRY(auto rows, co_await lease->Execute(kList, std::move(params), deadline));
  Page page;
  const int shown = std::min(rows.rows(), query.limit);
  for (int row = 0; row < shown; ++row) {
    LEDGER_CO_TRY(auto payout, ParsePayout(rows, row));
    LEDGER_CO_TRY(auto view, co_await ViewTx(*lease, std::move(payout), deadline));
    page.payouts.push_back(std::move(view));
  }
  if (rows.rows() > query.limit && !page.payouts.empty()) {
    const Payout& last = page.payouts.back().payout;
    page.next_cursor = fmt::format("{}.{}", last.created_at_us, last.id);
  }
  co_return page;
}

asio::awaitable<Result<AccountHistory>> ReadAccountHistory(db::PgPool& pool,
                                                           const std::string& principal,
                                                           const std::string& claimant_id,
                                                           const std::string& account_hash,
                                                           db::Deadline deadline) {
  LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(
      auto rows,
      co_await lease->Execute(
          kAccountHistory, Params().Add(principal).Add(claimant_id).Add(account_hash), deadline));
  AccountHistory history;
  LEDGER_CO_TRY(history.other_claimants, rows.GetInt64(0, 0));
  if (!rows.IsNull(0, 1)) {
    LEDGER_CO_TRY(auto at, rows.GetInt64(0, 1));
    history.claimant_previous_account_at_us = at;
  }
  LEDGER_CO_TRY(auto seen, rows.GetBool(0, 2));
  // Changed: the claimant was paid before, and to another account.
  history.claimant_account_changed = seen && history.claimant_previous_account_at_us.has_value();
  co_return history;
}

// ---- Approvals and cancellation ----

asio::awaitable<Result<Decision>> Decide(db::PgPool& pool, const Books& books,
                                         const std::string& payout_id, const std::string& principal,
                                         bool approve, const std::string& note,
                                         const Policy& policy, db::Deadline deadline) {
  co_return co_await db::RunInTransaction(
      pool, deadline, db::TransactionOptions{},
      [&](PgConnection& conn) -> asio::awaitable<Result<Decision>> {
        Decision decision;
        LEDGER_CO_TRY(auto locked, co_await conn.Execute(kLock, Params().Add(payout_id), deadline));
        if (locked.rows() != 1) co_return decision;  // kNotFound
        LEDGER_CO_TRY(Payout payout, ParsePayout(locked, 0));
        const auto status = ParsePayoutStatus(payout.status);
        if (payout.principal == principal) {
          decision.outcome = DecisionOutcome::kBySubmitter;
          co_return decision;
        }
        if (!status || !Cancellable(*status)) {
          decision.outcome = DecisionOutcome::kNotAwaiting;
          co_return decision;
        }
        LEDGER_CO_TRY(auto inserted, co_await conn.Execute(kInsertApproval,
                                                           Params()
                                                               .Add(payout_id)
                                                               .Add(principal)
                                                               .Add(approve ? "approve" : "reject")
                                                               .Add(note),
                                                           deadline));
        if (inserted.affected_rows() != 1) {
          decision.outcome = DecisionOutcome::kAlreadyDecided;
          co_return decision;
        }
        if (!approve) {
          LEDGER_CO_TRYV(co_await FailTx(conn, books, payout, PayoutStatus::kFailed, "rejected",
                                         "Rejected by an approver.", deadline));
          decision.outcome = DecisionOutcome::kRejected;
          decision.step.effect = "rejected";
          co_return decision;
        }
        LEDGER_CO_TRY(auto counted,
                      co_await conn.Execute(kCountApproval, Params().Add(payout_id), deadline));
        LEDGER_CO_TRY(Payout after, ParsePayout(counted, 0));
        if (after.approvals_count < after.approvals_required) {
          decision.outcome = DecisionOutcome::kRecorded;
          decision.step.effect =
              fmt::format("approval {} of {}", after.approvals_count, after.approvals_required);
          co_return decision;
        }
        decision.outcome = DecisionOutcome::kStarted;
        LEDGER_CO_TRY(decision.step, co_await StartAttemptTx(conn, books, after, policy, deadline));
        co_return decision;
      });
}

asio::awaitable<Result<CancelOutcome>> Cancel(db::PgPool& pool, const Books& books,
                                              const std::string& principal,
                                              const std::string& payout_id, db::Deadline deadline) {
  co_return co_await db::RunInTransaction(
      pool, deadline, db::TransactionOptions{},
      [&](PgConnection& conn) -> asio::awaitable<Result<CancelOutcome>> {
        LEDGER_CO_TRY(auto locked, co_await conn.Execute(kLock, Params().Add(payout_id), deadline));
        if (locked.rows() != 1) co_return CancelOutcome::kNotFound;
        LEDGER_CO_TRY(Payout payout, ParsePayout(locked, 0));
        if (payout.principal != principal) co_return CancelOutcome::kNotFound;
        const auto status = ParsePayoutStatus(payout.status);
        if (status == PayoutStatus::kCancelled) co_return CancelOutcome::kCancelled;
        // Only before any provider call: attempt_count is 0 until the first attempt is made.
        if (!status || !Cancellable(*status) || payout.attempt_count != 0) {
          co_return CancelOutcome::kNotCancellable;
        }
        LEDGER_CO_TRYV(co_await FailTx(conn, books, payout, PayoutStatus::kCancelled, "cancelled",
                                       "Cancelled before any provider call.", deadline));
        co_return CancelOutcome::kCancelled;
      });
}

// ---- Provider answers ----

asio::awaitable<Result<Step>> ApplyAttemptResultTx(PgConnection& conn, const Books& books,
                                                   const std::string& payout_id, std::int32_t seq,
                                                   const adapters::ProviderResult& result,
                                                   const Policy& policy, db::Deadline deadline) {
  Step step;
  LEDGER_CO_TRY(auto locked, co_await conn.Execute(kLock, Params().Add(payout_id), deadline));
  if (locked.rows() != 1) {
    step.effect = "no such payout";
    co_return step;
  }
  LEDGER_CO_TRY(Payout payout, ParsePayout(locked, 0));
  LEDGER_CO_TRY(auto attempt_rows,
                co_await conn.Execute(kLockAttempt, Params().Add(payout_id).Add(seq), deadline));
  if (attempt_rows.rows() != 1) {
    step.effect = "no such attempt";
    co_return step;
  }
  LEDGER_CO_TRY(Attempt attempt, ParseAttempt(attempt_rows, 0));
  const auto from = ParseAttemptStatus(attempt.status);
  if (!from) co_return make_error_code(db::Errc::bad_value);
  AttemptStatus to = AttemptStatusFor(result.outcome);
  std::string detail = result.detail.substr(0, 500);
  if (to == AttemptStatus::kSucceeded && result.amount_minor != 0 &&
      result.amount_minor != payout.amount_minor) {
    // The provider reports another amount than we asked for: never book it silently.
    log::Get("payouts")->critical("payout {}: provider reports {} paid, expected {}", payout_id,
                                  result.amount_minor, payout.amount_minor);
    to = AttemptStatus::kUnknown;
    detail = fmt::format("amount mismatch: provider reports {}", result.amount_minor);
  }
  if (to == *from || !Allowed(*from, to)) {
    if (to == AttemptStatus::kSucceeded && *from != AttemptStatus::kSucceeded) {
      log::Get("payouts")->critical(
          "payout {} attempt {}: provider reports success after {}; needs manual resolution",
          payout_id, seq, attempt.status);
    }
    step.effect = fmt::format("no effect: attempt {} stays {}", seq, attempt.status);
    co_return step;
  }
  LEDGER_CO_TRYV(co_await conn.Execute(kUpdateAttempt,
                                       Params()
                                           .Add(payout_id)
                                           .Add(seq)
                                           .Add(ToString(to))
                                           .Add(result.provider_transaction_id)
                                           .Add(result.decline_code)
                                           .Add(detail),
                                       deadline));
  step.effect = fmt::format("attempt {} {} -> {}", seq, attempt.status, ToString(to));
  if (!IsTerminal(to)) co_return step;  // pending/unknown: the inquiry schedule goes on.

  LEDGER_CO_TRYV(co_await conn.Execute(
      kDeleteTask, Params().Add(kInquireTask).Add(attempt.provider_reference), deadline));
  // Every attempt has its own reservation: settle it whatever became of the payout since.
  const bool paid = to == AttemptStatus::kSucceeded;
  LEDGER_CO_TRYV(co_await SettleReservationTx(conn, books, payout, attempt.provider_reference, paid,
                                              deadline));
  const auto payout_from = ParsePayoutStatus(payout.status);
  if (!payout_from || seq != payout.attempt_count || IsTerminal(*payout_from)) {
    if (paid) {
      // Only the current attempt of a live payout can be paid (one attempt at a time); anything
      // else means money left twice and is for a person, loudly.
      log::Get("payouts")->critical(
          "payout {} attempt {} paid while the payout is {} at attempt {}", payout_id, seq,
          payout.status, payout.attempt_count);
    }
    co_return step;
  }
  if (paid) {
    if (!Allowed(*payout_from, PayoutStatus::kSucceeded)) co_return step;
    LEDGER_CO_TRY(auto updated, co_await conn.Execute(kUpdatePayout,
                                                      Params()
                                                          .Add(payout_id)
                                                          .Add(ToString(PayoutStatus::kSucceeded))
                                                          .Add("")
                                                          .Add("")
                                                          .Add(payout.amount_minor)
                                                          .Add(payout.manual_reason),
                                                      deadline));
    LEDGER_CO_TRY(Payout after, ParsePayout(updated, 0));
    LEDGER_CO_TRYV(co_await WriteEventTx(conn, books, after, deadline));
    step.effect += "; payout succeeded";
    co_return step;
  }
  if (to == AttemptStatus::kNotSent && seq < policy.attempts_max && !policy.routes.empty() &&
      *payout_from == PayoutStatus::kProcessing) {
    // Provably never sent: another attempt (possibly another provider) is safe.
    LEDGER_CO_TRY(auto next, co_await StartAttemptTx(conn, books, payout, policy, deadline));
    step.effect += "; " + next.effect;
    step.send = std::move(next.send);
    co_return step;
  }
  if (!Allowed(*payout_from, PayoutStatus::kFailed)) co_return step;
  std::string code = "provider_unreachable";
  std::string message = "The provider could not be reached; nothing was paid.";
  if (to == AttemptStatus::kDeclined) {
    code = result.decline_code.empty() ? "declined" : result.decline_code;
    message = result.decline_message.empty() ? "The provider declined the payout."
                                             : result.decline_message.substr(0, 500);
  }
  LEDGER_CO_TRYV(
      co_await FailTx(conn, books, payout, PayoutStatus::kFailed, code, message, deadline));
  step.effect += "; payout failed";
  co_return step;
}

asio::awaitable<Result<void>> NoteInquiryTx(PgConnection& conn, const std::string& payout_id,
                                            std::int32_t seq, const std::string& said,
                                            db::Deadline deadline) {
  LEDGER_CO_TRYV(co_await conn.Execute(
      kNoteInquiry, Params().Add(payout_id).Add(seq).Add(said.substr(0, 500)), deadline));
  co_return outcome::success();
}

asio::awaitable<Result<void>> MoveToManual(db::PgPool& pool, const Books& books,
                                           const std::string& payout_id, std::int32_t seq,
                                           const std::string& reason, db::Deadline deadline) {
  co_return co_await db::RunInTransaction(
      pool, deadline, db::TransactionOptions{},
      [&](PgConnection& conn) -> asio::awaitable<Result<void>> {
        LEDGER_CO_TRY(auto locked, co_await conn.Execute(kLock, Params().Add(payout_id), deadline));
        if (locked.rows() != 1) co_return outcome::success();
        LEDGER_CO_TRY(Payout payout, ParsePayout(locked, 0));
        const std::string ref = AttemptReference(payout_id, seq);
        LEDGER_CO_TRYV(co_await conn.Execute(
            kManualTask, Params().Add(kInquireTask).Add(reason.substr(0, 500)).Add(ref), deadline));
        const auto status = ParsePayoutStatus(payout.status);
        if (!status || !Allowed(*status, PayoutStatus::kManualReview) ||
            seq != payout.attempt_count) {
          co_return outcome::success();
        }
        LEDGER_CO_TRY(auto updated,
                      co_await conn.Execute(kUpdatePayout,
                                            Params()
                                                .Add(payout_id)
                                                .Add(ToString(PayoutStatus::kManualReview))
                                                .Add(payout.failure_code)
                                                .Add(payout.failure_message)
                                                .Add(std::int64_t{0})
                                                .Add(reason.substr(0, 2000)),
                                            deadline));
        LEDGER_CO_TRY(Payout after, ParsePayout(updated, 0));
        LEDGER_CO_TRYV(co_await WriteEventTx(conn, books, after, deadline));
        co_return outcome::success();
      });
}

}  // namespace paygate::payouts::store
