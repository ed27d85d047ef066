#include "gateway/fraud/service.h"

#include <openssl/rand.h>

#include <algorithm>
#include <span>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include "config/file.h"
#include "config/logging.h"
#include "gateway/edge/asio_fwd.h"
#include "gateway/risk/evaluator.h"
#include "gateway/utc_time.h"
#include "keys/digest.h"
#include "keys/keyring.h"

namespace paygate::fraud {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr std::int32_t kPage = 2000;
constexpr std::size_t kGapsMax = 100000;

std::string NewInstanceId() {
  std::array<unsigned char, 16> b{};
  if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1) std::abort();
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  std::string hex = keys::ToHex(b);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

Result<std::shared_ptr<const risk::CompiledRuleset>, std::string> CompileFile(
    const std::string& field, const std::string& path) {
  auto text = config::ReadWholeFile(path);
  if (!text) return fmt::format("{} {}: cannot be read", field, path);
  auto compiled = risk::Compile(*text, path);
  if (!compiled) {
    return fmt::format("{} {} does not compile:\n{}", field, path,
                       compiled.assume_error().ToString());
  }
  return std::move(compiled).assume_value();
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

// How far back the aggregates of `ruleset` need stored events (0: none), counting only the fresh
// ones of `store` when `fresh_only`.
std::int64_t HorizonS(const risk::AggregateStore& store, bool fresh_only, std::int64_t history_s) {
  std::int64_t horizon = 0;
  const auto& aggregates = store.ruleset().aggregates;
  for (std::size_t i = 0; i < aggregates.size(); ++i) {
    if (fresh_only && !store.fresh(i)) continue;
    const auto& a = aggregates[i];
    horizon = std::max(horizon, a.window_s > 0 ? a.window_s + a.bucket_s : history_s);
  }
  return horizon;
}

std::string FormatUs(std::int64_t us) {
  return gateway::FormatUtc(ledger::Timestamp(std::chrono::microseconds(us)));
}

RiskError Unavailable(const std::error_code& ec) {
  log::Get("risk")->warn("database unavailable: {}", ec.message());
  return {503, "database_unavailable", "The risk store is unavailable; retry.", {}};
}

bool ValidListName(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

api::v1::RiskListItem ToApi(const store::ItemRow& row) {
  api::v1::RiskListItem item;
  item.set_item(row.item);
  if (row.expires_at_us) item.set_expires_at(FormatUs(*row.expires_at_us));
  item.set_note(row.note);
  item.set_added_by(row.added_by);
  item.set_created_at(FormatUs(row.created_at_us));
  return item;
}

}  // namespace

// ---- Set-up ----

Result<RiskSetup, std::string> RiskSetupFromConfig(const config::v1::Config& config,
                                                   const keys::Keyring* ring) {
  const config::v1::Risk& r = config.risk();
  RiskSetup setup;
  setup.options.rules_file = r.rules_file();
  setup.options.shadow_rules_file = r.shadow_rules_file();
  setup.options.tail_interval = std::chrono::milliseconds(r.tail_interval_ms());
  setup.options.history = std::chrono::hours(24) * r.history_days();
  setup.options.db_timeout = std::chrono::milliseconds(config.database().statement_timeout_ms());
  std::optional<keys::Keyring> loaded;
  if (ring == nullptr) {
    auto configured = keys::LoadConfiguredKeyring(config.keys());
    if (!configured) return configured.error().message;
    loaded = std::move(configured).value();
    ring = &*loaded;
  }
  auto key = keys::CopyCurrent(*ring, "risk.hash_key_id", r.hash_key_id());
  if (!key) return key.error();
  if (key.value().size() < 32) {
    return fmt::format("risk.hash_key_id {}: the key must be at least 32 bytes", r.hash_key_id());
  }
  setup.hash_key = std::move(key).value();
  return setup;
}

struct RiskService::Loop {
  explicit Loop(asio::any_io_executor executor) : timer(std::move(executor)) {}
  asio::steady_timer timer;
};

Result<std::shared_ptr<RiskService>, std::string> RiskService::Create(
    db::PgPool& pool, asio::any_io_executor executor, RiskOptions options, keys::Secret hash_key) {
  auto live = CompileFile("risk.rules_file", options.rules_file);
  if (!live) return live.error();
  std::shared_ptr<const risk::CompiledRuleset> shadow;
  if (!options.shadow_rules_file.empty()) {
    auto compiled = CompileFile("risk.shadow_rules_file", options.shadow_rules_file);
    if (!compiled) return compiled.error();
    shadow = std::move(compiled).value();
  }
  auto service = std::make_shared<RiskService>(pool, std::move(executor), std::move(options),
                                               std::move(hash_key), std::move(live).value(),
                                               std::move(shadow));
  return service;
}

RiskService::RiskService(db::PgPool& pool, asio::any_io_executor executor, RiskOptions options,
                         keys::Secret hash_key, std::shared_ptr<const risk::CompiledRuleset> live,
                         std::shared_ptr<const risk::CompiledRuleset> shadow)
    : pool_(pool),
      executor_(executor),
      options_(std::move(options)),
      hasher_(std::move(hash_key)),
      instance_(NewInstanceId()),
      loop_(std::make_shared<Loop>(executor)) {
  live_.origin = live->file.empty() ? options_.rules_file : live->file;
  live_.store.store(std::make_shared<risk::AggregateStore>(std::move(live), nullptr));
  if (shadow) {
    shadow_.origin = shadow->file.empty() ? options_.shadow_rules_file : shadow->file;
    shadow_.store.store(std::make_shared<risk::AggregateStore>(std::move(shadow), nullptr));
  }
}

RiskService::~RiskService() = default;

db::Deadline RiskService::DbDeadline() const { return db::Clock::now() + options_.db_timeout; }

asio::awaitable<Result<void>> RiskService::Start(bool tail) {
  const auto deadline = db::Clock::now() + std::chrono::minutes(10);
  if (auto lists = co_await RefreshLists(true); !lists) co_return lists.error();
  auto seen = co_await store::MaxRulesetId(pool_, deadline);
  if (!seen) co_return seen.error();
  rulesets_seen_ = seen.value();
  auto high = co_await store::MaxEventId(pool_, deadline);
  if (!high) co_return high.error();
  std::vector<std::int64_t> absent;
  if (high.value() > 0) {
    auto found = co_await store::AbsentEventIds(
        pool_, std::max<std::int64_t>(1, high.value() - options_.gap_scan_ids + 1), high.value(),
        deadline);
    if (!found) co_return found.error();
    absent = std::move(found).value();
  }
  {
    std::lock_guard lock(feed_mu_);
    high_ = high.value();
    const auto now = std::chrono::steady_clock::now();
    for (const auto id : absent) gaps_[id] = {now};
  }
  // Both stores are new: every aggregate is rebuilt from the events inside its horizon.
  for (auto* slot : {&live_, &shadow_}) {
    auto current = slot->store.load();
    if (!current) continue;
    auto rebuilt = co_await Rebuild(current, false, high.value(), absent);
    if (!rebuilt) co_return rebuilt.error();
  }
  log::Get("risk")->info("risk rules ready: instance={} ruleset={} version={} events_upto={}",
                         instance_, live_ruleset()->name, live_ruleset()->version.substr(0, 12),
                         high.value());
  if (tail) asio::co_spawn(executor_, RunTailLoop(shared_from_this()), asio::detached);
  co_return outcome::success();
}

void RiskService::Stop() {
  stopping_ = true;
  asio::post(loop_->timer.get_executor(), [loop = loop_] { loop->timer.cancel(); });
}

asio::awaitable<void> RunTailLoop(std::shared_ptr<RiskService> self) { co_await self->TailLoop(); }

asio::awaitable<void> RiskService::TailLoop() {
  auto logger = log::Get("risk");
  while (!stopping_) {
    auto polled = co_await PollOnce();
    if (!polled) logger->warn("tail round failed: {}", polled.error().message());
    loop_->timer.expires_after(options_.tail_interval);
    boost::system::error_code ec;
    co_await loop_->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

// ---- Deciding ----

Verdict RiskService::Decide(const risk::Event& event, std::string object_type,
                            std::string object_id, std::string principal) {
  // One scratch and one decision per thread: evaluation itself does not allocate.
  thread_local risk::EvalScratch scratch;
  thread_local auto decision = std::make_unique<risk::Decision>();
  const auto store = live_.store.load();
  const auto lists = lists_.Current();
  scratch.Prepare(store->ruleset());
  risk::Evaluate(*store, *lists, event, scratch, *decision);
  store->Observe(event);

  Verdict v;
  v.outcome = decision->outcome;
  counters_.decisions[static_cast<int>(v.outcome)].fetch_add(1, std::memory_order_relaxed);
  auto pb_event = std::make_shared<risk::pb::Event>();
  risk::EventToProto(event, *pb_event);
  auto pb_decision = std::make_shared<risk::pb::Decision>();
  risk::DecisionToProto(*decision, event, *pb_decision);

  const std::string& by = pb_decision->decided_by();
  std::string wanted;
  switch (v.outcome) {
    case risk::Outcome::kHardBlock:
      wanted = "hard_block";
      break;
    case risk::Outcome::kBlock:
      wanted = by.starts_with("score") ? "score" : "block";
      break;
    case risk::Outcome::kReview:
      wanted = by.starts_with("score") ? "score" : "review";
      break;
    case risk::Outcome::kAllow:
      wanted = "allow";
      break;
  }
  if (by == "timeout") {
    v.reason_codes.push_back("timeout");
    v.reasons = "timeout: the risk decision ran out of time";
  }
  for (const auto& fired : pb_decision->fired()) {
    if (fired.action() != wanted) continue;
    v.reason_codes.push_back(fired.rule_id());
    if (!v.reasons.empty()) v.reasons += "; ";
    v.reasons += fired.rule_id() + ": " + fired.reason();
  }

  store::DecisionRecord& r = v.record;
  r.instance = instance_;
  r.event_type = pb_event->event_type();
  r.event_time_s = event.time();
  r.payload = pb_event->SerializeAsString();
  r.object_type = std::move(object_type);
  r.object_id = std::move(object_id);
  r.principal = std::move(principal);
  r.outcome = std::string(risk::OutcomeName(v.outcome));
  r.score = pb_decision->score();
  r.decided_by = by;
  r.ruleset_name = pb_decision->ruleset_name();
  r.ruleset_version = pb_decision->ruleset_version();
  r.lists_version = static_cast<std::int64_t>(pb_decision->lists_version());
  r.eval_ns = pb_decision->eval_ns();
  r.timed_out = pb_decision->timed_out();
  r.reason_codes = v.reason_codes;
  r.decision_json = ToJson(*pb_decision);
  v.event = std::move(pb_event);
  v.decision = std::move(pb_decision);
  return v;
}

asio::awaitable<void> RunShadow(std::shared_ptr<RiskService> self,
                                std::shared_ptr<const risk::pb::Event> event,
                                std::shared_ptr<const risk::pb::Decision> live,
                                std::int64_t event_id) {
  co_await self->DecideShadow(*event, *live, event_id);
}

void RiskService::Recorded(const Verdict& verdict, std::int64_t event_id) {
  if (!shadow_.store.load() || !verdict.event || !verdict.decision) return;
  asio::co_spawn(executor_, RunShadow(shared_from_this(), verdict.event, verdict.decision, event_id),
                 asio::detached);
}

asio::awaitable<void> RiskService::DecideShadow(const risk::pb::Event& event_pb,
                                                const risk::pb::Decision& live,
                                                std::int64_t event_id) {
  const auto store = shadow_.store.load();
  if (!store) co_return;
  auto event = risk::EventFromProto(event_pb);
  if (!event) co_return;
  risk::EvalScratch scratch;
  auto decision = std::make_unique<risk::Decision>();
  scratch.Prepare(store->ruleset());
  risk::Evaluate(*store, *lists_.Current(), event.value(), scratch, *decision);
  store->Observe(event.value());
  risk::pb::Decision shadow;
  risk::DecisionToProto(*decision, event.value(), shadow);
  counters_.shadow_decisions.fetch_add(1, std::memory_order_relaxed);
  const risk::DecisionDiff diff = risk::Diff(live, shadow);
  if (diff.same()) co_return;
  counters_.shadow_differences.fetch_add(1, std::memory_order_relaxed);
  store::ShadowDiff row;
  row.event_id = event_id;
  row.live_outcome = std::string(risk::OutcomeName(static_cast<risk::Outcome>(
      std::max(0, static_cast<int>(live.outcome()) - 1))));
  row.shadow_outcome = std::string(risk::OutcomeName(decision->outcome));
  row.shadow_ruleset_name = shadow.ruleset_name();
  row.shadow_ruleset_version = shadow.ruleset_version();
  row.live_score = live.score();
  row.shadow_score = shadow.score();
  row.fired_only_live = diff.fired_only_before;
  row.fired_only_shadow = diff.fired_only_after;
  row.shadow_decision_json = ToJson(shadow);
  auto stored = co_await store::InsertShadowDiff(pool_, row, DbDeadline());
  if (!stored) {
    log::Get("risk")->warn("shadow difference for event {} not stored: {}", event_id,
                           stored.error().message());
  }
}

risk::Value RiskService::ReadAggregate(std::string_view name, const risk::Event& event) const {
  const auto store = live_.store.load();
  const int i = store->ruleset().AggregateIndex(name);
  if (i < 0) return risk::Value::Missing(risk::Type::kInt);
  return store->Read(static_cast<std::size_t>(i), event);
}

// ---- Aggregate state from stored events ----

void RiskService::Feed(const store::StoredEvent& row) {
  // Our own events were counted when we decided them.
  if (row.instance == instance_) return;
  risk::pb::Event proto;
  if (!proto.ParseFromString(row.payload)) {
    log::Get("risk")->error("stored event {} does not parse; not counted", row.id);
    return;
  }
  auto event = risk::EventFromProto(proto);
  if (!event) {
    log::Get("risk")->error("stored event {}: {}; not counted", row.id, event.error());
    return;
  }
  for (auto* slot : {&live_, &shadow_}) {
    if (auto store = slot->store.load()) store->Observe(event.value());
  }
  counters_.events_tailed.fetch_add(1, std::memory_order_relaxed);
}

asio::awaitable<Result<void>> RiskService::Rebuild(std::shared_ptr<risk::AggregateStore> store,
                                                   bool fresh_only, std::int64_t upto,
                                                   std::vector<std::int64_t> skip) {
  const std::int64_t horizon =
      HorizonS(*store, fresh_only, static_cast<std::int64_t>(options_.history.count()));
  if (horizon == 0 || upto == 0) co_return outcome::success();
  std::sort(skip.begin(), skip.end());
  const std::int64_t now_s =
      std::chrono::duration_cast<std::chrono::seconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count();
  std::int64_t after = 0;
  std::size_t replayed = 0;
  for (;;) {
    auto page = co_await store::ReadEventsSince(pool_, now_s - horizon, after, upto, kPage,
                                                db::Clock::now() + std::chrono::minutes(1));
    if (!page) co_return page.error();
    {
      std::lock_guard lock(feed_mu_);
      for (const auto& row : page.value()) {
        after = row.id;
        if (std::binary_search(skip.begin(), skip.end(), row.id)) continue;
        risk::pb::Event proto;
        if (!proto.ParseFromString(row.payload)) continue;
        auto event = risk::EventFromProto(proto);
        if (!event) continue;
        if (fresh_only) {
          store->ObserveFresh(event.value());
        } else {
          store->Observe(event.value());
        }
        ++replayed;
      }
    }
    if (page.value().size() < static_cast<std::size_t>(kPage)) break;
  }
  log::Get("risk")->info("aggregates of ruleset {} rebuilt from {} stored events ({})",
                         store->ruleset().name, replayed, fresh_only ? "new ones" : "all");
  co_return outcome::success();
}

asio::awaitable<Result<void>> RiskService::PollEvents() {
  for (;;) {
    std::int64_t after = 0;
    std::vector<std::int64_t> awaited;
    {
      std::lock_guard lock(feed_mu_);
      after = high_;
      const auto now = std::chrono::steady_clock::now();
      for (auto it = gaps_.begin(); it != gaps_.end();) {
        if (now - it->second.since > options_.gap_timeout) {
          it = gaps_.erase(it);  // never committed (a rolled-back insert)
        } else {
          awaited.push_back(it->first);
          ++it;
        }
      }
    }
    auto rows = co_await store::ReadEventsAfter(pool_, after, awaited, kPage, DbDeadline());
    if (!rows) co_return rows.error();
    std::size_t beyond = 0;
    {
      std::lock_guard lock(feed_mu_);
      const auto now = std::chrono::steady_clock::now();
      for (const auto& row : rows.value()) {
        if (row.id > high_) {
          ++beyond;
          for (std::int64_t id = high_ + 1; id < row.id && gaps_.size() < kGapsMax; ++id) {
            gaps_[id] = {now};
          }
          high_ = row.id;
        } else if (gaps_.erase(row.id) == 0) {
          continue;  // already fed (a gap filled by an earlier page of this round)
        }
        Feed(row);
      }
    }
    if (beyond < static_cast<std::size_t>(kPage)) break;
  }
  co_return outcome::success();
}

asio::awaitable<Result<void>> RiskService::PollRulesets() {
  auto rows = co_await store::RulesetsAfter(pool_, rulesets_seen_.load(), DbDeadline());
  if (!rows) co_return rows.error();
  for (const auto& row : rows.value()) {
    rulesets_seen_ = std::max(rulesets_seen_.load(), row.id);
    if (row.instance == instance_) continue;
    const Target target = row.target == "shadow" ? Target::kShadow : Target::kLive;
    const auto current = SlotFor(target).store.load();
    if (current && current->ruleset().version == row.version) continue;
    auto compiled = risk::Compile(row.source, row.origin == "api" ? "api" : row.origin);
    if (!compiled) continue;  // it compiled where it was loaded; a different binary may differ
    auto swapped = Swap(target, std::move(compiled).assume_value(), row.origin);
    log::Get("risk")->info("{} ruleset {} loaded by another daemon ({} by {})",
                           row.target, row.version.substr(0, 12), row.origin, row.principal);
    auto rebuilt =
        co_await Rebuild(swapped.store, true, swapped.upto, std::move(swapped.awaited));
    if (!rebuilt) co_return rebuilt.error();
  }
  co_return outcome::success();
}

asio::awaitable<Result<void>> RiskService::PollOnce() {
  if (polling_.exchange(true)) co_return outcome::success();
  struct Release {
    std::atomic<bool>& flag;
    ~Release() { flag = false; }
  } release{polling_};
  auto events = co_await PollEvents();
  if (!events) co_return events.error();
  auto lists = co_await RefreshLists(false);
  if (!lists) co_return lists.error();
  co_return co_await PollRulesets();
}

// ---- Rulesets ----

RiskService::Swapped RiskService::Swap(Target target,
                                       std::shared_ptr<const risk::CompiledRuleset> ruleset,
                                       std::string origin) {
  Slot& slot = SlotFor(target);
  Swapped out;
  std::lock_guard feed(feed_mu_);
  const auto previous = slot.store.load();
  out.store = std::make_shared<risk::AggregateStore>(std::move(ruleset), previous.get());
  slot.store.store(out.store);
  {
    std::lock_guard lock(slot.mu);
    slot.origin = std::move(origin);
  }
  out.upto = high_;
  for (const auto& [id, gap] : gaps_) out.awaited.push_back(id);
  return out;
}

asio::awaitable<RiskResult<api::v1::RulesetStatus>> RiskService::LoadRuleset(
    Target target, std::string source, std::string origin, std::string principal) {
  auto compiled = risk::Compile(source, origin);
  if (!compiled) {
    counters_.reloads_rejected.fetch_add(1, std::memory_order_relaxed);
    co_return RiskError{400, "ruleset_invalid",
                        "The ruleset does not compile; the running one stays:\n" +
                            compiled.assume_error().ToString(),
                        {}};
  }
  auto ruleset = std::move(compiled).assume_value();
  store::RulesetRow row;
  row.instance = instance_;
  row.target = target == Target::kLive ? "live" : "shadow";
  row.origin = origin == "api" ? "api" : "file";
  row.name = ruleset->name;
  row.version = ruleset->version;
  row.source = std::move(source);
  row.principal = principal;
  // Recorded first: a change nobody can trace is not made.
  auto recorded = co_await store::RecordRuleset(pool_, row, DbDeadline());
  if (!recorded) co_return Unavailable(recorded.error());
  auto swapped = Swap(target, std::move(ruleset), std::move(origin));
  log::Get("risk")->info("{} ruleset {} version {} loaded from {} by {}", row.target, row.name,
                         row.version.substr(0, 12), row.origin, principal);
  auto rebuilt = co_await Rebuild(swapped.store, true, swapped.upto, std::move(swapped.awaited));
  if (!rebuilt) {
    log::Get("risk")->warn("new aggregates not rebuilt from history: {}",
                           rebuilt.error().message());
  }
  co_return Status();
}

asio::awaitable<bool> RiskService::ReloadFiles() {
  auto logger = log::Get("risk");
  bool ok = true;
  for (const auto& [target, path] : {std::pair{Target::kLive, options_.rules_file},
                                     std::pair{Target::kShadow, options_.shadow_rules_file}}) {
    if (path.empty()) continue;
    auto text = config::ReadWholeFile(path);
    if (!text) {
      logger->error("rules file {} cannot be read; the running ruleset stays", path);
      ok = false;
      continue;
    }
    // An unchanged file is not loaded again (its aggregates would be rebuilt for nothing).
    const auto digest = keys::Sha256(*text);
    const auto current = SlotFor(target).store.load();
    if (current && current->ruleset().version ==
                       keys::ToHex(std::span<const unsigned char>(digest.data(), digest.size()))) {
      continue;
    }
    auto loaded = co_await LoadRuleset(target, *text, path, "sighup");
    if (!loaded) {
      logger->error("rules file {} not loaded, the running ruleset stays: {}", path,
                    loaded.error().message);
      ok = false;
    }
  }
  co_return ok;
}

std::shared_ptr<const risk::CompiledRuleset> RiskService::live_ruleset() const {
  return live_.store.load()->ruleset_ptr();
}

api::v1::RulesetStatus RiskService::Status() const {
  api::v1::RulesetStatus status;
  auto fill = [](const Slot& slot, api::v1::RulesetInfo* info) {
    const auto store = slot.store.load();
    const auto& r = store->ruleset();
    info->set_name(r.name);
    info->set_version(r.version);
    {
      std::lock_guard lock(slot.mu);
      info->set_origin(slot.origin);
    }
    info->set_rules(static_cast<std::int32_t>(r.rules.size()));
    info->set_aggregates(static_cast<std::int32_t>(r.aggregates.size()));
  };
  fill(live_, status.mutable_live());
  if (shadow_.store.load()) fill(shadow_, status.mutable_shadow());
  return status;
}

// ---- Lists ----

std::optional<risk::ListKind> RiskService::DeclaredKind(const std::string& list) const {
  for (const Slot* slot : {&live_, &shadow_}) {
    const auto store = slot->store.load();
    if (!store) continue;
    for (const auto& ref : store->ruleset().lists) {
      if (ref.name == list) return ref.kind;
    }
  }
  return std::nullopt;
}

asio::awaitable<Result<void>> RiskService::RefreshLists(bool force) {
  const auto deadline = DbDeadline();
  auto version = co_await store::ListsVersion(pool_, deadline);
  if (!version) co_return version.error();
  {
    std::lock_guard lock(lists_mu_);
    if (!force && version.value() == lists_version_) co_return outcome::success();
  }
  auto lists = co_await store::ReadLists(pool_, deadline);
  if (!lists) co_return lists.error();
  auto items = co_await store::ReadItems(pool_, "", deadline);
  if (!items) co_return items.error();
  risk::ListSetBuilder builder(static_cast<std::uint64_t>(version.value()));
  std::map<std::string, risk::ListKind, std::less<>> kinds;
  for (const auto& l : lists.value()) {
    const auto kind = risk::ListKindFromName(l.kind);
    if (!kind) continue;
    kinds[l.name] = *kind;
    (void)builder.Declare(l.name, *kind);
  }
  for (const auto& item : items.value()) {
    const auto kind = kinds.find(item.list);
    if (kind == kinds.end()) continue;
    // An item stays while now < expiry: round the expiry up to whole seconds.
    const std::int64_t expires_s =
        item.expires_at_us ? std::max<std::int64_t>(1, (*item.expires_at_us + 999999) / 1000000)
                           : 0;
    if (auto added = builder.Add(item.list, kind->second, item.item, expires_s); !added) {
      log::Get("risk")->error("stored list item not usable: {}", added.error());
    }
  }
  auto set = std::move(builder).Build();
  std::lock_guard lock(lists_mu_);
  if (version.value() < lists_version_) co_return outcome::success();  // a newer one won
  lists_version_ = version.value();
  lists_.Swap(std::move(set));
  co_return outcome::success();
}

asio::awaitable<RiskResult<api::v1::ListRiskListsResponse>> RiskService::Lists() {
  auto lists = co_await store::ReadLists(pool_, DbDeadline());
  if (!lists) co_return Unavailable(lists.error());
  auto version = co_await store::ListsVersion(pool_, DbDeadline());
  if (!version) co_return Unavailable(version.error());
  api::v1::ListRiskListsResponse response;
  for (const auto& l : lists.value()) {
    auto* out = response.add_lists();
    out->set_name(l.name);
    out->set_kind(l.kind);
    out->set_item_count(l.item_count);
  }
  response.set_version(version.value());
  co_return response;
}

asio::awaitable<RiskResult<api::v1::RiskList>> RiskService::List(std::string name) {
  auto lists = co_await store::ReadLists(pool_, DbDeadline());
  if (!lists) co_return Unavailable(lists.error());
  const auto it = std::find_if(lists.value().begin(), lists.value().end(),
                               [&](const auto& l) { return l.name == name; });
  if (it == lists.value().end()) co_return RiskError{404, "list_not_found", "No such list.", {}};
  auto items = co_await store::ReadItems(pool_, name, DbDeadline());
  if (!items) co_return Unavailable(items.error());
  api::v1::RiskList list;
  list.set_name(it->name);
  list.set_kind(it->kind);
  list.set_item_count(it->item_count);
  for (const auto& item : items.value()) *list.add_items() = ToApi(item);
  co_return list;
}

asio::awaitable<RiskResult<api::v1::RiskListItem>> RiskService::AddListItem(
    std::string principal, std::string name, api::v1::AddRiskListItemRequest request) {
  if (!ValidListName(name)) {
    co_return RiskError{400, "parameter_invalid", "A list name is 1..64 of [A-Za-z0-9_].", "name"};
  }
  std::optional<risk::ListKind> kind = DeclaredKind(name);
  if (!request.kind().empty()) {
    const auto asked = risk::ListKindFromName(request.kind());
    if (!asked || *asked == risk::ListKind::kNone) {
      co_return RiskError{400, "parameter_invalid",
                          "kind must be account_hash, device_id, id_number, name, ip, bin, "
                          "country or string.",
                          "kind"};
    }
    if (kind && *kind != *asked) {
      co_return RiskError{409, "list_kind_mismatch",
                          fmt::format("The ruleset declares @{} as {}.", name,
                                      risk::ListKindName(*kind)),
                          "kind"};
    }
    kind = asked;
  }
  if (!kind) {
    auto lists = co_await store::ReadLists(pool_, DbDeadline());
    if (!lists) co_return Unavailable(lists.error());
    for (const auto& l : lists.value()) {
      if (l.name == name) kind = risk::ListKindFromName(l.kind);
    }
  }
  if (!kind) {
    co_return RiskError{400, "parameter_missing",
                        "kind is required for a list the ruleset does not declare.", "kind"};
  }
  if (request.value().empty() || request.value().size() > 128) {
    co_return RiskError{400, "parameter_invalid", "value must be 1..128 characters.", "value"};
  }
  store::ItemRow item;
  if (IsPersonal(*kind)) {
    if (request.value_is_hash()) {
      if (!LooksHashed(request.value())) {
        co_return RiskError{400, "parameter_invalid",
                            "value_is_hash: value must be a stored hash (h1:...).", "value"};
      }
      item.item = request.value();
    } else {
      // Personal data is hashed before it goes anywhere (DESIGN.md §6).
      item.item = hasher_.Hash(PersonalKindOf(*kind), request.value());
    }
  } else {
    item.item = request.value();
  }
  if (!request.expires_at().empty()) {
    const auto at = gateway::ParseUtc(request.expires_at());
    if (!at) {
      co_return RiskError{400, "parameter_invalid",
                          "expires_at must be UTC like 2026-11-27T03:00:00Z.", "expires_at"};
    }
    item.expires_at_us = at->time_since_epoch().count();
  }
  if (request.note().size() > 256) {
    co_return RiskError{400, "parameter_invalid", "note must be at most 256 bytes.", "note"};
  }
  item.note = request.note();
  risk::ListSetBuilder check(0);
  if (auto ok = check.Add(name, *kind, item.item); !ok) {
    // The message names the item; for personal kinds that is already the hash.
    co_return RiskError{400, "parameter_invalid", ok.error(), "value"};
  }
  const std::string kind_name(risk::ListKindName(*kind));
  auto changed = co_await store::AddItem(pool_, principal, name, kind_name, item, DbDeadline());
  if (!changed) co_return Unavailable(changed.error());
  if (changed.value() == store::ListChange::kKindMismatch) {
    co_return RiskError{409, "list_kind_mismatch",
                        fmt::format("List @{} exists with another kind than {}.", name, kind_name),
                        "kind"};
  }
  if (auto refreshed = co_await RefreshLists(false); !refreshed) {
    log::Get("risk")->warn("lists not refreshed after a change: {}",
                           refreshed.error().message());
  }
  log::Get("risk")->info("list @{} item {} by {}", name,
                         changed.value() == store::ListChange::kAdded ? "added" : "updated",
                         principal);
  item.added_by = principal;
  item.created_at_us = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  co_return ToApi(item);
}

asio::awaitable<RiskResult<void>> RiskService::RemoveListItem(std::string principal,
                                                              std::string name, std::string item,
                                                              bool plain) {
  if (!ValidListName(name)) co_return RiskError{404, "list_not_found", "No such list.", {}};
  if (plain) {
    auto lists = co_await store::ReadLists(pool_, DbDeadline());
    if (!lists) co_return Unavailable(lists.error());
    for (const auto& l : lists.value()) {
      const auto kind = risk::ListKindFromName(l.kind);
      if (l.name == name && kind && IsPersonal(*kind)) {
        item = hasher_.Hash(PersonalKindOf(*kind), item);
      }
    }
  }
  auto removed = co_await store::RemoveItem(pool_, principal, name, item, DbDeadline());
  if (!removed) co_return Unavailable(removed.error());
  if (removed.value() == store::ListChange::kNotFound) {
    co_return RiskError{404, "list_item_not_found", "No such item in this list.", {}};
  }
  if (auto refreshed = co_await RefreshLists(false); !refreshed) {
    log::Get("risk")->warn("lists not refreshed after a change: {}",
                           refreshed.error().message());
  }
  log::Get("risk")->info("list @{} item removed by {}", name, principal);
  co_return outcome::success();
}

// ---- Metrics ----

std::vector<prometheus::MetricFamily> RiskFamilies(const RiskCounters& c) {
  using prometheus::MetricType;
  auto counter = [](std::string name, std::string help,
                    std::vector<std::pair<std::string, std::uint64_t>> values,
                    std::string label) {
    prometheus::MetricFamily family{std::move(name), std::move(help), MetricType::Counter, {}};
    for (auto& [label_value, value] : values) {
      prometheus::ClientMetric metric;
      if (!label.empty()) metric.label.push_back({label, label_value});
      metric.counter.value = static_cast<double>(value);
      family.metric.push_back(std::move(metric));
    }
    return family;
  };
  return {
      counter("paygate_risk_decisions_total", "Live risk decisions, by outcome.",
              {{"allow", c.decisions[0].load()},
               {"review", c.decisions[1].load()},
               {"block", c.decisions[2].load()},
               {"hard_block", c.decisions[3].load()}},
              "outcome"),
      counter("paygate_risk_shadow_decisions_total", "Events decided by the shadow ruleset.",
              {{"", c.shadow_decisions.load()}}, ""),
      counter("paygate_risk_shadow_differences_total",
              "Shadow decisions that differed from the live one.",
              {{"", c.shadow_differences.load()}}, ""),
      counter("paygate_risk_events_tailed_total",
              "Events decided by other daemons and counted in this one's aggregates.",
              {{"", c.events_tailed.load()}}, ""),
      counter("paygate_risk_reloads_rejected_total",
              "Rulesets that did not compile and were not loaded.",
              {{"", c.reloads_rejected.load()}}, ""),
  };
}

}  // namespace paygate::fraud
