#pragma once

// The sandbox provider's adapter (adapters/sandbox/PROTOCOL.md): the local stand-in for a real
// payment provider, speaking a small HMAC-signed JSON protocol with the paygate-sandbox simulator.
// It exercises every outcome class the real adapters can produce, including the dangerous ones
// (unknown after a timeout, a 5xx, a malformed or badly signed reply).
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "adapters/adapter.h"
#include "adapters/http/https_client.h"
#include "adapters/sandbox/mapper.h"
#include "keys/secret.h"

namespace paygate::adapters::sandbox {

struct SandboxOptions {
  // https://host:port of the simulator, without a trailing slash.
  std::string base_url;
  // CA file that signs the simulator's certificate; empty: the system trust store. Used only when
  // the adapter creates its own client.
  std::string ca_file;
  // One adapter serves one merchant account (the {merchant_account} of callback URLs).
  std::string merchant_account;
  // The account's HMAC-SHA256 key: signs requests, verifies replies and callbacks.
  keys::Secret hmac_secret;
  std::chrono::milliseconds connect_timeout_ms{3'000};
  // From the start of the write to the last byte of the reply.
  std::chrono::milliseconds request_timeout_ms{10'000};
  // Wall clock for signatures and their freshness; empty: the system clock (tests inject one).
  std::function<std::chrono::system_clock::time_point()> clock;
};

// Thread-safe: all methods may run concurrently; the adapter holds no per-call state.
class SandboxAdapter final : public Adapter {
 public:
  // Uses `client` when given (adapters share one), else creates one trusting options.ca_file.
  static Result<std::unique_ptr<SandboxAdapter>, std::string> Create(
      SandboxOptions options, std::shared_ptr<http::HttpsClient> client = nullptr);

  std::string_view provider() const override { return "sandbox"; }

  boost::asio::awaitable<ProviderResult> CreatePayment(CreatePaymentRequest request) override;
  boost::asio::awaitable<ProviderResult> QueryPayment(PaymentRef ref) override;
  boost::asio::awaitable<ProviderResult> ClosePayment(PaymentRef ref) override;
  boost::asio::awaitable<ProviderResult> Refund(RefundRequest request) override;
  boost::asio::awaitable<ProviderResult> QueryRefund(RefundRef ref) override;
  // Method sandbox_transfer. The provider reference is the simulator's idempotency key: a repeat
  // answers the first outcome and never executes again. A query of a reference the simulator
  // never received closes it for good, so its answer (declined, never_received) is definitive.
  boost::asio::awaitable<ProviderResult> CreatePayout(CreatePayoutRequest request) override;
  boost::asio::awaitable<ProviderResult> QueryPayout(PayoutRef ref) override;

  Result<CallbackEvent, std::string> VerifyCallback(const CallbackRequest& request) const override;
  CallbackAck AckCallback(bool accepted) const override;

 private:
  SandboxAdapter(SandboxOptions options, std::shared_ptr<http::HttpsClient> client);

  std::chrono::system_clock::time_point Now() const;
  // Signs and sends one call; classifies transport failures and the reply.
  boost::asio::awaitable<ProviderResult> Call(Operation op, std::string reference,
                                              std::string body);

  SandboxOptions options_;
  std::shared_ptr<http::HttpsClient> client_;
};

}  // namespace paygate::adapters::sandbox
