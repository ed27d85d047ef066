#pragma once

// Ledger reads for finance over the API (role finance), DESIGN.md §5 /v1/ledger/...:
//   GET /v1/ledger/accounts/{id}/balance[?at=TIME]
//   GET /v1/ledger/accounts/{id}/statement[?limit=N&after=CURSOR]
//   GET /v1/ledger/trial-balance?currency=C[&at=TIME]
// TIME is ISO 8601 UTC ("2026-11-27T03:00:00Z"). Bad parameters answer 400 naming the parameter; an
// unknown account 404; the database unavailable 503.
#include <memory>

#include "gateway/edge/router.h"
#include "ledger/ledger/ledger.h"

namespace paygate::gateway {

void AddLedgerRoutes(edge::Router& router, std::shared_ptr<ledger::Ledger> ledger);

}  // namespace paygate::gateway
