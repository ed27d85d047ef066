#pragma once

// Claim payouts (issue 7, DESIGN.md §3 "Claim payout"): create, maker-checker approval, the
// provider calls, callbacks and the janitor's inquiries, on PostgreSQL, through the
// adapters::Adapter interface only.
//
// The rules this file keeps (gateway/payments/service.h is the model):
//  * One payout per (client, client reference): a retried create never makes a second payout.
//  * Beneficiary data is encrypted (keys::FieldCipher) before it reaches the database and decrypted
//    only for the provider call; responses, events and logs carry the masked form only.
//  * The fraud decision comes before any approval; a block fails the payout, a review holds it
//    for an approver.
//  * Approvals come from principals other than the submitter, each at most once; at or above the
//    second threshold two are needed. Nothing reaches a provider before enough approvals.
//  * Never twice: one attempt at a time (a partial unique index backs it); the provider reference
//    is "<payout id>_<seq>", the provider's own idempotency key; an attempt whose answer is
//    unknown is only ever inquired about, never re-sent; a new attempt (possibly on the next
//    route) only after the previous one is provably `not_sent` (a `declined` payout fails).
//  * A provider call happens outside any transaction, between two: the first records the attempt
//    (`sending`, its ledger reservation and the janitor's inquiry), the second the answer.
//  * Still unknown after the inquiry schedule: the manual-resolution queue, with the evidence.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <chrono>
#include <cstdint>
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
#include "gateway/api/v1/payouts.pb.h"
#include "gateway/payments/service.h"
#include "gateway/payouts/beneficiary.h"
#include "gateway/payouts/store.h"
#include "keys/field_cipher.h"
#include "ledger/db/pg_pool.h"
#include "ledger/ledger/postgres_ledger.h"

namespace paygate::fraud {
class RiskService;
}  // namespace paygate::fraud

namespace paygate::payouts {

using payments::ApiError;
using payments::ApiResult;

struct PayoutsOptions {
  std::int64_t amount_min_minor = 1;
  std::int64_t amount_max_minor = 100000000;
  std::set<std::string, std::less<>> currencies;
  std::string callback_base_url;
  std::map<std::string, std::vector<store::Route>, std::less<>> routes;  // By payout method.
  // At or above: one approval; at or above the second: two.
  std::int64_t approval_threshold_minor = 1;
  std::int64_t second_approval_threshold_minor = 1000000000000;
  std::int32_t attempts_max = 3;
  // Delay before each status inquiry; after the last one, the manual queue.
  std::vector<std::chrono::seconds> inquiry_schedule{std::chrono::seconds(60)};
  std::chrono::seconds event_retry_window{259200};
  std::chrono::milliseconds db_timeout{10000};
};

PayoutsOptions PayoutsOptionsFromConfig(const config::v1::Config& config);

struct ListFilter {
  std::optional<std::string> status;
  std::string claim_number;
  std::int32_t limit = 20;
  std::string cursor;
};

// Thread-safety: every member may be called concurrently from any coroutine once attached. The
// pool, ledger, registry and cipher must outlive the service; the cipher may be reloaded
// (keys::ReloadFieldCipher) while the service runs.
class PayoutService {
 public:
  PayoutService(db::PgPool& pool, ledger::PostgresLedger& ledger,
                std::shared_ptr<const payments::AdapterRegistry> adapters,
                std::shared_ptr<const keys::FieldCipher> cipher, PayoutsOptions options);

  const PayoutsOptions& options() const { return options_; }
  // Screens every new payout with the fraud rules; without it nothing is screened.
  void AttachRisk(std::shared_ptr<fraud::RiskService> risk) { risk_ = std::move(risk); }
  // What the payment service needs to hand payout callbacks and janitor tasks over to this one
  // (the callback route and the janitor are shared). The hooks call this service: it must
  // outlive the payment service's use of them.
  payments::PayoutHooks Hooks();

  // The clearing accounts payouts draw on, flagged so they never go below zero (and the rest of
  // the chart), for every currency; idempotent.
  boost::asio::awaitable<Result<void>> EnsureChartOfAccounts();

  // ---- The claims system (role claims): its own payouts. ----
  boost::asio::awaitable<ApiResult<api::v1::Payout>> CreatePayout(
      std::string principal, std::string client_reference, api::v1::CreatePayoutRequest request);
  boost::asio::awaitable<ApiResult<api::v1::Payout>> GetPayout(std::string principal,
                                                               std::string id);
  boost::asio::awaitable<ApiResult<api::v1::ListPayoutsResponse>> ListPayouts(std::string principal,
                                                                              ListFilter filter);
  boost::asio::awaitable<ApiResult<api::v1::Payout>> CancelPayout(std::string principal,
                                                                  std::string id);

  // ---- Approvers. ----
  // Approves or rejects; the last needed approval sends the payout and answers it as it stands.
  boost::asio::awaitable<ApiResult<api::v1::Payout>> DecidePayout(std::string principal,
                                                                  std::string id, bool approve,
                                                                  std::string note);
  // Every client's payouts waiting for approval (requires_review, awaiting_approval).
  boost::asio::awaitable<ApiResult<api::v1::ListPayoutsResponse>> ListAwaitingApproval(
      ListFilter filter);
  // ---- Operators and finance: the manual-resolution queue with its evidence. ----
  boost::asio::awaitable<ApiResult<api::v1::ListPayoutsResponse>> ListManual(ListFilter filter);

  // ---- Callbacks and the janitor (through payments::PayoutHooks). ----
  boost::asio::awaitable<Result<std::string>> ApplyCallbackTx(db::PgConnection& conn,
                                                              std::string provider,
                                                              std::string merchant_account,
                                                              std::string reference,
                                                              adapters::ProviderResult result);
  // Runs a claimed payout task (an inquiry), finishing, rescheduling or moving it to the manual
  // queue.
  boost::asio::awaitable<Result<void>> RunTask(payments::JanitorTask task);

 private:
  boost::asio::awaitable<ApiResult<api::v1::Payout>> View(std::optional<std::string> principal,
                                                          const std::string& id);
  boost::asio::awaitable<ApiResult<api::v1::ListPayoutsResponse>> List(
      std::optional<std::string> principal, std::vector<std::string> statuses, ListFilter filter);
  // Sends `attempt` (and any attempt its answer starts, when it was provably never sent), each
  // followed by the transaction that records its answer.
  boost::asio::awaitable<Result<void>> Send(store::Attempt attempt);
  boost::asio::awaitable<Result<store::Step>> ApplyResult(const std::string& payout_id,
                                                          std::int32_t seq,
                                                          const adapters::ProviderResult& result);
  // Decrypts the beneficiary for one provider call.
  boost::asio::awaitable<Result<adapters::Beneficiary>> OpenBeneficiary(
      const store::Payout& payout);
  store::Policy PolicyFor(std::string_view method) const;
  db::Deadline DbDeadline() const;

  db::PgPool& pool_;
  ledger::PostgresLedger& ledger_;
  std::shared_ptr<const payments::AdapterRegistry> adapters_;
  std::shared_ptr<const keys::FieldCipher> cipher_;
  PayoutsOptions options_;
  payments::store::Books books_;
  std::shared_ptr<fraud::RiskService> risk_;
};

}  // namespace paygate::payouts
