#include "adapters/wechatpay/signing.h"

#include <ctime>

#include <fmt/format.h>

#include "adapters/common/codec.h"
#include "adapters/wechatpay/json.h"
#include "adapters/wechatpay/wechatpay.pb.h"

namespace paygate::adapters::wechatpay {
namespace {

namespace pb = paygate::adapters::wechatpay::v3;

std::optional<std::int64_t> ParseUnix(std::string_view text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  std::int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

WxResult<std::string> SignBase64(const crypto::PrivateKey& key, std::string_view message) {
  auto signature = key.Sign(crypto::Digest::kSha256, message);
  if (!signature) return Fail(signature.error().message);
  return codec::Base64Encode(signature.value());
}

}  // namespace

std::string RequestMessage(std::string_view method, std::string_view canonical_url,
                           std::int64_t timestamp, std::string_view nonce, std::string_view body) {
  // Every line ends with '\n', the body's too, even when it is empty (a GET): the most common
  // signing mistake the WeChat docs list.
  return fmt::format("{}\n{}\n{}\n{}\n{}\n", method, canonical_url, timestamp, nonce, body);
}

std::string AuthorizationValue(std::string_view scheme, std::string_view mchid,
                               std::string_view nonce, std::int64_t timestamp,
                               std::string_view serial_no, std::string_view signature) {
  return fmt::format(R"({} mchid="{}",nonce_str="{}",timestamp="{}",serial_no="{}",signature="{}")",
                     scheme, mchid, nonce, timestamp, serial_no, signature);
}

WxResult<std::string> SignRequest(const MerchantKey& merchant, std::string_view method,
                                  std::string_view canonical_url, std::int64_t timestamp,
                                  std::string_view nonce, std::string_view body) {
  auto signature =
      SignBase64(merchant.key, RequestMessage(method, canonical_url, timestamp, nonce, body));
  if (!signature) return Fail("sign request: " + signature.error().message);
  return AuthorizationValue(kAuthScheme, merchant.mchid, nonce, timestamp, merchant.serial_no,
                            signature.value());
}

std::string ResponseMessage(std::string_view timestamp, std::string_view nonce,
                            std::string_view body) {
  return fmt::format("{}\n{}\n{}\n", timestamp, nonce, body);
}

void Verifiers::Add(std::string serial, crypto::PublicKey key) {
  keys_.insert_or_assign(std::move(serial), std::move(key));
}

void Verifiers::Add(const crypto::Certificate& certificate) {
  Add(certificate.SerialHex(), certificate.Key());
}

const crypto::PublicKey* Verifiers::Find(std::string_view serial) const {
  auto it = keys_.find(serial);
  return it == keys_.end() ? nullptr : &it->second;
}

WxResult<void> VerifySigned(const Verifiers& verifiers, const SignedHeaders& headers,
                            std::string_view body, std::chrono::system_clock::time_point now) {
  if (headers.timestamp.empty() || headers.nonce.empty() || headers.signature.empty() ||
      headers.serial.empty()) {
    return Fail("missing Wechatpay-* signature headers");
  }
  // WeChat probes merchants with deliberately bad signatures; accepting one would mean we accept
  // anything.
  if (headers.signature.substr(0, kSignTestPrefix.size()) == kSignTestPrefix) {
    return Fail("signature probe (WECHATPAY/SIGNTEST/) refused");
  }
  const auto timestamp = ParseUnix(headers.timestamp);
  if (!timestamp) return Fail("malformed Wechatpay-Timestamp");
  const std::int64_t skew = UnixSeconds(now) - *timestamp;
  if (skew >= kTimestampWindow.count() || -skew >= kTimestampWindow.count()) {
    return Fail(fmt::format("Wechatpay-Timestamp {}s away from our clock", skew));
  }
  const crypto::PublicKey* key = verifiers.Find(headers.serial);
  if (key == nullptr) return Fail(fmt::format("unknown Wechatpay-Serial {}", headers.serial));
  auto signature = codec::Base64Decode(headers.signature);
  if (!signature) return Fail("Wechatpay-Signature is not Base64");
  if (!key->Verify(crypto::Digest::kSha256, ResponseMessage(headers.timestamp, headers.nonce, body),
                   *signature)) {
    return Fail("Wechatpay-Signature invalid");
  }
  return outcome::success();
}

WxResult<std::string> DecryptResource(std::string_view apiv3_key, std::string_view nonce,
                                      std::string_view associated_data,
                                      std::string_view ciphertext_b64) {
  auto sealed = codec::Base64Decode(ciphertext_b64);
  if (!sealed) return Fail("resource ciphertext is not Base64");
  if (nonce.empty()) return Fail("resource nonce is empty");
  auto plain = crypto::AesGcmDecrypt(apiv3_key, nonce, associated_data, *sealed);
  if (!plain) return Fail("resource decryption: " + plain.error().message);
  return std::move(plain).value();
}

WxResult<std::string> EncryptResource(std::string_view apiv3_key, std::string_view nonce,
                                      std::string_view associated_data,
                                      std::string_view plaintext) {
  auto sealed = crypto::AesGcmEncrypt(apiv3_key, nonce, associated_data, plaintext);
  if (!sealed) return Fail(sealed.error().message);
  return codec::Base64Encode(sealed.value());
}

WxResult<std::string> EncryptSensitive(const crypto::PublicKey& key, std::string_view plaintext) {
  auto sealed = key.EncryptOaep(plaintext);
  if (!sealed) return Fail(sealed.error().message);
  return codec::Base64Encode(sealed.value());
}

std::string PaySignMessage(std::string_view appid, std::string_view timestamp,
                           std::string_view nonce, std::string_view package) {
  return fmt::format("{}\n{}\n{}\n{}\n", appid, timestamp, nonce, package);
}

WxResult<std::string> JsapiPayParams(const crypto::PrivateKey& key, std::string_view appid,
                                     std::int64_t timestamp, std::string_view nonce,
                                     std::string_view prepay_id) {
  pb::JsapiPayParams params;
  params.set_appid(std::string(appid));
  params.set_timestamp(std::to_string(timestamp));
  params.set_noncestr(std::string(nonce));
  params.set_package("prepay_id=" + std::string(prepay_id));
  params.set_signtype("RSA");
  auto sign = SignBase64(key, PaySignMessage(appid, params.timestamp(), nonce, params.package()));
  if (!sign) return Fail("jsapi paySign: " + sign.error().message);
  params.set_paysign(std::move(sign).value());
  return ToJson(params);
}

WxResult<std::string> AppPayParams(const crypto::PrivateKey& key, std::string_view appid,
                                   std::string_view mchid, std::int64_t timestamp,
                                   std::string_view nonce, std::string_view prepay_id) {
  pb::AppPayParams params;
  params.set_appid(std::string(appid));
  params.set_partnerid(std::string(mchid));
  params.set_prepayid(std::string(prepay_id));
  params.set_package("Sign=WXPay");
  params.set_noncestr(std::string(nonce));
  params.set_timestamp(std::to_string(timestamp));
  // The APP signature's fourth line is the bare prepay_id, not the package value.
  auto sign = SignBase64(key, PaySignMessage(appid, params.timestamp(), nonce, prepay_id));
  if (!sign) return Fail("app sign: " + sign.error().message);
  params.set_sign(std::move(sign).value());
  return ToJson(params);
}

std::string NewNonce() {
  static constexpr std::string_view kAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  const std::string random = crypto::RandomBytes(32);
  std::string nonce;
  nonce.reserve(random.size());
  // 256 % 36 != 0 gives a slight bias; a nonce needs uniqueness, not uniformity.
  for (unsigned char c : random) nonce.push_back(kAlphabet[c % kAlphabet.size()]);
  return nonce;
}

std::int64_t UnixSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::string Rfc3339China(std::chrono::system_clock::time_point t) {
  const std::time_t shifted = static_cast<std::time_t>(UnixSeconds(t) + 8 * 3600);
  std::tm tm{};
  gmtime_r(&shifted, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S+08:00", &tm);
  return buf;
}

}  // namespace paygate::adapters::wechatpay
