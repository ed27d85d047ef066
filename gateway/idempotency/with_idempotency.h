#pragma once

// Idempotency-Key on POST routes, with Stripe's semantics (DESIGN.md §5): a client retries a POST
// with the same key and gets the first attempt's answer instead of a second effect.
#include <chrono>
#include <memory>

#include "gateway/edge/router.h"
#include "gateway/idempotency/idempotency_store.h"

namespace paygate::idempotency {

inline constexpr std::string_view kHeader = "Idempotency-Key";
// Set to "true" on a replayed response.
inline constexpr std::string_view kReplayedHeader = "Idempotent-Replayed";
// On a replayed response: the request id of the request that produced it (its body may quote it).
inline constexpr std::string_view kOriginalRequestIdHeader = "Original-Request-Id";
// Keys are 1 to this many visible ASCII characters (a UUID fits; so does Stripe's limit).
inline constexpr std::size_t kKeySizeMax = 255;

struct IdempotencyOptions {
  // Bound on each store operation (database acquire and statement).
  std::chrono::milliseconds store_timeout{5000};
};

// Wraps a route's handler. For a POST:
//   - a missing or malformed Idempotency-Key header: 400 naming the header, `inner` not run;
//   - the first request with a key runs `inner`, stores its response and returns it;
//   - a later request with the same key and the same method, target, Content-Type and body: the
//     stored response, status, Content-Type, replayable headers and body byte for byte, plus
//     Idempotent-Replayed: true and Original-Request-Id;
//   - the same key with a different request: 422;
//   - the same key while the first is still running: 409 with Retry-After;
//   - the store unreachable: 503 with Retry-After, `inner` not run.
// A 5xx, 409 or 429 from `inner` is returned but not stored: the key is released, so a retry runs
// `inner` again (handlers are themselves idempotent on the key; the wrapper only spares them the
// work and makes the answer stable). Keys belong to the authenticated principal: another
// principal's identical key is a different key. Other methods go to `inner` untouched, so the
// wrapper may be applied to any route.
edge::Handler WithIdempotency(std::shared_ptr<IdempotencyStore> store, edge::Handler inner,
                              IdempotencyOptions options = {});

// Whether `key` is a valid Idempotency-Key value.
bool IsValidKey(std::string_view key);

}  // namespace paygate::idempotency
