#include "adapters/alipay/signing.h"

#include <algorithm>
#include <cstddef>

#include <google/protobuf/util/json_util.h>

#include "adapters/alipay/alipay.pb.h"

namespace paygate::adapters::alipay {
namespace {

namespace pb = paygate::adapters::alipay::v1;

enum class Empty { kSkip, kKeep };

// Sorted "k=v&k=v" over the parameters not in `drop`. Keys compare as bytes (Java's TreeMap order
// for the ASCII names Alipay uses).
std::optional<std::string> SortedContent(const Params& params,
                                         std::initializer_list<std::string_view> drop,
                                         Empty empty) {
  std::vector<const std::pair<std::string, std::string>*> kept;
  kept.reserve(params.size());
  for (const auto& field : params) {
    if (std::find(drop.begin(), drop.end(), field.first) != drop.end()) continue;
    if (field.first.empty()) continue;
    if (empty == Empty::kSkip && field.second.empty()) continue;
    kept.push_back(&field);
  }
  std::sort(kept.begin(), kept.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
  for (std::size_t i = 1; i < kept.size(); ++i) {
    if (kept[i]->first == kept[i - 1]->first) return std::nullopt;
  }
  std::string out;
  for (const auto* field : kept) {
    if (!out.empty()) out += '&';
    out += field->first;
    out += '=';
    out += field->second;
  }
  return out;
}

// A name given more than once, among all parameters (including the dropped ones: two `sign`
// values are as ambiguous as two `out_trade_no`).
bool HasDuplicateNames(const Params& params) {
  std::vector<std::string_view> names;
  names.reserve(params.size());
  for (const auto& field : params) names.emplace_back(field.first);
  std::sort(names.begin(), names.end());
  return std::adjacent_find(names.begin(), names.end()) != names.end();
}

std::string_view FieldOr(const Params& params, std::string_view name) {
  auto value = codec::FindField(params, name);
  return value ? *value : std::string_view{};
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::size_t SkipSpace(std::string_view text, std::size_t pos) {
  while (pos < text.size() && IsSpace(text[pos])) ++pos;
  return pos;
}

// `pos` at an opening quote: the position just past the closing quote, or npos.
std::size_t SkipString(std::string_view text, std::size_t pos) {
  for (++pos; pos < text.size(); ++pos) {
    if (text[pos] == '\\') {
      ++pos;
    } else if (text[pos] == '"') {
      return pos + 1;
    }
  }
  return std::string_view::npos;
}

// `pos` at the first byte of a value: the position just past it, or npos. Objects and arrays are
// matched by depth with strings skipped whole, so "{" or "}" inside a string value never count.
std::size_t SkipValue(std::string_view text, std::size_t pos) {
  if (pos >= text.size()) return std::string_view::npos;
  const char first = text[pos];
  if (first == '"') return SkipString(text, pos);
  if (first == '{' || first == '[') {
    std::vector<char> closers;
    while (pos < text.size()) {
      const char c = text[pos];
      if (c == '"') {
        pos = SkipString(text, pos);
        if (pos == std::string_view::npos) return pos;
        continue;
      }
      if (c == '{') closers.push_back('}');
      if (c == '[') closers.push_back(']');
      if (c == '}' || c == ']') {
        if (closers.empty() || closers.back() != c) return std::string_view::npos;
        closers.pop_back();
        if (closers.empty()) return pos + 1;
      }
      ++pos;
    }
    return std::string_view::npos;
  }
  // A number or a literal: up to the next delimiter.
  const std::size_t start = pos;
  while (pos < text.size() && text[pos] != ',' && text[pos] != '}' && text[pos] != ']' &&
         !IsSpace(text[pos])) {
    ++pos;
  }
  return pos == start ? std::string_view::npos : pos;
}

}  // namespace

std::optional<SignType> ParseSignType(std::string_view text) {
  if (text == "RSA2") return SignType::kRsa2;
  if (text == "RSA") return SignType::kRsa;
  return std::nullopt;
}

std::string_view SignTypeName(SignType type) { return type == SignType::kRsa ? "RSA" : "RSA2"; }

crypto::Digest DigestOf(SignType type) {
  return type == SignType::kRsa ? crypto::Digest::kSha1 : crypto::Digest::kSha256;
}

std::optional<std::string> RequestSignContent(const Params& params) {
  if (HasDuplicateNames(params)) return std::nullopt;
  return SortedContent(params, {"sign"}, Empty::kSkip);
}

std::optional<std::string> NotifySignContentV1(const Params& params) {
  if (HasDuplicateNames(params)) return std::nullopt;
  return SortedContent(params, {"sign", "sign_type"}, Empty::kKeep);
}

std::optional<std::string> NotifySignContentV2(const Params& params) {
  if (HasDuplicateNames(params)) return std::nullopt;
  return SortedContent(params, {"sign"}, Empty::kKeep);
}

AlipayResult<std::string> SignContent(std::string_view content,
                                             const crypto::PrivateKey& key, SignType type) {
  auto signature = key.Sign(DigestOf(type), content);
  if (!signature) return Error{signature.error().message};
  return codec::Base64Encode(signature.value());
}

bool VerifyContent(std::string_view content, std::string_view sign_b64,
                   const crypto::PublicKey& key, SignType type) {
  if (sign_b64.empty()) return false;
  auto signature = codec::Base64Decode(sign_b64);
  if (!signature || signature->empty()) return false;
  return key.Verify(DigestOf(type), content, *signature);
}

AlipayResult<void> SignRequest(Params& params, const crypto::PrivateKey& key) {
  const auto type = ParseSignType(FieldOr(params, "sign_type"));
  if (!type) return Error{"request without a valid sign_type"};
  if (codec::FindField(params, "sign")) return Error{"request already signed"};
  auto content = RequestSignContent(params);
  if (!content) return Error{"request names a parameter twice"};
  auto sign = SignContent(*content, key, *type);
  if (!sign) return sign.error();
  params.emplace_back("sign", std::move(sign).value());
  return outcome::success();
}

bool VerifyRequest(const Params& params, const crypto::PublicKey& key) {
  const auto type = ParseSignType(FieldOr(params, "sign_type"));
  if (!type) return false;
  auto content = RequestSignContent(params);
  return content && VerifyContent(*content, FieldOr(params, "sign"), key, *type);
}

bool VerifyNotifyV1(const Params& params, const crypto::PublicKey& key) {
  const std::string_view sign_type = FieldOr(params, "sign_type");
  const auto type = sign_type.empty() ? std::optional(SignType::kRsa2) : ParseSignType(sign_type);
  if (!type) return false;
  auto content = NotifySignContentV1(params);
  return content && VerifyContent(*content, FieldOr(params, "sign"), key, *type);
}

bool VerifyNotifyV2(const Params& params, const crypto::PublicKey& key) {
  const std::string_view sign_type = FieldOr(params, "sign_type");
  const auto type = sign_type.empty() ? std::optional(SignType::kRsa2) : ParseSignType(sign_type);
  if (!type) return false;
  auto content = NotifySignContentV2(params);
  return content && VerifyContent(*content, FieldOr(params, "sign"), key, *type);
}

std::optional<NotifyRule> VerifyNotify(const Params& params, const crypto::PublicKey& key) {
  if (VerifyNotifyV1(params, key)) return NotifyRule::kV1;
  if (VerifyNotifyV2(params, key)) return NotifyRule::kV2;
  return std::nullopt;
}

std::string CertSn(const crypto::Certificate& cert) {
  return codec::HexLower(crypto::Md5Bytes(cert.IssuerRfc2253() + cert.SerialDecimal()));
}

AlipayResult<std::string> RootCertSn(std::string_view bundle_pem) {
  auto certs = crypto::Certificate::ParseBundle(bundle_pem);
  if (!certs) return Error{"root certificate bundle: " + certs.error().message};
  std::string out;
  for (const auto& cert : certs.value()) {
    if (cert.SignatureAlgorithmOid().rfind("1.2.840.113549.1.1", 0) != 0) continue;
    if (!out.empty()) out += '_';
    out += CertSn(cert);
  }
  if (out.empty()) return Error{"root certificate bundle holds no RSA certificate"};
  return out;
}

std::string ResponseKey(std::string_view method) {
  std::string key(method);
  std::replace(key.begin(), key.end(), '.', '_');
  return key + "_response";
}

AlipayResult<ResponseParts> SplitResponse(std::string_view body,
                                                 std::string_view response_key) {
  std::size_t pos = SkipSpace(body, 0);
  if (pos >= body.size() || body[pos] != '{') return Error{"reply is not a JSON object"};
  ++pos;
  std::optional<std::string_view> method_value;
  std::optional<std::string_view> error_value;
  for (;;) {
    pos = SkipSpace(body, pos);
    if (pos < body.size() && body[pos] == '}') break;
    if (pos >= body.size() || body[pos] != '"') return Error{"reply object malformed"};
    const std::size_t key_end = SkipString(body, pos);
    if (key_end == std::string_view::npos) return Error{"reply object malformed"};
    // Raw key text: the names compared here contain no escapes, so an escaped key never matches.
    const std::string_view key = body.substr(pos + 1, key_end - pos - 2);
    pos = SkipSpace(body, key_end);
    if (pos >= body.size() || body[pos] != ':') return Error{"reply object malformed"};
    pos = SkipSpace(body, pos + 1);
    const std::size_t value_end = SkipValue(body, pos);
    if (value_end == std::string_view::npos) return Error{"reply object malformed"};
    const std::string_view value = body.substr(pos, value_end - pos);
    // A repeated key would let two different texts claim to be the signed one.
    if (key == response_key) {
      if (method_value) return Error{"reply repeats its response key"};
      method_value = value;
    } else if (key == "error_response") {
      if (error_value) return Error{"reply repeats error_response"};
      error_value = value;
    }
    pos = SkipSpace(body, value_end);
    if (pos < body.size() && body[pos] == ',') {
      ++pos;
      continue;
    }
    if (pos < body.size() && body[pos] == '}') break;
    return Error{"reply object malformed"};
  }
  if (SkipSpace(body, pos + 1) != body.size()) return Error{"bytes after the reply object"};

  ResponseParts parts;
  if (method_value) {
    parts.source = *method_value;
  } else if (error_value) {
    parts.source = *error_value;
    parts.error_response = true;
  } else {
    return Error{"reply has neither " + std::string(response_key) + " nor error_response"};
  }
  // The signature and SN are plain strings; protobuf's JSON parser unescapes them ("\/" included)
  // and skips every other member.
  pb::Envelope envelope;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(
           google::protobuf::StringPiece(body.data(), body.size()), &envelope, options)
           .ok()) {
    return Error{"reply is not valid JSON"};
  }
  parts.sign = envelope.sign();
  parts.alipay_cert_sn = envelope.alipay_cert_sn();
  return parts;
}

std::string BuildResponse(std::string_view response_key, std::string_view source,
                          std::string_view sign_b64, std::string_view alipay_cert_sn) {
  // Base64 and hex need no JSON escaping.
  std::string out = "{\"";
  out += response_key;
  out += "\":";
  out += source;
  out += ",\"sign\":\"";
  out += sign_b64;
  out += '"';
  if (!alipay_cert_sn.empty()) {
    out += ",\"alipay_cert_sn\":\"";
    out += alipay_cert_sn;
    out += '"';
  }
  out += '}';
  return out;
}

}  // namespace paygate::adapters::alipay
