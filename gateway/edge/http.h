#pragma once

// The edge's view of one HTTP exchange: the request as parsed by Beast, who sent it, and helpers
// that build the responses every route shares (JSON errors with a request id, DESIGN.md §5).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/message.h>

#include "config/paygate_config.pb.h"
#include "gateway/edge/asio_fwd.h"

namespace paygate::edge {

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// An authenticated client. Roles come from the configuration, never from the request.
struct Principal {
  std::string name;
  std::vector<config::v1::Role> roles;

  bool HasAnyRole(const std::vector<config::v1::Role>& allowed) const;
};

// How a request's principal was established.
enum class Authentication {
  kNone,
  // The connection's verified client certificate (mutual TLS).
  kClientCertificate,
  // An API key's HMAC signature over the request (gateway/auth/signing.h).
  kApiKey,
};

// Everything a handler may know about the request it serves.
struct RequestContext {
  const Request& request;
  std::string_view request_id;
  // Null when the caller did not authenticate. Routes that require authentication never see null.
  const Principal* principal = nullptr;
  // Values of the route pattern's {placeholders}, in order.
  std::vector<std::string> path_params;
  Authentication authentication = Authentication::kNone;
};

// The value of query parameter `key` in a request target ("/x?currency=CNY&at=..."),
// percent-decoded
// ('+' stays '+'); nullopt when absent or when its escapes are malformed.
std::optional<std::string> QueryParam(std::string_view target, std::string_view key);

// Lower-case role name without its prefix ("sales" for ROLE_SALES).
std::string RoleName(config::v1::Role role);

// A JSON (protobuf JSON mapping, original field names) response with the given status.
Response JsonResponse(const Request& request, http::status status,
                      const google::protobuf::Message& body);

// The content type of binary protobuf bodies (DESIGN.md §5).
inline constexpr std::string_view kProtobufContentType = "application/x-protobuf";

// Whether the client wants binary protobuf back: its Accept names it, or, without an Accept, it
// sent protobuf.
bool WantsProtobuf(const Request& request);

// An API answer in the form the client asked for: binary protobuf (WantsProtobuf) or JSON
// (JsonResponse).
Response ApiResponse(const Request& request, http::status status,
                     const google::protobuf::Message& body);

// {"error": {type, code, message, param, request_id}} with the given status.
Response ErrorResponse(const Request& request, http::status status, std::string_view type,
                       std::string_view code, std::string_view message, std::string_view request_id,
                       std::string_view param = {});

}  // namespace paygate::edge
