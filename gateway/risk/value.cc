#include "gateway/risk/value.h"

#include <arpa/inet.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <functional>

namespace paygate::risk {

std::string_view TypeName(Type type) {
  switch (type) {
    case Type::kBool:
      return "bool";
    case Type::kInt:
      return "int";
    case Type::kMoney:
      return "money";
    case Type::kDuration:
      return "duration";
    case Type::kTime:
      return "time";
    case Type::kCountry:
      return "country";
    case Type::kString:
      return "string";
    case Type::kIp:
      return "ip";
    case Type::kBin:
      return "bin";
  }
  return "?";
}

namespace {
struct ListKindEntry {
  ListKind kind;
  std::string_view name;
  Type type;
};
constexpr std::array<ListKindEntry, 8> kListKinds{{
    {ListKind::kAccountHash, "account_hash", Type::kString},
    {ListKind::kDeviceId, "device_id", Type::kString},
    {ListKind::kIdNumber, "id_number", Type::kString},
    {ListKind::kName, "name", Type::kString},
    {ListKind::kIp, "ip", Type::kIp},
    {ListKind::kBin, "bin", Type::kBin},
    {ListKind::kCountry, "country", Type::kCountry},
    {ListKind::kString, "string", Type::kString},
}};

constexpr std::array<std::string_view, kEventTypeCount> kEventNames{
    "premium_payment", "refund", "claim_payout", "payout_account_changed", "policy_cancelled"};
}  // namespace

std::string_view ListKindName(ListKind kind) {
  for (const auto& e : kListKinds) {
    if (e.kind == kind) return e.name;
  }
  return "none";
}

std::optional<ListKind> ListKindFromName(std::string_view name) {
  for (const auto& e : kListKinds) {
    if (e.name == name) return e.kind;
  }
  return std::nullopt;
}

Type ListKindType(ListKind kind) {
  for (const auto& e : kListKinds) {
    if (e.kind == kind) return e.type;
  }
  return Type::kString;
}

std::string_view EventTypeName(EventType type) {
  return kEventNames[static_cast<std::size_t>(type)];
}

std::optional<EventType> EventTypeFromName(std::string_view name) {
  for (std::size_t i = 0; i < kEventNames.size(); ++i) {
    if (kEventNames[i] == name) return static_cast<EventType>(i);
  }
  return std::nullopt;
}

std::uint64_t HashString(std::string_view s) { return std::hash<std::string_view>{}(s); }

std::optional<std::uint32_t> PackCurrency(std::string_view code) {
  if (code.size() != 3) return std::nullopt;
  std::uint32_t packed = 0;
  for (char c : code) {
    if (c < 'A' || c > 'Z') return std::nullopt;
    packed = (packed << 8) | static_cast<unsigned char>(c);
  }
  return packed;
}

std::string UnpackCurrency(std::uint32_t packed) {
  std::string s(3, ' ');
  s[0] = static_cast<char>((packed >> 16) & 0xff);
  s[1] = static_cast<char>((packed >> 8) & 0xff);
  s[2] = static_cast<char>(packed & 0xff);
  return s;
}

std::optional<int> CurrencyMinorUnits(std::string_view code) {
  // The currencies the providers in PROTOCOLS.md settle in, plus the common ones for reference
  // rules.
  static constexpr std::array<std::pair<std::string_view, int>, 9> kMinor{{{"CNY", 2},
                                                                           {"HKD", 2},
                                                                           {"USD", 2},
                                                                           {"EUR", 2},
                                                                           {"GBP", 2},
                                                                           {"SGD", 2},
                                                                           {"JPY", 0},
                                                                           {"KRW", 0},
                                                                           {"CHF", 2}}};
  for (const auto& [c, m] : kMinor) {
    if (c == code) return m;
  }
  return std::nullopt;
}

std::optional<std::int64_t> ParseMinorUnits(std::string_view decimal, int minor_units) {
  bool negative = false;
  if (!decimal.empty() && decimal.front() == '-') {
    negative = true;
    decimal.remove_prefix(1);
  }
  if (decimal.empty()) return std::nullopt;
  std::int64_t value = 0;
  int decimals = -1;  // -1: before the point
  bool any_digit = false;
  for (char c : decimal) {
    if (c == '.') {
      if (decimals >= 0) return std::nullopt;
      decimals = 0;
      continue;
    }
    if (c < '0' || c > '9') return std::nullopt;
    if (decimals >= 0 && ++decimals > minor_units) return std::nullopt;
    if (__builtin_mul_overflow(value, 10, &value) ||
        __builtin_add_overflow(value, c - '0', &value)) {
      return std::nullopt;
    }
    any_digit = true;
  }
  if (!any_digit || decimals == 0) return std::nullopt;  // "5." is not a decimal
  for (int i = decimals < 0 ? 0 : decimals; i < minor_units; ++i) {
    if (__builtin_mul_overflow(value, 10, &value)) return std::nullopt;
  }
  return negative ? -value : value;
}

std::optional<std::int64_t> PackCountry(std::string_view code) {
  if (code.size() != 2) return std::nullopt;
  for (char c : code) {
    if (c < 'A' || c > 'Z') return std::nullopt;
  }
  return (static_cast<std::int64_t>(code[0]) << 8) | code[1];
}

std::string UnpackCountry(std::int64_t packed) {
  return {static_cast<char>((packed >> 8) & 0xff), static_cast<char>(packed & 0xff)};
}

std::optional<Ip128> ParseIp(std::string_view text) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof(buf)) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  unsigned char bytes[16] = {};
  if (inet_pton(AF_INET, buf, bytes + 12) == 1) {
    bytes[10] = 0xff;
    bytes[11] = 0xff;
  } else if (inet_pton(AF_INET6, buf, bytes) != 1) {
    return std::nullopt;
  }
  Ip128 ip;
  for (int i = 0; i < 8; ++i) ip.high = (ip.high << 8) | bytes[i];
  for (int i = 8; i < 16; ++i) ip.low = (ip.low << 8) | bytes[i];
  return ip;
}

std::string FormatIp(Ip128 ip) {
  unsigned char bytes[16];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(ip.high >> (56 - 8 * i));
  for (int i = 0; i < 8; ++i) bytes[8 + i] = static_cast<unsigned char>(ip.low >> (56 - 8 * i));
  char buf[INET6_ADDRSTRLEN];
  const bool v4 = ip.high == 0 && (ip.low >> 32) == 0xffff;
  if (v4) {
    inet_ntop(AF_INET, bytes + 12, buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET6, bytes, buf, sizeof(buf));
  }
  return buf;
}

Ip128 MaskIp(Ip128 ip, int prefix_bits) {
  if (prefix_bits <= 0) return {};
  if (prefix_bits >= 128) return ip;
  if (prefix_bits <= 64) {
    const std::uint64_t mask = prefix_bits == 64 ? ~0ull : ~(~0ull >> prefix_bits);
    return {ip.high & mask, 0};
  }
  const std::uint64_t mask = ~(~0ull >> (prefix_bits - 64));
  return {ip.high, ip.low & mask};
}

std::optional<std::int64_t> ParseBin(std::string_view digits) {
  if (digits.size() < 6 || digits.size() > 8) return std::nullopt;
  std::int64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  for (std::size_t i = digits.size(); i < 8; ++i) v *= 10;
  return v;
}

std::string FormatValue(const Value& value) {
  if (!value.present) return "missing";
  char buf[64];
  switch (value.type) {
    case Type::kBool:
      return value.a ? "true" : "false";
    case Type::kInt:
      return std::to_string(value.a);
    case Type::kMoney: {
      const std::string currency = UnpackCurrency(value.aux);
      const int minor = CurrencyMinorUnits(currency).value_or(2);
      std::int64_t scale = 1;
      for (int i = 0; i < minor; ++i) scale *= 10;
      const std::int64_t abs = value.a < 0 ? -value.a : value.a;
      if (minor == 0) {
        std::snprintf(buf, sizeof(buf), "%s %s%lld", currency.c_str(), value.a < 0 ? "-" : "",
                      static_cast<long long>(abs));
      } else {
        std::snprintf(buf, sizeof(buf), "%s %s%lld.%0*lld", currency.c_str(),
                      value.a < 0 ? "-" : "", static_cast<long long>(abs / scale), minor,
                      static_cast<long long>(abs % scale));
      }
      return buf;
    }
    case Type::kDuration: {
      const std::int64_t s = value.a;
      if (s % 86400 == 0) return std::to_string(s / 86400) + "d";
      if (s % 3600 == 0) return std::to_string(s / 3600) + "h";
      if (s % 60 == 0) return std::to_string(s / 60) + "m";
      return std::to_string(s) + "s";
    }
    case Type::kTime:
      return "@" + std::to_string(value.a);
    case Type::kCountry:
      return "country:" + UnpackCountry(value.a);
    case Type::kString:
      std::snprintf(buf, sizeof(buf), "#%016llx", static_cast<unsigned long long>(value.a));
      return buf;
    case Type::kIp:
      return FormatIp(Ip128{static_cast<std::uint64_t>(value.a), value.b});
    case Type::kBin:
      return std::to_string(value.a);
  }
  return "?";
}

}  // namespace paygate::risk
