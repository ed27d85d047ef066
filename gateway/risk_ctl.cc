#include "gateway/risk_ctl.h"

#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include "config/file.h"
#include "config/logging.h"
#include "gateway/ctl_database.h"
#include "gateway/daemon.h"
#include "gateway/edge/asio_fwd.h"
#include "gateway/fraud/service.h"
#include "gateway/fraud/store.h"
#include "gateway/risk/engine.h"
#include "gateway/utc_time.h"

namespace paygate::gateway {

namespace asio = edge::asio;
using namespace std::chrono_literals;

namespace {

constexpr auto kCommandTime = 10min;

std::string Principal() {
  const char* user = std::getenv("USER");
  return std::string("paygatectl:") + (user != nullptr && *user != '\0' ? user : "unknown");
}

// The risk service of the configuration, not started: list changes go through the same code (and
// audit) as the API's.
int WithRisk(const config::v1::Config& config, std::string_view name,
             std::function<asio::awaitable<int>(fraud::RiskService&)> command) {
  auto setup = fraud::RiskSetupFromConfig(config);
  if (!setup) {
    std::cerr << "paygatectl " << name << ": " << setup.error() << "\n";
    return 1;
  }
  return WithDatabase(
      config, name, [&](db::PgPool& pool, asio::io_context& ioc) -> asio::awaitable<int> {
        auto risk = fraud::RiskService::Create(pool, ioc.get_executor(), setup.value().options,
                                               std::move(setup.value().hash_key));
        if (!risk) {
          std::cerr << "paygatectl " << name << ": " << risk.error() << "\n";
          co_return 1;
        }
        co_return co_await command(*risk.value());
      });
}

int Refused(std::string_view name, const fraud::RiskError& e) {
  std::cerr << "paygatectl " << name << ": " << e.code << ": " << e.message << "\n";
  return e.status >= 500 ? 1 : 2;
}

}  // namespace

int RunRiskListAdd(const config::v1::Config& config, const RiskListArgs& args) {
  return WithRisk(config, "risk list add", [&](fraud::RiskService& risk) -> asio::awaitable<int> {
    api::v1::AddRiskListItemRequest request;
    request.set_kind(args.kind);
    request.set_value(args.value);
    request.set_value_is_hash(args.hashed);
    request.set_expires_at(args.expires_at);
    request.set_note(args.note);
    auto added = co_await risk.AddListItem(Principal(), args.list, std::move(request));
    if (!added) co_return Refused("risk list add", added.error());
    std::cout << fmt::format("@{} {} added (expires {})\n", args.list, added.value().item(),
                             added.value().expires_at().empty() ? "never"
                                                                : added.value().expires_at());
    co_return 0;
  });
}

int RunRiskListRemove(const config::v1::Config& config, const RiskListArgs& args) {
  return WithRisk(config, "risk list remove",
                  [&](fraud::RiskService& risk) -> asio::awaitable<int> {
                    auto removed = co_await risk.RemoveListItem(Principal(), args.list, args.value,
                                                                !args.hashed);
                    if (!removed) co_return Refused("risk list remove", removed.error());
                    std::cout << fmt::format("@{}: item removed\n", args.list);
                    co_return 0;
                  });
}

int RunRiskListShow(const config::v1::Config& config, const std::string& list) {
  return WithRisk(config, "risk list show", [&](fraud::RiskService& risk) -> asio::awaitable<int> {
    if (list.empty()) {
      auto lists = co_await risk.Lists();
      if (!lists) co_return Refused("risk list show", lists.error());
      for (const auto& l : lists.value().lists()) {
        std::cout << fmt::format("@{:<24} {:<12} {} items\n", l.name(), l.kind(), l.item_count());
      }
      std::cout << fmt::format("lists version {}\n", lists.value().version());
      co_return 0;
    }
    auto shown = co_await risk.List(list);
    if (!shown) co_return Refused("risk list show", shown.error());
    std::cout << fmt::format("@{} ({}), {} items\n", shown.value().name(), shown.value().kind(),
                             shown.value().item_count());
    for (const auto& item : shown.value().items()) {
      std::cout << fmt::format("{}  expires={} added_by={} note={}\n", item.item(),
                               item.expires_at().empty() ? "never" : item.expires_at(),
                               item.added_by(), item.note());
    }
    co_return 0;
  });
}

int RunRiskBacktest(const config::v1::Config& config, const std::string& ruleset_file,
                    const std::string& from, const std::string& to) {
  const auto from_at = ParseUtc(from);
  const auto to_at = ParseUtc(to);
  if (!from_at || !to_at || *to_at <= *from_at) {
    std::cerr << "paygatectl risk backtest: --from and --to must be UTC like "
                 "2026-11-27T03:00:00Z, from before to\n";
    return 2;
  }
  const auto text = config::ReadWholeFile(ruleset_file);
  if (!text) {
    std::cerr << "paygatectl risk backtest: " << ruleset_file << " cannot be read\n";
    return 2;
  }
  auto compiled = risk::Compile(*text, ruleset_file);
  if (!compiled) {
    std::cerr << compiled.assume_error().ToString();
    return 2;
  }
  const auto ruleset = std::move(compiled).assume_value();
  const std::int64_t from_s =
      std::chrono::duration_cast<std::chrono::seconds>(from_at->time_since_epoch()).count();
  const std::int64_t to_s =
      std::chrono::duration_cast<std::chrono::seconds>(to_at->time_since_epoch()).count();
  // History the aggregates need before `from` (all-time ones: risk.history_days).
  std::int64_t horizon = 0;
  for (const auto& a : ruleset->aggregates) {
    horizon = std::max<std::int64_t>(
        horizon, a.window_s > 0 ? a.window_s + a.bucket_s
                                : std::int64_t{config.risk().history_days()} * 86400);
  }
  return WithRisk(
      config, "risk backtest", [&](fraud::RiskService& risk) -> asio::awaitable<int> {
        auto lists = co_await risk.RefreshLists(true);
        if (!lists) {
          std::cerr << "paygatectl risk backtest: " << lists.error().message() << "\n";
          co_return 1;
        }
        std::vector<risk::pb::Event> events;
        std::vector<std::string> live;  // stored decisions (JSON), "" when none
        std::vector<std::int64_t> times;
        std::int64_t after = 0;
        for (;;) {
          auto page = co_await fraud::store::ReadEventsWithDecisions(
              risk.pool(), from_s - horizon, to_s, after, 5000, db::Clock::now() + kCommandTime);
          if (!page) {
            std::cerr << "paygatectl risk backtest: " << page.error().message() << "\n";
            co_return 1;
          }
          for (const auto& row : page.value()) {
            after = row.id;
            risk::pb::Event event;
            if (!event.ParseFromString(row.payload)) continue;
            events.push_back(std::move(event));
            live.push_back(row.decision_json);
            times.push_back(row.event_time_s);
          }
          if (page.value().size() < 5000) break;
        }
        auto replayed = risk::Replay(ruleset, *risk.CurrentLists(), events);
        if (!replayed) {
          std::cerr << "paygatectl risk backtest: " << replayed.assume_error() << "\n";
          co_return 1;
        }
        std::map<std::string, int> transitions;
        struct RuleCount {
          int before = 0, after = 0, only_before = 0, only_after = 0;
        };
        std::map<std::string, RuleCount> rules;
        int decided = 0, changed = 0;
        google::protobuf::util::JsonParseOptions options;
        options.ignore_unknown_fields = true;
        for (std::size_t i = 0; i < events.size(); ++i) {
          if (times[i] < from_s || live[i].empty()) continue;  // warm-up history
          risk::pb::Decision before;
          if (!google::protobuf::util::JsonStringToMessage(live[i], &before, options).ok()) {
            continue;
          }
          const risk::pb::Decision& now = *replayed.assume_value()[i];
          ++decided;
          const risk::DecisionDiff diff = risk::Diff(before, now);
          if (diff.outcome_changed) ++changed;
          ++transitions[fmt::format("{} -> {}", risk::pb::Outcome_Name(before.outcome()),
                                    risk::pb::Outcome_Name(now.outcome()))];
          for (const auto& f : before.fired()) ++rules[f.rule_id()].before;
          for (const auto& f : now.fired()) ++rules[f.rule_id()].after;
          for (const auto& id : diff.fired_only_before) ++rules[id].only_before;
          for (const auto& id : diff.fired_only_after) ++rules[id].only_after;
        }
        std::cout << fmt::format(
            "backtest {} ({}) on {} decisions in [{}, {}): {} outcomes would change\n",
            ruleset->name, ruleset->version.substr(0, 12), decided, from, to, changed);
        std::cout << "outcomes (stored -> backtest):\n";
        for (const auto& [t, n] : transitions) std::cout << fmt::format("  {:<26} {}\n", t, n);
        std::cout << "rules (fired stored / backtest, newly, no longer):\n";
        for (const auto& [id, c] : rules) {
          std::cout << fmt::format("  {:<12} {:>6} / {:<6} +{} -{}\n", id, c.before, c.after,
                                   c.only_after, c.only_before);
        }
        co_return 0;
      });
}

}  // namespace paygate::gateway
