#include "adapters/adapter.h"

namespace paygate::adapters {

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kSucceeded:
      return "succeeded";
    case Outcome::kPending:
      return "pending";
    case Outcome::kDeclined:
      return "declined";
    case Outcome::kNotSent:
      return "not_sent";
    case Outcome::kUnknown:
      return "unknown";
  }
  return "unknown";
}

namespace {

ProviderResult PayoutsUnsupported() {
  ProviderResult result;
  result.outcome = Outcome::kNotSent;
  result.decline_code = "payouts_unsupported";
  result.detail = "this provider's adapter does not pay out";
  return result;
}

}  // namespace

boost::asio::awaitable<ProviderResult> Adapter::CreatePayout(CreatePayoutRequest /*request*/) {
  co_return PayoutsUnsupported();
}

boost::asio::awaitable<ProviderResult> Adapter::QueryPayout(PayoutRef /*ref*/) {
  co_return PayoutsUnsupported();
}

}  // namespace paygate::adapters
