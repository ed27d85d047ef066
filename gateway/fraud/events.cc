#include "gateway/fraud/events.h"

#include "gateway/utc_time.h"

namespace paygate::fraud {

using risk::Attr;

Result<risk::Event, std::string> PremiumPaymentEvent(const api::v1::CreatePaymentRequest& request,
                                                     std::string_view principal,
                                                     const PremiumHistory& history,
                                                     std::int64_t now_s,
                                                     const PersonalHasher& hasher,
                                                     EventTexts& texts) {
  risk::Event e(risk::EventType::kPremiumPayment, now_s);
  const api::v1::PaymentRiskContext& r = request.risk();
  // Every setter below only fails on malformed text; each names the field it came from.
  auto text = [&](Attr attr, const std::string& value) -> bool {
    if (value.empty()) return true;
    if (value.size() > 128) return false;
    return e.SetText(attr, texts.Keep(value));
  };
  auto personal = [&](Attr attr, PersonalKind kind, const std::string& value) {
    if (value.empty()) return true;
    if (value.size() > 256) return false;
    return e.SetText(attr, texts.Keep(hasher.Hash(kind, value)));
  };
  if (!text(Attr::kCustomerId, request.payer_id())) return std::string("payer_id");
  if (!text(Attr::kRequestPrincipal, std::string(principal))) {
    return std::string("principal");
  }
  if (!text(Attr::kPolicyId, request.policy_number())) {
    return std::string("policy_number");
  }
  if (!e.SetMoney(Attr::kPaymentAmount, request.amount_minor(), request.currency())) {
    return std::string("currency");
  }
  if (!text(Attr::kPaymentMethod, request.method())) return std::string("method");
  if (!personal(Attr::kPayerInstrumentHash, PersonalKind::kAccount, r.instrument())) {
    return std::string("risk.instrument");
  }
  if (!text(Attr::kDeviceId, r.device_id())) return std::string("risk.device_id");
  if (!r.client_ip().empty()) {
    if (!text(Attr::kDeviceIp, r.client_ip())) {
      return std::string("risk.client_ip");
    }
    e.SetBool(Attr::kDeviceIsAnonymousIp, r.ip_is_anonymous());
  }
  if (!text(Attr::kDeviceIpCountry, r.ip_country())) {
    return std::string("risk.ip_country");
  }
  if (!personal(Attr::kPayerNameHash, PersonalKind::kName, r.payer_name()) ||
      !personal(Attr::kCustomerNameHash, PersonalKind::kName, r.payer_name())) {
    return std::string("risk.payer_name");
  }
  if (!personal(Attr::kCustomerIdNumberHash, PersonalKind::kIdNumber, r.payer_id_number())) {
    return std::string("risk.payer_id_number");
  }
  if (!r.email().empty()) {
    if (!personal(Attr::kCustomerEmailHash, PersonalKind::kEmail, r.email())) {
      return std::string("risk.email");
    }
    e.SetBool(Attr::kCustomerEmailIsDisposable, r.email_is_disposable());
  }
  if (r.has_payer_is_policyholder()) e.SetBool(Attr::kPayerIsPolicyholder, r.payer_is_policyholder());
  if (!text(Attr::kPayerRelationship, r.payer_relationship())) {
    return std::string("risk.payer_relationship");
  }
  if (!text(Attr::kPayerCardBin, r.card_bin())) return std::string("risk.card_bin");
  if (!text(Attr::kPayerCardCountry, r.card_country())) {
    return std::string("risk.card_country");
  }
  if (!text(Attr::kPayerCardFunding, r.card_funding())) {
    return std::string("risk.card_funding");
  }
  if (!text(Attr::kCustomerResidenceCountry, r.residence_country())) {
    return std::string("risk.residence_country");
  }
  if (!text(Attr::kPolicyProduct, r.policy_product())) {
    return std::string("risk.policy_product");
  }
  if (!text(Attr::kPolicyHolderId, r.policy_holder_id())) {
    return std::string("risk.policy_holder_id");
  }
  if (!r.policy_start_date().empty()) {
    const auto start = gateway::ParseUtc(r.policy_start_date());
    if (!start) return std::string("risk.policy_start_date");
    e.SetTime(Attr::kPolicyStartDate,
              std::chrono::duration_cast<std::chrono::seconds>(start->time_since_epoch()).count());
  } else if (history.policy_first_order_s) {
    e.SetTime(Attr::kPolicyStartDate, *history.policy_first_order_s);
  }
  if (r.premium_due_minor() < 0) return std::string("risk.premium_due_minor");
  if (r.premium_due_minor() > 0) {
    e.SetMoney(Attr::kPolicyPremiumDue, r.premium_due_minor(), request.currency());
  }
  e.SetMoney(Attr::kPolicyPremiumPaid, history.policy_captured_minor, request.currency());
  e.SetTime(Attr::kCustomerCreatedAt, history.payer_first_seen_s.value_or(now_s));
  return e;
}

}  // namespace paygate::fraud
