#pragma once

// Look-ups over the explicit state tables of gateway/payments/state.cc and gateway/payouts/state.cc
// (DESIGN.md §4): a status's wire name, the status a name stands for, and whether a transition is a
// row of its table. Each state machine keeps its own tables; only the look-ups are shared.
#include <array>
#include <cstddef>
#include <optional>
#include <string_view>
#include <utility>

namespace paygate::state_table {

template <class Status, std::size_t N>
std::optional<Status> Parse(const std::array<std::pair<Status, std::string_view>, N>& names,
                            std::string_view text) {
  for (const auto& [status, name] : names) {
    if (name == text) return status;
  }
  return std::nullopt;
}

template <class Status, std::size_t N>
std::string_view Name(const std::array<std::pair<Status, std::string_view>, N>& names,
                      Status status) {
  for (const auto& [s, name] : names) {
    if (s == status) return name;
  }
  return "invalid";
}

template <class Status, std::size_t N>
bool InTable(const std::pair<Status, Status> (&table)[N], Status from, Status to) {
  for (const auto& [f, t] : table) {
    if (f == from && t == to) return true;
  }
  return false;
}

}  // namespace paygate::state_table
