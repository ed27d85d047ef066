#pragma once

// The event routes (issue 4 §9, DESIGN.md §3, §5) on the API listener, role sales, own events only
// (another principal's event id answers 404, as an unknown one does):
//   GET  /v1/events?delivered=true|false&limit=&cursor=   events with their delivery state, OLDEST
//        FIRST (a client catching up replays them in the order they happened, and new events land
//        after the pages already read). delivered=false lists pending and dead ones, true the
//        delivered ones, no parameter all. limit 1..100 (default 20); next_cursor pages on.
//   POST /v1/events/{id}/redeliver   sets the delivery back to pending, due now, with zero
//        attempts and a fresh retry window, whatever its state, and answers the event.
// Answers are JSON (paygate.api.v1.ListEventsResponse / Event) or binary protobuf when the request
// asks for application/x-protobuf.
#include <chrono>
#include <functional>

#include "config/paygate_config.pb.h"
#include "gateway/edge/router.h"
#include "ledger/db/pg_pool.h"

namespace paygate::events {

struct EventRoutesOptions {
  // How long a redelivered event is retried (events.retry_window_s).
  std::chrono::seconds retry_window{259'200};
  // Bound on each database statement (acquire included).
  std::chrono::milliseconds db_timeout{5'000};
};

EventRoutesOptions EventRoutesOptionsFromConfig(const config::v1::Config& config);

// Wraps POST handlers, e.g. with Idempotency-Key enforcement (gateway/idempotency); identity when
// empty.
using PostWrapper = std::function<edge::Handler(edge::Handler)>;

// `pool` must outlive the router.
void AddEventRoutes(edge::Router& router, db::PgPool& pool, EventRoutesOptions options,
                    const PostWrapper& wrap_post);

}  // namespace paygate::events
