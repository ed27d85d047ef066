#include "gateway/routes.h"

#include "gateway/api/v1/common.pb.h"
#include "gateway/ledger_routes.h"

namespace paygate::gateway {

using edge::Access;
using edge::http::status;
using edge::http::verb;

std::shared_ptr<edge::Router> BuildAdminRouter(std::shared_ptr<const edge::EdgeMetrics> metrics,
                                               std::shared_ptr<const Readiness> readiness) {
  auto router = std::make_shared<edge::Router>();
  // /healthz is what load balancers hit most; its answer never changes, so it is rendered once.
  auto healthy = std::make_shared<const edge::Response>([] {
    api::v1::HealthResponse body;
    body.set_status("ok");
    return edge::JsonResponse(edge::Request{verb::get, "/healthz", 11}, status::ok, body);
  }());
  router->Add({verb::get,
               "/healthz",
               Access::kPublic,
               {},
               [healthy](edge::RequestContext& ctx) -> edge::asio::awaitable<edge::Response> {
                 edge::Response response = *healthy;
                 response.version(ctx.request.version());
                 co_return response;
               }});
  router->Add({verb::get,
               "/readyz",
               Access::kPublic,
               {},
               [readiness](edge::RequestContext& ctx) -> edge::asio::awaitable<edge::Response> {
                 if (readiness->draining) {
                   co_return edge::ErrorResponse(ctx.request, status::service_unavailable,
                                                 "unavailable_error", "draining",
                                                 "The daemon is shutting down.", ctx.request_id);
                 }
                 if (!readiness->database_ok) {
                   co_return edge::ErrorResponse(ctx.request, status::service_unavailable,
                                                 "unavailable_error", "database_unreachable",
                                                 "The database does not answer.", ctx.request_id);
                 }
                 api::v1::HealthResponse body;
                 body.set_status("ready");
                 co_return edge::JsonResponse(ctx.request, status::ok, body);
               }});
  router->Add({verb::get,
               "/metrics",
               Access::kPublic,
               {},
               [metrics](edge::RequestContext& ctx) -> edge::asio::awaitable<edge::Response> {
                 edge::Response response{status::ok, ctx.request.version()};
                 response.set(edge::http::field::content_type, "text/plain; version=0.0.4");
                 response.body() = metrics->Serialize();
                 response.prepare_payload();
                 co_return response;
               }});
  return router;
}

std::shared_ptr<edge::Router> BuildApiRouter(std::shared_ptr<ledger::Ledger> ledger) {
  auto router = std::make_shared<edge::Router>();
  router->Add({verb::get,
               "/v1/whoami",
               Access::kAuthenticated,
               {},
               [](edge::RequestContext& ctx) -> edge::asio::awaitable<edge::Response> {
                 api::v1::WhoAmIResponse body;
                 body.set_principal(ctx.principal->name);
                 for (auto role : ctx.principal->roles) body.add_roles(edge::RoleName(role));
                 body.set_authentication(
                     ctx.authentication == edge::Authentication::kApiKey ? "hmac" : "mtls");
                 co_return edge::JsonResponse(ctx.request, status::ok, body);
               }});
  if (ledger) AddLedgerRoutes(*router, std::move(ledger));
  return router;
}

}  // namespace paygate::gateway
