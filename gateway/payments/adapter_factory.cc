#include "gateway/payments/adapter_factory.h"

#include <fmt/format.h>

#include <fstream>
#include <optional>
#include <sstream>

#include "adapters/sandbox/sandbox_adapter.h"
#include "adapters/wechatpay/wechatpay_adapter.h"
#include "keys/secret_file.h"

namespace paygate::payments {
namespace {

Result<keys::Secret, std::string> ReadSecret(const std::string& field, const std::string& path) {
  auto secret = keys::ReadSecretFile(path);
  if (!secret) return fmt::format("{} {}: {}", field, path, secret.error().message());
  return std::move(secret).value();
}

// Public material (certificates, public keys): no permission rule, but it must be there.
std::optional<std::string> ReadPublicFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

AdapterResult MakeSandbox(const config::v1::Config& config,
                          const config::v1::ProviderAccount& account, const AdapterClock& clock) {
  auto secret = ReadSecret("secret_file", account.sandbox().secret_file());
  if (!secret) return secret.error();
  adapters::sandbox::SandboxOptions options;
  options.base_url = account.sandbox().base_url();
  options.ca_file = account.sandbox().ca_file();
  options.merchant_account = account.merchant_account();
  options.hmac_secret = std::move(secret).value();
  options.request_timeout_ms = std::chrono::milliseconds(config.payments().provider_timeout_ms());
  options.clock = clock;
  auto adapter = adapters::sandbox::SandboxAdapter::Create(std::move(options));
  if (!adapter) return adapter.error();
  return std::unique_ptr<adapters::Adapter>(std::move(adapter).value());
}

AdapterResult MakeWechatPay(const config::v1::Config& config,
                            const config::v1::ProviderAccount& account, const AdapterClock& clock) {
  const config::v1::WechatPayAccount& wx = account.wechatpay();
  adapters::wechatpay::WechatPayOptions options;
  if (!wx.base_url().empty()) options.base_url = wx.base_url();
  options.ca_file = wx.ca_file();
  options.merchant_account = account.merchant_account();
  options.mchid = wx.mchid();
  options.appid = wx.appid();
  options.merchant_serial_no = wx.merchant_serial_no();
  auto key = ReadSecret("merchant_private_key_file", wx.merchant_private_key_file());
  if (!key) return key.error();
  options.merchant_private_key_pem = std::move(key).value();
  auto apiv3 = ReadSecret("apiv3_key_file", wx.apiv3_key_file());
  if (!apiv3) return apiv3.error();
  options.apiv3_key = std::move(apiv3).value();
  for (const auto& public_key : wx.public_keys()) {
    auto pem = ReadPublicFile(public_key.file());
    if (!pem) return fmt::format("public_keys.file {}: cannot be read", public_key.file());
    options.wechatpay_public_keys.emplace_back(public_key.id(), std::move(*pem));
  }
  for (const auto& file : wx.platform_certificate_files()) {
    auto pem = ReadPublicFile(file);
    if (!pem) return fmt::format("platform_certificate_files {}: cannot be read", file);
    options.platform_certificates_pem.push_back(std::move(*pem));
  }
  options.encrypt_key_id = wx.encrypt_key_id();
  for (const auto& [code, unified] : account.error_codes()) options.error_codes[code] = unified;
  options.request_timeout_ms = std::chrono::milliseconds(config.payments().provider_timeout_ms());
  options.clock = clock;
  auto adapter = adapters::wechatpay::WechatPayAdapter::Create(std::move(options));
  if (!adapter) return adapter.error();
  return std::unique_ptr<adapters::Adapter>(std::move(adapter).value());
}

}  // namespace

AdapterResult MakeAdapter(const config::v1::Config& config,
                          const config::v1::ProviderAccount& account, AdapterClock clock) {
  if (account.provider() == "sandbox") return MakeSandbox(config, account, clock);
  if (account.provider() == "wechatpay") return MakeWechatPay(config, account, clock);
  return std::string("no adapter for this provider");
}

}  // namespace paygate::payments
