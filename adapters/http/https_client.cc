#include "adapters/http/https_client.h"

#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include <map>
#include <mutex>
#include <optional>

#include <fmt/format.h>

#include "adapters/http/beast.h"

namespace paygate::adapters::http {
namespace {

using namespace net;  // NOLINT(google-build-using-namespace): asio/beast/ssl aliases only.
using Clock = std::chrono::steady_clock;
using Stream = beast::ssl_stream<beast::tcp_stream>;

// TLS 1.2 suites: ECDHE key exchange with AEAD ciphers only, the same policy as our own listeners.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string OpenSslError() {
  unsigned long code = ERR_get_error();  // NOLINT(google-runtime-int): OpenSSL's type.
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

bool IsIpLiteral(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

Result<HttpsResponse, HttpsError> NotSent(std::string detail) {
  return HttpsError{Delivery::kNotSent, std::move(detail)};
}
Result<HttpsResponse, HttpsError> MaybeSent(std::string detail) {
  return HttpsError{Delivery::kMaybeSent, std::move(detail)};
}

}  // namespace

// One TLS connection to one origin, with its read buffer (which must travel with it: bytes read
// past one response belong to the next).
struct Connection {
  Connection(const asio::any_io_executor& executor, ssl::context& ctx) : stream(executor, ctx) {}
  Stream stream;
  beast::flat_buffer buffer;
  Clock::time_point idle_since;
};

class HttpsClient::Impl {
 public:
  Impl(HttpsClientOptions options, ssl::context ctx)
      : options_(std::move(options)), ctx_(std::move(ctx)) {}

  asio::awaitable<Result<HttpsResponse, HttpsError>> Send(HttpsRequest request);
  std::size_t IdleConnections() const {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const auto& [origin, idle] : idle_) n += idle.size();
    return n;
  }
  std::size_t InFlight() const {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const auto& [origin, count] : in_flight_) n += count;
    return n;
  }

 private:
  // Holds one of an origin's in-flight slots for the lifetime of a Send.
  class Slot {
   public:
    Slot(Impl& impl, std::string origin) : impl_(&impl), origin_(std::move(origin)) {}
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() {
      std::lock_guard lock(impl_->mu_);
      auto it = impl_->in_flight_.find(origin_);
      if (--it->second == 0) impl_->in_flight_.erase(it);
    }

   private:
    Impl* impl_;
    std::string origin_;
  };
  // A slot, or nullopt when the origin is at its bound.
  std::optional<Slot> Acquire(const std::string& origin) {
    {
      std::lock_guard lock(mu_);
      std::size_t& count = in_flight_[origin];
      if (count >= options_.in_flight_per_origin_max) {
        if (count == 0) in_flight_.erase(origin);
        return std::nullopt;
      }
      ++count;
    }
    return std::optional<Slot>(std::in_place, *this, origin);
  }

  std::unique_ptr<Connection> TakeIdle(const std::string& origin);
  void GiveBack(const std::string& origin, std::unique_ptr<Connection> connection);
  asio::awaitable<Result<void, std::string>> Open(Connection& connection, const ParsedUrl& url,
                                                  const Deadlines& deadlines);

  const HttpsClientOptions options_;
  ssl::context ctx_;
  mutable std::mutex mu_;
  std::map<std::string, std::deque<std::unique_ptr<Connection>>> idle_;
  std::map<std::string, std::size_t> in_flight_;
};

namespace {

// True when an idle connection can carry another request: the server has not closed it and has sent
// nothing unsolicited (a close_notify, an error, garbage). Checked without blocking, before
// writing, so that a connection the server dropped while idle costs a reconnect instead of an
// unknown outcome.
bool StillUsable(Connection& connection) {
  if (connection.buffer.size() != 0) return false;
  auto& socket = beast::get_lowest_layer(connection.stream).socket();
  if (!socket.is_open()) return false;
  char byte = 0;
  const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

std::unique_ptr<Connection> HttpsClient::Impl::TakeIdle(const std::string& origin) {
  std::deque<std::unique_ptr<Connection>> stale;
  std::unique_ptr<Connection> found;
  {
    std::lock_guard lock(mu_);
    auto it = idle_.find(origin);
    if (it == idle_.end()) return nullptr;
    auto& idle = it->second;
    const auto now = Clock::now();
    // Most recently used first: it is the least likely to have been closed by the server.
    while (!idle.empty()) {
      auto candidate = std::move(idle.back());
      idle.pop_back();
      if (now - candidate->idle_since < options_.idle_timeout_ms && StillUsable(*candidate)) {
        found = std::move(candidate);
        break;
      }
      stale.push_back(std::move(candidate));
    }
  }
  // Stale connections are closed outside the lock.
  for (auto& connection : stale) {
    boost::system::error_code ignored;
    beast::get_lowest_layer(connection->stream).socket().close(ignored);
  }
  return found;
}

void HttpsClient::Impl::GiveBack(const std::string& origin,
                                 std::unique_ptr<Connection> connection) {
  connection->idle_since = Clock::now();
  beast::get_lowest_layer(connection->stream).expires_never();
  std::lock_guard lock(mu_);
  auto& idle = idle_[origin];
  if (idle.size() >= options_.idle_connections_per_origin_max) {
    // Drop the oldest: the pool's bound is a bound.
    idle.pop_front();
  }
  idle.push_back(std::move(connection));
}

asio::awaitable<Result<void, std::string>> HttpsClient::Impl::Open(Connection& connection,
                                                                   const ParsedUrl& url,
                                                                   const Deadlines& deadlines) {
  auto executor = co_await asio::this_coro::executor;
  boost::system::error_code ec;

  // The resolver has no deadline of its own: a timer cancels it.
  tcp::resolver resolver(executor);
  asio::steady_timer resolve_deadline(executor, deadlines.resolve_connect_ms);
  resolve_deadline.async_wait([&resolver](boost::system::error_code wait_ec) {
    if (!wait_ec) resolver.cancel();
  });
  auto endpoints = co_await resolver.async_resolve(url.host, url.port,
                                                   asio::redirect_error(asio::use_awaitable, ec));
  resolve_deadline.cancel();
  if (ec) co_return fmt::format("resolve {}: {}", url.host, ec.message());

  auto& tcp_layer = beast::get_lowest_layer(connection.stream);
  tcp_layer.expires_after(deadlines.resolve_connect_ms);
  co_await tcp_layer.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return fmt::format("connect {}:{}: {}", url.host, url.port, ec.message());
  tcp_layer.socket().set_option(tcp::no_delay(true), ec);

  SSL* ssl = connection.stream.native_handle();
  // SNI is for names only (RFC 6066 forbids IP literals); the host-name check covers both, and
  // OpenSSL 3 treats an IP literal given to SSL_set1_host as an IP SAN to match.
  // SSL_set_tlsext_host_name is a macro with a C cast; this is what it expands to.
  if (!IsIpLiteral(url.host) &&
      SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(url.host.c_str())) != 1) {
    co_return fmt::format("sni: {}", OpenSslError());
  }
  if (SSL_set1_host(ssl, url.host.c_str()) != 1) {
    co_return fmt::format("host name: {}", OpenSslError());
  }
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);

  tcp_layer.expires_after(deadlines.handshake_ms);
  co_await connection.stream.async_handshake(ssl::stream_base::client,
                                             asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    std::string why = ec.message();
    const long verify = SSL_get_verify_result(ssl);  // NOLINT(google-runtime-int): OpenSSL's type.
    if (verify != X509_V_OK) {
      why = fmt::format("{} ({})", why, X509_verify_cert_error_string(verify));
    }
    co_return fmt::format("tls handshake with {}: {}", url.host, why);
  }
  co_return outcome::success();
}

asio::awaitable<Result<HttpsResponse, HttpsError>> HttpsClient::Impl::Send(HttpsRequest request) {
  auto url = ParseHttpsUrl(request.url);
  if (!url) co_return NotSent(url.error());
  const bhttp::verb verb = bhttp::string_to_verb(request.method);
  if (verb == bhttp::verb::unknown) co_return NotSent("unsupported method " + request.method);

  const std::string origin = fmt::format("{}:{}", url.value().host, url.value().port);
  const std::optional<Slot> slot = Acquire(origin);
  if (!slot) co_return NotSent("in-flight bound reached for " + origin);
  std::unique_ptr<Connection> connection = TakeIdle(origin);
  const bool reused = connection != nullptr;
  if (!reused) {
    auto executor = co_await asio::this_coro::executor;
    connection = std::make_unique<Connection>(executor, ctx_);
    auto opened = co_await Open(*connection, url.value(), request.deadlines);
    if (!opened) co_return NotSent(opened.error());
  }

  bhttp::request<bhttp::string_body> message{verb, url.value().target, 11};
  const bool default_port = url.value().port == "443";
  const bool ipv6 = url.value().host.find(':') != std::string::npos;
  const std::string host = ipv6 ? "[" + url.value().host + "]" : url.value().host;
  message.set(bhttp::field::host, default_port ? host : host + ":" + url.value().port);
  message.set(bhttp::field::user_agent, "paygate/" PAYGATE_VERSION);
  for (const auto& [name, value] : request.headers) message.set(name, value);
  if (!request.body.empty() || verb == bhttp::verb::post || verb == bhttp::verb::put) {
    message.set(bhttp::field::content_type, request.content_type);
  }
  message.body() = std::move(request.body);
  message.keep_alive(true);
  message.prepare_payload();

  // From here on, bytes may reach the server: every failure is "maybe sent".
  boost::system::error_code ec;
  auto& tcp_layer = beast::get_lowest_layer(connection->stream);
  tcp_layer.expires_after(request.deadlines.write_ms);
  co_await bhttp::async_write(connection->stream, message,
                              asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return MaybeSent(fmt::format("write to {}: {}", origin, ec.message()));

  bhttp::response_parser<bhttp::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(options_.response_header_max_bytes));
  parser.body_limit(options_.response_body_max_bytes);
  tcp_layer.expires_after(request.deadlines.response_ms);
  co_await bhttp::async_read_header(connection->stream, connection->buffer, parser,
                                    asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return MaybeSent(fmt::format("read from {}: {}", origin, ec.message()));
  // Beast 1.74 does not apply body_limit to a response's Content-Length (only to chunked and
  // read-to-EOF bodies), so the declared length is checked here before reading any of it.
  const auto declared = parser.content_length();
  if (declared && *declared > options_.response_body_max_bytes) {
    co_return MaybeSent(fmt::format("read from {}: body of {} bytes exceeds the limit of {}",
                                    origin, *declared, options_.response_body_max_bytes));
  }
  if (!parser.is_done()) {
    co_await bhttp::async_read(connection->stream, connection->buffer, parser,
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return MaybeSent(fmt::format("read from {}: {}", origin, ec.message()));
  }

  auto response_message = parser.release();
  HttpsResponse response;
  response.status = response_message.result_int();
  response.reused_connection = reused;
  for (const auto& field : response_message) {
    response.headers.emplace_back(Lower(field.name_string()), std::string(field.value()));
  }
  const bool keep = response_message.keep_alive();
  response.body = std::move(response_message.body());
  if (keep) GiveBack(origin, std::move(connection));
  co_return response;
}

std::string_view HttpsResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return {};
}

Result<std::shared_ptr<HttpsClient>, std::string> HttpsClient::Create(HttpsClientOptions options) {
  ssl::context ctx(ssl::context::tls_client);
  SSL_CTX* native = ctx.native_handle();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) return OpenSslError();
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) return OpenSslError();
  if (options.ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(native) != 1) {
      return fmt::format("system trust store: {}", OpenSslError());
    }
  } else if (SSL_CTX_load_verify_locations(native, options.ca_file.c_str(), nullptr) != 1) {
    return fmt::format("{}: {}", options.ca_file, OpenSslError());
  }
  // Verification is not optional: a chain that does not verify fails the handshake.
  SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_verify_depth(native, 6);
  auto impl = std::make_unique<Impl>(std::move(options), std::move(ctx));
  return std::shared_ptr<HttpsClient>(new HttpsClient(std::move(impl)));
}

HttpsClient::HttpsClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpsClient::~HttpsClient() = default;

boost::asio::awaitable<Result<HttpsResponse, HttpsError>> HttpsClient::Send(HttpsRequest request) {
  return impl_->Send(std::move(request));
}

std::size_t HttpsClient::IdleConnections() const { return impl_->IdleConnections(); }

std::size_t HttpsClient::InFlight() const { return impl_->InFlight(); }

Result<ParsedUrl, std::string> ParseHttpsUrl(std::string_view url) {
  constexpr std::string_view kScheme = "https://";
  if (url.size() < kScheme.size() || Lower(url.substr(0, kScheme.size())) != kScheme) {
    return std::string("not an https URL");
  }
  std::string_view rest = url.substr(kScheme.size());
  const std::size_t slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  std::string target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (const auto hash = target.find('#'); hash != std::string::npos) target.resize(hash);
  if (target.empty() || target[0] == '?') target.insert(0, "/");
  if (authority.find('@') != std::string_view::npos) return std::string("userinfo in URL");
  ParsedUrl parsed;
  parsed.target = std::move(target);
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::string("unterminated IPv6 literal");
    parsed.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::string("bad authority");
      port = after.substr(1);
    }
  } else {
    const std::size_t colon = authority.rfind(':');
    parsed.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (parsed.host.empty()) return std::string("empty host");
  if (port.empty()) {
    parsed.port = "443";
  } else {
    if (port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return std::string("bad port");
    }
    const int value = std::stoi(std::string(port));
    if (value < 1 || value > 65535) return std::string("bad port");
    parsed.port = std::string(port);
  }
  return parsed;
}

}  // namespace paygate::adapters::http
