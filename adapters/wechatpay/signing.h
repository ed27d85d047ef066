#pragma once

// WeChat Pay API v3 signatures and encryption (shared/providers/PROTOCOLS.md §A.2-A.4), shared by
// the adapter and the simulator. Pure functions over exact bytes: no I/O and no clock of their own.
//
//   request   Authorization: WECHATPAY2-SHA256-RSA2048 over "METHOD\nURL\nTS\nNONCE\nBODY\n" with
//   the
//             merchant's API key;
//   response  and callback: Wechatpay-Signature over "TS\nNONCE\nBODY\n" with WeChat Pay's key,
//   named by
//             Wechatpay-Serial (a platform certificate serial, or a PUB_KEY_ID_... public key id);
//   resource  callback payloads and platform certificates: AEAD_AES_256_GCM under the APIv3 key;
//   client    JSAPI/APP pay signatures: "APPID\nTS\nNONCE\nPACKAGE\n" with the merchant's API key.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "adapters/common/crypto.h"
#include "adapters/wechatpay/error.h"

namespace paygate::adapters::wechatpay {

inline constexpr std::string_view kAuthScheme = "WECHATPAY2-SHA256-RSA2048";
inline constexpr std::string_view kSignTestPrefix = "WECHATPAY/SIGNTEST/";
inline constexpr std::string_view kPublicKeyIdPrefix = "PUB_KEY_ID_";
// A response or callback timestamp this far (or further) from our clock is refused.
inline constexpr std::chrono::seconds kTimestampWindow{300};

inline constexpr std::string_view kTimestampHeader = "wechatpay-timestamp";
inline constexpr std::string_view kNonceHeader = "wechatpay-nonce";
inline constexpr std::string_view kSignatureHeader = "wechatpay-signature";
inline constexpr std::string_view kSerialHeader = "wechatpay-serial";
inline constexpr std::string_view kSignatureTypeHeader = "wechatpay-signature-type";

// "METHOD\nCANONICAL_URL\nTIMESTAMP\nNONCE\nBODY\n". canonical_url is path plus "?" and the query
// exactly as sent.
std::string RequestMessage(std::string_view method, std::string_view canonical_url,
                           std::int64_t timestamp, std::string_view nonce, std::string_view body);

// The Authorization header value for an already computed Base64 signature.
std::string AuthorizationValue(std::string_view scheme, std::string_view mchid,
                               std::string_view nonce, std::int64_t timestamp,
                               std::string_view serial_no, std::string_view signature);

// The merchant's signing identity.
struct MerchantKey {
  std::string mchid;
  // The merchant API certificate serial, upper-case hex.
  std::string serial_no;
  crypto::PrivateKey key;
};

// Signs one request: the full Authorization header value.
WxResult<std::string> SignRequest(const MerchantKey& merchant, std::string_view method,
                                  std::string_view canonical_url, std::int64_t timestamp,
                                  std::string_view nonce, std::string_view body);

// "TIMESTAMP\nNONCE\nBODY\n": what WeChat Pay signs in responses and callbacks.
std::string ResponseMessage(std::string_view timestamp, std::string_view nonce,
                            std::string_view body);

// WeChat Pay's verification keys by Wechatpay-Serial: platform certificate serials and PUB_KEY_ID_
// public key ids side by side (both occur while a merchant migrates). Immutable once built; the
// adapter swaps in a new set when it downloads certificates.
class Verifiers {
 public:
  void Add(std::string serial, crypto::PublicKey key);
  // A certificate under its own serial.
  void Add(const crypto::Certificate& certificate);
  const crypto::PublicKey* Find(std::string_view serial) const;
  bool empty() const { return keys_.empty(); }
  std::size_t size() const { return keys_.size(); }

 private:
  std::map<std::string, crypto::PublicKey, std::less<>> keys_;
};

// The four Wechatpay-* headers of a signed response or callback.
struct SignedHeaders {
  std::string_view timestamp;
  std::string_view nonce;
  std::string_view signature;
  std::string_view serial;
};

// Checks headers present, not a SIGNTEST probe, timestamp within kTimestampWindow of `now`, a known
// serial, and the RSA-SHA256 signature over the raw body. The error says which check failed.
WxResult<void> VerifySigned(const Verifiers& verifiers, const SignedHeaders& headers,
                            std::string_view body, std::chrono::system_clock::time_point now);

// AEAD_AES_256_GCM with the APIv3 key (32 bytes; 16-byte keys, as in the Go SDK's vectors, give
// AES-128). `ciphertext_b64` is Base64(ct || tag).
WxResult<std::string> DecryptResource(std::string_view apiv3_key, std::string_view nonce,
                                      std::string_view associated_data,
                                      std::string_view ciphertext_b64);
// The inverse, for the simulator: Base64(ct || tag).
WxResult<std::string> EncryptResource(std::string_view apiv3_key, std::string_view nonce,
                                      std::string_view associated_data, std::string_view plaintext);

// Sensitive request fields (transfer user_name): Base64(RSA-OAEP-SHA1(plaintext)).
WxResult<std::string> EncryptSensitive(const crypto::PublicKey& key, std::string_view plaintext);

// Client-side pay parameters.
// "APPID\nTIMESTAMP\nNONCE\nPACKAGE\n" (JSAPI: package "prepay_id=..."; APP: the bare prepay_id).
std::string PaySignMessage(std::string_view appid, std::string_view timestamp,
                           std::string_view nonce, std::string_view package);
// The JSON object a JSAPI page passes to WeixinJSBridge getBrandWCPayRequest / wx.requestPayment:
// appId, timeStamp, nonceStr, package, signType "RSA", paySign.
WxResult<std::string> JsapiPayParams(const crypto::PrivateKey& key, std::string_view appid,
                                     std::int64_t timestamp, std::string_view nonce,
                                     std::string_view prepay_id);
// The JSON object an app passes to the WeChat SDK's PayReq: appid, partnerid, prepayid,
// package "Sign=WXPay", noncestr, timestamp, sign.
WxResult<std::string> AppPayParams(const crypto::PrivateKey& key, std::string_view appid,
                                   std::string_view mchid, std::int64_t timestamp,
                                   std::string_view nonce, std::string_view prepay_id);

// 32 random characters of [0-9A-Z], as the SDKs send.
std::string NewNonce();
std::int64_t UnixSeconds(std::chrono::system_clock::time_point t);
// RFC 3339 in China time, "2026-11-27T08:30:00+08:00".
std::string Rfc3339China(std::chrono::system_clock::time_point t);

}  // namespace paygate::adapters::wechatpay
