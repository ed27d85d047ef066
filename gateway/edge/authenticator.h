#pragma once

// The edge's hook for authentication beyond the client certificate (DESIGN.md §5): API keys with
// signed requests, and per-principal request rates. The HttpServer asks it about every request to a
// route that is not public, after the body was read (a signature covers the body) and before the
// route's roles are checked.
#include <optional>
#include <string_view>

#include "gateway/edge/http.h"

namespace paygate::edge {

// Who a request authenticates as, or why it is refused.
struct AuthOutcome {
  // Null: unauthenticated (the server answers 401 for routes that need a principal).
  const Principal* principal = nullptr;
  Authentication authentication = Authentication::kNone;
  // When set, the answer to send instead of routing (401, 429, 503). Takes precedence over
  // `principal`.
  std::optional<Response> refusal;
};

// Contract: both calls are made concurrently from every I/O thread and never throw. Principals
// returned live as long as the authenticator. A refusal carries the request id it was given.
class Authenticator {
 public:
  virtual ~Authenticator() = default;

  // Decides without I/O when it can, so most requests take no coroutine frame here; returns
  // nullopt when the request needs Authenticate() (it carries credentials that must be checked
  // against shared state). `certificate_principal` is the connection's verified client
  // certificate's principal, or null.
  virtual std::optional<AuthOutcome> TryAuthenticate(const Request& request,
                                                     const Principal* certificate_principal,
                                                     std::string_view request_id) = 0;

  // The full decision, for requests TryAuthenticate() could not decide.
  virtual asio::awaitable<AuthOutcome> Authenticate(const Request& request,
                                                    const Principal* certificate_principal,
                                                    std::string_view request_id) = 0;
};

}  // namespace paygate::edge
