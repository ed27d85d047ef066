#include "gateway/events/routes.h"

#include <charconv>
#include <optional>
#include <string>

#include "config/logging.h"
#include "gateway/events/event_store.h"

namespace paygate::events {
namespace {

namespace asio = edge::asio;
using edge::Access;
using edge::http::field;
using edge::http::status;
using edge::http::verb;

edge::Response Invalid(const edge::RequestContext& ctx, std::string_view message,
                       std::string_view param) {
  return edge::ErrorResponse(ctx.request, status::bad_request, "invalid_request_error",
                             "parameter_invalid", message, ctx.request_id, param);
}

edge::Response NotFound(const edge::RequestContext& ctx) {
  return edge::ErrorResponse(ctx.request, status::not_found, "not_found_error", "event_not_found",
                             "No such event.", ctx.request_id);
}

edge::Response Unavailable(const edge::RequestContext& ctx, std::error_code ec) {
  log::Get("events")->warn("request_id={} event store unavailable: {}", ctx.request_id,
                           ec.message());
  return edge::ErrorResponse(ctx.request, status::service_unavailable, "unavailable_error",
                             "database_unavailable", "The event store is unavailable; retry.",
                             ctx.request_id);
}

db::Deadline DbDeadline(const EventRoutesOptions& options) {
  return db::Clock::now() + options.db_timeout;
}

std::optional<edge::Response> ReadListQuery(const edge::RequestContext& ctx,
                                            store::ListQuery* query) {
  const auto target = ctx.request.target();
  if (auto v = edge::QueryParam(target, "delivered")) {
    if (*v == "true") {
      query->filter = store::DeliveredFilter::kDelivered;
    } else if (*v == "false") {
      query->filter = store::DeliveredFilter::kUndelivered;
    } else {
      return Invalid(ctx, "delivered must be true or false.", "delivered");
    }
  }
  if (auto v = edge::QueryParam(target, "limit")) {
    std::int32_t limit = 0;
    const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), limit);
    if (ec != std::errc() || end != v->data() + v->size() || limit < 1 || limit > 100) {
      return Invalid(ctx, "limit must be between 1 and 100.", "limit");
    }
    query->limit = limit;
  }
  if (auto v = edge::QueryParam(target, "cursor")) {
    query->after = store::ParseCursor(*v);
    if (!query->after) return Invalid(ctx, "cursor is not valid.", "cursor");
  }
  return std::nullopt;
}

}  // namespace

EventRoutesOptions EventRoutesOptionsFromConfig(const config::v1::Config& config) {
  EventRoutesOptions options;
  if (config.events().retry_window_s() != 0) {
    options.retry_window = std::chrono::seconds(config.events().retry_window_s());
  }
  if (config.database().statement_timeout_ms() != 0) {
    options.db_timeout = std::chrono::milliseconds(config.database().statement_timeout_ms());
  }
  return options;
}

void AddEventRoutes(edge::Router& router, db::PgPool& pool, EventRoutesOptions options,
                    const PostWrapper& wrap_post) {
  const std::vector<config::v1::Role> sales = {config::v1::ROLE_SALES};
  db::PgPool* pool_ptr = &pool;

  router.Add({verb::get, "/v1/events", Access::kRoles, sales,
              [pool_ptr, options](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                store::ListQuery query;
                query.principal = ctx.principal->name;
                if (auto bad = ReadListQuery(ctx, &query)) co_return std::move(*bad);
                auto page = co_await store::ListEvents(*pool_ptr, query, DbDeadline(options));
                if (!page) co_return Unavailable(ctx, page.error());
                api::v1::ListEventsResponse response;
                for (const store::StoredEvent& stored : page.value().events) {
                  auto event = store::ToApi(stored);
                  if (!event) {
                    // Written by this gateway, so unreadable means a broken row: say so loudly
                    // rather than silently leaving a gap in the client's sequence.
                    log::Get("events")->error("event={} payload unreadable", stored.id);
                    co_return Unavailable(ctx, event.error());
                  }
                  *response.add_events() = std::move(event).value();
                }
                response.set_next_cursor(page.value().next_cursor);
                co_return edge::ApiResponse(ctx.request, status::ok, response);
              }});

  edge::Handler redeliver =
      [pool_ptr, options](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
    const std::string& id = ctx.path_params[0];
    if (!id.starts_with("evt_") || id.size() > 64) co_return NotFound(ctx);
    auto stored = co_await store::Redeliver(*pool_ptr, ctx.principal->name, id,
                                            options.retry_window, DbDeadline(options));
    if (!stored) co_return Unavailable(ctx, stored.error());
    if (!stored.value()) co_return NotFound(ctx);
    auto event = store::ToApi(*stored.value());
    if (!event) co_return Unavailable(ctx, event.error());
    log::Get("events")->info("request_id={} event={} principal={} redelivery requested",
                             ctx.request_id, id, ctx.principal->name);
    co_return edge::ApiResponse(ctx.request, status::ok, event.value());
  };
  router.Add({verb::post, "/v1/events/{id}/redeliver", Access::kRoles, sales,
              wrap_post ? wrap_post(std::move(redeliver)) : std::move(redeliver)});
}

}  // namespace paygate::events
