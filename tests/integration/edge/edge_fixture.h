#pragma once

// Test-side pieces for the TLS edge: a dev PKI made by deploy/local/dev-pki.sh (real certificates
// from a real CA), an in-process listener on port 0 with its own I/O threads, and a blocking TLS
// client built on Beast so tests read like a conversation.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gateway/edge/http_server.h"

namespace paygate::testing {

namespace edge = paygate::edge;

// Creates (once per directory) the dev PKI: ca.crt, server.crt/key, <principal>.crt/key.
std::filesystem::path MakeDevPki(const std::filesystem::path& dir);

// The configuration tests start from: both listeners on 127.0.0.1:0 with the PKI in `pki`,
// principals sales-platform (sales) and finance (finance), and short limits so tests run fast.
config::v1::Config TestConfig(const std::filesystem::path& pki);

// One listener running on its own io_context and threads.
class RunningServer {
 public:
  // `authenticator` is passed to the HttpServer (null: client certificates only).
  RunningServer(const config::v1::Config& config, const config::v1::Listener& listener,
                std::shared_ptr<const edge::Router> router, int threads = 2,
                std::shared_ptr<edge::Authenticator> authenticator = nullptr,
                std::shared_ptr<const edge::PrincipalDirectory> principals = nullptr);
  ~RunningServer();

  std::uint16_t port() const { return server_->port(); }
  edge::HttpServer& server() { return *server_; }
  edge::EdgeMetrics& metrics() { return *metrics_; }
  edge::asio::io_context& ioc() { return ioc_; }
  // Runs Drain on the server's context and blocks until it completes.
  void Drain(std::chrono::milliseconds bound);

 private:
  edge::asio::io_context ioc_;
  std::shared_ptr<edge::EdgeMetrics> metrics_;
  std::shared_ptr<edge::HttpServer> server_;
  std::optional<edge::asio::executor_work_guard<edge::asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
};

struct ClientOptions {
  std::filesystem::path ca;    // Verify the server against this CA; empty: do not verify.
  std::filesystem::path cert;  // Client certificate; empty: none.
  std::filesystem::path key;
  int max_version = 0;        // e.g. TLS1_1_VERSION to offer only old protocols.
  std::string tls12_ciphers;  // Override the offered TLS 1.2 cipher list.
};

// A blocking HTTPS client on one connection.
class TlsClient {
 public:
  TlsClient(std::uint16_t port, ClientOptions options);
  ~TlsClient();

  // TCP connect and TLS handshake; the error, if any.
  edge::beast::error_code Connect();
  // Sends one request and reads the answer.
  edge::beast::error_code Send(edge::Request& request, edge::Response* response);
  edge::Response Get(std::string_view target);
  // Reads one response (after WriteRaw).
  edge::beast::error_code Read(edge::Response* response);
  // Raw bytes over TLS, for slow-client tests.
  edge::beast::error_code WriteRaw(std::string_view bytes);
  // True when the server closed the connection (a read returns EOF or an error).
  bool ServerClosed(std::chrono::milliseconds wait);
  // SHA-256 fingerprint of the server's leaf certificate.
  std::string PeerFingerprint();

 private:
  std::uint16_t port_;
  edge::asio::io_context ioc_;
  edge::ssl::context ctx_;
  std::unique_ptr<edge::beast::ssl_stream<edge::beast::tcp_stream>> stream_;
  edge::beast::flat_buffer buffer_;
};

// Resident set size of this process in bytes (from /proc/self/statm).
std::size_t ResidentBytes();

}  // namespace paygate::testing
