#pragma once

// Routes of one listener: method + path pattern -> handler, with the roles each route allows. The route
// table is the one visible list of what a listener serves (STYLE.md "One list of what is compiled in").
// Immutable after start-up, so matching is lock-free from every I/O thread.
#include <functional>
#include <string>
#include <vector>

#include "gateway/edge/http.h"

namespace paygate::edge {

using Handler = std::function<asio::awaitable<Response>(RequestContext&)>;

// Who may call a route.
enum class Access {
  // Anyone who completed the TLS handshake: only the admin listener's probes (/healthz, /readyz,
  // /metrics), which load balancers and Prometheus call without client certificates.
  kPublic,
  // An authenticated principal holding one of the route's roles.
  kRoles,
  // Any authenticated principal.
  kAuthenticated,
};

struct Route {
  http::verb method;
  // Literal segments and {name} placeholders, e.g. "/v1/payments/{id}/refunds".
  std::string pattern;
  Access access;
  std::vector<config::v1::Role> roles;
  Handler handler;
};

class Router {
 public:
  void Add(Route route);

  struct Match {
    const Route* route = nullptr;
    std::vector<std::string> params;
    // True when the path exists under another method (405 rather than 404).
    bool other_method = false;
  };
  Match Find(http::verb method, std::string_view path) const;

 private:
  std::vector<Route> routes_;
  std::vector<std::vector<std::string>> segments_;
};

}  // namespace paygate::edge
