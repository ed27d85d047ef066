#pragma once

// The outbox's delivery rows in PostgreSQL (ledger/migrations/0003_payments.sql: outbox_events,
// event_deliveries) and the statements the dispatcher and the event routes run on them. The
// payment code writes both rows in the transaction of the state change (gateway/payments/store.cc);
// everything here only moves the delivery row. Each function is one statement on the pool, so
// several daemons can run the dispatcher and serve the routes at once.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "config/result.h"
#include "gateway/api/v1/payments.pb.h"
#include "ledger/db/pg_pool.h"

namespace paygate::events::store {

// A delivery claimed by one dispatcher. `lease_us` (next_attempt_at as set by the claim, in
// microseconds since the epoch) is the claim's token: the outcome is recorded only while the row
// still carries it, so a dispatcher whose lease ran out (and whose row another daemon claimed, or
// a client asked to redeliver) cannot overwrite the newer state.
struct Claim {
  std::string event_id;
  std::string principal;
  std::string type;
  std::string payload;
  // Attempts including this one.
  std::int32_t attempts = 0;
  std::int64_t lease_us = 0;
};

// Claims up to `limit` pending deliveries that are due, for events of `principals` (those with a
// webhook), oldest due first: FOR UPDATE SKIP LOCKED, then the lease moves next_attempt_at to
// now + `lease` and counts the attempt, in one statement. A dispatcher that dies mid-delivery
// leaves the row to come due again when the lease ends.
boost::asio::awaitable<Result<std::vector<Claim>>> ClaimDue(
    db::PgPool& pool, const std::vector<std::string>& principals, std::int32_t limit,
    std::chrono::milliseconds lease, db::Deadline deadline);

// What recording an attempt did.
enum class Recorded {
  kDelivered,
  // Failed; the row is pending again and due after the backoff (never after give_up_at).
  kRetry,
  // Failed at or after give_up_at: dead-lettered.
  kDead,
  // The row no longer carries the claim's lease (see Claim); nothing was written.
  kLeaseLost,
};

// A 2xx answer: delivered, with its status and time.
boost::asio::awaitable<Result<Recorded>> RecordDelivered(db::PgPool& pool, const Claim& claim,
                                                         std::int32_t http_status,
                                                         db::Deadline deadline);
// Anything else (`http_status` 0 when there was no answer). `error` says what failed, for
// operators; it must never carry the payload or a secret.
boost::asio::awaitable<Result<Recorded>> RecordFailed(db::PgPool& pool, const Claim& claim,
                                                      std::int32_t http_status,
                                                      std::string_view error,
                                                      std::chrono::milliseconds retry_after,
                                                      db::Deadline deadline);

// One event as listed to its principal.
struct StoredEvent {
  std::string id;
  std::string payload;
  std::string state;
  std::int32_t attempts = 0;
  std::int64_t created_at_us = 0;
};

// The event with its delivery state filled in. The payload is the JSON written by the payment
// code; unknown fields are ignored, so events written by a newer daemon still list.
Result<api::v1::Event> ToApi(const StoredEvent& event);

enum class DeliveredFilter { kAny, kDelivered, kUndelivered };

// Position after the last event of a page: "<created_at_us>.<event id>".
struct Cursor {
  std::int64_t created_at_us = 0;
  std::string id;
};
std::optional<Cursor> ParseCursor(std::string_view text);

struct ListQuery {
  std::string principal;
  // kUndelivered: pending or dead.
  DeliveredFilter filter = DeliveredFilter::kAny;
  std::int32_t limit = 20;
  std::optional<Cursor> after;
};
struct EventPage {
  // Oldest first.
  std::vector<StoredEvent> events;
  // Empty on the last page.
  std::string next_cursor;
};
boost::asio::awaitable<Result<EventPage>> ListEvents(db::PgPool& pool, const ListQuery& query,
                                                     db::Deadline deadline);

// Sets the principal's event back to a fresh delivery: pending, due now, zero attempts, retried
// for `retry_window` from now. Whatever its state (a delivered event is delivered again: the
// client may have lost it). nullopt when the principal has no such event.
boost::asio::awaitable<Result<std::optional<StoredEvent>>> Redeliver(
    db::PgPool& pool, const std::string& principal, const std::string& event_id,
    std::chrono::seconds retry_window, db::Deadline deadline);

}  // namespace paygate::events::store
