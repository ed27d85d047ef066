#pragma once

// The collections' rows in PostgreSQL (ledger/migrations/0003_payments.sql) and the transactions
// that change them. PaymentService (service.h) calls providers between these transactions; every
// function here is one transaction (on the pool) or one step inside a caller's (`...Tx`, on a
// connection). Lock order, the same everywhere: the order row, then its refund row, then the
// ledger (chain head, accounts). Nothing locks an order while holding a ledger lock, so the API,
// callbacks and the janitor never deadlock each other.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "adapters/adapter.h"
#include "config/result.h"
#include "gateway/api/v1/payments.pb.h"
#include "ledger/db/pg_pool.h"
#include "ledger/ledger/postgres_ledger.h"

namespace paygate::payments {

struct JanitorTask;

namespace store {

struct Order {
  std::string id;
  std::string principal;
  std::string client_reference;
  std::string policy_number;
  std::string payer_id;
  std::string description;
  std::int64_t amount_minor = 0;
  std::string currency;
  std::string method;
  std::string provider;
  std::string merchant_account;
  std::string status;
  std::int64_t captured_minor = 0;
  std::int64_t refund_reserved_minor = 0;
  std::int64_t refunded_minor = 0;
  std::string failure_code;
  std::string failure_message;
  std::string next_action_type;
  std::string next_action_value;
  std::int32_t attempt_count = 0;
  std::int64_t expires_at_us = 0;
  std::int64_t created_at_us = 0;
  std::int64_t updated_at_us = 0;
  // Only when creating: why the route was chosen, stored on the first attempt.
  std::string routing_reason;
};

struct Attempt {
  std::string order_id;
  std::int32_t seq = 0;
  std::string provider;
  std::string merchant_account;
  std::string provider_reference;
  std::string status;
  std::int64_t created_at_us = 0;
};

struct Refund {
  std::string id;
  std::string order_id;
  std::string principal;
  std::string client_reference;
  std::int64_t amount_minor = 0;
  std::string currency;
  std::string reason;
  std::string status;
  std::string provider_reference;
  std::string failure_code;
  std::string failure_message;
  std::int64_t created_at_us = 0;
  std::int64_t updated_at_us = 0;
};

// "<prefix><24 lower-case base32 characters>" from 120 random bits (OpenSSL's CSPRNG): ids are
// unguessable, so knowing one id tells nothing about another.
std::string NewId(std::string_view prefix);
// The provider reference of attempt `seq` of an order: "<order id>_<seq>" (DESIGN.md §4).
std::string AttemptReference(std::string_view order_id, std::int32_t seq);
std::optional<std::pair<std::string, std::int32_t>> ParseAttemptReference(std::string_view ref);

api::v1::Payment ToApi(const Order& order);
api::v1::Refund ToApi(const Refund& refund);

struct InsertedOrder {
  bool inserted = false;
  Order order;  // The new order, or the one the client reference already names.
};
// A step the caller adds to a store transaction (e.g. recording the fraud decision about the
// object in the same commit).
using TxHook = std::function<boost::asio::awaitable<Result<void>>(db::PgConnection&)>;

// Transaction: the order, its first attempt (`sending`) and the janitor's safety net (an inquiry
// in case we never record the provider's answer, and the expiry) - or the existing order. `also`,
// when given, runs in the same transaction after a new order was inserted.
boost::asio::awaitable<Result<InsertedOrder>> InsertOrder(db::PgPool& pool, const Order& order,
                                                          db::Deadline deadline,
                                                          const TxHook& also = {});
// One order's intent, as InsertOrder takes it.
struct OrderIntent {
  Order order;
  TxHook also;
};
// InsertOrder for many orders in one transaction (group commit, DESIGN.md §4): one multi-row
// statement each for the orders, their attempts and their janitor tasks, then each inserted
// order's `also` in turn. Answers in the intents' order. Two intents naming one client reference:
// the first is inserted, the second answers with it (inserted = false), as a retry would.
boost::asio::awaitable<Result<std::vector<InsertedOrder>>> InsertOrders(
    db::PgPool& pool, std::span<const OrderIntent> intents, db::Deadline deadline);
// What the payer's and the policy's history say, for the fraud rules: when the payer was first
// seen (any client), and what the principal's orders for the policy captured and when the first
// one was made. Times in Unix microseconds; nullopt when there is no history.
struct PayerHistory {
  std::optional<std::int64_t> payer_first_seen_us;
  std::optional<std::int64_t> policy_first_order_us;
  std::int64_t policy_captured_minor = 0;
};
boost::asio::awaitable<Result<PayerHistory>> ReadPayerHistory(
    db::PgPool& pool, const std::string& principal, const std::string& payer_id,
    const std::string& policy_number, const std::string& currency, db::Deadline deadline);
// The principal's order, or nullopt (also for another principal's id).
boost::asio::awaitable<Result<std::optional<Order>>> FindOrder(db::PgPool& pool,
                                                               const std::string& principal,
                                                               const std::string& id,
                                                               db::Deadline deadline);
boost::asio::awaitable<Result<std::optional<Order>>> FindOrderByClientReference(
    db::PgPool& pool, const std::string& principal, const std::string& client_reference,
    db::Deadline deadline);
boost::asio::awaitable<Result<std::optional<Order>>> FindOrderById(db::PgPool& pool,
                                                                   const std::string& id,
                                                                   db::Deadline deadline);
boost::asio::awaitable<Result<std::optional<Attempt>>> FindAttempt(db::PgPool& pool,
                                                                   const std::string& order_id,
                                                                   std::int32_t seq,
                                                                   db::Deadline deadline);

struct Cursor {
  std::int64_t created_at_us = 0;
  std::string id;
};
std::optional<Cursor> ParseCursor(std::string_view text);

struct ListQuery {
  std::string principal;
  std::string policy_number;
  std::string status;
  std::optional<std::int64_t> created_from_us;
  std::optional<std::int64_t> created_to_us;
  std::int32_t limit = 20;
  std::optional<Cursor> after;
};
struct OrderPage {
  std::vector<Order> orders;
  std::string next_cursor;
};
boost::asio::awaitable<Result<OrderPage>> ListOrders(db::PgPool& pool, const ListQuery& query,
                                                     db::Deadline deadline);

boost::asio::awaitable<Result<std::optional<Refund>>> FindRefund(db::PgPool& pool,
                                                                 const std::string& principal,
                                                                 const std::string& id,
                                                                 db::Deadline deadline);
// A refund with its order, whoever owns it (for the janitor).
boost::asio::awaitable<Result<std::optional<std::pair<Refund, Order>>>> FindRefundForProvider(
    db::PgPool& pool, const std::string& id, db::Deadline deadline);

enum class ReserveOutcome {
  kReserved,
  kExisting,
  kNoSuchPayment,
  kNotSucceeded,
  kExceedsRefundable
};
struct Reservation {
  ReserveOutcome outcome = ReserveOutcome::kNoSuchPayment;
  Refund refund;
  Order order;
  std::int64_t refundable_minor = 0;
};
// Transaction, under the order's lock: the refundable amount (captured minus refunds that have not
// failed) is re-checked and the refund reserved against it, so concurrent refunds never exceed the
// captured amount. `amount_minor` 0 means everything refundable.
boost::asio::awaitable<Result<Reservation>> ReserveRefund(
    db::PgPool& pool, const std::string& principal, const std::string& client_reference,
    const std::string& payment_id, std::int64_t amount_minor, const std::string& reason,
    db::Deadline deadline);

// What a state change writes besides its own rows: the ledger posting and the outbox event,
// whose delivery is retried for `event_retry_window` (events.retry_window_s) before it is dead.
// `payout_callback`, when set (gateway/payouts), applies a verified payout callback about
// `reference` from (provider, merchant account) inside the callback's transaction.
using PayoutCallbackTx = std::function<boost::asio::awaitable<Result<std::string>>(
    db::PgConnection&, std::string provider, std::string merchant_account, std::string reference,
    adapters::ProviderResult result)>;
struct Books {
  ledger::PostgresLedger& ledger;
  std::chrono::seconds event_retry_window{259200};
  PayoutCallbackTx payout_callback = {};
};

// Transaction: a new order the fraud rules stopped before any provider call, in `order.status`:
// "failed" (blocked, with order.failure_code/message and its payment.failed outbox event) or
// "requires_review" (held, with its payment.requires_review event). No attempt, no janitor task.
// Or the existing order of that client reference. `also` as above.
boost::asio::awaitable<Result<InsertedOrder>> InsertStoppedOrder(db::PgPool& pool,
                                                                 const Books& books,
                                                                 const Order& order,
                                                                 db::Deadline deadline,
                                                                 const TxHook& also = {});
// Inside a transaction: a held order (requires_review) is released towards the provider: it
// becomes `processing` with its first attempt (`sending`), its inquiry and its new expiry, exactly
// as InsertOrder would have made it. Returns the order after the change.
boost::asio::awaitable<Result<Order>> ReleaseHeldOrderTx(db::PgConnection& conn,
                                                         const std::string& order_id,
                                                         const std::string& routing_reason,
                                                         std::int64_t expires_at_us,
                                                         db::Deadline deadline);
// Inside a transaction: a held order fails (declined by review), with its outbox event.
boost::asio::awaitable<Result<Order>> FailHeldOrderTx(db::PgConnection& conn, const Books& books,
                                                      const std::string& order_id,
                                                      const std::string& failure_code,
                                                      const std::string& failure_message,
                                                      db::Deadline deadline);
// Inside a transaction: the order row, locked (FOR UPDATE), whoever owns it.
boost::asio::awaitable<Result<std::optional<Order>>> LockOrderTx(db::PgConnection& conn,
                                                                 const std::string& id,
                                                                 db::Deadline deadline);

// Inside a transaction: records a provider answer about an attempt (`closing`: the answer is to a
// close request, whose success means closed). Applies the transition tables to the attempt and,
// when it is the order's current attempt, to the order; posts the ledger entry of a success and
// writes the outbox event. Returns what it did ("no effect" when the answer changed nothing);
// `order_after`, when given, receives the order as this transaction leaves it (the caller that
// answers with it saves reading it again once committed).
boost::asio::awaitable<Result<std::string>> ApplyPaymentResultTx(
    db::PgConnection& conn, const Books& books, const std::string& order_id, std::int32_t seq,
    const adapters::ProviderResult& result, bool closing, db::Deadline deadline,
    Order* order_after = nullptr);
boost::asio::awaitable<Result<std::string>> ApplyRefundResultTx(
    db::PgConnection& conn, const Books& books, const std::string& refund_id,
    const adapters::ProviderResult& result, db::Deadline deadline);

// Transaction: stores a verified callback under its unique key and schedules its application.
// Returns the new row's id, or 0 when the same callback was already stored.
boost::asio::awaitable<Result<std::int64_t>> StoreCallback(db::PgPool& pool,
                                                           const std::string& provider,
                                                           const adapters::CallbackRequest& request,
                                                           const adapters::CallbackEvent& event,
                                                           db::Deadline deadline);
// Inside a transaction: applies a stored callback once.
boost::asio::awaitable<Result<void>> ApplyCallbackTx(db::PgConnection& conn, const Books& books,
                                                     std::int64_t callback_id,
                                                     db::Deadline deadline);

boost::asio::awaitable<Result<std::vector<JanitorTask>>> ClaimTasks(db::PgPool& pool,
                                                                    std::int32_t limit,
                                                                    std::chrono::seconds lease,
                                                                    db::Deadline deadline);
boost::asio::awaitable<Result<void>> FinishTask(db::PgPool& pool, const std::string& kind,
                                                const std::string& object_id,
                                                db::Deadline deadline);
boost::asio::awaitable<Result<void>> RescheduleTask(db::PgPool& pool, const std::string& kind,
                                                    const std::string& object_id,
                                                    std::chrono::seconds delay, bool manual,
                                                    const std::string& error,
                                                    db::Deadline deadline);

}  // namespace store
}  // namespace paygate::payments
