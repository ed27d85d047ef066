#pragma once

// paygate-wechatpay-sim: a WeChat Pay API v3 stand-in for tests and the local demo. It speaks the
// real wire format (shared/providers/PROTOCOLS.md §A): WECHATPAY2-SHA256-RSA2048 request
// authentication, signed replies, AEAD_AES_256_GCM-encrypted signed callbacks with WeChat's retry
// schedule (scalable for tests), trade bills in the real format (optionally gzip'd, SHA-1
// announced), platform certificate download, merchant transfers with an RSA-OAEP payee name. The
// test-control API and fault modes have the sandbox's shape (adapters/sandbox/PROTOCOL.md); its
// bill edits (/control/v1/bills/edit) make the trade bills disagree with what happened, for
// reconciliation's tests.
// Single-threaded.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/result.h"
#include "keys/secret.h"

namespace paygate::adapters::wechatpay {

struct SimulatedMerchant {
  std::string mchid;
  // Encrypts this merchant's callbacks and certificate downloads.
  keys::Secret apiv3_key;
  // The merchant API certificate (PEM): its key verifies the merchant's Authorization, its serial
  // must be the header's serial_no.
  std::string merchant_certificate_pem;
};

struct SimulatorOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;
  std::string cert_file;
  std::string key_file;
  // CA file for callback receivers' certificates; empty: the system store.
  std::string callback_ca_file;
  // WeChat Pay's side: the key that signs replies and callbacks and decrypts sensitive fields.
  keys::Secret platform_private_key_pem;
  // Its certificate (PEM), served by /v3/certificates; its serial is the Wechatpay-Serial unless
  // public_key_id is set ("微信支付公钥" mode).
  std::string platform_certificate_pem;
  std::string public_key_id;
  std::vector<SimulatedMerchant> merchants;
  keys::Secret control_token;
  // Auto-completion of new payments, refunds and transfers after this long; 0: off.
  std::chrono::milliseconds auto_complete_ms{0};
  bool auto_succeed = true;
  // WeChat's callback retry schedule (15s, 15s, 30s, 3m, 10m, 20m, 30m, 30m, 30m, 60m, 3h, 3h, 3h,
  // 6h, 6h) multiplied by this; tests use e.g. 0.001.
  double callback_time_scale = 1.0;
  // Deliveries of one callback in all (at most 16: the first and 15 retries).
  std::uint32_t callback_attempts_max = 16;
  std::chrono::milliseconds keep_alive_timeout_ms{75'000};
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

}  // namespace paygate::adapters::wechatpay
