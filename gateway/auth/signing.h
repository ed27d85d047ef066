#pragma once

// HMAC request signing (DESIGN.md §5 "API key + HMAC request signature with timestamp and nonce").
// Pure functions shared by the server (gateway/auth/hmac_authenticator.h) and by clients (tests,
// benchmarks, paygatectl), so both sides build the signed bytes from one definition.
//
// A signed request carries one header:
//
//   Authorization: PAYGATE-HMAC-SHA256 KeyId=<key id>, Timestamp=<unix seconds>,
//                  Nonce=<16-64 of [A-Za-z0-9_-]>, Signature=<64 hex digits>
//
// (on one line; parameters in any order, each exactly once, separated by commas with optional
// spaces) where
//
//   Signature = hex(HMAC-SHA256(secret, METHOD "\n" TARGET "\n" TIMESTAMP "\n" NONCE "\n"
//                                       hex(SHA-256(body))))
//
// METHOD is the request method as sent ("POST"), TARGET the request target as sent (path and query,
// "/v1/payments?expand=x"), TIMESTAMP and NONCE exactly as in the header, hex lower-case. The
// signature thus covers what the request does and to what; the timestamp bounds how long a captured
// request stays valid (±300 s at the server) and the nonce makes it usable once within that window.
// The key id is not signed: each key has its own secret, so a signature made with one key does not
// verify under another.
#include <cstdint>
#include <string>
#include <string_view>

#include "config/result.h"

namespace paygate::auth {

inline constexpr std::string_view kScheme = "PAYGATE-HMAC-SHA256";
// Shorter secrets are refused at start-up: 256 bits matches the hash's strength.
inline constexpr std::size_t kSecretSizeMin = 32;
inline constexpr std::size_t kNonceSizeMin = 16;
inline constexpr std::size_t kNonceSizeMax = 64;

// The parameters of a PAYGATE-HMAC-SHA256 Authorization header.
struct SignatureFields {
  std::string key_id;
  std::int64_t timestamp = 0;  // Unix time, seconds.
  std::string nonce;
  std::string signature;  // 64 hex digits as sent (either case).
};

// The bytes that are signed (see above).
std::string StringToSign(std::string_view method, std::string_view target, std::int64_t timestamp,
                         std::string_view nonce, std::string_view body);

// Lower-case hex of HMAC-SHA256(secret, message).
std::string HmacSha256Hex(std::string_view secret, std::string_view message);

// Lower-case hex of SHA-256(data).
std::string Sha256Hex(std::string_view data);

// Whether `signature_hex` (either case) is the HMAC of `message` under `secret`. The comparison
// takes the same time wherever the first differing byte is, so a client cannot learn the expected
// signature byte by byte from response times.
bool SignatureMatches(std::string_view secret, std::string_view message,
                      std::string_view signature_hex);

// True when an Authorization header value uses this scheme (the server then owns its answer).
bool IsSignedAuthorization(std::string_view header_value);

// Parses a header value of this scheme. The error says what is wrong, for the 401's message; it
// never echoes the value.
Result<SignatureFields, std::string> ParseAuthorization(std::string_view header_value);

// A fresh nonce: 32 characters from 192 random bits (OpenSSL's CSPRNG).
std::string RandomNonce();

// The Authorization header value for a request: the client-side helper. `timestamp` and `nonce`
// are explicit so tests can make stale or repeated ones; SignRequestNow() takes the current time
// and a fresh nonce.
std::string SignRequest(std::string_view key_id, std::string_view secret, std::string_view method,
                        std::string_view target, std::string_view body, std::int64_t timestamp,
                        std::string_view nonce);
std::string SignRequestNow(std::string_view key_id, std::string_view secret,
                           std::string_view method, std::string_view target, std::string_view body);

}  // namespace paygate::auth
