#include "adapters/unionpay/codec.h"


#include <ctime>

#include <fmt/format.h>

#include "adapters/common/codec.h"
#include "adapters/common/money.h"

namespace paygate::adapters::unionpay {
namespace {

using Clock = std::chrono::system_clock;
constexpr auto kBeijingOffset = std::chrono::hours(8);

std::string_view Get(const Fields& fields, std::string_view name) {
  auto it = fields.find(std::string(name));
  return it == fields.end() ? std::string_view() : std::string_view(it->second);
}

ProviderResult Unknown(std::string detail) {
  ProviderResult result;
  result.outcome = Outcome::kUnknown;
  result.detail = std::move(detail);
  return result;
}

std::string DeclineCode(const ErrorCodeTable& codes, std::string_view code) {
  auto it = codes.find(std::string(code));
  return it != codes.end() ? it->second : fmt::format("unionpay_{}", code);
}

ProviderResult Declined(const ErrorCodeTable& codes, std::string_view code,
                        std::string_view message, std::string detail) {
  ProviderResult result;
  result.outcome = Outcome::kDeclined;
  result.decline_code = DeclineCode(codes, code);
  result.decline_message = std::string(message);
  result.detail = std::move(detail);
  return result;
}

// The amount a reply states, or 0 when absent; nullopt when present but not whole fen.
std::optional<std::int64_t> AmountOf(const Fields& fields) {
  const std::string_view text = Get(fields, "txnAmt");
  if (text.empty()) return 0;
  auto value = money::ParseInteger(text);
  if (!value || *value < 0) return std::nullopt;
  return value;
}

bool CurrencyOk(const Fields& fields) {
  const std::string_view currency = Get(fields, "currencyCode");
  return currency.empty() || currency == kCurrencyCny;
}

// The CN of an RFC 2253 subject ("CN=...,OU=...": most specific first), unescaped.
std::string CommonName(std::string_view rfc2253) {
  std::size_t pos = 0;
  while (pos < rfc2253.size()) {
    if (rfc2253.substr(pos, 3) == "CN=") {
      std::string out;
      for (std::size_t i = pos + 3; i < rfc2253.size(); ++i) {
        const char c = rfc2253[i];
        if (c == '\\' && i + 1 < rfc2253.size()) {
          out.push_back(rfc2253[++i]);
          continue;
        }
        if (c == ',') break;
        out.push_back(c);
      }
      return out;
    }
    // Skip to the next unescaped ','.
    while (pos < rfc2253.size() && rfc2253[pos] != ',') {
      if (rfc2253[pos] == '\\') ++pos;
      ++pos;
    }
    ++pos;
  }
  return {};
}

std::string PemWithCrlf(const crypto::Certificate& certificate) {
  const std::string pem = certificate.Pem();
  std::string out;
  out.reserve(pem.size() + 64);
  for (char c : pem) {
    if (c == '\n') out.push_back('\r');
    out.push_back(c);
  }
  // UnionPay's value has no line break after the END line.
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

// Base64 that decodes to something non-empty and is exactly the encoding of what it decodes to:
// a signature is one string of bytes, and a second spelling of it (non-zero padding bits, line
// breaks) is a mutated message, refused like any other.
std::optional<std::string> CanonicalBase64(std::string_view text) {
  auto bytes = codec::Base64Decode(text);
  if (!bytes || bytes->empty() || codec::Base64Encode(*bytes) != text) return std::nullopt;
  return bytes;
}

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::optional<std::string> HtmlUnescape(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '&') {
      out.push_back(text[i]);
      continue;
    }
    const std::size_t semi = text.find(';', i);
    if (semi == std::string_view::npos) return std::nullopt;
    const std::string_view entity = text.substr(i, semi - i + 1);
    if (entity == "&amp;") {
      out.push_back('&');
    } else if (entity == "&lt;") {
      out.push_back('<');
    } else if (entity == "&gt;") {
      out.push_back('>');
    } else if (entity == "&quot;") {
      out.push_back('"');
    } else if (entity == "&#39;") {
      out.push_back('\'');
    } else {
      return std::nullopt;
    }
    i = semi;
  }
  return out;
}

// The quoted attribute value after `name="` starting at `from`; advances `from` past it.
std::optional<std::string> Attribute(std::string_view html, std::string_view name,
                                     std::size_t* from, std::size_t limit) {
  const std::string key = std::string(name) + "=\"";
  const std::size_t start = html.find(key, *from);
  if (start == std::string_view::npos || start >= limit) return std::nullopt;
  const std::size_t value_start = start + key.size();
  const std::size_t end = html.find('"', value_start);
  if (end == std::string_view::npos) return std::nullopt;
  *from = end + 1;
  return HtmlUnescape(html.substr(value_start, end - value_start));
}

}  // namespace

// ---- Parsing

Result<Fields, std::string> ParseNotifyForm(std::string_view body) {
  auto parsed = codec::ParseForm(body);
  if (!parsed) return std::string("form has a bad percent-escape");
  Fields fields;
  for (auto& [name, value] : *parsed) {
    if (name.empty()) return std::string("form has an empty field name");
    if (!fields.emplace(name, std::move(value)).second) {
      return fmt::format("form repeats field {}", name);
    }
  }
  return fields;
}

Result<Fields, std::string> ParseReply(std::string_view body) {
  Fields fields;
  std::size_t i = 0;
  while (i < body.size()) {
    const std::size_t eq = body.find('=', i);
    const std::size_t amp = body.find('&', i);
    if (eq == std::string_view::npos || (amp != std::string_view::npos && amp < eq)) {
      return std::string("reply has a field without '='");
    }
    std::string name(body.substr(i, eq - i));
    if (name.empty()) return std::string("reply has an empty field name");
    std::size_t end = eq + 1;
    if (end < body.size() && body[end] == '{') {
      // A nested value runs to its matching brace, '&' and '=' inside included.
      int depth = 0;
      for (; end < body.size(); ++end) {
        if (body[end] == '{') ++depth;
        if (body[end] == '}' && --depth == 0) break;
      }
      if (depth != 0) return fmt::format("reply field {} has an unclosed '{{'", name);
      ++end;
      if (end < body.size() && body[end] != '&') {
        return fmt::format("reply field {} has bytes after its '}}'", name);
      }
    } else {
      end = body.find('&', eq + 1);
      if (end == std::string_view::npos) end = body.size();
    }
    std::string value(body.substr(eq + 1, end - eq - 1));
    if (!fields.emplace(name, std::move(value)).second) {
      return fmt::format("reply repeats field {}", name);
    }
    i = end + 1;
  }
  return fields;
}

std::string BuildReply(const Fields& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!out.empty()) out.push_back('&');
    out += name;
    out.push_back('=');
    out += value;
  }
  return out;
}

std::string BuildForm(const Fields& fields) {
  codec::FormFields ordered(fields.begin(), fields.end());
  return codec::BuildForm(ordered);
}

// ---- Signatures

std::string SignContent(const Fields& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    if (name == "signature" || value.empty()) continue;
    if (!out.empty()) out.push_back('&');
    out += name;
    out.push_back('=');
    out += value;
  }
  return out;
}

std::string SignDigestHex(const Fields& fields) {
  return codec::HexLower(crypto::DigestBytes(crypto::Digest::kSha256, SignContent(fields)));
}

Result<Signer, std::string> SignerFromPkcs12(std::string_view der, std::string_view password) {
  auto store = crypto::ParsePkcs12(der, password);
  if (!store) return store.error().message;
  std::string cert_id = store.value().certificate.SerialDecimal();
  return Signer{store.value().key, store.value().certificate, std::move(cert_id)};
}

Result<Signer, std::string> LoadSigner(const std::string& pfx_file, std::string_view password) {
  auto store = crypto::ReadPkcs12File(pfx_file, password);
  if (!store) return fmt::format("{}: {}", pfx_file, store.error().message);
  std::string cert_id = store.value().certificate.SerialDecimal();
  return Signer{store.value().key, store.value().certificate, std::move(cert_id)};
}

Result<void, std::string> Sign(const Signer& signer, Fields& fields) {
  fields["signMethod"] = std::string(kSignMethodRsa);
  fields["certId"] = signer.cert_id;
  fields.erase("signature");
  auto signature = signer.key.Sign(crypto::Digest::kSha256, SignDigestHex(fields));
  if (!signature) return "signing failed: " + signature.error().message;
  fields["signature"] = codec::Base64Encode(signature.value());
  return outcome::success();
}

Result<void, std::string> SignAsUnionPay(const Signer& signer, Fields& fields) {
  fields["signPubKeyCert"] = PemWithCrlf(signer.certificate);
  return Sign(signer, fields);
}

Result<void, std::string> VerifySigned(const Fields& fields, const Trust& trust,
                                       Clock::time_point at) {
  if (Get(fields, "signMethod") != kSignMethodRsa) {
    return std::string("signMethod is not 01 (SHA-256 with RSA)");
  }
  const std::string_view pem = Get(fields, "signPubKeyCert");
  if (pem.empty()) return std::string("no signPubKeyCert");
  auto certificate = crypto::Certificate::Parse(pem);
  if (!certificate) return "signPubKeyCert: " + certificate.error().message;
  if (auto chain = certificate.value().VerifyChain(trust.middle, trust.roots, at); !chain) {
    return "signPubKeyCert: " + chain.error().message;
  }
  if (!trust.cert_owner.empty()) {
    const std::string cn = CommonName(certificate.value().SubjectRfc2253());
    std::vector<std::string_view> parts;
    std::string_view rest = cn;
    for (;;) {
      const std::size_t at_sign = rest.find('@');
      parts.push_back(rest.substr(0, at_sign));
      if (at_sign == std::string_view::npos) break;
      rest.remove_prefix(at_sign + 1);
    }
    if (parts.size() < 3 || parts[2] != trust.cert_owner) {
      return std::string("signPubKeyCert is not issued to UnionPay (CN owner mismatch)");
    }
  }
  auto signature = CanonicalBase64(Get(fields, "signature"));
  if (!signature) return std::string("signature missing or not canonical Base64");
  if (!certificate.value().Key().Verify(crypto::Digest::kSha256, SignDigestHex(fields),
                                        *signature)) {
    return std::string("signature does not verify");
  }
  return outcome::success();
}

Result<void, std::string> VerifyMerchantSigned(const Fields& fields,
                                               const crypto::Certificate& merchant_cert) {
  if (Get(fields, "signMethod") != kSignMethodRsa) return std::string("signMethod is not 01");
  if (Get(fields, "certId") != merchant_cert.SerialDecimal()) {
    return std::string("certId is not the merchant's signing certificate");
  }
  auto signature = CanonicalBase64(Get(fields, "signature"));
  if (!signature) return std::string("signature missing or not canonical Base64");
  if (!merchant_cert.Key().Verify(crypto::Digest::kSha256, SignDigestHex(fields), *signature)) {
    return std::string("signature does not verify");
  }
  return outcome::success();
}

// ---- Identifiers and times

std::optional<std::string> OrderIdFor(std::string_view reference) {
  std::string out;
  out.reserve(reference.size());
  for (char c : reference) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      out.push_back(c);
    } else if (c == '_') {
      out.push_back('Z');
    } else {
      return std::nullopt;
    }
  }
  if (out.size() < 8 || out.size() > 32) return std::nullopt;
  return out;
}

std::string ReferenceFor(std::string_view order_id) {
  std::string out(order_id);
  for (char& c : out) {
    if (c == 'Z') c = '_';
  }
  return out;
}

std::string BeijingTime(Clock::time_point at) {
  const std::time_t t = Clock::to_time_t(at + kBeijingOffset);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof(buf), "%Y%m%d%H%M%S", &tm);
  return buf;
}

std::optional<Clock::time_point> ParseBeijingTime(std::string_view text) {
  if (text.size() != 14) return std::nullopt;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  auto number = [&](std::size_t pos, std::size_t len) {
    int value = 0;
    for (std::size_t i = pos; i < pos + len; ++i) value = value * 10 + (text[i] - '0');
    return value;
  };
  std::tm tm{};
  tm.tm_year = number(0, 4) - 1900;
  tm.tm_mon = number(4, 2) - 1;
  tm.tm_mday = number(6, 2);
  tm.tm_hour = number(8, 2);
  tm.tm_min = number(10, 2);
  tm.tm_sec = number(12, 2);
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 59) {
    return std::nullopt;
  }
  const std::tm asked = tm;
  const std::time_t t = timegm(&tm);
  // timegm normalises 31 February into March: such a date was not a date.
  if (tm.tm_mday != asked.tm_mday || tm.tm_mon != asked.tm_mon) return std::nullopt;
  return Clock::from_time_t(t) - kBeijingOffset;
}

// ---- Outcomes

ErrorCodeTable DefaultErrorCodes() {
  return {
      {"01", "provider_declined"},     {"02", "provider_unavailable"},
      {"10", "invalid_request"},       {"11", "signature_invalid"},
      {"13", "invalid_request"},       {"14", "invalid_request"},
      {"30", "payment_declined"},      {"31", "merchant_invalid"},
      {"32", "not_permitted"},         {"33", "amount_limit_exceeded"},
      {"35", "invalid_state"},         {"36", "original_mismatch"},
      {"37", "rate_limited"},          {"38", "risk_rejected"},
      {"39", "outside_service_hours"}, {"40", "binding_invalid"},
      {"43", "not_permitted"},         {"44", "not_permitted"},
      {"60", "payment_declined"},      {"61", "card_invalid"},
      {"62", "card_not_supported"},    {"63", "card_invalid"},
      {"64", "insufficient_funds"},    {"65", "card_auth_failed"},
      {"66", "card_auth_failed"},      {"67", "card_locked"},
      {"68", "card_not_supported"},    {"69", "payer_timeout"},
      {"71", "card_auth_failed"},      {"72", "card_not_enrolled"},
      {"73", "card_expired"},          {"77", "card_not_supported"},
      {"78", "card_not_supported"},
  };
}

CodeClass ClassifyCode(std::string_view code) {
  if (code == "00" || code == "A6") return CodeClass::kSuccess;
  if (code == "03" || code == "04" || code == "05") return CodeClass::kInProgress;
  // Codes that say the request was refused before anything moved. Left out on purpose: 06 (busy),
  // 12 (duplicate: an earlier send may have worked), 34 (not found: absence is not proof), 42, 74
  // and 75 (the card was debited), 70 (waiting for the payer), 80/81/99 (internal, suspicious,
  // generic): those are never declines.
  static constexpr std::string_view kRefused[] = {
      "01", "02", "10", "11", "13", "14", "30", "31", "32", "33", "35",
      "36", "37", "38", "39", "40", "43", "44", "60", "61", "62", "63",
      "64", "65", "66", "67", "68", "69", "71", "72", "73", "77", "78"};
  for (std::string_view refused : kRefused) {
    if (code == refused) return CodeClass::kRefused;
  }
  return CodeClass::kUnclear;
}

Fields ConsumeFields(const ConsumeParams& params) {
  Fields fields{
      {"version", std::string(kVersion)},
      {"encoding", "UTF-8"},
      {"txnType", "01"},
      {"txnSubType", "01"},
      {"bizType", "000201"},
      {"channelType", params.channel_type},
      {"accessType", "0"},
      {"merId", params.mer_id},
      {"orderId", params.order_id},
      {"txnTime", params.txn_time},
      {"txnAmt", std::to_string(params.amount_minor)},
      {"currencyCode", std::string(kCurrencyCny)},
      {"backUrl", params.back_url},
  };
  if (!params.front_url.empty()) fields["frontUrl"] = params.front_url;
  if (!params.pay_timeout.empty()) fields["payTimeout"] = params.pay_timeout;
  return fields;
}

Fields QueryFields(std::string_view mer_id, std::string_view order_id, std::string_view txn_time) {
  return Fields{
      {"version", std::string(kVersion)},
      {"encoding", "UTF-8"},
      {"txnType", "00"},
      {"txnSubType", "00"},
      {"bizType", "000000"},
      {"accessType", "0"},
      {"merId", std::string(mer_id)},
      {"orderId", std::string(order_id)},
      {"txnTime", std::string(txn_time)},
  };
}

Fields RefundFields(const RefundParams& params) {
  return Fields{
      {"version", std::string(kVersion)},
      {"encoding", "UTF-8"},
      {"txnType", "04"},
      {"txnSubType", "00"},
      {"bizType", "000201"},
      {"channelType", "07"},
      {"accessType", "0"},
      {"merId", params.mer_id},
      {"orderId", params.order_id},
      {"txnTime", params.txn_time},
      {"txnAmt", std::to_string(params.amount_minor)},
      {"currencyCode", std::string(kCurrencyCny)},
      {"origQryId", params.orig_query_id},
      {"backUrl", params.back_url},
  };
}

Fields FileFields(std::string_view mer_id, std::string_view txn_time,
                  std::string_view settle_date) {
  return Fields{
      {"version", std::string(kVersion)},
      {"encoding", "UTF-8"},
      {"txnType", "76"},
      {"txnSubType", "01"},
      {"bizType", "000000"},
      {"accessType", "0"},
      {"merId", std::string(mer_id)},
      {"txnTime", std::string(txn_time)},
      {"settleDate", std::string(settle_date)},
      {"fileType", "00"},
  };
}

std::string AutoPostForm(std::string_view action, const Fields& fields) {
  std::string html =
      "<!DOCTYPE html>\n<html><head><meta charset=\"UTF-8\"></head>"
      "<body onload=\"document.forms[0].submit()\">\n";
  html += fmt::format("<form action=\"{}\" method=\"post\">\n", HtmlEscape(action));
  for (const auto& [name, value] : fields) {
    html += fmt::format("<input type=\"hidden\" name=\"{}\" value=\"{}\"/>\n", HtmlEscape(name),
                        HtmlEscape(value));
  }
  html += "</form></body></html>\n";
  return html;
}

Result<std::pair<std::string, Fields>, std::string> ParseAutoPostForm(std::string_view html) {
  std::size_t pos = html.find("<form ");
  if (pos == std::string_view::npos) return std::string("no form");
  auto action = Attribute(html, "action", &pos, html.size());
  if (!action) return std::string("form without an action");
  Fields fields;
  for (;;) {
    const std::size_t input = html.find("<input ", pos);
    if (input == std::string_view::npos) break;
    const std::size_t close = html.find('>', input);
    if (close == std::string_view::npos) return std::string("unterminated input");
    pos = input;
    auto name = Attribute(html, "name", &pos, close);
    auto value = Attribute(html, "value", &pos, close);
    if (!name || !value) return std::string("input without name or value");
    fields[*name] = *value;
    pos = close + 1;
  }
  return std::make_pair(std::move(*action), std::move(fields));
}

ProviderResult AppConsumeOutcome(const Fields& fields, const ErrorCodeTable& codes) {
  const std::string_view code = Get(fields, "respCode");
  const std::string detail = fmt::format("respCode={}", code);
  switch (ClassifyCode(code)) {
    case CodeClass::kSuccess: {
      const std::string_view tn = Get(fields, "tn");
      if (tn.empty()) return Unknown(detail + " without a tn");
      ProviderResult result;
      result.outcome = Outcome::kPending;
      result.next_action_type = "unionpay_tn";
      result.next_action_value = std::string(tn);
      result.detail = detail;
      return result;
    }
    case CodeClass::kRefused:
      return Declined(codes, code, Get(fields, "respMsg"), detail);
    case CodeClass::kInProgress:
    case CodeClass::kUnclear:
      break;
  }
  return Unknown(detail);
}

ProviderResult QueryOutcome(const Fields& fields, std::string_view expect_txn_type,
                            const ErrorCodeTable& codes) {
  const std::string_view code = Get(fields, "respCode");
  if (code == "34") return Unknown("respCode=34 no such transaction (absence is not proof)");
  if (code != "00") return Unknown(fmt::format("query failed: respCode={}", code));
  if (Get(fields, "txnType") != expect_txn_type) {
    return Unknown(fmt::format("query answered txnType {} for a {} transaction",
                               Get(fields, "txnType"), expect_txn_type));
  }
  if (!CurrencyOk(fields)) return Unknown("query answered another currency");
  const auto amount = AmountOf(fields);
  if (!amount) return Unknown("query answered a malformed txnAmt");
  const std::string_view orig = Get(fields, "origRespCode");
  const std::string detail = fmt::format("origRespCode={}", orig);
  ProviderResult result;
  switch (ClassifyCode(orig)) {
    case CodeClass::kSuccess:
      result.outcome = Outcome::kSucceeded;
      break;
    case CodeClass::kInProgress:
      result.outcome = Outcome::kPending;
      break;
    case CodeClass::kRefused:
      result = Declined(codes, orig, Get(fields, "origRespMsg"), detail);
      break;
    case CodeClass::kUnclear:
      return Unknown(detail);
  }
  result.provider_transaction_id = std::string(Get(fields, "queryId"));
  result.amount_minor = *amount;
  result.detail = detail;
  return result;
}

ProviderResult RefundOutcome(const Fields& fields, const ErrorCodeTable& codes) {
  const std::string_view code = Get(fields, "respCode");
  const std::string detail = fmt::format("respCode={}", code);
  switch (ClassifyCode(code)) {
    case CodeClass::kSuccess: {
      const auto amount = AmountOf(fields);
      if (!amount) return Unknown(detail + " with a malformed txnAmt");
      ProviderResult result;
      // Accepted: the refund's own result comes by notification or query.
      result.outcome = Outcome::kPending;
      result.provider_transaction_id = std::string(Get(fields, "queryId"));
      result.amount_minor = *amount;
      result.detail = detail;
      return result;
    }
    case CodeClass::kRefused:
      return Declined(codes, code, Get(fields, "respMsg"), detail);
    case CodeClass::kInProgress:
    case CodeClass::kUnclear:
      break;
  }
  return Unknown(detail);
}

Result<void, std::string> CheckEcho(const Fields& fields, std::string_view mer_id,
                                    std::string_view order_id, std::string_view txn_time) {
  if (Get(fields, "merId") != mer_id) return std::string("reply is for another merId");
  if (!order_id.empty() && Get(fields, "orderId") != order_id) {
    return std::string("reply is about another orderId");
  }
  if (!txn_time.empty() && Get(fields, "txnTime") != txn_time) {
    return std::string("reply is about another txnTime");
  }
  return outcome::success();
}

Result<CallbackEvent, std::string> NotifyEvent(const Fields& fields, std::string_view mer_id,
                                               const ErrorCodeTable& codes) {
  if (Get(fields, "merId") != mer_id) return std::string("notification for another merId");
  const std::string_view txn_type = Get(fields, "txnType");
  CallbackEvent event;
  if (txn_type == "01") {
    event.kind = CallbackEvent::Kind::kPayment;
  } else if (txn_type == "04") {
    event.kind = CallbackEvent::Kind::kRefund;
  } else {
    return fmt::format("notification of unsupported txnType {}", txn_type);
  }
  const std::string_view order_id = Get(fields, "orderId");
  if (order_id.empty()) return std::string("notification without an orderId");
  event.reference = ReferenceFor(order_id);
  if (!CurrencyOk(fields)) return std::string("notification in another currency");
  const auto amount = AmountOf(fields);
  if (!amount) return std::string("notification with a malformed txnAmt");
  const std::string_view code = Get(fields, "respCode");
  ProviderResult& result = event.result;
  switch (ClassifyCode(code)) {
    case CodeClass::kSuccess:
      result.outcome = Outcome::kSucceeded;
      break;
    case CodeClass::kInProgress:
      result.outcome = Outcome::kPending;
      break;
    case CodeClass::kRefused:
      result = Declined(codes, code, Get(fields, "respMsg"), {});
      break;
    case CodeClass::kUnclear:
      return fmt::format("notification with unusable respCode {}", code);
  }
  result.provider_transaction_id = std::string(Get(fields, "queryId"));
  result.amount_minor = *amount;
  result.detail = fmt::format("notify txnType={} respCode={}", txn_type, code);
  // One event per transaction and state: a redelivery carries the same three.
  const std::string_view id = result.provider_transaction_id.empty()
                                  ? order_id
                                  : std::string_view(result.provider_transaction_id);
  event.dedup_key = fmt::format("unionpay:{}:{}:{}", txn_type, id, code);
  return event;
}

}  // namespace paygate::adapters::unionpay
