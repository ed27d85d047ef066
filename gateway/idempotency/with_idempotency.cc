#include "gateway/idempotency/with_idempotency.h"

#include <array>

#include <fmt/format.h>

#include "config/logging.h"

namespace paygate::idempotency {
namespace {

using edge::http::field;
using edge::http::status;

// Records of requests without a principal (public routes) share one scope; the parentheses keep it
// apart from every principal name ([a-z0-9_.-]).
constexpr std::string_view kPublicScope = "(public)";

// Headers not replayed: framing (recomputed), per-response values the edge sets (Request-Id,
// Cache-Control, Connection), and the replay markers themselves. Content-Type is stored apart.
constexpr std::array<field, 7> kNotReplayed = {
    field::content_length,    field::content_type, field::connection,    field::keep_alive,
    field::transfer_encoding, field::date,         field::cache_control,
};

bool IsReplayable(const edge::Response::value_type& header) {
  for (field f : kNotReplayed) {
    if (header.name() == f) return false;
  }
  const std::string_view name = header.name_string();
  if (edge::beast::iequals(name, "Request-Id") || edge::beast::iequals(name, kReplayedHeader) ||
      edge::beast::iequals(name, kOriginalRequestIdHeader)) {
    return false;
  }
  // A value that could not be written back as one header line is not stored.
  return header.value().find_first_of("\r\n") == std::string_view::npos;
}

StoredResponse ToStored(const edge::Response& response) {
  StoredResponse stored;
  stored.status = response.result_int();
  stored.content_type = std::string(response[field::content_type]);
  for (const auto& header : response) {
    if (!IsReplayable(header)) continue;
    stored.headers += fmt::format("{}: {}\r\n", header.name_string(), header.value());
  }
  stored.body = response.body();
  return stored;
}

edge::Response Replay(const edge::Request& request, const BeginOutcome& done) {
  edge::Response response{static_cast<status>(done.response.status), request.version()};
  if (!done.response.content_type.empty()) {
    response.set(field::content_type, done.response.content_type);
  }
  std::string_view lines = done.response.headers;
  while (!lines.empty()) {
    const std::size_t end = lines.find("\r\n");
    const std::string_view line = lines.substr(0, end);
    lines = end == std::string_view::npos ? std::string_view{} : lines.substr(end + 2);
    const std::size_t colon = line.find(": ");
    if (colon == std::string_view::npos) continue;
    response.insert(line.substr(0, colon), line.substr(colon + 2));
  }
  response.set(kReplayedHeader, "true");
  response.set(kOriginalRequestIdHeader, done.original_request_id);
  response.body() = done.response.body;
  response.prepare_payload();
  return response;
}

// Outcomes a retry should run again rather than replay: the request did not (or may not have)
// taken effect, or was refused for a reason that passes.
bool IsStored(unsigned status_code) {
  return status_code < 500 && status_code != 409 && status_code != 429;
}

}  // namespace

bool IsValidKey(std::string_view key) {
  if (key.empty() || key.size() > kKeySizeMax) return false;
  for (char c : key) {
    if (c < '!' || c > '~') return false;
  }
  return true;
}

edge::Handler WithIdempotency(std::shared_ptr<IdempotencyStore> store, edge::Handler inner,
                              IdempotencyOptions options) {
  return [store = std::move(store), inner = std::move(inner), options,
          logger = log::Get("idempotency")](
             edge::RequestContext& ctx) -> edge::asio::awaitable<edge::Response> {
    const edge::Request& request = ctx.request;
    if (request.method() != edge::http::verb::post) {
      edge::Response passed = co_await inner(ctx);
      co_return passed;
    }

    const auto header = request.find(kHeader);
    if (header == request.end()) {
      co_return edge::ErrorResponse(
          request, status::bad_request, "invalid_request_error", "idempotency_key_missing",
          "POST requests need an Idempotency-Key header.", ctx.request_id, kHeader);
    }
    if (!IsValidKey(header->value())) {
      co_return edge::ErrorResponse(
          request, status::bad_request, "invalid_request_error", "idempotency_key_invalid",
          fmt::format("Idempotency-Key must be 1 to {} visible ASCII characters.", kKeySizeMax),
          ctx.request_id, kHeader);
    }
    const IdempotencyKey key{
        ctx.principal != nullptr ? ctx.principal->name : std::string(kPublicScope),
        std::string(header->value())};
    const std::string fingerprint = RequestFingerprint(
        request.method_string(), request.target(), request[field::content_type], request.body());

    Result<BeginOutcome> begun = co_await store->Begin(key, fingerprint, ctx.request_id,
                                                       db::Clock::now() + options.store_timeout);
    if (!begun) {
      logger->error("request_id={} principal={} idempotency store unavailable: {}", ctx.request_id,
                    key.principal, begun.error().message());
      edge::Response response = edge::ErrorResponse(
          request, status::service_unavailable, "unavailable_error", "idempotency_unavailable",
          "The Idempotency-Key could not be checked; retry later.", ctx.request_id);
      response.set(field::retry_after, "1");
      co_return response;
    }
    switch (begun.value().kind) {
      case BeginOutcome::Kind::kDone:
        co_return Replay(request, begun.value());
      case BeginOutcome::Kind::kMismatch:
        co_return edge::ErrorResponse(
            request, status::unprocessable_entity, "invalid_request_error",
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request (method, path, "
            "Content-Type or body).",
            ctx.request_id, kHeader);
      case BeginOutcome::Kind::kInFlight: {
        edge::Response response = edge::ErrorResponse(
            request, status::conflict, "conflict_error", "idempotency_key_in_use",
            "A request with this Idempotency-Key is still being processed; retry later.",
            ctx.request_id, kHeader);
        response.set(field::retry_after, "1");
        co_return response;
      }
      case BeginOutcome::Kind::kClaimed:
        break;
    }

    const std::string lease_token = std::move(begun.value().lease_token);
    edge::Response response = co_await inner(ctx);
    const auto deadline = db::Clock::now() + options.store_timeout;
    if (IsStored(response.result_int())) {
      Result<void> stored =
          co_await store->Complete(key, lease_token, ToStored(response), deadline);
      if (!stored) {
        // The answer is still right; only a retry will run the (idempotent) handler again once
        // the lease expires.
        logger->warn("request_id={} principal={} response not stored: {}", ctx.request_id,
                     key.principal, stored.error().message());
      }
    } else {
      Result<void> released = co_await store->Release(key, lease_token, deadline);
      if (!released) {
        logger->warn(
            "request_id={} principal={} key not released, it frees when its lease "
            "expires: {}",
            ctx.request_id, key.principal, released.error().message());
      }
    }
    co_return response;
  };
}

}  // namespace paygate::idempotency
