// paygate-sandbox: the simulated payment provider (adapters/sandbox/PROTOCOL.md). Holds only
// argument handling; the simulator itself is a library.
#include <csignal>
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include "adapters/sandbox/simulator/simulator.h"
#include "keys/secret_file.h"

int main(int argc, char** argv) {
  // A callback receiver that hangs up must surface as an error code, not kill the simulator.
  std::signal(SIGPIPE, SIG_IGN);
  namespace sandbox = paygate::adapters::sandbox;
  CLI::App app{"paygate-sandbox: simulated payment provider for tests, benchmarks and demos"};
  sandbox::SimulatorOptions options;
  std::vector<std::string> merchants;
  std::string control_token_file;
  std::uint32_t auto_complete_ms = 0;
  std::string auto_status = "succeeded";
  std::uint32_t callback_retry_ms = 500;
  std::uint32_t keep_alive_timeout_ms = 75'000;
  app.add_option("--listen", options.address, "Listen address")
      ->envname("PAYGATE_SANDBOX_LISTEN")
      ->capture_default_str();
  app.add_option("--port", options.port, "Listen port; 0 picks a free one (printed on stdout)")
      ->envname("PAYGATE_SANDBOX_PORT")
      ->capture_default_str();
  app.add_option("--cert", options.cert_file, "TLS certificate chain (PEM)")
      ->envname("PAYGATE_SANDBOX_CERT")
      ->required();
  app.add_option("--key", options.key_file, "TLS private key (PEM, mode 0600)")
      ->envname("PAYGATE_SANDBOX_KEY")
      ->required();
  app.add_option("--callback-ca", options.callback_ca_file,
                 "CA file for verifying callback receivers; default: the system store")
      ->envname("PAYGATE_SANDBOX_CALLBACK_CA");
  app.add_option("--merchant", merchants,
                 "ACCOUNT=SECRET_FILE, repeatable: a merchant account and its HMAC secret file")
      ->envname("PAYGATE_SANDBOX_MERCHANTS")
      ->delimiter(',')
      ->required();
  app.add_option("--control-token-file", control_token_file,
                 "Bearer token file of the control API; without it the control API is off")
      ->envname("PAYGATE_SANDBOX_CONTROL_TOKEN_FILE");
  app.add_option("--auto-complete-ms", auto_complete_ms,
                 "Complete new payments, refunds and payouts this long after creation; 0: off")
      ->envname("PAYGATE_SANDBOX_AUTO_COMPLETE_MS")
      ->capture_default_str();
  app.add_option("--auto-status", auto_status, "succeeded or failed")
      ->envname("PAYGATE_SANDBOX_AUTO_STATUS")
      ->check(CLI::IsMember({"succeeded", "failed"}))
      ->capture_default_str();
  app.add_option("--callback-attempts", options.callback_attempts_max,
                 "Deliveries of one callback until a 2xx ack")
      ->envname("PAYGATE_SANDBOX_CALLBACK_ATTEMPTS")
      ->check(CLI::Range(1u, 100u))
      ->capture_default_str();
  app.add_option("--callback-retry-ms", callback_retry_ms,
                 "First pause between callback deliveries (doubles each time)")
      ->envname("PAYGATE_SANDBOX_CALLBACK_RETRY_MS")
      ->capture_default_str();
  app.add_option("--keep-alive-timeout-ms", keep_alive_timeout_ms,
                 "Idle keep-alive connections are closed after this")
      ->envname("PAYGATE_SANDBOX_KEEP_ALIVE_TIMEOUT_MS")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  for (const std::string& merchant : merchants) {
    const auto eq = merchant.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == merchant.size()) {
      std::cerr << "paygate-sandbox: --merchant wants ACCOUNT=SECRET_FILE, got " << merchant
                << "\n";
      return 2;
    }
    const std::string file = merchant.substr(eq + 1);
    auto secret = paygate::keys::ReadSecretFile(file);
    if (!secret) {
      std::cerr << "paygate-sandbox: " << file << ": " << secret.error().message() << "\n";
      return 1;
    }
    options.merchants.emplace(merchant.substr(0, eq), std::move(secret).value());
  }
  if (!control_token_file.empty()) {
    auto token = paygate::keys::ReadSecretFile(control_token_file);
    if (!token) {
      std::cerr << "paygate-sandbox: " << control_token_file << ": " << token.error().message()
                << "\n";
      return 1;
    }
    options.control_token = std::move(token).value();
  }
  options.auto_complete_ms = std::chrono::milliseconds(auto_complete_ms);
  options.auto_succeed = auto_status == "succeeded";
  options.callback_retry_ms = std::chrono::milliseconds(callback_retry_ms);
  options.keep_alive_timeout_ms = std::chrono::milliseconds(keep_alive_timeout_ms);

  const std::string address = options.address;
  auto simulator = sandbox::Simulator::Create(std::move(options));
  if (!simulator) {
    std::cerr << "paygate-sandbox: " << simulator.error() << "\n";
    return 1;
  }
  // One line, flushed at once: tests and scripts read the port from it.
  std::printf("paygate-sandbox listening on %s:%u\n", address.c_str(),
              static_cast<unsigned>(simulator.value()->port()));
  std::fflush(stdout);
  simulator.value()->Run();
  return 0;
}
