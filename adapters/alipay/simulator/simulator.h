#pragma once

// paygate-alipay-sim: a simulated Alipay gateway (adapters/alipay/SIMULATOR.md) for tests and the
// local demo. It speaks the real wire format of gateway.do: RSA2-signed form requests checked
// against each app's public key or app certificate (with app_cert_sn and alipay_root_cert_sn in
// certificate mode), replies signed over the raw "*_response" text with an Alipay-side test key,
// trade_status_sync notifies signed by rsaCheckV1 rules and retried on Alipay's schedule until the
// body "success", and GBK trade bills. Plus the sandbox's test-control API and fault modes.
// Single-threaded: all state lives on one io_context thread.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "adapters/alipay/signing.h"
#include "keys/secret.h"

namespace paygate::adapters::alipay {

struct SimulatorOptions {
  std::string address = "127.0.0.1";
  // 0: an ephemeral port (see Simulator::port()).
  std::uint16_t port = 0;
  std::string cert_file;
  std::string key_file;
  // CA file that signs the notify receivers' certificates; empty: the system trust store.
  std::string callback_ca_file;
  // Public-key mode apps: app_id -> the app's public key (PEM or bare Base64).
  std::map<std::string, std::string> app_public_keys;
  // Certificate mode apps: app_id -> the app certificate (PEM). Requests must carry its SN and the
  // root SN; transfers are accepted only from these apps.
  std::map<std::string, std::string> app_certs;
  // The Alipay-side key that signs replies and notifies.
  keys::Secret alipay_private_key_pem;
  // Certificate mode: Alipay's certificate (its SN goes into replies as alipay_cert_sn) and the
  // root bundle (whose SN requests must name).
  std::string alipay_cert_pem;
  std::string alipay_root_cert_pem;
  // The PID notifies and bills name as seller.
  std::string seller_id = "2088000000000001";
  // Bearer token of the control API; empty: the control API is disabled.
  keys::Secret control_token;
  // Notify deliveries until the body "success": Alipay's 8 (first try, then 4m, 10m, 10m, 1h, 2h,
  // 6h, 15h), the pauses multiplied by notify_time_scale (tests use ~0.0001).
  std::uint32_t notify_attempts_max = 8;
  double notify_time_scale = 1.0;
  // How long a bill download URL works (Alipay: 30 s).
  std::chrono::milliseconds bill_url_ttl_ms{30'000};
  std::chrono::milliseconds keep_alive_timeout_ms{75'000};
  std::size_t request_body_max_bytes = 64 * 1024;
};

class Simulator {
 public:
  // Parses keys and certificates and binds the listener (so port() is known); serves on Run().
  static AlipayResult<std::unique_ptr<Simulator>> Create(SimulatorOptions options);
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

}  // namespace paygate::adapters::alipay
