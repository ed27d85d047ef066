#pragma once

// Premium collections (DESIGN.md §3, issue 4): orders, attempts, refunds, provider callbacks and
// the janitor's work, on PostgreSQL, through the adapters::Adapter interface only.
//
// The rules this file keeps:
//  * One order per (client, client reference): a retried create never makes a second order.
//  * Every state change goes through the transition tables (state.h) inside a transaction that
//    holds the order's row lock (SELECT ... FOR UPDATE): the API, callbacks and the janitor are
//    serialised per order, never globally.
//  * A provider call happens outside any transaction, between two: the first records the intent
//    (attempt `sending`, a janitor task to inquire if we crash), the second records the answer.
//  * The ledger posting of a success, the state change and the outbox event commit in the same
//    transaction (PostgresLedger::PostTransfersInTransaction); transfer ids are derived from the
//    order/refund id, so a second application can only answer `exists`.
//  * `unknown` is never shown as failed: the order stays `processing` until an inquiry knows.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "adapters/adapter.h"
#include "config/paygate_config.pb.h"
#include "config/result.h"
#include "gateway/api/v1/payments.pb.h"
#include "gateway/payments/state.h"
#include "gateway/payments/store.h"
#include "ledger/db/pg_pool.h"
#include "ledger/ledger/postgres_ledger.h"

namespace paygate::fraud {
class RiskService;
struct Verdict;
}  // namespace paygate::fraud

namespace paygate::payments {

// A refusal the API shows to the client: HTTP status and the error body's fields (DESIGN.md §5).
struct ApiError {
  unsigned status = 500;
  std::string type;
  std::string code;
  std::string message;
  std::string param;
};
template <class T>
using ApiResult = outcome::result<T, ApiError, outcome::policy::terminate>;

// Provider accounts by (provider, merchant account). Filled at start-up, immutable afterwards.
class AdapterRegistry {
 public:
  void Add(std::string merchant_account, std::shared_ptr<adapters::Adapter> adapter);
  adapters::Adapter* Find(std::string_view provider, std::string_view merchant_account) const;
  // Every (provider, merchant account), e.g. for the chart of accounts.
  std::vector<std::pair<std::string, std::string>> Accounts() const;

 private:
  std::map<std::pair<std::string, std::string>, std::shared_ptr<adapters::Adapter>, std::less<>>
      adapters_;
};

struct PaymentsOptions {
  std::int64_t amount_min_minor = 1;
  std::int64_t amount_max_minor = 100000000;
  std::set<std::string, std::less<>> currencies;
  std::chrono::seconds order_ttl{1800};
  std::string callback_base_url;
  struct Route {
    std::string provider;
    std::string merchant_account;
  };
  std::map<std::string, Route, std::less<>> routes;  // By payment method.
  std::chrono::milliseconds provider_timeout{10000};
  std::chrono::milliseconds db_timeout{10000};
  // Janitor: inquiries without a final answer before a task goes to manual resolution.
  std::uint32_t inquiries_max = 12;
  // How long an event's delivery is retried before it is dead (events.retry_window_s).
  std::chrono::seconds event_retry_window{259200};
  // Clearing accounts payouts draw on (payouts.routes): created refusing credits beyond their
  // debits, so a payout never exceeds what the account was funded with (DESIGN.md §4).
  std::set<std::pair<std::string, std::string>> payout_clearing;
  // Group commit of new orders (issue 4): concurrent creates share one transaction of multi-row
  // statements, at most this many orders each. No wait is added: a batch forms from the creates
  // that queued while the previous one committed, and a lone create commits at once.
  std::size_t intent_batch_max = 256;
  // Creates queued for that transaction beyond which a create answers 503 at once.
  std::size_t intent_queue_max = 10000;
};

PaymentsOptions PaymentsOptionsFromConfig(const config::v1::Config& config);

struct ListFilter {
  std::string policy_number;
  std::optional<OrderStatus> status;
  std::optional<std::int64_t> created_from_us;  // Inclusive, epoch microseconds.
  std::optional<std::int64_t> created_to_us;    // Exclusive.
  std::int32_t limit = 20;
  std::string cursor;  // From a previous page's next_cursor.
};

// What the callback route answers the provider, and whether it was stored.
struct CallbackReply {
  adapters::CallbackAck ack;
  bool verified = false;
  bool duplicate = false;
  std::int64_t callback_id = 0;  // Set when stored (not a duplicate): apply it with ApplyCallback.
  std::string error;             // Why it was rejected, for logs and metrics.
};

// One claimed janitor task.
struct JanitorTask {
  std::string kind;
  std::string object_id;
  std::int32_t attempts = 0;
};

// What the payout service (gateway/payouts) plugs into the shared callback route and janitor.
struct PayoutHooks {
  // Applies a verified payout callback inside its transaction.
  store::PayoutCallbackTx apply_callback;
  // Runs a claimed janitor task whose kind starts with "payout_", rescheduling it itself.
  std::function<boost::asio::awaitable<Result<void>>(JanitorTask)> run_task;
};

// Thread-safety: every member may be called concurrently from any coroutine. The pool, ledger and
// registry must outlive the service.
class PaymentService {
 public:
  PaymentService(db::PgPool& pool, ledger::PostgresLedger& ledger,
                 std::shared_ptr<const AdapterRegistry> adapters, PaymentsOptions options);
  // Creates still waiting for their order's transaction answer 503 (nothing of them is written);
  // destroy the service only once its callers are drained.
  ~PaymentService();
  PaymentService(const PaymentService&) = delete;
  PaymentService& operator=(const PaymentService&) = delete;

  const PaymentsOptions& options() const { return options_; }

  // Screens every new payment with the fraud rules (DESIGN.md §3: the decision comes before any
  // provider call). Call before the service takes requests; without it nothing is screened.
  void AttachRisk(std::shared_ptr<fraud::RiskService> risk) { risk_ = std::move(risk); }
  // Hands payout callbacks and payout janitor tasks to the payout service. Call before the
  // service takes requests; without it payout callbacks are stored unapplied and payout tasks
  // wait.
  void AttachPayouts(PayoutHooks hooks);

  // The ledger accounts the collections post to, for every currency and provider account; created
  // idempotently at start-up.
  boost::asio::awaitable<Result<void>> EnsureChartOfAccounts();

  // ---- The sales platform's API. `principal` scopes every read and write. ----
  // `provider_time`, when given, receives the time spent waiting for the provider (the gateway's
  // own processing time is the rest; the route reports it in Paygate-Gateway-Time-Us).
  boost::asio::awaitable<ApiResult<api::v1::Payment>> CreatePayment(
      std::string principal, std::string client_reference, api::v1::CreatePaymentRequest request,
      std::chrono::microseconds* provider_time = nullptr);
  boost::asio::awaitable<ApiResult<api::v1::Payment>> GetPayment(std::string principal,
                                                                 std::string id);
  boost::asio::awaitable<ApiResult<api::v1::ListPaymentsResponse>> ListPayments(
      std::string principal, ListFilter filter);
  boost::asio::awaitable<ApiResult<api::v1::Payment>> ClosePayment(std::string principal,
                                                                   std::string id);
  boost::asio::awaitable<ApiResult<api::v1::Refund>> CreateRefund(
      std::string principal, std::string client_reference, std::string payment_id,
      api::v1::CreateRefundRequest request);
  boost::asio::awaitable<ApiResult<api::v1::Refund>> GetRefund(std::string principal,
                                                               std::string id);

  // ---- The review queue (role risk). ----
  // Resolves the review holding a payment: approved, the payment is sent to the provider as a
  // create would have sent it (it answers as it stands afterwards); declined, it fails with
  // `risk_declined`. `principal` must not be the one who submitted the payment (403), the review
  // must be open (409). Review and order change in one transaction.
  struct ReviewResolution {
    api::v1::Payment payment;
    std::string review_status;
  };
  boost::asio::awaitable<ApiResult<ReviewResolution>> ResolveReview(std::string principal,
                                                                    std::string review_id,
                                                                    bool approve, std::string note);

  // ---- Provider callbacks: verify, store with a unique key, answer; apply afterwards. ----
  boost::asio::awaitable<CallbackReply> ReceiveCallback(std::string provider,
                                                        adapters::CallbackRequest request);
  // Applies a stored callback exactly once (a no-op when already applied).
  boost::asio::awaitable<Result<void>> ApplyCallback(std::int64_t callback_id);

  // ---- The janitor (gateway/payments/janitor.h drives these). ----
  // Claims up to `limit` due tasks, leasing each for `lease` (a crashed claimer's task comes due
  // again); FOR UPDATE SKIP LOCKED, so any number of daemons may claim concurrently.
  boost::asio::awaitable<Result<std::vector<JanitorTask>>> ClaimTasks(std::int32_t limit,
                                                                      std::chrono::seconds lease);
  // Runs one claimed task: status inquiry, expiry, or applying a callback. Reschedules it with
  // backoff when it did not reach a final answer, and moves it to manual resolution after
  // options().inquiries_max tries.
  boost::asio::awaitable<Result<void>> RunTask(JanitorTask task);
  // Deletes expired API nonces and idempotency records (kept at least 7 days); returns how many.
  boost::asio::awaitable<Result<std::int64_t>> PurgeExpired();

 private:
  struct OrderRow;
  struct RefundRow;
  struct IntentQueue;  // The group commit of new orders (service.cc).

  boost::asio::awaitable<ApiResult<OrderRow>> LoadOrder(const std::string& principal,
                                                        const std::string& id);
  // Records a provider answer about attempt `seq` of `order_id` (transition tables, ledger,
  // outbox, janitor schedule) in one transaction; `order_after`, when given, receives the order
  // as that transaction committed it.
  boost::asio::awaitable<Result<void>> ApplyPaymentResult(const std::string& order_id,
                                                          std::int32_t seq,
                                                          const adapters::ProviderResult& result,
                                                          bool closing,
                                                          store::Order* order_after = nullptr);
  boost::asio::awaitable<Result<void>> ApplyRefundResult(const std::string& refund_id,
                                                         const adapters::ProviderResult& result);
  boost::asio::awaitable<Result<bool>> InquireAttempt(const std::string& provider_reference);
  boost::asio::awaitable<Result<bool>> InquireRefund(const std::string& refund_id);
  boost::asio::awaitable<Result<bool>> ExpireOrder(const std::string& order_id);

  // Screens a new order (fraud rules); stores it stopped when blocked or held. Returns the
  // answer when the flow ends here, nullopt when the order may go on to the provider (then
  // `*screened` holds the verdict to store with it).
  boost::asio::awaitable<std::optional<ApiResult<api::v1::Payment>>> Screen(
      const std::string& principal, const api::v1::CreatePaymentRequest& request,
      store::Order& order, std::shared_ptr<fraud::Verdict>* screened);
  // The first provider call of an order already stored in `processing` with attempt 1
  // (`sending`), then its answer; returns the payment as it stands.
  boost::asio::awaitable<ApiResult<api::v1::Payment>> SendFirstAttempt(
      adapters::Adapter* adapter, store::Order order,
      std::chrono::system_clock::time_point expires_at, std::string principal,
      std::chrono::microseconds* provider_time);

  db::Deadline DbDeadline() const;
  std::string NotifyUrl(std::string_view provider, std::string_view merchant_account) const;

  db::PgPool& pool_;
  ledger::PostgresLedger& ledger_;
  std::shared_ptr<const AdapterRegistry> adapters_;
  PaymentsOptions options_;
  store::Books books_;
  std::shared_ptr<fraud::RiskService> risk_;
  std::function<boost::asio::awaitable<Result<void>>(JanitorTask)> payout_tasks_;
  std::unique_ptr<IntentQueue> intents_;
};

}  // namespace paygate::payments
