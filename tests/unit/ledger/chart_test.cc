// Proves the chart of accounts of DESIGN.md §4 is built per currency and merchant account with
// stable, distinct ids and the intended types and limit flags.
#include "ledger/ledger/chart.h"

#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>

namespace paygate::ledger {
namespace {

TEST(ChartTest, StandardChartPerCurrency) {
  // Proves every account of the chart exists once, with its type and flags, and ids that depend
  // only on (currency, name).
  ChartSpec spec;
  spec.currency = "CNY";
  spec.clearing = {{"wechat", "m1"}, {"wechat", "m2"}, {"alipay", "a1"}};
  spec.banks = {"icbc-001"};
  spec.clearing_must_not_go_negative = true;
  const auto chart = StandardChart(spec);

  std::map<std::string, Account> by_name;
  std::set<std::int64_t> ids;
  for (const auto& account : chart) {
    EXPECT_EQ(account.currency, "CNY");
    EXPECT_TRUE(by_name.emplace(account.name, account).second) << account.name;
    EXPECT_TRUE(ids.insert(account.id.value).second) << account.name;
    EXPECT_GT(account.id.value, 0);
    EXPECT_EQ(account.id, AccountIdFor("CNY", account.name));
  }
  EXPECT_EQ(chart.size(), 3u + 1u + 3u + 2u + 3u);
  EXPECT_EQ(by_name.at("provider_clearing:wechat:m2").type, AccountType::kAsset);
  EXPECT_TRUE(by_name.at("provider_clearing:alipay:a1").flags.credits_must_not_exceed_debits);
  EXPECT_EQ(by_name.at("bank:icbc-001").type, AccountType::kAsset);
  EXPECT_EQ(by_name.at("premiums_received").type, AccountType::kLiability);
  EXPECT_TRUE(by_name.at("claims_payable").flags.debits_must_not_exceed_credits);
  EXPECT_TRUE(by_name.at("refunds_payable").flags.debits_must_not_exceed_credits);
  EXPECT_EQ(by_name.at("provider_fees:wechat").type, AccountType::kExpense);
  EXPECT_EQ(by_name.at("provider_fees:alipay").type, AccountType::kExpense);
  EXPECT_EQ(by_name.at("claims_expense").type, AccountType::kExpense);
  EXPECT_TRUE(by_name.contains("suspense"));
  EXPECT_TRUE(by_name.contains("rounding"));

  // Another currency: same names, other ids.
  spec.currency = "USD";
  const auto usd = StandardChart(spec);
  EXPECT_NE(usd[0].id, chart[0].id);
  EXPECT_EQ(AccountIdFor("CNY", "premiums_received"), AccountIdFor("CNY", "premiums_received"));
}

}  // namespace
}  // namespace paygate::ledger
