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

}  // namespace paygate::adapters
