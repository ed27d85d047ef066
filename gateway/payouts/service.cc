#include "gateway/payouts/service.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "config/logging.h"
#include "gateway/fraud/service.h"
#include "gateway/fraud/store.h"
#include "gateway/payouts/risk_event.h"
#include "gateway/payouts/state.h"
#include "gateway/risk/decision.h"
#include "ledger/db/transaction.h"
#include "ledger/ledger/chart.h"
#include "ledger/ledger/try.h"

namespace paygate::payouts {

namespace asio = boost::asio;
using db::PgConnection;

PayoutsOptions PayoutsOptionsFromConfig(const config::v1::Config& config) {
  const config::v1::Payouts& p = config.payouts();
  PayoutsOptions options;
  options.amount_min_minor = static_cast<std::int64_t>(p.amount_min_minor());
  options.amount_max_minor = static_cast<std::int64_t>(p.amount_max_minor());
  options.currencies.insert(config.payments().currencies().begin(),
                            config.payments().currencies().end());
  options.callback_base_url = config.payments().callback_base_url();
  for (const auto& route : p.routes()) {
    options.routes[route.method()].push_back({route.provider(), route.merchant_account()});
  }
  options.approval_threshold_minor = static_cast<std::int64_t>(p.approval_threshold_minor());
  options.second_approval_threshold_minor =
      static_cast<std::int64_t>(p.second_approval_threshold_minor());
  options.attempts_max = static_cast<std::int32_t>(p.attempts_max());
  options.inquiry_schedule.clear();
  for (const std::uint32_t s : p.inquiry_schedule_s()) {
    options.inquiry_schedule.emplace_back(s);
  }
  if (options.inquiry_schedule.empty()) options.inquiry_schedule.emplace_back(60);
  options.event_retry_window = std::chrono::seconds(config.events().retry_window_s());
  options.db_timeout = std::chrono::milliseconds(config.database().statement_timeout_ms());
  return options;
}

namespace {

ApiError Invalid(std::string code, std::string message, std::string param = {}) {
  return {400, "invalid_request_error", std::move(code), std::move(message), std::move(param)};
}
ApiError NotFound() { return {404, "not_found_error", "payout_not_found", "No such payout.", {}}; }
ApiError Conflict(std::string code, std::string message) {
  return {409, "conflict_error", std::move(code), std::move(message), {}};
}
ApiError Unavailable(std::error_code ec) {
  log::Get("payouts")->warn("database unavailable: {}", ec.message());
  return {503,
          "unavailable_error",
          "database_unavailable",
          "The payout store is unavailable; retry with the same Idempotency-Key.",
          {}};
}

bool IsToken(std::string_view s, std::size_t max) {
  return !s.empty() && s.size() <= max &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return c >= 0x20 && c != 0x7f; });
}

constexpr std::string_view kAccountTypes[] = {"bank_card", "wechat_openid", "alipay_login_id",
                                              "alipay_user_id", "sandbox"};

// Validation of a create request: each failure names its field.
std::optional<ApiError> Validate(const api::v1::CreatePayoutRequest& r,
                                 const PayoutsOptions& options) {
  if (r.claim_number().empty()) {
    return Invalid("parameter_missing", "claim_number is required.", "claim_number");
  }
  if (!IsToken(r.claim_number(), 64)) {
    return Invalid("parameter_invalid", "claim_number must be 1..64 printable characters.",
                   "claim_number");
  }
  if (r.policy_number().empty()) {
    return Invalid("parameter_missing", "policy_number is required.", "policy_number");
  }
  if (!IsToken(r.policy_number(), 64)) {
    return Invalid("parameter_invalid", "policy_number must be 1..64 printable characters.",
                   "policy_number");
  }
  if (!r.claimant_id().empty() && !IsToken(r.claimant_id(), 64)) {
    return Invalid("parameter_invalid", "claimant_id must be up to 64 printable characters.",
                   "claimant_id");
  }
  const api::v1::Beneficiary& b = r.beneficiary();
  if (b.name().empty()) {
    return Invalid("parameter_missing", "beneficiary.name is required.", "beneficiary.name");
  }
  if (!IsToken(b.name(), 64)) {
    return Invalid("parameter_invalid", "beneficiary.name must be 1..64 printable bytes.",
                   "beneficiary.name");
  }
  if (std::find(std::begin(kAccountTypes), std::end(kAccountTypes), b.account_type()) ==
      std::end(kAccountTypes)) {
    return Invalid("parameter_invalid",
                   "beneficiary.account_type must be bank_card, wechat_openid, alipay_login_id, "
                   "alipay_user_id or sandbox.",
                   "beneficiary.account_type");
  }
  if (b.account().empty()) {
    return Invalid("parameter_missing", "beneficiary.account is required.", "beneficiary.account");
  }
  if (!IsToken(b.account(), 64)) {
    return Invalid("parameter_invalid", "beneficiary.account must be 1..64 printable bytes.",
                   "beneficiary.account");
  }
  if (b.account_type() == "bank_card" && b.bank().empty()) {
    return Invalid("parameter_missing", "beneficiary.bank is required for a bank_card.",
                   "beneficiary.bank");
  }
  if (!b.bank().empty() && !IsToken(b.bank(), 128)) {
    return Invalid("parameter_invalid", "beneficiary.bank must be up to 128 printable bytes.",
                   "beneficiary.bank");
  }
  if (!b.id_number().empty() && !IsToken(b.id_number(), 32)) {
    return Invalid("parameter_invalid", "beneficiary.id_number must be up to 32 printable bytes.",
                   "beneficiary.id_number");
  }
  if (r.amount_minor() <= 0) {
    return Invalid("amount_invalid", "amount_minor must be a positive integer in minor units.",
                   "amount_minor");
  }
  if (r.amount_minor() < options.amount_min_minor || r.amount_minor() > options.amount_max_minor) {
    return Invalid("amount_out_of_range",
                   fmt::format("amount_minor must be between {} and {}.", options.amount_min_minor,
                               options.amount_max_minor),
                   "amount_minor");
  }
  if (!options.currencies.contains(r.currency())) {
    return Invalid("currency_not_supported",
                   fmt::format("currency \"{}\" is not supported.", r.currency()), "currency");
  }
  if (!options.routes.contains(r.method())) {
    return Invalid("method_not_supported",
                   fmt::format("payout method \"{}\" is not supported.", r.method()), "method");
  }
  if (r.reason().size() > 256) {
    return Invalid("parameter_invalid", "reason must be at most 256 bytes.", "reason");
  }
  return std::nullopt;
}

// The answer to a create whose client reference already names a payout: that payout as it
// stands, or 422 when the request differs. Beneficiary data is compared through its masks only
// (the stored plaintext is never decrypted for this).
std::optional<ApiError> Differs(const store::Payout& existing,
                                const api::v1::CreatePayoutRequest& r) {
  if (existing.claim_number != r.claim_number() || existing.policy_number != r.policy_number() ||
      existing.amount_minor != r.amount_minor() || existing.currency != r.currency() ||
      existing.method != r.method() || existing.claimant_id != r.claimant_id() ||
      existing.account_masked != MaskAccount(r.beneficiary().account()) ||
      existing.account_type != r.beneficiary().account_type()) {
    return ApiError{422,
                    "idempotency_error",
                    "client_reference_reused",
                    "This Idempotency-Key created a different payout.",
                    {}};
  }
  return std::nullopt;
}

std::chrono::system_clock::time_point FromMicros(std::int64_t us) {
  return std::chrono::system_clock::time_point(std::chrono::microseconds(us));
}

}  // namespace

PayoutService::PayoutService(db::PgPool& pool, ledger::PostgresLedger& ledger,
                             std::shared_ptr<const payments::AdapterRegistry> adapters,
                             std::shared_ptr<const keys::FieldCipher> cipher,
                             PayoutsOptions options)
    : pool_(pool),
      ledger_(ledger),
      adapters_(std::move(adapters)),
      cipher_(std::move(cipher)),
      options_(std::move(options)),
      books_{ledger_, options_.event_retry_window} {}

db::Deadline PayoutService::DbDeadline() const { return db::Clock::now() + options_.db_timeout; }

store::Policy PayoutService::PolicyFor(std::string_view method) const {
  store::Policy policy;
  const auto it = options_.routes.find(method);
  if (it != options_.routes.end()) policy.routes = it->second;
  policy.attempts_max = options_.attempts_max;
  policy.first_inquiry_s = options_.inquiry_schedule.front().count();
  return policy;
}

payments::PayoutHooks PayoutService::Hooks() {
  // Plain lambdas returning the member coroutine (not coroutine lambdas): GCC 12 mishandles
  // captures of coroutine lambdas; the arguments are copied into the member's frame.
  payments::PayoutHooks hooks;
  PayoutService* service = this;
  hooks.apply_callback = [service](PgConnection& conn, std::string provider, std::string merchant,
                                   std::string reference, adapters::ProviderResult result) {
    return service->ApplyCallbackTx(conn, std::move(provider), std::move(merchant),
                                    std::move(reference), std::move(result));
  };
  hooks.run_task = [service](payments::JanitorTask task) {
    return service->RunTask(std::move(task));
  };
  return hooks;
}

asio::awaitable<Result<void>> PayoutService::EnsureChartOfAccounts() {
  for (const std::string& currency : options_.currencies) {
    ledger::ChartSpec spec;
    spec.currency = currency;
    spec.clearing_must_not_go_negative = true;
    std::set<std::pair<std::string, std::string>> seen;
    for (const auto& [method, routes] : options_.routes) {
      for (const store::Route& r : routes) {
        if (seen.emplace(r.provider, r.merchant_account).second) {
          spec.clearing.push_back({r.provider, r.merchant_account});
        }
      }
    }
    auto results = co_await ledger_.CreateAccounts(ledger::StandardChart(spec), DbDeadline());
    if (!results) co_return results.error();
    for (const auto result : results.value()) {
      if (result != ledger::AccountResult::kOk && result != ledger::AccountResult::kExists) {
        log::Get("payouts")->error("chart of accounts for {}: {}", currency,
                                   ledger::ToString(result));
        co_return make_error_code(ledger::Errc::inconsistent_state);
      }
    }
  }
  co_return outcome::success();
}

// ---- Create ----

asio::awaitable<ApiResult<api::v1::Payout>> PayoutService::CreatePayout(
    std::string principal, std::string client_reference, api::v1::CreatePayoutRequest request) {
  if (auto bad = Validate(request, options_)) co_return std::move(*bad);

  // A retried create is answered as it stands, never decided, encrypted or counted twice.
  auto existing =
      co_await store::FindByClientReference(pool_, principal, client_reference, DbDeadline());
  if (!existing) co_return Unavailable(existing.error());
  if (existing.value()) {
    if (auto differs = Differs(*existing.value(), request)) co_return std::move(*differs);
    co_return co_await View(principal, existing.value()->id);
  }

  const api::v1::Beneficiary& b = request.beneficiary();
  store::Payout payout;
  payout.id = payments::store::NewId("po_");
  payout.principal = principal;
  payout.client_reference = client_reference;
  payout.claim_number = request.claim_number();
  payout.policy_number = request.policy_number();
  payout.claimant_id = request.claimant_id();
  payout.amount_minor = request.amount_minor();
  payout.currency = request.currency();
  payout.method = request.method();
  payout.reason = request.reason();
  payout.account_type = b.account_type();
  payout.bank = b.bank();
  payout.name_masked = MaskName(b.name());
  payout.account_masked = MaskAccount(b.account());
  payout.id_number_masked = MaskIdNumber(b.id_number());

  // Encrypted before anything is stored; the row id is in the associated data.
  store::SealedBeneficiary sealed;
  auto name = cipher_->Encrypt(b.name(), BeneficiaryAad("beneficiary_name_enc", payout.id));
  auto account =
      cipher_->Encrypt(b.account(), BeneficiaryAad("beneficiary_account_enc", payout.id));
  if (!name || !account) {
    log::Get("payouts")->error("payout {}: beneficiary encryption failed", payout.id);
    co_return ApiError{500,
                       "api_error",
                       "encryption_failed",
                       "The beneficiary could not be protected; nothing was stored.",
                       {}};
  }
  sealed.name = std::move(name).value();
  sealed.account = std::move(account).value();
  if (!b.id_number().empty()) {
    auto id_number =
        cipher_->Encrypt(b.id_number(), BeneficiaryAad("beneficiary_id_number_enc", payout.id));
    if (!id_number) {
      co_return ApiError{500,
                         "api_error",
                         "encryption_failed",
                         "The beneficiary could not be protected; nothing was stored.",
                         {}};
    }
    sealed.id_number = std::move(id_number).value();
  }

  // How many approvals: the thresholds, and at least one when the fraud rules hold it.
  std::int32_t approvals = 0;
  if (payout.amount_minor >= options_.approval_threshold_minor) approvals = 1;
  if (payout.amount_minor >= options_.second_approval_threshold_minor) {
    approvals = 2;
  }

  // The fraud decision, before any approval (DESIGN.md §3).
  std::shared_ptr<fraud::Verdict> verdict;
  std::shared_ptr<fraud::Verdict> changed;
  PayoutStatus status = approvals > 0 ? PayoutStatus::kAwaitingApproval : PayoutStatus::kProcessing;
  if (risk_) {
    payout.account_hash = risk_->hasher().Hash(fraud::PersonalKind::kAccount, b.account());
    auto history = co_await store::ReadAccountHistory(pool_, principal, payout.claimant_id,
                                                      payout.account_hash, DbDeadline());
    if (!history) co_return Unavailable(history.error());
    const std::int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count();
    fraud::EventTexts texts;
    if (history.value().claimant_account_changed) {
      // The claimant's last payout went to another account: the change is an event of its own,
      // so "changed shortly before" (CLM-20) sees it.
      auto event = AccountChangedEvent(request, principal, now_s, risk_->hasher(), texts);
      if (event) {
        changed = std::make_shared<fraud::Verdict>(
            risk_->Decide(event.value(), "payout", payout.id, principal));
      }
    }
    ClaimContext context;
    context.now_s = now_s;
    context.auto_approval_limit_minor = options_.approval_threshold_minor;
    auto event = ClaimPayoutEvent(request, principal, context, risk_->hasher(), texts);
    if (!event) {
      co_return Invalid("parameter_invalid",
                        fmt::format("{} is not valid for the fraud rules.", event.error()),
                        event.error());
    }
    verdict = std::make_shared<fraud::Verdict>(
        risk_->Decide(event.value(), "payout", payout.id, principal));
    payout.risk_outcome = std::string(risk::OutcomeName(verdict->outcome));
    payout.risk_reasons = verdict->reasons.substr(0, 1000);
    if (verdict->blocks()) {
      status = PayoutStatus::kFailed;
      payout.failure_code = "risk_blocked";
      payout.failure_message = payout.risk_reasons;
    } else if (verdict->holds()) {
      status = PayoutStatus::kRequiresReview;
      approvals = std::max<std::int32_t>(approvals, 1);
    }
  }
  payout.status = std::string(ToString(status));
  payout.approvals_required = status == PayoutStatus::kFailed ? 0 : approvals;

  fraud::store::RecordedDecision recorded;
  fraud::store::RecordedDecision recorded_change;
  store::TxHook record;
  if (verdict) {
    record = [&](PgConnection& conn) -> asio::awaitable<Result<void>> {
      if (changed) {
        auto stored =
            co_await fraud::store::RecordDecisionTx(conn, changed->record, false, DbDeadline());
        if (!stored) co_return stored.error();
        recorded_change = std::move(stored).value();
      }
      // The hold is the approval itself (an approver decides), not a separate risk review.
      auto stored =
          co_await fraud::store::RecordDecisionTx(conn, verdict->record, false, DbDeadline());
      if (!stored) co_return stored.error();
      recorded = std::move(stored).value();
      co_return outcome::success();
    };
  }
  const store::Policy policy = PolicyFor(payout.method);
  auto inserted =
      co_await store::InsertPayout(pool_, books_, payout, sealed, policy, DbDeadline(), record);
  if (!inserted) co_return Unavailable(inserted.error());
  if (inserted.value().outcome == store::InsertOutcome::kExisting) {
    if (auto differs = Differs(inserted.value().payout, request)) co_return std::move(*differs);
    co_return co_await View(principal, inserted.value().payout.id);
  }
  if (verdict) risk_->Recorded(*verdict, recorded.event_id);
  if (changed) risk_->Recorded(*changed, recorded_change.event_id);
  log::Get("payouts")->info("payout {} claim {} amount {} {} status {} approvals {} risk {}",
                            payout.id, payout.claim_number, payout.amount_minor, payout.currency,
                            payout.status, payout.approvals_required,
                            payout.risk_outcome.empty() ? "off" : payout.risk_outcome);
  if (inserted.value().send) {
    auto sent = co_await Send(std::move(*inserted.value().send));
    // The answer is lost with the database: the janitor's inquiry recovers it.
    if (!sent) co_return Unavailable(sent.error());
  }
  if (status == PayoutStatus::kFailed) {
    co_return ApiError{422,
                       "risk_error",
                       "risk_blocked",
                       fmt::format("Payout {} was refused by the fraud rules and stored failed: {}",
                                   payout.id, payout.risk_reasons),
                       {}};
  }
  co_return co_await View(principal, payout.id);
}

// ---- Sending ----

asio::awaitable<Result<adapters::Beneficiary>> PayoutService::OpenBeneficiary(
    const store::Payout& payout) {
  LEDGER_CO_TRY(auto sealed, co_await store::ReadSealed(pool_, payout.id, DbDeadline()));
  adapters::Beneficiary b;
  LEDGER_CO_TRY(b.name,
                cipher_->Decrypt(sealed.name, BeneficiaryAad("beneficiary_name_enc", payout.id)));
  LEDGER_CO_TRY(b.account, cipher_->Decrypt(sealed.account,
                                            BeneficiaryAad("beneficiary_account_enc", payout.id)));
  if (sealed.id_number) {
    LEDGER_CO_TRY(b.id_number,
                  cipher_->Decrypt(*sealed.id_number,
                                   BeneficiaryAad("beneficiary_id_number_enc", payout.id)));
  }
  b.account_type = payout.account_type;
  b.bank = payout.bank;
  co_return b;
}

asio::awaitable<Result<void>> PayoutService::Send(store::Attempt attempt) {
  std::optional<store::Attempt> next = std::move(attempt);
  while (next) {
    const store::Attempt current = std::move(*next);
    next.reset();
    auto found = co_await store::FindPayout(pool_, std::nullopt, current.payout_id, DbDeadline());
    if (!found) co_return found.error();
    if (!found.value()) co_return outcome::success();
    const store::Payout& payout = found.value()->payout;
    adapters::Adapter* adapter = adapters_->Find(current.provider, current.merchant_account);
    adapters::ProviderResult result;
    if (adapter == nullptr) {
      result.outcome = adapters::Outcome::kNotSent;
      result.detail = "provider account not configured";
    } else {
      auto beneficiary = co_await OpenBeneficiary(payout);
      if (!beneficiary) {
        // Without the beneficiary the request cannot be built: provably never sent.
        log::Get("payouts")->error("payout {}: beneficiary cannot be decrypted: {}", payout.id,
                                   beneficiary.error().message());
        result.outcome = adapters::Outcome::kNotSent;
        result.detail = "beneficiary could not be decrypted";
      } else {
        adapters::CreatePayoutRequest call;
        call.merchant_account = current.merchant_account;
        call.provider_reference = current.provider_reference;
        call.amount_minor = payout.amount_minor;
        call.currency = payout.currency;
        call.method = payout.method;
        call.beneficiary = std::move(beneficiary).value();
        call.description = "Claim " + payout.claim_number + " payout";
        call.notify_url = fmt::format("{}/v1/callbacks/{}/{}", options_.callback_base_url,
                                      current.provider, current.merchant_account);
        call.created_at = FromMicros(current.created_at_us);
        result = co_await adapter->CreatePayout(std::move(call));
      }
    }
    log::Get("payouts")->info("payout {} attempt {} via {}/{}: {} {}", payout.id, current.seq,
                              current.provider, current.merchant_account,
                              adapters::OutcomeName(result.outcome), result.detail);
    LEDGER_CO_TRY(auto step, co_await ApplyResult(current.payout_id, current.seq, result));
    next = std::move(step.send);
  }
  co_return outcome::success();
}

asio::awaitable<Result<store::Step>> PayoutService::ApplyResult(
    const std::string& payout_id, std::int32_t seq, const adapters::ProviderResult& result) {
  auto found = co_await store::FindAttempt(pool_, payout_id, seq, DbDeadline());
  if (!found) co_return found.error();
  std::string method;
  {
    auto payout = co_await store::FindPayout(pool_, std::nullopt, payout_id, DbDeadline());
    if (!payout) co_return payout.error();
    if (payout.value()) method = payout.value()->payout.method;
  }
  const store::Policy policy = PolicyFor(method);
  co_return co_await db::RunInTransaction(
      pool_, DbDeadline(), db::TransactionOptions{},
      [&](PgConnection& conn) -> asio::awaitable<Result<store::Step>> {
        co_return co_await store::ApplyAttemptResultTx(conn, books_, payout_id, seq, result, policy,
                                                       DbDeadline());
      });
}

// ---- Reads ----

asio::awaitable<ApiResult<api::v1::Payout>> PayoutService::View(
    std::optional<std::string> principal, const std::string& id) {
  auto found = co_await store::FindPayout(pool_, principal, id, DbDeadline());
  if (!found) co_return Unavailable(found.error());
  // Another client's id answers exactly like a missing one (DESIGN.md §5).
  if (!found.value()) co_return NotFound();
  co_return store::ToApi(*found.value());
}

asio::awaitable<ApiResult<api::v1::Payout>> PayoutService::GetPayout(std::string principal,
                                                                     std::string id) {
  co_return co_await View(std::move(principal), id);
}

asio::awaitable<ApiResult<api::v1::ListPayoutsResponse>> PayoutService::List(
    std::optional<std::string> principal, std::vector<std::string> statuses, ListFilter filter) {
  if (filter.limit < 1 || filter.limit > 100) {
    co_return Invalid("parameter_invalid", "limit must be between 1 and 100.", "limit");
  }
  store::ListQuery query;
  query.principal = std::move(principal);
  query.statuses = std::move(statuses);
  query.claim_number = filter.claim_number;
  query.limit = filter.limit;
  if (!filter.cursor.empty()) {
    query.after = store::ParseCursor(filter.cursor);
    if (!query.after) co_return Invalid("parameter_invalid", "cursor is not valid.", "cursor");
  }
  auto page = co_await store::ListPayouts(pool_, query, DbDeadline());
  if (!page) co_return Unavailable(page.error());
  api::v1::ListPayoutsResponse response;
  for (const store::PayoutView& view : page.value().payouts) {
    *response.add_payouts() = store::ToApi(view);
  }
  response.set_next_cursor(page.value().next_cursor);
  co_return response;
}

asio::awaitable<ApiResult<api::v1::ListPayoutsResponse>> PayoutService::ListPayouts(
    std::string principal, ListFilter filter) {
  std::vector<std::string> statuses;
  if (filter.status) {
    if (!ParsePayoutStatus(*filter.status)) {
      co_return Invalid("parameter_invalid",
                        "status must be requires_review, awaiting_approval, processing, "
                        "succeeded, failed, cancelled or manual_review.",
                        "status");
    }
    statuses.push_back(*filter.status);
  }
  co_return co_await List(std::move(principal), std::move(statuses), std::move(filter));
}

asio::awaitable<ApiResult<api::v1::ListPayoutsResponse>> PayoutService::ListAwaitingApproval(
    ListFilter filter) {
  std::vector<std::string> statuses{std::string(ToString(PayoutStatus::kRequiresReview)),
                                    std::string(ToString(PayoutStatus::kAwaitingApproval))};
  co_return co_await List(std::nullopt, std::move(statuses), std::move(filter));
}

asio::awaitable<ApiResult<api::v1::ListPayoutsResponse>> PayoutService::ListManual(
    ListFilter filter) {
  std::vector<std::string> statuses{std::string(ToString(PayoutStatus::kManualReview))};
  co_return co_await List(std::nullopt, std::move(statuses), std::move(filter));
}

// ---- Approvals and cancellation ----

asio::awaitable<ApiResult<api::v1::Payout>> PayoutService::DecidePayout(std::string principal,
                                                                        std::string id,
                                                                        bool approve,
                                                                        std::string note) {
  if (note.size() > 256) {
    co_return Invalid("parameter_invalid", "note must be at most 256 bytes.", "note");
  }
  auto found = co_await store::FindPayout(pool_, std::nullopt, id, DbDeadline());
  if (!found) co_return Unavailable(found.error());
  if (!found.value()) co_return NotFound();
  const store::Policy policy = PolicyFor(found.value()->payout.method);
  auto decided =
      co_await store::Decide(pool_, books_, id, principal, approve, note, policy, DbDeadline());
  if (!decided) co_return Unavailable(decided.error());
  switch (decided.value().outcome) {
    case store::DecisionOutcome::kNotFound:
      co_return NotFound();
    case store::DecisionOutcome::kBySubmitter:
      co_return ApiError{403,
                         "permission_error",
                         "approval_by_submitter",
                         "A payout is approved or rejected by a second principal, never by the "
                         "one who submitted it.",
                         {}};
    case store::DecisionOutcome::kAlreadyDecided:
      co_return Conflict("already_decided",
                         "This principal already approved or rejected the payout; a second "
                         "approval must come from another approver.");
    case store::DecisionOutcome::kNotAwaiting:
      co_return Conflict(
          "payout_not_awaiting_approval",
          fmt::format("A {} payout takes no approval.", found.value()->payout.status));
    case store::DecisionOutcome::kRecorded:
    case store::DecisionOutcome::kRejected:
    case store::DecisionOutcome::kStarted:
      break;
  }
  log::Get("payouts")->info("payout {} {} by {}: {}", id, approve ? "approved" : "rejected",
                            principal, decided.value().step.effect);
  if (decided.value().step.send) {
    auto sent = co_await Send(std::move(*decided.value().step.send));
    if (!sent) co_return Unavailable(sent.error());
  }
  co_return co_await View(std::nullopt, id);
}

asio::awaitable<ApiResult<api::v1::Payout>> PayoutService::CancelPayout(std::string principal,
                                                                        std::string id) {
  auto cancelled = co_await store::Cancel(pool_, books_, principal, id, DbDeadline());
  if (!cancelled) co_return Unavailable(cancelled.error());
  switch (cancelled.value()) {
    case store::CancelOutcome::kNotFound:
      co_return NotFound();
    case store::CancelOutcome::kNotCancellable:
      co_return Conflict("payout_not_cancellable",
                         "Only a payout no provider was called for can be cancelled.");
    case store::CancelOutcome::kCancelled:
      break;
  }
  co_return co_await View(principal, id);
}

// ---- Callbacks and the janitor ----

asio::awaitable<Result<std::string>> PayoutService::ApplyCallbackTx(
    PgConnection& conn, std::string provider, std::string merchant_account, std::string reference,
    adapters::ProviderResult result) {
  const auto ref = store::ParseAttemptReference(reference);
  if (!ref) co_return std::string("no effect: unknown payout reference");
  // The attempt must belong to the account that sent the callback. A callback never sends, so
  // the step gets no routes: a callback cannot start an attempt (it never says not_sent anyway).
  auto attempt = co_await store::FindAttemptTx(conn, ref->first, ref->second, DbDeadline());
  if (!attempt) co_return attempt.error();
  if (!attempt.value() || attempt.value()->provider != provider ||
      attempt.value()->merchant_account != merchant_account) {
    co_return std::string("no effect: reference not from this provider account");
  }
  store::Policy none;
  none.attempts_max = 0;
  LEDGER_CO_TRY(auto step, co_await store::ApplyAttemptResultTx(
                               conn, books_, ref->first, ref->second, result, none, DbDeadline()));
  co_return step.effect;
}

asio::awaitable<Result<void>> PayoutService::RunTask(payments::JanitorTask task) {
  const auto ref = store::ParseAttemptReference(task.object_id);
  if (task.kind != "payout_inquire" || !ref) {
    co_return co_await payments::store::FinishTask(pool_, task.kind, task.object_id, DbDeadline());
  }
  LEDGER_CO_TRY(auto attempt,
                co_await store::FindAttempt(pool_, ref->first, ref->second, DbDeadline()));
  const auto status = attempt ? ParseAttemptStatus(attempt->status) : std::nullopt;
  if (!attempt || !status || IsTerminal(*status)) {
    co_return co_await payments::store::FinishTask(pool_, task.kind, task.object_id, DbDeadline());
  }
  adapters::Adapter* adapter = adapters_->Find(attempt->provider, attempt->merchant_account);
  adapters::ProviderResult result;
  if (adapter == nullptr) {
    result.outcome = adapters::Outcome::kUnknown;
    result.detail = "provider account not configured";
  } else {
    adapters::PayoutRef query{attempt->merchant_account, attempt->provider_reference,
                              FromMicros(attempt->created_at_us)};
    result = co_await adapter->QueryPayout(std::move(query));
  }
  // An inquiry's not_sent says only that the query did not get through, not that the payout
  // never reached the provider: it is no answer at all, like unknown.
  const bool answered = result.outcome == adapters::Outcome::kSucceeded ||
                        result.outcome == adapters::Outcome::kDeclined ||
                        result.outcome == adapters::Outcome::kPending;
  if (answered) {
    LEDGER_CO_TRY(auto step, co_await ApplyResult(ref->first, ref->second, result));
    log::Get("payouts")->info("payout {} inquiry: {}", ref->first, step.effect);
    if (step.send) LEDGER_CO_TRYV(co_await Send(std::move(*step.send)));
    if (result.outcome != adapters::Outcome::kPending) {
      co_return co_await payments::store::FinishTask(pool_, task.kind, task.object_id,
                                                     DbDeadline());
    }
  }
  const std::string said = fmt::format("inquiry {}: {} {}", task.attempts,
                                       adapters::OutcomeName(result.outcome), result.detail);
  LEDGER_CO_TRYV(co_await db::RunInTransaction(
      pool_, DbDeadline(), db::TransactionOptions{},
      [&](PgConnection& conn) -> asio::awaitable<Result<void>> {
        co_return co_await store::NoteInquiryTx(conn, ref->first, ref->second, said, DbDeadline());
      }));
  // task.attempts counts the claims so far: the n-th inquiry waits schedule[n] before the next.
  const auto n = static_cast<std::size_t>(std::max<std::int32_t>(task.attempts, 1));
  if (n >= options_.inquiry_schedule.size()) {
    const std::string reason = fmt::format(
        "attempt {} ({} via {}/{}) has no final answer after {} inquiries; the last said: {}",
        ref->second, attempt->provider_reference, attempt->provider, attempt->merchant_account,
        task.attempts, said);
    log::Get("payouts")->warn("payout {} to manual resolution: {}", ref->first, reason);
    co_return co_await store::MoveToManual(pool_, books_, ref->first, ref->second, reason,
                                           DbDeadline());
  }
  co_return co_await payments::store::RescheduleTask(
      pool_, task.kind, task.object_id, options_.inquiry_schedule[n], false, said, DbDeadline());
}

}  // namespace paygate::payouts
