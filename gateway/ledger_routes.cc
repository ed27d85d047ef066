#include "gateway/ledger_routes.h"

#include <charconv>

#include "gateway/api/v1/ledger.pb.h"
#include "gateway/utc_time.h"

namespace paygate::gateway {
namespace {

using edge::http::status;

// Each read must finish within this bound; finance reads are not latency-critical but never hang.
constexpr auto kReadTime = std::chrono::seconds(10);

edge::Response BadParam(const edge::RequestContext& ctx, std::string_view param,
                        std::string_view message) {
  return edge::ErrorResponse(ctx.request, status::bad_request, "invalid_request_error",
                             "invalid_parameter", message, ctx.request_id, param);
}

edge::Response Failure(const edge::RequestContext& ctx, std::error_code ec) {
  if (ec == ledger::Errc::not_found) {
    return edge::ErrorResponse(ctx.request, status::not_found, "not_found_error",
                               "account_not_found", "No such account.", ctx.request_id);
  }
  return edge::ErrorResponse(ctx.request, status::service_unavailable, "unavailable_error",
                             "ledger_unavailable", "The ledger could not be read; retry later.",
                             ctx.request_id);
}

std::optional<std::int64_t> ParseInt(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// The {id} path parameter: a positive integer, or the 400 naming it.
std::optional<edge::Response> ReadAccountId(const edge::RequestContext& ctx, std::int64_t* id) {
  const auto parsed = ParseInt(ctx.path_params[0]);
  if (!parsed || *parsed <= 0) return BadParam(ctx, "id", "id must be a positive integer.");
  *id = *parsed;
  return std::nullopt;
}

// The `at` query parameter: absent means now; present must be UTC, or the 400 naming it.
std::optional<edge::Response> ReadAt(const edge::RequestContext& ctx,
                                     std::optional<ledger::Timestamp>* at) {
  const auto text = edge::QueryParam(ctx.request.target(), "at");
  if (!text) return std::nullopt;
  *at = ParseUtc(*text);
  if (!*at) return BadParam(ctx, "at", "at must be UTC like 2026-11-27T03:00:00Z.");
  return std::nullopt;
}

void Fill(api::v1::LedgerBalance* out, const ledger::Balance& b) {
  out->set_debits_pending(b.debits_pending);
  out->set_debits_posted(b.debits_posted);
  out->set_credits_pending(b.credits_pending);
  out->set_credits_posted(b.credits_posted);
}

}  // namespace

void AddLedgerRoutes(edge::Router& router, std::shared_ptr<ledger::Ledger> ledger) {
  const std::vector<config::v1::Role> finance = {config::v1::ROLE_FINANCE};

  router.Add(
      {edge::http::verb::get, "/v1/ledger/accounts/{id}/balance", edge::Access::kRoles, finance,
       [ledger](edge::RequestContext& ctx) -> edge::asio::awaitable<edge::Response> {
         std::int64_t id = 0;
         if (auto bad = ReadAccountId(ctx, &id)) co_return std::move(*bad);
         std::optional<ledger::Timestamp> at;
         if (auto bad = ReadAt(ctx, &at)) co_return std::move(*bad);
         auto balance =
             co_await ledger->GetBalance(ledger::AccountId{id}, at, db::Clock::now() + kReadTime);
         if (!balance) co_return Failure(ctx, balance.error());
         api::v1::LedgerBalanceResponse body;
         body.set_account_id(id);
         if (at) body.set_at(FormatUtc(*at));
         Fill(body.mutable_balance(), balance.value());
         co_return edge::JsonResponse(ctx.request, status::ok, body);
       }});

  router.Add({edge::http::verb::get, "/v1/ledger/accounts/{id}/statement", edge::Access::kRoles,
              finance,
              [ledger](edge::RequestContext& ctx) -> edge::asio::awaitable<edge::Response> {
                std::int64_t id = 0;
                if (auto bad = ReadAccountId(ctx, &id)) co_return std::move(*bad);
                std::int32_t limit = 100;
                if (const auto text = edge::QueryParam(ctx.request.target(), "limit")) {
                  const auto parsed = ParseInt(*text);
                  if (!parsed || *parsed < 1 || *parsed > 1000) {
                    co_return BadParam(ctx, "limit", "limit must be an integer from 1 to 1000.");
                  }
                  limit = static_cast<std::int32_t>(*parsed);
                }
                // The cursor is "<microseconds since the epoch>:<transfer id>", as returned.
                ledger::StatementCursor cursor;
                if (const auto text = edge::QueryParam(ctx.request.target(), "after")) {
                  const size_t colon = text->find(':');
                  const auto micros = ParseInt(std::string_view(*text).substr(0, colon));
                  if (colon == std::string::npos || !micros) {
                    co_return BadParam(ctx, "after", "after must be a next_cursor value.");
                  }
                  cursor.created_at = ledger::Timestamp(std::chrono::microseconds(*micros));
                  cursor.transfer_id.value = text->substr(colon + 1);
                }
                auto page = co_await ledger->GetStatement(ledger::AccountId{id}, cursor, limit,
                                                          db::Clock::now() + kReadTime);
                if (!page) co_return Failure(ctx, page.error());
                api::v1::LedgerStatementResponse body;
                body.set_account_id(id);
                for (const auto& line : page.value().lines) {
                  auto* out = body.add_lines();
                  out->set_transfer_id(line.transfer_id.value);
                  out->set_created_at(FormatUtc(line.created_at));
                  out->set_kind(std::string(ledger::ToString(line.kind)));
                  out->set_reason_code(line.reason_code);
                  out->set_external_ref(line.external_ref);
                  Fill(out->mutable_delta(), line.delta);
                  Fill(out->mutable_running_balance(), line.running_balance);
                }
                if (const auto& next = page.value().next) {
                  body.set_next_cursor(std::to_string(next->created_at.time_since_epoch().count()) +
                                       ":" + next->transfer_id.value);
                }
                co_return edge::JsonResponse(ctx.request, status::ok, body);
              }});

  // Closing an account refuses new postings to it (reservations on it can still be voided or
  // expire); reopening undoes that. Both are idempotent, finance-only, and logged by the router's
  // access log with the principal.
  for (const bool closed : {true, false}) {
    router.Add({edge::http::verb::post,
                closed ? "/v1/ledger/accounts/{id}/close" : "/v1/ledger/accounts/{id}/reopen",
                edge::Access::kRoles, finance,
                [ledger, closed](edge::RequestContext& ctx) -> edge::asio::awaitable<edge::Response> {
                  std::int64_t id = 0;
                  if (auto bad = ReadAccountId(ctx, &id)) co_return std::move(*bad);
                  auto done = co_await ledger->SetAccountClosed(ledger::AccountId{id}, closed,
                                                                db::Clock::now() + kReadTime);
                  if (!done) co_return Failure(ctx, done.error());
                  api::v1::LedgerAccountStateResponse body;
                  body.set_account_id(id);
                  body.set_closed(closed);
                  co_return edge::JsonResponse(ctx.request, status::ok, body);
                }});
  }

  router.Add(
      {edge::http::verb::get, "/v1/ledger/trial-balance", edge::Access::kRoles, finance,
       [ledger](edge::RequestContext& ctx) -> edge::asio::awaitable<edge::Response> {
         const auto currency = edge::QueryParam(ctx.request.target(), "currency");
         if (!currency || currency->size() != 3 ||
             !std::all_of(currency->begin(), currency->end(),
                          [](char c) { return c >= 'A' && c <= 'Z'; })) {
           co_return BadParam(ctx, "currency", "currency must be an ISO 4217 code such as CNY.");
         }
         std::optional<ledger::Timestamp> at;
         if (auto bad = ReadAt(ctx, &at)) co_return std::move(*bad);
         auto trial = co_await ledger->GetTrialBalance(*currency, at, db::Clock::now() + kReadTime);
         if (!trial) co_return Failure(ctx, trial.error());
         api::v1::LedgerTrialBalanceResponse body;
         body.set_currency(*currency);
         if (at) body.set_at(FormatUtc(*at));
         for (const auto& line : trial.value().lines) {
           auto* out = body.add_lines();
           out->set_account_id(line.account_id.value);
           out->set_type(std::string(ledger::ToString(line.type)));
           out->set_name(line.name);
           Fill(out->mutable_balance(), line.balance);
         }
         Fill(body.mutable_total(), trial.value().total);
         co_return edge::JsonResponse(ctx.request, status::ok, body);
       }});
}

}  // namespace paygate::gateway
