#pragma once

// The WeChat Pay adapter's pure translation (STYLE.md "Pure translation, separate I/O"): domain
// requests to v3 request bodies and targets, signed reply and callback bytes to outcome classes. No
// I/O and no clock of its own, so tests feed it recorded or tampered bytes.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adapters/adapter.h"
#include "adapters/http/https_client.h"
#include "adapters/wechatpay/error.h"
#include "adapters/wechatpay/signing.h"
#include "config/result.h"

namespace paygate::adapters::wechatpay {

enum class Operation {
  kCreatePayment,
  kQueryPayment,
  kClosePayment,
  kCreateRefund,
  kQueryRefund,
  kCreateTransfer,
  kQueryTransfer,
  kTradeBill,
  kDownloadBill,
  kCertificates,
};
// "create_payment", "query_payment", ... (the names simulator fault rules match on).
std::string_view OperationName(Operation op);

enum class Method { kNative, kJsapi, kH5, kApp };
// "wechat_native", "wechat_jsapi", "wechat_h5", "wechat_app".
std::optional<Method> ParseMethod(std::string_view method);
// "/v3/pay/transactions/native", ...
std::string_view PrepayPath(Method method);

// Provider error code -> unified decline code (config table; see DefaultErrorCodes).
using ErrorCodes = std::map<std::string, std::string, std::less<>>;
const ErrorCodes& DefaultErrorCodes();
// Unmapped codes become this unified code.
inline constexpr std::string_view kUnmappedErrorCode = "provider_error";

// Who we are at WeChat Pay.
struct MerchantIds {
  std::string mchid;
  std::string appid;
};

// What the v3 API needs about the payer beyond adapters::CreatePaymentRequest.
struct PayerInfo {
  // JSAPI: required, the payer's openid under `appid`.
  std::string openid;
  // H5: required, the payer's IP as seen by our front end.
  std::string client_ip;
  // H5: "Wap", "iOS" or "Android".
  std::string h5_type = "Wap";
};

// WeChat's out_trade_no / out_refund_no / out_bill_no alphabet: [0-9A-Za-z_-|*], length 6..max.
bool ValidReference(std::string_view reference, std::size_t max_length);

// Request bodies (JSON, proto field names) and targets (path + query, exactly as signed and sent).
// A body that cannot be built is an error: the request is never sent.
WxResult<std::string> EncodePrepay(const MerchantIds& ids, Method method,
                                   const CreatePaymentRequest& request, const PayerInfo& payer);
std::string QueryPaymentTarget(std::string_view mchid, std::string_view out_trade_no);
std::string ClosePaymentTarget(std::string_view out_trade_no);
std::string EncodeClose(std::string_view mchid);
WxResult<std::string> EncodeRefund(const RefundRequest& request);
inline constexpr std::string_view kRefundPath = "/v3/refund/domestic/refunds";
std::string QueryRefundTarget(std::string_view out_refund_no);

// A payout by the new merchant transfer (商家转账).
struct TransferRequest {
  // Unique per merchant: the idempotency key of the payout attempt (5-32 of [0-9A-Za-z]).
  std::string out_bill_no;
  std::string openid;
  // The payee's real name, plain; encrypted with WeChat's key before sending. Required by WeChat
  // from 2000 CNY; empty: not sent.
  std::string user_name;
  std::int64_t amount_minor = 0;
  std::string currency = "CNY";
  std::string remark;
  std::string notify_url;
  // Configured with WeChat per merchant, e.g. "1000" (现金营销), "1010" (保险理赔).
  std::string transfer_scene_id;
  std::string user_recv_perception;
  std::vector<std::pair<std::string, std::string>> scene_report_infos;
};
inline constexpr std::string_view kTransferPath = "/v3/fund-app/mch-transfer/transfer-bills";
// From this amount (2000 CNY, in fen) WeChat requires the payee's real name.
inline constexpr std::int64_t kTransferNameThresholdMinor = 200'000;

// A payout attempt's out_bill_no. WeChat allows only digits and letters there, while our attempt
// references are "<payout id>_<seq>" of [0-9a-z_]: each '_' becomes 'X', which never occurs in
// them, so the mapping is one-to-one and a callback's out_bill_no maps back to the reference. A
// reference outside [0-9a-z_] or 5-32 long is refused (the request is never sent).
WxResult<std::string> OutBillNoOf(std::string_view provider_reference);
std::string ReferenceOfOutBillNo(std::string_view out_bill_no);
// `encrypted_user_name`: EncryptSensitive(user_name), or empty.
WxResult<std::string> EncodeTransfer(std::string_view appid, const TransferRequest& request,
                                     std::string_view encrypted_user_name);
std::string QueryTransferTarget(std::string_view out_bill_no);

// What a transfer call or callback says.
struct TransferResult {
  ProviderResult result;
  // WeChat's state word (ACCEPTED ... CANCELLED), empty when the reply said none.
  std::string state;
  std::string transfer_bill_no;
  // WAIT_USER_CONFIRM: handed to the payee's WeChat to confirm the receipt.
  std::string package_info;
};

// "/v3/bill/tradebill?bill_date=2026-11-27&bill_type=ALL[&tar_type=GZIP]".
std::string TradeBillTarget(std::string_view bill_date, std::string_view bill_type, bool gzip);
inline constexpr std::string_view kCertificatesPath = "/v3/certificates";

// The headers of a signed response or callback (names lower-case).
SignedHeaders SignedHeadersOf(const std::vector<std::pair<std::string, std::string>>& headers);

// Whether a reply can be trusted at all: not 5xx, signed by a known WeChat Pay key within the
// window. Everything after this reads bytes that WeChat Pay vouched for.
WxResult<void> VerifyReply(const Verifiers& verifiers, const http::HttpsResponse& reply,
                           std::chrono::system_clock::time_point now);

// Readers of verified replies. `reference` is the out_* number the reply must be about.
// Create: 200 -> pending with next_action ("qr_code_url" for native, "redirect_url" for H5,
// "wechat_prepay_id" for JSAPI/APP, which the adapter turns into signed client parameters).
ProviderResult ReadPrepayReply(Method method, const http::HttpsResponse& reply,
                               const ErrorCodes& codes);
ProviderResult ReadQueryPaymentReply(const http::HttpsResponse& reply,
                                     std::string_view out_trade_no);
ProviderResult ReadCloseReply(const http::HttpsResponse& reply, const ErrorCodes& codes);
// Create (op kCreateRefund) or query (kQueryRefund).
ProviderResult ReadRefundReply(Operation op, const http::HttpsResponse& reply,
                               std::string_view out_refund_no, const ErrorCodes& codes);
TransferResult ReadTransferReply(Operation op, const http::HttpsResponse& reply,
                                 std::string_view out_bill_no, const ErrorCodes& codes);

// Outcomes of WeChat's state words (also used for callbacks).
ProviderResult FromTradeState(std::string_view trade_state, std::string_view transaction_id,
                              std::int64_t total, std::string_view desc);
ProviderResult FromRefundStatus(std::string_view status, std::string_view refund_id,
                                std::int64_t refund);
TransferResult FromTransferState(std::string_view state, std::string_view transfer_bill_no,
                                 std::int64_t amount, std::string_view fail_reason);

// The verified bill-download handle of /v3/bill/tradebill.
struct BillHandle {
  std::string hash_type;
  std::string hash_value;
  std::string download_url;
};
WxResult<BillHandle> ReadBillReply(const http::HttpsResponse& reply);

// Decrypts every certificate of a /v3/certificates reply (its signature is checked by the caller,
// possibly with a certificate from this very reply) and checks each one's serial.
WxResult<std::vector<crypto::Certificate>> ReadCertificatesReply(std::string_view body,
                                                                 std::string_view apiv3_key);

// A verified and decrypted callback.
struct Notice {
  std::string id;
  std::string event_type;
  std::string original_type;
  std::string plaintext;
};
// Verifies the Wechatpay-* signature of a callback (window, serial, SIGNTEST probes), then decrypts
// its resource.
WxResult<Notice> OpenNotification(const Verifiers& verifiers, std::string_view apiv3_key,
                                  const CallbackRequest& request,
                                  std::chrono::system_clock::time_point now);

// Payment (TRANSACTION.*), refund (REFUND.*) and payout (MCHTRANSFER.*, kind kPayout, reference
// mapped back by ReferenceOfOutBillNo) callbacks for `mchid`.
Result<CallbackEvent, std::string> ReadCallback(const Verifiers& verifiers,
                                                std::string_view apiv3_key, std::string_view mchid,
                                                const CallbackRequest& request,
                                                std::chrono::system_clock::time_point now);

// Transfer callbacks (MCHTRANSFER.BILL.FINISHED).
struct TransferEvent {
  std::string reference;  // out_bill_no
  TransferResult result;
  std::string dedup_key;
};
Result<TransferEvent, std::string> ReadTransferCallback(const Verifiers& verifiers,
                                                        std::string_view apiv3_key,
                                                        std::string_view mchid,
                                                        const CallbackRequest& request,
                                                        std::chrono::system_clock::time_point now);

// 204 without a body when accepted; otherwise 500 {"code":"FAIL","message":"失败"} so WeChat
// retries.
CallbackAck MakeAck(bool accepted);

}  // namespace paygate::adapters::wechatpay
