#pragma once

// Reconciliation for finance over the API (issue 8, DESIGN.md §5), role finance only; every
// change is audited by the engine (recon_audit) with the caller's principal:
//   POST /v1/reconciliations?provider=P&merchant_account=A&bill_date=YYYY-MM-DD[&file_name=F]
//        The body is the bill file itself, byte for byte as the provider serves it (any
//        Content-Type; application/octet-stream is conventional): WeChat Pay's trade bill (plain
//        or gzip), Alipay's zip, UnionPay's zip or INN file (file_name then names the INN file,
//        whose name carries the settle date). Bounded by api.limits.body_size_max_bytes; larger
//        files go through `paygatectl recon import`, which streams. 201 with the reconciliation;
//        200 with already_imported true when the same file was imported before (nothing
//        changed); 422 bill_invalid when the file does not parse or its totals disagree.
//   POST /v1/reconciliations/settlements      {"provider", "merchant_account",
//        "provider_reference", "value_date", "amount_minor", "references": [...] | "bill_date"}
//        One net settlement line (ledger/recon/settlement.h): 201 with the settlement, its
//        expected net and any settlement_mismatch exception; 200 with already_settled when the
//        same provider_reference was recorded before; 409 already_settled when a covered line or
//        item was settled before; 404 settlement_lines_not_found. No Idempotency-Key: the
//        provider's reference is the key.
//   GET  /v1/reconciliations?bill_date=D       the day's current reconciliations
//   GET  /v1/reconciliations/{id}              counts and amounts per class, per provider and day
//   GET  /v1/reconciliation-exceptions[?class=&status=&provider=&assignee=&bill_date=&after=&limit=]
//   POST /v1/reconciliation-exceptions/{id}/assign   {"assignee": "..."}
//   POST /v1/reconciliation-exceptions/{id}/comment  {"body": "..."}
//   POST /v1/reconciliation-exceptions/{id}/resolve  {"reason": "...", "post_adjustment": true}
// The other POSTs carry an Idempotency-Key (the daemon wraps them); bodies and answers are JSON
// or binary protobuf (paygate.api.v1, gateway/api/v1/recon.proto) like every other route.
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "gateway/edge/router.h"
#include "gateway/recon/reconcilers.h"

namespace paygate::gateway::recon {

struct ReconRoutesOptions {
  // The configured provider accounts: uploads for any other are refused (400), so a typo never
  // opens a clearing account nobody books to.
  std::set<std::pair<std::string, std::string>> accounts;
  // Bound on one import (parse, match, post) and on each read.
  std::chrono::seconds import_timeout{300};
  std::chrono::seconds read_timeout{30};
};

using PostWrapper = std::function<edge::Handler(edge::Handler)>;

void AddReconRoutes(edge::Router& router, std::shared_ptr<Reconcilers> reconcilers,
                    ReconRoutesOptions options, const PostWrapper& wrap_post);

// The configured provider accounts (providers[]), for ReconRoutesOptions::accounts.
std::set<std::pair<std::string, std::string>> ConfiguredAccounts(const config::v1::Config& config);

}  // namespace paygate::gateway::recon
