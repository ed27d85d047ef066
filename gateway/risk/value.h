#pragma once

// The typed values the risk engine computes with (DESIGN.md §7). Every value is a small POD so that
// an evaluation can copy values into preallocated scratch space and into a Decision without
// allocating. Money is int64 minor units with a currency (STYLE.md "Money is integers"); times are
// Unix seconds; durations are seconds; strings are represented by a 64-bit hash, which is how the
// engine interns them: equality, list membership and aggregate keys compare hashes, never bytes.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace paygate::risk {

enum class Type : std::uint8_t {
  kBool,
  kInt,
  kMoney,
  kDuration,  // seconds
  kTime,      // Unix seconds
  kCountry,   // ISO 3166-1 alpha-2, upper case
  kString,    // compared by hash
  kIp,        // IPv4 (as IPv4-mapped IPv6) or IPv6
  kBin,       // card BIN, normalised to 8 digits
};
std::string_view TypeName(Type type);

// What kind of item a list holds; a `x in @list` condition needs x to be of the list's kind.
enum class ListKind : std::uint8_t {
  kNone,  // an attribute that cannot be looked up in a list
  kAccountHash,
  kDeviceId,
  kIdNumber,
  kName,
  kIp,
  kBin,
  kCountry,
  kString,
};
std::string_view ListKindName(ListKind kind);
std::optional<ListKind> ListKindFromName(std::string_view name);
// The value type a list of this kind holds.
Type ListKindType(ListKind kind);

// Events a ruleset can be evaluated for (the scopes). Values index bit masks.
enum class EventType : std::uint8_t {
  kPremiumPayment,
  kRefund,
  kClaimPayout,
  kPayoutAccountChanged,
  kPolicyCancelled,
};
inline constexpr int kEventTypeCount = 5;
std::string_view EventTypeName(EventType type);
std::optional<EventType> EventTypeFromName(std::string_view name);
using EventMask = std::uint8_t;
constexpr EventMask MaskOf(EventType type) { return EventMask(1u << static_cast<unsigned>(type)); }

// One value. `present` false means missing: comparisons with it are unknown (see evaluator.h).
//   kBool, kInt, kDuration, kTime, kBin: `a`.
//   kMoney: `a` minor units, `aux` the currency packed by PackCurrency.
//   kCountry: `a` packed by PackCountry.
//   kString: `a` the string's hash (HashString).
//   kIp: `a` high and `b` low 64 bits of the IPv6 (or IPv4-mapped) address.
struct Value {
  std::int64_t a = 0;
  std::uint64_t b = 0;
  std::uint32_t aux = 0;
  Type type = Type::kBool;
  bool present = false;

  static Value Missing(Type type) {
    Value v;
    v.type = type;
    return v;
  }
  static Value Of(Type type, std::int64_t a, std::uint32_t aux = 0) {
    Value v;
    v.type = type;
    v.a = a;
    v.aux = aux;
    v.present = true;
    return v;
  }
  friend bool operator==(const Value&, const Value&) = default;
};

// The hash the engine uses for strings and aggregate keys. Stable within one build; aggregate state
// is rebuilt from stored events (which hold the strings), never persisted as hashes.
std::uint64_t HashString(std::string_view s);

// "CNY" -> packed; nullopt unless exactly three upper-case letters.
std::optional<std::uint32_t> PackCurrency(std::string_view code);
std::string UnpackCurrency(std::uint32_t packed);
// Minor units of the currencies rule literals may use (CNY 2, JPY 0, ...); nullopt for others.
std::optional<int> CurrencyMinorUnits(std::string_view code);
// Exact decimal "5000.00" -> minor units (500000 at 2 minor units); nullopt when the text has more
// decimals than the currency has, is not a decimal, or overflows.
std::optional<std::int64_t> ParseMinorUnits(std::string_view decimal, int minor_units);

// "CN" -> packed; nullopt unless exactly two upper-case letters.
std::optional<std::int64_t> PackCountry(std::string_view code);
std::string UnpackCountry(std::int64_t packed);

// Textual IPv4 or IPv6 -> (high, low) of the IPv6 form (IPv4 is mapped into ::ffff:0:0/96).
struct Ip128 {
  std::uint64_t high = 0;
  std::uint64_t low = 0;
  friend auto operator<=>(const Ip128&, const Ip128&) = default;
};
std::optional<Ip128> ParseIp(std::string_view text);
std::string FormatIp(Ip128 ip);
// Keeps the first `prefix_bits` bits (0..128).
Ip128 MaskIp(Ip128 ip, int prefix_bits);

// A card BIN of 6 to 8 digits, right-padded with zeros to 8 digits ("411111" -> 41111100).
std::optional<std::int64_t> ParseBin(std::string_view digits);

// A human-readable rendering for reasons and stored decisions (strings render as their hash;
// callers that hold the text render it themselves).
std::string FormatValue(const Value& value);

}  // namespace paygate::risk
