#pragma once

// Transfer builders shared by the ledger's unit and integration tests, so both speak of transfers
// the same way: CNY, reason code 1, and an external reference derived from the id.
#include <cstdint>
#include <string>

#include "ledger/ledger/types.h"

namespace paygate::testing {

inline ledger::Transfer TransferOf(std::string id, std::int64_t debit, std::int64_t credit,
                                   std::int64_t amount,
                                   ledger::TransferKind kind = ledger::TransferKind::kSingle) {
  ledger::Transfer t;
  t.id.value = std::move(id);
  t.debit_account_id = ledger::AccountId{debit};
  t.credit_account_id = ledger::AccountId{credit};
  t.amount = amount;
  t.currency = "CNY";
  t.kind = kind;
  t.reason_code = 1;
  t.external_ref = "order-" + t.id.value;
  return t;
}

// Posts or voids pending transfer `pending` (amount 0: the whole pending amount).
inline ledger::Transfer ResolveOf(std::string id, std::string pending, ledger::TransferKind kind,
                                  std::int64_t amount = 0) {
  ledger::Transfer t;
  t.id.value = std::move(id);
  t.pending_id.value = std::move(pending);
  t.kind = kind;
  t.amount = amount;
  return t;
}

}  // namespace paygate::testing
