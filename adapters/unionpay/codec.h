#pragma once

// UnionPay ACP 5.1.0 (全渠道) message codec: pure functions, no I/O and no clock of their own
// (STYLE.md "Pure translation, separate I/O"). See adapters/unionpay/PROTOCOL.md for the wire rules
// and for what each outcome class means here.
//
// A message is a set of key=value fields. Signing (signMethod 01): the fields other than
// `signature` with non-empty values, sorted by key, joined as k=v with '&' over the decoded
// values; SHA-256 of that, as 64 lower-case hex characters; SHA256withRSA (PKCS#1 v1.5) over those
// 64 characters; Base64. UnionPay signs replies and notifications the same way and ships the
// signing certificate in `signPubKeyCert`, which is trusted only after its chain to UnionPay's root
// and middle certificates verifies and its CN names UnionPay.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/adapter.h"
#include "adapters/common/crypto.h"
#include "config/result.h"

namespace paygate::adapters::unionpay {

// Decoded fields by name. Keys are unique: a message repeating a key is refused when parsed.
using Fields = std::map<std::string, std::string>;

inline constexpr std::string_view kVersion = "5.1.0";
inline constexpr std::string_view kSignMethodRsa = "01";
inline constexpr std::string_view kCurrencyCny = "156";
// What production certificates carry as the owner (third '@' segment of the CN). UnionPay's test
// environment signs with certificates whose owner segment is "00040000:SIGN".
inline constexpr std::string_view kProductionCertOwner = "中国银联股份有限公司";

// ---- Parsing

// A notification (POST to backUrl) or a browser form: application/x-www-form-urlencoded.
Result<Fields, std::string> ParseNotifyForm(std::string_view body);
// A synchronous reply of the gateway: key=value pairs joined by '&' whose values are NOT
// percent-encoded (signPubKeyCert arrives with raw '+', '/', '=' and line breaks). A value that
// starts with '{' runs to its matching '}' and may contain '&' (UnionPay's nested values).
Result<Fields, std::string> ParseReply(std::string_view body);
// The reply encoding, for the simulator: fields in key order, values raw.
std::string BuildReply(const Fields& fields);
// A request body: fields form-encoded in key order.
std::string BuildForm(const Fields& fields);

// ---- Signatures

// The string that is hashed: sorted non-empty fields except `signature`.
std::string SignContent(const Fields& fields);
// lower-case hex SHA-256 of SignContent: what the RSA signature is computed over.
std::string SignDigestHex(const Fields& fields);

// A merchant's (or, in the simulator, UnionPay's) signing key and its certificate.
struct Signer {
  crypto::PrivateKey key;
  crypto::Certificate certificate;
  // Decimal serial of the certificate: what certId carries.
  std::string cert_id;
};
// Reads a PKCS#12 store. UnionPay's test stores encrypt their certificates with RC2-40, which
// OpenSSL 3 keeps in its legacy provider: it is loaded (next to the default one) on first use.
Result<Signer, std::string> LoadSigner(const std::string& pfx_file, std::string_view password);
Result<Signer, std::string> SignerFromPkcs12(std::string_view der, std::string_view password);

// Sets signMethod=01 and certId, then `signature`.
Result<void, std::string> Sign(const Signer& signer, Fields& fields);
// Sign, plus signPubKeyCert (the signer's certificate as PEM with CRLF line breaks, as UnionPay
// sends it): how UnionPay signs what it sends.
Result<void, std::string> SignAsUnionPay(const Signer& signer, Fields& fields);

// What a message from UnionPay must chain to.
struct Trust {
  std::vector<crypto::Certificate> middle;
  std::vector<crypto::Certificate> roots;
  // The CN owner segment ("041@x@<owner>@n") the signing certificate must carry; empty: not checked
  // (never in production: CFCA issues certificates under the same root to other companies).
  std::string cert_owner = std::string(kProductionCertOwner);
};

// Checks a message UnionPay signed: signMethod 01, signPubKeyCert parses, chains to `trust` with
// validity judged at `at`, carries the owner, and `signature` verifies over the fields. The error
// says which check failed (never the message content).
Result<void, std::string> VerifySigned(const Fields& fields, const Trust& trust,
                                       std::chrono::system_clock::time_point at);
// Checks a merchant's request against its registered certificate (the simulator's side).
Result<void, std::string> VerifyMerchantSigned(const Fields& fields,
                                               const crypto::Certificate& merchant_cert);

// ---- Identifiers and times

// Our references are [a-z0-9_]; UnionPay's orderId is 8-32 alphanumerics without '_' or '-'. The
// mapping is reversible: '_' is written 'Z' (upper case never occurs in our references). nullopt
// when the reference has another character or the result's length is out of range.
std::optional<std::string> OrderIdFor(std::string_view reference);
std::string ReferenceFor(std::string_view order_id);

// yyyyMMddHHmmss in Beijing time (UTC+8, no daylight saving): txnTime, payTimeout.
std::string BeijingTime(std::chrono::system_clock::time_point at);
std::optional<std::chrono::system_clock::time_point> ParseBeijingTime(std::string_view text);

// ---- Outcomes

// respCode / origRespCode -> unified decline code, e.g. {"64", "insufficient_funds"}.
using ErrorCodeTable = std::map<std::string, std::string>;
ErrorCodeTable DefaultErrorCodes();

// How UnionPay's state codes read (PROTOCOL.md "Outcome classes").
enum class CodeClass {
  kSuccess,     // 00, A6
  kInProgress,  // 03, 04, 05: accepted or unclear, ask again later
  kRefused,     // a code that definitively means "not done"
  kUnclear,     // anything else, including codes we do not know: never a decline
};
CodeClass ClassifyCode(std::string_view code);

// The request fields (unsigned) of each call.
struct ConsumeParams {
  std::string mer_id;
  std::string order_id;
  std::string txn_time;
  std::int64_t amount_minor = 0;
  std::string back_url;
  std::string front_url;     // web only
  std::string pay_timeout;   // yyyyMMddHHmmss; empty: none
  std::string channel_type;  // 07 PC/web, 08 mobile/app
};
Fields ConsumeFields(const ConsumeParams& params);
Fields QueryFields(std::string_view mer_id, std::string_view order_id, std::string_view txn_time);
struct RefundParams {
  std::string mer_id;
  std::string order_id;
  std::string txn_time;
  std::int64_t amount_minor = 0;
  std::string orig_query_id;
  std::string back_url;
};
Fields RefundFields(const RefundParams& params);
// fileTransReq: settle_date is MMDD.
Fields FileFields(std::string_view mer_id, std::string_view txn_time, std::string_view settle_date);

// The HTML page that posts `fields` to `action` as soon as it loads (what UnionPay's own SDK hands
// to the payer's browser). Values are HTML-escaped.
std::string AutoPostForm(std::string_view action, const Fields& fields);
// Reads the action and fields back from such a page (tests and the simulator's browser stand-in).
Result<std::pair<std::string, Fields>, std::string> ParseAutoPostForm(std::string_view html);

// Reading a verified reply. `fields` must already have passed VerifySigned.
// App consume (appTransReq): 00 with a tn -> pending with next_action ("unionpay_tn", tn).
ProviderResult AppConsumeOutcome(const Fields& fields, const ErrorCodeTable& codes);
// queryTrans about a consume (expect_txn_type "01") or a refund ("04").
ProviderResult QueryOutcome(const Fields& fields, std::string_view expect_txn_type,
                            const ErrorCodeTable& codes);
// backTransReq refund: 00 -> pending (accepted; the result comes by notify or query).
ProviderResult RefundOutcome(const Fields& fields, const ErrorCodeTable& codes);

// The checks every reply must pass besides its signature: it echoes our merId, orderId and txnTime
// (so it is about the call we made). Empty `order_id`/`txn_time` are not checked.
Result<void, std::string> CheckEcho(const Fields& fields, std::string_view mer_id,
                                    std::string_view order_id, std::string_view txn_time);

// A verified notification as a callback event: txnType 01 (consume) -> payment, 04 (refund) ->
// refund; the reference is the orderId mapped back. Errors for other types or states.
Result<CallbackEvent, std::string> NotifyEvent(const Fields& fields, std::string_view mer_id,
                                               const ErrorCodeTable& codes);

}  // namespace paygate::adapters::unionpay
