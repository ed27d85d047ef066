#pragma once

// The collections' HTTP routes (issue 4, DESIGN.md §5) on the API listener:
//   POST /v1/payments, GET /v1/payments, GET /v1/payments/{id}, POST /v1/payments/{id}/close,
//   POST /v1/payments/{id}/refunds, GET /v1/refunds/{id}         role sales, own objects only
//   POST /v1/callbacks/{provider}/{merchant_account}              providers, authenticated by the
//                                                                 provider's own signature
// Bodies are JSON (protobuf's JSON mapping of paygate.api.v1) or binary protobuf with
// Content-Type: application/x-protobuf; answers follow the request's Accept (or Content-Type).
#include <atomic>
#include <cstdint>
#include <memory>

#include "gateway/edge/router.h"
#include "gateway/payments/service.h"

namespace paygate::payments {

// Callback outcomes since start, for /metrics.
struct CallbackCounters {
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> duplicates{0};
  std::atomic<std::uint64_t> rejected{0};
};

// The route wrapper that enforces Idempotency-Key on POSTs (gateway/idempotency); identity when
// not given (tests of the routes alone).
using PostWrapper = std::function<edge::Handler(edge::Handler)>;

void AddPaymentRoutes(edge::Router& router, std::shared_ptr<PaymentService> service,
                      std::shared_ptr<CallbackCounters> counters, const PostWrapper& wrap_post);

}  // namespace paygate::payments
