#include "gateway/payments/service.h"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <charconv>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <google/protobuf/util/json_util.h>

#include "config/logging.h"
#include "gateway/fraud/events.h"
#include "gateway/fraud/service.h"
#include "gateway/fraud/store.h"
#include "gateway/payments/store.h"
#include "gateway/utc_time.h"
#include "ledger/db/coalescer.h"
#include "ledger/db/params.h"
#include "ledger/db/transaction.h"
#include "ledger/ledger/chart.h"
#include "ledger/ledger/try.h"

namespace paygate::payments {

namespace asio = boost::asio;
using db::Params;
using db::PgConnection;

// ---- AdapterRegistry ----

void AdapterRegistry::Add(std::string merchant_account,
                          std::shared_ptr<adapters::Adapter> adapter) {
  std::string provider(adapter->provider());
  adapters_[{std::move(provider), std::move(merchant_account)}] = std::move(adapter);
}

adapters::Adapter* AdapterRegistry::Find(std::string_view provider,
                                         std::string_view merchant_account) const {
  const auto it = adapters_.find(std::pair<std::string, std::string>(provider, merchant_account));
  return it == adapters_.end() ? nullptr : it->second.get();
}

std::vector<std::pair<std::string, std::string>> AdapterRegistry::Accounts() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [key, adapter] : adapters_) out.push_back(key);
  return out;
}

PaymentsOptions PaymentsOptionsFromConfig(const config::v1::Config& config) {
  const config::v1::Payments& p = config.payments();
  PaymentsOptions options;
  options.amount_min_minor = static_cast<std::int64_t>(p.amount_min_minor());
  options.amount_max_minor = static_cast<std::int64_t>(p.amount_max_minor());
  options.currencies.insert(p.currencies().begin(), p.currencies().end());
  options.order_ttl = std::chrono::seconds(p.order_ttl_s());
  options.callback_base_url = p.callback_base_url();
  for (const auto& route : p.routes()) {
    options.routes[route.method()] = {route.provider(), route.merchant_account()};
  }
  options.provider_timeout = std::chrono::milliseconds(p.provider_timeout_ms());
  options.db_timeout = std::chrono::milliseconds(config.database().statement_timeout_ms());
  options.inquiries_max = config.janitor().attempts_max();
  options.event_retry_window = std::chrono::seconds(config.events().retry_window_s());
  for (const auto& route : config.payouts().routes()) {
    options.payout_clearing.emplace(route.provider(), route.merchant_account());
  }
  return options;
}

namespace {

ApiError Invalid(std::string code, std::string message, std::string param = {}) {
  return {400, "invalid_request_error", std::move(code), std::move(message), std::move(param)};
}
ApiError NotFound(std::string code, std::string message) {
  return {404, "not_found_error", std::move(code), std::move(message), {}};
}
ApiError Conflict(std::string code, std::string message) {
  return {409, "conflict_error", std::move(code), std::move(message), {}};
}
ApiError Unavailable(std::error_code ec) {
  log::Get("payments")->warn("database unavailable: {}", ec.message());
  return {503,
          "unavailable_error",
          "database_unavailable",
          "The payment store is unavailable; retry with the same Idempotency-Key.",
          {}};
}
ApiError ProviderUnavailable() {
  return {503,
          "unavailable_error",
          "provider_unavailable",
          "The provider did not give a usable answer; retry with the same Idempotency-Key.",
          {}};
}

// A payment the fraud rules refused: 422 with the reasons; the order is stored failed.
ApiError RiskBlocked(const store::Order& order) {
  return {422,
          "risk_error",
          "risk_blocked",
          fmt::format("Payment {} was refused by the fraud rules and stored failed: {}", order.id,
                      order.failure_message),
          {}};
}

// The answer to a create whose client reference already names an order: that order as it stands
// (a refused one refused again), or 422 when the request differs.
ApiResult<api::v1::Payment> Existing(const store::Order& requested, const store::Order& existing) {
  if (existing.policy_number != requested.policy_number ||
      existing.amount_minor != requested.amount_minor || existing.currency != requested.currency ||
      existing.method != requested.method || existing.payer_id != requested.payer_id) {
    return ApiError{422,
                    "idempotency_error",
                    "client_reference_reused",
                    "This Idempotency-Key created a different payment.",
                    {}};
  }
  if (existing.failure_code == "risk_blocked") return RiskBlocked(existing);
  return store::ToApi(existing);
}

bool IsToken(std::string_view s, std::size_t max) {
  return !s.empty() && s.size() <= max &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return c >= 0x20 && c != 0x7f; });
}

// The janitor's inquiry schedule after the n-th unanswered inquiry: 1 min, 5 min, 1 h, then daily
// (DESIGN.md §3).
std::chrono::seconds InquiryDelay(std::int32_t attempts) {
  switch (attempts) {
    case 0:
    case 1:
      return std::chrono::minutes(1);
    case 2:
      return std::chrono::minutes(5);
    case 3:
      return std::chrono::hours(1);
    default:
      return std::chrono::hours(24);
  }
}

std::chrono::system_clock::time_point FromMicros(std::int64_t us) {
  return std::chrono::system_clock::time_point(std::chrono::microseconds(us));
}

// The provider call for a refund; the same fields every time it is sent.
adapters::RefundRequest MakeRefundRequest(const store::Order& order, const store::Refund& refund,
                                          std::string notify_url) {
  adapters::RefundRequest call;
  call.merchant_account = order.merchant_account;
  call.payment_reference = store::AttemptReference(order.id, order.attempt_count);
  call.refund_reference = refund.provider_reference;
  call.amount_minor = refund.amount_minor;
  call.payment_amount_minor = order.captured_minor;
  call.currency = refund.currency;
  call.reason = refund.reason;
  call.notify_url = std::move(notify_url);
  // Attempts are written in the transaction that writes their order (InsertOrder), so the
  // order's creation time is its attempt's.
  call.payment_created_at = FromMicros(order.created_at_us);
  call.created_at = FromMicros(refund.created_at_us);
  return call;
}

}  // namespace

// ---- Rows ----

struct PaymentService::OrderRow : store::Order {};
struct PaymentService::RefundRow : store::Refund {};

struct PaymentService::IntentQueue {
  explicit IntentQueue(PaymentService& service)
      : coalescer(
            service.pool_.executor(),
            db::CoalescerOptions{.batch_weight_max = service.options_.intent_batch_max,
                                 .batch_wait_max_us = std::chrono::microseconds(0),
                                 .queue_weight_max = service.options_.intent_queue_max},
            db::CoalescerErrors{.too_large = make_error_code(db::Errc::bad_value),
                                .overloaded = make_error_code(db::Errc::pool_exhausted),
                                .closed = make_error_code(db::Errc::pool_closed)},
            [&pool = service.pool_](std::span<store::OrderIntent> batch, db::Deadline deadline)
                -> asio::awaitable<Result<std::vector<store::InsertedOrder>>> {
              co_return co_await store::InsertOrders(pool, batch, deadline);
            }) {}

  db::Coalescer<store::OrderIntent, store::InsertedOrder> coalescer;
};

PaymentService::PaymentService(db::PgPool& pool, ledger::PostgresLedger& ledger,
                               std::shared_ptr<const AdapterRegistry> adapters,
                               PaymentsOptions options)
    : pool_(pool),
      ledger_(ledger),
      adapters_(std::move(adapters)),
      options_(std::move(options)),
      books_{ledger_, options_.event_retry_window},
      intents_(std::make_unique<IntentQueue>(*this)) {}

PaymentService::~PaymentService() = default;

void PaymentService::AttachPayouts(PayoutHooks hooks) {
  books_.payout_callback = std::move(hooks.apply_callback);
  payout_tasks_ = std::move(hooks.run_task);
}

db::Deadline PaymentService::DbDeadline() const { return db::Clock::now() + options_.db_timeout; }

std::string PaymentService::NotifyUrl(std::string_view provider,
                                      std::string_view merchant_account) const {
  return fmt::format("{}/v1/callbacks/{}/{}", options_.callback_base_url, provider,
                     merchant_account);
}

asio::awaitable<Result<void>> PaymentService::EnsureChartOfAccounts() {
  for (const std::string& currency : options_.currencies) {
    // Two specs: the accounts payouts draw on never go below zero; the others may (fees can
    // arrive before their settlement). The rest of the chart is the same in both.
    ledger::ChartSpec spec, guarded;
    spec.currency = guarded.currency = currency;
    guarded.clearing_must_not_go_negative = true;
    for (const auto& [provider, merchant] : adapters_->Accounts()) {
      const bool pays_out = options_.payout_clearing.contains({provider, merchant});
      (pays_out ? guarded : spec).clearing.push_back({provider, merchant});
    }
    for (const ledger::ChartSpec* chart : {&spec, &guarded}) {
      auto results = co_await ledger_.CreateAccounts(ledger::StandardChart(*chart), DbDeadline());
      if (!results) co_return results.error();
      for (const auto result : results.value()) {
        if (result != ledger::AccountResult::kOk && result != ledger::AccountResult::kExists) {
          log::Get("payments")
              ->error("chart of accounts for {}: {}", currency, ledger::ToString(result));
          co_return make_error_code(ledger::Errc::inconsistent_state);
        }
      }
    }
  }
  co_return outcome::success();
}

// ---- Create ----

asio::awaitable<ApiResult<api::v1::Payment>> PaymentService::CreatePayment(
    std::string principal, std::string client_reference, api::v1::CreatePaymentRequest request,
    std::chrono::microseconds* provider_time) {
  // Validation: each failure names its field.
  if (request.policy_number().empty()) {
    co_return Invalid("parameter_missing", "policy_number is required.", "policy_number");
  }
  if (!IsToken(request.policy_number(), 64)) {
    co_return Invalid("parameter_invalid", "policy_number must be 1..64 printable characters.",
                      "policy_number");
  }
  if (!request.payer_id().empty() && !IsToken(request.payer_id(), 64)) {
    co_return Invalid("parameter_invalid", "payer_id must be up to 64 printable characters.",
                      "payer_id");
  }
  if (request.description().size() > 128) {
    co_return Invalid("parameter_invalid", "description must be at most 128 bytes.", "description");
  }
  if (request.amount_minor() <= 0) {
    co_return Invalid("amount_invalid", "amount_minor must be a positive integer in minor units.",
                      "amount_minor");
  }
  if (request.amount_minor() < options_.amount_min_minor ||
      request.amount_minor() > options_.amount_max_minor) {
    co_return Invalid("amount_out_of_range",
                      fmt::format("amount_minor must be between {} and {}.",
                                  options_.amount_min_minor, options_.amount_max_minor),
                      "amount_minor");
  }
  if (!options_.currencies.contains(request.currency())) {
    co_return Invalid("currency_not_supported",
                      fmt::format("currency \"{}\" is not supported.", request.currency()),
                      "currency");
  }
  const auto route = options_.routes.find(request.method());
  adapters::Adapter* adapter =
      route == options_.routes.end()
          ? nullptr
          : adapters_->Find(route->second.provider, route->second.merchant_account);
  if (adapter == nullptr) {
    co_return Invalid("method_not_supported",
                      fmt::format("method \"{}\" is not supported.", request.method()), "method");
  }

  store::Order order;
  order.id = store::NewId("pay_");
  order.principal = principal;
  order.client_reference = client_reference;
  order.policy_number = request.policy_number();
  order.payer_id = request.payer_id();
  order.description = request.description();
  order.amount_minor = request.amount_minor();
  order.currency = request.currency();
  order.method = request.method();
  order.provider = route->second.provider;
  order.merchant_account = route->second.merchant_account;
  order.routing_reason = fmt::format("static route for method {}", request.method());

  const auto expires_at = std::chrono::system_clock::now() + options_.order_ttl;
  order.expires_at_us =
      std::chrono::duration_cast<std::chrono::microseconds>(expires_at.time_since_epoch()).count();

  // The fraud decision, before anything reaches the provider (DESIGN.md §3). A blocked or held
  // order ends here; an allowed one is stored below together with its decision.
  std::shared_ptr<fraud::Verdict> verdict;
  if (risk_) {
    auto stopped = co_await Screen(principal, request, order, &verdict);
    if (stopped) co_return std::move(*stopped);
  }
  fraud::store::RecordedDecision recorded;
  store::TxHook record;
  if (verdict) {
    record = [&](PgConnection& conn) -> asio::awaitable<Result<void>> {
      auto stored =
          co_await fraud::store::RecordDecisionTx(conn, verdict->record, false, DbDeadline());
      if (!stored) co_return stored.error();
      recorded = std::move(stored).value();
      co_return outcome::success();
    };
  }

  // Transaction 1: the intent. An existing order for this client reference wins (a retry after a
  // crash or a lost response): it is answered as it stands, never created twice.
  // Shared with the creates arriving meanwhile: one transaction for all of them (group commit).
  store::OrderIntent intent{order, std::move(record)};
  auto created = co_await intents_->coalescer.Submit(std::move(intent), DbDeadline());
  if (!created) co_return Unavailable(created.error());
  if (!created.value().inserted) co_return Existing(order, created.value().order);
  if (verdict) risk_->Recorded(*verdict, recorded.event_id);
  // The stored order: its created_at is the attempt's, which every later call must name.
  co_return co_await SendFirstAttempt(adapter, std::move(created.value().order), expires_at,
                                      std::move(principal), provider_time);
}

asio::awaitable<ApiResult<api::v1::Payment>> PaymentService::SendFirstAttempt(
    adapters::Adapter* adapter, store::Order order,
    std::chrono::system_clock::time_point expires_at, std::string principal,
    std::chrono::microseconds* provider_time) {
  // The provider call, outside any transaction.
  adapters::CreatePaymentRequest call;
  call.merchant_account = order.merchant_account;
  call.provider_reference = store::AttemptReference(order.id, 1);
  call.amount_minor = order.amount_minor;
  call.currency = order.currency;
  call.method = order.method;
  call.description =
      order.description.empty() ? "Insurance premium " + order.policy_number : order.description;
  call.notify_url = NotifyUrl(order.provider, order.merchant_account);
  call.expires_at = expires_at;
  call.created_at = FromMicros(order.created_at_us);
  const auto call_started = std::chrono::steady_clock::now();
  const adapters::ProviderResult result = co_await adapter->CreatePayment(std::move(call));
  if (provider_time != nullptr) {
    *provider_time = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - call_started);
  }

  // Transaction 2: the answer. The client is answered with the order as it committed, not read
  // again: one statement and one pool lease less per payment.
  store::Order after;
  auto applied = co_await ApplyPaymentResult(order.id, 1, result, false, &after);
  if (!applied) {
    // The answer is lost with the database; the janitor's inquiry recovers it.
    co_return Unavailable(applied.error());
  }
  if (after.id.empty()) co_return co_await GetPayment(std::move(principal), order.id);
  co_return store::ToApi(after);
}

// ---- Fraud rules ----

asio::awaitable<std::optional<ApiResult<api::v1::Payment>>> PaymentService::Screen(
    const std::string& principal, const api::v1::CreatePaymentRequest& request, store::Order& order,
    std::shared_ptr<fraud::Verdict>* screened) {
  using Answer = std::optional<ApiResult<api::v1::Payment>>;
  // A retried create is answered as it stands and never decided (or counted) twice.
  auto existing = co_await store::FindOrderByClientReference(pool_, order.principal,
                                                             order.client_reference, DbDeadline());
  if (!existing) co_return Answer(Unavailable(existing.error()));
  if (existing.value()) co_return Answer(Existing(order, *existing.value()));

  auto history = co_await store::ReadPayerHistory(
      pool_, principal, order.payer_id, order.policy_number, order.currency, DbDeadline());
  if (!history) co_return Answer(Unavailable(history.error()));
  fraud::PremiumHistory past;
  if (history.value().payer_first_seen_us) {
    past.payer_first_seen_s = *history.value().payer_first_seen_us / 1000000;
  }
  if (history.value().policy_first_order_us) {
    past.policy_first_order_s = *history.value().policy_first_order_us / 1000000;
  }
  past.policy_captured_minor = history.value().policy_captured_minor;
  const std::int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
  fraud::EventTexts texts;
  auto event = fraud::PremiumPaymentEvent(request, principal, past, now_s, risk_->hasher(), texts);
  if (!event) {
    co_return Answer(Invalid("parameter_invalid",
                             fmt::format("{} is not valid for the fraud rules.", event.error()),
                             event.error()));
  }
  auto verdict = std::make_shared<fraud::Verdict>(
      risk_->Decide(event.value(), "payment", order.id, principal));
  if (!verdict->blocks() && !verdict->holds()) {
    *screened = std::move(verdict);
    co_return Answer();
  }

  // Stopped: stored without an attempt, so no provider ever sees it (and the janitor has nothing
  // to ask a provider about).
  if (verdict->blocks()) {
    order.status = std::string(ToString(OrderStatus::kFailed));
    order.failure_code = "risk_blocked";
    order.failure_message = verdict->reasons.substr(0, 1000);
  } else {
    order.status = std::string(ToString(OrderStatus::kRequiresReview));
  }
  fraud::store::RecordedDecision recorded;
  store::TxHook record = [&](PgConnection& conn) -> asio::awaitable<Result<void>> {
    auto stored = co_await fraud::store::RecordDecisionTx(conn, verdict->record, verdict->holds(),
                                                          DbDeadline());
    if (!stored) co_return stored.error();
    recorded = std::move(stored).value();
    co_return outcome::success();
  };
  auto created = co_await store::InsertStoppedOrder(pool_, books_, order, DbDeadline(), record);
  if (!created) co_return Answer(Unavailable(created.error()));
  if (!created.value().inserted) co_return Answer(Existing(order, created.value().order));
  risk_->Recorded(*verdict, recorded.event_id);
  log::Get("payments")
      ->info("payment {} {} by the fraud rules: {}", order.id,
             verdict->blocks() ? "blocked" : "held for review",
             fmt::join(verdict->reason_codes, ","));
  if (verdict->blocks()) co_return Answer(RiskBlocked(created.value().order));
  co_return Answer(store::ToApi(created.value().order));
}

asio::awaitable<ApiResult<PaymentService::ReviewResolution>> PaymentService::ResolveReview(
    std::string principal, std::string review_id, bool approve, std::string note) {
  if (note.size() > 256) {
    co_return Invalid("parameter_invalid", "note must be at most 256 bytes.", "note");
  }
  enum class Refusal { kNone, kNotFound, kNotPayment, kNotOpen, kSelf, kNotHeld };
  Refusal refusal = Refusal::kNone;
  store::Order order;
  const auto expires_at = std::chrono::system_clock::now() + options_.order_ttl;
  const std::int64_t expires_at_us =
      std::chrono::duration_cast<std::chrono::microseconds>(expires_at.time_since_epoch()).count();
  auto done = co_await db::RunInTransaction(
      pool_, DbDeadline(), db::TransactionOptions{},
      [&](PgConnection& conn) -> asio::awaitable<Result<void>> {
        refusal = Refusal::kNone;
        LEDGER_CO_TRY(auto review,
                      co_await fraud::store::LockReviewTx(conn, review_id, DbDeadline()));
        if (!review) {
          refusal = Refusal::kNotFound;
          co_return outcome::success();
        }
        if (review->object_type != "payment") {
          refusal = Refusal::kNotPayment;
          co_return outcome::success();
        }
        if (review->status != "open") {
          refusal = Refusal::kNotOpen;
          co_return outcome::success();
        }
        // Maker-checker: whoever submitted the payment never resolves its review.
        if (review->submitted_by == principal) {
          refusal = Refusal::kSelf;
          co_return outcome::success();
        }
        LEDGER_CO_TRY(auto held,
                      co_await store::LockOrderTx(conn, review->object_id, DbDeadline()));
        if (!held || held->status != ToString(OrderStatus::kRequiresReview)) {
          refusal = Refusal::kNotHeld;
          co_return outcome::success();
        }
        LEDGER_CO_TRYV(co_await fraud::store::ResolveReviewTx(
            conn, review_id, approve ? "approved" : "declined", principal, note, DbDeadline()));
        if (approve) {
          LEDGER_CO_TRY(order, co_await store::ReleaseHeldOrderTx(
                                   conn, review->object_id,
                                   fmt::format("static route for method {}; released by review "
                                               "{} ({})",
                                               held->method, review_id, principal),
                                   expires_at_us, DbDeadline()));
        } else {
          LEDGER_CO_TRY(order, co_await store::FailHeldOrderTx(
                                   conn, books_, review->object_id, "risk_declined",
                                   "Declined by a risk review.", DbDeadline()));
        }
        co_return outcome::success();
      });
  if (!done) co_return Unavailable(done.error());
  switch (refusal) {
    case Refusal::kNone:
      break;
    case Refusal::kNotFound:
      co_return NotFound("review_not_found", "No such review.");
    case Refusal::kNotPayment:
      co_return Conflict("review_not_supported", "Only payment reviews are resolved here.");
    case Refusal::kNotOpen:
      co_return Conflict("review_not_open", "The review is already resolved.");
    case Refusal::kSelf:
      co_return ApiError{403,
                         "permission_error",
                         "review_by_submitter",
                         "A review is resolved by a second principal, never by the one who "
                         "submitted the payment.",
                         {}};
    case Refusal::kNotHeld:
      co_return Conflict("payment_not_held", "The payment is no longer held for review.");
  }
  log::Get("payments")
      ->info("payment {} review {} {} by {}", order.id, review_id,
             approve ? "approved" : "declined", principal);
  ReviewResolution resolution;
  resolution.review_status = approve ? "approved" : "declined";
  if (!approve) {
    resolution.payment = store::ToApi(order);
    co_return resolution;
  }
  adapters::Adapter* adapter = adapters_->Find(order.provider, order.merchant_account);
  if (adapter == nullptr) {
    // The provider account went away while the payment waited: provably never sent.
    adapters::ProviderResult unsent;
    unsent.outcome = adapters::Outcome::kNotSent;
    unsent.detail = "provider account no longer configured";
    auto applied = co_await ApplyPaymentResult(order.id, 1, unsent, false);
    if (!applied) co_return Unavailable(applied.error());
    auto after = co_await store::FindOrderById(pool_, order.id, DbDeadline());
    if (!after || !after.value()) co_return ProviderUnavailable();
    resolution.payment = store::ToApi(*after.value());
    co_return resolution;
  }
  const std::string owner = order.principal;
  auto sent = co_await SendFirstAttempt(adapter, order, expires_at, owner, nullptr);
  if (!sent) co_return sent.error();
  resolution.payment = std::move(sent).value();
  co_return resolution;
}

// ---- Reads ----

asio::awaitable<ApiResult<PaymentService::OrderRow>> PaymentService::LoadOrder(
    const std::string& principal, const std::string& id) {
  auto order = co_await store::FindOrder(pool_, principal, id, DbDeadline());
  if (!order) co_return Unavailable(order.error());
  // Another client's id answers exactly like a missing one (DESIGN.md §5).
  if (!order.value().has_value()) co_return NotFound("payment_not_found", "No such payment.");
  OrderRow row;
  static_cast<store::Order&>(row) = std::move(order.value().value());
  co_return row;
}

asio::awaitable<ApiResult<api::v1::Payment>> PaymentService::GetPayment(std::string principal,
                                                                        std::string id) {
  auto order = co_await LoadOrder(principal, id);
  if (!order) co_return order.error();
  co_return store::ToApi(order.value());
}

asio::awaitable<ApiResult<api::v1::ListPaymentsResponse>> PaymentService::ListPayments(
    std::string principal, ListFilter filter) {
  if (filter.limit < 1 || filter.limit > 100) {
    co_return Invalid("parameter_invalid", "limit must be between 1 and 100.", "limit");
  }
  store::ListQuery query;
  query.principal = principal;
  query.policy_number = filter.policy_number;
  if (filter.status) query.status = std::string(ToString(*filter.status));
  query.created_from_us = filter.created_from_us;
  query.created_to_us = filter.created_to_us;
  query.limit = filter.limit;
  if (!filter.cursor.empty()) {
    auto cursor = store::ParseCursor(filter.cursor);
    if (!cursor) co_return Invalid("parameter_invalid", "cursor is not valid.", "cursor");
    query.after = *cursor;
  }
  auto page = co_await store::ListOrders(pool_, query, DbDeadline());
  if (!page) co_return Unavailable(page.error());
  api::v1::ListPaymentsResponse response;
  for (const store::Order& order : page.value().orders)
    *response.add_payments() = store::ToApi(order);
  response.set_next_cursor(page.value().next_cursor);
  co_return response;
}

asio::awaitable<ApiResult<api::v1::Refund>> PaymentService::GetRefund(std::string principal,
                                                                      std::string id) {
  auto refund = co_await store::FindRefund(pool_, principal, id, DbDeadline());
  if (!refund) co_return Unavailable(refund.error());
  if (!refund.value().has_value()) co_return NotFound("refund_not_found", "No such refund.");
  co_return store::ToApi(refund.value().value());
}

// ---- Close ----

asio::awaitable<ApiResult<api::v1::Payment>> PaymentService::ClosePayment(std::string principal,
                                                                          std::string id) {
  auto order = co_await LoadOrder(principal, id);
  if (!order) co_return order.error();
  const auto status = ParseOrderStatus(order.value().status);
  if (status == OrderStatus::kClosed) co_return store::ToApi(order.value());
  if (!status || IsTerminal(*status)) {
    co_return Conflict("payment_not_closable",
                       fmt::format("A {} payment cannot be closed.", order.value().status));
  }
  adapters::Adapter* adapter =
      adapters_->Find(order.value().provider, order.value().merchant_account);
  if (adapter == nullptr) co_return ProviderUnavailable();
  const std::int32_t seq = order.value().attempt_count;
  // Arguments to coroutines are named variables: GCC 12 destroys a braced temporary twice.
  adapters::PaymentRef ref{order.value().merchant_account,
                           store::AttemptReference(order.value().id, seq),
                           FromMicros(order.value().created_at_us)};
  const adapters::ProviderResult closed = co_await adapter->ClosePayment(std::move(ref));
  if (closed.outcome == adapters::Outcome::kSucceeded) {
    auto applied = co_await ApplyPaymentResult(order.value().id, seq, closed, true);
    if (!applied) co_return Unavailable(applied.error());
  } else if (closed.outcome == adapters::Outcome::kDeclined) {
    // The provider refuses to close: most likely it was paid meanwhile. Learn what happened.
    auto known = co_await InquireAttempt(store::AttemptReference(order.value().id, seq));
    if (!known) co_return Unavailable(known.error());
  } else {
    co_return ProviderUnavailable();
  }
  auto after = co_await LoadOrder(principal, id);
  if (!after) co_return after.error();
  if (after.value().status != ToString(OrderStatus::kClosed)) {
    co_return Conflict(
        "payment_not_closable",
        fmt::format("The provider refused to close the payment; it is {}.", after.value().status));
  }
  co_return store::ToApi(after.value());
}

// ---- Refunds ----

asio::awaitable<ApiResult<api::v1::Refund>> PaymentService::CreateRefund(
    std::string principal, std::string client_reference, std::string payment_id,
    api::v1::CreateRefundRequest request) {
  if (request.amount_minor() < 0) {
    co_return Invalid("amount_invalid", "amount_minor must be positive (or 0 for everything).",
                      "amount_minor");
  }
  if (request.reason().size() > 128) {
    co_return Invalid("parameter_invalid", "reason must be at most 128 bytes.", "reason");
  }
  // Transaction 1, under the order's lock: re-check what is refundable and reserve it.
  auto reserved =
      co_await store::ReserveRefund(pool_, principal, client_reference, payment_id,
                                    request.amount_minor(), request.reason(), DbDeadline());
  if (!reserved) co_return Unavailable(reserved.error());
  switch (reserved.value().outcome) {
    case store::ReserveOutcome::kNoSuchPayment:
      co_return NotFound("payment_not_found", "No such payment.");
    case store::ReserveOutcome::kNotSucceeded:
      co_return Conflict("payment_not_refundable", "Only a succeeded payment can be refunded.");
    case store::ReserveOutcome::kExceedsRefundable:
      co_return Invalid(
          "amount_exceeds_refundable",
          fmt::format("amount_minor exceeds the refundable {}.", reserved.value().refundable_minor),
          "amount_minor");
    case store::ReserveOutcome::kExisting:
      if (reserved.value().refund.order_id != payment_id ||
          (request.amount_minor() != 0 &&
           reserved.value().refund.amount_minor != request.amount_minor())) {
        co_return ApiError{422,
                           "idempotency_error",
                           "client_reference_reused",
                           "This Idempotency-Key created a different refund.",
                           {}};
      }
      co_return store::ToApi(reserved.value().refund);
    case store::ReserveOutcome::kReserved:
      break;
  }
  const store::Refund& refund = reserved.value().refund;
  adapters::Adapter* adapter =
      adapters_->Find(reserved.value().order.provider, reserved.value().order.merchant_account);
  adapters::ProviderResult result;
  if (adapter == nullptr) {
    result.outcome = adapters::Outcome::kNotSent;
    result.detail = "provider account no longer configured";
  } else {
    const store::Order& order = reserved.value().order;
    adapters::RefundRequest call =
        MakeRefundRequest(order, refund, NotifyUrl(order.provider, order.merchant_account));
    result = co_await adapter->Refund(std::move(call));
  }
  auto applied = co_await ApplyRefundResult(refund.id, result);
  if (!applied) co_return Unavailable(applied.error());
  co_return co_await GetRefund(std::move(principal), refund.id);
}

// ---- Applying provider answers ----

asio::awaitable<Result<void>> PaymentService::ApplyPaymentResult(
    const std::string& order_id, std::int32_t seq, const adapters::ProviderResult& result,
    bool closing, store::Order* order_after) {
  co_return co_await db::RunInTransaction(pool_, DbDeadline(), db::TransactionOptions{},
                                          [&](PgConnection& conn) -> asio::awaitable<Result<void>> {
                                            auto effect = co_await store::ApplyPaymentResultTx(
                                                conn, books_, order_id, seq, result, closing,
                                                DbDeadline(), order_after);
                                            if (!effect) co_return effect.error();
                                            co_return outcome::success();
                                          });
}

asio::awaitable<Result<void>> PaymentService::ApplyRefundResult(
    const std::string& refund_id, const adapters::ProviderResult& result) {
  co_return co_await db::RunInTransaction(pool_, DbDeadline(), db::TransactionOptions{},
                                          [&](PgConnection& conn) -> asio::awaitable<Result<void>> {
                                            auto effect = co_await store::ApplyRefundResultTx(
                                                conn, books_, refund_id, result, DbDeadline());
                                            if (!effect) co_return effect.error();
                                            co_return outcome::success();
                                          });
}

// ---- Callbacks ----

asio::awaitable<CallbackReply> PaymentService::ReceiveCallback(std::string provider,
                                                               adapters::CallbackRequest request) {
  CallbackReply reply;
  adapters::Adapter* adapter = adapters_->Find(provider, request.merchant_account);
  if (adapter == nullptr) {
    reply.ack = {404, "text/plain", "unknown provider account\n"};
    reply.error = "unknown provider account";
    co_return reply;
  }
  auto event = adapter->VerifyCallback(request);
  if (!event) {
    // Never trusted. It is not even an inquiry trigger by itself: the janitor's schedule already
    // inquires about every open attempt.
    reply.ack = adapter->AckCallback(false);
    reply.error = event.error();
    co_return reply;
  }
  reply.verified = true;
  auto stored =
      co_await store::StoreCallback(pool_, provider, request, event.value(), DbDeadline());
  if (!stored) {
    // Not stored, so not acknowledged: the provider will send it again.
    reply.ack = {503, "text/plain", "retry later\n"};
    reply.verified = false;
    reply.error = "database unavailable";
    co_return reply;
  }
  reply.duplicate = stored.value() == 0;
  reply.callback_id = stored.value();
  reply.ack = adapter->AckCallback(true);
  co_return reply;
}

asio::awaitable<Result<void>> PaymentService::ApplyCallback(std::int64_t callback_id) {
  co_return co_await db::RunInTransaction(pool_, DbDeadline(), db::TransactionOptions{},
                                          [&](PgConnection& conn) -> asio::awaitable<Result<void>> {
                                            co_return co_await store::ApplyCallbackTx(
                                                conn, books_, callback_id, DbDeadline());
                                          });
}

// ---- Janitor ----

asio::awaitable<Result<std::vector<JanitorTask>>> PaymentService::ClaimTasks(
    std::int32_t limit, std::chrono::seconds lease) {
  co_return co_await store::ClaimTasks(pool_, limit, lease, DbDeadline());
}

asio::awaitable<Result<bool>> PaymentService::InquireAttempt(
    const std::string& provider_reference) {
  const auto ref = store::ParseAttemptReference(provider_reference);
  if (!ref) co_return true;  // Not one of ours: nothing to resolve.
  auto attempt = co_await store::FindAttempt(pool_, ref->first, ref->second, DbDeadline());
  if (!attempt) co_return attempt.error();
  if (!attempt.value().has_value()) co_return true;  // Nothing to resolve.
  const store::Attempt& a = attempt.value().value();
  const auto status = ParseAttemptStatus(a.status);
  if (status && IsTerminal(*status)) co_return true;
  adapters::Adapter* adapter = adapters_->Find(a.provider, a.merchant_account);
  if (adapter == nullptr) co_return false;
  adapters::PaymentRef query{a.merchant_account, a.provider_reference, FromMicros(a.created_at_us)};
  const adapters::ProviderResult result = co_await adapter->QueryPayment(std::move(query));
  // An inquiry's not_sent only says this query did not get through, not that the payment never
  // reached the provider: it is no answer at all.
  if (result.outcome == adapters::Outcome::kNotSent ||
      result.outcome == adapters::Outcome::kUnknown) {
    co_return false;
  }
  LEDGER_CO_TRYV(co_await ApplyPaymentResult(a.order_id, a.seq, result, false));
  // Pending is not final: keep asking on the schedule until a callback, an answer or expiry ends
  // it.
  co_return result.outcome != adapters::Outcome::kPending;
}

asio::awaitable<Result<bool>> PaymentService::InquireRefund(const std::string& refund_id) {
  auto refund = co_await store::FindRefundForProvider(pool_, refund_id, DbDeadline());
  if (!refund) co_return refund.error();
  if (!refund.value().has_value()) co_return true;
  const auto& [r, order] = refund.value().value();
  if (r.status != ToString(RefundStatus::kProcessing)) co_return true;
  adapters::Adapter* adapter = adapters_->Find(order.provider, order.merchant_account);
  if (adapter == nullptr) co_return false;
  adapters::RefundRef query{
      order.merchant_account, store::AttemptReference(order.id, order.attempt_count),
      r.provider_reference, FromMicros(order.created_at_us), FromMicros(r.created_at_us)};
  adapters::ProviderResult result = co_await adapter->QueryRefund(std::move(query));
  if (result.outcome == adapters::Outcome::kUnknown) {
    // The provider may never have received the refund (its query cannot prove absence). Sending
    // the same refund again under the same refund reference is safe - providers execute a refund
    // reference at most once and answer the existing refund - and turns "unknown" into an answer.
    adapters::RefundRequest again =
        MakeRefundRequest(order, r, NotifyUrl(order.provider, order.merchant_account));
    result = co_await adapter->Refund(std::move(again));
  }
  if (result.outcome == adapters::Outcome::kNotSent ||
      result.outcome == adapters::Outcome::kUnknown ||
      result.outcome == adapters::Outcome::kPending) {
    co_return false;
  }
  LEDGER_CO_TRYV(co_await ApplyRefundResult(r.id, result));
  co_return true;
}

asio::awaitable<Result<bool>> PaymentService::ExpireOrder(const std::string& order_id) {
  auto order = co_await store::FindOrderById(pool_, order_id, DbDeadline());
  if (!order) co_return order.error();
  if (!order.value().has_value()) co_return true;
  const store::Order& o = order.value().value();
  const auto status = ParseOrderStatus(o.status);
  if (!status || IsTerminal(*status)) co_return true;
  adapters::Adapter* adapter = adapters_->Find(o.provider, o.merchant_account);
  if (adapter == nullptr) co_return false;
  const std::string reference = store::AttemptReference(o.id, o.attempt_count);
  adapters::PaymentRef ref{o.merchant_account, reference, FromMicros(o.created_at_us)};
  const adapters::ProviderResult closed = co_await adapter->ClosePayment(std::move(ref));
  if (closed.outcome == adapters::Outcome::kSucceeded) {
    adapters::ProviderResult expired = closed;
    expired.decline_code = "expired";
    expired.decline_message = "The payment was not completed in time.";
    LEDGER_CO_TRYV(co_await ApplyPaymentResult(o.id, o.attempt_count, expired, true));
    co_return true;
  }
  if (closed.outcome == adapters::Outcome::kDeclined) {
    // Refused: it was probably paid. The inquiry settles it; expiry is retried if still open.
    auto known = co_await InquireAttempt(reference);
    if (!known) co_return known.error();
    co_return false;
  }
  co_return false;
}

asio::awaitable<Result<void>> PaymentService::RunTask(JanitorTask task) {
  if (task.kind.starts_with("payout_")) {
    // The payout service's own schedule; without it the task waits for its lease to come due.
    if (!payout_tasks_) co_return outcome::success();
    co_return co_await payout_tasks_(std::move(task));
  }
  Result<bool> done = false;
  if (task.kind == "inquire_attempt") {
    done = co_await InquireAttempt(task.object_id);
  } else if (task.kind == "inquire_refund") {
    done = co_await InquireRefund(task.object_id);
  } else if (task.kind == "expire_order") {
    done = co_await ExpireOrder(task.object_id);
  } else if (task.kind == "apply_callback") {
    std::int64_t id = 0;
    const auto* end = task.object_id.data() + task.object_id.size();
    if (std::from_chars(task.object_id.data(), end, id).ptr != end) {
      done = true;  // Not ours to understand: drop it rather than spin.
    } else {
      auto applied = co_await ApplyCallback(id);
      done = applied ? Result<bool>(true) : Result<bool>(applied.error());
    }
  } else {
    done = true;
  }
  std::string error;
  if (!done) error = done.error().message();
  const bool finished = done && done.value();
  if (finished) {
    co_return co_await store::FinishTask(pool_, task.kind, task.object_id, DbDeadline());
  }
  const bool manual = task.attempts >= static_cast<std::int32_t>(options_.inquiries_max);
  if (manual) {
    log::Get("payments")
        ->warn("janitor: {} {} needs manual resolution after {} tries", task.kind, task.object_id,
               task.attempts);
  }
  const auto delay =
      task.kind == "apply_callback" ? std::chrono::seconds(30) : InquiryDelay(task.attempts);
  co_return co_await store::RescheduleTask(pool_, task.kind, task.object_id, delay, manual, error,
                                           DbDeadline());
}

asio::awaitable<Result<std::int64_t>> PaymentService::PurgeExpired() {
  const auto deadline = DbDeadline();
  auto lease = co_await pool_.Acquire(deadline);
  if (!lease) co_return lease.error();
  auto purged = co_await lease.value()->ExecuteSimple(
      "SELECT api_nonces_purge() + idempotency_keys_purge()", deadline);
  if (!purged) co_return purged.error();
  co_return purged.value().GetInt64(0, 0);
}

}  // namespace paygate::payments
