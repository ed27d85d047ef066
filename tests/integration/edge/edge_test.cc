// Integration tests of the TLS edge: a real listener on loopback with real certificates from the
// dev CA, driven by a real TLS client. No database is involved; the daemon-level tests cover
// /readyz.
#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/routes.h"
#include "tests/integration/edge/edge_fixture.h"
#include "tests/testing/sanitizers.h"

namespace paygate::testing {
namespace {

using namespace std::chrono_literals;
using edge::http::status;
using edge::http::verb;
using ::testing::HasSubstr;

class EdgeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                     ("paygate-edge-pki-" + std::to_string(::getpid())));
    MakeDevPki(*pki_);
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*pki_);
    delete pki_;
  }

  // The API routes plus a route whose handler takes `slow_ms`, for drain tests, and a POST echo
  // route that reports the body size, for body tests.
  static std::shared_ptr<edge::Router> Routes(std::chrono::milliseconds slow = 0ms) {
    auto router = gateway::BuildApiRouter();
    router->Add({verb::get,
                 "/test/slow",
                 edge::Access::kAuthenticated,
                 {},
                 [slow](edge::RequestContext& ctx) -> edge::asio::awaitable<edge::Response> {
                   edge::asio::steady_timer timer(co_await edge::asio::this_coro::executor, slow);
                   co_await timer.async_wait(edge::asio::use_awaitable);
                   edge::Response response{status::ok, ctx.request.version()};
                   response.body() = "slow done";
                   response.prepare_payload();
                   co_return response;
                 }});
    router->Add({verb::post,
                 "/test/echo-size",
                 edge::Access::kRoles,
                 {config::v1::ROLE_SALES},
                 [](edge::RequestContext& ctx) -> edge::asio::awaitable<edge::Response> {
                   edge::Response response{status::ok, ctx.request.version()};
                   response.body() = std::to_string(ctx.request.body().size());
                   response.prepare_payload();
                   co_return response;
                 }});
    return router;
  }

  ClientOptions AsSales() const {
    return Client(*pki_ / "sales-platform.crt", *pki_ / "sales-platform.key");
  }
  ClientOptions Anonymous() const { return Client({}, {}); }
  ClientOptions Client(std::filesystem::path cert, std::filesystem::path key) const {
    ClientOptions options;
    options.ca = *pki_ / "ca.crt";
    options.cert = std::move(cert);
    options.key = std::move(key);
    return options;
  }

  static std::filesystem::path* pki_;
};

std::filesystem::path* EdgeTest::pki_ = nullptr;

// Metrics are recorded once the response is written, so a client can read its answer a moment
// before the server counted it: poll briefly.
::testing::AssertionResult MetricsShow(RunningServer& server, std::string_view line) {
  std::string text;
  for (int i = 0; i < 100; ++i) {
    text = server.metrics().Serialize();
    if (text.find(line) != std::string::npos) return ::testing::AssertionSuccess();
    std::this_thread::sleep_for(20ms);
  }
  return ::testing::AssertionFailure() << "metrics lack " << line << "\n" << text;
}

// A verified client certificate maps to its configured principal and roles; the answer is JSON with
// a request id that matches the Request-Id header.
TEST_F(EdgeTest, ClientCertificateAuthenticatesAsPrincipal) {
  auto config = TestConfig(*pki_);
  RunningServer server(config, config.api(), Routes());
  TlsClient client(server.port(), AsSales());
  ASSERT_FALSE(client.Connect());
  edge::Response response = client.Get("/v1/whoami");
  EXPECT_EQ(response.result(), status::ok);
  EXPECT_EQ(response[edge::http::field::content_type], "application/json");
  EXPECT_THAT(response.body(), HasSubstr(R"("principal":"sales-platform")"));
  EXPECT_THAT(response.body(), HasSubstr(R"("roles":["sales"])"));
  EXPECT_EQ(response["Request-Id"].size(), 16u);
}

// Without a client certificate an authenticated route answers 401 with the JSON error shape of
// DESIGN.md §5, and the error's request_id is the Request-Id header.
TEST_F(EdgeTest, MissingCertificateIsUnauthenticated) {
  auto config = TestConfig(*pki_);
  RunningServer server(config, config.api(), Routes());
  TlsClient client(server.port(), Anonymous());
  ASSERT_FALSE(client.Connect());
  edge::Response response = client.Get("/v1/whoami");
  EXPECT_EQ(response.result(), status::unauthorized);
  EXPECT_THAT(response.body(), HasSubstr(R"("type":"authentication_error")"));
  EXPECT_THAT(response.body(), HasSubstr(R"("code":"unauthenticated")"));
  const std::string id(response["Request-Id"]);
  EXPECT_THAT(response.body(), HasSubstr(R"("request_id":")" + id + "\""));
}

// A principal without the route's role gets 403; unknown routes 404; a known path with the wrong
// method 405.
TEST_F(EdgeTest, RolesAndRoutesAreEnforced) {
  auto config = TestConfig(*pki_);
  RunningServer server(config, config.api(), Routes());
  TlsClient client(server.port(), Client(*pki_ / "finance.crt", *pki_ / "finance.key"));
  ASSERT_FALSE(client.Connect());
  edge::Request post{verb::post, "/test/echo-size", 11};
  post.body() = "x";
  edge::Response response;
  ASSERT_FALSE(client.Send(post, &response));
  EXPECT_EQ(response.result(), status::forbidden);
  EXPECT_EQ(client.Get("/v1/nothing-here").result(), status::not_found);
  EXPECT_EQ(client.Get("/test/echo-size").result(), status::method_not_allowed);
}

// A certificate from a CA the listener does not trust fails the handshake when client certificates
// are required, and a missing one too; both count as handshake failures.
TEST_F(EdgeTest, RequiredClientCertificateIsEnforced) {
  auto config = TestConfig(*pki_);
  config.mutable_api()->mutable_tls()->set_client_cert(config::v1::CLIENT_CERT_MODE_REQUIRED);
  RunningServer server(config, config.api(), Routes());
  TlsClient anonymous(server.port(), Anonymous());
  edge::beast::error_code ec = anonymous.Connect();
  // In TLS 1.3 the client learns of the refusal at its first read.
  if (!ec) {
    edge::Request request{verb::get, "/v1/whoami", 11};
    edge::Response response;
    ec = anonymous.Send(request, &response);
  }
  EXPECT_TRUE(ec);
  TlsClient sales(server.port(), AsSales());
  ASSERT_FALSE(sales.Connect());
  EXPECT_EQ(sales.Get("/v1/whoami").result(), status::ok);
  EXPECT_TRUE(MetricsShow(server, "paygate_tls_handshake_failures_total{listener=\"api\"} 1"));
}

// TLS 1.0 and 1.1 are refused at the handshake.
TEST_F(EdgeTest, OldTlsVersionsAreRefused) {
  auto config = TestConfig(*pki_);
  RunningServer server(config, config.api(), Routes());
  for (int version : {TLS1_VERSION, TLS1_1_VERSION}) {
    ClientOptions options = AsSales();
    options.max_version = version;
    TlsClient client(server.port(), options);
    EXPECT_TRUE(client.Connect()) << "version " << version;
  }
  TlsClient modern(server.port(), AsSales());
  EXPECT_FALSE(modern.Connect());
}

// TLS 1.2 without ECDHE or without an AEAD cipher is refused.
TEST_F(EdgeTest, WeakTls12CiphersAreRefused) {
  auto config = TestConfig(*pki_);
  RunningServer server(config, config.api(), Routes());
  for (const char* ciphers :
       {"ECDHE-ECDSA-AES128-SHA", "AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-SHA384"}) {
    ClientOptions options = AsSales();
    options.tls12_ciphers = ciphers;
    TlsClient client(server.port(), options);
    EXPECT_TRUE(client.Connect()) << ciphers;
  }
  ClientOptions good = AsSales();
  good.tls12_ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";
  TlsClient client(server.port(), good);
  EXPECT_FALSE(client.Connect());
}

// Plain HTTP on the TLS port gets a plain-text 400 and the connection is closed.
TEST_F(EdgeTest, PlainHttpIsRefused) {
  auto config = TestConfig(*pki_);
  RunningServer server(config, config.api(), Routes());
  edge::asio::io_context ioc;
  edge::tcp::socket socket(ioc);
  socket.connect({edge::asio::ip::make_address("127.0.0.1"), server.port()});
  edge::asio::write(socket,
                    edge::asio::buffer(std::string("GET /v1/whoami HTTP/1.1\r\nHost: x\r\n\r\n")));
  std::string answer;
  edge::beast::error_code ec;
  char chunk[512];
  for (;;) {
    std::size_t n = socket.read_some(edge::asio::buffer(chunk), ec);
    if (ec) break;
    answer.append(chunk, n);
  }
  EXPECT_THAT(answer, HasSubstr("HTTP/1.1 400 Bad Request"));
  EXPECT_THAT(answer, HasSubstr("HTTPS only"));
}

// A 10 MiB body gets 413 from its headers alone, without the server buffering it: the process does
// not grow by anything near 10 MiB.
TEST_F(EdgeTest, OversizedBodyGets413WithoutBuffering) {
  auto config = TestConfig(*pki_);
  RunningServer server(config, config.api(), Routes());
  TlsClient client(server.port(), AsSales());
  ASSERT_FALSE(client.Connect());
  const std::size_t before = ResidentBytes();
  // Send headers, then stream 10 MiB in chunks from one small buffer, as a real uploader would.
  edge::beast::error_code ec;
  std::string header_text = "POST /test/echo-size HTTP/1.1\r\nHost: localhost\r\nContent-Length: " +
                            std::to_string(10 * 1024 * 1024) + "\r\n\r\n";
  ASSERT_FALSE(client.WriteRaw(header_text));
  const std::string chunk(64 * 1024, 'a');
  std::size_t sent = 0;
  while (sent < 10u * 1024 * 1024 && !client.WriteRaw(chunk)) sent += chunk.size();
  const std::size_t after = ResidentBytes();
  if (!kUnderAddressSanitizer) {
    EXPECT_LT(after - std::min(after, before), 4u * 1024 * 1024);
  }
  EXPECT_TRUE(MetricsShow(
      server, R"(paygate_http_rejections_total{listener="api",reason="body_too_large"} 1)"));
}

// The 413 answer itself reaches a client that announced its large body.
TEST_F(EdgeTest, OversizedBodyAnswer) {
  auto config = TestConfig(*pki_);
  RunningServer server(config, config.api(), Routes());
  TlsClient client(server.port(), AsSales());
  ASSERT_FALSE(client.Connect());
  edge::Request request{verb::post, "/test/echo-size", 11};
  request.body() = std::string(128 * 1024, 'a');
  edge::Response response;
  ASSERT_FALSE(client.Send(request, &response));
  EXPECT_EQ(response.result(), status::payload_too_large);
  EXPECT_THAT(response.body(), HasSubstr(R"("code":"body_too_large")"));
  EXPECT_FALSE(response.keep_alive());
}

// Two requests sent back to back in one write (pipelining) are both answered, in order: the header
// fast path consumes exactly one request's bytes.
TEST_F(EdgeTest, PipelinedRequestsAreAnsweredInOrder) {
  auto config = TestConfig(*pki_);
  RunningServer server(config, config.api(), Routes());
  TlsClient client(server.port(), AsSales());
  ASSERT_FALSE(client.Connect());
  ASSERT_FALSE(
      client.WriteRaw("GET /v1/whoami HTTP/1.1\r\nHost: localhost\r\n\r\n"
                      "GET /v1/nothing HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  edge::Response first;
  edge::Response second;
  ASSERT_FALSE(client.Read(&first));
  ASSERT_FALSE(client.Read(&second));
  EXPECT_EQ(first.result(), status::ok);
  EXPECT_EQ(second.result(), status::not_found);
}

// A body within the limit is read whole.
TEST_F(EdgeTest, BodyWithinLimitIsServed) {
  auto config = TestConfig(*pki_);
  RunningServer server(config, config.api(), Routes());
  TlsClient client(server.port(), AsSales());
  ASSERT_FALSE(client.Connect());
  edge::Request request{verb::post, "/test/echo-size", 11};
  request.body() = std::string(60 * 1024, 'a');
  edge::Response response;
  ASSERT_FALSE(client.Send(request, &response));
  EXPECT_EQ(response.result(), status::ok);
  EXPECT_EQ(response.body(), std::to_string(60 * 1024));
}

// Headers larger than header_size_max_bytes get 431.
TEST_F(EdgeTest, OversizedHeadersGet431) {
  auto config = TestConfig(*pki_);
  RunningServer server(config, config.api(), Routes());
  TlsClient client(server.port(), AsSales());
  ASSERT_FALSE(client.Connect());
  edge::Request request{verb::get, "/v1/whoami", 11};
  request.set("X-Padding", std::string(9000, 'p'));
  edge::Response response;
  ASSERT_FALSE(client.Send(request, &response));
  EXPECT_EQ(response.result(), status::request_header_fields_too_large);
}

// A client sending its headers one byte at a time is cut off at header_read_timeout_ms (1.5 s
// here), long before it could finish.
TEST_F(EdgeTest, SlowHeadersAreCutOffAtHeaderTimeout) {
  auto config = TestConfig(*pki_);
  RunningServer server(config, config.api(), Routes());
  TlsClient client(server.port(), AsSales());
  ASSERT_FALSE(client.Connect());
  const std::string request =
      "GET /v1/whoami HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + std::string(100, 's') + "\r\n\r\n";
  const auto start = std::chrono::steady_clock::now();
  std::size_t sent = 0;
  for (; sent < request.size(); ++sent) {
    if (client.WriteRaw(request.substr(sent, 1))) break;
    std::this_thread::sleep_for(250ms);
    if (std::chrono::steady_clock::now() - start > 4s) break;
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(sent, request.size());
  EXPECT_GE(elapsed, 1400ms);
  EXPECT_LT(elapsed, 3500ms);
  EXPECT_TRUE(MetricsShow(
      server, R"(paygate_http_rejections_total{listener="api",reason="header_timeout"} 1)"));
}

// A body that trickles in is cut off at body_read_timeout_ms.
TEST_F(EdgeTest, SlowBodyIsCutOffAtBodyTimeout) {
  auto config = TestConfig(*pki_);
  RunningServer server(config, config.api(), Routes());
  TlsClient client(server.port(), AsSales());
  ASSERT_FALSE(client.Connect());
  ASSERT_FALSE(client.WriteRaw(
      "POST /test/echo-size HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nabc"));
  EXPECT_TRUE(client.ServerClosed(3s));
  EXPECT_TRUE(MetricsShow(
      server, R"(paygate_http_rejections_total{listener="api",reason="body_timeout"} 1)"));
}

// An idle keep-alive connection is closed after idle_timeout_ms.
TEST_F(EdgeTest, IdleKeepAliveConnectionIsClosed) {
  auto config = TestConfig(*pki_);
  RunningServer server(config, config.api(), Routes());
  TlsClient client(server.port(), AsSales());
  ASSERT_FALSE(client.Connect());
  EXPECT_EQ(client.Get("/v1/whoami").result(), status::ok);
  EXPECT_EQ(server.server().open_connections(), 1u);
  EXPECT_TRUE(client.ServerClosed(3s));
}

// Past connections_per_ip_max a new connection is answered 429; past connections_max, 503.
TEST_F(EdgeTest, ConnectionLimitsAreAnswered) {
  auto config = TestConfig(*pki_);
  config.mutable_api()->mutable_limits()->set_connections_per_ip_max(2);
  {
    RunningServer server(config, config.api(), Routes());
    TlsClient first(server.port(), AsSales());
    TlsClient second(server.port(), AsSales());
    TlsClient third(server.port(), AsSales());
    ASSERT_FALSE(first.Connect());
    ASSERT_FALSE(second.Connect());
    ASSERT_FALSE(third.Connect());
    EXPECT_EQ(third.Get("/v1/whoami").result(), status::too_many_requests);
    EXPECT_EQ(first.Get("/v1/whoami").result(), status::ok);
  }
  config.mutable_api()->mutable_limits()->set_connections_per_ip_max(10);
  config.mutable_api()->mutable_limits()->set_connections_max(1);
  RunningServer server(config, config.api(), Routes());
  TlsClient first(server.port(), AsSales());
  TlsClient second(server.port(), AsSales());
  ASSERT_FALSE(first.Connect());
  ASSERT_FALSE(second.Connect());
  EXPECT_EQ(second.Get("/v1/whoami").result(), status::service_unavailable);
  EXPECT_EQ(first.Get("/v1/whoami").result(), status::ok);
}

// Reloading certificates serves the new certificate to new connections while a connection opened
// before keeps working on the old one.
TEST_F(EdgeTest, CertificateReloadKeepsExistingConnections) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("paygate-edge-reload-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (const char* f : {"server.crt", "server.key", "ca.crt"}) {
    std::filesystem::copy_file(*pki_ / f, dir / f,
                               std::filesystem::copy_options::overwrite_existing);
  }
  auto config = TestConfig(dir);
  RunningServer server(config, config.api(), Routes());
  TlsClient before(server.port(), {});
  ASSERT_FALSE(before.Connect());
  const std::string old_fingerprint = before.PeerFingerprint();

  const auto other = MakeDevPki(dir / "other");
  std::filesystem::copy_file(other / "server.crt", dir / "server.crt",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(other / "server.key", dir / "server.key",
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_TRUE(server.server().tls().Reload());

  TlsClient after(server.port(), {});
  ASSERT_FALSE(after.Connect());
  EXPECT_NE(after.PeerFingerprint(), old_fingerprint);
  EXPECT_EQ(before.Get("/v1/whoami").result(),
            status::unauthorized);  // Still served, no cert sent.

  // A broken file on disk leaves the running context in place.
  std::ofstream(dir / "server.key") << "not a key";
  EXPECT_FALSE(server.server().tls().Reload());
  TlsClient still(server.port(), {});
  EXPECT_FALSE(still.Connect());
  std::filesystem::remove_all(dir);
}

// A server key readable by others is refused at start-up (and on reload), naming the file and the
// fix.
TEST_F(EdgeTest, WorldReadableKeyIsRefused) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("paygate-edge-perm-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(*pki_ / "server.key", dir / "server.key",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::permissions(dir / "server.key", std::filesystem::perms::others_read,
                               std::filesystem::perm_options::add);
  auto config = TestConfig(*pki_);
  config.mutable_api()->mutable_tls()->set_key_file((dir / "server.key").string());
  auto context = edge::MakeServerTlsContext(config.api().tls());
  ASSERT_FALSE(context);
  EXPECT_THAT(context.error(), HasSubstr("server.key"));
  EXPECT_THAT(context.error(), HasSubstr("chmod 600"));
  std::filesystem::remove_all(dir);
}

// Draining stops new connections, lets the request in flight finish with "Connection: close", and
// completes once it has.
TEST_F(EdgeTest, DrainFinishesInFlightRequests) {
  auto config = TestConfig(*pki_);
  // One I/O thread: connections run without strands, and draining must still reach them.
  RunningServer server(config, config.api(), Routes(700ms), /*threads=*/1);
  TlsClient busy(server.port(), AsSales());
  TlsClient idle(server.port(), AsSales());
  ASSERT_FALSE(busy.Connect());
  ASSERT_FALSE(idle.Connect());
  EXPECT_EQ(idle.Get("/v1/whoami").result(), status::ok);
  auto in_flight = std::async(std::launch::async, [&] { return busy.Get("/test/slow"); });
  std::this_thread::sleep_for(200ms);
  const auto start = std::chrono::steady_clock::now();
  server.Drain(5s);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  edge::Response response = in_flight.get();
  EXPECT_EQ(response.result(), status::ok);
  EXPECT_FALSE(response.keep_alive());
  EXPECT_LT(elapsed, 2s);
  EXPECT_EQ(server.server().open_connections(), 0u);
  EXPECT_TRUE(idle.ServerClosed(1s));
  TlsClient late(server.port(), AsSales());
  EXPECT_TRUE(late.Connect());
}

// /metrics exposes request counts and latency by route and status, open connections and handshake
// failures.
TEST_F(EdgeTest, MetricsDescribeTraffic) {
  auto config = TestConfig(*pki_);
  RunningServer server(config, config.api(), Routes());
  TlsClient client(server.port(), AsSales());
  ASSERT_FALSE(client.Connect());
  EXPECT_EQ(client.Get("/v1/whoami").result(), status::ok);
  EXPECT_EQ(client.Get("/v1/whoami").result(), status::ok);
  EXPECT_TRUE(MetricsShow(
      server,
      R"(paygate_http_requests_total{listener="api",method="GET",route="/v1/whoami",status="200"} 2)"));
  EXPECT_TRUE(MetricsShow(
      server,
      R"(paygate_http_request_duration_seconds_count{listener="api",route="/v1/whoami",status="200"} 2)"));
  EXPECT_TRUE(MetricsShow(server, R"(paygate_http_open_connections{listener="api"} 1)"));
}

}  // namespace
}  // namespace paygate::testing
