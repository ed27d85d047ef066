#include "tests/testing/wechatpay_sim.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "tests/integration/sandbox/sandbox_fixture.h"

namespace paygate::testing {
namespace {

namespace wx = adapters::wechatpay;

constexpr const char* kApiV3Key = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
constexpr const char* kControlToken = "wechatpay-sim-control-token";

std::string Vector(const std::string& relative) {
  const char* source = std::getenv("PAYGATE_SOURCE_DIR");
  if (source == nullptr) throw std::runtime_error("PAYGATE_SOURCE_DIR is not set");
  std::ifstream in(std::string(source) + "/tests/vectors/providers/wechatpay/" + relative);
  if (!in) throw std::runtime_error("missing vector " + relative);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

WechatPaySim::WechatPaySim(WechatPaySimOptions options) {
  char tmpl[] = "/tmp/paygate-wechatpay-sim-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp");
  dir_ = tmpl;
  const SandboxPki pki = MakeSandboxPki(dir_);
  ca_ = pki.ca;

  wx::SimulatorOptions sim;
  sim.cert_file = pki.server_crt.string();
  sim.key_file = pki.server_key.string();
  sim.callback_ca_file = pki.ca.string();
  sim.platform_private_key_pem = keys::Secret(Vector("java/wechat_pay_private_key.pem"));
  sim.platform_certificate_pem = Vector("java/wechat_pay_certificate.pem");
  wx::SimulatedMerchant merchant;
  merchant.mchid = kMchid;
  merchant.apiv3_key = keys::Secret(std::string_view(kApiV3Key));
  merchant.merchant_certificate_pem = Vector("java/merchant_certificate.pem");
  sim.merchants.push_back(std::move(merchant));
  sim.control_token = keys::Secret(std::string_view(kControlToken));
  sim.callback_time_scale = options.callback_time_scale;
  sim.callback_attempts_max = options.callback_attempts_max;
  auto simulator = wx::Simulator::Create(std::move(sim));
  if (!simulator) throw std::runtime_error(simulator.error());
  simulator_ = std::move(simulator).value();
  base_url_ = fmt::format("https://localhost:{}", simulator_->port());
  thread_ = std::thread([this] { simulator_->Run(); });

  wx::WechatPayOptions adapter;
  adapter.base_url = base_url_;
  adapter.ca_file = pki.ca.string();
  adapter.merchant_account = options.merchant_account;
  adapter.mchid = kMchid;
  adapter.appid = kAppid;
  adapter.merchant_serial_no = "5F1C72E2A8931B72A2E13AF8DEE92471EB397115";
  adapter.merchant_private_key_pem = keys::Secret(Vector("java/merchant_private_key.pem"));
  adapter.apiv3_key = keys::Secret(std::string_view(kApiV3Key));
  adapter.platform_certificates_pem = {Vector("java/wechat_pay_certificate.pem")};
  auto made = wx::WechatPayAdapter::Create(std::move(adapter));
  if (!made) throw std::runtime_error(made.error());
  adapter_ = std::shared_ptr<wx::WechatPayAdapter>(std::move(made).value());
  auto client = adapters::http::HttpsClient::Create({.ca_file = pki.ca.string()});
  if (!client) throw std::runtime_error("control client: " + client.error());
  control_ = std::move(client).value();
}

WechatPaySim::~WechatPaySim() {
  Release();
  simulator_->Stop();
  thread_.join();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

void WechatPaySim::Release() {
  adapter_.reset();
  control_.reset();
}

boost::asio::awaitable<Result<adapters::http::HttpsResponse, adapters::http::HttpsError>>
WechatPaySim::Control(std::string path, std::string body) {
  adapters::http::HttpsRequest request;
  request.url = base_url_ + "/control/v1/" + path;
  request.headers = {{"authorization", std::string("Bearer ") + kControlToken}};
  request.body = std::move(body);
  co_return co_await control_->Send(std::move(request));
}

}  // namespace paygate::testing
