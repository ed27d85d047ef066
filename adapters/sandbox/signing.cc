#include "adapters/sandbox/signing.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <array>
#include <charconv>
#include <cstdlib>

#include <fmt/format.h>

#include "keys/digest.h"

namespace paygate::adapters::sandbox {

std::string RequestLine(std::string_view method, std::string_view path) {
  return fmt::format("{} {}", method, path);
}

std::string ReplyLine(unsigned status, std::string_view path) {
  return fmt::format("REPLY {} {}", status, path);
}

std::string Sign(std::string_view secret, std::string_view line, std::string_view timestamp,
                 std::string_view nonce, std::string_view body) {
  std::string message;
  message.reserve(line.size() + timestamp.size() + nonce.size() + body.size() + 3);
  message.append(line).append("\n").append(timestamp).append("\n").append(nonce).append("\n");
  message.append(body);
  return "v1=" + keys::ToHex(keys::HmacSha256(secret, message));
}

bool SignatureValid(std::string_view secret, std::string_view line, std::string_view timestamp,
                    std::string_view nonce, std::string_view body, std::string_view presented) {
  const std::string expected = Sign(secret, line, timestamp, nonce, body);
  if (presented.size() != expected.size()) return false;
  return CRYPTO_memcmp(expected.data(), presented.data(), expected.size()) == 0;
}

std::string FormatTimestamp(std::chrono::system_clock::time_point t) {
  return std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count());
}

std::optional<std::int64_t> FreshTimestamp(std::string_view value,
                                           std::chrono::system_clock::time_point now) {
  if (value.empty() || value.size() > 12) return std::nullopt;
  std::int64_t seconds = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec != std::errc() || end != value.data() + value.size() || seconds < 0) return std::nullopt;
  const std::int64_t now_s =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  const std::int64_t skew = now_s > seconds ? now_s - seconds : seconds - now_s;
  if (skew > kClockSkewMax.count()) return std::nullopt;
  return seconds;
}

std::string NewNonce() {
  std::array<unsigned char, 16> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    // The CSPRNG failing is not recoverable and must not yield predictable nonces.
    std::abort();
  }
  return keys::ToHex(bytes);
}

bool NonceWellFormed(std::string_view nonce) {
  if (nonce.size() < 16 || nonce.size() > 64) return false;
  for (char c : nonce) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace paygate::adapters::sandbox
