#pragma once

// The API listener's authenticator (DESIGN.md §5): API keys with HMAC-signed requests
// (gateway/auth/signing.h) next to client certificates, and per-key and per-principal request
// rates.
//
// A request authenticates by its client certificate, by a signature, or by both when they name the
// same principal; both naming different principals is refused (401), as is any signature that does
// not verify: unknown key, wrong signature, timestamp outside the window, nonce already used
// within it. Checks run cheapest first, and the nonce (a database write) is recorded only for a
// request that passed all others, rate limits included, so a flood of forged or throttled requests
// costs no database work.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include <spdlog/logger.h>

#include "config/paygate_config.pb.h"
#include "config/result.h"
#include "gateway/auth/nonce_store.h"
#include "gateway/auth/token_bucket.h"
#include "gateway/edge/authenticator.h"
#include "gateway/edge/http_server.h"
#include "keys/live_keyring.h"

namespace paygate::auth {

struct HmacAuthenticatorOptions {
  // A signed request's timestamp may differ from the daemon's clock by this much either way.
  std::chrono::seconds timestamp_window{300};
  // Bound on recording a nonce (database acquire and statement).
  std::chrono::milliseconds nonce_store_timeout{2000};
  // Injected clocks (STYLE.md); empty means the system clocks.
  std::function<std::chrono::system_clock::time_point()> wall_clock;
  std::function<TokenBucket::Clock::time_point()> steady_clock;
};

// Thread-safe (edge::Authenticator's contract). Immutable after Create() apart from the buckets.
class HmacAuthenticator : public edge::Authenticator {
 public:
  // Resolves every principals[].api_keys[].secret_key_id in `keyring` and refuses a key missing
  // from it or with a version shorter than kSecretSizeMin. The error names the key ids, never the
  // secret. `principals` is the directory the listener uses (same Principal objects).
  //
  // Secrets are looked up in the keyring in effect at each request, so a keyring reload (SIGHUP)
  // takes effect at once; a signature made with any version of the key's secret verifies, so
  // during a rotation clients move to the new version at their own pace.
  static Result<std::shared_ptr<HmacAuthenticator>, std::string> Create(
      const config::v1::Config& config, std::shared_ptr<const edge::PrincipalDirectory> principals,
      std::shared_ptr<NonceStore> nonces, std::shared_ptr<const keys::LiveKeyring> keyring,
      HmacAuthenticatorOptions options = {});

  std::optional<edge::AuthOutcome> TryAuthenticate(const edge::Request& request,
                                                   const edge::Principal* certificate_principal,
                                                   std::string_view request_id) override;
  edge::asio::awaitable<edge::AuthOutcome> Authenticate(
      const edge::Request& request, const edge::Principal* certificate_principal,
      std::string_view request_id) override;

 private:
  struct Key {
    const edge::Principal* principal;
    std::string secret_key_id;  // In the keyring.
    std::unique_ptr<TokenBucket> bucket;  // Null: no limit of its own.
  };
  // What the synchronous checks decided about a signed request.
  struct Verified {
    std::optional<edge::AuthOutcome> decided;  // Refused (or, never, accepted) without I/O.
    std::string key_id;
    std::string nonce;
    const edge::Principal* principal = nullptr;
  };

  HmacAuthenticator(std::shared_ptr<const edge::PrincipalDirectory> principals,
                    std::shared_ptr<NonceStore> nonces,
                    std::shared_ptr<const keys::LiveKeyring> keyring,
                    HmacAuthenticatorOptions options);

  Verified Verify(const edge::Request& request, const edge::Principal* certificate_principal,
                  std::string_view request_id);
  // The 429 when `bucket` (may be null) is empty, else nothing.
  // `subject` ("API key", "principal") goes into the message, `detail` into the log line.
  std::optional<edge::Response> Throttle(TokenBucket* bucket, const edge::Request& request,
                                         std::string_view request_id, std::string_view subject,
                                         std::string_view detail);
  TokenBucket* PrincipalBucket(const edge::Principal* principal) const;

  const std::shared_ptr<const edge::PrincipalDirectory> principals_;
  const std::shared_ptr<NonceStore> nonces_;
  const std::shared_ptr<const keys::LiveKeyring> keyring_;
  const HmacAuthenticatorOptions options_;
  const std::shared_ptr<spdlog::logger> logger_;
  std::unordered_map<std::string, Key> keys_;
  std::unordered_map<const edge::Principal*, std::unique_ptr<TokenBucket>> principal_buckets_;
};

}  // namespace paygate::auth
