#pragma once

// The declared attribute schema: every attribute a rule may read, its type, which list kind it can
// be looked up in, and on which events the gateway supplies it. This is the one place the
// vocabulary of the rule language is declared (STYLE.md "One list of what is compiled in"); the
// compiler rejects a rule that reads an attribute its events do not declare. Values are supplied
// per event by the caller (the payment, refund and payout flows); an attribute the caller does not
// set is missing.
//
// Personal data arrives already hashed or reduced to booleans by the gateway (DESIGN.md §6): names,
// ID numbers and account numbers are keyed hashes of their normalised form, and fuzzy comparisons
// such as "payer is the policyholder" are computed by the flow and supplied as booleans.
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "gateway/risk/value.h"

namespace paygate::risk {

// Event masks used by the table below.
inline constexpr EventMask kOnPremium = MaskOf(EventType::kPremiumPayment);
inline constexpr EventMask kOnRefund = MaskOf(EventType::kRefund);
inline constexpr EventMask kOnClaim = MaskOf(EventType::kClaimPayout);
inline constexpr EventMask kOnAccountChange = MaskOf(EventType::kPayoutAccountChanged);
inline constexpr EventMask kOnCancel = MaskOf(EventType::kPolicyCancelled);
inline constexpr EventMask kOnAll = EventMask((1u << kEventTypeCount) - 1);

// X(enumerator, "name", Type, ListKind, events)
#define PAYGATE_RISK_ATTRIBUTES(X)                                                              \
  X(kEventTime, "event.time", kTime, kNone, kOnAll)                                             \
  X(kCustomerId, "customer.id", kString, kString, kOnAll)                                       \
  X(kCustomerCreatedAt, "customer.created_at", kTime, kNone, kOnAll)                            \
  X(kCustomerResidenceCountry, "customer.residence_country", kCountry, kCountry, kOnAll)        \
  X(kCustomerNameHash, "customer.name_hash", kString, kName, kOnAll)                            \
  X(kCustomerEmailHash, "customer.email_hash", kString, kString, kOnAll)                        \
  X(kCustomerEmailIsDisposable, "customer.email_is_disposable", kBool, kNone, kOnAll)           \
  X(kCustomerAddressHash, "customer.address_hash", kString, kString, kOnAll)                    \
  X(kCustomerIdNumberHash, "customer.id_number_hash", kString, kIdNumber, kOnAll)               \
  X(kDeviceId, "device.id", kString, kDeviceId, kOnAll)                                         \
  X(kDeviceIp, "device.ip", kIp, kIp, kOnAll)                                                   \
  X(kDeviceIpCountry, "device.ip_country", kCountry, kCountry, kOnAll)                          \
  X(kDeviceIsAnonymousIp, "device.is_anonymous_ip", kBool, kNone, kOnAll)                       \
  X(kPolicyId, "policy.id", kString, kString, kOnAll)                                           \
  X(kPolicyProduct, "policy.product", kString, kString, kOnAll)                                 \
  X(kPolicyHolderId, "policy.holder_id", kString, kString, kOnAll)                              \
  X(kPolicyCountry, "policy.country", kCountry, kCountry, kOnAll)                               \
  X(kPolicyStartDate, "policy.start_date", kTime, kNone, kOnAll)                                \
  X(kPolicyPremiumDue, "policy.premium_due", kMoney, kNone, kOnAll)                             \
  X(kPolicyPremiumPaid, "policy.premium_paid", kMoney, kNone, kOnAll)                           \
  X(kPolicyLastCoverageChangeAt, "policy.last_coverage_change_at", kTime, kNone, kOnAll)        \
  X(kPolicyReinstatedAt, "policy.reinstated_at", kTime, kNone, kOnAll)                          \
  X(kPolicyLastOverpaymentAt, "policy.last_overpayment_at", kTime, kNone, kOnAll)               \
  X(kPolicyAutoApprovalLimit, "policy.auto_approval_limit", kMoney, kNone, kOnAll)              \
  X(kPaymentAmount, "payment.amount", kMoney, kNone, kOnPremium)                                \
  X(kPayerInstrumentHash, "payer.instrument_hash", kString, kAccountHash, kOnPremium)           \
  X(kPayerCardBin, "payer.card_bin", kBin, kBin, kOnPremium)                                    \
  X(kPayerCardCountry, "payer.card_country", kCountry, kCountry, kOnPremium)                    \
  X(kPayerCardFunding, "payer.card_funding", kString, kString, kOnPremium)                      \
  X(kPayerNameHash, "payer.name_hash", kString, kName, kOnPremium)                              \
  X(kPayerIsPolicyholder, "payer.is_policyholder", kBool, kNone, kOnPremium)                    \
  X(kPayerRelationship, "payer.relationship", kString, kString, kOnPremium)                     \
  X(kRefundAmount, "refund.amount", kMoney, kNone, kOnRefund | kOnCancel)                       \
  X(kRefundDestinationHash, "refund.destination_hash", kString, kAccountHash,                   \
    kOnRefund | kOnCancel)                                                                      \
  X(kRefundOriginalInstrumentHash, "refund.original_instrument_hash", kString, kAccountHash,    \
    kOnRefund | kOnCancel)                                                                      \
  X(kRefundHolderMatchesPolicyholder, "refund.holder_matches_policyholder", kBool, kNone,       \
    kOnRefund | kOnCancel)                                                                      \
  X(kClaimId, "claim.id", kString, kString, kOnClaim)                                           \
  X(kClaimAmount, "claim.amount", kMoney, kNone, kOnClaim)                                      \
  X(kClaimLossDate, "claim.loss_date", kTime, kNone, kOnClaim)                                  \
  X(kClaimReportedAt, "claim.reported_at", kTime, kNone, kOnClaim)                              \
  X(kClaimInvoiceHash, "claim.invoice_hash", kString, kString, kOnClaim)                        \
  X(kClaimantId, "claimant.id", kString, kString, kOnClaim | kOnAccountChange)                  \
  X(kBeneficiaryAccountHash, "beneficiary.account_hash", kString, kAccountHash,                 \
    kOnClaim | kOnAccountChange)                                                                \
  X(kBeneficiaryNameHash, "beneficiary.name_hash", kString, kName, kOnClaim | kOnAccountChange) \
  X(kBeneficiaryIdNumberHash, "beneficiary.id_number_hash", kString, kIdNumber,                 \
    kOnClaim | kOnAccountChange)                                                                \
  X(kBeneficiaryBankCountry, "beneficiary.bank_country", kCountry, kCountry,                    \
    kOnClaim | kOnAccountChange)                                                                \
  X(kBeneficiaryMatchesPolicyholder, "beneficiary.matches_policyholder", kBool, kNone,          \
    kOnClaim | kOnAccountChange)                                                                \
  X(kBeneficiaryIsVerified, "beneficiary.is_verified", kBool, kNone, kOnClaim | kOnAccountChange) \
  X(kPaymentMethod, "payment.method", kString, kString, kOnPremium)                               \
  X(kRequestPrincipal, "request.principal", kString, kString, kOnAll)

enum class Attr : std::uint16_t {
#define PAYGATE_RISK_ATTR_ENUM(e, name, type, list, events) e,
  PAYGATE_RISK_ATTRIBUTES(PAYGATE_RISK_ATTR_ENUM)
#undef PAYGATE_RISK_ATTR_ENUM
};

#define PAYGATE_RISK_ATTR_COUNT(e, name, type, list, events) +1
inline constexpr int kAttrCount = 0 PAYGATE_RISK_ATTRIBUTES(PAYGATE_RISK_ATTR_COUNT);
#undef PAYGATE_RISK_ATTR_COUNT

struct AttrInfo {
  Attr attr;
  std::string_view name;
  Type type;
  ListKind list_kind;
  EventMask events;
};

std::span<const AttrInfo> Attributes();
const AttrInfo& Info(Attr attr);
std::optional<Attr> AttrFromName(std::string_view name);

}  // namespace paygate::risk
