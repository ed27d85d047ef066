#pragma once

// The OpenAPI document of the API routes (gateway/api/v1/openapi.yaml), compiled in and served at
// GET /v1/openapi.yaml.
#include <string_view>

namespace paygate::api {

std::string_view OpenApiDocument();

}  // namespace paygate::api
