#pragma once

// Error codes of the ledger (STYLE.md: one enum and category per module). Business rejections of a
// transfer are TransferResult values, not errors; these are the failures of a whole call. Database
// errors (paygate::db::Errc) pass through unchanged.
#include <system_error>
#include <type_traits>

namespace paygate::ledger {

enum class Errc {
  // 0 is reserved for success by std::error_code.
  too_many_transfers = 1,  // One request holds more than batch_size_max transfers.
  overloaded,              // The posting queue holds queue_transfers_max transfers already.
  closed,                  // The ledger was stopped; nothing of the request was written.
  inconsistent_state,      // The database returned rows that break the ledger's invariants.
  not_found,               // The account does not exist.
};

const std::error_category& ErrorCategory() noexcept;
std::error_code make_error_code(Errc e) noexcept;

}  // namespace paygate::ledger

template <>
struct std::is_error_code_enum<paygate::ledger::Errc> : std::true_type {};
