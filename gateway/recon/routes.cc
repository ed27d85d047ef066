#include "gateway/recon/routes.h"

#include <charconv>

#include <google/protobuf/util/json_util.h>

#include "gateway/api/v1/recon.pb.h"
#include "gateway/recon/report.h"
#include "ledger/db/pg_pool.h"

namespace paygate::gateway::recon {
namespace {

namespace asio = edge::asio;
using edge::Access;
using edge::http::field;
using edge::http::status;
using edge::http::verb;
using paygate::recon::Errc;

constexpr std::string_view kExceptionClasses[] = {
    "missing_ours", "missing_provider", "amount_mismatch",    "status_mismatch",
    "timing",       "duplicate",        "settlement_mismatch"};
constexpr std::string_view kExceptionStatuses[] = {"open", "assigned", "resolved", "superseded"};

edge::Response BadParam(const edge::RequestContext& ctx, std::string_view param,
                        std::string_view message) {
  return edge::ErrorResponse(ctx.request, status::bad_request, "invalid_request_error",
                             "parameter_invalid", message, ctx.request_id, param);
}

// The engine's errors in DESIGN.md §5 terms. Database trouble is 503 (retry later); the engine's
// messages name the line or field and never carry personal data.
edge::Response Failure(const edge::RequestContext& ctx, const paygate::recon::Error& error,
                       std::string_view not_found_code) {
  const std::error_code ec = error.code;
  if (ec == Errc::bad_file) {
    return edge::ErrorResponse(ctx.request, status::unprocessable_entity, "invalid_request_error",
                               "bill_invalid", "The bill file was refused: " + error.message,
                               ctx.request_id);
  }
  if (ec == Errc::invalid_argument) {
    return edge::ErrorResponse(ctx.request, status::bad_request, "invalid_request_error",
                               "parameter_invalid", error.message, ctx.request_id);
  }
  if (ec == Errc::not_found) {
    return edge::ErrorResponse(ctx.request, status::not_found, "not_found_error", not_found_code,
                               "No such object.", ctx.request_id);
  }
  if (ec == Errc::invalid_state) {
    return edge::ErrorResponse(ctx.request, status::conflict, "conflict_error",
                               "exception_not_open",
                               "The exception is already resolved or superseded.", ctx.request_id);
  }
  if (ec == Errc::already_settled) {
    return edge::ErrorResponse(ctx.request, status::conflict, "conflict_error", "already_settled",
                               error.message, ctx.request_id);
  }
  if (ec == Errc::ledger_rejected) {
    return edge::ErrorResponse(ctx.request, status::conflict, "conflict_error", "ledger_rejected",
                               error.message, ctx.request_id);
  }
  return edge::ErrorResponse(ctx.request, status::service_unavailable, "unavailable_error",
                             "reconciliation_unavailable",
                             "The reconciliation store could not be reached; retry later.",
                             ctx.request_id);
}

std::optional<std::int64_t> ParseInt(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<edge::Response> ReadId(const edge::RequestContext& ctx, std::int64_t* id) {
  const auto parsed = ParseInt(ctx.path_params[0]);
  if (!parsed || *parsed <= 0) return BadParam(ctx, "id", "id must be a positive integer.");
  *id = *parsed;
  return std::nullopt;
}

// YYYY-MM-DD (the engine checks the calendar; this keeps malformed text out of SQL casts).
bool IsDate(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return false;
  for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (text[i] < '0' || text[i] > '9') return false;
  }
  return true;
}

template <std::size_t N>
bool OneOf(std::string_view value, const std::string_view (&set)[N]) {
  for (std::string_view v : set) {
    if (v == value) return true;
  }
  return false;
}

// A JSON or binary protobuf body, strictly (an unknown field is an error).
std::optional<edge::Response> ParseBody(const edge::RequestContext& ctx,
                                        google::protobuf::Message* message) {
  const auto& body = ctx.request.body();
  auto invalid = [&](std::string message_text) {
    return edge::ErrorResponse(ctx.request, status::bad_request, "invalid_request_error",
                               "body_invalid", message_text, ctx.request_id);
  };
  if (ctx.request[field::content_type].starts_with(edge::kProtobufContentType)) {
    if (!message->ParseFromString(body)) return invalid("The body is not a valid protobuf message.");
    return std::nullopt;
  }
  if (body.empty()) return std::nullopt;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto parsed = google::protobuf::util::JsonStringToMessage(body, message, options);
  if (!parsed.ok()) {
    return invalid("The body is not valid JSON for this request: " + std::string(parsed.message()));
  }
  return std::nullopt;
}

db::Deadline In(std::chrono::seconds bound) { return db::Clock::now() + bound; }

}  // namespace

std::set<std::pair<std::string, std::string>> ConfiguredAccounts(const config::v1::Config& config) {
  std::set<std::pair<std::string, std::string>> out;
  for (const auto& p : config.providers()) out.emplace(p.provider(), p.merchant_account());
  return out;
}

void AddReconRoutes(edge::Router& router, std::shared_ptr<Reconcilers> reconcilers,
                    ReconRoutesOptions options, const PostWrapper& wrap_post) {
  const std::vector<config::v1::Role> finance = {config::v1::ROLE_FINANCE};
  auto post = [&](edge::Handler handler) {
    return wrap_post ? wrap_post(std::move(handler)) : std::move(handler);
  };
  auto opts = std::make_shared<const ReconRoutesOptions>(std::move(options));

  router.Add(
      {verb::post, "/v1/reconciliations", Access::kRoles, finance,
       post([reconcilers, opts](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
         const auto target = ctx.request.target();
         paygate::recon::ImportRequest request;
         for (auto [name, value] :
              {std::pair{"provider", &request.provider},
               std::pair{"merchant_account", &request.merchant_account},
               std::pair{"bill_date", &request.bill_date}}) {
           auto v = edge::QueryParam(target, name);
           if (!v || v->empty()) {
             co_return BadParam(ctx, name, std::string(name) + " is required.");
           }
           *value = std::move(*v);
         }
         if (!IsDate(request.bill_date)) {
           co_return BadParam(ctx, "bill_date", "bill_date must be YYYY-MM-DD.");
         }
         if (!opts->accounts.contains({request.provider, request.merchant_account})) {
           co_return BadParam(ctx, "merchant_account",
                              "No such provider account is configured (providers[]).");
         }
         if (auto name = edge::QueryParam(target, "file_name")) request.file_name = *name;
         if (request.file_name.size() > 255) {
           co_return BadParam(ctx, "file_name", "file_name is at most 255 characters.");
         }
         if (ctx.request.body().empty()) {
           co_return edge::ErrorResponse(ctx.request, status::bad_request,
                                         "invalid_request_error", "body_invalid",
                                         "The body must be the bill file.", ctx.request_id);
         }
         request.principal = ctx.principal->name;
         auto& reconciler = reconcilers->For(request.provider, request.merchant_account);
         const std::string_view bytes = ctx.request.body();
         const db::Deadline deadline = In(opts->import_timeout);
         auto report = co_await reconciler.Import(std::move(request), bytes, deadline);
         if (!report) co_return Failure(ctx, report.error(), "reconciliation_not_found");
         const status code = report.value().already_imported ? status::ok : status::created;
         co_return edge::ApiResponse(ctx.request, code, ToProto(report.value()));
       })});

  // A net settlement line. No Idempotency-Key: the provider's reference makes it idempotent (the
  // same line again answers the first result, 200 already_settled).
  router.Add(
      {verb::post, "/v1/reconciliations/settlements", Access::kRoles, finance,
       [reconcilers, opts](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
         api::v1::SettleReconciliationRequest body;
         if (auto bad = ParseBody(ctx, &body)) co_return std::move(*bad);
         if (!opts->accounts.contains({body.provider(), body.merchant_account()})) {
           co_return BadParam(ctx, "merchant_account",
                              "No such provider account is configured (providers[]).");
         }
         paygate::recon::SettlementRequest request;
         request.provider = body.provider();
         request.merchant_account = body.merchant_account();
         request.provider_reference = body.provider_reference();
         request.value_date = body.value_date();
         if (!body.currency().empty()) request.currency = body.currency();
         request.amount_minor = body.amount_minor();
         request.references.assign(body.references().begin(), body.references().end());
         request.bill_date = body.bill_date();
         request.principal = ctx.principal->name;
         const db::Deadline deadline = In(opts->import_timeout);
         auto settled = co_await reconcilers->Settle(std::move(request), deadline);
         if (!settled) {
           // The engine names the reference or day it could not find (never personal data).
           if (settled.error().code == Errc::not_found) {
             co_return edge::ErrorResponse(ctx.request, status::not_found, "not_found_error",
                                           "settlement_lines_not_found", settled.error().message,
                                           ctx.request_id);
           }
           co_return Failure(ctx, settled.error(), "settlement_lines_not_found");
         }
         const status code = settled.value().already_settled ? status::ok : status::created;
         co_return edge::ApiResponse(ctx.request, code, ToProto(settled.value()));
       }});

  router.Add({verb::get, "/v1/reconciliations", Access::kRoles, finance,
              [reconcilers, opts](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                auto date = edge::QueryParam(ctx.request.target(), "bill_date");
                if (!date || !IsDate(*date)) {
                  co_return BadParam(ctx, "bill_date", "bill_date must be YYYY-MM-DD.");
                }
                const db::Deadline deadline = In(opts->read_timeout);
                auto reports = co_await reconcilers->Default().ReportsForDate(*date, deadline);
                if (!reports) co_return Failure(ctx, reports.error(), "reconciliation_not_found");
                api::v1::ReconciliationList body;
                body.set_bill_date(*date);
                for (const auto& r : reports.value()) *body.add_reconciliations() = ToProto(r);
                co_return edge::ApiResponse(ctx.request, status::ok, body);
              }});

  router.Add({verb::get, "/v1/reconciliations/{id}", Access::kRoles, finance,
              [reconcilers, opts](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                std::int64_t id = 0;
                if (auto bad = ReadId(ctx, &id)) co_return std::move(*bad);
                const db::Deadline deadline = In(opts->read_timeout);
                auto report = co_await reconcilers->Default().GetReport(id, deadline);
                if (!report) co_return Failure(ctx, report.error(), "reconciliation_not_found");
                co_return edge::ApiResponse(ctx.request, status::ok, ToProto(report.value()));
              }});

  router.Add(
      {verb::get, "/v1/reconciliation-exceptions", Access::kRoles, finance,
       [reconcilers, opts](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
         const auto target = ctx.request.target();
         paygate::recon::ExceptionFilter filter;
         if (auto v = edge::QueryParam(target, "class")) {
           if (!OneOf(*v, kExceptionClasses)) {
             co_return BadParam(ctx, "class",
                                "class must be missing_ours, missing_provider, amount_mismatch, "
                                "status_mismatch, timing, duplicate or settlement_mismatch.");
           }
           filter.klass = *v;
         }
         if (auto v = edge::QueryParam(target, "status")) {
           if (!OneOf(*v, kExceptionStatuses)) {
             co_return BadParam(ctx, "status",
                                "status must be open, assigned, resolved or superseded.");
           }
           filter.status = *v;
         }
         if (auto v = edge::QueryParam(target, "bill_date")) {
           if (!IsDate(*v)) co_return BadParam(ctx, "bill_date", "bill_date must be YYYY-MM-DD.");
           filter.bill_date = *v;
         }
         if (auto v = edge::QueryParam(target, "provider")) filter.provider = *v;
         if (auto v = edge::QueryParam(target, "assignee")) filter.assignee = *v;
         if (auto v = edge::QueryParam(target, "after")) {
           const auto after = ParseInt(*v);
           if (!after || *after < 0) {
             co_return BadParam(ctx, "after", "after must be a next_after value.");
           }
           filter.after_id = *after;
         }
         if (auto v = edge::QueryParam(target, "limit")) {
           const auto limit = ParseInt(*v);
           if (!limit || *limit < 1 || *limit > 1000) {
             co_return BadParam(ctx, "limit", "limit must be an integer from 1 to 1000.");
           }
           filter.limit = static_cast<std::int32_t>(*limit);
         }
         const std::int32_t limit = filter.limit;
         const db::Deadline deadline = In(opts->read_timeout);
         auto list = co_await reconcilers->Default().ListExceptions(std::move(filter), deadline);
         if (!list) co_return Failure(ctx, list.error(), "exception_not_found");
         api::v1::ReconciliationExceptionList body;
         for (const auto& e : list.value()) *body.add_exceptions() = ToProto(e);
         if (static_cast<std::int32_t>(list.value().size()) == limit) {
           body.set_next_after(std::to_string(list.value().back().id));
         }
         co_return edge::ApiResponse(ctx.request, status::ok, body);
       }});

  router.Add(
      {verb::post, "/v1/reconciliation-exceptions/{id}/assign", Access::kRoles, finance,
       post([reconcilers, opts](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
         std::int64_t id = 0;
         if (auto bad = ReadId(ctx, &id)) co_return std::move(*bad);
         api::v1::AssignReconciliationExceptionRequest request;
         if (auto bad = ParseBody(ctx, &request)) co_return std::move(*bad);
         std::string principal = ctx.principal->name;
         const db::Deadline deadline = In(opts->read_timeout);
         auto done = co_await reconcilers->Default().Assign(id, request.assignee(),
                                                             std::move(principal), deadline);
         if (!done) co_return Failure(ctx, done.error(), "exception_not_found");
         co_return edge::ApiResponse(ctx.request, status::ok, ToProto(done.value()));
       })});

  router.Add(
      {verb::post, "/v1/reconciliation-exceptions/{id}/comment", Access::kRoles, finance,
       post([reconcilers, opts](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
         std::int64_t id = 0;
         if (auto bad = ReadId(ctx, &id)) co_return std::move(*bad);
         api::v1::CommentReconciliationExceptionRequest request;
         if (auto bad = ParseBody(ctx, &request)) co_return std::move(*bad);
         std::string principal = ctx.principal->name;
         const db::Deadline deadline = In(opts->read_timeout);
         auto done = co_await reconcilers->Default().Comment(id, request.body(),
                                                              std::move(principal), deadline);
         if (!done) co_return Failure(ctx, done.error(), "exception_not_found");
         co_return edge::ApiResponse(ctx.request, status::ok, ToProto(done.value()));
       })});

  router.Add(
      {verb::post, "/v1/reconciliation-exceptions/{id}/resolve", Access::kRoles, finance,
       post([reconcilers, opts](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
         std::int64_t id = 0;
         if (auto bad = ReadId(ctx, &id)) co_return std::move(*bad);
         api::v1::ResolveReconciliationExceptionRequest request;
         if (auto bad = ParseBody(ctx, &request)) co_return std::move(*bad);
         std::string principal = ctx.principal->name;
         const db::Deadline deadline = In(opts->read_timeout);
         auto done = co_await reconcilers->Default().Resolve(
             id, request.reason(), request.post_adjustment(), std::move(principal), deadline);
         if (!done) co_return Failure(ctx, done.error(), "exception_not_found");
         co_return edge::ApiResponse(ctx.request, status::ok, ToProto(done.value()));
       })});
}

}  // namespace paygate::gateway::recon
