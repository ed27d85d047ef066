#pragma once

// The Alipay adapter (OpenAPI v2, gateway.do; PROTOCOLS.md §B): payments by page, wap and app,
// query, close, refund and refund query, transfers (payouts) and their query, and the trade bill.
// Every call is a form POST of RSA2-signed parameters; every reply is verified over its raw
// "*_response" text before anything in it is believed. Outcome classes as the sandbox's
// (adapters/sandbox/PROTOCOL.md): transport not sent -> not_sent; sent but no trustworthy answer
// (timeout after write, 5xx, unsigned, badly signed or malformed reply, Alipay system errors) ->
// unknown; a definitive refusal -> declined.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "adapters/adapter.h"
#include "adapters/alipay/mapper.h"
#include "adapters/common/bill.h"
#include "adapters/http/https_client.h"
#include "keys/secret.h"

namespace paygate::adapters::alipay {

struct AlipayOptions {
  // The gateway, e.g. https://openapi.alipay.com/gateway.do (sandbox:
  // https://openapi-sandbox.dl.alipaydev.com/gateway.do, or the simulator's).
  std::string gateway_url = "https://openapi.alipay.com/gateway.do";
  // CA file that signs the gateway's certificate; empty: the system trust store. Used only when the
  // adapter creates its own client.
  std::string ca_file;
  // One adapter serves one merchant account (the {merchant_account} of callback URLs).
  std::string merchant_account;
  std::string app_id;
  // Our PID (2088...): when set, a notify for another seller is refused.
  std::string seller_id;
  // The app private key: PEM (PKCS#1 or PKCS#8) or the bare Base64 Alipay's tools hand out.
  keys::Secret app_private_key_pem;
  // Public-key mode: the Alipay public key.
  std::string alipay_public_key_pem;
  // Certificate mode (公钥证书), all three PEM; mandatory for transfers. When set, the public key
  // above is ignored.
  std::string app_cert_pem;
  std::string alipay_cert_pem;
  std::string alipay_root_cert_pem;
  // sub_code -> unified decline code, over DefaultErrorTable(); and extra sub_codes that leave the
  // outcome unknown.
  std::map<std::string, std::string> error_codes;
  std::vector<std::string> unknown_sub_codes;
  // Upper bound of a bill archive's decompressed files.
  std::size_t bill_max_bytes = 64 * 1024 * 1024;
  std::chrono::milliseconds connect_timeout_ms{3'000};
  // From the start of the write to the last byte of the reply.
  std::chrono::milliseconds request_timeout_ms{10'000};
  // Wall clock for timestamps and time_expire; empty: the system clock (tests inject one).
  std::function<std::chrono::system_clock::time_point()> clock;
};

// A downloaded bill: the bytes as Alipay served them, and what they parsed to.
struct BillDownload {
  std::string download_url;
  std::string raw;
  // Parsed records of the zip's detail CSV (业务明细, not its 汇总 summary), or why not.
  std::optional<bill::File> file;
  std::string file_error;
};

// Thread-safe: all methods may run concurrently; the adapter holds no per-call state.
class AlipayAdapter final : public Adapter {
 public:
  // Parses the keys and certificates (computing both SNs in certificate mode). Uses `client` when
  // given (adapters share one), else creates one trusting options.ca_file.
  static AlipayResult<std::unique_ptr<AlipayAdapter>> Create(
      AlipayOptions options, std::shared_ptr<http::HttpsClient> client = nullptr);

  std::string_view provider() const override { return "alipay"; }

  boost::asio::awaitable<ProviderResult> CreatePayment(CreatePaymentRequest request) override;
  boost::asio::awaitable<ProviderResult> QueryPayment(PaymentRef ref) override;
  boost::asio::awaitable<ProviderResult> ClosePayment(PaymentRef ref) override;
  boost::asio::awaitable<ProviderResult> Refund(RefundRequest request) override;
  boost::asio::awaitable<ProviderResult> QueryRefund(RefundRef ref) override;

  Result<CallbackEvent, std::string> VerifyCallback(const CallbackRequest& request) const override;
  CallbackAck AckCallback(bool accepted) const override;

  // Method alipay_transfer by alipay.fund.trans.uni.transfer with out_biz_no = provider_reference
  // (Alipay's idempotency key), to a beneficiary of account_type alipay_user_id, alipay_login_id
  // (the name is required) or alipay_open_id; anything else is not_sent. Alipay sends no notify we
  // subscribe to for transfers: pending (DEALING) is settled by QueryPayout, and its "order not
  // found" is unknown, never declined.
  boost::asio::awaitable<ProviderResult> CreatePayout(CreatePayoutRequest request) override;
  boost::asio::awaitable<ProviderResult> QueryPayout(PayoutRef ref) override;

  // alipay.fund.trans.uni.transfer: succeeded, pending (DEALING), declined, or unknown. Alipay
  // accepts transfers only in certificate mode: in public-key mode this is not_sent.
  boost::asio::awaitable<ProviderResult> Transfer(PayoutRequest request);
  // alipay.fund.trans.common.query by out_biz_no.
  boost::asio::awaitable<ProviderResult> QueryTransfer(std::string reference);
  // alipay.data.dataservice.bill.downloadurl.query (bill_type trade, bill_date yyyy-MM-dd), then a
  // GET of the 30-second URL. An error when no bill could be fetched.
  boost::asio::awaitable<AlipayResult<BillDownload>> DownloadBill(std::string bill_date);

  const Credentials& credentials() const { return credentials_; }

 private:
  AlipayAdapter(AlipayOptions options, Credentials credentials, ErrorTable errors,
                std::shared_ptr<http::HttpsClient> client);

  std::chrono::system_clock::time_point Now() const;
  http::HttpsRequest Post(std::string body) const;
  // Signs and sends one call; classifies transport failures and the reply.
  boost::asio::awaitable<ProviderResult> Call(Operation op, std::string biz_content,
                                              std::string reference);

  AlipayOptions options_;
  Credentials credentials_;
  ErrorTable errors_;
  std::shared_ptr<http::HttpsClient> client_;
};

}  // namespace paygate::adapters::alipay
