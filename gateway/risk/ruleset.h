#pragma once

// The rule language and its compiled form (DESIGN.md §7, issue 5).
//
// Language (one statement per keyword; `#` starts a comment; statements may span lines):
//
//   ruleset insurance
//   thresholds review 40 block 80          # score thresholds, review <= block
//   time_budget_us 200                     # per-decision budget (default 1000)
//   on_timeout review                      # outcome when the budget is exceeded:
//   allow|review|block list @blocked_accounts : account_hash  # kinds: account_hash device_id
//   id_number name ip bin country string aggregate cards_per_policy =
//   count_distinct(payer.instrument_hash) by policy.id over 24h on premium_payment aggregate
//   claims_near_limit = count() by claimant.id over 180d on claim_payout
//       where claim.amount >= percent_of(policy.auto_approval_limit, 90)
//   rule PREM-02 on premium_payment review "{cards_per_policy} cards tried for one policy in 24h"
//       when cards_per_policy >= 3
//
// Aggregate functions: count(), sum(attr[, CUR]) (money sums take the currency they add up),
// count_distinct(attr), first_seen(), last_seen(). Windows (`over`) apply to
// count/sum/count_distinct; see aggregates.h for their exact semantics. An aggregate is declared
// once and referenced by name.
//
// Rule actions, in precedence order: hard_block, allow, block, review, score +N. Conditions:
// comparisons
// (== != < <= > >=) between operands of one type; `and`, `or`, `not`, parentheses; `x in @list`,
// `x in (lit, ...)`, `x not in ...`; `is_missing(x)`; `is_multiple_of(x, lit)`; a bool operand
// alone. Operands: attributes (schema.h), aggregates, literals, `age(t)` (event.time - t),
// `elapsed(t1, t2)` (t2 - t1) and `percent_of(x, N)` (x * N / 100, truncated towards zero).
// Literals: ints `5`, money `CNY 5000.00` (exact, never more decimals than the currency has),
// durations `30d 12h 15m 45s`, countries `country:CN`, strings `"prepaid"`, `true`/`false`. A
// string literal compared with an IP or BIN attribute is parsed as one.
//
// Missing values: conditions are three-valued. A comparison, list or set test with a missing
// operand (or two amounts in different currencies) is unknown; `not unknown` is unknown; `and` is
// false if any side is false, `or` is true if any side is true; otherwise unknown spreads. A rule
// whose condition is unknown does not fire, and the decision records which input was missing.
// `is_missing(x)` is never unknown.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/result.h"
#include "gateway/risk/schema.h"
#include "gateway/risk/value.h"

namespace paygate::risk {

// Inputs of a rule recorded with each firing (and usable as {placeholders} in its reason).
inline constexpr std::size_t kMaxRecordedInputs = 6;

enum class Action : std::uint8_t { kHardBlock, kAllow, kBlock, kReview, kScore };
std::string_view ActionName(Action action);

enum class OperandKind : std::uint8_t { kLiteral, kAttr, kAggregate, kAge, kElapsed, kPercentOf };

// Operands and predicates are deduplicated across the whole ruleset: one entry per distinct
// expression, so each is computed once per decision. Children always have smaller indices than
// their parents.
struct Operand {
  OperandKind kind = OperandKind::kLiteral;
  Type type = Type::kBool;
  Attr attr = Attr::kEventTime;  // kAttr
  std::uint16_t aggregate = 0;   // kAggregate: index into CompiledRuleset::aggregates
  std::uint16_t lhs = 0;         // kAge, kElapsed (first), kPercentOf
  std::uint16_t rhs = 0;         // kElapsed (second)
  std::int64_t percent = 0;      // kPercentOf
  Value literal;                 // kLiteral
  EventMask available = 0;       // events on which the operand can be computed
  std::string text;  // as it renders in decisions: "payment.amount", "age(policy.start_date)"
};

enum class CmpOp : std::uint8_t { kEq, kNe, kLt, kLe, kGt, kGe };
enum class PredicateKind : std::uint8_t { kCompare, kInList, kInSet, kIsMissing, kMultipleOf };

struct Predicate {
  PredicateKind kind = PredicateKind::kCompare;
  CmpOp op = CmpOp::kEq;
  std::uint16_t lhs = 0;
  std::uint16_t rhs = 0;        // kCompare; kMultipleOf (the literal divisor)
  std::uint16_t list = 0;       // kInList: index into CompiledRuleset::lists
  std::uint32_t set_begin = 0;  // kInSet: [begin, end) in CompiledRuleset::set_values (sorted)
  std::uint32_t set_end = 0;
};

// Postfix program over predicate results, with three-valued logic (see above).
enum class OpCode : std::uint8_t { kPredicate, kNot, kAnd, kOr };
struct Instruction {
  OpCode op;
  std::uint16_t arg;  // kPredicate: predicate index; kAnd/kOr: number of operands
};

struct Rule {
  std::string id;
  Action action = Action::kReview;
  std::int32_t score = 0;  // kScore
  std::string reason;      // may hold {input} placeholders, filled in when the decision is rendered
  EventMask events = 0;
  std::uint32_t code_begin = 0;  // [begin, end) in CompiledRuleset::code
  std::uint32_t code_end = 0;
  std::vector<std::uint16_t> inputs;  // non-literal operands the condition reads, in source order
  int line = 0;
};

enum class AggregateFunc : std::uint8_t { kCount, kSum, kCountDistinct, kFirstSeen, kLastSeen };
std::string_view AggregateFuncName(AggregateFunc func);

struct AggregateDef {
  std::string name;
  AggregateFunc func = AggregateFunc::kCount;
  Attr of = Attr::kEventTime;  // kSum, kCountDistinct
  std::uint32_t currency = 0;  // kSum over money: only amounts in this currency add up
  Attr by = Attr::kEventTime;  // the key
  std::int64_t window_s = 0;   // kCount, kSum, kCountDistinct
  std::int64_t bucket_s = 0;
  EventMask on = 0;                // events that feed it
  std::uint32_t filter_begin = 0;  // `where`: [begin, end) in code; empty = every event
  std::uint32_t filter_end = 0;
  Type type = Type::kInt;  // the value type rules see
  // Identifies the definition independently of its name and of the rest of the ruleset, so a
  // reloaded ruleset keeps the state of aggregates it defines identically (aggregates.h).
  std::string signature;
};

struct ListRef {
  std::string name;  // without '@'
  ListKind kind = ListKind::kNone;
};

// Which operands, predicates and rules an event type needs, in evaluation order.
struct EventPlan {
  std::vector<std::uint16_t> operands;
  std::vector<std::uint16_t> predicates;
  std::vector<std::uint16_t> rules;
};

// An immutable compiled ruleset. Shared by pointer between threads; never modified after Compile.
struct CompiledRuleset {
  std::string name;
  std::string version;  // hex SHA-256 of the source text
  std::string file;
  std::int32_t review_threshold = 0;
  std::int32_t block_threshold = 0;
  bool has_thresholds = false;
  std::int64_t time_budget_ns = 1'000'000;
  Action on_timeout = Action::kReview;

  std::vector<Operand> operands;
  std::vector<Predicate> predicates;
  std::vector<std::int64_t> set_values;
  std::vector<Instruction> code;
  std::vector<Rule> rules;
  std::vector<AggregateDef> aggregates;
  std::vector<ListRef> lists;
  std::array<EventPlan, kEventTypeCount> plans;
  int max_stack = 0;

  int RuleIndex(std::string_view id) const;  // -1 when absent
  int AggregateIndex(std::string_view name) const;
};

struct CompileError {
  std::string file;
  int line = 0;
  int column = 0;
  std::string message;
  std::string ToString() const;  // "file:line:column: message"
};

struct CompileErrors {
  std::vector<CompileError> errors;
  std::string ToString() const;  // one per line
};

// Compiles `source` (named `file` in errors). Collects every error it can find; a ruleset with any
// error is never returned.
Result<std::shared_ptr<const CompiledRuleset>, CompileErrors> Compile(std::string_view source,
                                                                      std::string_view file);

}  // namespace paygate::risk
