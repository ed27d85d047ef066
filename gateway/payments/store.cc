#include "gateway/payments/store.h"

#include <openssl/rand.h>

#include <array>
#include <charconv>
#include <map>
#include <unordered_map>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include "config/logging.h"
#include "gateway/attempt_reference.h"
#include "gateway/payments/service.h"
#include "gateway/payments/state.h"
#include "gateway/utc_time.h"
#include "ledger/db/params.h"
#include "ledger/db/pg_result.h"
#include "ledger/db/transaction.h"
#include "ledger/ledger/chart.h"
#include "ledger/ledger/try.h"

namespace paygate::payments::store {

namespace asio = boost::asio;
using db::Params;
using db::PgConnection;
using db::PgResult;
using db::Statement;

namespace {

// ---- SQL ----

#define PAYGATE_ORDER_COLUMNS                                                                     \
  "id, principal, client_reference, policy_number, payer_id, description, amount_minor, "         \
  "currency, method, provider, merchant_account, status, captured_minor, refund_reserved_minor, " \
  "refunded_minor, failure_code, failure_message, next_action_type, next_action_value, "          \
  "attempt_count, (extract(epoch FROM expires_at) * 1000000)::bigint, "                           \
  "(extract(epoch FROM created_at) * 1000000)::bigint, "                                          \
  "(extract(epoch FROM updated_at) * 1000000)::bigint"

#define PAYGATE_REFUND_COLUMNS                                                          \
  "id, order_id, principal, client_reference, amount_minor, currency, reason, status, " \
  "provider_reference, failure_code, failure_message, "                                 \
  "(extract(epoch FROM created_at) * 1000000)::bigint, "                                \
  "(extract(epoch FROM updated_at) * 1000000)::bigint"

#define PAYGATE_US(n) "timestamptz 'epoch' + $" #n "::bigint * interval '1 microsecond'"

// The orders of many intents at once (`processing`, attempt 1; an existing client reference is
// left as it is): arrays $1..$12, one element per intent. Rows come back in no set order; callers
// match them by id.
constexpr Statement kInsertOrders{
    "payments_insert_orders",
    "INSERT INTO payment_orders (id, principal, client_reference, policy_number, payer_id, "
    "description, amount_minor, currency, method, provider, merchant_account, status, "
    "attempt_count, expires_at) SELECT u.id, u.principal, u.client_reference, u.policy_number, "
    "u.payer_id, u.description, u.amount_minor, u.currency, u.method, u.provider, "
    "u.merchant_account, 'processing', 1, timestamptz 'epoch' + u.expires_us * interval "
    "'1 microsecond' FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], "
    "$6::text[], $7::bigint[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[]) "
    "WITH ORDINALITY AS u(id, principal, client_reference, policy_number, payer_id, description, "
    "amount_minor, currency, method, provider, merchant_account, expires_us, n) ORDER BY u.n "
    "ON CONFLICT (principal, client_reference) DO NOTHING RETURNING " PAYGATE_ORDER_COLUMNS};

constexpr Statement kSelectOrdersByKey{
    "payments_select_orders_by_key", "SELECT " PAYGATE_ORDER_COLUMNS
                                     " FROM payment_orders WHERE (principal, client_reference) IN "
                                     "(SELECT * FROM unnest($1::text[], $2::text[]))"};

constexpr Statement kInsertFirstAttempts{
    "payments_insert_first_attempts",
    "INSERT INTO payment_attempts (order_id, seq, provider, merchant_account, provider_reference, "
    "routing_reason, status) SELECT u.order_id, 1, u.provider, u.merchant_account, u.reference, "
    "u.reason, 'sending' FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) "
    "AS u(order_id, provider, merchant_account, reference, reason)"};

// Each new order's inquiry ($1 references, due in $3 seconds) and expiry ($2 ids, due at $4).
constexpr Statement kScheduleFirstTasks{
    "payments_schedule_first_tasks",
    "INSERT INTO janitor_tasks (kind, object_id, due_at) "
    "SELECT 'inquire_attempt', r, now() + $3::bigint * interval '1 second' "
    "FROM unnest($1::text[]) AS r "
    "UNION ALL SELECT 'expire_order', u.id, timestamptz 'epoch' + u.due_us * "
    "interval '1 microsecond' FROM unnest($2::text[], $4::bigint[]) AS u(id, due_us) "
    "ON CONFLICT (kind, object_id) DO NOTHING"};

constexpr Statement kInsertStoppedOrder{
    "payments_insert_stopped_order",
    "INSERT INTO payment_orders (id, principal, client_reference, policy_number, payer_id, "
    "description, amount_minor, currency, method, provider, merchant_account, status, "
    "failure_code, failure_message, attempt_count, expires_at) VALUES ($1, $2, $3, $4, $5, $6, "
    "$7, $8, $9, $10, $11, $13, $14, $15, 0, " PAYGATE_US(12) ") "
    "ON CONFLICT (principal, client_reference) DO NOTHING RETURNING " PAYGATE_ORDER_COLUMNS};

constexpr Statement kReleaseHeldOrder{
    "payments_release_held_order",
    "UPDATE payment_orders SET status = 'processing', attempt_count = 1, "
    "expires_at = " PAYGATE_US(2) ", updated_at = now() WHERE id = $1 "
    "AND status = 'requires_review' RETURNING " PAYGATE_ORDER_COLUMNS};

// The payer's first order (any client: customer.created_at) and the policy's history with this
// client (first order, premium captured in this currency).
constexpr Statement kPayerHistory{
    "payments_payer_history",
    "SELECT (SELECT (extract(epoch FROM min(created_at)) * 1000000)::bigint FROM payment_orders "
    "        WHERE $1 <> '' AND payer_id = $1), "
    "       (SELECT (extract(epoch FROM min(created_at)) * 1000000)::bigint FROM payment_orders "
    "        WHERE principal = $2 AND policy_number = $3), "
    "       (SELECT coalesce(sum(captured_minor), 0)::bigint FROM payment_orders "
    "        WHERE principal = $2 AND policy_number = $3 AND currency = $4)"};

constexpr Statement kScheduleTask{"payments_schedule_task",
                                  "INSERT INTO janitor_tasks (kind, object_id, due_at) "
                                  "VALUES ($1, $2, now() + $3::bigint * interval '1 second') "
                                  "ON CONFLICT (kind, object_id) DO NOTHING"};

constexpr Statement kDeleteTask{"payments_delete_task",
                                "DELETE FROM janitor_tasks WHERE kind = $1 AND object_id = $2"};

constexpr Statement kSelectOrderByKey{
    "payments_select_order_by_key",
    "SELECT " PAYGATE_ORDER_COLUMNS
    " FROM payment_orders WHERE principal = $1 AND client_reference = $2"};

constexpr Statement kSelectOrder{"payments_select_order",
                                 "SELECT " PAYGATE_ORDER_COLUMNS
                                 " FROM payment_orders WHERE id = $1 AND principal = $2"};

constexpr Statement kSelectOrderById{"payments_select_order_by_id",
                                     "SELECT " PAYGATE_ORDER_COLUMNS
                                     " FROM payment_orders WHERE id = $1"};

constexpr Statement kLockOrder{"payments_lock_order",
                               "SELECT " PAYGATE_ORDER_COLUMNS
                               " FROM payment_orders WHERE id = $1 FOR UPDATE"};

constexpr Statement kLockOrderOfPrincipal{
    "payments_lock_order_of_principal",
    "SELECT " PAYGATE_ORDER_COLUMNS
    " FROM payment_orders WHERE id = $1 AND principal = $2 FOR UPDATE"};

constexpr Statement kSelectAttempt{
    "payments_select_attempt",
    "SELECT order_id, seq, provider, merchant_account, provider_reference, status, "
    "(extract(epoch FROM created_at) * 1000000)::bigint "
    "FROM payment_attempts WHERE order_id = $1 AND seq = $2"};

constexpr Statement kLockAttempt{
    "payments_lock_attempt",
    "SELECT order_id, seq, provider, merchant_account, provider_reference, status, "
    "(extract(epoch FROM created_at) * 1000000)::bigint "
    "FROM payment_attempts WHERE order_id = $1 AND seq = $2 FOR UPDATE"};

constexpr Statement kUpdateAttempt{
    "payments_update_attempt",
    "UPDATE payment_attempts SET status = $3, "
    "provider_transaction_id = CASE WHEN $4 = '' THEN provider_transaction_id ELSE $4 END, "
    "detail = $5, updated_at = now() WHERE order_id = $1 AND seq = $2"};

constexpr Statement kUpdateOrder{
    "payments_update_order",
    "UPDATE payment_orders SET status = $2, captured_minor = $3, failure_code = $4, "
    "failure_message = $5, next_action_type = $6, next_action_value = $7, updated_at = now() "
    "WHERE id = $1 RETURNING " PAYGATE_ORDER_COLUMNS};

constexpr Statement kListOrders{
    "payments_list_orders",
    "SELECT " PAYGATE_ORDER_COLUMNS " FROM payment_orders WHERE principal = $1 "
    "AND ($2 = '' OR policy_number = $2) AND ($3 = '' OR status = $3) "
    "AND ($4::bigint IS NULL OR created_at >= " PAYGATE_US(4) ") "
    "AND ($5::bigint IS NULL OR created_at < " PAYGATE_US(5) ") "
    "AND ($6::bigint IS NULL OR (created_at, id) < (" PAYGATE_US(6) ", $7)) "
    "ORDER BY created_at DESC, id DESC LIMIT $8"};

constexpr Statement kSelectRefund{"payments_select_refund",
                                  "SELECT " PAYGATE_REFUND_COLUMNS
                                  " FROM payment_refunds WHERE id = $1 AND principal = $2"};

constexpr Statement kSelectRefundById{"payments_select_refund_by_id",
                                      "SELECT " PAYGATE_REFUND_COLUMNS
                                      " FROM payment_refunds WHERE id = $1"};

constexpr Statement kSelectRefundByKey{
    "payments_select_refund_by_key",
    "SELECT " PAYGATE_REFUND_COLUMNS
    " FROM payment_refunds WHERE principal = $1 AND client_reference = $2"};

constexpr Statement kLockRefund{"payments_lock_refund",
                                "SELECT " PAYGATE_REFUND_COLUMNS
                                " FROM payment_refunds WHERE id = $1 FOR UPDATE"};

constexpr Statement kInsertRefund{
    "payments_insert_refund",
    "INSERT INTO payment_refunds (id, order_id, principal, client_reference, amount_minor, "
    "currency, reason, status, provider_reference) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, 'processing', $1) RETURNING " PAYGATE_REFUND_COLUMNS};

constexpr Statement kReserveRefund{
    "payments_reserve_refund",
    "UPDATE payment_orders SET refund_reserved_minor = refund_reserved_minor + $2, "
    "updated_at = now() WHERE id = $1"};

constexpr Statement kUpdateRefund{
    "payments_update_refund",
    "UPDATE payment_refunds SET status = $2, "
    "provider_transaction_id = CASE WHEN $3 = '' THEN provider_transaction_id ELSE $3 END, "
    "failure_code = $4, failure_message = $5, updated_at = now() "
    "WHERE id = $1 RETURNING " PAYGATE_REFUND_COLUMNS};

constexpr Statement kSettleRefund{
    "payments_settle_refund",
    "UPDATE payment_orders SET refunded_minor = refunded_minor + $2, "
    "refund_reserved_minor = refund_reserved_minor - $3, updated_at = now() WHERE id = $1"};

constexpr Statement kInsertEvent{
    "payments_insert_event",
    "WITH e AS (INSERT INTO outbox_events (id, principal, type, object_id, payload) "
    "VALUES ($1, $2, $3, $4, $5) RETURNING id) "
    "INSERT INTO event_deliveries (event_id, state, give_up_at) "
    "SELECT id, 'pending', now() + $6::bigint * interval '1 second' FROM e"};

constexpr Statement kInsertCallback{
    "payments_insert_callback",
    "INSERT INTO provider_callbacks (provider, merchant_account, dedup_key, kind, reference, "
    "outcome, provider_transaction_id, amount_minor, decline_code, decline_message, body) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
    "ON CONFLICT (provider, merchant_account, dedup_key) DO NOTHING RETURNING id"};

constexpr Statement kLockCallback{
    "payments_lock_callback",
    "SELECT kind, reference, outcome, provider_transaction_id, amount_minor, decline_code, "
    "decline_message, applied_at IS NOT NULL, provider, merchant_account "
    "FROM provider_callbacks WHERE id = $1 FOR UPDATE"};

constexpr Statement kMarkCallbackApplied{
    "payments_mark_callback_applied",
    "UPDATE provider_callbacks SET applied_at = now(), effect = $2 WHERE id = $1"};

constexpr Statement kClaimTasks{
    "payments_claim_tasks",
    "UPDATE janitor_tasks t SET due_at = now() + $2::bigint * interval '1 second', "
    "attempts = t.attempts + 1 "
    "FROM (SELECT kind, object_id FROM janitor_tasks WHERE NOT manual AND due_at <= now() "
    "      ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED) c "
    "WHERE t.kind = c.kind AND t.object_id = c.object_id "
    "RETURNING t.kind, t.object_id, t.attempts"};

constexpr Statement kRescheduleTask{
    "payments_reschedule_task",
    "UPDATE janitor_tasks SET due_at = now() + $3::bigint * interval '1 second', manual = $4, "
    "last_error = $5 WHERE kind = $1 AND object_id = $2"};

// The inquiry that backs up the provider's answer to a create or refund call (DESIGN.md §3).
constexpr std::int64_t kFirstInquiryS = 60;
constexpr std::int32_t kReasonPremium = 1;
constexpr std::int32_t kReasonRefund = 2;

// ---- Row parsing ----

// Reads a row's columns left to right, stopping at the first cell that does not parse.
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

 private:
  const PgResult& result_;
  const int row_;
  int column_ = 0;
};

Result<Order> ParseOrder(const PgResult& r, int row) {
  Order o;
  RowReader in(r, row);
  BOOST_OUTCOME_TRYV(in.Text(&o.id));
  BOOST_OUTCOME_TRYV(in.Text(&o.principal));
  BOOST_OUTCOME_TRYV(in.Text(&o.client_reference));
  BOOST_OUTCOME_TRYV(in.Text(&o.policy_number));
  BOOST_OUTCOME_TRYV(in.Text(&o.payer_id));
  BOOST_OUTCOME_TRYV(in.Text(&o.description));
  BOOST_OUTCOME_TRYV(in.Int64(&o.amount_minor));
  BOOST_OUTCOME_TRYV(in.Text(&o.currency));
  BOOST_OUTCOME_TRYV(in.Text(&o.method));
  BOOST_OUTCOME_TRYV(in.Text(&o.provider));
  BOOST_OUTCOME_TRYV(in.Text(&o.merchant_account));
  BOOST_OUTCOME_TRYV(in.Text(&o.status));
  BOOST_OUTCOME_TRYV(in.Int64(&o.captured_minor));
  BOOST_OUTCOME_TRYV(in.Int64(&o.refund_reserved_minor));
  BOOST_OUTCOME_TRYV(in.Int64(&o.refunded_minor));
  BOOST_OUTCOME_TRYV(in.Text(&o.failure_code));
  BOOST_OUTCOME_TRYV(in.Text(&o.failure_message));
  BOOST_OUTCOME_TRYV(in.Text(&o.next_action_type));
  BOOST_OUTCOME_TRYV(in.Text(&o.next_action_value));
  std::int64_t attempts = 0;
  BOOST_OUTCOME_TRYV(in.Int64(&attempts));
  o.attempt_count = static_cast<std::int32_t>(attempts);
  BOOST_OUTCOME_TRYV(in.Int64(&o.expires_at_us));
  BOOST_OUTCOME_TRYV(in.Int64(&o.created_at_us));
  BOOST_OUTCOME_TRYV(in.Int64(&o.updated_at_us));
  return o;
}

Result<Refund> ParseRefund(const PgResult& r, int row) {
  Refund f;
  RowReader in(r, row);
  BOOST_OUTCOME_TRYV(in.Text(&f.id));
  BOOST_OUTCOME_TRYV(in.Text(&f.order_id));
  BOOST_OUTCOME_TRYV(in.Text(&f.principal));
  BOOST_OUTCOME_TRYV(in.Text(&f.client_reference));
  BOOST_OUTCOME_TRYV(in.Int64(&f.amount_minor));
  BOOST_OUTCOME_TRYV(in.Text(&f.currency));
  BOOST_OUTCOME_TRYV(in.Text(&f.reason));
  BOOST_OUTCOME_TRYV(in.Text(&f.status));
  BOOST_OUTCOME_TRYV(in.Text(&f.provider_reference));
  BOOST_OUTCOME_TRYV(in.Text(&f.failure_code));
  BOOST_OUTCOME_TRYV(in.Text(&f.failure_message));
  BOOST_OUTCOME_TRYV(in.Int64(&f.created_at_us));
  BOOST_OUTCOME_TRYV(in.Int64(&f.updated_at_us));
  return f;
}

Result<Attempt> ParseAttempt(const PgResult& r, int row) {
  Attempt a;
  LEDGER_TRY(auto order_id, r.GetText(row, 0));
  a.order_id = order_id;
  LEDGER_TRY(auto seq, r.GetInt64(row, 1));
  a.seq = static_cast<std::int32_t>(seq);
  LEDGER_TRY(auto provider, r.GetText(row, 2));
  a.provider = provider;
  LEDGER_TRY(auto merchant, r.GetText(row, 3));
  a.merchant_account = merchant;
  LEDGER_TRY(auto reference, r.GetText(row, 4));
  a.provider_reference = reference;
  LEDGER_TRY(auto status, r.GetText(row, 5));
  a.status = status;
  LEDGER_TRY(a.created_at_us, r.GetInt64(row, 6));
  return a;
}

template <class Row, class Parse>
asio::awaitable<Result<std::optional<Row>>> QueryOne(db::PgPool& pool, const Statement& statement,
                                                     Params params, db::Deadline deadline,
                                                     Parse parse) {
  LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(auto rows, co_await lease->Execute(statement, std::move(params), deadline));
  if (rows.rows() == 0) co_return std::optional<Row>();
  LEDGER_CO_TRY(auto row, parse(rows, 0));
  co_return std::optional<Row>(std::move(row));
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

// The outbox row of a state change, in the change's transaction (DESIGN.md §3).
asio::awaitable<Result<void>> WriteEvent(PgConnection& conn, const Books& books,
                                         const std::string& principal, std::string type,
                                         const std::string& object_id, api::v1::Event event,
                                         db::Deadline deadline) {
  event.set_id(NewId("evt_"));
  event.set_type(type);
  event.set_created_at(gateway::FormatUtc(
      std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now())));
  const std::string payload = ToJson(event);
  LEDGER_CO_TRYV(
      co_await conn.Execute(kInsertEvent,
                            Params()
                                .Add(event.id())
                                .Add(principal)
                                .Add(type)
                                .Add(object_id)
                                .Add(payload)
                                .Add(static_cast<std::int64_t>(books.event_retry_window.count())),
                            deadline));
  co_return outcome::success();
}

// Posts one transfer inside the caller's transaction; anything but ok/exists is a broken
// invariant (the chart is created at start-up), so the transaction must not commit.
asio::awaitable<Result<void>> PostOne(PgConnection& conn, ledger::PostgresLedger& ledger,
                                      ledger::Transfer transfer, db::Deadline deadline) {
  const std::string id = transfer.id.value;
  std::vector<ledger::Transfer> transfers;
  transfers.push_back(std::move(transfer));
  LEDGER_CO_TRY(auto results,
                co_await ledger.PostTransfersInTransaction(conn, std::move(transfers), deadline));
  if (results.size() != 1 || (results[0] != ledger::TransferResult::kOk &&
                              results[0] != ledger::TransferResult::kExists)) {
    log::Get("payments")
        ->critical("ledger refused transfer {}: {}", id,
                   results.empty() ? "no result" : ledger::ToString(results[0]));
    co_return make_error_code(ledger::Errc::inconsistent_state);
  }
  co_return outcome::success();
}

std::string ClearingAccount(const Order& order) {
  return "provider_clearing:" + order.provider + ":" + order.merchant_account;
}

}  // namespace

// ---- Ids and conversions ----

std::string NewId(std::string_view prefix) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  std::array<unsigned char, 15> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    // Without randomness ids could collide or be guessed: refuse to go on.
    std::abort();
  }
  std::string id(prefix);
  // 15 bytes = 120 bits = 24 base32 characters, 5 bits each.
  for (std::size_t i = 0; i < bytes.size(); i += 5) {
    std::uint64_t chunk = 0;
    for (std::size_t j = 0; j < 5; ++j) chunk = (chunk << 8) | bytes[i + j];
    for (int k = 7; k >= 0; --k) id.push_back(kAlphabet[(chunk >> (k * 5)) & 31]);
  }
  return id;
}

std::string AttemptReference(std::string_view order_id, std::int32_t seq) {
  return attempt_reference::Make(order_id, seq);
}

std::optional<std::pair<std::string, std::int32_t>> ParseAttemptReference(std::string_view ref) {
  return attempt_reference::Parse(ref, "pay_");
}

api::v1::Payment ToApi(const Order& o) {
  api::v1::Payment p;
  p.set_id(o.id);
  p.set_client_reference(o.client_reference);
  p.set_policy_number(o.policy_number);
  p.set_payer_id(o.payer_id);
  p.set_amount_minor(o.amount_minor);
  p.set_currency(o.currency);
  p.set_method(o.method);
  p.set_description(o.description);
  p.set_status(o.status);
  p.set_provider(o.provider);
  p.set_merchant_account(o.merchant_account);
  if (!o.next_action_type.empty()) {
    p.mutable_next_action()->set_type(o.next_action_type);
    p.mutable_next_action()->set_value(o.next_action_value);
  }
  if (!o.failure_code.empty()) {
    p.mutable_failure()->set_code(o.failure_code);
    p.mutable_failure()->set_message(o.failure_message);
  }
  p.set_captured_minor(o.captured_minor);
  p.set_refunded_minor(o.refunded_minor);
  p.set_refundable_minor(o.captured_minor - o.refund_reserved_minor);
  p.set_created_at(FormatUs(o.created_at_us));
  p.set_updated_at(FormatUs(o.updated_at_us));
  p.set_expires_at(FormatUs(o.expires_at_us));
  return p;
}

api::v1::Refund ToApi(const Refund& f) {
  api::v1::Refund r;
  r.set_id(f.id);
  r.set_payment_id(f.order_id);
  r.set_client_reference(f.client_reference);
  r.set_amount_minor(f.amount_minor);
  r.set_currency(f.currency);
  r.set_reason(f.reason);
  r.set_status(f.status);
  if (!f.failure_code.empty()) {
    r.mutable_failure()->set_code(f.failure_code);
    r.mutable_failure()->set_message(f.failure_message);
  }
  r.set_created_at(FormatUs(f.created_at_us));
  r.set_updated_at(FormatUs(f.updated_at_us));
  return r;
}

std::optional<Cursor> ParseCursor(std::string_view text) {
  const auto dot = text.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  Cursor cursor;
  const char* end = text.data() + dot;
  const auto [ptr, ec] = std::from_chars(text.data(), end, cursor.created_at_us);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  cursor.id = std::string(text.substr(dot + 1));
  if (cursor.id.substr(0, 4) != "pay_") return std::nullopt;
  return cursor;
}

// ---- Orders ----

namespace {

// Inside a transaction: each order's first attempt (`sending`, under its routing reason) and the
// janitor's safety net for it (an inquiry in case its answer is never recorded, and the expiry at
// its expires_at_us), one statement each however many orders.
asio::awaitable<Result<void>> InsertFirstAttemptsTx(PgConnection& conn,
                                                    const std::vector<Order>& orders,
                                                    db::Deadline deadline) {
  std::vector<std::string> ids, providers, accounts, references, reasons;
  std::vector<std::int64_t> expiries;
  for (const Order& o : orders) {
    ids.push_back(o.id);
    providers.push_back(o.provider);
    accounts.push_back(o.merchant_account);
    references.push_back(AttemptReference(o.id, 1));
    reasons.push_back(o.routing_reason);
    expiries.push_back(o.expires_at_us);
  }
  LEDGER_CO_TRYV(co_await conn.Execute(kInsertFirstAttempts,
                                       Params()
                                           .Add(db::ArrayLiteral(ids))
                                           .Add(db::ArrayLiteral(providers))
                                           .Add(db::ArrayLiteral(accounts))
                                           .Add(db::ArrayLiteral(references))
                                           .Add(db::ArrayLiteral(reasons)),
                                       deadline));
  LEDGER_CO_TRYV(co_await conn.Execute(kScheduleFirstTasks,
                                       Params()
                                           .Add(db::ArrayLiteral(references))
                                           .Add(db::ArrayLiteral(ids))
                                           .Add(kFirstInquiryS)
                                           .Add(db::ArrayLiteral(expiries)),
                                       deadline));
  co_return outcome::success();
}

}  // namespace

asio::awaitable<Result<InsertedOrder>> InsertOrder(db::PgPool& pool, const Order& order,
                                                   db::Deadline deadline, const TxHook& also) {
  const OrderIntent intent{order, also};
  LEDGER_CO_TRY(auto inserted, co_await InsertOrders(pool, std::span(&intent, 1), deadline));
  co_return std::move(inserted.front());
}

asio::awaitable<Result<std::vector<InsertedOrder>>> InsertOrders(
    db::PgPool& pool, std::span<const OrderIntent> intents, db::Deadline deadline) {
  // One array per column, one element per intent.
  std::vector<std::string> ids, principals, references, policies, payers, descriptions;
  std::vector<std::string> currencies, methods, providers, accounts;
  std::vector<std::int64_t> amounts, expiries;
  for (const OrderIntent& intent : intents) {
    const Order& o = intent.order;
    ids.push_back(o.id);
    principals.push_back(o.principal);
    references.push_back(o.client_reference);
    policies.push_back(o.policy_number);
    payers.push_back(o.payer_id);
    descriptions.push_back(o.description);
    amounts.push_back(o.amount_minor);
    currencies.push_back(o.currency);
    methods.push_back(o.method);
    providers.push_back(o.provider);
    accounts.push_back(o.merchant_account);
    expiries.push_back(o.expires_at_us);
  }
  Params orders;
  orders.Add(db::ArrayLiteral(ids))
      .Add(db::ArrayLiteral(principals))
      .Add(db::ArrayLiteral(references))
      .Add(db::ArrayLiteral(policies))
      .Add(db::ArrayLiteral(payers))
      .Add(db::ArrayLiteral(descriptions))
      .Add(db::ArrayLiteral(amounts))
      .Add(db::ArrayLiteral(currencies))
      .Add(db::ArrayLiteral(methods))
      .Add(db::ArrayLiteral(providers))
      .Add(db::ArrayLiteral(accounts))
      .Add(db::ArrayLiteral(expiries));

  co_return co_await db::RunInTransaction(
      pool, deadline, db::TransactionOptions{},
      [&](PgConnection& conn) -> asio::awaitable<Result<std::vector<InsertedOrder>>> {
        std::vector<InsertedOrder> out(intents.size());
        LEDGER_CO_TRY(auto inserted, co_await conn.Execute(kInsertOrders, orders, deadline));
        std::unordered_map<std::string, Order> new_orders;
        for (int row = 0; row < inserted.rows(); ++row) {
          LEDGER_CO_TRY(auto order, ParseOrder(inserted, row));
          new_orders.emplace(order.id, std::move(order));
        }
        // The new orders get their attempts and tasks; the others answer with the existing order
        // of their client reference.
        std::vector<Order> fresh;
        std::vector<std::string> existing_principals, existing_references;
        for (std::size_t i = 0; i < intents.size(); ++i) {
          const Order& o = intents[i].order;
          auto found = new_orders.find(o.id);
          if (found == new_orders.end()) {
            existing_principals.push_back(o.principal);
            existing_references.push_back(o.client_reference);
            continue;
          }
          out[i].inserted = true;
          out[i].order = std::move(found->second);
          fresh.push_back(o);
        }
        if (!existing_principals.empty()) {
          LEDGER_CO_TRY(auto existing,
                        co_await conn.Execute(kSelectOrdersByKey,
                                              Params()
                                                  .Add(db::ArrayLiteral(existing_principals))
                                                  .Add(db::ArrayLiteral(existing_references)),
                                              deadline));
          std::map<std::pair<std::string, std::string>, Order> by_key;
          for (int row = 0; row < existing.rows(); ++row) {
            LEDGER_CO_TRY(auto order, ParseOrder(existing, row));
            auto key = std::make_pair(order.principal, order.client_reference);
            by_key.emplace(std::move(key), std::move(order));
          }
          for (std::size_t i = 0; i < intents.size(); ++i) {
            if (out[i].inserted) continue;
            const Order& o = intents[i].order;
            auto found = by_key.find({o.principal, o.client_reference});
            if (found == by_key.end()) co_return make_error_code(db::Errc::bad_value);
            out[i].order = found->second;
          }
        }
        if (!fresh.empty()) LEDGER_CO_TRYV(co_await InsertFirstAttemptsTx(conn, fresh, deadline));
        for (std::size_t i = 0; i < intents.size(); ++i) {
          if (out[i].inserted && intents[i].also) {
            LEDGER_CO_TRYV(co_await intents[i].also(conn));
          }
        }
        co_return out;
      });
}

asio::awaitable<Result<InsertedOrder>> InsertStoppedOrder(db::PgPool& pool, const Books& books,
                                                          const Order& order, db::Deadline deadline,
                                                          const TxHook& also) {
  co_return co_await db::RunInTransaction(
      pool, deadline, db::TransactionOptions{},
      [&](PgConnection& conn) -> asio::awaitable<Result<InsertedOrder>> {
        LEDGER_CO_TRY(auto inserted, co_await conn.Execute(kInsertStoppedOrder,
                                                           Params()
                                                               .Add(order.id)
                                                               .Add(order.principal)
                                                               .Add(order.client_reference)
                                                               .Add(order.policy_number)
                                                               .Add(order.payer_id)
                                                               .Add(order.description)
                                                               .Add(order.amount_minor)
                                                               .Add(order.currency)
                                                               .Add(order.method)
                                                               .Add(order.provider)
                                                               .Add(order.merchant_account)
                                                               .Add(order.expires_at_us)
                                                               .Add(order.status)
                                                               .Add(order.failure_code)
                                                               .Add(order.failure_message),
                                                           deadline));
        InsertedOrder out;
        if (inserted.rows() == 0) {
          LEDGER_CO_TRY(auto existing,
                        co_await conn.Execute(
                            kSelectOrderByKey,
                            Params().Add(order.principal).Add(order.client_reference), deadline));
          if (existing.rows() != 1) co_return make_error_code(db::Errc::bad_value);
          LEDGER_CO_TRY(out.order, ParseOrder(existing, 0));
          co_return out;
        }
        out.inserted = true;
        LEDGER_CO_TRY(out.order, ParseOrder(inserted, 0));
        api::v1::Event event;
        *event.mutable_payment() = ToApi(out.order);
        LEDGER_CO_TRYV(co_await WriteEvent(conn, books, order.principal,
                                           "payment." + out.order.status, order.id,
                                           std::move(event), deadline));
        if (also) {
          LEDGER_CO_TRYV(co_await also(conn));
        }
        co_return out;
      });
}

asio::awaitable<Result<std::optional<Order>>> LockOrderTx(PgConnection& conn, const std::string& id,
                                                          db::Deadline deadline) {
  LEDGER_CO_TRY(auto locked, co_await conn.Execute(kLockOrder, Params().Add(id), deadline));
  if (locked.rows() == 0) co_return std::optional<Order>();
  LEDGER_CO_TRY(auto order, ParseOrder(locked, 0));
  co_return std::optional<Order>(std::move(order));
}

asio::awaitable<Result<Order>> ReleaseHeldOrderTx(PgConnection& conn, const std::string& order_id,
                                                  const std::string& routing_reason,
                                                  std::int64_t expires_at_us,
                                                  db::Deadline deadline) {
  LEDGER_CO_TRY(auto current, co_await LockOrderTx(conn, order_id, deadline));
  if (!current) co_return make_error_code(db::Errc::bad_value);
  const auto from = ParseOrderStatus(current->status);
  if (!from || !Allowed(*from, OrderStatus::kProcessing)) {
    co_return make_error_code(ledger::Errc::inconsistent_state);
  }
  LEDGER_CO_TRY(auto updated,
                co_await conn.Execute(kReleaseHeldOrder, Params().Add(order_id).Add(expires_at_us),
                                      deadline));
  if (updated.rows() != 1) co_return make_error_code(db::Errc::bad_value);
  LEDGER_CO_TRY(auto after, ParseOrder(updated, 0));
  // The attempt and tasks InsertOrder gives a new order. A named vector, not a braced temporary
  // inside the co_await, which GCC 12 may destroy twice.
  std::vector<Order> released{after};
  released.front().routing_reason = routing_reason;
  released.front().expires_at_us = expires_at_us;
  LEDGER_CO_TRYV(co_await InsertFirstAttemptsTx(conn, released, deadline));
  co_return after;
}

asio::awaitable<Result<Order>> FailHeldOrderTx(PgConnection& conn, const Books& books,
                                               const std::string& order_id,
                                               const std::string& failure_code,
                                               const std::string& failure_message,
                                               db::Deadline deadline) {
  LEDGER_CO_TRY(auto current, co_await LockOrderTx(conn, order_id, deadline));
  if (!current) co_return make_error_code(db::Errc::bad_value);
  const auto from = ParseOrderStatus(current->status);
  if (!from || !Allowed(*from, OrderStatus::kFailed)) {
    co_return make_error_code(ledger::Errc::inconsistent_state);
  }
  LEDGER_CO_TRY(auto updated, co_await conn.Execute(kUpdateOrder,
                                                    Params()
                                                        .Add(order_id)
                                                        .Add(ToString(OrderStatus::kFailed))
                                                        .Add(std::int64_t{0})
                                                        .Add(failure_code)
                                                        .Add(failure_message)
                                                        .Add("")
                                                        .Add(""),
                                                    deadline));
  if (updated.rows() != 1) co_return make_error_code(db::Errc::bad_value);
  LEDGER_CO_TRY(auto after, ParseOrder(updated, 0));
  api::v1::Event event;
  *event.mutable_payment() = ToApi(after);
  LEDGER_CO_TRYV(co_await WriteEvent(conn, books, after.principal, "payment.failed", order_id,
                                     std::move(event), deadline));
  co_return after;
}

asio::awaitable<Result<PayerHistory>> ReadPayerHistory(
    db::PgPool& pool, const std::string& principal, const std::string& payer_id,
    const std::string& policy_number, const std::string& currency, db::Deadline deadline) {
  LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(auto r, co_await lease->Execute(
                            kPayerHistory,
                            Params().Add(payer_id).Add(principal).Add(policy_number).Add(currency),
                            deadline));
  PayerHistory h;
  if (r.rows() != 1) co_return h;
  if (!r.IsNull(0, 0)) {
    LEDGER_CO_TRY(h.payer_first_seen_us, r.GetInt64(0, 0));
  }
  if (!r.IsNull(0, 1)) {
    LEDGER_CO_TRY(h.policy_first_order_us, r.GetInt64(0, 1));
  }
  LEDGER_CO_TRY(h.policy_captured_minor, r.GetInt64(0, 2));
  co_return h;
}

asio::awaitable<Result<std::optional<Order>>> FindOrder(db::PgPool& pool,
                                                        const std::string& principal,
                                                        const std::string& id,
                                                        db::Deadline deadline) {
  co_return co_await QueryOne<Order>(pool, kSelectOrder, Params().Add(id).Add(principal), deadline,
                                     ParseOrder);
}

asio::awaitable<Result<std::optional<Order>>> FindOrderByClientReference(
    db::PgPool& pool, const std::string& principal, const std::string& client_reference,
    db::Deadline deadline) {
  co_return co_await QueryOne<Order>(
      pool, kSelectOrderByKey, Params().Add(principal).Add(client_reference), deadline, ParseOrder);
}

asio::awaitable<Result<std::optional<Order>>> FindOrderById(db::PgPool& pool, const std::string& id,
                                                            db::Deadline deadline) {
  co_return co_await QueryOne<Order>(pool, kSelectOrderById, Params().Add(id), deadline,
                                     ParseOrder);
}

asio::awaitable<Result<std::optional<Attempt>>> FindAttempt(db::PgPool& pool,
                                                            const std::string& order_id,
                                                            std::int32_t seq,
                                                            db::Deadline deadline) {
  co_return co_await QueryOne<Attempt>(pool, kSelectAttempt, Params().Add(order_id).Add(seq),
                                       deadline, ParseAttempt);
}

asio::awaitable<Result<OrderPage>> ListOrders(db::PgPool& pool, const ListQuery& query,
                                              db::Deadline deadline) {
  Params params;
  params.Add(query.principal)
      .Add(query.policy_number)
      .Add(query.status)
      .Add(query.created_from_us)
      .Add(query.created_to_us);
  if (query.after) {
    params.Add(query.after->created_at_us).Add(query.after->id);
  } else {
    params.AddNull().Add("");
  }
  params.Add(query.limit + 1);
  LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(auto rows, co_await lease->Execute(kListOrders, std::move(params), deadline));
  OrderPage page;
  for (int row = 0; row < rows.rows() && row < query.limit; ++row) {
    LEDGER_CO_TRY(auto order, ParseOrder(rows, row));
    page.orders.push_back(std::move(order));
  }
  if (rows.rows() > query.limit && !page.orders.empty()) {
    page.next_cursor =
        fmt::format("{}.{}", page.orders.back().created_at_us, page.orders.back().id);
  }
  co_return page;
}

// ---- Refunds ----

asio::awaitable<Result<std::optional<Refund>>> FindRefund(db::PgPool& pool,
                                                          const std::string& principal,
                                                          const std::string& id,
                                                          db::Deadline deadline) {
  co_return co_await QueryOne<Refund>(pool, kSelectRefund, Params().Add(id).Add(principal),
                                      deadline, ParseRefund);
}

asio::awaitable<Result<std::optional<std::pair<Refund, Order>>>> FindRefundForProvider(
    db::PgPool& pool, const std::string& id, db::Deadline deadline) {
  LEDGER_CO_TRY(auto refund, co_await QueryOne<Refund>(pool, kSelectRefundById, Params().Add(id),
                                                       deadline, ParseRefund));
  if (!refund) co_return std::optional<std::pair<Refund, Order>>();
  LEDGER_CO_TRY(auto order, co_await FindOrderById(pool, refund->order_id, deadline));
  if (!order) co_return std::optional<std::pair<Refund, Order>>();
  co_return std::optional<std::pair<Refund, Order>>(
      std::pair<Refund, Order>(std::move(*refund), std::move(*order)));
}

asio::awaitable<Result<Reservation>> ReserveRefund(db::PgPool& pool, const std::string& principal,
                                                   const std::string& client_reference,
                                                   const std::string& payment_id,
                                                   std::int64_t amount_minor,
                                                   const std::string& reason,
                                                   db::Deadline deadline) {
  co_return co_await db::RunInTransaction(
      pool, deadline, db::TransactionOptions{},
      [&](PgConnection& conn) -> asio::awaitable<Result<Reservation>> {
        Reservation out;
        // The order's lock first: every refund of this order queues here, so the check below
        // sees every reservation committed before it.
        LEDGER_CO_TRY(auto locked,
                      co_await conn.Execute(kLockOrderOfPrincipal,
                                            Params().Add(payment_id).Add(principal), deadline));
        LEDGER_CO_TRY(auto existing, co_await conn.Execute(
                                         kSelectRefundByKey,
                                         Params().Add(principal).Add(client_reference), deadline));
        if (existing.rows() == 1) {
          out.outcome = ReserveOutcome::kExisting;
          LEDGER_CO_TRY(out.refund, ParseRefund(existing, 0));
          co_return out;
        }
        if (locked.rows() != 1) {
          out.outcome = ReserveOutcome::kNoSuchPayment;
          co_return out;
        }
        LEDGER_CO_TRY(out.order, ParseOrder(locked, 0));
        if (out.order.status != ToString(OrderStatus::kSucceeded)) {
          out.outcome = ReserveOutcome::kNotSucceeded;
          co_return out;
        }
        out.refundable_minor = out.order.captured_minor - out.order.refund_reserved_minor;
        const std::int64_t amount = amount_minor == 0 ? out.refundable_minor : amount_minor;
        if (amount <= 0 || amount > out.refundable_minor) {
          out.outcome = ReserveOutcome::kExceedsRefundable;
          co_return out;
        }
        LEDGER_CO_TRY(auto inserted, co_await conn.Execute(kInsertRefund,
                                                           Params()
                                                               .Add(NewId("re_"))
                                                               .Add(payment_id)
                                                               .Add(principal)
                                                               .Add(client_reference)
                                                               .Add(amount)
                                                               .Add(out.order.currency)
                                                               .Add(reason),
                                                           deadline));
        LEDGER_CO_TRY(out.refund, ParseRefund(inserted, 0));
        LEDGER_CO_TRYV(
            co_await conn.Execute(kReserveRefund, Params().Add(payment_id).Add(amount), deadline));
        LEDGER_CO_TRYV(co_await conn.Execute(
            kScheduleTask, Params().Add("inquire_refund").Add(out.refund.id).Add(kFirstInquiryS),
            deadline));
        out.outcome = ReserveOutcome::kReserved;
        co_return out;
      });
}

// ---- Applying provider answers ----

asio::awaitable<Result<std::string>> ApplyPaymentResultTx(PgConnection& conn, const Books& books,
                                                          const std::string& order_id,
                                                          std::int32_t seq,
                                                          const adapters::ProviderResult& result,
                                                          bool closing, db::Deadline deadline,
                                                          Order* order_after) {
  LEDGER_CO_TRY(auto locked, co_await conn.Execute(kLockOrder, Params().Add(order_id), deadline));
  if (locked.rows() != 1) co_return std::string("no such order");
  LEDGER_CO_TRY(Order order, ParseOrder(locked, 0));
  if (order_after != nullptr) *order_after = order;
  LEDGER_CO_TRY(auto attempt_rows,
                co_await conn.Execute(kLockAttempt, Params().Add(order_id).Add(seq), deadline));
  if (attempt_rows.rows() != 1) co_return std::string("no such attempt");
  LEDGER_CO_TRY(Attempt attempt, ParseAttempt(attempt_rows, 0));

  const auto from = ParseAttemptStatus(attempt.status);
  if (!from) co_return make_error_code(db::Errc::bad_value);
  AttemptStatus to = closing && result.outcome == adapters::Outcome::kSucceeded
                         ? AttemptStatus::kClosed
                         : AttemptStatusFor(result.outcome);
  std::string detail = result.detail;
  if (to == AttemptStatus::kSucceeded && result.amount_minor != 0 &&
      result.amount_minor != order.amount_minor) {
    // The provider reports another amount than we asked for: never book it silently.
    log::Get("payments")
        ->critical("order {}: provider reports {} paid, expected {}", order_id, result.amount_minor,
                   order.amount_minor);
    to = AttemptStatus::kUnknown;
    detail = fmt::format("amount mismatch: provider reports {}", result.amount_minor);
  }
  if (to == *from || !Allowed(*from, to)) {
    if (to == AttemptStatus::kSucceeded && *from != AttemptStatus::kSucceeded) {
      // Money moved on an attempt we consider finished: reconciliation and an operator must
      // look at it (refund the payer). Never silently ignored.
      log::Get("payments")
          ->critical("order {} attempt {}: provider reports success after {}; needs manual refund",
                     order_id, seq, attempt.status);
    }
    co_return fmt::format("no effect: attempt {} stays {}", seq, attempt.status);
  }
  LEDGER_CO_TRYV(co_await conn.Execute(kUpdateAttempt,
                                       Params()
                                           .Add(order_id)
                                           .Add(seq)
                                           .Add(ToString(to))
                                           .Add(result.provider_transaction_id)
                                           .Add(detail),
                                       deadline));
  std::string effect = fmt::format("attempt {} {} -> {}", seq, attempt.status, ToString(to));
  const std::string reference = AttemptReference(order_id, seq);
  if (IsTerminal(to)) {
    LEDGER_CO_TRYV(co_await conn.Execute(kDeleteTask,
                                         Params().Add("inquire_attempt").Add(reference), deadline));
  }
  if (seq != order.attempt_count) co_return effect;  // An older attempt: the order moved on.

  const auto order_from = ParseOrderStatus(order.status);
  const OrderStatus order_to = OrderStatusFor(to);
  if (!order_from || order_to == *order_from || !Allowed(*order_from, order_to)) co_return effect;

  std::int64_t captured = 0;
  std::string failure_code, failure_message, action_type, action_value;
  switch (order_to) {
    case OrderStatus::kSucceeded:
      captured = order.amount_minor;
      break;
    case OrderStatus::kPending:
      action_type =
          result.next_action_type.empty() ? order.next_action_type : result.next_action_type;
      action_value =
          result.next_action_type.empty() ? order.next_action_value : result.next_action_value;
      break;
    case OrderStatus::kProcessing:
      action_type = order.next_action_type;
      action_value = order.next_action_value;
      break;
    case OrderStatus::kFailed:
      if (to == AttemptStatus::kNotSent) {
        failure_code = "provider_unreachable";
        failure_message = "The provider could not be reached; nothing was charged.";
      } else {
        failure_code = result.decline_code.empty() ? "declined" : result.decline_code;
        failure_message = result.decline_message;
      }
      break;
    case OrderStatus::kClosed:
      failure_code = result.decline_code.empty() ? "closed" : result.decline_code;
      failure_message = result.decline_message.empty() ? "The payment was closed unpaid."
                                                       : result.decline_message;
      break;
    case OrderStatus::kRequiresReview:
      co_return effect;  // No provider answer leads back to review (OrderStatusFor never says so).
  }
  LEDGER_CO_TRY(auto updated, co_await conn.Execute(kUpdateOrder,
                                                    Params()
                                                        .Add(order_id)
                                                        .Add(ToString(order_to))
                                                        .Add(captured)
                                                        .Add(failure_code)
                                                        .Add(failure_message)
                                                        .Add(action_type)
                                                        .Add(action_value),
                                                    deadline));
  LEDGER_CO_TRY(Order after, ParseOrder(updated, 0));
  effect += fmt::format("; order {} -> {}", order.status, after.status);
  if (order_after != nullptr) *order_after = after;

  if (order_to == OrderStatus::kSucceeded) {
    // Dr provider clearing / Cr premiums received (DESIGN.md §4), in this transaction.
    ledger::Transfer t;
    t.id.value = "premium:" + order_id;
    t.debit_account_id = ledger::AccountIdFor(order.currency, ClearingAccount(order));
    t.credit_account_id = ledger::AccountIdFor(order.currency, "premiums_received");
    t.amount = order.amount_minor;
    t.currency = order.currency;
    t.reason_code = kReasonPremium;
    t.external_ref = order_id;
    LEDGER_CO_TRYV(co_await PostOne(conn, books.ledger, std::move(t), deadline));
  }
  if (IsTerminal(order_to)) {
    LEDGER_CO_TRYV(
        co_await conn.Execute(kDeleteTask, Params().Add("expire_order").Add(order_id), deadline));
  }
  if (order_to != OrderStatus::kProcessing) {
    api::v1::Event event;
    *event.mutable_payment() = ToApi(after);
    LEDGER_CO_TRYV(co_await WriteEvent(conn, books, order.principal,
                                       "payment." + std::string(ToString(order_to)), order_id,
                                       std::move(event), deadline));
  }
  co_return effect;
}

asio::awaitable<Result<std::string>> ApplyRefundResultTx(PgConnection& conn, const Books& books,
                                                         const std::string& refund_id,
                                                         const adapters::ProviderResult& result,
                                                         db::Deadline deadline) {
  const RefundStatus to = RefundStatusFor(result.outcome);
  if (to == RefundStatus::kProcessing) co_return std::string("no effect: not final");
  // Lock order: the order, then the refund.
  LEDGER_CO_TRY(auto found,
                co_await conn.Execute(kSelectRefundById, Params().Add(refund_id), deadline));
  if (found.rows() != 1) co_return std::string("no such refund");
  LEDGER_CO_TRY(Refund peek, ParseRefund(found, 0));
  LEDGER_CO_TRY(auto locked,
                co_await conn.Execute(kLockOrder, Params().Add(peek.order_id), deadline));
  if (locked.rows() != 1) co_return make_error_code(db::Errc::bad_value);
  LEDGER_CO_TRY(Order order, ParseOrder(locked, 0));
  LEDGER_CO_TRY(auto refund_rows,
                co_await conn.Execute(kLockRefund, Params().Add(refund_id), deadline));
  LEDGER_CO_TRY(Refund refund, ParseRefund(refund_rows, 0));
  const auto from = ParseRefundStatus(refund.status);
  if (!from) co_return make_error_code(db::Errc::bad_value);
  if (to == RefundStatus::kSucceeded && result.amount_minor != 0 &&
      result.amount_minor != refund.amount_minor) {
    log::Get("payments")
        ->critical("refund {}: provider reports {} refunded, expected {}", refund_id,
                   result.amount_minor, refund.amount_minor);
    co_return std::string("no effect: amount mismatch");
  }
  if (*from == to || !Allowed(*from, to)) {
    if (*from != to) {
      log::Get("payments")
          ->critical("refund {}: provider reports {} after {}", refund_id, ToString(to),
                     refund.status);
    }
    co_return fmt::format("no effect: refund stays {}", refund.status);
  }
  std::string failure_code, failure_message;
  if (to == RefundStatus::kFailed) {
    failure_code = result.outcome == adapters::Outcome::kNotSent
                       ? "provider_unreachable"
                       : (result.decline_code.empty() ? "declined" : result.decline_code);
    failure_message = result.decline_message;
  }
  LEDGER_CO_TRY(auto updated, co_await conn.Execute(kUpdateRefund,
                                                    Params()
                                                        .Add(refund_id)
                                                        .Add(ToString(to))
                                                        .Add(result.provider_transaction_id)
                                                        .Add(failure_code)
                                                        .Add(failure_message),
                                                    deadline));
  LEDGER_CO_TRY(Refund after, ParseRefund(updated, 0));
  // Succeeded: refunded += amount (the reservation stays, now as refunded). Failed: the
  // reservation is released and the amount is refundable again.
  const bool succeeded = to == RefundStatus::kSucceeded;
  LEDGER_CO_TRYV(co_await conn.Execute(kSettleRefund,
                                       Params()
                                           .Add(order.id)
                                           .Add(succeeded ? refund.amount_minor : std::int64_t{0})
                                           .Add(succeeded ? std::int64_t{0} : refund.amount_minor),
                                       deadline));
  if (succeeded) {
    // Dr premiums received / Cr provider clearing (DESIGN.md §4).
    ledger::Transfer t;
    t.id.value = "refund:" + refund_id;
    t.debit_account_id = ledger::AccountIdFor(order.currency, "premiums_received");
    t.credit_account_id = ledger::AccountIdFor(order.currency, ClearingAccount(order));
    t.amount = refund.amount_minor;
    t.currency = order.currency;
    t.reason_code = kReasonRefund;
    t.external_ref = refund_id;
    LEDGER_CO_TRYV(co_await PostOne(conn, books.ledger, std::move(t), deadline));
  }
  LEDGER_CO_TRYV(
      co_await conn.Execute(kDeleteTask, Params().Add("inquire_refund").Add(refund_id), deadline));
  api::v1::Event event;
  *event.mutable_refund() = ToApi(after);
  LEDGER_CO_TRYV(co_await WriteEvent(conn, books, refund.principal,
                                     "refund." + std::string(ToString(to)), refund_id,
                                     std::move(event), deadline));
  co_return fmt::format("refund {} -> {}", refund.status, after.status);
}

// ---- Callbacks ----

asio::awaitable<Result<std::int64_t>> StoreCallback(db::PgPool& pool, const std::string& provider,
                                                    const adapters::CallbackRequest& request,
                                                    const adapters::CallbackEvent& event,
                                                    db::Deadline deadline) {
  co_return co_await db::RunInTransaction(
      pool, deadline, db::TransactionOptions{},
      [&](PgConnection& conn) -> asio::awaitable<Result<std::int64_t>> {
        const char* kind = event.kind == adapters::CallbackEvent::Kind::kRefund   ? "refund"
                           : event.kind == adapters::CallbackEvent::Kind::kPayout ? "payout"
                                                                                  : "payment";
        LEDGER_CO_TRY(auto inserted,
                      co_await conn.Execute(kInsertCallback,
                                            Params()
                                                .Add(provider)
                                                .Add(request.merchant_account)
                                                .Add(event.dedup_key)
                                                .Add(kind)
                                                .Add(event.reference)
                                                .Add(adapters::OutcomeName(event.result.outcome))
                                                .Add(event.result.provider_transaction_id)
                                                .Add(event.result.amount_minor)
                                                .Add(event.result.decline_code)
                                                .Add(event.result.decline_message)
                                                .AddBytea(std::string_view(request.body)),
                                            deadline));
        if (inserted.rows() == 0) co_return std::int64_t{0};
        LEDGER_CO_TRY(const std::int64_t id, inserted.GetInt64(0, 0));
        // Applied right after the acknowledgement; this task applies it if we crash first.
        LEDGER_CO_TRYV(co_await conn.Execute(
            kScheduleTask,
            Params().Add("apply_callback").Add(std::to_string(id)).Add(std::int64_t{30}),
            deadline));
        co_return id;
      });
}

asio::awaitable<Result<void>> ApplyCallbackTx(PgConnection& conn, const Books& books,
                                              std::int64_t callback_id, db::Deadline deadline) {
  LEDGER_CO_TRY(auto rows,
                co_await conn.Execute(kLockCallback, Params().Add(callback_id), deadline));
  if (rows.rows() != 1) co_return outcome::success();
  LEDGER_CO_TRY(auto applied, rows.GetBool(0, 7));
  if (applied) co_return outcome::success();
  LEDGER_CO_TRY(auto kind, rows.GetText(0, 0));
  LEDGER_CO_TRY(auto reference, rows.GetText(0, 1));
  LEDGER_CO_TRY(auto outcome_name, rows.GetText(0, 2));
  adapters::ProviderResult result;
  result.outcome = adapters::Outcome::kUnknown;
  for (auto o :
       {adapters::Outcome::kSucceeded, adapters::Outcome::kPending, adapters::Outcome::kDeclined,
        adapters::Outcome::kNotSent, adapters::Outcome::kUnknown}) {
    if (adapters::OutcomeName(o) == outcome_name) result.outcome = o;
  }
  LEDGER_CO_TRY(auto ptx, rows.GetText(0, 3));
  result.provider_transaction_id = ptx;
  LEDGER_CO_TRY(result.amount_minor, rows.GetInt64(0, 4));
  LEDGER_CO_TRY(auto decline_code, rows.GetText(0, 5));
  result.decline_code = decline_code;
  LEDGER_CO_TRY(auto decline_message, rows.GetText(0, 6));
  result.decline_message = decline_message;
  result.detail = "callback";
  LEDGER_CO_TRY(auto provider, rows.GetText(0, 8));
  LEDGER_CO_TRY(auto merchant, rows.GetText(0, 9));

  std::string effect;
  if (kind == "refund") {
    LEDGER_CO_TRY(effect, co_await ApplyRefundResultTx(conn, books, std::string(reference), result,
                                                       deadline));
  } else if (kind == "payout") {
    if (books.payout_callback) {
      LEDGER_CO_TRY(
          effect, co_await books.payout_callback(conn, std::string(provider), std::string(merchant),
                                                 std::string(reference), result));
    } else {
      effect = "no effect: payouts are not configured";
    }
  } else if (const auto ref = ParseAttemptReference(reference)) {
    // The attempt must belong to the account that sent the callback.
    LEDGER_CO_TRY(
        auto attempt,
        co_await conn.Execute(kSelectAttempt, Params().Add(ref->first).Add(ref->second), deadline));
    bool ours = false;
    if (attempt.rows() == 1) {
      LEDGER_CO_TRY(auto a, ParseAttempt(attempt, 0));
      ours = a.provider == provider && a.merchant_account == merchant;
    }
    if (ours) {
      LEDGER_CO_TRY(effect, co_await ApplyPaymentResultTx(conn, books, ref->first, ref->second,
                                                          result, false, deadline));
    } else {
      effect = "no effect: reference not from this provider account";
    }
  } else {
    effect = "no effect: unknown reference";
  }
  LEDGER_CO_TRYV(
      co_await conn.Execute(kMarkCallbackApplied, Params().Add(callback_id).Add(effect), deadline));
  LEDGER_CO_TRYV(co_await conn.Execute(
      kDeleteTask, Params().Add("apply_callback").Add(std::to_string(callback_id)), deadline));
  co_return outcome::success();
}

// ---- Janitor schedule ----

asio::awaitable<Result<std::vector<JanitorTask>>> ClaimTasks(db::PgPool& pool, std::int32_t limit,
                                                             std::chrono::seconds lease,
                                                             db::Deadline deadline) {
  LEDGER_CO_TRY(auto conn, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(auto rows,
                co_await conn->Execute(
                    kClaimTasks, Params().Add(limit).Add(static_cast<std::int64_t>(lease.count())),
                    deadline));
  std::vector<JanitorTask> tasks;
  for (int row = 0; row < rows.rows(); ++row) {
    JanitorTask task;
    LEDGER_CO_TRY(auto kind, rows.GetText(row, 0));
    task.kind = kind;
    LEDGER_CO_TRY(auto object_id, rows.GetText(row, 1));
    task.object_id = object_id;
    LEDGER_CO_TRY(auto attempts, rows.GetInt64(row, 2));
    task.attempts = static_cast<std::int32_t>(attempts);
    tasks.push_back(std::move(task));
  }
  co_return tasks;
}

asio::awaitable<Result<void>> FinishTask(db::PgPool& pool, const std::string& kind,
                                         const std::string& object_id, db::Deadline deadline) {
  LEDGER_CO_TRY(auto conn, co_await pool.Acquire(deadline));
  LEDGER_CO_TRYV(co_await conn->Execute(kDeleteTask, Params().Add(kind).Add(object_id), deadline));
  co_return outcome::success();
}

asio::awaitable<Result<void>> RescheduleTask(db::PgPool& pool, const std::string& kind,
                                             const std::string& object_id,
                                             std::chrono::seconds delay, bool manual,
                                             const std::string& error, db::Deadline deadline) {
  LEDGER_CO_TRY(auto conn, co_await pool.Acquire(deadline));
  LEDGER_CO_TRYV(co_await conn->Execute(kRescheduleTask,
                                        Params()
                                            .Add(kind)
                                            .Add(object_id)
                                            .Add(static_cast<std::int64_t>(delay.count()))
                                            .Add(manual)
                                            .Add(error),
                                        deadline));
  co_return outcome::success();
}

}  // namespace paygate::payments::store
