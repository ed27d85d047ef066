#pragma once

// The fraud rules wired to PostgreSQL and the flows (DESIGN.md §7, issue 5). gateway/risk/ is the
// pure engine; this is what keeps it fed and answerable in a daemon:
//
//  * Decisions. Decide() evaluates an event with the live ruleset and counts it in the aggregates
//    (features are read before the event counts, aggregates.h). The flow stores the verdict's
//    record (the event and the decision, and a review when it holds the object) in the same
//    transaction as the object it decided about (store::RecordDecisionTx), then calls Recorded().
//    Any event type can be decided: premium payments today; refunds and payouts call the same
//    Decide with their own event (events.h builds them).
//  * Aggregate state that survives restarts and agrees across daemons. Every decided event is
//    stored (risk_events). Start() rebuilds the aggregates by replaying the stored events inside
//    their windows (all-time aggregates: risk.history_days). Afterwards each daemon tails the
//    events the others store (by id; its own are recognised by its instance id and never counted
//    twice) and feeds each to its aggregates exactly once. Ids come from a sequence, so a row can
//    commit after a higher id was already read: skipped ids are re-read on every round until they
//    appear or `gap_timeout` passes (a rolled-back insert never appears). A decision therefore sees
//    another daemon's events after at most about one tail interval.
//  * Lists, with every change audited; items of personal kinds stored only as keyed hashes
//    (hashing.h). Every daemon reloads its list snapshot when the audit's highest id changes.
//  * Reload. LoadRuleset() compiles first and swaps only on success (the running ruleset stays on
//    any error), records the change in risk_rulesets (who, what), and rebuilds the aggregates the
//    new ruleset adds from stored events; other daemons pick the change up on their next round.
//    SIGHUP reloads the files (ReloadFiles). A daemon always starts from its files.
//  * Shadow mode. With a shadow ruleset, every recorded live event is also decided by it off the
//    request path, on its own aggregates; a decision that differs is stored in risk_shadow_diffs.
//    It never changes a live decision.
//
// Thread-safety: Decide, Recorded, Status and the list functions may be called from any thread;
// Start, Stop and the tail loop run on the executor. The pool must outlive the service.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "config/paygate_config.pb.h"
#include "config/result.h"
#include "gateway/api/v1/risk.pb.h"
#include "gateway/fraud/hashing.h"
#include "gateway/fraud/store.h"
#include "gateway/risk/aggregates.h"
#include "gateway/risk/decision.h"
#include "gateway/risk/event.h"
#include "gateway/risk/lists.h"
#include "gateway/risk/risk.pb.h"
#include "keys/keyring.h"
#include "gateway/risk/ruleset.h"
#include "ledger/db/pg_pool.h"

namespace paygate::fraud {

struct RiskOptions {
  std::string rules_file;
  std::string shadow_rules_file;  // empty: no shadow ruleset
  std::chrono::milliseconds tail_interval{500};
  // How far back all-time aggregates (first_seen, last_seen) are rebuilt.
  std::chrono::seconds history{std::chrono::hours(24 * 400)};
  std::chrono::milliseconds db_timeout{10000};
  // How long an id skipped by the tail is waited for before it counts as never committed. Longer
  // than any transaction that stores a decision may take.
  std::chrono::seconds gap_timeout{120};
  // At start-up, ids this far below the newest one that have no row yet are watched as gaps.
  std::int64_t gap_scan_ids = 1000;
};

// The risk section of a validated configuration, and the current version of the hash key
// risk.hash_key_id names in `ring` (at least 32 bytes). Without `ring` (paygatectl) the configured
// keyring is loaded.
struct RiskSetup {
  RiskOptions options;
  keys::Secret hash_key;
};
Result<RiskSetup, std::string> RiskSetupFromConfig(const config::v1::Config& config,
                                                   const keys::Keyring* ring = nullptr);

enum class Target { kLive, kShadow };

// A refusal the API shows (HTTP status and the error body's fields, DESIGN.md §5).
struct RiskError {
  unsigned status = 500;
  std::string code;
  std::string message;
  std::string param;
};
template <class T>
using RiskResult = outcome::result<T, RiskError, outcome::policy::terminate>;

// What one decision means for the flow, and what to store with the object.
struct Verdict {
  risk::Outcome outcome = risk::Outcome::kAllow;
  // The rules that made the outcome (for a score outcome: the scoring rules; "timeout" when the
  // time budget ran out), and "ID: reason" texts joined with "; ".
  std::vector<std::string> reason_codes;
  std::string reasons;
  store::DecisionRecord record;
  std::shared_ptr<const risk::pb::Event> event;
  std::shared_ptr<const risk::pb::Decision> decision;

  bool blocks() const {
    return outcome == risk::Outcome::kBlock || outcome == risk::Outcome::kHardBlock;
  }
  bool holds() const { return outcome == risk::Outcome::kReview; }
};

// Counters for /metrics.
struct RiskCounters {
  std::atomic<std::uint64_t> decisions[4] = {};  // by risk::Outcome
  std::atomic<std::uint64_t> shadow_decisions{0};
  std::atomic<std::uint64_t> shadow_differences{0};
  std::atomic<std::uint64_t> events_tailed{0};
  std::atomic<std::uint64_t> reloads_rejected{0};
};

class RiskService : public std::enable_shared_from_this<RiskService> {
 public:
  // Compiles the rules files (each error with its file, line and column). Nothing runs yet.
  static Result<std::shared_ptr<RiskService>, std::string> Create(
      db::PgPool& pool, boost::asio::any_io_executor executor, RiskOptions options,
      keys::Secret hash_key);
  // With already compiled rulesets (`shadow` may be null), e.g. for tests.
  RiskService(db::PgPool& pool, boost::asio::any_io_executor executor, RiskOptions options,
              keys::Secret hash_key, std::shared_ptr<const risk::CompiledRuleset> live,
              std::shared_ptr<const risk::CompiledRuleset> shadow);
  ~RiskService();
  RiskService(const RiskService&) = delete;
  RiskService& operator=(const RiskService&) = delete;

  // Loads the lists, rebuilds the aggregates from stored events and, when `tail`, starts the
  // tail loop (every tail_interval: PollOnce).
  boost::asio::awaitable<Result<void>> Start(bool tail = true);
  // Stops the tail loop (returns at once; a round in flight finishes on its own).
  void Stop();

  const std::string& instance() const { return instance_; }
  const PersonalHasher& hasher() const { return hasher_; }
  const RiskOptions& options() const { return options_; }
  const RiskCounters& counters() const { return counters_; }
  db::PgPool& pool() const { return pool_; }
  // The deadline of one database call (database.statement_timeout_ms from now).
  db::Deadline DbDeadline() const;

  // ---- The request path ----
  // Decides `event` (its texts need to live only for the call) about an object, with the live
  // ruleset and the current lists, and counts it in the live aggregates. Never blocks on I/O.
  Verdict Decide(const risk::Event& event, std::string object_type, std::string object_id,
                 std::string principal);
  // After the verdict's record committed as event `event_id`: the shadow decision, off the
  // request path.
  void Recorded(const Verdict& verdict, std::int64_t event_id);

  // ---- Keeping in step with the other daemons ----
  // One round: events other daemons stored, list changes, rulesets loaded elsewhere.
  boost::asio::awaitable<Result<void>> PollOnce();
  // The live aggregate `name` for `event` (missing when the event lacks its key); for tests and
  // tools.
  risk::Value ReadAggregate(std::string_view name, const risk::Event& event) const;

  // ---- Rulesets ----
  // Compiles `source`; on success records it (`origin`: "api" or the file; `principal`: who) and
  // swaps it in as `target`, then rebuilds its new aggregates. A ruleset that does not compile
  // answers 400 ruleset_invalid with every positioned error and changes nothing.
  boost::asio::awaitable<RiskResult<api::v1::RulesetStatus>> LoadRuleset(Target target,
                                                                         std::string source,
                                                                         std::string origin,
                                                                         std::string principal);
  // SIGHUP: reloads the rules files; false (and the running rulesets stay) if either fails.
  boost::asio::awaitable<bool> ReloadFiles();
  api::v1::RulesetStatus Status() const;
  std::shared_ptr<const risk::CompiledRuleset> live_ruleset() const;

  // ---- Lists (role risk; every change audited) ----
  boost::asio::awaitable<RiskResult<api::v1::ListRiskListsResponse>> Lists();
  boost::asio::awaitable<RiskResult<api::v1::RiskList>> List(std::string name);
  boost::asio::awaitable<RiskResult<api::v1::RiskListItem>> AddListItem(
      std::string principal, std::string name, api::v1::AddRiskListItemRequest request);
  // `item` in its stored form (the hash for personal kinds) unless `plain` (then hashed first).
  boost::asio::awaitable<RiskResult<void>> RemoveListItem(std::string principal, std::string name,
                                                          std::string item, bool plain);
  // The list snapshot decisions use now.
  std::shared_ptr<const risk::ListSet> CurrentLists() const { return lists_.Current(); }
  // Reloads the list snapshot when the lists changed (or always, when `force`).
  boost::asio::awaitable<Result<void>> RefreshLists(bool force);

 private:
  struct Slot {
    std::atomic<std::shared_ptr<risk::AggregateStore>> store;
    mutable std::mutex mu;
    std::string origin;  // guarded by mu
  };
  struct Gap {
    std::chrono::steady_clock::time_point since;
  };
  Slot& SlotFor(Target target) { return target == Target::kLive ? live_ : shadow_; }
  // Swaps `ruleset` into `target`; returns the new store and, for its rebuild, the highest event
  // id fed so far and the ids still awaited (under feed_mu_).
  struct Swapped {
    std::shared_ptr<risk::AggregateStore> store;
    std::int64_t upto = 0;
    std::vector<std::int64_t> awaited;
  };
  Swapped Swap(Target target, std::shared_ptr<const risk::CompiledRuleset> ruleset,
               std::string origin);
  // Replays stored events into `store`: all aggregates (`fresh_only` false, at start-up) or the
  // fresh ones (after a swap), ids <= upto except `skip`.
  boost::asio::awaitable<Result<void>> Rebuild(std::shared_ptr<risk::AggregateStore> store,
                                               bool fresh_only, std::int64_t upto,
                                               std::vector<std::int64_t> skip);
  void Feed(const store::StoredEvent& row);
  boost::asio::awaitable<Result<void>> PollEvents();
  boost::asio::awaitable<Result<void>> PollRulesets();
  boost::asio::awaitable<void> TailLoop();
  friend boost::asio::awaitable<void> RunTailLoop(std::shared_ptr<RiskService> self);
  friend boost::asio::awaitable<void> RunShadow(std::shared_ptr<RiskService> self,
                                                std::shared_ptr<const risk::pb::Event> event,
                                                std::shared_ptr<const risk::pb::Decision> live,
                                                std::int64_t event_id);
  boost::asio::awaitable<void> DecideShadow(const risk::pb::Event& event,
                                            const risk::pb::Decision& live, std::int64_t event_id);
  std::optional<risk::ListKind> DeclaredKind(const std::string& list) const;

  db::PgPool& pool_;
  boost::asio::any_io_executor executor_;
  RiskOptions options_;
  PersonalHasher hasher_;
  std::string instance_;
  Slot live_;
  Slot shadow_;
  risk::ListHolder lists_;
  std::mutex lists_mu_;           // orders list snapshot swaps by version
  std::int64_t lists_version_ = -1;  // guarded by lists_mu_
  std::mutex feed_mu_;            // feeding aggregates from the tail or a rebuild
  std::int64_t high_ = 0;         // highest event id read (guarded by feed_mu_)
  std::map<std::int64_t, Gap> gaps_;  // ids below high_ not read yet (guarded by feed_mu_)
  std::atomic<std::int64_t> rulesets_seen_{0};
  std::atomic<bool> polling_{false};
  std::atomic<bool> stopping_{false};
  struct Loop;
  std::shared_ptr<Loop> loop_;
  RiskCounters counters_;
};

// paygate_risk_* families for /metrics.
std::vector<prometheus::MetricFamily> RiskFamilies(const RiskCounters& counters);

}  // namespace paygate::fraud
