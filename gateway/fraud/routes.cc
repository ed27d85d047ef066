#include "gateway/fraud/routes.h"

#include <google/protobuf/util/json_util.h>

#include "config/logging.h"
#include "gateway/utc_time.h"

namespace paygate::fraud {
namespace {

namespace asio = edge::asio;
using edge::Access;
using edge::http::field;
using edge::http::status;
using edge::http::verb;

// Largest rules text accepted over the API.
constexpr std::size_t kRulesetSizeMax = 1 << 20;

edge::Response Error(const edge::RequestContext& ctx, unsigned code, std::string_view type,
                     std::string_view error_code, std::string_view message,
                     std::string_view param = {}) {
  return edge::ErrorResponse(ctx.request, static_cast<status>(code), type, error_code, message,
                             ctx.request_id, param);
}

std::string_view TypeFor(unsigned code) {
  switch (code) {
    case 400:
      return "invalid_request_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 409:
      return "conflict_error";
    case 503:
      return "unavailable_error";
    default:
      return "api_error";
  }
}

edge::Response Error(const edge::RequestContext& ctx, const RiskError& e) {
  return Error(ctx, e.status, TypeFor(e.status), e.code, e.message, e.param);
}

edge::Response Error(const edge::RequestContext& ctx, const payments::ApiError& e) {
  return Error(ctx, e.status, e.type, e.code, e.message, e.param);
}

// Binary protobuf or strict JSON (an unknown field is an error); an empty body is all defaults.
std::optional<edge::Response> ParseBody(const edge::RequestContext& ctx,
                                        google::protobuf::Message* message) {
  const auto& body = ctx.request.body();
  if (ctx.request[field::content_type].starts_with(edge::kProtobufContentType)) {
    if (!message->ParseFromString(body)) {
      return Error(ctx, 400, "invalid_request_error", "body_invalid",
                   "The body is not a valid protobuf message.");
    }
    return std::nullopt;
  }
  if (body.empty()) return std::nullopt;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto parsed = google::protobuf::util::JsonStringToMessage(body, message, options);
  if (!parsed.ok()) {
    return Error(ctx, 400, "invalid_request_error", "body_invalid",
                 "The body is not valid JSON for this request: " + std::string(parsed.message()));
  }
  return std::nullopt;
}

api::v1::Review ToApi(const store::ReviewRow& row, std::int64_t amount_minor = 0,
                      const std::string& currency = {}) {
  api::v1::Review r;
  r.set_id(row.id);
  r.set_object_type(row.object_type);
  r.set_object_id(row.object_id);
  r.set_status(row.status);
  r.set_submitted_by(row.submitted_by);
  r.set_resolved_by(row.resolved_by);
  auto format = [](std::int64_t us) {
    return gateway::FormatUtc(ledger::Timestamp(std::chrono::microseconds(us)));
  };
  if (row.resolved_at_us) r.set_resolved_at(format(*row.resolved_at_us));
  r.set_note(row.note);
  r.set_created_at(format(row.created_at_us));
  risk::pb::Decision decision;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (google::protobuf::util::JsonStringToMessage(row.decision_json, &decision, options).ok()) {
    r.set_score(decision.score());
    for (const auto& fired : decision.fired()) {
      auto* rule = r.add_rules();
      rule->set_rule_id(fired.rule_id());
      rule->set_action(fired.action());
      rule->set_reason(fired.reason());
    }
  }
  r.set_amount_minor(amount_minor);
  r.set_currency(currency);
  return r;
}

}  // namespace

void AddRiskRoutes(edge::Router& router, std::shared_ptr<RiskService> risk,
                   std::shared_ptr<payments::PaymentService> payments,
                   const PostWrapper& wrap_post) {
  const std::vector<config::v1::Role> roles = {config::v1::ROLE_RISK};
  auto post = [&](edge::Handler handler) {
    return wrap_post ? wrap_post(std::move(handler)) : std::move(handler);
  };

  router.Add({verb::get, "/v1/risk/lists", Access::kRoles, roles,
              [risk](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                auto lists = co_await risk->Lists();
                if (!lists) co_return Error(ctx, lists.error());
                co_return edge::ApiResponse(ctx.request, status::ok, lists.value());
              }});

  router.Add({verb::get, "/v1/risk/lists/{name}", Access::kRoles, roles,
              [risk](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                auto list = co_await risk->List(ctx.path_params[0]);
                if (!list) co_return Error(ctx, list.error());
                co_return edge::ApiResponse(ctx.request, status::ok, list.value());
              }});

  router.Add({verb::post, "/v1/risk/lists/{name}/items", Access::kRoles, roles,
              post([risk](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                api::v1::AddRiskListItemRequest request;
                if (auto bad = ParseBody(ctx, &request)) co_return std::move(*bad);
                auto item = co_await risk->AddListItem(ctx.principal->name, ctx.path_params[0],
                                                       std::move(request));
                if (!item) co_return Error(ctx, item.error());
                co_return edge::ApiResponse(ctx.request, status::created, item.value());
              })});

  // The item is named by its stored form (a hash for personal kinds), so no personal data ever
  // appears in a URL or an access log.
  router.Add({verb::delete_, "/v1/risk/lists/{name}/items/{item}", Access::kRoles, roles,
              [risk](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                auto removed = co_await risk->RemoveListItem(
                    ctx.principal->name, ctx.path_params[0], ctx.path_params[1], false);
                if (!removed) co_return Error(ctx, removed.error());
                auto list = co_await risk->List(ctx.path_params[0]);
                if (!list) co_return Error(ctx, list.error());
                co_return edge::ApiResponse(ctx.request, status::ok, list.value());
              }});

  router.Add({verb::get, "/v1/risk/rulesets", Access::kRoles, roles,
              [risk](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                co_return edge::ApiResponse(ctx.request, status::ok, risk->Status());
              }});

  router.Add(
      {verb::post, "/v1/risk/rulesets", Access::kRoles, roles,
       post([risk](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
         Target target = Target::kLive;
         if (auto t = edge::QueryParam(ctx.request.target(), "target")) {
           if (*t == "shadow") {
             target = Target::kShadow;
           } else if (*t != "live") {
             co_return Error(ctx, 400, "invalid_request_error", "parameter_invalid",
                             "target must be live or shadow.", "target");
           }
         }
         const std::string& body = ctx.request.body();
         if (body.empty() || body.size() > kRulesetSizeMax) {
           co_return Error(ctx, 400, "invalid_request_error", "body_invalid",
                           "The body is the rules text (1 byte to 1 MiB).");
         }
         auto loaded = co_await risk->LoadRuleset(target, body, "api", ctx.principal->name);
         if (!loaded) co_return Error(ctx, loaded.error());
         co_return edge::ApiResponse(ctx.request, status::ok, loaded.value());
       })});

  router.Add({verb::get, "/v1/reviews", Access::kRoles, roles,
              [risk, payments](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                std::string wanted = "open";
                if (auto s = edge::QueryParam(ctx.request.target(), "status")) wanted = *s;
                if (wanted == "all") wanted.clear();
                if (!wanted.empty() && wanted != "open" && wanted != "approved" &&
                    wanted != "declined") {
                  co_return Error(ctx, 400, "invalid_request_error", "parameter_invalid",
                                  "status must be open, approved, declined or all.", "status");
                }
                auto rows = co_await store::ListReviews(risk->pool(), wanted, 100,
                                                        risk->DbDeadline());
                if (!rows) {
                  co_return Error(ctx, 503, "unavailable_error", "database_unavailable",
                                  "The risk store is unavailable; retry.");
                }
                api::v1::ListReviewsResponse response;
                for (const auto& row : rows.value()) {
                  *response.add_reviews() = ToApi(row, row.amount_minor, row.currency);
                }
                co_return edge::ApiResponse(ctx.request, status::ok, response);
              }});

  for (const bool approve : {true, false}) {
    router.Add(
        {verb::post, approve ? "/v1/reviews/{id}/approve" : "/v1/reviews/{id}/decline",
         Access::kRoles, roles,
         post([risk, payments, approve](edge::RequestContext& ctx)
                  -> asio::awaitable<edge::Response> {
           api::v1::ResolveReviewRequest request;
           if (auto bad = ParseBody(ctx, &request)) co_return std::move(*bad);
           auto resolved = co_await payments->ResolveReview(ctx.principal->name,
                                                            ctx.path_params[0], approve,
                                                            request.note());
           if (!resolved) co_return Error(ctx, resolved.error());
           auto row = co_await store::FindReview(risk->pool(), ctx.path_params[0],
                                                 risk->DbDeadline());
           api::v1::ResolveReviewResponse response;
           if (row && row.value()) {
             *response.mutable_review() =
                 ToApi(*row.value(), resolved.value().payment.amount_minor(),
                       resolved.value().payment.currency());
           }
           *response.mutable_payment() = std::move(resolved.value().payment);
           co_return edge::ApiResponse(ctx.request, status::ok, response);
         })});
  }
}

}  // namespace paygate::fraud
