// paygate-alipay-sim: the simulated Alipay gateway (adapters/alipay/SIMULATOR.md). Holds only
// argument handling; the simulator itself is a library.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "adapters/alipay/simulator/simulator.h"
#include "keys/secret_file.h"

namespace {

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  *out = text.str();
  return true;
}

// "APP_ID=FILE" pairs into app_id -> file contents.
bool ReadApps(const std::vector<std::string>& pairs, std::map<std::string, std::string>* out) {
  for (const std::string& pair : pairs) {
    const auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == pair.size()) {
      std::cerr << "paygate-alipay-sim: want APP_ID=FILE, got " << pair << "\n";
      return false;
    }
    std::string contents;
    if (!ReadFile(pair.substr(eq + 1), &contents)) {
      std::cerr << "paygate-alipay-sim: cannot read " << pair.substr(eq + 1) << "\n";
      return false;
    }
    (*out)[pair.substr(0, eq)] = std::move(contents);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // A notify receiver that hangs up must surface as an error code, not kill the simulator.
  std::signal(SIGPIPE, SIG_IGN);
  namespace alipay = paygate::adapters::alipay;
  CLI::App app{"paygate-alipay-sim: simulated Alipay gateway for tests and demos"};
  alipay::SimulatorOptions options;
  std::vector<std::string> public_key_apps;
  std::vector<std::string> cert_apps;
  std::string alipay_key_file;
  std::string alipay_cert_file;
  std::string root_cert_file;
  std::string control_token_file;
  std::uint32_t bill_url_ttl_ms = 30'000;
  app.add_option("--listen", options.address, "Listen address")
      ->envname("PAYGATE_ALIPAY_SIM_LISTEN")
      ->capture_default_str();
  app.add_option("--port", options.port, "Listen port; 0 picks a free one (printed on stdout)")
      ->envname("PAYGATE_ALIPAY_SIM_PORT")
      ->capture_default_str();
  app.add_option("--cert", options.cert_file, "TLS certificate chain (PEM)")
      ->envname("PAYGATE_ALIPAY_SIM_CERT")
      ->required();
  app.add_option("--key", options.key_file, "TLS private key (PEM, mode 0600)")
      ->envname("PAYGATE_ALIPAY_SIM_KEY")
      ->required();
  app.add_option("--callback-ca", options.callback_ca_file,
                 "CA file for verifying notify receivers; default: the system store")
      ->envname("PAYGATE_ALIPAY_SIM_CALLBACK_CA");
  app.add_option("--app-public-key", public_key_apps,
                 "APP_ID=FILE, repeatable: a public-key mode app and its public key")
      ->envname("PAYGATE_ALIPAY_SIM_APP_PUBLIC_KEYS")
      ->delimiter(',');
  app.add_option("--app-cert", cert_apps,
                 "APP_ID=FILE, repeatable: a certificate mode app and its app certificate")
      ->envname("PAYGATE_ALIPAY_SIM_APP_CERTS")
      ->delimiter(',');
  app.add_option("--alipay-private-key", alipay_key_file,
                 "The Alipay-side key replies and notifies are signed with (mode 0600)")
      ->envname("PAYGATE_ALIPAY_SIM_ALIPAY_PRIVATE_KEY")
      ->required();
  app.add_option("--alipay-cert", alipay_cert_file, "Alipay's certificate (certificate mode)")
      ->envname("PAYGATE_ALIPAY_SIM_ALIPAY_CERT");
  app.add_option("--alipay-root-cert", root_cert_file, "Alipay's root bundle (certificate mode)")
      ->envname("PAYGATE_ALIPAY_SIM_ALIPAY_ROOT_CERT");
  app.add_option("--seller-id", options.seller_id, "The PID notifies and bills name")
      ->envname("PAYGATE_ALIPAY_SIM_SELLER_ID")
      ->capture_default_str();
  app.add_option("--control-token-file", control_token_file,
                 "Bearer token file of the control API; without it the control API is off")
      ->envname("PAYGATE_ALIPAY_SIM_CONTROL_TOKEN_FILE");
  app.add_option("--notify-attempts", options.notify_attempts_max,
                 "Deliveries of one notify until the body 'success'")
      ->envname("PAYGATE_ALIPAY_SIM_NOTIFY_ATTEMPTS")
      ->check(CLI::Range(1u, 100u))
      ->capture_default_str();
  app.add_option("--notify-time-scale", options.notify_time_scale,
                 "Multiplies Alipay's pauses between notify deliveries (4m, 10m, 10m, 1h, 2h, 6h, 15h)")
      ->envname("PAYGATE_ALIPAY_SIM_NOTIFY_TIME_SCALE")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--bill-url-ttl-ms", bill_url_ttl_ms, "How long a bill download URL works")
      ->envname("PAYGATE_ALIPAY_SIM_BILL_URL_TTL_MS")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (!ReadApps(public_key_apps, &options.app_public_keys) ||
      !ReadApps(cert_apps, &options.app_certs)) {
    return 2;
  }
  auto alipay_key = paygate::keys::ReadSecretFile(alipay_key_file);
  if (!alipay_key) {
    std::cerr << "paygate-alipay-sim: " << alipay_key_file << ": " << alipay_key.error().message()
              << "\n";
    return 1;
  }
  options.alipay_private_key_pem = std::move(alipay_key).value();
  if ((!alipay_cert_file.empty() && !ReadFile(alipay_cert_file, &options.alipay_cert_pem)) ||
      (!root_cert_file.empty() && !ReadFile(root_cert_file, &options.alipay_root_cert_pem))) {
    std::cerr << "paygate-alipay-sim: cannot read the Alipay certificates\n";
    return 1;
  }
  if (!control_token_file.empty()) {
    auto token = paygate::keys::ReadSecretFile(control_token_file);
    if (!token) {
      std::cerr << "paygate-alipay-sim: " << control_token_file << ": "
                << token.error().message() << "\n";
      return 1;
    }
    options.control_token = std::move(token).value();
  }
  options.bill_url_ttl_ms = std::chrono::milliseconds(bill_url_ttl_ms);

  const std::string address = options.address;
  auto simulator = alipay::Simulator::Create(std::move(options));
  if (!simulator) {
    std::cerr << "paygate-alipay-sim: " << simulator.error().message << "\n";
    return 1;
  }
  // One line, flushed at once: tests and scripts read the port from it.
  std::printf("paygate-alipay-sim listening on %s:%u\n", address.c_str(),
              static_cast<unsigned>(simulator.value()->port()));
  std::fflush(stdout);
  simulator.value()->Run();
  return 0;
}
