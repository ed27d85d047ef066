// Proves the stored forms and the wiring helpers: a decision renders with its outcome, deciding
// rule, fired rules with inputs and filled-in reasons, undecided rules and the ruleset version;
// events round- trip through their proto; Diff reports outcome, score and rule changes; Replay
// decides stored events in order; and RulesetHolder swaps atomically and never replaces a working
// ruleset with a broken one.
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/risk/engine.h"
#include "gateway/risk/event.h"
#include "gateway/risk/risk.pb.h"
#include "tests/unit/risk/risk_test_util.h"

namespace paygate::risk {
namespace {

using testing::Harness;
using testing::kDay;
using testing::kT0;
using testing::MustCompile;

constexpr std::string_view kRules = R"(ruleset claims
thresholds review 20 block 50
aggregate claims_90d = count() by claimant.id over 90d on claim_payout
rule FREQ on claim_payout review "{claims_90d} claims by {claimant.id} in 90d"
  when claims_90d >= 2 and claimant.id != "nobody"
rule NEW on claim_payout score +30 "loss {elapsed(policy.start_date, claim.loss_date)} after inception"
  when elapsed(policy.start_date, claim.loss_date) < 30d
rule LATE on claim_payout score +10 "late" when elapsed(claim.loss_date, claim.reported_at) > 30d
)";

Event Claim(std::int64_t t, std::string_view claimant) {
  Event e(EventType::kClaimPayout, t);
  e.SetText(Attr::kClaimantId, claimant);
  e.SetMoney(Attr::kClaimAmount, 120000, "CNY");
  e.SetTime(Attr::kPolicyStartDate, t - 10 * kDay);
  e.SetTime(Attr::kClaimLossDate, t - 2 * kDay);
  return e;
}

TEST(DecisionTest, RendersTheStoredForm) {
  // Proves everything the lead stores is there and readable.
  const auto rs = MustCompile(kRules);
  Harness h(rs);
  h.DecideAndObserve(Claim(kT0, "cl-1"));
  h.DecideAndObserve(Claim(kT0 + 1, "cl-1"));
  const Event e = Claim(kT0 + 2, "cl-1");
  const Decision& d = h.Decide(e);
  pb::Decision p;
  DecisionToProto(d, e, p);
  EXPECT_EQ(p.outcome(), pb::REVIEW);
  EXPECT_EQ(p.decided_by(), "rule:FREQ");
  EXPECT_EQ(p.score(), 30);
  EXPECT_EQ(p.ruleset_name(), "claims");
  EXPECT_EQ(p.ruleset_version(), rs->version);
  EXPECT_EQ(p.event_type(), "claim_payout");
  EXPECT_EQ(p.event_time_unix_s(), kT0 + 2);
  ASSERT_EQ(p.fired_size(), 2);
  EXPECT_EQ(p.fired(0).rule_id(), "FREQ");
  EXPECT_EQ(p.fired(0).action(), "review");
  EXPECT_EQ(p.fired(0).reason(), "2 claims by cl-1 in 90d");
  ASSERT_EQ(p.fired(0).inputs_size(), 2);
  EXPECT_EQ(p.fired(0).inputs(0).name(), "claims_90d");
  EXPECT_EQ(p.fired(0).inputs(0).value().int_value(), 2);
  EXPECT_EQ(p.fired(0).inputs(1).value().string_value(), "cl-1");
  EXPECT_EQ(p.fired(1).rule_id(), "NEW");
  EXPECT_EQ(p.fired(1).score(), 30);
  EXPECT_EQ(p.fired(1).reason(), "loss 8d after inception");
  ASSERT_EQ(p.unknown_size(), 1);
  EXPECT_EQ(p.unknown(0).rule_id(), "LATE");
  EXPECT_EQ(p.unknown(0).input(), "elapsed(claim.loss_date, claim.reported_at)");
  EXPECT_EQ(p.unknown(0).why(), "missing");
  EXPECT_GT(p.eval_ns(), 0);
}

TEST(DecisionTest, ScoreDecisionNamesTheThreshold) {
  // Proves a score-decided outcome says which threshold it crossed.
  Harness h(MustCompile(kRules));
  Event e = Claim(kT0, "cl-2");
  e.SetTime(Attr::kClaimReportedAt, kT0);
  e.SetTime(Attr::kClaimLossDate, kT0 - 40 * kDay);
  e.SetTime(Attr::kPolicyStartDate,
            kT0 - 45 * kDay);  // NEW (+30: loss 5d after start) and LATE (+10)
  pb::Decision p;
  DecisionToProto(h.Decide(e), e, p);
  EXPECT_EQ(p.score(), 40);
  EXPECT_EQ(p.outcome(), pb::REVIEW);
  EXPECT_EQ(p.decided_by(), "score>=20");
}

TEST(DecisionTest, EventRoundTripsThroughItsProto) {
  // Proves a stored event replays to the same values, including text, money, IPs and BINs.
  Event e(EventType::kPremiumPayment, kT0);
  e.SetMoney(Attr::kPaymentAmount, 123456, "CNY");
  e.SetText(Attr::kDeviceIp, "2001:db8::7");
  e.SetText(Attr::kPayerCardBin, "411111");
  e.SetText(Attr::kPayerCardCountry, "HK");
  e.SetText(Attr::kDeviceId, "dev-1");
  e.SetBool(Attr::kPayerIsPolicyholder, false);
  e.SetTime(Attr::kCustomerCreatedAt, kT0 - 5);
  pb::Event stored;
  EventToProto(e, stored);
  auto back = EventFromProto(stored);
  ASSERT_TRUE(back) << back.assume_error();
  const Event& r = back.assume_value();
  EXPECT_EQ(r.type(), EventType::kPremiumPayment);
  EXPECT_EQ(r.time(), kT0);
  for (const auto& info : Attributes()) {
    EXPECT_EQ(r.Get(info.attr), e.Get(info.attr)) << info.name;
  }
  EXPECT_EQ(r.Text(Attr::kDeviceId), "dev-1");

  pb::Event bad = stored;
  bad.mutable_attributes(0)->set_name("payment.amont");
  EXPECT_THAT(EventFromProto(bad).assume_error(),
              ::testing::HasSubstr("unknown attribute 'payment.amont'"));
  bad = stored;
  bad.set_event_type("claim_payout");  // payment.amount is not supplied on claims
  EXPECT_FALSE(EventFromProto(bad));
}

TEST(DecisionTest, DiffReportsOutcomeScoreAndRules) {
  // Proves Diff finds what a shadow or backtest would report, and nothing when the decisions agree.
  pb::Decision a;
  a.set_outcome(pb::REVIEW);
  a.set_score(30);
  a.add_fired()->set_rule_id("X");
  a.add_fired()->set_rule_id("Y");
  pb::Decision b = a;
  EXPECT_TRUE(Diff(a, b).same());
  b.set_outcome(pb::BLOCK);
  b.set_score(50);
  b.mutable_fired(0)->set_rule_id("Z");
  const DecisionDiff diff = Diff(a, b);
  EXPECT_TRUE(diff.outcome_changed);
  EXPECT_EQ(diff.before_outcome, pb::REVIEW);
  EXPECT_EQ(diff.after_outcome, pb::BLOCK);
  EXPECT_EQ(diff.score_before, 30);
  EXPECT_EQ(diff.score_after, 50);
  EXPECT_EQ(diff.fired_only_before, std::vector<std::string>{"X"});
  EXPECT_EQ(diff.fired_only_after, std::vector<std::string>{"Z"});
  EXPECT_FALSE(diff.same());
}

TEST(DecisionTest, ReplayDecidesStoredEventsInOrder) {
  // Proves Replay (backtests) rebuilds velocity from the events themselves: the third claim by one
  // claimant is the first that sees two earlier ones.
  std::vector<pb::Event> stored(3);
  for (int i = 0; i < 3; ++i) EventToProto(Claim(kT0 + i, "cl-9"), stored[i]);
  auto lists = ListSetBuilder(0).Build();
  auto replayed = Replay(MustCompile(kRules), *lists, stored);
  ASSERT_TRUE(replayed) << replayed.assume_error();
  const auto& ds = replayed.assume_value();
  ASSERT_EQ(ds.size(), 3u);
  EXPECT_EQ(ds[0]->outcome(), pb::REVIEW);  // score 30 (NEW) >= 20
  EXPECT_EQ(ds[0]->decided_by(), "score>=20");
  EXPECT_EQ(ds[2]->decided_by(), "rule:FREQ");
  // The candidate without FREQ: the diff names the rule that no longer fires.
  auto candidate = Replay(MustCompile("ruleset c\nthresholds review 20 block 50\n"
                                      "rule NEW on claim_payout score +30 \"new\" when "
                                      "elapsed(policy.start_date, claim.loss_date) < 30d\n"),
                          *lists, stored);
  ASSERT_TRUE(candidate);
  const DecisionDiff diff = Diff(*ds[2], *candidate.assume_value()[2]);
  EXPECT_FALSE(diff.outcome_changed);
  EXPECT_EQ(diff.fired_only_before, std::vector<std::string>{"FREQ"});
}

TEST(DecisionTest, HolderRejectsABrokenRulesetAndKeepsTheRunningOne) {
  // Proves a ruleset that fails to compile never replaces the running one, while a good one swaps
  // in and keeps the history of unchanged aggregates.
  RulesetHolder holder(MustCompile(kRules));
  const std::string v1 = holder.Current()->ruleset().version;
  holder.Current()->Observe(Claim(kT0, "cl-1"));
  auto broken = holder.Load(
      "ruleset x\nrule R on claim_payout review \"r\" when claim.amount > 5\n", "x.rules");
  ASSERT_FALSE(broken);
  EXPECT_THAT(broken.assume_error().ToString(), ::testing::HasSubstr("x.rules:2:"));
  EXPECT_EQ(holder.Current()->ruleset().version, v1);

  std::string next(kRules);
  next += "rule BIG on claim_payout block \"big\" when claim.amount > CNY 1000.00\n";
  auto swapped = holder.Load(next, "next.rules");
  ASSERT_TRUE(swapped);
  EXPECT_NE(holder.Current()->ruleset().version, v1);
  EXPECT_FALSE(holder.Current()->any_fresh());
  EXPECT_EQ(holder.Current()->Read(0, Claim(kT0 + 1, "cl-1")).a, 1);
}

TEST(DecisionTest, DecisionsDuringConcurrentReloadsSeeOneWholeRuleset) {
  // Proves the swap is atomic for readers: every decision made while another thread reloads reports
  // a version and an outcome that belong together.
  const std::string a = std::string(kRules);
  const std::string b =
      a + "rule ALL on claim_payout hard_block \"all\" when claim.amount > CNY 0.00\n";
  const std::string version_b = MustCompile(b)->version;
  RulesetHolder holder(MustCompile(a));
  std::atomic<bool> stop{false};
  std::thread reloader([&] {
    for (int i = 0; !stop.load(); ++i) ASSERT_TRUE(holder.Load(i % 2 ? a : b, "r.rules"));
  });
  auto lists = ListSetBuilder(0).Build();
  EvalScratch scratch;
  Decision d;
  const Event e = Claim(kT0, "cl-3");
  int mismatches = 0;
  for (int i = 0; i < 20000; ++i) {
    const auto store = holder.Current();
    Evaluate(*store, *lists, e, scratch, d, &testing::TickingClock);
    const bool is_b = d.ruleset->version == version_b;
    if (is_b != (d.outcome == Outcome::kHardBlock)) ++mismatches;
  }
  stop = true;
  reloader.join();
  EXPECT_EQ(mismatches, 0);
}

}  // namespace
}  // namespace paygate::risk
