#pragma once

// Alipay OpenAPI v2 signatures (PROTOCOLS.md §B.2, §B.3, §B.5), shared by the adapter and its
// simulator. Pure functions: no I/O, no clock.
//
// Alipay signs parameter lists, not bytes on the wire: the sign content is the parameters sorted by
// key, joined "k=v&k=v" with the raw (decoded) values, and RSA2 is SHA256withRSA PKCS#1 v1.5 over
// those bytes, Base64. Which parameters take part differs by direction, and getting it wrong makes
// every signature fail (or, worse, lets an unsigned parameter through):
//   request   everything but `sign`, empty values skipped, `sign_type` included;
//   notify V1 (rsaCheckV1, trade notifies) drops `sign` and `sign_type`, keeps empty values as "k=";
//   notify V2 (rsaCheckV2, some open-platform messages) drops only `sign`.
// Replies are signed over the exact raw text of the "<method>_response" value, never a
// re-serialisation.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adapters/common/codec.h"
#include "adapters/common/crypto.h"
#include "config/result.h"

namespace paygate::adapters::alipay {

// Why an Alipay translation failed, for logs and attempt rows (never key material or payloads). A
// distinct type, so a result holding a string can tell its value from its error.
struct Error {
  std::string message;
};
template <class T>
using AlipayResult = outcome::result<T, Error, outcome::policy::terminate>;

// Parameters in the order they were given or received.
using Params = codec::FormFields;

// RSA2 = SHA256withRSA (what we send); RSA = SHA1withRSA (legacy, still verified).
enum class SignType { kRsa2, kRsa };
std::optional<SignType> ParseSignType(std::string_view text);
std::string_view SignTypeName(SignType type);
crypto::Digest DigestOf(SignType type);

// The sign contents. A parameter name given twice makes the list ambiguous (which value did the
// signer see?): nullopt.
std::optional<std::string> RequestSignContent(const Params& params);
std::optional<std::string> NotifySignContentV1(const Params& params);
std::optional<std::string> NotifySignContentV2(const Params& params);

// Base64 of the signature of `content`.
AlipayResult<std::string> SignContent(std::string_view content, const crypto::PrivateKey& key,
                                             SignType type = SignType::kRsa2);
// True only for a valid Base64 signature of exactly `content`.
bool VerifyContent(std::string_view content, std::string_view sign_b64,
                   const crypto::PublicKey& key, SignType type = SignType::kRsa2);

// Appends `sign` to a request's parameters (which must carry sign_type).
AlipayResult<void> SignRequest(Params& params, const crypto::PrivateKey& key);
// Verifies a signed request as Alipay does (the simulator's side).
bool VerifyRequest(const Params& params, const crypto::PublicKey& key);

// Which rule verified a notify.
enum class NotifyRule { kV1, kV2 };
// V1 first, then V2 (alipay-sdk-nodejs checkNotifySign): nullopt when neither verifies. The
// algorithm follows the notify's own sign_type (RSA2 when absent).
std::optional<NotifyRule> VerifyNotify(const Params& params, const crypto::PublicKey& key);
// Each rule alone.
bool VerifyNotifyV1(const Params& params, const crypto::PublicKey& key);
bool VerifyNotifyV2(const Params& params, const crypto::PublicKey& key);

// Certificate mode (公钥证书) serial numbers: md5 hex of the issuer DN ("CN=..,OU=..,O=..,C=..",
// most specific first) followed by the decimal serial number.
std::string CertSn(const crypto::Certificate& cert);
// The root SN: the SNs of the RSA certificates (signature OID 1.2.840.113549.1.1.*) of the root
// bundle, joined by "_". The bundle also holds SM2 and ECC roots, which Alipay leaves out.
AlipayResult<std::string> RootCertSn(std::string_view bundle_pem);

// "alipay.trade.query" -> "alipay_trade_query_response".
std::string ResponseKey(std::string_view method);

// A reply split into what was signed and the signature.
struct ResponseParts {
  // The exact raw text of the response value (an object, or a quoted string for AES-encrypted
  // replies, quotes included): what the signature covers.
  std::string_view source;
  // True when Alipay answered under "error_response" rather than the method's key (gateway-level
  // errors such as an unknown app_id).
  bool error_response = false;
  // The signature, unescaped; empty when the reply is unsigned.
  std::string sign;
  std::string alipay_cert_sn;
};
// Finds the top-level "<response_key>" member (or "error_response") of a reply object, skipping
// over strings (escapes included) and nested values, so braces or the key's own name inside a
// string never confuse it. An error when the body is not one JSON object or has neither key.
AlipayResult<ResponseParts> SplitResponse(std::string_view body,
                                                 std::string_view response_key);

// Builds a reply body exactly as Alipay lays it out (the simulator's side): the response value
// first, then the signature, then the certificate SN when given.
std::string BuildResponse(std::string_view response_key, std::string_view source,
                          std::string_view sign_b64, std::string_view alipay_cert_sn = {});

}  // namespace paygate::adapters::alipay
