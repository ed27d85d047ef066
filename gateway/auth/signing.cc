#include "gateway/auth/signing.h"

#include <openssl/rand.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cstdlib>

#include <fmt/format.h>

#include "keys/digest.h"

namespace paygate::auth {
namespace {

// Signatures and body hashes are SHA-256 hex: keys/digest.h.
using keys::HmacSha256;
using keys::ToHex;

bool IsKeyIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

bool IsNonceChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

template <class Pred>
bool All(std::string_view text, Pred pred) {
  for (char c : text) {
    if (!pred(c)) return false;
  }
  return true;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace

std::string StringToSign(std::string_view method, std::string_view target, std::int64_t timestamp,
                         std::string_view nonce, std::string_view body) {
  return fmt::format("{}\n{}\n{}\n{}\n{}", method, target, timestamp, nonce, Sha256Hex(body));
}

std::string HmacSha256Hex(std::string_view secret, std::string_view message) {
  return ToHex(HmacSha256(secret, message));
}

std::string Sha256Hex(std::string_view data) { return ToHex(keys::Sha256(data)); }

bool SignatureMatches(std::string_view secret, std::string_view message,
                      std::string_view signature_hex) {
  const auto given = keys::DigestFromHex(signature_hex);
  return given && keys::DigestsEqual(*given, HmacSha256(secret, message));
}

bool IsSignedAuthorization(std::string_view header_value) {
  header_value = Trim(header_value);
  return header_value.size() > kScheme.size() && header_value.starts_with(kScheme) &&
         (header_value[kScheme.size()] == ' ' || header_value[kScheme.size()] == '\t');
}

Result<SignatureFields, std::string> ParseAuthorization(std::string_view header_value) {
  if (!IsSignedAuthorization(header_value)) {
    return fmt::format("the Authorization scheme must be {}", kScheme);
  }
  std::string_view rest = Trim(header_value).substr(kScheme.size());
  SignatureFields fields;
  bool has_key_id = false, has_timestamp = false, has_nonce = false, has_signature = false;
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    const std::string_view param = Trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const std::size_t eq = param.find('=');
    if (eq == std::string_view::npos) return std::string("each parameter must be Name=value");
    const std::string_view name = param.substr(0, eq);
    const std::string_view value = param.substr(eq + 1);
    auto once = [&](bool* seen) -> bool { return !std::exchange(*seen, true); };
    if (name == "KeyId") {
      if (!once(&has_key_id)) return std::string("KeyId is given twice");
      if (value.empty() || value.size() > 64 || !All(value, IsKeyIdChar)) {
        return std::string("KeyId must match [A-Za-z0-9_.-]{1,64}");
      }
      fields.key_id = value;
    } else if (name == "Timestamp") {
      if (!once(&has_timestamp)) return std::string("Timestamp is given twice");
      const auto [end, ec] =
          std::from_chars(value.data(), value.data() + value.size(), fields.timestamp);
      if (value.empty() || value.size() > 12 || value.front() == '-' || ec != std::errc() ||
          end != value.data() + value.size()) {
        return std::string("Timestamp must be Unix time in seconds");
      }
    } else if (name == "Nonce") {
      if (!once(&has_nonce)) return std::string("Nonce is given twice");
      if (value.size() < kNonceSizeMin || value.size() > kNonceSizeMax ||
          !All(value, IsNonceChar)) {
        return fmt::format("Nonce must be {} to {} characters of [A-Za-z0-9_-]", kNonceSizeMin,
                           kNonceSizeMax);
      }
      fields.nonce = value;
    } else if (name == "Signature") {
      if (!once(&has_signature)) return std::string("Signature is given twice");
      if (!keys::DigestFromHex(value)) {
        return std::string("Signature must be 64 hex digits");
      }
      fields.signature = value;
    } else {
      return std::string("unknown parameter; expected KeyId, Timestamp, Nonce and Signature");
    }
  }
  if (!(has_key_id && has_timestamp && has_nonce && has_signature)) {
    return std::string("KeyId, Timestamp, Nonce and Signature are all required");
  }
  return fields;
}

std::string RandomNonce() {
  // 24 bytes, base64url without padding: 32 characters of the nonce alphabet.
  constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::array<unsigned char, 24> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) std::abort();
  std::string out;
  out.reserve(32);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const unsigned bits = unsigned{bytes[i]} << 16 | unsigned{bytes[i + 1]} << 8 | bytes[i + 2];
    for (int shift = 18; shift >= 0; shift -= 6) out.push_back(kAlphabet[(bits >> shift) & 63]);
  }
  return out;
}

std::string SignRequest(std::string_view key_id, std::string_view secret, std::string_view method,
                        std::string_view target, std::string_view body, std::int64_t timestamp,
                        std::string_view nonce) {
  const std::string signature =
      HmacSha256Hex(secret, StringToSign(method, target, timestamp, nonce, body));
  return fmt::format("{} KeyId={}, Timestamp={}, Nonce={}, Signature={}", kScheme, key_id,
                     timestamp, nonce, signature);
}

std::string SignRequestNow(std::string_view key_id, std::string_view secret,
                           std::string_view method, std::string_view target,
                           std::string_view body) {
  const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  return SignRequest(key_id, secret, method, target, body, now, RandomNonce());
}

}  // namespace paygate::auth
