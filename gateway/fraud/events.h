#pragma once

// Building the risk engine's events from the flows' requests (gateway/risk/schema.h says which
// attributes each event declares). Personal data is hashed here (hashing.h), before the event
// exists; the event refers to texts owned by an EventTexts, which must outlive it.
//
// premium_payment, from POST /v1/payments and the payer's stored history:
//   customer.id = payer_id (the customer is the payer); request.principal; policy.id =
//   policy_number; payment.amount and payment.method; from `risk` (PaymentRiskContext): the
//   instrument (payer.instrument_hash), device and IP, names and ID number (payer.name_hash and
//   customer.name_hash, customer.id_number_hash), e-mail (customer.email_hash), card data, the
//   payer's relationship to the policyholder, the policy's product, holder, start date and premium
//   due; from history: customer.created_at (the payer's first order, else now), policy.start_date
//   (when not given: the policy's first order) and policy.premium_paid (captured so far).
// Refunds and payouts build their events the same way when their flows call Decide.
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "config/result.h"
#include "gateway/api/v1/payments.pb.h"
#include "gateway/fraud/hashing.h"
#include "gateway/risk/event.h"

namespace paygate::fraud {

// Stable storage for the texts an Event refers to.
class EventTexts {
 public:
  std::string_view Keep(std::string text) { return texts_.emplace_back(std::move(text)); }

 private:
  std::deque<std::string> texts_;
};

struct PremiumHistory {
  std::optional<std::int64_t> payer_first_seen_s;
  std::optional<std::int64_t> policy_first_order_s;
  std::int64_t policy_captured_minor = 0;
};

// The premium_payment event of a create request at `now_s`. A malformed risk attribute is an
// error naming its request field ("risk.client_ip").
Result<risk::Event, std::string> PremiumPaymentEvent(const api::v1::CreatePaymentRequest& request,
                                                     std::string_view principal,
                                                     const PremiumHistory& history,
                                                     std::int64_t now_s,
                                                     const PersonalHasher& hasher,
                                                     EventTexts& texts);

}  // namespace paygate::fraud
