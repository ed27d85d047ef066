#include "gateway/payouts/risk_event.h"

#include <chrono>

#include "gateway/utc_time.h"

namespace paygate::payouts {
namespace {

using risk::Attr;

// The attributes both payout events share: who claims, where the money goes.
std::optional<std::string> SetPayee(risk::Event& e, const api::v1::CreatePayoutRequest& request,
                                    std::string_view principal, const fraud::PersonalHasher& hasher,
                                    fraud::EventTexts& texts) {
  auto text = [&](Attr attr, const std::string& value) -> bool {
    if (value.empty()) return true;
    if (value.size() > 128) return false;
    return e.SetText(attr, texts.Keep(value));
  };
  auto personal = [&](Attr attr, fraud::PersonalKind kind, const std::string& value) {
    if (value.empty()) return true;
    if (value.size() > 256) return false;
    return e.SetText(attr, texts.Keep(hasher.Hash(kind, value)));
  };
  const api::v1::Beneficiary& b = request.beneficiary();
  const api::v1::PayoutRiskContext& r = request.risk();
  if (!text(Attr::kRequestPrincipal, std::string(principal))) return "principal";
  if (!text(Attr::kPolicyId, request.policy_number())) return "policy_number";
  if (!text(Attr::kClaimantId, request.claimant_id())) return "claimant_id";
  if (!personal(Attr::kBeneficiaryAccountHash, fraud::PersonalKind::kAccount, b.account())) {
    return "beneficiary.account";
  }
  if (!personal(Attr::kBeneficiaryNameHash, fraud::PersonalKind::kName, b.name())) {
    return "beneficiary.name";
  }
  if (!personal(Attr::kBeneficiaryIdNumberHash, fraud::PersonalKind::kIdNumber, b.id_number())) {
    return "beneficiary.id_number";
  }
  if (!text(Attr::kBeneficiaryBankCountry, r.bank_country())) return "risk.bank_country";
  if (r.has_payee_is_policyholder()) {
    e.SetBool(Attr::kBeneficiaryMatchesPolicyholder, r.payee_is_policyholder());
  }
  e.SetBool(Attr::kBeneficiaryIsVerified, r.beneficiary_verified());
  if (!text(Attr::kDeviceId, r.device_id())) return "risk.device_id";
  return std::nullopt;
}

std::optional<std::int64_t> UnixSeconds(const std::string& text) {
  const auto at = gateway::ParseUtc(text);
  if (!at) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::seconds>(at->time_since_epoch()).count();
}

}  // namespace

Result<risk::Event, std::string> ClaimPayoutEvent(const api::v1::CreatePayoutRequest& request,
                                                  std::string_view principal,
                                                  const ClaimContext& context,
                                                  const fraud::PersonalHasher& hasher,
                                                  fraud::EventTexts& texts) {
  risk::Event e(risk::EventType::kClaimPayout, context.now_s);
  if (auto bad = SetPayee(e, request, principal, hasher, texts)) return *bad;
  const api::v1::PayoutRiskContext& r = request.risk();
  if (!e.SetText(Attr::kClaimId, texts.Keep(request.claim_number()))) {
    return std::string("claim_number");
  }
  if (!e.SetMoney(Attr::kClaimAmount, request.amount_minor(), request.currency())) {
    return std::string("currency");
  }
  if (context.auto_approval_limit_minor > 0) {
    e.SetMoney(Attr::kPolicyAutoApprovalLimit, context.auto_approval_limit_minor,
               request.currency());
  }
  const std::pair<const std::string*, std::pair<Attr, const char*>> times[] = {
      {&r.policy_start_date(), {Attr::kPolicyStartDate, "risk.policy_start_date"}},
      {&r.loss_date(), {Attr::kClaimLossDate, "risk.loss_date"}},
      {&r.reported_at(), {Attr::kClaimReportedAt, "risk.reported_at"}},
  };
  for (const auto& [value, attr] : times) {
    if (value->empty()) continue;
    const auto s = UnixSeconds(*value);
    if (!s) return std::string(attr.second);
    e.SetTime(attr.first, *s);
  }
  if (!r.policy_holder_id().empty() &&
      (r.policy_holder_id().size() > 128 ||
       !e.SetText(Attr::kPolicyHolderId, texts.Keep(r.policy_holder_id())))) {
    return std::string("risk.policy_holder_id");
  }
  if (!r.policy_country().empty() &&
      !e.SetText(Attr::kPolicyCountry, texts.Keep(r.policy_country()))) {
    return std::string("risk.policy_country");
  }
  return e;
}

Result<risk::Event, std::string> AccountChangedEvent(const api::v1::CreatePayoutRequest& request,
                                                     std::string_view principal, std::int64_t now_s,
                                                     const fraud::PersonalHasher& hasher,
                                                     fraud::EventTexts& texts) {
  // Only what identifies the change: who, and the new account (the rules count the change per
  // claimant, last_account_change, and the claimants per account).
  (void)principal;
  risk::Event e(risk::EventType::kPayoutAccountChanged, now_s);
  if (request.claimant_id().empty() || request.claimant_id().size() > 128 ||
      !e.SetText(Attr::kClaimantId, texts.Keep(request.claimant_id()))) {
    return std::string("claimant_id");
  }
  const std::string& account = request.beneficiary().account();
  if (account.size() > 256 ||
      !e.SetText(Attr::kBeneficiaryAccountHash,
                 texts.Keep(hasher.Hash(fraud::PersonalKind::kAccount, account)))) {
    return std::string("beneficiary.account");
  }
  return e;
}

}  // namespace paygate::payouts
