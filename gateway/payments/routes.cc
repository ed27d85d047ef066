#include "gateway/payments/routes.h"

#include <charconv>

#include <google/protobuf/util/json_util.h>

#include "config/logging.h"
#include "gateway/api/openapi.h"
#include "gateway/utc_time.h"

namespace paygate::payments {
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

// Parses the body into `message`: binary protobuf or JSON, strictly (an unknown field is an
// error, so a misspelt field is never silently ignored).
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
  if (body.empty()) return std::nullopt;  // Every field takes its default.
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto parsed = google::protobuf::util::JsonStringToMessage(body, message, options);
  if (!parsed.ok()) {
    return Error(ctx,
                 {400,
                  "invalid_request_error",
                  "body_invalid",
                  "The body is not valid JSON for this request: " + std::string(parsed.message()),
                  {}});
  }
  return std::nullopt;
}

// The Idempotency-Key names the object a POST creates (its client reference), so a retry after a
// lost response finds the same object even when the idempotency record could not be written.
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

std::optional<std::int64_t> ParseInt(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<edge::Response> ReadListFilter(const edge::RequestContext& ctx, ListFilter* filter) {
  const auto target = ctx.request.target();
  if (auto v = edge::QueryParam(target, "policy_number")) filter->policy_number = *v;
  if (auto v = edge::QueryParam(target, "status")) {
    filter->status = ParseOrderStatus(*v);
    if (!filter->status) {
      return Error(ctx,
                   {400, "invalid_request_error", "parameter_invalid",
                    "status must be requires_review, processing, pending, succeeded, failed or closed.", "status"});
    }
  }
  for (const auto* name : {"created_from", "created_to"}) {
    if (auto v = edge::QueryParam(target, name)) {
      const auto at = gateway::ParseUtc(*v);
      if (!at) {
        return Error(ctx, {400, "invalid_request_error", "parameter_invalid",
                           std::string(name) + " must be UTC like 2026-11-27T03:00:00Z.", name});
      }
      const std::int64_t us = at->time_since_epoch().count();
      (std::string_view(name) == "created_from" ? filter->created_from_us : filter->created_to_us) =
          us;
    }
  }
  if (auto v = edge::QueryParam(target, "limit")) {
    const auto limit = ParseInt(*v);
    if (!limit || *limit < 1 || *limit > 100) {
      return Error(ctx, {400, "invalid_request_error", "parameter_invalid",
                         "limit must be between 1 and 100.", "limit"});
    }
    filter->limit = static_cast<std::int32_t>(*limit);
  }
  if (auto v = edge::QueryParam(target, "cursor")) filter->cursor = *v;
  return std::nullopt;
}

// Applies a stored callback after it was acknowledged. A function taking the shared_ptr by value,
// not a lambda with captures: GCC 12 releases a coroutine lambda's captured shared_ptr twice.
asio::awaitable<void> ApplyStoredCallback(std::shared_ptr<PaymentService> service,
                                          std::int64_t id) {
  auto applied = co_await service->ApplyCallback(id);
  if (!applied) {
    log::Get("payments")->warn("callback {} not applied yet: {}", id, applied.error().message());
  }
}

}  // namespace

void AddPaymentRoutes(edge::Router& router, std::shared_ptr<PaymentService> service,
                      std::shared_ptr<CallbackCounters> counters, const PostWrapper& wrap_post) {
  const std::vector<config::v1::Role> sales = {config::v1::ROLE_SALES};
  auto post = [&](edge::Handler handler) {
    return wrap_post ? wrap_post(std::move(handler)) : std::move(handler);
  };

  router.Add(
      {verb::post, "/v1/payments", Access::kRoles, sales,
       post([service](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
         const auto started = std::chrono::steady_clock::now();
         std::string key;
         if (auto bad = ReadKey(ctx, &key)) co_return std::move(*bad);
         api::v1::CreatePaymentRequest request;
         if (auto bad = ParseBody(ctx, &request)) co_return std::move(*bad);
         std::chrono::microseconds provider_time{0};
         auto payment = co_await service->CreatePayment(ctx.principal->name, key,
                                                        std::move(request), &provider_time);
         if (!payment) co_return Error(ctx, payment.error());
         edge::Response response = edge::ApiResponse(ctx.request, status::created, payment.value());
         // The gateway's own time (validation, database, ledger), without the provider's.
         const auto total = std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now() - started);
         response.set("Paygate-Gateway-Time-Us", std::to_string((total - provider_time).count()));
         co_return response;
       })});

  router.Add({verb::get, "/v1/payments", Access::kRoles, sales,
              [service](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                ListFilter filter;
                if (auto bad = ReadListFilter(ctx, &filter)) co_return std::move(*bad);
                auto page = co_await service->ListPayments(ctx.principal->name, filter);
                if (!page) co_return Error(ctx, page.error());
                co_return edge::ApiResponse(ctx.request, status::ok, page.value());
              }});

  router.Add({verb::get, "/v1/payments/{id}", Access::kRoles, sales,
              [service](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                auto payment =
                    co_await service->GetPayment(ctx.principal->name, ctx.path_params[0]);
                if (!payment) co_return Error(ctx, payment.error());
                co_return edge::ApiResponse(ctx.request, status::ok, payment.value());
              }});

  router.Add({verb::post, "/v1/payments/{id}/close", Access::kRoles, sales,
              post([service](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                std::string key;
                if (auto bad = ReadKey(ctx, &key)) co_return std::move(*bad);
                auto payment =
                    co_await service->ClosePayment(ctx.principal->name, ctx.path_params[0]);
                if (!payment) co_return Error(ctx, payment.error());
                co_return edge::ApiResponse(ctx.request, status::ok, payment.value());
              })});

  router.Add({verb::post, "/v1/payments/{id}/refunds", Access::kRoles, sales,
              post([service](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                std::string key;
                if (auto bad = ReadKey(ctx, &key)) co_return std::move(*bad);
                api::v1::CreateRefundRequest request;
                if (auto bad = ParseBody(ctx, &request)) co_return std::move(*bad);
                auto refund = co_await service->CreateRefund(
                    ctx.principal->name, key, ctx.path_params[0], std::move(request));
                if (!refund) co_return Error(ctx, refund.error());
                co_return edge::ApiResponse(ctx.request, status::created, refund.value());
              })});

  router.Add({verb::get, "/v1/refunds/{id}", Access::kRoles, sales,
              [service](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                auto refund = co_await service->GetRefund(ctx.principal->name, ctx.path_params[0]);
                if (!refund) co_return Error(ctx, refund.error());
                co_return edge::ApiResponse(ctx.request, status::ok, refund.value());
              }});

  router.Add({verb::get,
              "/v1/openapi.yaml",
              Access::kAuthenticated,
              {},
              [](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                edge::Response response{status::ok, ctx.request.version()};
                response.set(field::content_type, "application/yaml");
                response.body() = std::string(api::OpenApiDocument());
                response.prepare_payload();
                co_return response;
              }});

  // Providers authenticate by their signature over the raw bytes, checked by the adapter before
  // anything is stored; no client certificate or API key is involved.
  router.Add(
      {verb::post,
       "/v1/callbacks/{provider}/{merchant_account}",
       Access::kPublic,
       {},
       [service, counters](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
         adapters::CallbackRequest callback;
         callback.merchant_account = ctx.path_params[1];
         for (const auto& header : ctx.request) {
           std::string name(header.name_string());
           for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
           callback.headers.emplace_back(std::move(name), std::string(header.value()));
         }
         callback.body = ctx.request.body();
         CallbackReply reply =
             co_await service->ReceiveCallback(ctx.path_params[0], std::move(callback));
         if (!reply.verified) {
           counters->rejected.fetch_add(1, std::memory_order_relaxed);
           log::Get("payments")
               ->warn("callback {}/{} refused: {}", ctx.path_params[0], ctx.path_params[1],
                      reply.error);
         } else if (reply.duplicate) {
           counters->duplicates.fetch_add(1, std::memory_order_relaxed);
         } else {
           counters->accepted.fetch_add(1, std::memory_order_relaxed);
           // Answered first, applied right after; a crash in between leaves the janitor's task.
           const auto executor = co_await asio::this_coro::executor;
           asio::co_spawn(executor, ApplyStoredCallback(service, reply.callback_id),
                          asio::detached);
         }
         edge::Response response{static_cast<status>(reply.ack.status), ctx.request.version()};
         if (!reply.ack.content_type.empty()) {
           response.set(field::content_type, reply.ack.content_type);
         }
         response.body() = reply.ack.body;
         response.prepare_payload();
         co_return response;
       }});
}

}  // namespace paygate::payments
