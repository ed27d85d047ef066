#include "gateway/fraud/store.h"

#include <fmt/format.h>

#include "gateway/payments/store.h"
#include "ledger/db/params.h"
#include "ledger/db/pg_result.h"
#include "ledger/db/transaction.h"
#include "ledger/ledger/try.h"

namespace paygate::fraud::store {

namespace asio = boost::asio;
using db::Params;
using db::PgConnection;
using db::PgResult;
using db::Statement;

namespace {

#define RISK_US(col) "(extract(epoch FROM " col ") * 1000000)::bigint"
#define RISK_FROM_US(n) "(timestamptz 'epoch' + $" #n "::bigint * interval '1 microsecond')"
#define RISK_FROM_S(n) "(timestamptz 'epoch' + $" #n "::bigint * interval '1 second')"

constexpr Statement kInsertEvent{
    "risk_insert_event",
    "INSERT INTO risk_events (instance, event_type, event_time, payload) "
    "VALUES ($1::uuid, $2, " RISK_FROM_S(3) ", $4) RETURNING id"};

constexpr Statement kInsertDecision{
    "risk_insert_decision",
    "INSERT INTO risk_decisions (event_id, object_type, object_id, principal, outcome, score, "
    "decided_by, ruleset_name, ruleset_version, lists_version, eval_ns, timed_out, reason_codes, "
    "decision) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::text[], "
    "$14::jsonb) RETURNING id"};

constexpr Statement kInsertReview{
    "risk_insert_review",
    "INSERT INTO risk_reviews (id, object_type, object_id, decision_id, submitted_by, status) "
    "VALUES ($1, $2, $3, $4, $5, 'open')"};

constexpr Statement kEventsAfter{
    "risk_events_after",
    "SELECT id, instance::text, extract(epoch FROM event_time)::bigint, payload FROM risk_events "
    "WHERE id > $1 OR id = ANY ($2::bigint[]) ORDER BY id LIMIT $3"};

#define REVIEW_COLUMNS                                                                     \
  "r.id, r.object_type, r.object_id, r.decision_id, r.submitted_by, r.status, "            \
  "coalesce(r.resolved_by, ''), " RISK_US("r.resolved_at") ", r.note, " RISK_US("r.created_at") \
  ", d.decision::text, coalesce(p.amount_minor, 0), coalesce(p.currency, '')"

#define REVIEW_JOIN \
  "LEFT JOIN payment_orders p ON r.object_type = 'payment' AND p.id = r.object_id"

Result<std::string> Text(const PgResult& r, int row, int col) {
  LEDGER_TRY(auto v, r.GetText(row, col));
  return std::string(v);
}

Result<std::optional<std::int64_t>> OptionalInt(const PgResult& r, int row, int col) {
  if (r.IsNull(row, col)) return std::optional<std::int64_t>();
  LEDGER_TRY(auto v, r.GetInt64(row, col));
  return std::optional<std::int64_t>(v);
}

Result<StoredEvent> ParseEvent(const PgResult& r, int row) {
  StoredEvent e;
  LEDGER_TRY(e.id, r.GetInt64(row, 0));
  LEDGER_TRY(e.instance, Text(r, row, 1));
  LEDGER_TRY(e.event_time_s, r.GetInt64(row, 2));
  LEDGER_TRY(e.payload, r.GetBytea(row, 3));
  return e;
}

Result<ReviewRow> ParseReview(const PgResult& r, int row) {
  ReviewRow v;
  LEDGER_TRY(v.id, Text(r, row, 0));
  LEDGER_TRY(v.object_type, Text(r, row, 1));
  LEDGER_TRY(v.object_id, Text(r, row, 2));
  LEDGER_TRY(v.decision_id, r.GetInt64(row, 3));
  LEDGER_TRY(v.submitted_by, Text(r, row, 4));
  LEDGER_TRY(v.status, Text(r, row, 5));
  LEDGER_TRY(v.resolved_by, Text(r, row, 6));
  LEDGER_TRY(v.resolved_at_us, OptionalInt(r, row, 7));
  LEDGER_TRY(v.note, Text(r, row, 8));
  LEDGER_TRY(v.created_at_us, r.GetInt64(row, 9));
  LEDGER_TRY(v.decision_json, Text(r, row, 10));
  LEDGER_TRY(v.amount_minor, r.GetInt64(row, 11));
  LEDGER_TRY(v.currency, Text(r, row, 12));
  return v;
}

template <class Row, class Parse>
Result<std::vector<Row>> ParseAll(const PgResult& r, Parse parse) {
  std::vector<Row> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    LEDGER_TRY(auto row, parse(r, i));
    out.push_back(std::move(row));
  }
  return out;
}

asio::awaitable<Result<std::int64_t>> ScalarInt(db::PgPool& pool, std::string_view sql,
                                                Params params, db::Deadline deadline) {
  LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(auto r, co_await lease->Execute(sql, std::move(params), deadline));
  if (r.rows() != 1) co_return make_error_code(db::Errc::bad_value);
  co_return r.GetInt64(0, 0);
}

// The audit record's picture of an item (never personal data in plain text: items of personal
// kinds are hashes).
std::string ItemJson(const ItemRow& item) {
  auto quote = [](std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') out += '\\';
      if (static_cast<unsigned char>(c) < 0x20) {
        out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
        continue;
      }
      out += c;
    }
    return out + "\"";
  };
  return fmt::format(R"({{"item":{},"expires_at_us":{},"note":{},"added_by":{}}})",
                     quote(item.item),
                     item.expires_at_us ? std::to_string(*item.expires_at_us) : "null",
                     quote(item.note), quote(item.added_by));
}

}  // namespace

asio::awaitable<Result<RecordedDecision>> RecordDecisionTx(PgConnection& conn,
                                                           const DecisionRecord& d,
                                                           bool open_review,
                                                           db::Deadline deadline) {
  RecordedDecision out;
  LEDGER_CO_TRY(auto event, co_await conn.Execute(kInsertEvent,
                                                  Params()
                                                      .Add(d.instance)
                                                      .Add(d.event_type)
                                                      .Add(d.event_time_s)
                                                      .AddBytea(std::string_view(d.payload)),
                                                  deadline));
  LEDGER_CO_TRY(out.event_id, event.GetInt64(0, 0));
  LEDGER_CO_TRY(auto decision, co_await conn.Execute(kInsertDecision,
                                                     Params()
                                                         .Add(out.event_id)
                                                         .Add(d.object_type)
                                                         .Add(d.object_id)
                                                         .Add(d.principal)
                                                         .Add(d.outcome)
                                                         .Add(d.score)
                                                         .Add(d.decided_by)
                                                         .Add(d.ruleset_name)
                                                         .Add(d.ruleset_version)
                                                         .Add(d.lists_version)
                                                         .Add(d.eval_ns)
                                                         .Add(d.timed_out)
                                                         .Add(db::ArrayLiteral(d.reason_codes))
                                                         .Add(d.decision_json),
                                                     deadline));
  LEDGER_CO_TRY(out.decision_id, decision.GetInt64(0, 0));
  if (open_review) {
    out.review_id = payments::store::NewId("rev_");
    LEDGER_CO_TRYV(co_await conn.Execute(kInsertReview,
                                         Params()
                                             .Add(out.review_id)
                                             .Add(d.object_type)
                                             .Add(d.object_id)
                                             .Add(out.decision_id)
                                             .Add(d.principal),
                                         deadline));
  }
  co_return out;
}

asio::awaitable<Result<std::vector<StoredEvent>>> ReadEventsAfter(
    db::PgPool& pool, std::int64_t after, const std::vector<std::int64_t>& also,
    std::int32_t limit, db::Deadline deadline) {
  LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(auto r, co_await lease->Execute(
                            kEventsAfter,
                            Params().Add(after).Add(db::ArrayLiteral(also)).Add(limit), deadline));
  co_return ParseAll<StoredEvent>(r, ParseEvent);
}

asio::awaitable<Result<std::vector<StoredEvent>>> ReadEventsSince(
    db::PgPool& pool, std::int64_t from_s, std::int64_t after, std::int64_t upto,
    std::int32_t limit, db::Deadline deadline) {
  LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(
      auto r,
      co_await lease->Execute(
          "SELECT id, instance::text, extract(epoch FROM event_time)::bigint, payload "
          "FROM risk_events WHERE event_time >= " RISK_FROM_S(1) " AND id > $2 AND id <= $3 "
          "ORDER BY id LIMIT $4",
          Params().Add(from_s).Add(after).Add(upto).Add(limit), deadline));
  co_return ParseAll<StoredEvent>(r, ParseEvent);
}

asio::awaitable<Result<std::int64_t>> MaxEventId(db::PgPool& pool, db::Deadline deadline) {
  co_return co_await ScalarInt(pool, "SELECT coalesce(max(id), 0) FROM risk_events", Params(),
                               deadline);
}

asio::awaitable<Result<std::vector<std::int64_t>>> AbsentEventIds(db::PgPool& pool,
                                                                  std::int64_t from,
                                                                  std::int64_t to,
                                                                  db::Deadline deadline) {
  LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(auto r, co_await lease->Execute(
                            "SELECT g FROM generate_series($1::bigint, $2::bigint) g "
                            "WHERE NOT EXISTS (SELECT 1 FROM risk_events WHERE id = g) ORDER BY g",
                            Params().Add(from).Add(to), deadline));
  std::vector<std::int64_t> out;
  for (int i = 0; i < r.rows(); ++i) {
    LEDGER_CO_TRY(auto id, r.GetInt64(i, 0));
    out.push_back(id);
  }
  co_return out;
}

// ---- Lists ----

asio::awaitable<Result<std::int64_t>> ListsVersion(db::PgPool& pool, db::Deadline deadline) {
  co_return co_await ScalarInt(pool, "SELECT coalesce(max(id), 0) FROM risk_list_audit", Params(),
                               deadline);
}

asio::awaitable<Result<std::vector<ListRow>>> ReadLists(db::PgPool& pool, db::Deadline deadline) {
  LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(auto r, co_await lease->Execute(
                            "SELECT l.name, l.kind, (SELECT count(*) FROM risk_list_items i "
                            "WHERE i.list_name = l.name) FROM risk_lists l ORDER BY l.name",
                            Params(), deadline));
  co_return ParseAll<ListRow>(r, [](const PgResult& res, int i) -> Result<ListRow> {
    ListRow row;
    LEDGER_TRY(row.name, Text(res, i, 0));
    LEDGER_TRY(row.kind, Text(res, i, 1));
    LEDGER_TRY(row.item_count, res.GetInt64(i, 2));
    return row;
  });
}

asio::awaitable<Result<std::vector<ItemRow>>> ReadItems(db::PgPool& pool, const std::string& list,
                                                       db::Deadline deadline) {
  LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(auto r,
                co_await lease->Execute(
                    "SELECT list_name, item, " RISK_US("expires_at") ", note, added_by, " RISK_US(
                        "created_at") " FROM risk_list_items WHERE $1 = '' OR list_name = $1 "
                                      "ORDER BY list_name, item",
                    Params().Add(list), deadline));
  co_return ParseAll<ItemRow>(r, [](const PgResult& res, int i) -> Result<ItemRow> {
    ItemRow row;
    LEDGER_TRY(row.list, Text(res, i, 0));
    LEDGER_TRY(row.item, Text(res, i, 1));
    LEDGER_TRY(row.expires_at_us, OptionalInt(res, i, 2));
    LEDGER_TRY(row.note, Text(res, i, 3));
    LEDGER_TRY(row.added_by, Text(res, i, 4));
    LEDGER_TRY(row.created_at_us, res.GetInt64(i, 5));
    return row;
  });
}

namespace {

constexpr std::string_view kAudit =
    "INSERT INTO risk_list_audit (principal, action, list_name, item, before, after) "
    "VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)";

asio::awaitable<Result<std::optional<ItemRow>>> LockItem(PgConnection& conn,
                                                         const std::string& list,
                                                         const std::string& item,
                                                         db::Deadline deadline) {
  LEDGER_CO_TRY(auto r, co_await conn.Execute(
                            "SELECT " RISK_US("expires_at") ", note, added_by FROM risk_list_items "
                            "WHERE list_name = $1 AND item = $2 FOR UPDATE",
                            Params().Add(list).Add(item), deadline));
  if (r.rows() == 0) co_return std::optional<ItemRow>();
  ItemRow row;
  row.list = list;
  row.item = item;
  LEDGER_CO_TRY(row.expires_at_us, OptionalInt(r, 0, 0));
  LEDGER_CO_TRY(row.note, Text(r, 0, 1));
  LEDGER_CO_TRY(row.added_by, Text(r, 0, 2));
  co_return std::optional<ItemRow>(std::move(row));
}

}  // namespace

asio::awaitable<Result<ListChange>> AddItem(db::PgPool& pool, const std::string& principal,
                                            const std::string& list, const std::string& kind,
                                            const ItemRow& item, db::Deadline deadline) {
  co_return co_await db::RunInTransaction(
      pool, deadline, db::TransactionOptions{},
      [&](PgConnection& conn) -> asio::awaitable<Result<ListChange>> {
        LEDGER_CO_TRY(auto created,
                      co_await conn.Execute("INSERT INTO risk_lists (name, kind) VALUES ($1, $2) "
                                            "ON CONFLICT (name) DO NOTHING RETURNING name",
                                            Params().Add(list).Add(kind), deadline));
        if (created.rows() == 1) {
          LEDGER_CO_TRYV(co_await conn.Execute(
              kAudit,
              Params()
                  .Add(principal)
                  .Add("create_list")
                  .Add(list)
                  .Add("")
                  .AddNull()
                  .Add(fmt::format(R"({{"kind":"{}"}})", kind)),
              deadline));
        } else {
          LEDGER_CO_TRY(auto existing,
                        co_await conn.Execute("SELECT kind FROM risk_lists WHERE name = $1",
                                              Params().Add(list), deadline));
          LEDGER_CO_TRY(auto existing_kind, existing.GetText(0, 0));
          if (existing_kind != kind) co_return ListChange::kKindMismatch;
        }
        LEDGER_CO_TRY(auto before, co_await LockItem(conn, list, item.item, deadline));
        ItemRow after = item;
        after.list = list;
        after.added_by = principal;
        LEDGER_CO_TRYV(co_await conn.Execute(
            "INSERT INTO risk_list_items (list_name, item, expires_at, note, added_by) "
            "VALUES ($1, $2, CASE WHEN $3::bigint IS NULL THEN NULL ELSE " RISK_FROM_US(
                3) " END, $4, $5) ON CONFLICT (list_name, item) DO UPDATE SET "
                   "expires_at = EXCLUDED.expires_at, note = EXCLUDED.note, "
                   "added_by = EXCLUDED.added_by",
            Params().Add(list).Add(after.item).Add(after.expires_at_us).Add(after.note).Add(
                principal),
            deadline));
        Params audit;
        audit.Add(principal)
            .Add(before ? "update_item" : "add_item")
            .Add(list)
            .Add(after.item);
        if (before) {
          audit.Add(ItemJson(*before));
        } else {
          audit.AddNull();
        }
        audit.Add(ItemJson(after));
        LEDGER_CO_TRYV(co_await conn.Execute(kAudit, std::move(audit), deadline));
        co_return before ? ListChange::kUpdated : ListChange::kAdded;
      });
}

asio::awaitable<Result<ListChange>> RemoveItem(db::PgPool& pool, const std::string& principal,
                                               const std::string& list, const std::string& item,
                                               db::Deadline deadline) {
  co_return co_await db::RunInTransaction(
      pool, deadline, db::TransactionOptions{},
      [&](PgConnection& conn) -> asio::awaitable<Result<ListChange>> {
        LEDGER_CO_TRY(auto before, co_await LockItem(conn, list, item, deadline));
        if (!before) co_return ListChange::kNotFound;
        LEDGER_CO_TRYV(co_await conn.Execute(
            "DELETE FROM risk_list_items WHERE list_name = $1 AND item = $2",
            Params().Add(list).Add(item), deadline));
        LEDGER_CO_TRYV(co_await conn.Execute(kAudit,
                                             Params()
                                                 .Add(principal)
                                                 .Add("remove_item")
                                                 .Add(list)
                                                 .Add(item)
                                                 .Add(ItemJson(*before))
                                                 .AddNull(),
                                             deadline));
        co_return ListChange::kRemoved;
      });
}

// ---- Reviews ----

asio::awaitable<Result<std::vector<ReviewRow>>> ListReviews(db::PgPool& pool,
                                                           const std::string& status,
                                                           std::int32_t limit,
                                                           db::Deadline deadline) {
  LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(auto r, co_await lease->Execute(
                            "SELECT " REVIEW_COLUMNS " FROM risk_reviews r JOIN risk_decisions d "
                            "ON d.id = r.decision_id " REVIEW_JOIN " WHERE $1 = '' OR r.status = $1 "
                            "ORDER BY r.created_at, r.id LIMIT $2",
                            Params().Add(status).Add(limit), deadline));
  co_return ParseAll<ReviewRow>(r, ParseReview);
}

asio::awaitable<Result<std::optional<ReviewRow>>> FindReview(db::PgPool& pool,
                                                            const std::string& id,
                                                            db::Deadline deadline) {
  LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(auto r, co_await lease->Execute(
                            "SELECT " REVIEW_COLUMNS " FROM risk_reviews r JOIN risk_decisions d "
                            "ON d.id = r.decision_id " REVIEW_JOIN " WHERE r.id = $1",
                            Params().Add(id), deadline));
  if (r.rows() == 0) co_return std::optional<ReviewRow>();
  LEDGER_CO_TRY(auto row, ParseReview(r, 0));
  co_return std::optional<ReviewRow>(std::move(row));
}

asio::awaitable<Result<std::optional<ReviewRow>>> LockReviewTx(PgConnection& conn,
                                                              const std::string& id,
                                                              db::Deadline deadline) {
  LEDGER_CO_TRY(auto r, co_await conn.Execute(
                            "SELECT " REVIEW_COLUMNS " FROM risk_reviews r JOIN risk_decisions d "
                            "ON d.id = r.decision_id " REVIEW_JOIN " WHERE r.id = $1 FOR UPDATE OF r",
                            Params().Add(id), deadline));
  if (r.rows() == 0) co_return std::optional<ReviewRow>();
  LEDGER_CO_TRY(auto row, ParseReview(r, 0));
  co_return std::optional<ReviewRow>(std::move(row));
}

asio::awaitable<Result<void>> ResolveReviewTx(PgConnection& conn, const std::string& id,
                                              const std::string& status,
                                              const std::string& principal,
                                              const std::string& note, db::Deadline deadline) {
  LEDGER_CO_TRYV(co_await conn.Execute(
      "UPDATE risk_reviews SET status = $2, resolved_by = $3, resolved_at = now(), note = $4 "
      "WHERE id = $1 AND status = 'open'",
      Params().Add(id).Add(status).Add(principal).Add(note), deadline));
  co_return outcome::success();
}

// ---- Shadow ----

asio::awaitable<Result<void>> InsertShadowDiff(db::PgPool& pool, const ShadowDiff& d,
                                               db::Deadline deadline) {
  LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
  LEDGER_CO_TRYV(co_await lease->Execute(
      "INSERT INTO risk_shadow_diffs (event_id, live_outcome, shadow_outcome, "
      "shadow_ruleset_name, shadow_ruleset_version, live_score, shadow_score, fired_only_live, "
      "fired_only_shadow, shadow_decision) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text[], "
      "$9::text[], $10::jsonb)",
      Params()
          .Add(d.event_id)
          .Add(d.live_outcome)
          .Add(d.shadow_outcome)
          .Add(d.shadow_ruleset_name)
          .Add(d.shadow_ruleset_version)
          .Add(d.live_score)
          .Add(d.shadow_score)
          .Add(db::ArrayLiteral(d.fired_only_live))
          .Add(db::ArrayLiteral(d.fired_only_shadow))
          .Add(d.shadow_decision_json),
      deadline));
  co_return outcome::success();
}

// ---- Rulesets ----

asio::awaitable<Result<std::int64_t>> RecordRuleset(db::PgPool& pool, const RulesetRow& row,
                                                    db::Deadline deadline) {
  co_return co_await ScalarInt(
      pool,
      "INSERT INTO risk_rulesets (instance, target, origin, name, version, source, principal) "
      "VALUES ($1::uuid, $2, $3, $4, $5, $6, $7) RETURNING id",
      Params()
          .Add(row.instance)
          .Add(row.target)
          .Add(row.origin)
          .Add(row.name)
          .Add(row.version)
          .Add(row.source)
          .Add(row.principal),
      deadline);
}

asio::awaitable<Result<std::vector<RulesetRow>>> RulesetsAfter(db::PgPool& pool,
                                                              std::int64_t after,
                                                              db::Deadline deadline) {
  LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(auto r, co_await lease->Execute(
                            "SELECT id, instance::text, target, origin, name, version, source, "
                            "principal FROM risk_rulesets WHERE id > $1 ORDER BY id",
                            Params().Add(after), deadline));
  co_return ParseAll<RulesetRow>(r, [](const PgResult& res, int i) -> Result<RulesetRow> {
    RulesetRow row;
    LEDGER_TRY(row.id, res.GetInt64(i, 0));
    LEDGER_TRY(row.instance, Text(res, i, 1));
    LEDGER_TRY(row.target, Text(res, i, 2));
    LEDGER_TRY(row.origin, Text(res, i, 3));
    LEDGER_TRY(row.name, Text(res, i, 4));
    LEDGER_TRY(row.version, Text(res, i, 5));
    LEDGER_TRY(row.source, Text(res, i, 6));
    LEDGER_TRY(row.principal, Text(res, i, 7));
    return row;
  });
}

asio::awaitable<Result<std::int64_t>> MaxRulesetId(db::PgPool& pool, db::Deadline deadline) {
  co_return co_await ScalarInt(pool, "SELECT coalesce(max(id), 0) FROM risk_rulesets", Params(),
                               deadline);
}

// ---- Backtests ----

asio::awaitable<Result<std::vector<EventWithDecision>>> ReadEventsWithDecisions(
    db::PgPool& pool, std::int64_t from_s, std::int64_t to_s, std::int64_t after,
    std::int32_t limit, db::Deadline deadline) {
  LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(auto r, co_await lease->Execute(
                            "SELECT e.id, extract(epoch FROM e.event_time)::bigint, e.payload, "
                            "coalesce(d.decision::text, '') FROM risk_events e "
                            "LEFT JOIN risk_decisions d ON d.event_id = e.id "
                            "WHERE e.event_time >= " RISK_FROM_S(1) " AND e.event_time < " RISK_FROM_S(
                                2) " AND e.id > $3 ORDER BY e.id LIMIT $4",
                            Params().Add(from_s).Add(to_s).Add(after).Add(limit), deadline));
  co_return ParseAll<EventWithDecision>(
      r, [](const PgResult& res, int i) -> Result<EventWithDecision> {
        EventWithDecision e;
        LEDGER_TRY(e.id, res.GetInt64(i, 0));
        LEDGER_TRY(e.event_time_s, res.GetInt64(i, 1));
        LEDGER_TRY(e.payload, res.GetBytea(i, 2));
        LEDGER_TRY(e.decision_json, Text(res, i, 3));
        return e;
      });
}

}  // namespace paygate::fraud::store
