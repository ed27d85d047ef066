#pragma once

// One HTTPS listener (DESIGN.md §5, §6): Beast over Asio with one C++20 coroutine per connection
// owning its state. Every configured limit is enforced here and answered with a precise status, a
// metric and a log line, never a crash: header size (431), body size (413, the body is never
// buffered), header and body read timeouts (slow clients are cut off), connections globally (503)
// and per client IP (429), keep-alive idle timeout and request count. Plain HTTP on the TLS port
// gets a 400 and is closed.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <spdlog/logger.h>

#include "config/paygate_config.pb.h"
#include "config/result.h"
#include "gateway/edge/asio_fwd.h"
#include "gateway/edge/authenticator.h"
#include "gateway/edge/metrics.h"
#include "gateway/edge/router.h"
#include "gateway/edge/tls.h"

namespace paygate::edge {

// The configured principals, found by client certificate or by name. Immutable after
// construction; the Principal objects keep their addresses for the directory's lifetime.
class PrincipalDirectory {
 public:
  explicit PrincipalDirectory(const config::v1::Config& config);
  // The principal whose client_cert_common_name equals `common_name`, or null.
  const Principal* FindByCommonName(std::string_view common_name) const;
  // The principal named `name`, or null.
  const Principal* FindByName(std::string_view name) const;

 private:
  std::unordered_map<std::string, Principal> by_name_;
  std::unordered_map<std::string, const Principal*> by_common_name_;
};

class HttpServer : public std::enable_shared_from_this<HttpServer> {
 public:
  // `name` labels metrics and logs ("api", "admin"). The listener's limits must already carry their
  // defaults (config::ApplyDefaultsAndValidate).
  // `io_threads` is the number of threads running `ioc`; with one, connections need no strands.
  // `authenticator`, when given, decides who each request to a non-public route is (API keys, rate
  // limits); without one the client certificate alone authenticates.
  HttpServer(asio::io_context& ioc, std::uint32_t io_threads, std::string name,
             config::v1::Listener listener, bool access_log, std::shared_ptr<TlsContextStore> tls,
             std::shared_ptr<const Router> router, std::shared_ptr<EdgeMetrics> metrics,
             std::shared_ptr<const PrincipalDirectory> principals,
             std::shared_ptr<Authenticator> authenticator = nullptr);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens. Called once at start-up, before Start().
  Result<void, std::string> Listen();
  // The bound port (useful with port 0 in tests).
  std::uint16_t port() const { return port_; }
  // Starts accepting connections.
  void Start();

  // Stops accepting, closes idle keep-alive connections, lets requests in flight finish (their
  // responses carry "Connection: close"), and completes when no connection is left or `bound` has
  // passed; then any connection still open is closed. Safe to call from any thread, once.
  asio::awaitable<void> Drain(std::chrono::milliseconds bound);

  std::size_t open_connections() const { return open_.load(); }
  const std::string& name() const { return name_; }
  TlsContextStore& tls() { return *tls_; }

 private:
  class Session;
  enum class Admission { kAdmitted, kGlobalFull, kPerIpFull, kDropped };

  asio::awaitable<void> AcceptLoop();
  Admission Admit(const std::string& ip);
  void Release(const std::string& ip, Admission admission, std::uint64_t session_id);

  asio::io_context& ioc_;
  const bool single_threaded_;
  // Looked up once: a lookup per request would take two registry locks.
  const std::shared_ptr<spdlog::logger> logger_;
  const std::string name_;
  const config::v1::Listener listener_;
  const bool access_log_;
  std::shared_ptr<TlsContextStore> tls_;
  std::shared_ptr<const Router> router_;
  std::shared_ptr<EdgeMetrics> metrics_;
  std::shared_ptr<const PrincipalDirectory> principals_;
  std::shared_ptr<Authenticator> authenticator_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::atomic<bool> draining_{false};
  std::atomic<std::size_t> open_{0};

  std::mutex mu_;
  std::unordered_map<std::string, std::uint32_t> per_ip_;
  std::size_t rejecting_ = 0;
  std::uint64_t next_session_id_ = 1;
  std::unordered_map<std::uint64_t, std::weak_ptr<Session>> sessions_;
};

}  // namespace paygate::edge
