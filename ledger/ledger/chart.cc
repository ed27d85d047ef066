#include "ledger/ledger/chart.h"

#include <cstdint>
#include <set>
#include <utility>

namespace paygate::ledger {

AccountId AccountIdFor(std::string_view currency, std::string_view name) {
  std::uint64_t hash = 14695981039346656037ULL;
  auto mix = [&hash](std::string_view bytes) {
    for (char c : bytes) {
      hash ^= static_cast<unsigned char>(c);
      hash *= 1099511628211ULL;
    }
  };
  mix(currency);
  mix(":");
  mix(name);
  const auto id = static_cast<std::int64_t>(hash & 0x7FFF'FFFF'FFFF'FFFFULL);
  return AccountId{id == 0 ? 1 : id};
}

std::vector<Account> StandardChart(const ChartSpec& spec) {
  std::vector<Account> chart;
  auto add = [&](AccountType type, std::string name, AccountFlags flags = {}) {
    Account account;
    account.id = AccountIdFor(spec.currency, name);
    account.type = type;
    account.currency = spec.currency;
    account.code = static_cast<std::int32_t>(type);
    account.name = std::move(name);
    account.flags = flags;
    chart.push_back(std::move(account));
  };
  const AccountFlags owed{.debits_must_not_exceed_credits = true};
  std::set<std::string> providers;
  for (const auto& clearing : spec.clearing) {
    add(AccountType::kAsset,
        "provider_clearing:" + clearing.provider + ":" + clearing.merchant_account,
        AccountFlags{.credits_must_not_exceed_debits = spec.clearing_must_not_go_negative});
    providers.insert(clearing.provider);
  }
  for (const auto& bank : spec.banks) add(AccountType::kAsset, "bank:" + bank);
  add(AccountType::kLiability, "premiums_received");
  add(AccountType::kLiability, "claims_payable", owed);
  add(AccountType::kLiability, "refunds_payable", owed);
  for (const auto& provider : providers) add(AccountType::kExpense, "provider_fees:" + provider);
  add(AccountType::kExpense, "claims_expense");
  add(AccountType::kAsset, "suspense");
  add(AccountType::kExpense, "rounding");
  return chart;
}

}  // namespace paygate::ledger
