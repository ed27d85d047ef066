#include "gateway/events/signer.h"

#include <array>
#include <charconv>
#include <cstdlib>
#include <iterator>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "keys/digest.h"

namespace paygate::events {
namespace {

using Digest = keys::Sha256Digest;

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
  return keys::ToHex(keys::HmacSha256(secret, message));
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

std::string SignatureHeader(std::span<const keys::Secret* const> secrets, std::int64_t timestamp_s,
                            std::string_view body) {
  const std::string payload = SignedPayload(timestamp_s, body);
  std::string header = "t=" + std::to_string(timestamp_s);
  for (const keys::Secret* secret : secrets) {
    header += ",v1=";
    header += HmacSha256Hex(secret->reveal(), payload);
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
      const auto digest = keys::DigestFromHex(value);
      if (!digest) return VerifyError::kMalformed;
      signatures.push_back(*digest);
    }
  }
  if (!timestamp || signatures.empty()) return VerifyError::kMalformed;
  const std::int64_t skew = now_s >= *timestamp ? now_s - *timestamp : *timestamp - now_s;
  if (skew > tolerance.count()) return VerifyError::kOutsideTolerance;
  const std::string payload = SignedPayload(*timestamp, body);
  // Every comparison runs, so the time taken does not tell which secret or position matched.
  bool matched = false;
  for (std::string_view secret : secrets) {
    const Digest expected = keys::HmacSha256(secret, payload);
    for (const Digest& given : signatures) matched |= keys::DigestsEqual(given, expected);
  }
  if (!matched) return VerifyError::kNoMatch;
  return outcome::success();
}

}  // namespace paygate::events
