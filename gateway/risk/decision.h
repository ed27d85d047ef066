#pragma once

// A risk decision (issue 5 §5): outcome, score, the rules that fired with their inputs, the rules
// that could not be decided and why, the pinned ruleset version and the evaluation time. The
// in-memory form is fixed-size so evaluation writes it without allocating; DecisionToProto renders
// the stored form (reason texts filled in, values readable) off the hot path, and Diff compares two
// stored decisions for shadow mode and backtests.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/risk/event.h"
#include "gateway/risk/ruleset.h"
#include "gateway/risk/value.h"

namespace paygate::risk {

namespace pb {
class Decision;
}

// Ordered by severity: a later outcome overrides an earlier one except as DESIGN.md §7's precedence
// says.
enum class Outcome : std::uint8_t { kAllow, kReview, kBlock, kHardBlock };
std::string_view OutcomeName(Outcome outcome);

enum class DecidedBy : std::uint8_t {
  kDefault,  // nothing fired and the score stayed below the thresholds
  kRule,     // a hard_block/allow/block/review rule (deciding_rule)
  kScore,    // the score reached a threshold
  kTimeout,  // the time budget ran out; the ruleset's on_timeout outcome
};

struct Decision {
  static constexpr std::size_t kMaxFired = 64;
  static constexpr std::size_t kMaxInputs = kMaxRecordedInputs;
  static constexpr std::size_t kMaxUnknown = 32;
  static constexpr std::uint16_t kNoOperand = 0xffff;

  struct Fired {
    std::uint16_t rule = 0;
    std::uint8_t input_count = 0;
    std::array<Value, kMaxInputs> inputs;  // values of rule.inputs[0..input_count)
  };
  struct Unknown {
    std::uint16_t rule = 0;
    std::uint16_t operand =
        kNoOperand;  // the first missing input; kNoOperand: amounts in two currencies
  };

  Outcome outcome = Outcome::kAllow;
  std::int32_t score = 0;
  DecidedBy decided_by = DecidedBy::kDefault;
  std::uint16_t deciding_rule = 0;
  bool timed_out = false;
  EventType event_type = EventType::kPremiumPayment;
  std::int64_t event_time_s = 0;
  std::int64_t eval_ns = 0;
  std::uint64_t lists_version = 0;
  // The ruleset this decision was made with (pinned: a reload does not change what it refers to).
  std::shared_ptr<const CompiledRuleset> ruleset;

  std::uint16_t fired_count = 0;
  bool fired_truncated = false;
  std::array<Fired, kMaxFired> fired;
  std::uint16_t unknown_count = 0;
  std::array<Unknown, kMaxUnknown> unknown;

  bool HasFired(std::string_view rule_id) const;
  // Why `rule_id` was undecided ("missing payment.amount"), or empty when it was decided.
  std::string UnknownWhy(std::string_view rule_id) const;
};

// The stored form. `event` must be the one decided (it supplies the text of string inputs).
void DecisionToProto(const Decision& decision, const Event& event, pb::Decision& out);

// How two decisions on the same event differ (a live one and a shadow or backtest one).
struct DecisionDiff {
  bool outcome_changed = false;
  int before_outcome = 0;  // pb::Outcome values
  int after_outcome = 0;
  std::int32_t score_before = 0;
  std::int32_t score_after = 0;
  std::vector<std::string> fired_only_before;  // rule ids, sorted
  std::vector<std::string> fired_only_after;
  bool same() const {
    return !outcome_changed && score_before == score_after && fired_only_before.empty() &&
           fired_only_after.empty();
  }
};
DecisionDiff Diff(const pb::Decision& before, const pb::Decision& after);

}  // namespace paygate::risk
