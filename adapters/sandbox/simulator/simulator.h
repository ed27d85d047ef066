#pragma once

// paygate-sandbox: the simulated payment provider behind the sandbox adapter (adapters/sandbox/
// PROTOCOL.md). An HTTPS server with in-memory state, the signed provider API, signed callbacks
// with retries, a bearer-token test-control API, per-request fault injection and an auto-completion
// mode for benchmarks and the local demo. Single-threaded: all state lives on one io_context
// thread.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "config/result.h"
#include "keys/secret.h"

namespace paygate::adapters::sandbox {

struct SimulatorOptions {
  std::string address = "127.0.0.1";
  // 0: an ephemeral port (see Simulator::port()).
  std::uint16_t port = 0;
  std::string cert_file;
  std::string key_file;
  // CA file that signs the callback receivers' certificates; empty: the system trust store.
  std::string callback_ca_file;
  // Merchant account -> HMAC-SHA256 secret.
  std::map<std::string, keys::Secret> merchants;
  // Bearer token of the control API; empty: the control API is disabled.
  keys::Secret control_token;
  // Auto-completion of new payments and refunds after this long; 0: off (control API only).
  std::chrono::milliseconds auto_complete_ms{0};
  // true: auto-completed payments succeed; false: they fail.
  bool auto_succeed = true;
  // Deliveries of one callback until a 2xx ack, and the first pause between them (doubling).
  std::uint32_t callback_attempts_max = 5;
  std::chrono::milliseconds callback_retry_ms{500};
  // Idle keep-alive connections are closed after this; above the adapters' client idle timeout.
  std::chrono::milliseconds keep_alive_timeout_ms{75'000};
  // Request bodies above this are refused (413).
  std::size_t request_body_max_bytes = 64 * 1024;
};

class Simulator {
 public:
  // Binds the listener (so port() is known) but does not serve until Run().
  static Result<std::unique_ptr<Simulator>, std::string> Create(SimulatorOptions options);
  ~Simulator();

  std::uint16_t port() const;
  // Serves until SIGINT/SIGTERM or Stop(); blocks the calling thread.
  void Run();
  // Thread-safe.
  void Stop();

  class Impl;

 private:
  explicit Simulator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace paygate::adapters::sandbox
