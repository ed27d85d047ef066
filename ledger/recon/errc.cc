#include "ledger/recon/errc.h"

#include <string>

namespace paygate::recon {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "recon"; }
  std::string message(int value) const override {
    switch (static_cast<Errc>(value)) {
      case Errc::bad_file:
        return "bad bill file";
      case Errc::invalid_argument:
        return "invalid argument";
      case Errc::not_found:
        return "not found";
      case Errc::invalid_state:
        return "invalid state";
      case Errc::ledger_rejected:
        return "ledger rejected a posting";
      case Errc::already_settled:
        return "already settled";
    }
    return "unknown recon error";
  }
};

}  // namespace

const std::error_category& ErrorCategory() noexcept {
  static const Category category;
  return category;
}

std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), ErrorCategory()};
}

}  // namespace paygate::recon
