#pragma once

// The Alipay adapter's pure translation (STYLE.md "Pure translation, separate I/O"): domain
// requests to signed gateway.do parameters, and reply or notify bytes to outcome classes. No I/O
// and no clock of its own, so tests feed it recorded, vector or tampered bytes.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "adapters/adapter.h"
#include "adapters/alipay/signing.h"
#include "adapters/common/crypto.h"
#include "adapters/http/https_client.h"
#include "config/result.h"

namespace paygate::adapters::alipay {

inline constexpr std::string_view kMethodPagePay = "alipay.trade.page.pay";
inline constexpr std::string_view kMethodWapPay = "alipay.trade.wap.pay";
inline constexpr std::string_view kMethodAppPay = "alipay.trade.app.pay";
inline constexpr std::string_view kMethodQuery = "alipay.trade.query";
inline constexpr std::string_view kMethodClose = "alipay.trade.close";
inline constexpr std::string_view kMethodRefund = "alipay.trade.refund";
inline constexpr std::string_view kMethodRefundQuery = "alipay.trade.fastpay.refund.query";
inline constexpr std::string_view kMethodTransfer = "alipay.fund.trans.uni.transfer";
inline constexpr std::string_view kMethodTransferQuery = "alipay.fund.trans.common.query";
inline constexpr std::string_view kMethodBillUrl = "alipay.data.dataservice.bill.downloadurl.query";

// Who we are to Alipay and whom we trust. Public-key mode: alipay_key is the Alipay public key and
// the SN fields are empty. Certificate mode (公钥证书; mandatory for transfers): app_cert_sn and
// alipay_root_cert_sn go into every request, alipay_key is the key of the Alipay certificate, and a
// reply naming another alipay_cert_sn is not trusted.
struct Credentials {
  std::string app_id;
  crypto::PrivateKey app_key;
  crypto::PublicKey alipay_key;
  std::string app_cert_sn;
  std::string alipay_root_cert_sn;
  std::string alipay_cert_sn;

  bool cert_mode() const { return !app_cert_sn.empty(); }
};

// How Alipay's business error codes (sub_code) read to our clients, and which of them mean "we do
// not know" rather than "refused".
struct ErrorTable {
  // sub_code -> unified decline code; a sub_code not listed declines as "provider_declined".
  std::map<std::string, std::string> codes;
  // sub_codes that leave the outcome unknown (Alipay's own system errors). Any "isp." sub_code is
  // unknown as well: those are Alipay-side failures.
  std::set<std::string> unknown;
};
ErrorTable DefaultErrorTable();

// Beijing time "yyyy-MM-dd HH:mm:ss" (Alipay's timestamp and time_expire format).
std::string BeijingTime(std::chrono::system_clock::time_point at);

// The public parameters of one call, signed: app_id, method, format, charset, sign_type,
// timestamp, version, [notify_url], [app_cert_sn, alipay_root_cert_sn], biz_content, sign.
AlipayResult<Params> SignedCall(const Credentials& credentials, std::string_view method,
                                       std::string_view biz_content, std::string_view notify_url,
                                       std::chrono::system_clock::time_point now);

// The gateway method for a payment method: alipay_page, alipay_wap, alipay_app.
std::optional<std::string_view> PayMethodFor(std::string_view method);

// A create: page and wap payments are a signed gateway URL the payer's browser opens (next action
// "redirect_url"); app payments are the signed order string the Alipay app SDK takes (next action
// "app_order_string"). Nothing is sent to Alipay, which creates the trade when the payer opens it,
// so a well-formed create is pending; one that cannot be built is not_sent.
ProviderResult BuildPayment(const Credentials& credentials, std::string_view gateway_url,
                            const CreatePaymentRequest& request,
                            std::chrono::system_clock::time_point now);

// biz_content of each server call. Errors: an amount that is not positive, a currency other than
// CNY.
std::string EncodeTradeRef(std::string_view out_trade_no);
AlipayResult<std::string> EncodeRefund(const RefundRequest& request);
std::string EncodeRefundQuery(const RefundRef& ref);

struct PayoutRequest {
  std::string merchant_account;
  // out_biz_no: our reference and Alipay's idempotency key for the transfer.
  std::string reference;
  std::int64_t amount_minor = 0;
  std::string currency = "CNY";
  // ALIPAY_USER_ID, ALIPAY_LOGON_ID (payee_name required) or ALIPAY_OPEN_ID.
  std::string payee_identity_type = "ALIPAY_USER_ID";
  std::string payee_identity;
  std::string payee_name;
  std::string title;
  std::string remark;
};
AlipayResult<std::string> EncodeTransfer(const PayoutRequest& request);
// A Beneficiary's account_type as Alipay's payee identity_type: alipay_user_id ALIPAY_USER_ID,
// alipay_login_id ALIPAY_LOGON_ID, alipay_open_id ALIPAY_OPEN_ID; anything else: none.
std::optional<std::string_view> PayeeIdentityType(std::string_view account_type);
std::string EncodeTransferQuery(std::string_view out_biz_no);
std::string EncodeBillUrl(std::string_view bill_type, std::string_view bill_date);

enum class Operation { kQueryPayment, kClosePayment, kRefund, kQueryRefund, kPayout, kQueryPayout };
std::string_view MethodOf(Operation op);

struct ReplyContext {
  Operation op = Operation::kQueryPayment;
  const Credentials* credentials = nullptr;
  const ErrorTable* errors = nullptr;
  // The reference the reply must be about: out_trade_no (query, close, refund), out_request_no
  // (refund query), out_biz_no (payout and its query).
  std::string_view reference;
};

// Classifies a reply. Never declined for a reply that is not HTTP 200, correctly signed over its
// raw response text, well-formed and about `reference`: such replies are unknown.
ProviderResult ReadReply(const ReplyContext& context, const http::HttpsResponse& reply);

// The download URL from a bill URL reply (verified like every reply).
AlipayResult<std::string> ReadBillUrlReply(const Credentials& credentials,
                                                  const http::HttpsResponse& reply);

// What a notify must match besides its signature.
struct NotifyContext {
  const Credentials* credentials = nullptr;
  std::string_view merchant_account;
  // When set, the notify's seller_id must equal it (our PID).
  std::string_view seller_id;
};

// Verifies a notify form (signature by rsaCheckV1, else V2; app_id and seller_id are ours) and
// reads it: trade_status_sync for a payment, or for a refund when it carries out_biz_no and
// refund_fee (Alipay notifies refunds on the trade). dedup_key is the notify_id, which Alipay
// repeats on every redelivery.
AlipayResult<CallbackEvent> ReadNotify(const NotifyContext& context,
                                              const CallbackRequest& request);

// Alipay stops redelivering only on the body "success", exactly.
CallbackAck MakeAck(bool accepted);

}  // namespace paygate::adapters::alipay
