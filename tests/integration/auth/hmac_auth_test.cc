// API keys with HMAC-signed requests over real TLS, with nonces in a real PostgreSQL: what is
// accepted, every way a signature is refused, replays (also across two daemons sharing the
// database), the interplay with client certificates and roles, rate limits, and start-up checks of
// the secret files.
#include <sys/stat.h>

#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/routes.h"
#include "keys/live_keyring.h"
#include "tests/integration/auth/auth_fixture.h"

namespace paygate::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

// The API routes (whoami) plus a sales-only POST echoing its body and a finance-only GET.
std::shared_ptr<edge::Router> Routes() {
  auto router = gateway::BuildApiRouter();
  router->Add({verb::post,
               "/test/echo",
               edge::Access::kRoles,
               {config::v1::ROLE_SALES},
               [](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                 edge::Response response{status::ok, ctx.request.version()};
                 response.body() = ctx.principal->name + ":" + ctx.request.body();
                 response.prepare_payload();
                 co_return response;
               }});
  router->Add({verb::get,
               "/test/finance",
               edge::Access::kRoles,
               {config::v1::ROLE_FINANCE},
               [](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                 edge::Response response{status::ok, ctx.request.version()};
                 response.body() = "finance ok";
                 response.prepare_payload();
                 co_return response;
               }});
  return router;
}

class HmacAuthTest : public AuthTest {};

// A request signed with a configured key authenticates as the key's principal, without a client
// certificate; the body reaches the handler intact; whoami says how the caller authenticated.
TEST_F(HmacAuthTest, GoodSignatureIsAccepted) {
  auto server = StartServer(Routes());
  const edge::Response whoami =
      Exchange(server->port(), Anonymous(), MakeRequest(verb::get, "/v1/whoami", {}, &kBatchKey));
  EXPECT_EQ(whoami.result(), status::ok) << whoami.body();
  EXPECT_THAT(whoami.body(), HasSubstr(R"("principal":"batch")"));
  EXPECT_THAT(whoami.body(), HasSubstr(R"("authentication":"hmac")"));

  const edge::Response echo =
      Exchange(server->port(), Anonymous(),
               MakeRequest(verb::post, "/test/echo?x=1", R"({"amount":100})", &kSalesKey));
  EXPECT_EQ(echo.result(), status::ok) << echo.body();
  EXPECT_EQ(echo.body(), R"(sales-platform:{"amount":100})");

  // Certificates keep working next to keys.
  const edge::Response mtls =
      Exchange(server->port(), As("sales-platform"), MakeRequest(verb::get, "/v1/whoami"));
  EXPECT_EQ(mtls.result(), status::ok);
  EXPECT_THAT(mtls.body(), HasSubstr(R"("authentication":"mtls")"));
}

// During a rotation the key's secret has two versions in the keyring: a request signed with either
// authenticates, so the client moves to the new secret at its own pace; a secret of no version is
// refused.
TEST_F(HmacAuthTest, EveryVersionOfTheSecretVerifies) {
  const TestKey rotated{kBatchKey.key_id, std::string(40, 'R')};
  const auto path = secrets() / "batch-k1.v2";
  std::ofstream(path) << rotated.secret;
  ::chmod(path.c_str(), 0600);
  config::v1::KeyringEntry* entry = config_.mutable_keys()->add_entries();
  entry->set_id("api." + kBatchKey.key_id);
  entry->set_version(2);
  entry->set_file(path.string());
  auto server = StartServer(Routes());
  for (const TestKey* key : {&kBatchKey, &rotated}) {
    const edge::Response whoami =
        Exchange(server->port(), Anonymous(), MakeRequest(verb::get, "/v1/whoami", {}, key));
    EXPECT_EQ(whoami.result(), status::ok) << whoami.body();
    EXPECT_THAT(whoami.body(), HasSubstr(R"("principal":"batch")"));
  }
  const TestKey unknown{kBatchKey.key_id, std::string(40, 'U')};
  const edge::Response refused =
      Exchange(server->port(), Anonymous(), MakeRequest(verb::get, "/v1/whoami", {}, &unknown));
  EXPECT_EQ(refused.result(), status::unauthorized);
  EXPECT_EQ(ErrorCode(refused), "signature_invalid");
}

// Every defect of a signed request is a 401 with its own code, and the handler never runs.
TEST_F(HmacAuthTest, BadSignaturesAreRefused) {
  auto server = StartServer(Routes());
  auto expect_401 = [&](edge::Request request, std::string_view code) {
    const edge::Response response = Exchange(server->port(), Anonymous(), std::move(request));
    EXPECT_EQ(response.result(), status::unauthorized) << code << ": " << response.body();
    EXPECT_EQ(ErrorCode(response), code) << response.body();
    EXPECT_THAT(response.body(), HasSubstr(R"("type":"authentication_error")"));
    EXPECT_THAT(response.body(), Not(HasSubstr("sales-platform:")));
  };
  const std::string body = R"({"amount":100})";

  TestKey wrong_secret = kSalesKey;
  wrong_secret.secret[0] = 'x';
  expect_401(MakeRequest(verb::post, "/test/echo", body, &wrong_secret), "signature_invalid");

  edge::Request tampered_body = MakeRequest(verb::post, "/test/echo", body, &kSalesKey);
  tampered_body.body() = R"({"amount":999})";
  expect_401(std::move(tampered_body), "signature_invalid");

  edge::Request tampered_path = MakeRequest(verb::post, "/test/echo", body, &kSalesKey);
  tampered_path.target("/test/echo?as=other");
  expect_401(std::move(tampered_path), "signature_invalid");

  edge::Request tampered_method = MakeRequest(verb::get, "/v1/whoami", {}, &kSalesKey);
  tampered_method.method(verb::post);
  tampered_method.target("/test/echo");
  expect_401(std::move(tampered_method), "signature_invalid");

  TestKey unknown = kSalesKey;
  unknown.key_id = "no-such-key";
  expect_401(MakeRequest(verb::post, "/test/echo", body, &unknown), "unknown_api_key");

  edge::Request stale = MakeRequest(verb::post, "/test/echo", body);
  Sign(stale, kSalesKey, UnixNow() - 301, auth::RandomNonce());
  expect_401(std::move(stale), "timestamp_stale");

  edge::Request future = MakeRequest(verb::post, "/test/echo", body);
  Sign(future, kSalesKey, UnixNow() + 301, auth::RandomNonce());
  expect_401(std::move(future), "timestamp_stale");

  edge::Request malformed = MakeRequest(verb::post, "/test/echo", body);
  malformed.set(edge::http::field::authorization, "PAYGATE-HMAC-SHA256 KeyId=sales-k1");
  expect_401(std::move(malformed), "malformed_authorization");

  edge::Request other_scheme = MakeRequest(verb::post, "/test/echo", body);
  other_scheme.set(edge::http::field::authorization, "Bearer abc");
  expect_401(std::move(other_scheme), "unsupported_authorization");

  // Within the window is fine.
  edge::Request recent = MakeRequest(verb::post, "/test/echo", body);
  Sign(recent, kSalesKey, UnixNow() - 290, auth::RandomNonce());
  EXPECT_EQ(Exchange(server->port(), Anonymous(), std::move(recent)).result(), status::ok);
}

// A nonce is accepted once per key: replaying the exact request is refused, at the same daemon
// and at another daemon sharing the database; the same nonce under another key is independent.
TEST_F(HmacAuthTest, ReplayedNonceIsRefused) {
  auto server = StartServer(Routes());
  auto other_pool = MakePool(2);
  auto other_daemon = StartServer(Routes(), other_pool.get());
  const std::string nonce = auth::RandomNonce();
  edge::Request request = MakeRequest(verb::post, "/test/echo", "pay once");
  Sign(request, kSalesKey, UnixNow(), nonce);

  EXPECT_EQ(Exchange(server->port(), Anonymous(), request).result(), status::ok);
  for (std::uint16_t port : {server->port(), other_daemon->port()}) {
    const edge::Response replay = Exchange(port, Anonymous(), request);
    EXPECT_EQ(replay.result(), status::unauthorized) << replay.body();
    EXPECT_EQ(ErrorCode(replay), "nonce_replayed");
  }
  // Stored once, in the database the daemons share, for at least the replay window.
  EXPECT_EQ(Sql("SELECT count(*) FROM api_nonces WHERE key_id = 'sales-k1' AND nonce = '" + nonce +
                "' AND expires_at > now() + interval '590 s'"),
            1);
  edge::Request same_nonce_other_key = MakeRequest(verb::get, "/v1/whoami");
  Sign(same_nonce_other_key, kBatchKey, UnixNow(), nonce);
  EXPECT_EQ(Exchange(other_daemon->port(), Anonymous(), same_nonce_other_key).result(), status::ok);
  other_daemon.reset();
  other_pool->Close();
}

// Concurrent replays of one request: exactly one is served.
TEST_F(HmacAuthTest, ConcurrentReplaysServeOnce) {
  auto server = StartServer(Routes());
  edge::Request request = MakeRequest(verb::post, "/test/echo", "once");
  Sign(request, kSalesKey, UnixNow(), auth::RandomNonce());
  std::vector<std::future<unsigned>> results;
  for (int i = 0; i < 10; ++i) {
    results.push_back(std::async(std::launch::async, [&] {
      return Exchange(server->port(), Anonymous(), request).result_int();
    }));
  }
  int ok = 0, replayed = 0;
  for (auto& r : results) {
    const unsigned code = r.get();
    ok += code == 200;
    replayed += code == 401;
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(replayed, 9);
}

// Roles still decide per route: a valid signature of a principal without the route's role gets
// 403, and the unauthenticated caller still gets 401.
TEST_F(HmacAuthTest, RolesAreEnforced) {
  auto server = StartServer(Routes());
  const edge::Response forbidden =
      Exchange(server->port(), Anonymous(), MakeRequest(verb::post, "/test/echo", "x", &kBatchKey));
  EXPECT_EQ(forbidden.result(), status::forbidden) << forbidden.body();
  EXPECT_EQ(ErrorCode(forbidden), "role_not_allowed");
  const edge::Response finance = Exchange(server->port(), Anonymous(),
                                          MakeRequest(verb::get, "/test/finance", {}, &kSalesKey));
  EXPECT_EQ(finance.result(), status::forbidden);
  const edge::Response nobody =
      Exchange(server->port(), Anonymous(), MakeRequest(verb::get, "/v1/whoami"));
  EXPECT_EQ(nobody.result(), status::unauthorized);
  EXPECT_EQ(ErrorCode(nobody), "unauthenticated");
  EXPECT_THAT(nobody.body(), HasSubstr("API key"));
}

// A certificate and a signature naming different principals are refused; naming the same one is
// fine.
TEST_F(HmacAuthTest, CertificateAndKeyMustAgree) {
  auto server = StartServer(Routes());
  const edge::Response mismatch =
      Exchange(server->port(), As("finance"), MakeRequest(verb::get, "/v1/whoami", {}, &kSalesKey));
  EXPECT_EQ(mismatch.result(), status::unauthorized) << mismatch.body();
  EXPECT_EQ(ErrorCode(mismatch), "principal_mismatch");
  // The finance certificate alone would have been enough for this route: the conflict itself is
  // what is refused.
  EXPECT_EQ(
      Exchange(server->port(), As("finance"), MakeRequest(verb::get, "/test/finance")).result(),
      status::ok);
  const edge::Response agree = Exchange(server->port(), As("sales-platform"),
                                        MakeRequest(verb::get, "/v1/whoami", {}, &kSalesKey));
  EXPECT_EQ(agree.result(), status::ok) << agree.body();
  EXPECT_THAT(agree.body(), HasSubstr(R"("authentication":"hmac")"));
}

// A key's rate limit answers 429 with Retry-After once its burst is spent, without recording the
// refused request's nonce; a principal's limit applies to certificate-authenticated requests too.
TEST_F(HmacAuthTest, RateLimitsAnswer429) {
  auto server = StartServer(Routes());
  std::vector<unsigned> codes;
  edge::Response limited;
  for (int i = 0; i < 3; ++i) {
    limited = Exchange(server->port(), Anonymous(),
                       MakeRequest(verb::post, "/test/echo", "r", &kLimitedKey));
    codes.push_back(limited.result_int());
  }
  EXPECT_THAT(codes, ::testing::ElementsAre(200, 200, 429));
  EXPECT_EQ(ErrorCode(limited), "rate_limited");
  EXPECT_EQ(limited[edge::http::field::retry_after], "1");
  // Other keys are not affected.
  EXPECT_EQ(
      Exchange(server->port(), Anonymous(), MakeRequest(verb::post, "/test/echo", "r", &kSalesKey))
          .result(),
      status::ok);

  // risk-team: certificate only, 1/s with a burst of 2, on one keep-alive connection.
  TlsClient risk(server->port(), As("risk-team"));
  ASSERT_FALSE(risk.Connect());
  std::vector<unsigned> risk_codes;
  edge::Response last;
  for (int i = 0; i < 3; ++i) {
    last = risk.Get("/v1/whoami");
    risk_codes.push_back(last.result_int());
  }
  EXPECT_THAT(risk_codes, ::testing::ElementsAre(200, 200, 429));
  EXPECT_FALSE(last[edge::http::field::retry_after].empty());
  // The bucket refills: after a second one more request passes.
  std::this_thread::sleep_for(1100ms);
  EXPECT_EQ(risk.Get("/v1/whoami").result(), status::ok);
}

// Without the nonce store a signed request cannot be checked for replay: 503, never accepted.
TEST_F(HmacAuthTest, NonceStoreDownIs503) {
  auto server = StartServer(Routes());
  pool_->Close();
  const edge::Response response =
      Exchange(server->port(), Anonymous(), MakeRequest(verb::post, "/test/echo", "x", &kSalesKey));
  EXPECT_EQ(response.result(), status::service_unavailable) << response.body();
  EXPECT_EQ(ErrorCode(response), "authentication_unavailable");
  EXPECT_EQ(response[edge::http::field::retry_after], "1");
  // Certificates need no database.
  EXPECT_EQ(
      Exchange(server->port(), As("sales-platform"), MakeRequest(verb::get, "/v1/whoami")).result(),
      status::ok);
}

// Expired nonces are purged by the janitor's function, and an expired nonce may be used again.
TEST_F(HmacAuthTest, ExpiredNoncesArePurged) {
  auth::PostgresNonceStore store(*pool_);
  auto in = [] { return db::Clock::now() + 10s; };
  EXPECT_TRUE(OnDb(store.Remember("k", "nonce-0000000001", 600s, in())).value());
  EXPECT_FALSE(OnDb(store.Remember("k", "nonce-0000000001", 600s, in())).value());
  EXPECT_TRUE(OnDb(store.Remember("k", "nonce-0000000002", 600s, in())).value());
  Sql("UPDATE api_nonces SET expires_at = now() - interval '1 s' "
      "WHERE nonce = 'nonce-0000000001'");
  auto purged = OnDb(store.Purge(in()));
  ASSERT_TRUE(purged);
  EXPECT_EQ(purged.value(), 1);
  EXPECT_TRUE(OnDb(store.Remember("k", "nonce-0000000001", 600s, in())).value());
  EXPECT_FALSE(OnDb(store.Remember("k", "nonce-0000000002", 600s, in())).value());
}

// Start-up refuses secrets that are missing, readable by others, or too short, naming the key
// and never printing the secret. The file is a keyring entry, loaded (and its permissions checked)
// by the keyring; the authenticator checks what it needs of the secret.
TEST_F(HmacAuthTest, SecretFilesAreChecked) {
  auto try_create = [&](const std::string& secret, mode_t mode) {
    const auto path = secrets() / "check";
    std::filesystem::remove(path);
    if (!secret.empty()) {
      std::ofstream(path) << secret;
      ::chmod(path.c_str(), mode);
    }
    config::v1::Config config = config_;
    config.mutable_principals(0)->mutable_api_keys(0)->set_secret_key_id("api.check");
    config::v1::KeyringEntry* entry = config.mutable_keys()->add_entries();
    entry->set_id("api.check");
    entry->set_version(1);
    entry->set_file(path.string());
    auto keyring = keys::LiveKeyring::Load(config.keys());
    if (!keyring) return keyring.error().message;
    auto principals = std::make_shared<edge::PrincipalDirectory>(config);
    auto created = auth::HmacAuthenticator::Create(config, principals, nullptr, keyring.value());
    return created ? std::string() : created.error();
  };
  EXPECT_EQ(try_create(std::string(32, 'k'), 0600), "");
  const std::string short_secret = "short-secret-of-31-bytes-xxxxxx";
  ASSERT_EQ(short_secret.size(), 31u);
  const std::string too_short = try_create(short_secret, 0600);
  EXPECT_THAT(too_short, HasSubstr("sales-k1"));
  EXPECT_THAT(too_short, HasSubstr("at least 32"));
  EXPECT_THAT(too_short, Not(HasSubstr(short_secret)));
  const std::string too_open = try_create(std::string(40, 'o'), 0644);
  EXPECT_THAT(too_open, HasSubstr("api.check"));
  EXPECT_THAT(too_open, Not(HasSubstr(std::string(40, 'o'))));
  EXPECT_NE(try_create("", 0600), "");
}

}  // namespace
}  // namespace paygate::testing
