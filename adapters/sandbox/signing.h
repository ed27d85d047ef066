#pragma once

// Signing of the sandbox protocol (adapters/sandbox/PROTOCOL.md "Signatures"), shared by the
// adapter and the simulator. Pure functions: no I/O, no clock of their own.
//
// Every request, reply and callback carries four headers and is signed with the merchant account's
// secret:  HMAC-SHA256(secret, line "\n" timestamp "\n" nonce "\n" body), hex, as "v1=<hex>", where
// line is "<METHOD> <path>" for a request, "REPLY <status> <path>" for a reply (with the request's
// nonce, which binds the reply to its request) and "CALLBACK" for a callback.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace paygate::adapters::sandbox {

inline constexpr std::string_view kAccountHeader = "x-sandbox-account";
inline constexpr std::string_view kTimestampHeader = "x-sandbox-timestamp";
inline constexpr std::string_view kNonceHeader = "x-sandbox-nonce";
inline constexpr std::string_view kSignatureHeader = "x-sandbox-signature";

// A timestamp further than this from the verifier's clock is refused (replay window).
inline constexpr std::chrono::seconds kClockSkewMax{300};

std::string RequestLine(std::string_view method, std::string_view path);
std::string ReplyLine(unsigned status, std::string_view path);
inline constexpr std::string_view kCallbackLine = "CALLBACK";

// "v1=<64 lower-case hex digits>".
std::string Sign(std::string_view secret, std::string_view line, std::string_view timestamp,
                 std::string_view nonce, std::string_view body);

// Constant-time comparison of `presented` with the expected signature.
bool SignatureValid(std::string_view secret, std::string_view line, std::string_view timestamp,
                    std::string_view nonce, std::string_view body, std::string_view presented);

// Decimal unix seconds, as sent in kTimestampHeader.
std::string FormatTimestamp(std::chrono::system_clock::time_point t);
// The parsed timestamp when it is well-formed and within kClockSkewMax of `now`.
std::optional<std::int64_t> FreshTimestamp(std::string_view value,
                                           std::chrono::system_clock::time_point now);

// 16 random bytes from OpenSSL's CSPRNG, hex.
std::string NewNonce();
// A well-formed nonce: 16 to 64 characters of [0-9a-zA-Z_-].
bool NonceWellFormed(std::string_view nonce);

}  // namespace paygate::adapters::sandbox
