#pragma once

// The WeChat Pay API v3 adapter (shared/providers/PROTOCOLS.md §A): collections by native (QR
// code), JSAPI, H5 and app; query, close, refund and refund query; payouts by the merchant transfer
// (商家转账); trade-bill download with its SHA-1 check; platform-certificate download; and
// callbacks verified (Wechatpay-* signature, 300 s window, SIGNTEST probes refused) and decrypted
// (AES-GCM). The pure translation is mapper.h; this class only does I/O and keeps the keys.
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "adapters/adapter.h"
#include "adapters/common/bill.h"
#include "adapters/http/https_client.h"
#include "adapters/wechatpay/mapper.h"
#include "adapters/wechatpay/signing.h"
#include "keys/secret.h"

namespace paygate::adapters::wechatpay {

struct WechatPayOptions {
  // https://api.mch.weixin.qq.com (or the simulator's https://host:port), no trailing slash.
  std::string base_url = "https://api.mch.weixin.qq.com";
  // CA file for the HTTPS client; empty: the system store. Used only when the adapter creates its
  // own client.
  std::string ca_file;
  // One adapter serves one merchant account (the {merchant_account} of callback URLs).
  std::string merchant_account;
  std::string mchid;
  std::string appid;
  // The merchant API certificate's serial (upper-case hex) and its private key (PEM, PKCS#8 or #1).
  std::string merchant_serial_no;
  keys::Secret merchant_private_key_pem;
  // The APIv3 key: 32 bytes (16-byte keys are accepted for the Go SDK's vectors).
  keys::Secret apiv3_key;
  // WeChat Pay's keys: "微信支付公钥" mode as (PUB_KEY_ID_..., PEM public key) pairs, and/or
  // platform certificates (PEM), which RefreshCertificates() also fills.
  std::vector<std::pair<std::string, std::string>> wechatpay_public_keys;
  std::vector<std::string> platform_certificates_pem;
  // The id (PUB_KEY_ID_... or certificate serial) of the key that encrypts sensitive fields (a
  // payee's name); empty: the first public key, else the first certificate.
  std::string encrypt_key_id;
  // Provider error code -> unified decline code.
  ErrorCodes error_codes = DefaultErrorCodes();
  // Payouts (CreatePayout): the transfer scene agreed with WeChat for this merchant and the scene
  // report WeChat requires for it (1000 现金营销 asks for 活动名称 and 奖励说明).
  std::string transfer_scene_id = "1000";
  std::vector<std::pair<std::string, std::string>> transfer_scene_report_infos = {
      {"活动名称", "保险理赔"}, {"奖励说明", "理赔款"}};
  std::chrono::milliseconds connect_timeout_ms{3'000};
  // From the start of the write to the last byte of the reply.
  std::chrono::milliseconds request_timeout_ms{10'000};
  // Upper bound of a decompressed bill file.
  std::size_t bill_max_bytes = 64 * 1024 * 1024;
  // Wall clock for signatures and their freshness; empty: the system clock (tests inject one).
  std::function<std::chrono::system_clock::time_point()> clock;
};

// A downloaded trade bill.
struct BillDownload {
  // The bytes as downloaded (gzip when asked for), for archiving.
  std::string raw;
  // The decompressed file whose SHA-1 matched WeChat's hash_value.
  std::string file;
  bill::File parsed;
};

// Thread-safe: all methods may run concurrently; the only shared mutable state is the set of
// WeChat Pay verification keys, swapped whole under a mutex.
class WechatPayAdapter final : public Adapter {
 public:
  // Uses `client` when given (adapters share one), else creates one trusting options.ca_file.
  static Result<std::unique_ptr<WechatPayAdapter>, std::string> Create(
      WechatPayOptions options, std::shared_ptr<http::HttpsClient> client = nullptr);

  std::string_view provider() const override { return "wechatpay"; }

  // method wechat_native / wechat_h5 / wechat_app work as is; wechat_jsapi needs an openid and H5 a
  // client IP, so through this interface they are not_sent (see CreatePaymentFor).
  boost::asio::awaitable<ProviderResult> CreatePayment(CreatePaymentRequest request) override;
  boost::asio::awaitable<ProviderResult> QueryPayment(PaymentRef ref) override;
  boost::asio::awaitable<ProviderResult> ClosePayment(PaymentRef ref) override;
  boost::asio::awaitable<ProviderResult> Refund(RefundRequest request) override;
  boost::asio::awaitable<ProviderResult> QueryRefund(RefundRef ref) override;
  // Method wechat_transfer to a beneficiary of account_type wechat_openid, by merchant transfer:
  // out_bill_no = OutBillNoOf(provider_reference) (WeChat's idempotency key), the payee's name
  // RSA-OAEP encrypted and required from 2000 CNY (without it the request is never sent). Pending
  // in WAIT_USER_CONFIRM carries next_action "wechat_transfer_package" (the payee confirms in
  // WeChat). A query that finds nothing is unknown: WeChat's "not found" is no proof.
  boost::asio::awaitable<ProviderResult> CreatePayout(CreatePayoutRequest request) override;
  boost::asio::awaitable<ProviderResult> QueryPayout(PayoutRef ref) override;

  // Payment, refund and transfer (kPayout) callbacks.
  Result<CallbackEvent, std::string> VerifyCallback(const CallbackRequest& request) const override;
  CallbackAck AckCallback(bool accepted) const override;

  // CreatePayment with what JSAPI (openid) and H5 (client IP) need. next_action: native
  // "qr_code_url"; H5 "redirect_url"; JSAPI "wechat_jsapi_params" and APP "wechat_app_params",
  // each a JSON object signed for the payer's WeChat.
  boost::asio::awaitable<ProviderResult> CreatePaymentFor(CreatePaymentRequest request,
                                                          PayerInfo payer);

  // Payouts by merchant transfer. Repeating a create with the same out_bill_no is idempotent at
  // WeChat; a declined result means WeChat provably refused it.
  boost::asio::awaitable<TransferResult> CreateTransfer(TransferRequest request);
  boost::asio::awaitable<TransferResult> QueryTransfer(std::string out_bill_no);
  Result<TransferEvent, std::string> VerifyTransferCallback(const CallbackRequest& request) const;

  // The trade bill of `bill_date` ("YYYY-MM-DD"), type ALL, SUCCESS or REFUND, optionally gzip'd in
  // transit: downloaded, decompressed, SHA-1 checked and parsed, all held in memory (bounded by
  // options.bill_max_bytes).
  boost::asio::awaitable<Result<BillDownload, std::string>> DownloadTradeBill(std::string bill_date,
                                                                              std::string bill_type,
                                                                              bool gzip);
  // The same bill as reconciliation takes it: downloaded gzip'd and returned so (`raw`; `file` and
  // `parsed` stay empty), after its SHA-1 was checked by inflating it a piece at a time into the
  // digest. The inflated file (about 200 MiB for a million lines) is never held; the import
  // inflates and parses it as it streams.
  boost::asio::awaitable<Result<BillDownload, std::string>> DownloadTradeBillGzip(
      std::string bill_date, std::string bill_type);

  // GET /v3/certificates: decrypts WeChat Pay's platform certificates, checks the reply's signature
  // (with a known key or one of the downloaded certificates) and adds them to the verification
  // keys. Returns how many certificates were installed.
  boost::asio::awaitable<Result<std::size_t, std::string>> RefreshCertificates();

  // The verification keys currently in use.
  std::shared_ptr<const Verifiers> verifiers() const;

 private:
  WechatPayAdapter(WechatPayOptions options, MerchantKey merchant,
                   std::shared_ptr<const Verifiers> verifiers, std::string encrypt_key_id,
                   std::shared_ptr<http::HttpsClient> client);

  std::chrono::system_clock::time_point Now() const;

  struct FetchedBill {
    std::string hash_type, hash_value;  // from the signed /v3/bill/tradebill reply
    std::string raw;                    // the download as it came
  };
  // The signed handle request, then the download from the API host it names.
  boost::asio::awaitable<Result<FetchedBill, std::string>> FetchTradeBill(std::string bill_date,
                                                                         std::string bill_type,
                                                                         bool gzip);

  // Signs and sends one request (path + query `target`); a transport failure or an untrusted reply
  // comes back as the ProviderResult to report.
  boost::asio::awaitable<Result<http::HttpsResponse, ProviderResult>> Call(
      std::string method, std::string target, std::string body, http::Headers extra = {},
      bool signed_reply = true);

  WechatPayOptions options_;
  MerchantKey merchant_;
  std::string encrypt_key_id_;
  std::shared_ptr<http::HttpsClient> client_;
  mutable std::mutex verifiers_mu_;
  std::shared_ptr<const Verifiers> verifiers_;
};

}  // namespace paygate::adapters::wechatpay
