#include "gateway/payouts/routes.h"

#include <charconv>

#include <google/protobuf/util/json_util.h>

namespace paygate::payouts {
namespace {

namespace asio = edge::asio;
using edge::Access;
using edge::http::field;
using edge::http::status;
using edge::http::verb;

edge::Response Error(const edge::RequestContext& ctx, const ApiError& error) {
  return edge::ErrorResponse(ctx.request, static_cast<status>(error.status), error.type, error.code,
                             error.message, ctx.request_id, error.param);
}

// Binary protobuf or JSON, strictly: an unknown field is an error, never silently ignored.
std::optional<edge::Response> ParseBody(const edge::RequestContext& ctx,
                                        google::protobuf::Message* message) {
  const auto& body = ctx.request.body();
  if (ctx.request[field::content_type].starts_with(edge::kProtobufContentType)) {
    if (!message->ParseFromString(body)) {
      return Error(ctx, {400,
                         "invalid_request_error",
                         "body_invalid",
                         "The body is not a valid protobuf message.",
                         {}});
    }
    return std::nullopt;
  }
  if (body.empty()) return std::nullopt;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto parsed = google::protobuf::util::JsonStringToMessage(body, message, options);
  if (!parsed.ok()) {
    // The parser's message may quote the body: only its position, never personal data, is kept.
    return Error(ctx, {400,
                       "invalid_request_error",
                       "body_invalid",
                       "The body is not valid JSON for this request.",
                       {}});
  }
  return std::nullopt;
}

// The Idempotency-Key names the payout a POST creates (its client reference).
std::optional<edge::Response> ReadKey(const edge::RequestContext& ctx, std::string* key) {
  const auto value = ctx.request["Idempotency-Key"];
  if (value.empty() || value.size() > 255) {
    return Error(ctx, {400, "invalid_request_error", "idempotency_key_missing",
                       "Every POST needs an Idempotency-Key header of 1..255 characters.",
                       "Idempotency-Key"});
  }
  *key = std::string(value);
  return std::nullopt;
}

std::optional<edge::Response> ReadFilter(const edge::RequestContext& ctx, ListFilter* filter) {
  const auto target = ctx.request.target();
  if (auto v = edge::QueryParam(target, "status")) filter->status = std::string(*v);
  if (auto v = edge::QueryParam(target, "claim_number")) filter->claim_number = *v;
  if (auto v = edge::QueryParam(target, "limit")) {
    std::int64_t limit = 0;
    const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), limit);
    if (ec != std::errc() || end != v->data() + v->size() || limit < 1 || limit > 100) {
      return Error(ctx, {400, "invalid_request_error", "parameter_invalid",
                         "limit must be between 1 and 100.", "limit"});
    }
    filter->limit = static_cast<std::int32_t>(limit);
  }
  if (auto v = edge::QueryParam(target, "cursor")) filter->cursor = *v;
  return std::nullopt;
}

}  // namespace

void AddPayoutRoutes(edge::Router& router, std::shared_ptr<PayoutService> service,
                     const payments::PostWrapper& wrap_post) {
  const std::vector<config::v1::Role> claims = {config::v1::ROLE_CLAIMS};
  const std::vector<config::v1::Role> approvers = {config::v1::ROLE_APPROVER};
  const std::vector<config::v1::Role> operators = {config::v1::ROLE_OPERATOR,
                                                   config::v1::ROLE_FINANCE};
  auto post = [&](edge::Handler handler) {
    return wrap_post ? wrap_post(std::move(handler)) : std::move(handler);
  };

  router.Add({verb::post, "/v1/payouts", Access::kRoles, claims,
              post([service](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                std::string key;
                if (auto bad = ReadKey(ctx, &key)) co_return std::move(*bad);
                api::v1::CreatePayoutRequest request;
                if (auto bad = ParseBody(ctx, &request)) co_return std::move(*bad);
                auto payout =
                    co_await service->CreatePayout(ctx.principal->name, key, std::move(request));
                if (!payout) co_return Error(ctx, payout.error());
                co_return edge::ApiResponse(ctx.request, status::created, payout.value());
              })});

  router.Add({verb::get, "/v1/payouts", Access::kRoles, claims,
              [service](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                ListFilter filter;
                if (auto bad = ReadFilter(ctx, &filter)) co_return std::move(*bad);
                auto page = co_await service->ListPayouts(ctx.principal->name, filter);
                if (!page) co_return Error(ctx, page.error());
                co_return edge::ApiResponse(ctx.request, status::ok, page.value());
              }});

  // Literal paths before /v1/payouts/{id}: the router takes the first match.
  router.Add({verb::get, "/v1/payouts/pending-approval", Access::kRoles, approvers,
              [service](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                ListFilter filter;
                if (auto bad = ReadFilter(ctx, &filter)) co_return std::move(*bad);
                auto page = co_await service->ListAwaitingApproval(filter);
                if (!page) co_return Error(ctx, page.error());
                co_return edge::ApiResponse(ctx.request, status::ok, page.value());
              }});

  router.Add({verb::get, "/v1/payouts/manual", Access::kRoles, operators,
              [service](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                ListFilter filter;
                if (auto bad = ReadFilter(ctx, &filter)) co_return std::move(*bad);
                auto page = co_await service->ListManual(filter);
                if (!page) co_return Error(ctx, page.error());
                co_return edge::ApiResponse(ctx.request, status::ok, page.value());
              }});

  router.Add({verb::get, "/v1/payouts/{id}", Access::kRoles, claims,
              [service](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                auto payout = co_await service->GetPayout(ctx.principal->name, ctx.path_params[0]);
                if (!payout) co_return Error(ctx, payout.error());
                co_return edge::ApiResponse(ctx.request, status::ok, payout.value());
              }});

  router.Add({verb::post, "/v1/payouts/{id}/cancel", Access::kRoles, claims,
              post([service](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                std::string key;
                if (auto bad = ReadKey(ctx, &key)) co_return std::move(*bad);
                auto payout =
                    co_await service->CancelPayout(ctx.principal->name, ctx.path_params[0]);
                if (!payout) co_return Error(ctx, payout.error());
                co_return edge::ApiResponse(ctx.request, status::ok, payout.value());
              })});

  for (const bool approve : {true, false}) {
    router.Add(
        {verb::post, approve ? "/v1/payouts/{id}/approve" : "/v1/payouts/{id}/reject",
         Access::kRoles, approvers,
         post([service, approve](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
           std::string key;
           if (auto bad = ReadKey(ctx, &key)) co_return std::move(*bad);
           api::v1::PayoutDecisionRequest request;
           if (auto bad = ParseBody(ctx, &request)) co_return std::move(*bad);
           auto payout = co_await service->DecidePayout(ctx.principal->name, ctx.path_params[0],
                                                        approve, request.note());
           if (!payout) co_return Error(ctx, payout.error());
           co_return edge::ApiResponse(ctx.request, status::ok, payout.value());
         })});
  }
}

}  // namespace paygate::payouts
