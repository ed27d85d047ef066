#pragma once

// Evaluating a compiled ruleset on one event (DESIGN.md §7). The caller pins one ruleset (with its
// aggregate store) and one list snapshot for the whole decision, and owns an EvalScratch sized for
// the ruleset (one per thread; Prepare allocates only when a bigger ruleset arrives). Evaluate
// itself does not allocate: it computes each operand the event's rules need once (attribute reads,
// aggregate lookups, derived durations), each predicate once, then runs each rule's postfix program
// over the predicate results with three-valued logic (ruleset.h).
//
// Outcome precedence: any hard_block rule -> hard_block; else any allow rule -> allow; else any
// block rule -> block; else any review rule -> review; else score >= block threshold -> block;
// score >= review threshold -> review; else allow. All matching rules are recorded, also after the
// outcome is settled.
//
// Time budget: the ruleset's time_budget_us is checked between phases and every 32 operands; when
// it is exceeded the decision stops, has timed_out set, and takes the ruleset's on_timeout outcome.
#include <cstdint>
#include <memory>
#include <vector>

#include "gateway/risk/aggregates.h"
#include "gateway/risk/decision.h"
#include "gateway/risk/event.h"
#include "gateway/risk/lists.h"
#include "gateway/risk/ruleset.h"

namespace paygate::risk {

enum class Truth : std::uint8_t { kFalse, kTrue, kUnknown };

class EvalScratch {
 public:
  void Prepare(const CompiledRuleset& ruleset);

 private:
  friend void Evaluate(const AggregateStore&, const ListSet&, const Event&, EvalScratch&, Decision&,
                       std::int64_t (*)());
  std::vector<Value> operands_;
  std::vector<Truth> predicates_;
  std::vector<Truth> stack_;
  std::vector<const TypedList*> lists_;
};

// Monotonic nanoseconds (the default clock of the time budget).
std::int64_t SteadyNowNs();

// Decides `event` with `aggregates.ruleset()` (whose store supplies the aggregate values) and
// `lists` into `out`. `now_ns` is the clock of the time budget (injectable for tests). Call Observe
// on the store afterwards to count the event (aggregates.h).
void Evaluate(const AggregateStore& aggregates, const ListSet& lists, const Event& event,
              EvalScratch& scratch, Decision& out, std::int64_t (*now_ns)() = &SteadyNowNs);

// Evaluates a `where` filter (code range) on an event, without aggregates or lists.
Truth EvaluateFilter(const CompiledRuleset& ruleset, std::uint32_t begin, std::uint32_t end,
                     const Event& event);

}  // namespace paygate::risk
