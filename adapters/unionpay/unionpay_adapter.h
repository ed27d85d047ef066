#pragma once

// The UnionPay ACP 5.1.0 adapter (adapters/unionpay/PROTOCOL.md): web payments as a signed form the
// payer's browser posts to frontTransReq.do, app payments as a tn from appTransReq.do, queries
// (queryTrans.do), refunds (backTransReq.do, txnType 04), notifications verified through
// UnionPay's certificate chain, and the daily reconciliation file (fileTransReq.do, txnType 76).
//
// UnionPay identifies a transaction by orderId AND txnTime (the time we sent it). The gateway passes
// the attempt's and refund's recorded creation time in every request and reference
// (CreatePaymentRequest::created_at and friends), which becomes the txnTime, so a restart loses
// nothing. Callers that pass no time get the time remembered per reference (a bounded in-memory
// map), else `txn_time_of`. A query, close or refund whose original txnTime is unknown is not sent
// (Outcome::kNotSent).
#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "adapters/adapter.h"
#include "adapters/http/https_client.h"
#include "adapters/unionpay/bill.h"
#include "adapters/unionpay/codec.h"
#include "keys/secret.h"

namespace paygate::adapters::unionpay {

struct UnionPayOptions {
  // https://host[:port] of the gateway (test: https://gateway.test.95516.com), no trailing slash.
  std::string base_url;
  // Host of fileTransReq.do (UnionPay serves it apart, e.g. https://filedownload.test.95516.com);
  // empty: base_url.
  std::string file_base_url;
  // CA file for the gateway's TLS certificate; empty: the system store. Used only when the adapter
  // creates its own client.
  std::string ca_file;
  // Our merchant account (the {merchant_account} of callback URLs) and UnionPay's merId for it.
  std::string merchant_account;
  std::string mer_id;
  // The merchant signing store (.pfx) and its password; certId is its certificate's serial. The
  // store is given either as its bytes (from the keyring) or as a file.
  keys::Secret sign_pfx;
  std::string sign_pfx_file;
  keys::Secret sign_pfx_password;
  // UnionPay's root and middle certificates: what signPubKeyCert must chain to.
  std::string root_cert_file;
  std::string middle_cert_file;
  // The owner the signing certificate's CN must name; test environment: "00040000:SIGN".
  std::string cert_owner = std::string(kProductionCertOwner);
  // frontUrl of web payments: where UnionPay returns the payer's browser.
  std::string front_url;
  // payTimeout of a payment is min(expires_at, txnTime + pay_timeout_max_s). Close relies on it:
  // after payTimeout (plus close_grace_s for UnionPay's own processing) an unpaid order can no
  // longer be paid.
  std::chrono::seconds pay_timeout_max_s{std::chrono::hours(2)};
  std::chrono::seconds close_grace_s{std::chrono::minutes(5)};
  std::chrono::milliseconds connect_timeout_ms{3'000};
  std::chrono::milliseconds request_timeout_ms{10'000};
  // Remembered txnTimes (reference -> txnTime, payTimeout); the oldest are forgotten beyond this.
  std::size_t remembered_orders_max = 100'000;
  // The creation time of the attempt or refund with this reference, if the caller keeps it. Called
  // from any thread, concurrently.
  std::function<std::optional<std::chrono::system_clock::time_point>(std::string_view reference)>
      txn_time_of;
  // Wall clock: txnTime and payTimeout. Empty: the system clock.
  std::function<std::chrono::system_clock::time_point()> clock;
  // The instant certificate validity is judged at; empty: `clock`. Tests pass a past instant for
  // UnionPay's expired test certificates.
  std::function<std::chrono::system_clock::time_point()> cert_clock;
  // respCode -> unified decline code.
  ErrorCodeTable error_codes = DefaultErrorCodes();
};

// Thread-safe: all methods may run concurrently.
class UnionPayAdapter final : public Adapter {
 public:
  static Result<std::unique_ptr<UnionPayAdapter>, std::string> Create(
      UnionPayOptions options, std::shared_ptr<http::HttpsClient> client = nullptr);

  std::string_view provider() const override { return "unionpay"; }

  // unionpay_web: no call is made; the result is pending with next_action ("html_form", a page
  // that auto-posts the signed form to frontTransReq.do). unionpay_app: appTransReq.do; pending
  // with ("unionpay_tn", tn).
  boost::asio::awaitable<ProviderResult> CreatePayment(CreatePaymentRequest request) override;
  // A failed consume reads as pending until the order's payTimeout (+ grace) has passed: until then
  // the payer can still pay the same order. Callbacks follow the same rule.
  boost::asio::awaitable<ProviderResult> QueryPayment(PaymentRef ref) override;
  // UnionPay cannot close an unpaid order; an order stops being payable at its payTimeout. So:
  // query; paid -> declined (already_paid); unpaid, failed or never submitted and past
  // payTimeout + grace -> succeeded; otherwise declined (not_closable_yet). Never a revoke
  // (txnType 31 reverses a paid same-day consume: that moves money and is a refund's job).
  boost::asio::awaitable<ProviderResult> ClosePayment(PaymentRef ref) override;
  // Queries the payment for its queryId (origQryId), then backTransReq txnType 04.
  boost::asio::awaitable<ProviderResult> Refund(RefundRequest request) override;
  boost::asio::awaitable<ProviderResult> QueryRefund(RefundRef ref) override;

  Result<CallbackEvent, std::string> VerifyCallback(const CallbackRequest& request) const override;
  // 200 (UnionPay's only success signal) or 503.
  CallbackAck AckCallback(bool accepted) const override;

  // The reconciliation file for `settle_date` (YYYYMMDD; UnionPay is asked for MMDD).
  boost::asio::awaitable<Result<BillDownload, std::string>> DownloadBill(std::string settle_date);

  // The web form's target, for documentation and tests.
  std::string FrontTransUrl() const;

 private:
  UnionPayAdapter(UnionPayOptions options, std::shared_ptr<http::HttpsClient> client, Signer signer,
                  Trust trust);

  struct OrderTimes {
    std::string txn_time;
    std::optional<std::chrono::system_clock::time_point> pay_timeout;
  };

  std::chrono::system_clock::time_point Now() const;
  std::chrono::system_clock::time_point CertNow() const;
  // The txnTime a reference was (or is to be) sent with: `recorded` when given, else remembered,
  // else txn_time_of, else now when `create` (nullopt otherwise).
  std::optional<OrderTimes> TimesOf(const std::string& reference,
                                    std::chrono::system_clock::time_point recorded, bool create);
  void Remember(const std::string& reference, OrderTimes times);
  // When the consume sent at `txn_time` stops being payable (payTimeout, or its upper bound
  // txnTime + pay_timeout_max_s when not remembered), plus close_grace_s.
  std::chrono::system_clock::time_point PayableUntil(const std::string& reference,
                                                     std::string_view txn_time) const;
  // A failed consume is final only once it can no longer be paid: before that the payer may still
  // pay the same order (another card on UnionPay's page), so the failure reads as pending.
  ProviderResult FinalOnlyWhenUnpayable(ProviderResult result, const std::string& reference,
                                        std::string_view txn_time) const;

  struct Reply {
    std::optional<ProviderResult> failed;  // set when the call gave no usable verified reply
    Fields fields;
  };
  // Signs and posts `fields`, verifies the reply's signature and its echo of merId/orderId/txnTime.
  boost::asio::awaitable<Reply> Call(std::string url, Fields fields);
  struct QueryResult {
    ProviderResult result;
    // The query's own respCode when a verified reply came ("34": no such transaction).
    std::string resp_code;
  };
  boost::asio::awaitable<QueryResult> Query(std::string order_id, std::string txn_time,
                                            std::string expect_txn_type);

  UnionPayOptions options_;
  std::shared_ptr<http::HttpsClient> client_;
  Signer signer_;
  Trust trust_;

  mutable std::mutex mu_;
  std::list<std::string> order_;  // oldest first
  std::unordered_map<std::string, std::pair<OrderTimes, std::list<std::string>::iterator>> times_;
};

}  // namespace paygate::adapters::unionpay
