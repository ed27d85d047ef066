#include "gateway/edge/http.h"

#include <algorithm>

#include <google/protobuf/util/json_util.h>

#include "gateway/api/v1/common.pb.h"
#include "keys/digest.h"

namespace paygate::edge {

bool Principal::HasAnyRole(const std::vector<config::v1::Role>& allowed) const {
  return std::any_of(roles.begin(), roles.end(), [&](config::v1::Role role) {
    return std::find(allowed.begin(), allowed.end(), role) != allowed.end();
  });
}

std::optional<std::string> QueryParam(std::string_view target, std::string_view key) {
  const size_t question = target.find('?');
  if (question == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) != key) continue;
    const std::string_view raw =
        eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    std::string value;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '%') {
        value.push_back(raw[i]);
        continue;
      }
      if (i + 2 >= raw.size()) return std::nullopt;
      const int high = keys::HexDigitValue(raw[i + 1]);
      const int low = keys::HexDigitValue(raw[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      value.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    }
    return value;
  }
  return std::nullopt;
}

std::string RoleName(config::v1::Role role) {
  std::string name = config::v1::Role_Name(role);
  constexpr std::string_view kPrefix = "ROLE_";
  if (name.starts_with(kPrefix)) name.erase(0, kPrefix.size());
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return name;
}

bool WantsProtobuf(const Request& request) {
  const auto accept = request[http::field::accept];
  if (!accept.empty()) return accept.find(kProtobufContentType) != std::string_view::npos;
  return request[http::field::content_type].starts_with(kProtobufContentType);
}

Response ApiResponse(const Request& request, http::status status,
                     const google::protobuf::Message& body) {
  if (!WantsProtobuf(request)) return JsonResponse(request, status, body);
  Response response{status, request.version()};
  response.set(http::field::content_type, kProtobufContentType);
  body.SerializeToString(&response.body());
  response.prepare_payload();
  return response;
}

Response JsonResponse(const Request& request, http::status status,
                      const google::protobuf::Message& body) {
  Response response{status, request.version()};
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  // Zero amounts and empty fields are printed: a balance of 0 must read as 0, not as an absent
  // field.
  options.always_print_primitive_fields = true;
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
                       std::string_view code, std::string_view message, std::string_view request_id,
                       std::string_view param) {
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
