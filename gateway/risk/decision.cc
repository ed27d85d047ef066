#include "gateway/risk/decision.h"

#include <algorithm>
#include <set>

#include "gateway/risk/risk.pb.h"

namespace paygate::risk {

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kAllow:
      return "allow";
    case Outcome::kReview:
      return "review";
    case Outcome::kBlock:
      return "block";
    case Outcome::kHardBlock:
      return "hard_block";
  }
  return "?";
}

bool Decision::HasFired(std::string_view rule_id) const {
  if (!ruleset) return false;
  for (std::size_t i = 0; i < fired_count; ++i) {
    if (ruleset->rules[fired[i].rule].id == rule_id) return true;
  }
  return false;
}

std::string Decision::UnknownWhy(std::string_view rule_id) const {
  if (!ruleset) return {};
  for (std::size_t i = 0; i < unknown_count; ++i) {
    if (ruleset->rules[unknown[i].rule].id != rule_id) continue;
    if (unknown[i].operand == kNoOperand) return "currency mismatch";
    return "missing " + ruleset->operands[unknown[i].operand].text;
  }
  return {};
}

namespace {

pb::Outcome ToPb(Outcome o) {
  switch (o) {
    case Outcome::kAllow:
      return pb::ALLOW;
    case Outcome::kReview:
      return pb::REVIEW;
    case Outcome::kBlock:
      return pb::BLOCK;
    case Outcome::kHardBlock:
      return pb::HARD_BLOCK;
  }
  return pb::OUTCOME_UNSPECIFIED;
}

// Text shown for a value: the event's own text for string-like attributes, FormatValue otherwise.
std::string Display(const Operand& op, const Value& v, const Event& event) {
  if (v.present && op.kind == OperandKind::kAttr &&
      (v.type == Type::kString || v.type == Type::kIp || v.type == Type::kBin) &&
      !event.Text(op.attr).empty()) {
    return std::string(event.Text(op.attr));
  }
  return FormatValue(v);
}

void ValueToProto(const Operand& op, const Value& v, const Event& event, pb::Value& out) {
  if (!v.present) return;
  switch (v.type) {
    case Type::kBool:
      out.set_bool_value(v.a != 0);
      break;
    case Type::kInt:
      out.set_int_value(v.a);
      break;
    case Type::kMoney:
      out.mutable_money_value()->set_minor_units(v.a);
      out.mutable_money_value()->set_currency(UnpackCurrency(v.aux));
      break;
    case Type::kDuration:
      out.set_duration_s(v.a);
      break;
    case Type::kTime:
      out.set_time_unix_s(v.a);
      break;
    case Type::kCountry:
      out.set_country(UnpackCountry(v.a));
      break;
    case Type::kString:
      if (op.kind == OperandKind::kAttr) {
        out.set_string_value(std::string(event.Text(op.attr)));
      } else {
        out.set_display(FormatValue(v));
      }
      break;
    case Type::kIp:
      out.set_ip(FormatValue(v));
      break;
    case Type::kBin:
      if (op.kind == OperandKind::kAttr) {
        out.set_bin(std::string(event.Text(op.attr)));
      } else {
        out.set_display(FormatValue(v));
      }
      break;
  }
}

}  // namespace

void DecisionToProto(const Decision& d, const Event& event, pb::Decision& out) {
  out.Clear();
  out.set_outcome(ToPb(d.outcome));
  out.set_score(d.score);
  out.set_lists_version(d.lists_version);
  out.set_event_type(std::string(EventTypeName(d.event_type)));
  out.set_event_time_unix_s(d.event_time_s);
  out.set_eval_ns(d.eval_ns);
  out.set_timed_out(d.timed_out);
  out.set_fired_truncated(d.fired_truncated);
  if (!d.ruleset) return;
  const CompiledRuleset& rs = *d.ruleset;
  out.set_ruleset_name(rs.name);
  out.set_ruleset_version(rs.version);
  switch (d.decided_by) {
    case DecidedBy::kDefault:
      out.set_decided_by("default");
      break;
    case DecidedBy::kRule:
      out.set_decided_by("rule:" + rs.rules[d.deciding_rule].id);
      break;
    case DecidedBy::kScore:
      out.set_decided_by("score>=" + std::to_string(d.outcome == Outcome::kBlock
                                                        ? rs.block_threshold
                                                        : rs.review_threshold));
      break;
    case DecidedBy::kTimeout:
      out.set_decided_by("timeout");
      break;
  }
  for (std::size_t i = 0; i < d.fired_count; ++i) {
    const Decision::Fired& f = d.fired[i];
    const Rule& rule = rs.rules[f.rule];
    auto* fr = out.add_fired();
    fr->set_rule_id(rule.id);
    fr->set_action(std::string(ActionName(rule.action)));
    fr->set_score(rule.score);
    std::string reason = rule.reason;
    for (std::size_t k = 0; k < f.input_count; ++k) {
      const Operand& op = rs.operands[rule.inputs[k]];
      auto* in = fr->add_inputs();
      in->set_name(op.text);
      ValueToProto(op, f.inputs[k], event, *in->mutable_value());
      const std::string placeholder = "{" + op.text + "}";
      for (auto pos = reason.find(placeholder); pos != std::string::npos;
           pos = reason.find(placeholder, pos)) {
        const std::string shown = Display(op, f.inputs[k], event);
        reason.replace(pos, placeholder.size(), shown);
        pos += shown.size();
      }
    }
    fr->set_reason(std::move(reason));
  }
  for (std::size_t i = 0; i < d.unknown_count; ++i) {
    const Decision::Unknown& u = d.unknown[i];
    auto* ur = out.add_unknown();
    ur->set_rule_id(rs.rules[u.rule].id);
    if (u.operand == Decision::kNoOperand) {
      ur->set_why("currency mismatch");
    } else {
      ur->set_input(rs.operands[u.operand].text);
      ur->set_why("missing");
    }
  }
}

DecisionDiff Diff(const pb::Decision& before, const pb::Decision& after) {
  DecisionDiff diff;
  diff.before_outcome = before.outcome();
  diff.after_outcome = after.outcome();
  diff.outcome_changed = before.outcome() != after.outcome();
  diff.score_before = before.score();
  diff.score_after = after.score();
  std::set<std::string> a;
  std::set<std::string> b;
  for (const auto& f : before.fired()) a.insert(f.rule_id());
  for (const auto& f : after.fired()) b.insert(f.rule_id());
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(),
                      std::back_inserter(diff.fired_only_before));
  std::set_difference(b.begin(), b.end(), a.begin(), a.end(),
                      std::back_inserter(diff.fired_only_after));
  return diff;
}

}  // namespace paygate::risk
