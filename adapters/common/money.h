#pragma once

// Exact decimal amounts on the wire (Alipay's "12.34" yuan strings, the yuan columns of bill files)
// to and from integer minor units. Never through floating point: 0.1 + 0.2 must stay 0.30.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace paygate::adapters::money {

// Parses an optional '-' or '+' sign, digits, and at most `scale` fraction digits ("12", "12.3",
// "12.34", "-0.01", "45.0"); trailing zero fraction digits beyond `scale` are accepted ("0.00000"
// at scale 2 is 0) but a non-zero digit beyond `scale` is an error, as is overflow, an empty
// string, a lone sign or point, exponent notation and any space. Returns minor units.
std::optional<std::int64_t> ParseDecimal(std::string_view text, int scale = 2);

// Minor units to "12.34" (scale 2), "-0.01", "0.00"; scale 0 gives plain digits.
std::string FormatDecimal(std::int64_t minor, int scale = 2);

// A whole number of minor units ("1234", "-5"): what WeChat Pay and UnionPay send. Rejects signs
// other than a leading '-', any non-digit and overflow.
std::optional<std::int64_t> ParseInteger(std::string_view text);

}  // namespace paygate::adapters::money
