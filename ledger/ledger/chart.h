#pragma once

// The insurer's chart of accounts (DESIGN.md §4), per currency, built from configuration. Pure: the
// caller passes the result to Ledger::CreateAccounts at start-up, which is idempotent.
#include <string>
#include <string_view>
#include <vector>

#include "ledger/ledger/types.h"

namespace paygate::ledger {

struct ChartSpec {
  std::string currency;  // ISO 4217.
  struct Clearing {
    std::string provider;          // e.g. "wechat".
    std::string merchant_account;  // The provider's merchant account id.
  };
  std::vector<Clearing> clearing;
  std::vector<std::string> banks;  // Bank account names, e.g. "icbc-001".
  // Refuse payouts and fees a clearing account has not received (credits_must_not_exceed_debits).
  // Off by default: fees from a bill may arrive before the settlement they belong to.
  bool clearing_must_not_go_negative = false;
};

// A stable id for (currency, name): the same account gets the same id on every start-up and every
// instance, without a registry. 63-bit FNV-1a; a collision would surface as
// exists_with_different_fields from CreateAccounts, never as a silent merge.
AccountId AccountIdFor(std::string_view currency, std::string_view name);

// Accounts, by name:
//   provider_clearing:<provider>:<merchant account> (asset), bank:<account> (asset),
//   premiums_received, claims_payable, refunds_payable (liabilities; claims_payable and
//   refunds_payable with debits_must_not_exceed_credits: never pay more than is owed),
//   provider_fees:<provider> (expense, one per provider), claims_expense (expense),
//   suspense (asset, no limits: differences go either way), rounding (expense).
std::vector<Account> StandardChart(const ChartSpec& spec);

}  // namespace paygate::ledger
