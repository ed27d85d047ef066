#pragma once

// Error codes of reconciliation (STYLE.md: one enum and category per module). Database errors
// come through as db::Errc.
#include <system_error>
#include <type_traits>

namespace paygate::recon {

enum class Errc {
  bad_file = 1,      // The bill does not parse, or its totals disagree with its rows.
  invalid_argument,  // A request field is malformed (date, provider, id).
  not_found,         // No such import or exception.
  invalid_state,     // The exception is already resolved or superseded.
  ledger_rejected,   // The ledger refused a posting (the message names the result).
  already_settled,   // A bill line or item is already settled (settlement.h).
};

const std::error_category& ErrorCategory() noexcept;
std::error_code make_error_code(Errc e) noexcept;

}  // namespace paygate::recon

template <>
struct std::is_error_code_enum<paygate::recon::Errc> : std::true_type {};
