#include "adapters/common/money.h"

#include <limits>

namespace paygate::adapters::money {
namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

// Appends one decimal digit to a non-negative accumulator; false on overflow.
bool Push(std::int64_t& acc, int digit) {
  if (acc > (kMax - digit) / 10) return false;
  acc = acc * 10 + digit;
  return true;
}

}  // namespace

std::optional<std::int64_t> ParseDecimal(std::string_view text, int scale) {
  if (scale < 0 || scale > 18) return std::nullopt;
  bool negative = false;
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  const std::size_t point = text.find('.');
  const std::string_view whole = text.substr(0, point);
  const std::string_view fraction =
      point == std::string_view::npos ? std::string_view() : text.substr(point + 1);
  if (whole.empty() && fraction.empty()) return std::nullopt;
  if (point != std::string_view::npos && fraction.empty()) return std::nullopt;  // "12."
  if (whole.empty()) return std::nullopt;                                         // ".5"
  std::int64_t acc = 0;
  for (const char c : whole) {
    if (c < '0' || c > '9') return std::nullopt;
    if (!Push(acc, c - '0')) return std::nullopt;
  }
  for (int i = 0; i < static_cast<int>(fraction.size()); ++i) {
    const char c = fraction[static_cast<std::size_t>(i)];
    if (c < '0' || c > '9') return std::nullopt;
    if (i < scale) {
      if (!Push(acc, c - '0')) return std::nullopt;
    } else if (c != '0') {
      return std::nullopt;  // more precision than the currency has
    }
  }
  for (int i = static_cast<int>(fraction.size()); i < scale; ++i) {
    if (!Push(acc, 0)) return std::nullopt;
  }
  return negative ? -acc : acc;
}

std::string FormatDecimal(std::int64_t minor, int scale) {
  const bool negative = minor < 0;
  // Work in unsigned to format INT64_MIN without overflow.
  std::uint64_t magnitude =
      negative ? static_cast<std::uint64_t>(-(minor + 1)) + 1 : static_cast<std::uint64_t>(minor);
  std::string digits = std::to_string(magnitude);
  if (scale > 0) {
    const auto s = static_cast<std::size_t>(scale);
    // Built by appending: GCC 12 at -O2 reports a false -Wrestrict on string::insert here.
    std::string padded(digits.size() <= s ? s + 1 - digits.size() : 0, '0');
    padded += digits;
    digits.assign(padded, 0, padded.size() - s);
    digits += '.';
    digits.append(padded, padded.size() - s, s);
  }
  return negative ? "-" + digits : digits;
}

std::optional<std::int64_t> ParseInteger(std::string_view text) {
  bool negative = false;
  if (!text.empty() && text.front() == '-') {
    negative = true;
    text.remove_prefix(1);
  }
  if (text.empty()) return std::nullopt;
  std::int64_t acc = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    if (!Push(acc, c - '0')) return std::nullopt;
  }
  return negative ? -acc : acc;
}

}  // namespace paygate::adapters::money
