#include "gateway/auth/hmac_authenticator.h"

#include <fmt/format.h>

#include "config/logging.h"
#include "gateway/auth/signing.h"

namespace paygate::auth {
namespace {

using edge::http::status;

edge::Response Unauthorized(const edge::Request& request, std::string_view request_id,
                            std::string_view code, std::string_view message) {
  return edge::ErrorResponse(request, status::unauthorized, "authentication_error", code, message,
                             request_id, "Authorization");
}

edge::AuthOutcome Refuse(edge::Response response) {
  return edge::AuthOutcome{nullptr, edge::Authentication::kNone, std::move(response)};
}

std::unique_ptr<TokenBucket> MakeBucket(const config::v1::RateLimit& limit,
                                        TokenBucket::Clock::time_point now) {
  return std::make_unique<TokenBucket>(limit.requests_per_second(), limit.burst(), now);
}

}  // namespace

HmacAuthenticator::HmacAuthenticator(std::shared_ptr<const edge::PrincipalDirectory> principals,
                                     std::shared_ptr<NonceStore> nonces,
                                     std::shared_ptr<const keys::LiveKeyring> keyring,
                                     HmacAuthenticatorOptions options)
    : principals_(std::move(principals)),
      nonces_(std::move(nonces)),
      keyring_(std::move(keyring)),
      options_([&] {
        if (!options.wall_clock)
          options.wall_clock = [] { return std::chrono::system_clock::now(); };
        if (!options.steady_clock) options.steady_clock = [] { return TokenBucket::Clock::now(); };
        return std::move(options);
      }()),
      logger_(log::Get("auth")) {}

Result<std::shared_ptr<HmacAuthenticator>, std::string> HmacAuthenticator::Create(
    const config::v1::Config& config, std::shared_ptr<const edge::PrincipalDirectory> principals,
    std::shared_ptr<NonceStore> nonces, std::shared_ptr<const keys::LiveKeyring> keyring,
    HmacAuthenticatorOptions options) {
  if (keyring == nullptr) return std::string("no keyring");
  const auto ring = keyring->Current();
  std::shared_ptr<HmacAuthenticator> self(new HmacAuthenticator(
      std::move(principals), std::move(nonces), std::move(keyring), std::move(options)));
  const auto now = self->options_.steady_clock();
  for (const config::v1::Principal& p : config.principals()) {
    const edge::Principal* principal = self->principals_->FindByName(p.name());
    if (principal == nullptr) {
      return fmt::format("principal {:?} is missing from the principal directory", p.name());
    }
    if (p.has_rate_limit())
      self->principal_buckets_.emplace(principal, MakeBucket(p.rate_limit(), now));
    for (const config::v1::ApiKey& k : p.api_keys()) {
      const auto versions = ring->AllVersions(k.secret_key_id());
      if (versions.empty()) {
        return fmt::format("principal {} api key {}: secret_key_id {}: not in the keyring",
                           p.name(), k.key_id(), k.secret_key_id());
      }
      for (const keys::Secret* secret : versions) {
        if (secret->size() < kSecretSizeMin) {
          return fmt::format(
              "principal {} api key {}: secret_key_id {} has a version of {} bytes; at least {} "
              "are required",
              p.name(), k.key_id(), k.secret_key_id(), secret->size(), kSecretSizeMin);
        }
      }
      Key key{principal, k.secret_key_id(),
              k.has_rate_limit() ? MakeBucket(k.rate_limit(), now) : nullptr};
      if (!self->keys_.emplace(k.key_id(), std::move(key)).second) {
        return fmt::format("api key id {:?} is configured twice", k.key_id());
      }
    }
  }
  return self;
}

TokenBucket* HmacAuthenticator::PrincipalBucket(const edge::Principal* principal) const {
  auto it = principal_buckets_.find(principal);
  return it == principal_buckets_.end() ? nullptr : it->second.get();
}

std::optional<edge::Response> HmacAuthenticator::Throttle(TokenBucket* bucket,
                                                          const edge::Request& request,
                                                          std::string_view request_id,
                                                          std::string_view subject,
                                                          std::string_view detail) {
  if (bucket == nullptr) return std::nullopt;
  const auto wait = bucket->TryTake(options_.steady_clock());
  if (wait == TokenBucket::Clock::duration::zero()) return std::nullopt;
  const std::int64_t retry_after = RetryAfterSeconds(wait);
  logger_->info("request_id={} rate limited: {}", request_id, detail);
  edge::Response response = edge::ErrorResponse(
      request, status::too_many_requests, "rate_limit_error", "rate_limited",
      fmt::format("Too many requests for this {}; retry after {} s.", subject, retry_after),
      request_id);
  response.set(edge::http::field::retry_after, std::to_string(retry_after));
  return response;
}

std::optional<edge::AuthOutcome> HmacAuthenticator::TryAuthenticate(
    const edge::Request& request, const edge::Principal* certificate_principal,
    std::string_view request_id) {
  const auto authorization = request.find(edge::http::field::authorization);
  if (authorization != request.end()) return std::nullopt;  // Needs the nonce store.
  if (certificate_principal == nullptr) return edge::AuthOutcome{};
  if (auto throttled =
          Throttle(PrincipalBucket(certificate_principal), request, request_id, "principal",
                   fmt::format("principal={}", certificate_principal->name))) {
    return Refuse(std::move(*throttled));
  }
  return edge::AuthOutcome{certificate_principal, edge::Authentication::kClientCertificate,
                           std::nullopt};
}

HmacAuthenticator::Verified HmacAuthenticator::Verify(const edge::Request& request,
                                                      const edge::Principal* certificate_principal,
                                                      std::string_view request_id) {
  Verified out;
  auto refuse = [&](std::string_view code, std::string_view message, std::string_view detail) {
    logger_->info("request_id={} signature refused: {} ({})", request_id, code, detail);
    out.decided = Refuse(Unauthorized(request, request_id, code, message));
    return std::move(out);
  };
  const std::string_view header = request[edge::http::field::authorization];
  if (!IsSignedAuthorization(header)) {
    return refuse("unsupported_authorization",
                  fmt::format("The only Authorization scheme accepted is {}.", kScheme),
                  "other scheme");
  }
  auto parsed = ParseAuthorization(header);
  if (!parsed) {
    return refuse("malformed_authorization",
                  fmt::format("Malformed Authorization header: {}.", parsed.error()),
                  parsed.error());
  }
  const SignatureFields& fields = parsed.value();
  auto key = keys_.find(fields.key_id);
  if (key == keys_.end()) {
    return refuse("unknown_api_key", "No API key has this KeyId.",
                  fmt::format("key_id={}", fields.key_id));
  }
  const std::string to_sign = StringToSign(request.method_string(), request.target(),
                                           fields.timestamp, fields.nonce, request.body());
  // Every version is tried, each in constant time; a version shorter than the minimum (a reload
  // of a bad file) never verifies anything.
  const auto ring = keyring_->Current();
  bool matches = false;
  for (const keys::Secret* secret : ring->AllVersions(key->second.secret_key_id)) {
    if (secret->size() >= kSecretSizeMin &&
        SignatureMatches(secret->reveal(), to_sign, fields.signature)) {
      matches = true;
    }
  }
  if (!matches) {
    return refuse("signature_invalid",
                  "The signature does not match the request; see the signing rules.",
                  fmt::format("key_id={}", fields.key_id));
  }
  // Checked after the signature: only a holder of the secret learns that its clock is off.
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(options_.wall_clock().time_since_epoch())
          .count();
  const std::int64_t skew = now - fields.timestamp;
  if (skew > options_.timestamp_window.count() || -skew > options_.timestamp_window.count()) {
    return refuse("timestamp_stale",
                  fmt::format("Timestamp is more than {} s away from the server's time ({}).",
                              options_.timestamp_window.count(), now),
                  fmt::format("key_id={} skew_s={}", fields.key_id, skew));
  }
  const edge::Principal* principal = key->second.principal;
  if (certificate_principal != nullptr && certificate_principal != principal) {
    return refuse("principal_mismatch",
                  "The client certificate and the API key belong to different principals.",
                  fmt::format("key_id={} certificate_principal={}", fields.key_id,
                              certificate_principal->name));
  }
  if (auto throttled = Throttle(key->second.bucket.get(), request, request_id, "API key",
                                fmt::format("key_id={}", fields.key_id))) {
    out.decided = Refuse(std::move(*throttled));
    return out;
  }
  if (auto throttled = Throttle(PrincipalBucket(principal), request, request_id, "principal",
                                fmt::format("principal={}", principal->name))) {
    out.decided = Refuse(std::move(*throttled));
    return out;
  }
  out.key_id = fields.key_id;
  out.nonce = fields.nonce;
  out.principal = principal;
  return out;
}

edge::asio::awaitable<edge::AuthOutcome> HmacAuthenticator::Authenticate(
    const edge::Request& request, const edge::Principal* certificate_principal,
    std::string_view request_id) {
  Verified verified = Verify(request, certificate_principal, request_id);
  if (verified.decided) co_return std::move(*verified.decided);
  // Remembered until every timestamp it could be replayed with is stale: a timestamp accepted
  // now lies at most one window ahead, and stays acceptable one window past that.
  const std::chrono::seconds keep_for = 2 * options_.timestamp_window;
  const auto deadline = db::Clock::now() + options_.nonce_store_timeout;
  Result<bool> fresh =
      co_await nonces_->Remember(verified.key_id, verified.nonce, keep_for, deadline);
  if (!fresh) {
    logger_->error("request_id={} key_id={} nonce store unavailable: {}", request_id,
                   verified.key_id, fresh.error().message());
    edge::Response response = edge::ErrorResponse(
        request, status::service_unavailable, "unavailable_error", "authentication_unavailable",
        "The request's nonce could not be checked; retry later.", request_id);
    response.set(edge::http::field::retry_after, "1");
    co_return Refuse(std::move(response));
  }
  if (!fresh.value()) {
    logger_->warn("request_id={} key_id={} replayed nonce refused", request_id, verified.key_id);
    co_return Refuse(Unauthorized(request, request_id, "nonce_replayed",
                                  "This Nonce was already used with this key; sign each request "
                                  "with a fresh one."));
  }
  co_return edge::AuthOutcome{verified.principal, edge::Authentication::kApiKey, std::nullopt};
}

}  // namespace paygate::auth
