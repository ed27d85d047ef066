#pragma once

// The fraud rules' rows in PostgreSQL (ledger/migrations/0007_risk.sql). Each function is one
// statement or one transaction on the pool, or (`...Tx`) a step inside the caller's transaction on
// a connection. Times cross this interface as Unix microseconds (`_us`) or seconds (`_s`).
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "config/result.h"
#include "ledger/db/pg_connection.h"
#include "ledger/db/pg_pool.h"

namespace paygate::fraud::store {

// One decision as it is stored, with the event it was made on.
struct DecisionRecord {
  std::string instance;  // the deciding daemon's instance id (uuid)
  std::string event_type;
  std::int64_t event_time_s = 0;
  std::string payload;  // paygate.risk.pb.Event, binary
  std::string object_type;
  std::string object_id;
  std::string principal;
  std::string outcome;  // allow, review, block, hard_block
  std::int32_t score = 0;
  std::string decided_by;
  std::string ruleset_name;
  std::string ruleset_version;
  std::int64_t lists_version = 0;
  std::int64_t eval_ns = 0;
  bool timed_out = false;
  std::vector<std::string> reason_codes;
  std::string decision_json;  // paygate.risk.pb.Decision, protobuf JSON mapping
};

struct RecordedDecision {
  std::int64_t event_id = 0;
  std::int64_t decision_id = 0;
  std::string review_id;  // set when a review was opened
};

// Inside the transaction that stores the decided object: the event, the decision and, when
// `open_review`, an open review of the object.
boost::asio::awaitable<Result<RecordedDecision>> RecordDecisionTx(db::PgConnection& conn,
                                                                  const DecisionRecord& record,
                                                                  bool open_review,
                                                                  db::Deadline deadline);

struct StoredEvent {
  std::int64_t id = 0;
  std::string instance;
  std::int64_t event_time_s = 0;
  std::string payload;
};

// Events with id > `after`, plus those whose ids are in `also` (ids skipped earlier that may have
// committed since), in id order, at most `limit`.
boost::asio::awaitable<Result<std::vector<StoredEvent>>> ReadEventsAfter(
    db::PgPool& pool, std::int64_t after, const std::vector<std::int64_t>& also, std::int32_t limit,
    db::Deadline deadline);
// Events with event_time >= from_s and after < id <= upto, in id order, at most `limit`.
boost::asio::awaitable<Result<std::vector<StoredEvent>>> ReadEventsSince(
    db::PgPool& pool, std::int64_t from_s, std::int64_t after, std::int64_t upto,
    std::int32_t limit, db::Deadline deadline);
boost::asio::awaitable<Result<std::int64_t>> MaxEventId(db::PgPool& pool, db::Deadline deadline);
// Ids in [from, to] that no row has (yet).
boost::asio::awaitable<Result<std::vector<std::int64_t>>> AbsentEventIds(db::PgPool& pool,
                                                                         std::int64_t from,
                                                                         std::int64_t to,
                                                                         db::Deadline deadline);

// ---- Lists ----

struct ListRow {
  std::string name;
  std::string kind;
  std::int64_t item_count = 0;
};
struct ItemRow {
  std::string list;
  std::string item;
  std::optional<std::int64_t> expires_at_us;
  std::string note;
  std::string added_by;
  std::int64_t created_at_us = 0;
};

// The highest audit id: changes whenever any list changes.
boost::asio::awaitable<Result<std::int64_t>> ListsVersion(db::PgPool& pool, db::Deadline deadline);
boost::asio::awaitable<Result<std::vector<ListRow>>> ReadLists(db::PgPool& pool,
                                                              db::Deadline deadline);
// Items of one list, or of every list when `list` is empty; expired items included.
boost::asio::awaitable<Result<std::vector<ItemRow>>> ReadItems(db::PgPool& pool,
                                                              const std::string& list,
                                                              db::Deadline deadline);

enum class ListChange { kAdded, kUpdated, kRemoved, kNotFound, kKindMismatch };
// Transaction: creates the list when needed (audited), then adds or updates the item, audited with
// its before and after.
boost::asio::awaitable<Result<ListChange>> AddItem(db::PgPool& pool, const std::string& principal,
                                                   const std::string& list, const std::string& kind,
                                                   const ItemRow& item, db::Deadline deadline);
// Transaction: removes the item, audited with its before.
boost::asio::awaitable<Result<ListChange>> RemoveItem(db::PgPool& pool,
                                                      const std::string& principal,
                                                      const std::string& list,
                                                      const std::string& item,
                                                      db::Deadline deadline);

// ---- Reviews ----

struct ReviewRow {
  std::string id;
  std::string object_type;
  std::string object_id;
  std::int64_t decision_id = 0;
  std::string submitted_by;
  std::string status;
  std::string resolved_by;
  std::optional<std::int64_t> resolved_at_us;
  std::string note;
  std::int64_t created_at_us = 0;
  std::string decision_json;
  // The held payment's amount (0 and empty for other objects).
  std::int64_t amount_minor = 0;
  std::string currency;
};

boost::asio::awaitable<Result<std::vector<ReviewRow>>> ListReviews(db::PgPool& pool,
                                                                  const std::string& status,
                                                                  std::int32_t limit,
                                                                  db::Deadline deadline);
boost::asio::awaitable<Result<std::optional<ReviewRow>>> FindReview(db::PgPool& pool,
                                                                   const std::string& id,
                                                                   db::Deadline deadline);
// Inside a transaction: the review, locked (FOR UPDATE).
boost::asio::awaitable<Result<std::optional<ReviewRow>>> LockReviewTx(db::PgConnection& conn,
                                                                     const std::string& id,
                                                                     db::Deadline deadline);
// Inside a transaction: `status` approved or declined.
boost::asio::awaitable<Result<void>> ResolveReviewTx(db::PgConnection& conn, const std::string& id,
                                                     const std::string& status,
                                                     const std::string& principal,
                                                     const std::string& note,
                                                     db::Deadline deadline);

// ---- Shadow mode ----

struct ShadowDiff {
  std::int64_t event_id = 0;
  std::string live_outcome;
  std::string shadow_outcome;
  std::string shadow_ruleset_name;
  std::string shadow_ruleset_version;
  std::int32_t live_score = 0;
  std::int32_t shadow_score = 0;
  std::vector<std::string> fired_only_live;
  std::vector<std::string> fired_only_shadow;
  std::string shadow_decision_json;
};
boost::asio::awaitable<Result<void>> InsertShadowDiff(db::PgPool& pool, const ShadowDiff& diff,
                                                      db::Deadline deadline);

// ---- Rulesets loaded at run time ----

struct RulesetRow {
  std::int64_t id = 0;
  std::string instance;
  std::string target;  // live, shadow
  std::string origin;  // api, file
  std::string name;
  std::string version;
  std::string source;
  std::string principal;
};
boost::asio::awaitable<Result<std::int64_t>> RecordRuleset(db::PgPool& pool, const RulesetRow& row,
                                                           db::Deadline deadline);
boost::asio::awaitable<Result<std::vector<RulesetRow>>> RulesetsAfter(db::PgPool& pool,
                                                                     std::int64_t after,
                                                                     db::Deadline deadline);
boost::asio::awaitable<Result<std::int64_t>> MaxRulesetId(db::PgPool& pool,
                                                          db::Deadline deadline);

// ---- Backtests ----

struct EventWithDecision {
  std::int64_t id = 0;
  std::int64_t event_time_s = 0;
  std::string payload;
  std::string decision_json;  // empty when no decision was stored
};
// Events with from_s <= event_time < to_s and id > after, in id order, at most `limit`.
boost::asio::awaitable<Result<std::vector<EventWithDecision>>> ReadEventsWithDecisions(
    db::PgPool& pool, std::int64_t from_s, std::int64_t to_s, std::int64_t after,
    std::int32_t limit, db::Deadline deadline);


}  // namespace paygate::fraud::store
