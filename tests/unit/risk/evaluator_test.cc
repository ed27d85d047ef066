// Proves compiled evaluation: three-valued logic for missing values (a comparison with a missing
// value is false and the decision records why), the outcome precedence hard_block > allow > block >
// review > score thresholds, typed comparisons (money per currency, IPs, BINs, countries, sets),
// the per-decision time budget, and that a decision pins its ruleset.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/risk/event.h"
#include "tests/unit/risk/risk_test_util.h"

namespace paygate::risk {
namespace {

using testing::Harness;
using testing::kDay;
using testing::kHour;
using testing::kT0;
using testing::MustCompile;

Event Premium(std::int64_t amount_fen, std::string_view currency = "CNY") {
  Event e(EventType::kPremiumPayment, kT0);
  e.SetMoney(Attr::kPaymentAmount, amount_fen, currency);
  return e;
}

TEST(EvaluatorTest, MissingValueMakesAComparisonFalseAndIsRecorded) {
  // Proves a rule reading a missing attribute does not fire, `not` of it does not fire either, and
  // the decision says which input was missing.
  Harness h(MustCompile(R"(ruleset t
rule BIG on premium_payment review "big" when payment.amount > CNY 100.00
rule NOT-BIG on premium_payment review "not big" when not payment.amount > CNY 100.00
rule HOLDER on premium_payment review "third party" when not payer.is_policyholder
)"));
  Event e(EventType::kPremiumPayment, kT0);
  const Decision& d = h.Decide(e);
  EXPECT_EQ(d.outcome, Outcome::kAllow);
  EXPECT_EQ(d.fired_count, 0);
  EXPECT_EQ(d.unknown_count, 3);
  EXPECT_EQ(d.UnknownWhy("BIG"), "missing payment.amount");
  EXPECT_EQ(d.UnknownWhy("NOT-BIG"), "missing payment.amount");
  EXPECT_EQ(d.UnknownWhy("HOLDER"), "missing payer.is_policyholder");

  e.SetMoney(Attr::kPaymentAmount, 50000, "CNY");
  e.SetBool(Attr::kPayerIsPolicyholder, true);
  const Decision& d2 = h.Decide(e);
  EXPECT_TRUE(d2.HasFired("BIG"));
  EXPECT_FALSE(d2.HasFired("NOT-BIG"));
  EXPECT_FALSE(d2.HasFired("HOLDER"));
  EXPECT_EQ(d2.unknown_count, 0);
}

TEST(EvaluatorTest, KleeneAndOr) {
  // Proves `or` with one true side fires despite a missing side, and `and` with a false side is
  // false (not unknown), so it is not reported as undecided.
  Harness h(MustCompile(R"(ruleset t
rule OR on premium_payment review "or" when payment.amount > CNY 1.00 or payer.card_country == country:CN
rule AND on premium_payment review "and" when payment.amount > CNY 1000.00 and payer.card_country == country:CN
rule ISM on premium_payment review "ism" when is_missing(payer.card_country) and payment.amount > CNY 1.00
)"));
  const Decision& d = h.Decide(Premium(500));
  EXPECT_TRUE(d.HasFired("OR"));
  EXPECT_FALSE(d.HasFired("AND"));
  EXPECT_TRUE(d.HasFired("ISM"));
  EXPECT_EQ(d.UnknownWhy("AND"), "");
  EXPECT_EQ(d.unknown_count, 0);
}

TEST(EvaluatorTest, MoneyInAnotherCurrencyIsUnknownNotFalse) {
  // Proves amounts are never compared across currencies; the rule records the mismatch.
  Harness h(MustCompile(
      "ruleset t\nrule BIG on premium_payment review \"big\" when payment.amount > CNY 100.00\n"));
  const Decision& d = h.Decide(Premium(1'000'000, "USD"));
  EXPECT_FALSE(d.HasFired("BIG"));
  EXPECT_EQ(d.UnknownWhy("BIG"), "currency mismatch");
  EXPECT_TRUE(h.Decide(Premium(1'000'000, "CNY")).HasFired("BIG"));
  EXPECT_FALSE(h.Decide(Premium(10'000, "CNY")).HasFired("BIG"));  // exactly 100.00 is not > 100.00
}

constexpr std::string_view kPrecedence = R"(ruleset t
thresholds review 30 block 60
list @hard : device_id
list @vip : account_hash
rule HARD on premium_payment hard_block "hard" when device.id in @hard
rule VIP on premium_payment allow "trusted" when payer.instrument_hash in @vip
rule BLOCK on premium_payment block "block" when payment.amount > CNY 1000.00
rule REVIEW on premium_payment review "review" when payment.amount > CNY 500.00
rule S1 on premium_payment score +25 "s1" when payment.amount > CNY 100.00
rule S2 on premium_payment score +40 "s2" when payment.amount > CNY 200.00
)";

TEST(EvaluatorTest, OutcomePrecedence) {
  // Proves hard_block > allow > block > review > score thresholds, and that every matching rule is
  // recorded even after the outcome is settled.
  Harness h(MustCompile(kPrecedence));
  ListSetBuilder lists(7);
  ASSERT_TRUE(lists.Add("hard", ListKind::kDeviceId, "dev-bad"));
  ASSERT_TRUE(lists.Add("vip", ListKind::kAccountHash, "acct-vip"));
  h.SetLists(std::move(lists).Build());

  auto event = [](std::int64_t fen, std::string_view device, std::string_view account) {
    Event e = Premium(fen);
    e.SetText(Attr::kDeviceId, device);
    e.SetText(Attr::kPayerInstrumentHash, account);
    return e;
  };
  const Event e_hard = event(200000, "dev-bad", "acct-vip");
  const Decision& d = h.Decide(e_hard);
  EXPECT_EQ(d.outcome, Outcome::kHardBlock);
  EXPECT_EQ(d.decided_by, DecidedBy::kRule);
  EXPECT_EQ(d.ruleset->rules[d.deciding_rule].id, "HARD");
  EXPECT_EQ(d.fired_count, 6);
  EXPECT_EQ(d.score, 65);
  EXPECT_EQ(d.lists_version, 7u);

  const Event e_vip = event(200000, "dev-ok", "acct-vip");
  EXPECT_EQ(h.Decide(e_vip).outcome, Outcome::kAllow);
  EXPECT_EQ(h.Decide(e_vip).decided_by, DecidedBy::kRule);
  const Event e_block = event(200000, "dev-ok", "acct-x");
  EXPECT_EQ(h.Decide(e_block).outcome, Outcome::kBlock);
  const Event e_review = event(60000, "dev-ok", "acct-x");
  EXPECT_EQ(h.Decide(e_review).outcome, Outcome::kReview);
  EXPECT_EQ(h.Decide(e_review).decided_by, DecidedBy::kRule);
  // 250.00: S1 + S2 = 65 >= 60 -> block by score; 150.00: 25 < 30 -> allow.
  const Event e_score_block = event(25000, "dev-ok", "acct-x");
  EXPECT_EQ(h.Decide(e_score_block).outcome, Outcome::kBlock);
  EXPECT_EQ(h.Decide(e_score_block).decided_by, DecidedBy::kScore);
  const Event e_low = event(15000, "dev-ok", "acct-x");
  EXPECT_EQ(h.Decide(e_low).outcome, Outcome::kAllow);
  EXPECT_EQ(h.Decide(e_low).decided_by, DecidedBy::kDefault);
  EXPECT_EQ(h.Decide(e_low).score, 25);
}

TEST(EvaluatorTest, ScoreBetweenThresholdsIsReview) {
  // Proves the review threshold applies when the block threshold is not reached.
  Harness h(MustCompile(R"(ruleset t
thresholds review 30 block 60
rule S on refund score +35 "s" when refund.amount > CNY 1.00
)"));
  Event e(EventType::kRefund, kT0);
  e.SetMoney(Attr::kRefundAmount, 500, "CNY");
  EXPECT_EQ(h.Decide(e).outcome, Outcome::kReview);
  EXPECT_EQ(h.Decide(e).decided_by, DecidedBy::kScore);
}

TEST(EvaluatorTest, TypedComparisons) {
  // Proves IPs, BINs, countries, string sets, durations and percent_of compare by value.
  Harness h(MustCompile(R"(ruleset t
rule IP on premium_payment review "ip" when device.ip == "2001:db8::1"
rule IP4 on premium_payment review "ip4" when device.ip == "192.0.2.7"
rule BIN on premium_payment review "bin" when payer.card_bin == "411111"
rule CC on premium_payment review "cc" when payer.card_country != customer.residence_country
rule SET on premium_payment review "set" when payer.card_funding in ("prepaid", "gift")
rule NSET on premium_payment review "nset" when payer.card_funding not in ("credit")
rule AGE on premium_payment review "age" when age(customer.created_at) < 72h
rule PCT on premium_payment review "pct" when payment.amount > percent_of(policy.premium_due, 110)
)"));
  Event e = Premium(11001);
  e.SetText(Attr::kDeviceIp, "2001:db8:0::1");
  e.SetText(Attr::kPayerCardBin, "41111100");
  e.SetText(Attr::kPayerCardCountry, "CN");
  e.SetText(Attr::kCustomerResidenceCountry, "HK");
  e.SetText(Attr::kPayerCardFunding, "gift");
  e.SetTime(Attr::kCustomerCreatedAt, kT0 - 71 * kHour);
  e.SetMoney(Attr::kPolicyPremiumDue, 10000, "CNY");
  const Decision& d = h.Decide(e);
  for (const char* id : {"IP", "BIN", "CC", "SET", "NSET", "AGE", "PCT"})
    EXPECT_TRUE(d.HasFired(id)) << id;
  EXPECT_FALSE(d.HasFired("IP4"));

  e.SetText(Attr::kDeviceIp, "192.0.2.7");
  e.SetText(Attr::kPayerCardBin, "411112");
  e.SetText(Attr::kCustomerResidenceCountry, "CN");
  e.SetText(Attr::kPayerCardFunding, "credit");
  e.SetTime(Attr::kCustomerCreatedAt, kT0 - 73 * kHour);
  e.SetMoney(Attr::kPaymentAmount, 11000, "CNY");  // exactly 110%: not above
  const Decision& d2 = h.Decide(e);
  EXPECT_TRUE(d2.HasFired("IP4"));
  for (const char* id : {"IP", "BIN", "CC", "SET", "NSET", "AGE", "PCT"})
    EXPECT_FALSE(d2.HasFired(id)) << id;
}

TEST(EvaluatorTest, EventSettersRejectWhatTheSchemaDoesNot) {
  // Proves events validate their input: undeclared attributes, wrong types and malformed text are
  // refused.
  Event e(EventType::kPremiumPayment, kT0);
  EXPECT_FALSE(e.SetMoney(Attr::kClaimAmount, 1, "CNY"));  // not on premium_payment
  EXPECT_FALSE(e.SetBool(Attr::kPaymentAmount, true));     // wrong type
  EXPECT_FALSE(e.SetText(Attr::kPayerCardCountry, "cn"));  // lower case
  EXPECT_FALSE(e.SetText(Attr::kDeviceIp, "300.1.1.1"));
  EXPECT_FALSE(e.SetText(Attr::kPayerCardBin, "4111"));
  EXPECT_FALSE(e.SetMoney(Attr::kPaymentAmount, 1, "yuan"));
  EXPECT_FALSE(e.SetTime(Attr::kEventTime, 5));  // the event's own time is fixed
  EXPECT_FALSE(e.Get(Attr::kPaymentAmount).present);
  EXPECT_TRUE(e.Get(Attr::kEventTime).present);
}

std::int64_t g_fake_ns = 0;
std::int64_t FakeClock() {
  g_fake_ns += 600'000;  // every reading advances 0.6 ms
  return g_fake_ns;
}

TEST(EvaluatorTest, TimeBudgetExceededTakesTheTimeoutOutcome) {
  // Proves a decision that runs over its budget stops and takes on_timeout, marked as such.
  Harness h(MustCompile(R"(ruleset t
time_budget_us 500
on_timeout block
rule R on premium_payment review "r" when payment.amount > CNY 1.00
)"));
  AggregateStore& store = h.store();
  auto lists = ListSetBuilder(0).Build();
  EvalScratch scratch;
  Decision d;
  Evaluate(store, *lists, Premium(500), scratch, d, &FakeClock);  // 0.6 ms per reading: over 0.5 ms
  EXPECT_TRUE(d.timed_out);
  EXPECT_EQ(d.outcome, Outcome::kBlock);
  EXPECT_EQ(d.decided_by, DecidedBy::kTimeout);
  Evaluate(store, *lists, Premium(500), scratch, d, &testing::TickingClock);  // 1 ns per reading
  EXPECT_FALSE(d.timed_out);
  EXPECT_EQ(d.outcome, Outcome::kReview);
}

TEST(EvaluatorTest, DecisionPinsItsRuleset) {
  // Proves a decision keeps the ruleset it was made with, so its version and rule ids stay readable
  // after a reload drops the ruleset elsewhere.
  Decision d;
  std::string version;
  {
    auto rs =
        MustCompile("ruleset t\nrule R on refund block \"r\" when refund.amount > CNY 1.00\n");
    version = rs->version;
    Harness h(rs);
    Event e(EventType::kRefund, kT0);
    e.SetMoney(Attr::kRefundAmount, 500, "CNY");
    d = h.Decide(e);
  }
  ASSERT_NE(d.ruleset, nullptr);
  EXPECT_EQ(d.ruleset->version, version);
  EXPECT_TRUE(d.HasFired("R"));
}

TEST(EvaluatorTest, RulesOnlyRunForTheirEvents) {
  // Proves scoping at run time: a refund rule never fires on a premium payment.
  Harness h(MustCompile(R"(ruleset t
rule R on refund block "r" when age(customer.created_at) >= 0s
rule P on premium_payment review "p" when age(customer.created_at) >= 0s
)"));
  Event e(EventType::kPremiumPayment, kT0);
  e.SetTime(Attr::kCustomerCreatedAt, kT0 - kDay);
  const Decision& d = h.Decide(e);
  EXPECT_TRUE(d.HasFired("P"));
  EXPECT_FALSE(d.HasFired("R"));
  EXPECT_EQ(d.outcome, Outcome::kReview);
}

}  // namespace
}  // namespace paygate::risk
