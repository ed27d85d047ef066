#include "gateway/risk/engine.h"

#include "gateway/risk/evaluator.h"
#include "gateway/risk/risk.pb.h"

namespace paygate::risk {

RulesetHolder::RulesetHolder(std::shared_ptr<const CompiledRuleset> initial)
    : current_(std::make_shared<AggregateStore>(std::move(initial), nullptr)) {}

Result<std::shared_ptr<AggregateStore>, CompileErrors> RulesetHolder::Load(std::string_view source,
                                                                           std::string_view file) {
  auto compiled = Compile(source, file);
  if (!compiled) return std::move(compiled).assume_error();
  return Swap(std::move(compiled).assume_value());
}

std::shared_ptr<AggregateStore> RulesetHolder::Swap(std::shared_ptr<const CompiledRuleset> next) {
  const auto previous = Current();
  auto store = std::make_shared<AggregateStore>(std::move(next), previous.get());
  current_.store(store, std::memory_order_release);
  return store;
}

namespace {
// Replays are not subject to the time budget: a busy machine must not change a backtest's outcomes.
std::int64_t NoBudgetClock() { return 0; }
}  // namespace

Result<std::vector<std::shared_ptr<pb::Decision>>, std::string> Replay(
    std::shared_ptr<const CompiledRuleset> ruleset, const ListSet& lists,
    std::span<const pb::Event> events) {
  AggregateStore store(std::move(ruleset), nullptr);
  EvalScratch scratch;
  auto decision = std::make_unique<Decision>();
  std::vector<std::shared_ptr<pb::Decision>> out;
  out.reserve(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    auto event = EventFromProto(events[i]);
    if (!event) return "event " + std::to_string(i) + ": " + event.assume_error();
    Evaluate(store, lists, event.assume_value(), scratch, *decision, &NoBudgetClock);
    store.Observe(event.assume_value());
    auto stored = std::make_shared<pb::Decision>();
    DecisionToProto(*decision, event.assume_value(), *stored);
    out.push_back(std::move(stored));
  }
  return out;
}

}  // namespace paygate::risk
