#pragma once

// SHA-256, HMAC-SHA256 and their hex forms: the one implementation every signature in paygate uses
// (API-key request signing, webhook signatures, the sandbox provider's protocol). OpenSSL does the
// cryptography; this only fixes the types and the hex conventions.
#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace paygate::keys {

using Sha256Digest = std::array<unsigned char, 32>;

Sha256Digest Sha256(std::string_view data);
Sha256Digest HmacSha256(std::string_view key, std::string_view message);

// 0..15 for a hex digit of either case, -1 for any other character.
int HexDigitValue(char c);

// Lower-case hex.
std::string ToHex(std::span<const unsigned char> bytes);
// 64 hex characters of either case, or nullopt.
std::optional<Sha256Digest> DigestFromHex(std::string_view hex);
// Compares in time independent of where they differ.
bool DigestsEqual(const Sha256Digest& a, const Sha256Digest& b);

}  // namespace paygate::keys
