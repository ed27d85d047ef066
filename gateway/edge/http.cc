#include "gateway/edge/http.h"

#include <algorithm>

#include <google/protobuf/util/json_util.h>

#include "gateway/api/v1/common.pb.h"

namespace paygate::edge {

bool Principal::HasAnyRole(const std::vector<config::v1::Role>& allowed) const {
  return std::any_of(roles.begin(), roles.end(), [&](config::v1::Role role) {
    return std::find(allowed.begin(), allowed.end(), role) != allowed.end();
  });
}

std::string RoleName(config::v1::Role role) {
  std::string name = config::v1::Role_Name(role);
  constexpr std::string_view kPrefix = "ROLE_";
  if (name.starts_with(kPrefix)) name.erase(0, kPrefix.size());
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return name;
}

Response JsonResponse(const Request& request, http::status status,
                      const google::protobuf::Message& body) {
  Response response{status, request.version()};
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  // Printing a well-formed message cannot fail; an empty body would still be valid for the client.
  (void)google::protobuf::util::MessageToJsonString(body, &json, options);
  json.push_back('\n');
  response.set(http::field::content_type, "application/json");
  response.body() = std::move(json);
  response.prepare_payload();
  return response;
}

Response ErrorResponse(const Request& request, http::status status, std::string_view type,
                       std::string_view code, std::string_view message,
                       std::string_view request_id, std::string_view param) {
  api::v1::ErrorResponse body;
  api::v1::Error* error = body.mutable_error();
  error->set_type(std::string(type));
  error->set_code(std::string(code));
  error->set_message(std::string(message));
  error->set_param(std::string(param));
  error->set_request_id(std::string(request_id));
  return JsonResponse(request, status, body);
}

}  // namespace paygate::edge
