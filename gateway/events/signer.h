#pragma once

// Webhook signatures (DESIGN.md §3): every delivery carries
//   Paygate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>[,v1=<hex>]
// with one v1 per valid secret, the current secret first. During a rotation two secrets sign, so a
// receiver that knows either one verifies the delivery and can switch secrets at its own pace. The
// timestamp is signed with the body, so a captured delivery cannot be replayed later than the
// receiver's tolerance. Pure functions: no I/O, no clock (the caller passes the time).
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "config/result.h"
#include "keys/secret.h"

namespace paygate::events {

inline constexpr std::string_view kSignatureHeader = "Paygate-Signature";
inline constexpr std::string_view kEventIdHeader = "Paygate-Event-Id";
inline constexpr std::string_view kEventTypeHeader = "Paygate-Event-Type";

// HMAC-SHA256(secret, message) as 64 lower-case hex digits.
std::string HmacSha256Hex(std::string_view secret, std::string_view message);

// The header value for `body` sent at `timestamp_s`: "t=<timestamp_s>,v1=<hex>" with one v1 per
// secret, in the order given. `secrets` must not be empty (the configuration guarantees 1 or 2).
std::string SignatureHeader(std::span<const keys::Secret> secrets, std::int64_t timestamp_s,
                            std::string_view body);
// The same over secrets held elsewhere (the keyring's versions, newest first).
std::string SignatureHeader(std::span<const keys::Secret* const> secrets, std::int64_t timestamp_s,
                            std::string_view body);

enum class VerifyError {
  // Not "t=<digits>" plus at least one "v1=<64 hex digits>".
  kMalformed,
  // The timestamp is further than the tolerance from `now_s` (either way).
  kOutsideTolerance,
  // No v1 value matches any of the receiver's secrets.
  kNoMatch,
};
std::string_view ToString(VerifyError error);
// value()/error() on the wrong alternative terminate: a receiver bug, not a condition to handle.
using VerifyResult = outcome::result<void, VerifyError, outcome::policy::terminate>;

// For receivers and tests: accepts the header when its timestamp is within `tolerance` of `now_s`
// and at least one of its v1 values is the HMAC of "t.body" under at least one of `secrets`.
// Unknown keys (a future "v2=") are ignored so receivers keep working when a scheme is added.
// Comparisons are constant-time.
VerifyResult VerifySignatureHeader(std::string_view header, std::string_view body,
                                   std::span<const std::string_view> secrets, std::int64_t now_s,
                                   std::chrono::seconds tolerance);

}  // namespace paygate::events
