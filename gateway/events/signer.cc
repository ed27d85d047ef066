#include "gateway/events/signer.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <charconv>
#include <cstdlib>
#include <iterator>
#include <optional>
#include <vector>

#include <fmt/format.h>

namespace paygate::events {
namespace {

constexpr std::size_t kDigestSize = 32;
using Digest = std::array<unsigned char, kDigestSize>;

Digest Hmac(std::string_view secret, std::string_view message) {
  Digest out{};
  unsigned int size = 0;
  // HMAC() fails only on allocation failure or an unknown digest; either is a broken process.
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), out.data(),
           &size) == nullptr ||
      size != kDigestSize) {
    std::abort();
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool DecodeHex(std::string_view hex, Digest* out) {
  if (hex.size() != 2 * kDigestSize) return false;
  for (std::size_t i = 0; i < kDigestSize; ++i) {
    const int high = HexValue(hex[2 * i]);
    const int low = HexValue(hex[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    (*out)[i] = static_cast<unsigned char>((high << 4) | low);
  }
  return true;
}

std::string SignedPayload(std::int64_t timestamp_s, std::string_view body) {
  std::string payload = std::to_string(timestamp_s);
  payload.push_back('.');
  payload.append(body);
  return payload;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return text;
}

}  // namespace

std::string HmacSha256Hex(std::string_view secret, std::string_view message) {
  const Digest digest = Hmac(secret, message);
  std::string hex;
  hex.reserve(2 * kDigestSize);
  for (unsigned char byte : digest) fmt::format_to(std::back_inserter(hex), "{:02x}", byte);
  return hex;
}

std::string SignatureHeader(std::span<const keys::Secret> secrets, std::int64_t timestamp_s,
                            std::string_view body) {
  const std::string payload = SignedPayload(timestamp_s, body);
  std::string header = "t=" + std::to_string(timestamp_s);
  for (const keys::Secret& secret : secrets) {
    header += ",v1=";
    header += HmacSha256Hex(secret.reveal(), payload);
  }
  return header;
}

std::string_view ToString(VerifyError error) {
  switch (error) {
    case VerifyError::kMalformed:
      return "malformed signature header";
    case VerifyError::kOutsideTolerance:
      return "timestamp outside tolerance";
    case VerifyError::kNoMatch:
      return "no matching signature";
  }
  return "unknown";
}

VerifyResult VerifySignatureHeader(std::string_view header, std::string_view body,
                                   std::span<const std::string_view> secrets, std::int64_t now_s,
                                   std::chrono::seconds tolerance) {
  std::optional<std::int64_t> timestamp;
  std::vector<Digest> signatures;
  while (!header.empty()) {
    const std::size_t comma = header.find(',');
    const std::string_view item = Trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    const std::size_t equals = item.find('=');
    if (equals == std::string_view::npos) return VerifyError::kMalformed;
    const std::string_view key = item.substr(0, equals);
    const std::string_view value = item.substr(equals + 1);
    if (key == "t") {
      std::int64_t t = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), t);
      if (timestamp || value.empty() || ec != std::errc() || end != value.data() + value.size() ||
          t < 0) {
        return VerifyError::kMalformed;
      }
      timestamp = t;
    } else if (key == "v1") {
      Digest digest{};
      if (!DecodeHex(value, &digest)) return VerifyError::kMalformed;
      signatures.push_back(digest);
    }
  }
  if (!timestamp || signatures.empty()) return VerifyError::kMalformed;
  const std::int64_t skew = now_s >= *timestamp ? now_s - *timestamp : *timestamp - now_s;
  if (skew > tolerance.count()) return VerifyError::kOutsideTolerance;
  const std::string payload = SignedPayload(*timestamp, body);
  // Every comparison runs, so the time taken does not tell which secret or position matched.
  bool matched = false;
  for (std::string_view secret : secrets) {
    const Digest expected = Hmac(secret, payload);
    for (const Digest& given : signatures) {
      matched |= CRYPTO_memcmp(given.data(), expected.data(), kDigestSize) == 0;
    }
  }
  if (!matched) return VerifyError::kNoMatch;
  return outcome::success();
}

}  // namespace paygate::events
