#include "ledger/ledger/errc.h"

#include <string>

namespace paygate::ledger {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "paygate.ledger"; }

  std::string message(int value) const override {
    switch (static_cast<Errc>(value)) {
      case Errc::too_many_transfers:
        return "request holds more transfers than batch_size_max";
      case Errc::overloaded:
        return "ledger posting queue is full";
      case Errc::closed:
        return "ledger is stopped";
      case Errc::inconsistent_state:
        return "ledger database state breaks an invariant";
      case Errc::not_found:
        return "ledger account not found";
    }
    return "unknown ledger error";
  }
};

}  // namespace

const std::error_category& ErrorCategory() noexcept {
  static const Category category;
  return category;
}

std::error_code make_error_code(Errc e) noexcept { return {static_cast<int>(e), ErrorCategory()}; }

}  // namespace paygate::ledger
