// paygate-wechatpay-sim: the WeChat Pay API v3 simulator
// (adapters/wechatpay/simulator/simulator.h). Holds only argument handling; the simulator itself is
// a library.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "adapters/wechatpay/simulator/simulator.h"
#include "keys/secret_file.h"

namespace {

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream buffer;
  buffer << in.rdbuf();
  *out = buffer.str();
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // A callback receiver that hangs up must surface as an error code, not kill the simulator.
  std::signal(SIGPIPE, SIG_IGN);
  namespace wechatpay = paygate::adapters::wechatpay;
  CLI::App app{"paygate-wechatpay-sim: WeChat Pay API v3 simulator for tests and demos"};
  wechatpay::SimulatorOptions options;
  std::vector<std::string> merchants;
  std::string platform_key_file;
  std::string platform_cert_file;
  std::string control_token_file;
  std::uint32_t auto_complete_ms = 0;
  std::string auto_status = "succeeded";
  std::uint32_t keep_alive_timeout_ms = 75'000;
  app.add_option("--listen", options.address, "Listen address")
      ->envname("PAYGATE_WECHATPAY_SIM_LISTEN")
      ->capture_default_str();
  app.add_option("--port", options.port, "Listen port; 0 picks a free one (printed on stdout)")
      ->envname("PAYGATE_WECHATPAY_SIM_PORT")
      ->capture_default_str();
  app.add_option("--cert", options.cert_file, "TLS certificate chain (PEM)")
      ->envname("PAYGATE_WECHATPAY_SIM_CERT")
      ->required();
  app.add_option("--key", options.key_file, "TLS private key (PEM, mode 0600)")
      ->envname("PAYGATE_WECHATPAY_SIM_KEY")
      ->required();
  app.add_option("--callback-ca", options.callback_ca_file,
                 "CA file for verifying callback receivers; default: the system store")
      ->envname("PAYGATE_WECHATPAY_SIM_CALLBACK_CA");
  app.add_option("--platform-key", platform_key_file,
                 "WeChat Pay's private key (PEM, mode 0600): signs replies and callbacks")
      ->envname("PAYGATE_WECHATPAY_SIM_PLATFORM_KEY")
      ->required();
  app.add_option("--platform-cert", platform_cert_file,
                 "WeChat Pay's platform certificate (PEM), served by /v3/certificates")
      ->envname("PAYGATE_WECHATPAY_SIM_PLATFORM_CERT")
      ->required();
  app.add_option("--public-key-id", options.public_key_id,
                 "Sign as PUB_KEY_ID_... (WeChat Pay public-key mode) instead of the cert serial")
      ->envname("PAYGATE_WECHATPAY_SIM_PUBLIC_KEY_ID");
  app.add_option("--merchant", merchants, "MCHID=APIV3_KEY_FILE=MERCHANT_CERT_FILE, repeatable")
      ->envname("PAYGATE_WECHATPAY_SIM_MERCHANTS")
      ->delimiter(',')
      ->required();
  app.add_option("--control-token-file", control_token_file,
                 "Bearer token file of the control API; without it the control API is off")
      ->envname("PAYGATE_WECHATPAY_SIM_CONTROL_TOKEN_FILE");
  app.add_option("--auto-complete-ms", auto_complete_ms,
                 "Complete new payments, refunds and transfers this long after creation; 0: off")
      ->envname("PAYGATE_WECHATPAY_SIM_AUTO_COMPLETE_MS")
      ->capture_default_str();
  app.add_option("--auto-status", auto_status, "succeeded or failed")
      ->envname("PAYGATE_WECHATPAY_SIM_AUTO_STATUS")
      ->check(CLI::IsMember({"succeeded", "failed"}))
      ->capture_default_str();
  app.add_option("--callback-attempts", options.callback_attempts_max,
                 "Deliveries of one callback in all (WeChat: 16)")
      ->envname("PAYGATE_WECHATPAY_SIM_CALLBACK_ATTEMPTS")
      ->check(CLI::Range(1u, 16u))
      ->capture_default_str();
  app.add_option("--callback-time-scale", options.callback_time_scale,
                 "Multiplies WeChat's retry schedule (15s, 15s, 30s, 3m, ...); e.g. 0.001 in tests")
      ->envname("PAYGATE_WECHATPAY_SIM_CALLBACK_TIME_SCALE")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--keep-alive-timeout-ms", keep_alive_timeout_ms,
                 "Idle keep-alive connections are closed after this")
      ->envname("PAYGATE_WECHATPAY_SIM_KEEP_ALIVE_TIMEOUT_MS")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto platform_key = paygate::keys::ReadSecretFile(platform_key_file);
  if (!platform_key) {
    std::cerr << "paygate-wechatpay-sim: " << platform_key_file << ": "
              << platform_key.error().message() << "\n";
    return 1;
  }
  options.platform_private_key_pem = std::move(platform_key).value();
  if (!ReadFile(platform_cert_file, &options.platform_certificate_pem)) {
    std::cerr << "paygate-wechatpay-sim: cannot read " << platform_cert_file << "\n";
    return 1;
  }
  for (const std::string& merchant : merchants) {
    const auto first = merchant.find('=');
    const auto second = first == std::string::npos ? first : merchant.find('=', first + 1);
    if (first == std::string::npos || second == std::string::npos || first == 0) {
      std::cerr << "paygate-wechatpay-sim: --merchant wants MCHID=APIV3_KEY_FILE=CERT_FILE, got "
                << merchant << "\n";
      return 2;
    }
    wechatpay::SimulatedMerchant m;
    m.mchid = merchant.substr(0, first);
    const std::string key_file = merchant.substr(first + 1, second - first - 1);
    const std::string cert_file = merchant.substr(second + 1);
    auto key = paygate::keys::ReadSecretFile(key_file);
    if (!key) {
      std::cerr << "paygate-wechatpay-sim: " << key_file << ": " << key.error().message() << "\n";
      return 1;
    }
    m.apiv3_key = std::move(key).value();
    if (!ReadFile(cert_file, &m.merchant_certificate_pem)) {
      std::cerr << "paygate-wechatpay-sim: cannot read " << cert_file << "\n";
      return 1;
    }
    options.merchants.push_back(std::move(m));
  }
  if (!control_token_file.empty()) {
    auto token = paygate::keys::ReadSecretFile(control_token_file);
    if (!token) {
      std::cerr << "paygate-wechatpay-sim: " << control_token_file << ": "
                << token.error().message() << "\n";
      return 1;
    }
    options.control_token = std::move(token).value();
  }
  options.auto_complete_ms = std::chrono::milliseconds(auto_complete_ms);
  options.auto_succeed = auto_status == "succeeded";
  options.keep_alive_timeout_ms = std::chrono::milliseconds(keep_alive_timeout_ms);

  const std::string address = options.address;
  auto simulator = wechatpay::Simulator::Create(std::move(options));
  if (!simulator) {
    std::cerr << "paygate-wechatpay-sim: " << simulator.error() << "\n";
    return 1;
  }
  // One line, flushed at once: tests and scripts read the port from it.
  std::printf("paygate-wechatpay-sim listening on %s:%u\n", address.c_str(),
              static_cast<unsigned>(simulator.value()->port()));
  std::fflush(stdout);
  simulator.value()->Run();
  return 0;
}
