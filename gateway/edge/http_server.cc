#include "gateway/edge/http_server.h"

#include <array>
#include <optional>
#include <random>

#include <fmt/format.h>

#include "config/logging.h"

namespace paygate::edge {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kReadChunkBytes = 4096;
// Connections refused for a limit still get a TLS handshake and a status line; past this many at
// once they are closed without a word, so a flood cannot buy unbounded handshakes.
constexpr std::size_t kRejectingMax = 64;
// After refusing a request whose body we did not read, keep reading (and discarding) for this long
// so the peer sees our answer instead of a reset (lingering close, as nginx does).
constexpr auto kLingerTime = 2s;
constexpr auto kTlsShutdownTime = 1s;
const Request kHttp11{http::verb::get, "/", 11};

auto Token(beast::error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

// 16 lower-case hex digits, held inline: one more than std::string keeps without a heap allocation,
// and one is made per request.
class RequestId {
 public:
  RequestId() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::uint64_t bits = rng();
    for (int i = 15; i >= 0; --i, bits >>= 4) digits_[i] = "0123456789abcdef"[bits & 0xf];
  }
  operator std::string_view() const { return {digits_.data(), digits_.size()}; }  // NOLINT

 private:
  std::array<char, 16> digits_;
};

std::chrono::milliseconds Ms(std::uint32_t value) { return std::chrono::milliseconds(value); }

}  // namespace

PrincipalDirectory::PrincipalDirectory(const config::v1::Config& config) {
  for (const auto& p : config.principals()) {
    Principal principal{p.name(), {}};
    for (int role : p.roles()) principal.roles.push_back(static_cast<config::v1::Role>(role));
    const Principal* stored = &by_name_.emplace(p.name(), std::move(principal)).first->second;
    // A principal that authenticates only by API key has no certificate name.
    if (!p.client_cert_common_name().empty()) {
      by_common_name_.emplace(p.client_cert_common_name(), stored);
    }
  }
}

const Principal* PrincipalDirectory::FindByCommonName(std::string_view common_name) const {
  auto it = by_common_name_.find(std::string(common_name));
  return it == by_common_name_.end() ? nullptr : it->second;
}

const Principal* PrincipalDirectory::FindByName(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &it->second;
}

// One connection. Its coroutine runs on the connection's own strand and owns every piece of its
// state; Drain() reaches it only by posting to that strand.
class HttpServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<HttpServer> server, tcp::socket socket, std::string peer_ip,
          Admission admission, std::uint64_t id)
      : server_(std::move(server)),
        tls_context_(server_->tls_->Current()),
        stream_(std::move(socket), *tls_context_),
        peer_ip_(std::move(peer_ip)),
        admission_(admission),
        id_(id),
        limits_(server_->listener_.limits()) {}

  ~Session() { server_->Release(peer_ip_, admission_, id_); }

  asio::awaitable<void> Run();

  // Runs on the session's strand: closes the connection now if it waits between requests; otherwise
  // the request in flight finishes and the loop ends after it.
  void OnDrain(bool force) {
    beast::error_code ignored;
    if (force) {
      beast::get_lowest_layer(stream_).socket().close(ignored);
    } else if (idle_) {
      beast::get_lowest_layer(stream_).cancel();
    }
  }

  asio::any_io_executor executor() { return beast::get_lowest_layer(stream_).get_executor(); }

 private:
  asio::awaitable<bool> DetectAndHandshake();
  asio::awaitable<void> ServeRequests();
  asio::awaitable<void> RefuseConnection();
  // Answers a refused request and closes: its bytes were not all read, so the connection cannot
  // carry another request.
  asio::awaitable<void> RefuseAndClose(Response response, std::string_view request_id);
  asio::awaitable<bool> WriteResponse(Response& response);
  asio::awaitable<void> CloseGracefully();
  asio::awaitable<void> LingeringClose();
  // Finds the route. Returns the refusal (404, 405), or nothing when the route exists.
  // Synchronous: no coroutine frame on the way to the handler.
  std::optional<Response> FindRoute(const Request& request, std::string_view request_id,
                                    Router::Match* match);
  // Checks who may call the route: the refusal (401, 403), or nothing when its handler should run.
  std::optional<Response> Authorize(const Request& request, std::string_view request_id,
                                    const edge::Route& route, const Principal* principal);
  void Reject(Rejection reason, std::string_view request_id, std::string_view detail) {
    server_->metrics_->Rejected(server_->name_, reason);
    server_->logger_->warn("listener={} peer={} request_id={} rejected: {}", server_->name_,
                           peer_ip_, request_id, detail);
  }

  std::shared_ptr<HttpServer> server_;
  std::shared_ptr<ssl::context> tls_context_;  // Kept alive for this connection across reloads.
  beast::ssl_stream<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  std::string write_buffer_;
  const std::string peer_ip_;
  const Admission admission_;
  const std::uint64_t id_;
  const config::v1::HttpLimits& limits_;
  const Principal* principal_ = nullptr;
  std::string peer_common_name_;
  bool idle_ = false;
};

asio::awaitable<void> HttpServer::Session::Run() {
  // co_await results are bound to variables first: GCC 12 miscompiles co_await inside a condition.
  const bool secured = co_await DetectAndHandshake();
  if (!secured) co_return;
  peer_common_name_ = PeerCommonName(stream_.native_handle());
  if (!peer_common_name_.empty()) {
    principal_ = server_->principals_->FindByCommonName(peer_common_name_);
  }
  if (admission_ != Admission::kAdmitted) {
    co_await RefuseConnection();
    co_return;
  }
  co_await ServeRequests();
}

asio::awaitable<bool> HttpServer::Session::DetectAndHandshake() {
  beast::error_code ec;
  auto& tcp_stream = beast::get_lowest_layer(stream_);
  tcp_stream.expires_after(Ms(limits_.handshake_timeout_ms()));
  const bool is_tls = co_await beast::async_detect_ssl(tcp_stream, buffer_, Token(ec));
  if (ec) {
    server_->metrics_->HandshakeFailed(server_->name_);
    co_return false;
  }
  if (!is_tls) {
    // Plain HTTP on the TLS port: say so in plain text, as nginx does, and close.
    server_->metrics_->HandshakeFailed(server_->name_);
    Reject(Rejection::kPlainHttp, "-", "plain HTTP on the TLS port");
    http::response<http::string_body> response{http::status::bad_request, 11};
    response.set(http::field::content_type, "text/plain");
    response.set(http::field::connection, "close");
    response.body() = "This port speaks HTTPS only: TLS 1.2 or 1.3.\n";
    response.prepare_payload();
    tcp_stream.expires_after(Ms(limits_.write_timeout_ms()));
    co_await http::async_write(tcp_stream, response, Token(ec));
    tcp_stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    co_return false;
  }
  const std::size_t used =
      co_await stream_.async_handshake(ssl::stream_base::server, buffer_.data(), Token(ec));
  if (ec) {
    server_->metrics_->HandshakeFailed(server_->name_);
    server_->logger_->info("listener={} peer={} tls handshake failed: {}", server_->name_, peer_ip_,
                           ec.message());
    co_return false;
  }
  buffer_.consume(used);
  co_return true;
}

asio::awaitable<void> HttpServer::Session::RefuseConnection() {
  const RequestId request_id;
  const Request& request = kHttp11;
  Response response;
  if (admission_ == Admission::kGlobalFull) {
    Reject(Rejection::kConnectionsMax, request_id, "connections_max reached");
    response =
        ErrorResponse(request, http::status::service_unavailable, "unavailable_error",
                      "connections_max", "Too many open connections; retry later.", request_id);
    response.set(http::field::retry_after, "1");
  } else {
    Reject(Rejection::kConnectionsPerIpMax, request_id, "connections_per_ip_max reached");
    response = ErrorResponse(
        request, http::status::too_many_requests, "rate_limit_error", "connections_per_ip_max",
        "Too many open connections from this address; retry later.", request_id);
    response.set(http::field::retry_after, "1");
  }
  co_await RefuseAndClose(std::move(response), request_id);
}

asio::awaitable<void> HttpServer::Session::RefuseAndClose(Response response,
                                                          std::string_view request_id) {
  response.set("Request-Id", request_id);
  response.keep_alive(false);
  const bool written = co_await WriteResponse(response);
  if (written) co_await LingeringClose();
}

asio::awaitable<void> HttpServer::Session::ServeRequests() {
  auto& tcp_stream = beast::get_lowest_layer(stream_);
  std::uint32_t served = 0;
  for (;;) {
    beast::error_code ec;
    if (server_->draining_) break;
    // Wait for the first byte of the next request. A fresh connection gets the header timeout (a
    // client that connects and sends nothing is a slow client); a kept-alive one gets the idle
    // timeout.
    if (buffer_.size() == 0) {
      idle_ = true;
      tcp_stream.expires_after(
          Ms(served == 0 ? limits_.header_read_timeout_ms() : limits_.idle_timeout_ms()));
      const std::size_t n =
          co_await stream_.async_read_some(buffer_.prepare(kReadChunkBytes), Token(ec));
      idle_ = false;
      if (ec) {
        if (ec == beast::error::timeout && served == 0) {
          Reject(Rejection::kHeaderTimeout, "-", "no request before header_read_timeout_ms");
        }
        co_return;  // Idle timeout, peer closed, or drained: nothing was in flight.
      }
      buffer_.commit(n);
    }

    const Clock::time_point started = Clock::now();
    const RequestId request_id;
    http::request_parser<http::string_body> parser;
    parser.header_limit(limits_.header_size_max_bytes());
    parser.body_limit(limits_.body_size_max_bytes());
    // Fast path: the bytes already read usually hold the whole head, and Beast's parser takes them
    // directly; only an incomplete head waits for more under the header timeout.
    buffer_.consume(parser.put(buffer_.data(), ec));
    if (ec == http::error::need_more) {
      ec = {};
      tcp_stream.expires_after(Ms(limits_.header_read_timeout_ms()));
      co_await http::async_read_header(stream_, buffer_, parser, Token(ec));
    }

    const Request& head = parser.get();
    Response refusal;
    bool refused = false;
    auto refuse = [&](http::status status, std::string_view type, std::string_view code,
                      std::string_view message) {
      // The head may be incomplete here; answer in HTTP/1.1 regardless of what it claimed.
      refusal = ErrorResponse(kHttp11, status, type, code, message, request_id);
      refused = true;
    };
    if (ec == http::error::header_limit) {
      Reject(Rejection::kHeaderTooLarge, request_id, "header_size_max_bytes exceeded");
      refuse(http::status::request_header_fields_too_large, "invalid_request_error",
             "header_too_large", "Request headers exceed header_size_max_bytes.");
    } else if (ec == http::error::body_limit ||
               (!ec && parser.content_length() &&
                *parser.content_length() > limits_.body_size_max_bytes())) {
      Reject(Rejection::kBodyTooLarge, request_id, "body_size_max_bytes exceeded");
      refuse(http::status::payload_too_large, "invalid_request_error", "body_too_large",
             "Request body exceeds body_size_max_bytes.");
    } else if (ec == beast::error::timeout) {
      // The deadline closed the socket; nothing can be answered.
      Reject(Rejection::kHeaderTimeout, request_id,
             "headers not complete within header_read_timeout_ms");
      co_return;
    } else if (ec == http::error::end_of_stream || ec == asio::error::eof ||
               ec == asio::error::operation_aborted || ec == ssl::error::stream_truncated) {
      co_return;
    } else if (ec) {
      Reject(Rejection::kBadRequest, request_id, ec.message());
      refuse(http::status::bad_request, "invalid_request_error", "malformed_request",
             "The request is not valid HTTP/1.1.");
    }
    if (refused) {
      server_->metrics_->ObserveRequest(
          server_->name_, "unmatched", http::to_string(head.method()), refusal.result_int(),
          std::chrono::duration<double>(Clock::now() - started).count());
      co_await RefuseAndClose(std::move(refusal), request_id);
      co_return;
    }

    if (!parser.is_done()) {
      if (beast::iequals(head[http::field::expect], "100-continue")) {
        http::response<http::empty_body> go_on{http::status::continue_, 11};
        tcp_stream.expires_after(Ms(limits_.write_timeout_ms()));
        co_await http::async_write(stream_, go_on, Token(ec));
        if (ec) co_return;
      }
      tcp_stream.expires_after(Ms(limits_.body_read_timeout_ms()));
      co_await http::async_read(stream_, buffer_, parser, Token(ec));
      if (ec == http::error::body_limit) {
        Reject(Rejection::kBodyTooLarge, request_id, "body_size_max_bytes exceeded");
        co_await RefuseAndClose(
            ErrorResponse(head, http::status::payload_too_large, "invalid_request_error",
                          "body_too_large", "Request body exceeds body_size_max_bytes.",
                          request_id),
            request_id);
        co_return;
      }
      if (ec == beast::error::timeout) {
        Reject(Rejection::kBodyTimeout, request_id,
               "body not complete within body_read_timeout_ms");
        co_return;
      }
      if (ec) co_return;
    }

    const Request request = parser.release();
    Router::Match match;
    std::optional<Response> refused_route = FindRoute(request, request_id, &match);
    const std::string_view route_label =
        match.route != nullptr ? std::string_view(match.route->pattern) : "unmatched";
    AuthOutcome auth{
        principal_,
        principal_ != nullptr ? Authentication::kClientCertificate : Authentication::kNone,
        std::nullopt};
    // Public routes (probes) never consult the authenticator: they must answer without a
    // database, and a signature on them would consume a nonce for nothing.
    if (!refused_route && match.route->access != Access::kPublic && server_->authenticator_) {
      std::optional<AuthOutcome> decided =
          server_->authenticator_->TryAuthenticate(request, principal_, request_id);
      if (decided) {
        auth = std::move(*decided);
      } else {
        AuthOutcome awaited =
            co_await server_->authenticator_->Authenticate(request, principal_, request_id);
        auth = std::move(awaited);
      }
      if (auth.refusal) refused_route = std::move(auth.refusal);
    }
    if (!refused_route) {
      refused_route = Authorize(request, request_id, *match.route, auth.principal);
    }
    Response response;
    if (refused_route) {
      response = std::move(*refused_route);
    } else {
      RequestContext context{request, request_id, auth.principal, std::move(match.params),
                             auth.authentication};
      response = co_await match.route->handler(context);
    }
    ++served;
    response.set("Request-Id", request_id);
    response.set(http::field::cache_control, "no-store");
    response.keep_alive(request.keep_alive() && !server_->draining_ &&
                        served < limits_.keepalive_requests_max());
    const bool written = co_await WriteResponse(response);
    const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    server_->metrics_->ObserveRequest(server_->name_, route_label,
                                      http::to_string(request.method()), response.result_int(),
                                      seconds);
    const auto level = server_->access_log_ ? spdlog::level::info : spdlog::level::debug;
    server_->logger_->log(level,
                          "listener={} request_id={} peer={} principal={} method={} route={} "
                          "status={} duration_ms={:.3f}",
                          server_->name_, request_id, peer_ip_,
                          auth.principal != nullptr ? std::string_view(auth.principal->name) : "-",
                          http::to_string(request.method()), route_label, response.result_int(),
                          seconds * 1000);
    if (!written) co_return;
    if (!response.keep_alive()) break;
  }
  co_await CloseGracefully();
}

std::optional<Response> HttpServer::Session::FindRoute(const Request& request,
                                                       std::string_view request_id,
                                                       Router::Match* match) {
  *match = server_->router_->Find(request.method(), request.target());
  if (match->route == nullptr) {
    if (match->other_method) {
      return ErrorResponse(request, http::status::method_not_allowed, "invalid_request_error",
                           "method_not_allowed", "This route does not accept that method.",
                           request_id);
    }
    return ErrorResponse(request, http::status::not_found, "not_found_error", "route_not_found",
                         "No such route.", request_id);
  }
  return std::nullopt;
}

std::optional<Response> HttpServer::Session::Authorize(const Request& request,
                                                       std::string_view request_id,
                                                       const edge::Route& route,
                                                       const Principal* principal) {
  if (route.access != Access::kPublic) {
    if (principal == nullptr) {
      std::string_view message =
          "Authenticate with a client certificate issued to a configured principal.";
      if (!peer_common_name_.empty()) {
        message = "The client certificate is valid but not mapped to any principal.";
      } else if (server_->authenticator_) {
        message =
            "Authenticate with a client certificate issued to a configured principal or sign the "
            "request with an API key.";
      }
      return ErrorResponse(request, http::status::unauthorized, "authentication_error",
                           "unauthenticated", message, request_id);
    }
    if (route.access == Access::kRoles && !principal->HasAnyRole(route.roles)) {
      return ErrorResponse(request, http::status::forbidden, "permission_error", "role_not_allowed",
                           "This principal's roles do not allow this route.", request_id);
    }
  }
  return std::nullopt;
}

asio::awaitable<bool> HttpServer::Session::WriteResponse(Response& response) {
  // Beast's serializer renders head and body into one reused buffer, written in one operation:
  // cheaper than the composed write over a chain of small buffers, and it becomes one TLS record
  // anyway.
  beast::error_code ec;
  http::response_serializer<http::string_body> serializer{response};
  write_buffer_.clear();
  while (!ec && !serializer.is_done()) {
    serializer.next(ec, [&](beast::error_code&, const auto& buffers) {
      std::size_t taken = 0;
      for (const auto buffer : beast::buffers_range_ref(buffers)) {
        write_buffer_.append(static_cast<const char*>(buffer.data()), buffer.size());
        taken += buffer.size();
      }
      serializer.consume(taken);
    });
  }
  if (ec) co_return false;
  beast::get_lowest_layer(stream_).expires_after(Ms(limits_.write_timeout_ms()));
  co_await asio::async_write(stream_, asio::buffer(write_buffer_), Token(ec));
  co_return !ec;
}

asio::awaitable<void> HttpServer::Session::CloseGracefully() {
  beast::error_code ec;
  beast::get_lowest_layer(stream_).expires_after(kTlsShutdownTime);
  co_await stream_.async_shutdown(Token(ec));
  beast::get_lowest_layer(stream_).socket().close(ec);
}

asio::awaitable<void> HttpServer::Session::LingeringClose() {
  // Send our FIN, then read and discard what the client still sends (an unread body) into a fixed
  // buffer, so closing does not reset the connection before the client read our answer. A TLS
  // close_notify would wait behind the peer's unread body, and the answer carries Content-Length,
  // so none is sent.
  beast::error_code ec;
  auto& tcp_stream = beast::get_lowest_layer(stream_);
  tcp_stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  std::array<char, kReadChunkBytes> sink;
  tcp_stream.expires_after(kLingerTime);
  while (!ec) {
    co_await tcp_stream.async_read_some(asio::buffer(sink), Token(ec));
  }
  tcp_stream.socket().close(ec);
}

HttpServer::HttpServer(asio::io_context& ioc, std::uint32_t io_threads, std::string name,
                       config::v1::Listener listener, bool access_log,
                       std::shared_ptr<TlsContextStore> tls, std::shared_ptr<const Router> router,
                       std::shared_ptr<EdgeMetrics> metrics,
                       std::shared_ptr<const PrincipalDirectory> principals,
                       std::shared_ptr<Authenticator> authenticator)
    : ioc_(ioc),
      single_threaded_(io_threads == 1),
      logger_(log::Get("edge")),
      name_(std::move(name)),
      listener_(std::move(listener)),
      access_log_(access_log),
      tls_(std::move(tls)),
      router_(std::move(router)),
      metrics_(std::move(metrics)),
      principals_(std::move(principals)),
      authenticator_(std::move(authenticator)),
      acceptor_(asio::make_strand(ioc)) {
  metrics_->DeclareListener(name_);
}

HttpServer::~HttpServer() = default;

Result<void, std::string> HttpServer::Listen() {
  beast::error_code ec;
  const auto address = asio::ip::make_address(listener_.address(), ec);
  if (ec) return fmt::format("{}: invalid listen address {:?}", name_, listener_.address());
  const tcp::endpoint endpoint{address, static_cast<std::uint16_t>(listener_.port())};
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return fmt::format("{}: cannot listen on {}:{}: {}", name_, listener_.address(),
                       listener_.port(), ec.message());
  }
  port_ = acceptor_.local_endpoint().port();
  return outcome::success();
}

void HttpServer::Start() {
  asio::co_spawn(
      acceptor_.get_executor(), [self = shared_from_this()] { return self->AcceptLoop(); },
      asio::detached);
}

HttpServer::Admission HttpServer::Admit(const std::string& ip) {
  std::lock_guard lock(mu_);
  const std::uint32_t from_ip = per_ip_.contains(ip) ? per_ip_[ip] : 0;
  Admission admission = Admission::kAdmitted;
  if (open_.load() >= listener_.limits().connections_max()) {
    admission = Admission::kGlobalFull;
  } else if (from_ip >= listener_.limits().connections_per_ip_max()) {
    admission = Admission::kPerIpFull;
  }
  if (admission == Admission::kAdmitted) {
    ++per_ip_[ip];
    ++open_;
  } else if (rejecting_ >= kRejectingMax) {
    admission = Admission::kDropped;
  } else {
    ++rejecting_;
  }
  return admission;
}

void HttpServer::Release(const std::string& ip, Admission admission, std::uint64_t session_id) {
  {
    std::lock_guard lock(mu_);
    sessions_.erase(session_id);
    if (admission == Admission::kAdmitted) {
      if (--per_ip_[ip] == 0) per_ip_.erase(ip);
      --open_;
    } else {
      --rejecting_;
    }
  }
  metrics_->ConnectionClosed(name_);
}

asio::awaitable<void> HttpServer::AcceptLoop() {
  auto& logger = logger_;
  logger->info("listener={} listening on {}:{}", name_, listener_.address(), port_);
  while (!draining_) {
    beast::error_code ec;
    // With one I/O thread every handler already runs serially; a strand per connection would only
    // add a dispatch to every operation.
    const asio::any_io_executor executor = single_threaded_
                                               ? asio::any_io_executor(ioc_.get_executor())
                                               : asio::any_io_executor(asio::make_strand(ioc_));
    tcp::socket socket = co_await acceptor_.async_accept(executor, Token(ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || draining_) break;
      // Out of descriptors or a transient network error: back off briefly instead of spinning.
      logger->warn("listener={} accept failed: {}", name_, ec.message());
      asio::steady_timer pause(acceptor_.get_executor(), 50ms);
      co_await pause.async_wait(Token(ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    const std::string ip = socket.remote_endpoint(ec).address().to_string();
    if (ec) continue;
    const Admission admission = Admit(ip);
    if (admission == Admission::kDropped) {
      metrics_->Rejected(name_, Rejection::kConnectionsMax);
      socket.close(ec);
      continue;
    }
    metrics_->ConnectionOpened(name_);
    std::shared_ptr<Session> session;
    {
      std::lock_guard lock(mu_);
      const std::uint64_t id = next_session_id_++;
      session = std::make_shared<Session>(shared_from_this(), std::move(socket), ip, admission, id);
      sessions_.emplace(id, session);
    }
    asio::co_spawn(
        session->executor(), [session] { return session->Run(); }, asio::detached);
  }
}

asio::awaitable<void> HttpServer::Drain(std::chrono::milliseconds bound) {
  draining_ = true;
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    beast::error_code ignored;
    self->acceptor_.close(ignored);
  });
  auto for_each_session = [this](bool force) {
    // Collect under the lock, post outside it: the last reference to a session may drop here, and
    // its destructor takes the same lock.
    std::vector<std::shared_ptr<Session>> live;
    {
      std::lock_guard lock(mu_);
      for (auto& [id, weak] : sessions_) {
        if (auto session = weak.lock()) live.push_back(std::move(session));
      }
    }
    for (auto& session : live) {
      asio::post(session->executor(), [session, force] { session->OnDrain(force); });
    }
  };
  auto remaining = [this] {
    std::lock_guard lock(mu_);
    return open_.load() + rejecting_;
  };
  for_each_session(false);
  logger_->info("listener={} draining {} connection(s) within {} ms", name_, open_.load(),
                bound.count());
  const Clock::time_point deadline = Clock::now() + bound;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  beast::error_code ec;
  while (remaining() > 0 && Clock::now() < deadline) {
    timer.expires_after(10ms);
    co_await timer.async_wait(Token(ec));
  }
  if (remaining() > 0) {
    logger_->warn("listener={} closing {} connection(s) still open after the drain bound", name_,
                  open_.load());
    for_each_session(true);
  }
}

}  // namespace paygate::edge
