#pragma once

// The live ruleset and what wires the engine together (issue 5 §2, §6, §7).
//
// RulesetHolder keeps the running ruleset together with its aggregate store and swaps both
// atomically: a decision pins one store (and so one ruleset version) for its whole evaluation.
// Load() compiles first and swaps only on success, so a ruleset that fails to compile never
// replaces the running one. A swap carries over the state of every aggregate whose definition is
// unchanged; new aggregates start empty and are flagged fresh, for the caller to rebuild from
// stored events (AggregateStore::ObserveFresh).
//
// Typical request path:
//   auto store = holder.Current();                 // pin
//   auto lists = list_holder.Current();            // pin
//   Evaluate(*store, *lists, event, scratch, decision);
//   store->Observe(event);                         // after the decision (aggregates.h)
//   DecisionToProto(decision, event, stored);      // off the hot path, with EventToProto(event)
#include <atomic>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "config/result.h"
#include "gateway/risk/aggregates.h"
#include "gateway/risk/decision.h"
#include "gateway/risk/lists.h"
#include "gateway/risk/ruleset.h"

namespace paygate::risk {

namespace pb {
class Event;
class Decision;
}  // namespace pb

class RulesetHolder {
 public:
  explicit RulesetHolder(std::shared_ptr<const CompiledRuleset> initial);

  // The running store (and, through it, the ruleset). Thread-safe.
  std::shared_ptr<AggregateStore> Current() const {
    return current_.load(std::memory_order_acquire);
  }

  // Compiles `source`; on success swaps it in and returns the new store, else returns the errors
  // and leaves the running ruleset alone.
  Result<std::shared_ptr<AggregateStore>, CompileErrors> Load(std::string_view source,
                                                              std::string_view file);
  // Swaps in an already compiled ruleset.
  std::shared_ptr<AggregateStore> Swap(std::shared_ptr<const CompiledRuleset> next);

 private:
  std::atomic<std::shared_ptr<AggregateStore>> current_;
};

// Decides stored events in their original order with `ruleset` on a fresh aggregate store
// (observing each after its decision), as `paygatectl risk backtest` and shadow catch-up need.
// Lists are the given snapshot. No time budget applies (replays are deterministic; eval_ns is 0).
// Fails on an event that does not parse (naming its position).
Result<std::vector<std::shared_ptr<pb::Decision>>, std::string> Replay(
    std::shared_ptr<const CompiledRuleset> ruleset, const ListSet& lists,
    std::span<const pb::Event> events);

}  // namespace paygate::risk
