#pragma once

// The outbound HTTPS client every provider adapter shares (DESIGN.md §6: outbound TLS verifies
// chains and host names; there is no "insecure" switch). One client serves many origins and keeps a
// small pool of idle keep-alive connections per origin, because the gateway calls each provider
// once per payment at high concurrency and a TLS handshake per call would dominate the cost.
//
// The contract that matters for money: every failure says whether any byte of the request may have
// reached the server. A failure before the request write started (bad URL, DNS, connect, TLS
// handshake, certificate or host-name verification, deadline before writing) is kNotSent: the
// provider provably never saw it. Anything after the first write began is kMaybeSent: the provider
// may have executed it, and only an inquiry can tell. Responses are returned whatever their status;
// judging them (5xx, signatures) is the adapter's job.
#include <utility>  // GCC 12 with Boost 1.74: before boost/asio/awaitable.hpp.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "config/result.h"

namespace paygate::adapters::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpsClientOptions {
  // PEM file of the CAs that may sign provider certificates; empty: the system trust store.
  std::string ca_file;
  // Idle keep-alive connections kept per origin (scheme, host, port); more are closed after use.
  std::size_t idle_connections_per_origin_max = 16;
  // An idle connection older than this is not reused. Keep it below the providers' own keep-alive
  // timeouts, so we rarely write into a connection the server is closing (which would turn a clean
  // call into an unknown one).
  std::chrono::milliseconds idle_timeout_ms{30'000};
  // Requests in flight to one origin at most. One more is refused at once as kNotSent ("in-flight
  // bound reached"): a provider that has slowed down holds at most this many of the gateway's
  // coroutines and sockets, instead of all of them, and the refused request provably never left.
  std::size_t in_flight_per_origin_max = 256;
  // Bounds on what a server may send back.
  std::size_t response_header_max_bytes = 16 * 1024;
  std::size_t response_body_max_bytes = 1024 * 1024;
};

// Per-request deadlines, each from the start of its phase.
struct Deadlines {
  std::chrono::milliseconds resolve_connect_ms{3'000};
  std::chrono::milliseconds handshake_ms{3'000};
  std::chrono::milliseconds write_ms{3'000};
  // From the end of the write to the last byte of the response.
  std::chrono::milliseconds response_ms{10'000};
};

struct HttpsRequest {
  std::string method = "POST";
  // Absolute URL: https://host[:port]/path[?query]. Only https is accepted.
  std::string url;
  // Extra headers; Host, Content-Length and User-Agent are set by the client.
  Headers headers;
  std::string content_type = "application/json";
  std::string body;
  Deadlines deadlines;
};

struct HttpsResponse {
  unsigned status = 0;
  Headers headers;  // names lower-cased
  std::string body;
  // True when the request went over a pooled connection rather than a fresh one (for tests and
  // metrics).
  bool reused_connection = false;

  // The first header with this (lower-case) name, or empty.
  std::string_view Header(std::string_view name) const;
};

// Whether the request may have reached the server.
enum class Delivery { kNotSent, kMaybeSent };

struct HttpsError {
  Delivery delivery = Delivery::kMaybeSent;
  // What failed, for logs and attempt rows: e.g. "connect: Connection refused",
  // "handshake: certificate verify failed", "read: timeout". Never carries request or response
  // bytes.
  std::string detail;
};

// Thread-safe: Send may run concurrently from any number of coroutines on any executors.
// Connections are created on the caller's executor.
class HttpsClient {
 public:
  // Fails when the CA file cannot be loaded.
  static Result<std::shared_ptr<HttpsClient>, std::string> Create(HttpsClientOptions options);

  ~HttpsClient();
  HttpsClient(const HttpsClient&) = delete;
  HttpsClient& operator=(const HttpsClient&) = delete;

  boost::asio::awaitable<Result<HttpsResponse, HttpsError>> Send(HttpsRequest request);

  // Idle connections currently pooled, all origins together.
  std::size_t IdleConnections() const;
  // Requests currently in flight, all origins together.
  std::size_t InFlight() const;

  class Impl;

 private:
  explicit HttpsClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Splits an absolute https URL. Exposed for tests and for adapters that build callback URLs.
struct ParsedUrl {
  std::string host;    // without brackets for IPv6 literals
  std::string port;    // "443" when absent
  std::string target;  // path and query, "/" when absent
};
Result<ParsedUrl, std::string> ParseHttpsUrl(std::string_view url);

}  // namespace paygate::adapters::http
