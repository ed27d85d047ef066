#pragma once

// The payouts' HTTP routes (issue 7, DESIGN.md §5) on the API listener; the messages are in
// gateway/api/v1/payouts.proto:
//   POST /v1/payouts, GET /v1/payouts, GET /v1/payouts/{id}, POST /v1/payouts/{id}/cancel
//                                                        role claims, own payouts only
//   GET /v1/payouts/pending-approval, POST /v1/payouts/{id}/approve|reject     role approver
//   GET /v1/payouts/manual                               roles operator, finance
// Payout callbacks arrive on the shared /v1/callbacks/{provider}/{merchant_account} route.
#include <memory>

#include "gateway/edge/router.h"
#include "gateway/payments/routes.h"
#include "gateway/payouts/service.h"

namespace paygate::payouts {

void AddPayoutRoutes(edge::Router& router, std::shared_ptr<PayoutService> service,
                     const payments::PostWrapper& wrap_post);

}  // namespace paygate::payouts
