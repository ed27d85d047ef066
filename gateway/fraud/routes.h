#pragma once

// The fraud rules' HTTP routes on the API listener (DESIGN.md §5, §7; gateway/api/v1/risk.proto),
// all role risk:
//   GET /v1/risk/lists, GET /v1/risk/lists/{name}, POST /v1/risk/lists/{name}/items,
//   DELETE /v1/risk/lists/{name}/items/{item}      lists, every change audited
//   GET /v1/risk/rulesets, POST /v1/risk/rulesets    the running rulesets; replace one (body: the
//                                                  rules text; ?target=shadow for the shadow one)
//   GET /v1/reviews, POST /v1/reviews/{id}/approve, POST /v1/reviews/{id}/decline
//                                                  the review queue (never by the submitter)
#include <functional>
#include <memory>

#include "gateway/edge/router.h"
#include "gateway/fraud/service.h"
#include "gateway/payments/service.h"

namespace paygate::fraud {

// Wraps POST handlers (Idempotency-Key); identity when empty.
using PostWrapper = std::function<edge::Handler(edge::Handler)>;

void AddRiskRoutes(edge::Router& router, std::shared_ptr<RiskService> risk,
                   std::shared_ptr<payments::PaymentService> payments,
                   const PostWrapper& wrap_post);

}  // namespace paygate::fraud
