// Proves the rule compiler accepts the language of gateway/risk/ruleset.h, rejects type and scope
// errors with file, line, column and a clear message, deduplicates predicates across rules, and
// versions a ruleset by the hash of its text.
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/risk/risk_test_util.h"

namespace paygate::risk {
namespace {

using testing::ErrorsOf;
using ::testing::HasSubstr;
using testing::MustCompile;

constexpr std::string_view kHeader = "ruleset t\nthresholds review 40 block 80\n";

std::string WithHeader(std::string_view body) { return std::string(kHeader) + std::string(body); }

TEST(CompilerTest, CompilesTheInsurancePack) {
  // Proves the shipped pack compiles and covers at least 20 red flags on both sides.
  const auto rs = MustCompile(testing::ReadSourceFile("config/rules/insurance.rules"));
  ASSERT_NE(rs, nullptr);
  EXPECT_EQ(rs->name, "insurance");
  EXPECT_GE(rs->rules.size(), 20u);
  int premium = 0;
  int payout = 0;
  for (const auto& r : rs->rules) {
    if (r.events & (kOnPremium | kOnRefund | kOnCancel)) ++premium;
    if (r.events & (kOnClaim | kOnAccountChange)) ++payout;
  }
  EXPECT_GE(premium, 10);
  EXPECT_GE(payout, 10);
}

TEST(CompilerTest, ErrorsCarryFileLineColumnAndMessage) {
  // Proves a misspelt attribute is reported at its exact position.
  const std::string errors = ErrorsOf(
      WithHeader("rule R1 on premium_payment block \"x\"\n  when paymnt.amount > CNY 1.00\n"));
  EXPECT_EQ(errors, "test.rules:4:8: unknown attribute or aggregate 'paymnt.amount'");
}

TEST(CompilerTest, CollectsErrorsFromSeveralStatements) {
  // Proves the compiler recovers at the next statement and reports every broken one.
  const std::string errors = ErrorsOf(
      WithHeader("rule R1 on premium_payment block \"x\" when payment.amount > 5\n"
                 "rule R2 on premium_payment block \"x\" when payment.amount > CNY 1.00\n"
                 "rule R3 on premium_payment blok \"x\" when payment.amount > CNY 1.00\n"));
  EXPECT_THAT(errors, HasSubstr("test.rules:3:"));
  EXPECT_THAT(errors, HasSubstr("cannot compare money (payment.amount) with int (5)"));
  EXPECT_THAT(errors, HasSubstr("test.rules:5:28: unknown action 'blok'"));
  EXPECT_THAT(errors, ::testing::Not(HasSubstr("test.rules:4:")));
}

TEST(CompilerTest, RejectsAttributesTheEventDoesNotSupply) {
  // Proves scoping: a claim attribute cannot be read by a premium rule.
  EXPECT_THAT(
      ErrorsOf(WithHeader("rule R on premium_payment review \"x\" when claim.amount > CNY 1.00\n")),
      HasSubstr("claim.amount is not supplied on event premium_payment"));
  EXPECT_THAT(
      ErrorsOf(WithHeader("aggregate a = count() by claim.id over 1h on premium_payment\n")),
      HasSubstr("attribute claim.id is not supplied on event premium_payment"));
}

TEST(CompilerTest, TypeChecksLiteralsAndOperators) {
  // Proves typed literals: money is exact per currency, countries need their prefix, strings are
  // not ordered, and a decimal without a currency is refused.
  EXPECT_THAT(ErrorsOf(WithHeader(
                  "rule R on premium_payment review \"x\" when payment.amount > CNY 1.001\n")),
              HasSubstr("CNY has 2 decimal places; 1.001 is not an exact amount"));
  EXPECT_THAT(
      ErrorsOf(WithHeader("rule R on premium_payment review \"x\" when payment.amount > 1.5\n")),
      HasSubstr("a decimal number needs a currency"));
  EXPECT_THAT(ErrorsOf(WithHeader(
                  "rule R on premium_payment review \"x\" when payer.card_country == \"CN\"\n")),
              HasSubstr("write a country as country:CN"));
  EXPECT_THAT(
      ErrorsOf(WithHeader("rule R on premium_payment review \"x\" when device.id < \"a\"\n")),
      HasSubstr("'<' does not apply to string"));
  EXPECT_THAT(ErrorsOf(WithHeader(
                  "rule R on premium_payment review \"x\" when age(customer.created_at) < 5\n")),
              HasSubstr("cannot compare duration"));
  EXPECT_THAT(
      ErrorsOf(WithHeader("rule R on premium_payment review \"x\" when payment.amount > XYZ 1\n")),
      HasSubstr("unknown currency XYZ"));
  EXPECT_THAT(ErrorsOf(WithHeader(
                  "rule R on premium_payment review \"x\" when age(customer.created_at) < 3w\n")),
              HasSubstr("unknown unit"));
  EXPECT_EQ(
      ErrorsOf(WithHeader(
          "rule R on premium_payment review \"x\" when device.ip == \"10.0.0.1\" or "
          "payer.card_bin == \"411111\" or payer.card_country in (country:CN, country:HK)\n")),
      "");
}

TEST(CompilerTest, ChecksListsAndTheirKinds) {
  // Proves lists must be declared and hold the attribute's kind of item.
  EXPECT_THAT(
      ErrorsOf(WithHeader("rule R on premium_payment block \"x\" when device.id in @nope\n")),
      HasSubstr("list @nope is not declared"));
  EXPECT_THAT(
      ErrorsOf(WithHeader(
          "list @a : account_hash\nrule R on premium_payment block \"x\" when device.id in @a\n")),
      HasSubstr("device.id holds device_id values; @a is a list of account_hash"));
  EXPECT_THAT(ErrorsOf(WithHeader("list @a : colour\n")), HasSubstr("unknown list kind 'colour'"));
}

TEST(CompilerTest, ChecksAggregates) {
  // Proves aggregates are declared before use, take a whole number of buckets, and filters read no
  // lists or aggregates.
  EXPECT_THAT(
      ErrorsOf(WithHeader("rule R on premium_payment review \"x\" when n >= 1\n"
                          "aggregate n = count() by device.id over 1h on premium_payment\n")),
      HasSubstr("unknown attribute or aggregate 'n' (aggregates must be declared before use)"));
  EXPECT_THAT(
      ErrorsOf(WithHeader("aggregate n = count() by device.id over 90m on premium_payment\n")), "");
  EXPECT_THAT(
      ErrorsOf(WithHeader("aggregate n = count() by device.id over 3h30m on premium_payment\n")),
      HasSubstr("unknown unit"));
  EXPECT_THAT(
      ErrorsOf(WithHeader("aggregate n = count() by device.id over 150m on premium_payment\n")),
      HasSubstr("whole number of 1h buckets"));
  EXPECT_THAT(
      ErrorsOf(WithHeader("aggregate f = first_seen() by device.id over 1h on premium_payment\n")),
      HasSubstr("first_seen and last_seen are all-time"));
  EXPECT_THAT(ErrorsOf(WithHeader(
                  "aggregate s = sum(payment.amount) by device.id over 1h on premium_payment\n")),
              HasSubstr("the currency to sum"));
  EXPECT_THAT(
      ErrorsOf(WithHeader(
          "list @l : device_id\naggregate n = count() by device.id over 1h on premium_payment "
          "where device.id in @l\n")),
      HasSubstr("a 'where' filter cannot use lists"));
}

TEST(CompilerTest, ChecksRulesAndRulesetStatements) {
  // Proves rule ids are unique, reasons only name inputs the condition reads, and score rules need
  // thresholds.
  EXPECT_THAT(ErrorsOf(WithHeader("rule R on refund review \"x\" when refund.amount > CNY 1.00\n"
                                  "rule R on refund review \"x\" when refund.amount > CNY 2.00\n")),
              HasSubstr("rule R is declared twice"));
  EXPECT_THAT(ErrorsOf(WithHeader(
                  "rule R on refund review \"{claim.amount}\" when refund.amount > CNY 1.00\n")),
              HasSubstr("the reason refers to {claim.amount}"));
  EXPECT_THAT(
      ErrorsOf("ruleset t\nrule R on refund score +5 \"x\" when refund.amount > CNY 1.00\n"),
      HasSubstr("test.rules:2:18: score rules need a 'thresholds review N block M' statement"));
  EXPECT_THAT(ErrorsOf("ruleset t\nthresholds review 90 block 10\n"), HasSubstr("review <= block"));
  EXPECT_THAT(ErrorsOf("rule R on refund review \"x\" when refund.amount > CNY 1.00\n"),
              HasSubstr("missing 'ruleset NAME' statement"));
  EXPECT_THAT(ErrorsOf(WithHeader("rule R on refund review \"x\" when refund.amount >\n")),
              HasSubstr("expected a value, attribute or aggregate, found end of file"));
  EXPECT_THAT(ErrorsOf(WithHeader("rule R on refund review \"x\" when refund.amount\n")),
              HasSubstr("expected a comparison"));
}

TEST(CompilerTest, DeduplicatesPredicatesAndOperandsAcrossRules) {
  // Proves a condition written in two rules is one predicate, evaluated once per decision.
  const auto rs = MustCompile(WithHeader(
      "aggregate n = count() by device.id over 1h on premium_payment\n"
      "rule A on premium_payment review \"a\" when n >= 5 and payment.amount > CNY 10.00\n"
      "rule B on premium_payment block \"b\" when n >= 5 and payment.amount > CNY 99.00\n"
      "rule C on premium_payment score +5 \"c\" when n >= 5\n"));
  ASSERT_NE(rs, nullptr);
  EXPECT_EQ(rs->predicates.size(), 3u);
  // Operands: n, 5, payment.amount, two amounts.
  EXPECT_EQ(rs->operands.size(), 5u);
  const auto& plan = rs->plans[static_cast<int>(EventType::kPremiumPayment)];
  EXPECT_EQ(plan.rules.size(), 3u);
  EXPECT_EQ(plan.predicates.size(), 3u);
  EXPECT_TRUE(rs->plans[static_cast<int>(EventType::kRefund)].rules.empty());
}

TEST(CompilerTest, SurvivesTruncatedAndCorruptedInput) {
  // Proves rulesets pushed over the API cannot crash the compiler: every prefix of the pack and the
  // pack with bytes overwritten either compile or come back with positioned errors.
  const std::string pack = testing::ReadSourceFile("config/rules/insurance.rules");
  int failures = 0;
  for (std::size_t n = 0; n < pack.size(); n += 13) {
    auto r = Compile(std::string_view(pack).substr(0, n), "p.rules");
    if (!r) {
      ++failures;
      EXPECT_FALSE(r.assume_error().errors.empty());
      EXPECT_GT(r.assume_error().errors.front().line, 0);
    }
  }
  EXPECT_GT(failures, 0);
  std::uint64_t seed = 12345;
  for (int round = 0; round < 300; ++round) {
    std::string mutated = pack;
    for (int k = 0; k < 4; ++k) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      mutated[(seed >> 33) % mutated.size()] = "()@:=<>!\"#+-.,0aZ \n"[(seed >> 13) % 20];
    }
    auto r = Compile(mutated, "m.rules");
    if (!r) {
      EXPECT_FALSE(r.assume_error().errors.empty());
    }
  }
}

TEST(CompilerTest, VersionIsTheHashOfTheText) {
  // Proves the version pins the exact source: same text, same version; any change, another one.
  const std::string a = WithHeader("rule R on refund review \"x\" when refund.amount > CNY 1.00\n");
  const std::string b = WithHeader("rule R on refund review \"x\" when refund.amount > CNY 2.00\n");
  EXPECT_EQ(MustCompile(a)->version, MustCompile(a)->version);
  EXPECT_NE(MustCompile(a)->version, MustCompile(b)->version);
  EXPECT_EQ(MustCompile(a)->version.size(), 64u);
}

}  // namespace
}  // namespace paygate::risk
