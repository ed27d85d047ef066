// paygate-unionpay-sim: the simulated UnionPay gateway (adapters/unionpay/PROTOCOL.md). Holds only
// argument handling; the simulator itself is a library.
#include <csignal>
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include "adapters/unionpay/simulator/simulator.h"
#include "keys/secret_file.h"

int main(int argc, char** argv) {
  // A notification receiver that hangs up must surface as an error code, not kill the simulator.
  std::signal(SIGPIPE, SIG_IGN);
  namespace unionpay = paygate::adapters::unionpay;
  CLI::App app{"paygate-unionpay-sim: simulated UnionPay ACP 5.1.0 gateway for tests and demos"};
  unionpay::SimulatorOptions options;
  std::vector<std::string> merchants;
  std::string sign_pfx_password_file;
  std::string control_token_file;
  std::uint32_t auto_complete_ms = 0;
  std::string auto_status = "succeeded";
  std::uint32_t callback_retry_unit_ms = 60'000;
  std::uint32_t keep_alive_timeout_ms = 75'000;
  app.add_option("--listen", options.address, "Listen address")
      ->envname("PAYGATE_UNIONPAY_SIM_LISTEN")
      ->capture_default_str();
  app.add_option("--port", options.port, "Listen port; 0 picks a free one (printed on stdout)")
      ->envname("PAYGATE_UNIONPAY_SIM_PORT")
      ->capture_default_str();
  app.add_option("--cert", options.cert_file, "TLS certificate chain (PEM)")
      ->envname("PAYGATE_UNIONPAY_SIM_CERT")
      ->required();
  app.add_option("--key", options.key_file, "TLS private key (PEM, mode 0600)")
      ->envname("PAYGATE_UNIONPAY_SIM_KEY")
      ->required();
  app.add_option("--callback-ca", options.callback_ca_file,
                 "CA file for verifying notification receivers; default: the system store")
      ->envname("PAYGATE_UNIONPAY_SIM_CALLBACK_CA");
  app.add_option("--sign-pfx", options.sign_pfx_file,
                 "UnionPay's signing store (PKCS#12) for replies and notifications")
      ->envname("PAYGATE_UNIONPAY_SIM_SIGN_PFX")
      ->required();
  app.add_option("--sign-pfx-password-file", sign_pfx_password_file,
                 "File holding the signing store's password (mode 0600)")
      ->envname("PAYGATE_UNIONPAY_SIM_SIGN_PFX_PASSWORD_FILE")
      ->required();
  app.add_option("--merchant", merchants,
                 "MERID=CERT_FILE, repeatable: a merchant and its signing certificate")
      ->envname("PAYGATE_UNIONPAY_SIM_MERCHANTS")
      ->delimiter(',')
      ->required();
  app.add_option("--control-token-file", control_token_file,
                 "Bearer token file of the control API; without it the control API is off")
      ->envname("PAYGATE_UNIONPAY_SIM_CONTROL_TOKEN_FILE");
  app.add_option("--auto-complete-ms", auto_complete_ms,
                 "Complete submitted orders and refunds this long after creation; 0: off")
      ->envname("PAYGATE_UNIONPAY_SIM_AUTO_COMPLETE_MS")
      ->capture_default_str();
  app.add_option("--auto-status", auto_status, "succeeded or failed")
      ->envname("PAYGATE_UNIONPAY_SIM_AUTO_STATUS")
      ->check(CLI::IsMember({"succeeded", "failed"}))
      ->capture_default_str();
  app.add_option("--callback-attempts", options.callback_attempts_max,
                 "Notification sends until an HTTP 200 (UnionPay: 5)")
      ->envname("PAYGATE_UNIONPAY_SIM_CALLBACK_ATTEMPTS")
      ->check(CLI::Range(1u, 100u))
      ->capture_default_str();
  app.add_option("--callback-retry-unit-ms", callback_retry_unit_ms,
                 "Unit of UnionPay's 1, 2, 4, 5 pauses between sends (UnionPay: one minute)")
      ->envname("PAYGATE_UNIONPAY_SIM_CALLBACK_RETRY_UNIT_MS")
      ->capture_default_str();
  app.add_option("--keep-alive-timeout-ms", keep_alive_timeout_ms,
                 "Idle keep-alive connections are closed after this")
      ->envname("PAYGATE_UNIONPAY_SIM_KEEP_ALIVE_TIMEOUT_MS")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  for (const std::string& merchant : merchants) {
    const auto eq = merchant.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == merchant.size()) {
      std::cerr << "paygate-unionpay-sim: --merchant wants MERID=CERT_FILE, got " << merchant
                << "\n";
      return 2;
    }
    options.merchants.emplace(merchant.substr(0, eq), merchant.substr(eq + 1));
  }
  auto password = paygate::keys::ReadSecretFile(sign_pfx_password_file);
  if (!password) {
    std::cerr << "paygate-unionpay-sim: " << sign_pfx_password_file << ": "
              << password.error().message() << "\n";
    return 1;
  }
  options.sign_pfx_password = std::move(password).value();
  if (!control_token_file.empty()) {
    auto token = paygate::keys::ReadSecretFile(control_token_file);
    if (!token) {
      std::cerr << "paygate-unionpay-sim: " << control_token_file << ": " << token.error().message()
                << "\n";
      return 1;
    }
    options.control_token = std::move(token).value();
  }
  options.auto_complete_ms = std::chrono::milliseconds(auto_complete_ms);
  options.auto_succeed = auto_status == "succeeded";
  options.callback_retry_unit_ms = std::chrono::milliseconds(callback_retry_unit_ms);
  options.keep_alive_timeout_ms = std::chrono::milliseconds(keep_alive_timeout_ms);

  const std::string address = options.address;
  auto simulator = unionpay::Simulator::Create(std::move(options));
  if (!simulator) {
    std::cerr << "paygate-unionpay-sim: " << simulator.error() << "\n";
    return 1;
  }
  // One line, flushed at once: tests and scripts read the port from it.
  std::printf("paygate-unionpay-sim listening on %s:%u\n", address.c_str(),
              static_cast<unsigned>(simulator.value()->port()));
  std::fflush(stdout);
  simulator.value()->Run();
  return 0;
}
