#pragma once

// paygate-unionpay-sim: a stand-in for UnionPay's ACP 5.1.0 gateway (adapters/unionpay/PROTOCOL.md
// "Simulator"). Speaks UnionPay's wire format: form requests signed by the merchant (checked
// against the merchant's registered certificate), raw key=value replies and form notifications
// signed with UnionPay's key and certificate (in tests: the old CFCA-test store from the vectors),
// notifications retried on UnionPay's schedule, reconciliation files as Base64(zlib(zip(INN))).
// Fault injection, auto-completion and a bearer-token control API as the sandbox simulator has.
// Single-threaded: all state lives on one io_context thread.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "config/result.h"
#include "keys/secret.h"

namespace paygate::adapters::unionpay {

struct SimulatorOptions {
  std::string address = "127.0.0.1";
  // 0: an ephemeral port (see Simulator::port()).
  std::uint16_t port = 0;
  std::string cert_file;
  std::string key_file;
  // CA file for the notification receivers' certificates; empty: the system trust store.
  std::string callback_ca_file;
  // UnionPay's signing store (PKCS#12) and its password.
  std::string sign_pfx_file;
  keys::Secret sign_pfx_password;
  // merId -> the merchant's signing certificate file (PEM or DER): requests must verify with it
  // and name its serial as certId.
  std::map<std::string, std::string> merchants;
  keys::Secret control_token;
  // Auto-completion of submitted orders and refunds after this long; 0: off.
  std::chrono::milliseconds auto_complete_ms{0};
  bool auto_succeed = true;
  // Notification sends until an HTTP 200, and the unit of UnionPay's schedule: the pauses are
  // 1, 2, 4, 5 units (UnionPay: minutes; tests shrink the unit).
  std::uint32_t callback_attempts_max = 5;
  std::chrono::milliseconds callback_retry_unit_ms{60'000};
  std::chrono::milliseconds keep_alive_timeout_ms{75'000};
  std::size_t request_body_max_bytes = 64 * 1024;
};

class Simulator {
 public:
  // Loads keys and binds the listener (so port() is known); does not serve until Run().
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

}  // namespace paygate::adapters::unionpay
