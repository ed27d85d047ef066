#include "gateway/events/event_store.h"

#include <charconv>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include "ledger/db/errc.h"
#include "ledger/db/params.h"
#include "ledger/db/pg_result.h"
#include "ledger/ledger/try.h"

namespace paygate::events::store {
namespace {

namespace asio = boost::asio;
using db::Params;
using db::PgResult;
using db::Statement;

#define PAYGATE_EVENTS_US(n) "timestamptz 'epoch' + $" #n "::bigint * interval '1 microsecond'"
#define PAYGATE_EVENTS_EPOCH_US(column) "(extract(epoch FROM " column ") * 1000000)::bigint"

// The inner SELECT picks and locks the due rows other dispatchers have not locked; the outer
// UPDATE leases them. A row another dispatcher leased meanwhile is re-checked against the WHERE
// clause after the lock and dropped, so no delivery is claimed twice.
constexpr Statement kClaimDue{
    "events_claim_due",
    "UPDATE event_deliveries d "
    "SET next_attempt_at = now() + $2::bigint * interval '1 millisecond', attempts = d.attempts + "
    "1 "
    "FROM (SELECT d2.event_id FROM event_deliveries d2 JOIN outbox_events e2 ON e2.id = "
    "d2.event_id "
    "      WHERE d2.state = 'pending' AND d2.next_attempt_at <= now() "
    "        AND e2.principal = ANY ($3::text[]) "
    "      ORDER BY d2.next_attempt_at LIMIT $1 FOR UPDATE OF d2 SKIP LOCKED) c, "
    "     outbox_events e "
    "WHERE d.event_id = c.event_id AND e.id = d.event_id "
    "RETURNING d.event_id, e.principal, e.type, e.payload, d.attempts, " PAYGATE_EVENTS_EPOCH_US(
        "d.next_attempt_at")};

constexpr Statement kRecordDelivered{
    "events_record_delivered",
    "UPDATE event_deliveries SET state = 'delivered', delivered_at = now(), last_status = $3, "
    "last_error = '' "
    "WHERE event_id = $1 AND state = 'pending' AND next_attempt_at = " PAYGATE_EVENTS_US(2)};

// The next attempt is never later than give_up_at, so the last one happens at the give-up instant;
// its failure dead-letters the row.
constexpr Statement kRecordFailed{
    "events_record_failed",
    "UPDATE event_deliveries SET last_status = $3, last_error = $4, "
    "state = CASE WHEN now() >= give_up_at THEN 'dead' ELSE 'pending' END, "
    "next_attempt_at = LEAST(now() + $5::bigint * interval '1 millisecond', give_up_at) "
    "WHERE event_id = $1 AND state = 'pending' AND next_attempt_at = " PAYGATE_EVENTS_US(2) " "
    "RETURNING state"};

#define PAYGATE_EVENT_COLUMNS \
  "e.id, e.payload, d.state, d.attempts, " PAYGATE_EVENTS_EPOCH_US("e.created_at")

// Oldest first: a client catching up processes events in the order they happened, and new events
// append after the last page instead of shifting the pages already read.
constexpr Statement kListEvents{
    "events_list",
    "SELECT " PAYGATE_EVENT_COLUMNS
    " FROM outbox_events e JOIN event_deliveries d ON d.event_id = e.id "
    "WHERE e.principal = $1 "
    "AND ($2 = '' OR (d.state = 'delivered') = ($2 = 'delivered')) "
    "AND ($3::bigint IS NULL OR (e.created_at, e.id) > (" PAYGATE_EVENTS_US(3) ", $4)) "
    "ORDER BY e.created_at, e.id LIMIT $5"};

constexpr Statement kRedeliver{
    "events_redeliver",
    "UPDATE event_deliveries d SET state = 'pending', attempts = 0, next_attempt_at = now(), "
    "give_up_at = now() + $3::bigint * interval '1 second', delivered_at = NULL "
    "FROM outbox_events e WHERE e.id = d.event_id AND e.id = $1 AND e.principal = $2 "
    "RETURNING " PAYGATE_EVENT_COLUMNS};

// A PostgreSQL array literal of text values, each quoted, so no name can break out of it.
std::string TextArray(const std::vector<std::string>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.push_back('"');
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

Result<std::int32_t> Int32(const PgResult& r, int row, int col) {
  LEDGER_TRY(auto value, r.GetInt64(row, col));
  if (value < INT32_MIN || value > INT32_MAX) return make_error_code(db::Errc::bad_value);
  return static_cast<std::int32_t>(value);
}

Result<StoredEvent> ParseEvent(const PgResult& r, int row) {
  StoredEvent event;
  LEDGER_TRY(auto id, r.GetText(row, 0));
  event.id = id;
  LEDGER_TRY(auto payload, r.GetText(row, 1));
  event.payload = payload;
  LEDGER_TRY(auto state, r.GetText(row, 2));
  event.state = state;
  LEDGER_TRY(event.attempts, Int32(r, row, 3));
  LEDGER_TRY(event.created_at_us, r.GetInt64(row, 4));
  return event;
}

}  // namespace

asio::awaitable<Result<std::vector<Claim>>> ClaimDue(db::PgPool& pool,
                                                     const std::vector<std::string>& principals,
                                                     std::int32_t limit,
                                                     std::chrono::milliseconds lease,
                                                     db::Deadline deadline) {
  std::vector<Claim> claims;
  if (principals.empty() || limit <= 0) co_return claims;
  LEDGER_CO_TRY(auto conn, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(auto rows, co_await conn->Execute(kClaimDue,
                                                  Params()
                                                      .Add(limit)
                                                      .Add(static_cast<std::int64_t>(lease.count()))
                                                      .AddUntyped(TextArray(principals)),
                                                  deadline));
  for (int row = 0; row < rows.rows(); ++row) {
    Claim claim;
    LEDGER_CO_TRY(auto event_id, rows.GetText(row, 0));
    claim.event_id = event_id;
    LEDGER_CO_TRY(auto principal, rows.GetText(row, 1));
    claim.principal = principal;
    LEDGER_CO_TRY(auto type, rows.GetText(row, 2));
    claim.type = type;
    LEDGER_CO_TRY(auto payload, rows.GetText(row, 3));
    claim.payload = payload;
    LEDGER_CO_TRY(claim.attempts, Int32(rows, row, 4));
    LEDGER_CO_TRY(claim.lease_us, rows.GetInt64(row, 5));
    claims.push_back(std::move(claim));
  }
  co_return claims;
}

asio::awaitable<Result<Recorded>> RecordDelivered(db::PgPool& pool, const Claim& claim,
                                                  std::int32_t http_status, db::Deadline deadline) {
  LEDGER_CO_TRY(auto conn, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(auto done,
                co_await conn->Execute(
                    kRecordDelivered,
                    Params().Add(claim.event_id).Add(claim.lease_us).Add(http_status), deadline));
  co_return done.affected_rows() == 1 ? Recorded::kDelivered : Recorded::kLeaseLost;
}

asio::awaitable<Result<Recorded>> RecordFailed(db::PgPool& pool, const Claim& claim,
                                               std::int32_t http_status, std::string_view error,
                                               std::chrono::milliseconds retry_after,
                                               db::Deadline deadline) {
  LEDGER_CO_TRY(auto conn, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(auto rows,
                co_await conn->Execute(kRecordFailed,
                                       Params()
                                           .Add(claim.event_id)
                                           .Add(claim.lease_us)
                                           .Add(http_status)
                                           .Add(error)
                                           .Add(static_cast<std::int64_t>(retry_after.count())),
                                       deadline));
  if (rows.rows() != 1) co_return Recorded::kLeaseLost;
  LEDGER_CO_TRY(auto state, rows.GetText(0, 0));
  co_return state == "dead" ? Recorded::kDead : Recorded::kRetry;
}

Result<api::v1::Event> ToApi(const StoredEvent& stored) {
  api::v1::Event event;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(stored.payload, &event, options).ok()) {
    return make_error_code(db::Errc::bad_value);
  }
  // The row is the authority on identity; the payload only describes the object.
  event.set_id(stored.id);
  event.set_delivery_state(stored.state);
  event.set_delivery_attempts(stored.attempts);
  return event;
}

std::optional<Cursor> ParseCursor(std::string_view text) {
  const auto dot = text.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  Cursor cursor;
  const char* end = text.data() + dot;
  const auto [ptr, ec] = std::from_chars(text.data(), end, cursor.created_at_us);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  cursor.id = std::string(text.substr(dot + 1));
  if (!cursor.id.starts_with("evt_")) return std::nullopt;
  return cursor;
}

asio::awaitable<Result<EventPage>> ListEvents(db::PgPool& pool, const ListQuery& query,
                                              db::Deadline deadline) {
  Params params;
  params.Add(query.principal);
  switch (query.filter) {
    case DeliveredFilter::kAny:
      params.Add("");
      break;
    case DeliveredFilter::kDelivered:
      params.Add("delivered");
      break;
    case DeliveredFilter::kUndelivered:
      params.Add("undelivered");
      break;
  }
  if (query.after) {
    params.Add(query.after->created_at_us).Add(query.after->id);
  } else {
    params.Add(std::optional<std::int64_t>()).Add("");
  }
  // One more than asked, to know whether another page follows.
  params.Add(query.limit + 1);
  LEDGER_CO_TRY(auto conn, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(auto rows, co_await conn->Execute(kListEvents, std::move(params), deadline));
  EventPage page;
  for (int row = 0; row < rows.rows() && row < query.limit; ++row) {
    LEDGER_CO_TRY(auto event, ParseEvent(rows, row));
    page.events.push_back(std::move(event));
  }
  if (rows.rows() > query.limit && !page.events.empty()) {
    page.next_cursor =
        fmt::format("{}.{}", page.events.back().created_at_us, page.events.back().id);
  }
  co_return page;
}

asio::awaitable<Result<std::optional<StoredEvent>>> Redeliver(db::PgPool& pool,
                                                              const std::string& principal,
                                                              const std::string& event_id,
                                                              std::chrono::seconds retry_window,
                                                              db::Deadline deadline) {
  LEDGER_CO_TRY(auto conn, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(auto rows,
                co_await conn->Execute(kRedeliver,
                                       Params().Add(event_id).Add(principal).Add(
                                           static_cast<std::int64_t>(retry_window.count())),
                                       deadline));
  if (rows.rows() != 1) co_return std::optional<StoredEvent>();
  LEDGER_CO_TRY(auto event, ParseEvent(rows, 0));
  co_return std::optional<StoredEvent>(std::move(event));
}

}  // namespace paygate::events::store
