#pragma once

// A provider attempt's reference, "<object id>_<attempt seq>" (DESIGN.md §4), as payments
// ("pay_...") and payouts ("po_...") both send it: the provider's idempotency key for the attempt.
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <fmt/format.h>

namespace paygate::attempt_reference {

inline std::string Make(std::string_view object_id, std::int32_t seq) {
  return fmt::format("{}_{}", object_id, seq);
}

// The object id and a positive seq back from `ref`, when the id starts with `id_prefix`.
inline std::optional<std::pair<std::string, std::int32_t>> Parse(std::string_view ref,
                                                                 std::string_view id_prefix) {
  const auto underscore = ref.rfind('_');
  if (underscore == std::string_view::npos || !ref.starts_with(id_prefix)) return std::nullopt;
  std::int32_t seq = 0;
  const char* begin = ref.data() + underscore + 1;
  const char* end = ref.data() + ref.size();
  const auto [ptr, ec] = std::from_chars(begin, end, seq);
  if (ec != std::errc() || ptr != end || seq <= 0) return std::nullopt;
  return std::pair<std::string, std::int32_t>(std::string(ref.substr(0, underscore)), seq);
}

}  // namespace paygate::attempt_reference
