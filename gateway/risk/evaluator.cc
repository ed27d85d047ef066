#include "gateway/risk/evaluator.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>

namespace paygate::risk {

namespace {

// Reads operand values: literals from the ruleset, everything else from the per-decision cache.
struct Values {
  const CompiledRuleset& rs;
  const Value* cache;
  const Value& operator()(std::uint16_t id) const {
    const Operand& o = rs.operands[id];
    return o.kind == OperandKind::kLiteral ? o.literal : cache[id];
  }
};

// Computes one non-literal operand from the event, the aggregates (null in filters) and already
// computed children.
template <class Get>
Value Compute(const Operand& o, const Event& event, const AggregateStore* aggregates,
              const Get& get) {
  switch (o.kind) {
    case OperandKind::kLiteral:
      return o.literal;
    case OperandKind::kAttr:
      return event.Get(o.attr);
    case OperandKind::kAggregate:
      return aggregates != nullptr ? aggregates->Read(o.aggregate, event) : Value::Missing(o.type);
    case OperandKind::kAge: {
      const Value& t = get(o.lhs);
      if (!t.present) return Value::Missing(Type::kDuration);
      return Value::Of(Type::kDuration, event.time() - t.a);
    }
    case OperandKind::kElapsed: {
      const Value& a = get(o.lhs);
      const Value& b = get(o.rhs);
      if (!a.present || !b.present) return Value::Missing(Type::kDuration);
      return Value::Of(Type::kDuration, b.a - a.a);
    }
    case OperandKind::kPercentOf: {
      const Value& x = get(o.lhs);
      if (!x.present) return Value::Missing(o.type);
      std::int64_t product = 0;
      if (__builtin_mul_overflow(x.a, o.percent, &product)) return Value::Missing(o.type);
      return Value::Of(o.type, product / 100, x.aux);
    }
  }
  return Value::Missing(o.type);
}

template <class Get>
Truth EvalPredicate(const CompiledRuleset& rs, const Predicate& p, const Get& get,
                    const TypedList* const* lists, std::int64_t now_s) {
  const Value& x = get(p.lhs);
  switch (p.kind) {
    case PredicateKind::kIsMissing:
      return x.present ? Truth::kFalse : Truth::kTrue;
    case PredicateKind::kCompare: {
      const Value& y = get(p.rhs);
      if (!x.present || !y.present) return Truth::kUnknown;
      if (x.type == Type::kMoney && x.aux != y.aux) return Truth::kUnknown;
      int c;
      if (x.type == Type::kIp) {
        const auto xa = static_cast<std::uint64_t>(x.a);
        const auto ya = static_cast<std::uint64_t>(y.a);
        c = xa != ya ? (xa < ya ? -1 : 1) : (x.b != y.b ? (x.b < y.b ? -1 : 1) : 0);
      } else {
        c = x.a != y.a ? (x.a < y.a ? -1 : 1) : 0;
      }
      bool r = false;
      switch (p.op) {
        case CmpOp::kEq:
          r = c == 0;
          break;
        case CmpOp::kNe:
          r = c != 0;
          break;
        case CmpOp::kLt:
          r = c < 0;
          break;
        case CmpOp::kLe:
          r = c <= 0;
          break;
        case CmpOp::kGt:
          r = c > 0;
          break;
        case CmpOp::kGe:
          r = c >= 0;
          break;
      }
      return r ? Truth::kTrue : Truth::kFalse;
    }
    case PredicateKind::kInList: {
      if (!x.present) return Truth::kUnknown;
      const TypedList* list = lists != nullptr ? lists[p.list] : nullptr;
      return list != nullptr && list->Contains(x, now_s) ? Truth::kTrue : Truth::kFalse;
    }
    case PredicateKind::kInSet: {
      if (!x.present) return Truth::kUnknown;
      const auto* begin = rs.set_values.data() + p.set_begin;
      const auto* end = rs.set_values.data() + p.set_end;
      return std::binary_search(begin, end, x.a) ? Truth::kTrue : Truth::kFalse;
    }
    case PredicateKind::kMultipleOf: {
      const Value& d = get(p.rhs);
      if (!x.present || !d.present) return Truth::kUnknown;
      if (x.type == Type::kMoney && x.aux != d.aux) return Truth::kUnknown;
      return d.a != 0 && x.a % d.a == 0 ? Truth::kTrue : Truth::kFalse;
    }
  }
  return Truth::kUnknown;
}

// Runs a postfix program; `pred` gives a predicate's truth.
template <class Pred>
Truth Run(const CompiledRuleset& rs, std::uint32_t begin, std::uint32_t end, Truth* stack,
          const Pred& pred) {
  int sp = 0;
  for (std::uint32_t i = begin; i < end; ++i) {
    const Instruction ins = rs.code[i];
    switch (ins.op) {
      case OpCode::kPredicate:
        stack[sp++] = pred(ins.arg);
        break;
      case OpCode::kNot:
        if (stack[sp - 1] != Truth::kUnknown) {
          stack[sp - 1] = stack[sp - 1] == Truth::kTrue ? Truth::kFalse : Truth::kTrue;
        }
        break;
      case OpCode::kAnd:
      case OpCode::kOr: {
        const Truth dominant = ins.op == OpCode::kAnd ? Truth::kFalse : Truth::kTrue;
        const Truth neutral = ins.op == OpCode::kAnd ? Truth::kTrue : Truth::kFalse;
        Truth r = neutral;
        for (int k = sp - ins.arg; k < sp; ++k) {
          if (stack[k] == dominant) {
            r = dominant;
            break;
          }
          if (stack[k] == Truth::kUnknown) r = Truth::kUnknown;
        }
        sp -= ins.arg;
        stack[sp++] = r;
        break;
      }
    }
  }
  return sp == 1 ? stack[0] : Truth::kUnknown;
}

Outcome OutcomeOf(Action action) {
  switch (action) {
    case Action::kHardBlock:
      return Outcome::kHardBlock;
    case Action::kBlock:
      return Outcome::kBlock;
    case Action::kReview:
      return Outcome::kReview;
    case Action::kAllow:
    case Action::kScore:
      return Outcome::kAllow;
  }
  return Outcome::kReview;
}

}  // namespace

std::int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void EvalScratch::Prepare(const CompiledRuleset& ruleset) {
  if (operands_.size() < ruleset.operands.size()) operands_.resize(ruleset.operands.size());
  if (predicates_.size() < ruleset.predicates.size()) predicates_.resize(ruleset.predicates.size());
  if (stack_.size() < static_cast<std::size_t>(ruleset.max_stack) + 1)
    stack_.resize(ruleset.max_stack + 1);
  if (lists_.size() < ruleset.lists.size()) lists_.resize(ruleset.lists.size());
}

void Evaluate(const AggregateStore& aggregates, const ListSet& lists, const Event& event,
              EvalScratch& scratch, Decision& out, std::int64_t (*now_ns)()) {
  const std::int64_t start_ns = now_ns();
  const CompiledRuleset& rs = aggregates.ruleset();
  scratch.Prepare(rs);  // allocates only for a ruleset bigger than any before on this scratch

  out.outcome = Outcome::kAllow;
  out.score = 0;
  out.decided_by = DecidedBy::kDefault;
  out.deciding_rule = 0;
  out.timed_out = false;
  out.event_type = event.type();
  out.event_time_s = event.time();
  out.lists_version = lists.version();
  out.ruleset = aggregates.ruleset_ptr();
  out.fired_count = 0;
  out.fired_truncated = false;
  out.unknown_count = 0;

  const std::int64_t deadline_ns = start_ns + rs.time_budget_ns;
  auto timeout = [&] {
    out.timed_out = true;
    out.decided_by = DecidedBy::kTimeout;
    out.outcome = OutcomeOf(rs.on_timeout);
    out.eval_ns = now_ns() - start_ns;
  };

  const EventPlan& plan = rs.plans[static_cast<std::size_t>(event.type())];
  // Aggregate lookups are cache misses into large tables; issuing them all first lets them overlap
  // (RED-FLAGS.md §6.2 "batch the fetch per entity key").
  for (const std::uint16_t id : plan.operands) {
    if (rs.operands[id].kind == OperandKind::kAggregate)
      aggregates.Prefetch(rs.operands[id].aggregate, event);
  }
  Value* cache = scratch.operands_.data();
  const Values get{rs, cache};
  for (std::size_t i = 0; i < plan.operands.size(); ++i) {
    const std::uint16_t id = plan.operands[i];
    cache[id] = Compute(rs.operands[id], event, &aggregates, get);
    if ((i & 31) == 31 && now_ns() > deadline_ns) return timeout();
  }
  for (std::size_t i = 0; i < rs.lists.size(); ++i)
    scratch.lists_[i] = lists.Find(rs.lists[i].name);
  Truth* preds = scratch.predicates_.data();
  for (const std::uint16_t id : plan.predicates) {
    preds[id] = EvalPredicate(rs, rs.predicates[id], get, scratch.lists_.data(), event.time());
  }
  if (now_ns() > deadline_ns) return timeout();

  // The first rule of each class in declaration order decides within its class, so the outcome does
  // not depend on evaluation order.
  constexpr int kNone = -1;
  int first_of[5] = {kNone, kNone, kNone, kNone, kNone};
  Truth* stack = scratch.stack_.data();
  const auto pred = [preds](std::uint16_t id) { return preds[id]; };
  for (const std::uint16_t r : plan.rules) {
    const Rule& rule = rs.rules[r];
    const Truth t = Run(rs, rule.code_begin, rule.code_end, stack, pred);
    if (t == Truth::kTrue) {
      const auto cls = static_cast<std::size_t>(rule.action);
      if (first_of[cls] == kNone) first_of[cls] = r;
      out.score += rule.score;
      if (out.fired_count < Decision::kMaxFired) {
        Decision::Fired& f = out.fired[out.fired_count++];
        f.rule = r;
        f.input_count =
            static_cast<std::uint8_t>(std::min(rule.inputs.size(), Decision::kMaxInputs));
        for (std::size_t k = 0; k < f.input_count; ++k) f.inputs[k] = get(rule.inputs[k]);
      } else {
        out.fired_truncated = true;
      }
    } else if (t == Truth::kUnknown && out.unknown_count < Decision::kMaxUnknown) {
      Decision::Unknown& u = out.unknown[out.unknown_count++];
      u.rule = r;
      u.operand = Decision::kNoOperand;
      for (const std::uint16_t op : rule.inputs) {
        if (!get(op).present) {
          u.operand = op;
          break;
        }
      }
    }
  }

  static constexpr Action kPrecedence[] = {Action::kHardBlock, Action::kAllow, Action::kBlock,
                                           Action::kReview};
  bool decided = false;
  for (const Action a : kPrecedence) {
    const int r = first_of[static_cast<std::size_t>(a)];
    if (r != kNone) {
      out.outcome = OutcomeOf(a);
      out.decided_by = DecidedBy::kRule;
      out.deciding_rule = static_cast<std::uint16_t>(r);
      decided = true;
      break;
    }
  }
  if (!decided && rs.has_thresholds) {
    if (out.score >= rs.block_threshold) {
      out.outcome = Outcome::kBlock;
      out.decided_by = DecidedBy::kScore;
    } else if (out.score >= rs.review_threshold) {
      out.outcome = Outcome::kReview;
      out.decided_by = DecidedBy::kScore;
    }
  }
  out.eval_ns = now_ns() - start_ns;
}

namespace {
// Filters are small and run once per observed event: operands are computed on demand, recursively.
Value ComputeDirect(const CompiledRuleset& rs, std::uint16_t id, const Event& event) {
  const Operand& o = rs.operands[id];
  if (o.kind == OperandKind::kLiteral) return o.literal;
  return Compute(o, event, nullptr,
                 [&](std::uint16_t child) { return ComputeDirect(rs, child, event); });
}
}  // namespace

Truth EvaluateFilter(const CompiledRuleset& rs, std::uint32_t begin, std::uint32_t end,
                     const Event& event) {
  const auto get = [&](std::uint16_t id) { return ComputeDirect(rs, id, event); };
  Truth stack[64];  // the compiler bounds every program's depth by 64
  const auto pred = [&](std::uint16_t id) {
    return EvalPredicate(rs, rs.predicates[id], get, nullptr, event.time());
  };
  return Run(rs, begin, end, stack, pred);
}

}  // namespace paygate::risk
