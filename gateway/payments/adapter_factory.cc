#include "gateway/payments/adapter_factory.h"

#include <fmt/format.h>

#include <optional>
#include <tuple>

#include "adapters/alipay/alipay_adapter.h"
#include "adapters/sandbox/sandbox_adapter.h"
#include "adapters/unionpay/unionpay_adapter.h"
#include "adapters/wechatpay/wechatpay_adapter.h"
#include "config/file.h"

namespace paygate::payments {
namespace {

AdapterResult MakeSandbox(const config::v1::Config& config,
                          const config::v1::ProviderAccount& account, const AdapterClock& clock,
                          const keys::Keyring& ring) {
  auto secret = keys::CopyCurrent(ring, "secret_key_id", account.sandbox().secret_key_id());
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
                            const config::v1::ProviderAccount& account, const AdapterClock& clock,
                            const keys::Keyring& ring) {
  const config::v1::WechatPayAccount& wx = account.wechatpay();
  adapters::wechatpay::WechatPayOptions options;
  if (!wx.base_url().empty()) options.base_url = wx.base_url();
  options.ca_file = wx.ca_file();
  options.merchant_account = account.merchant_account();
  options.mchid = wx.mchid();
  options.appid = wx.appid();
  options.merchant_serial_no = wx.merchant_serial_no();
  auto key = keys::CopyCurrent(ring, "merchant_private_key_id", wx.merchant_private_key_id());
  if (!key) return key.error();
  options.merchant_private_key_pem = std::move(key).value();
  auto apiv3 = keys::CopyCurrent(ring, "apiv3_key_id", wx.apiv3_key_id());
  if (!apiv3) return apiv3.error();
  options.apiv3_key = std::move(apiv3).value();
  for (const auto& public_key : wx.public_keys()) {
    auto pem = config::ReadWholeFile(public_key.file());
    if (!pem) return fmt::format("public_keys.file {}: cannot be read", public_key.file());
    options.wechatpay_public_keys.emplace_back(public_key.id(), std::move(*pem));
  }
  for (const auto& file : wx.platform_certificate_files()) {
    auto pem = config::ReadWholeFile(file);
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

AdapterResult MakeAlipay(const config::v1::Config& config,
                         const config::v1::ProviderAccount& account, const AdapterClock& clock,
                         const keys::Keyring& ring) {
  const config::v1::AlipayAccount& ali = account.alipay();
  adapters::alipay::AlipayOptions options;
  if (!ali.gateway_url().empty()) options.gateway_url = ali.gateway_url();
  options.ca_file = ali.ca_file();
  options.merchant_account = account.merchant_account();
  options.app_id = ali.app_id();
  options.seller_id = ali.seller_id();
  auto key = keys::CopyCurrent(ring, "app_private_key_id", ali.app_private_key_id());
  if (!key) return key.error();
  options.app_private_key_pem = std::move(key).value();
  // Certificate mode when its certificates are configured (validation allows one mode only).
  for (const auto& [field, path, target] :
       {std::tuple<const char*, const std::string*, std::string*>{
            "alipay_public_key_file", &ali.alipay_public_key_file(),
            &options.alipay_public_key_pem},
        {"app_cert_file", &ali.app_cert_file(), &options.app_cert_pem},
        {"alipay_cert_file", &ali.alipay_cert_file(), &options.alipay_cert_pem},
        {"alipay_root_cert_file", &ali.alipay_root_cert_file(), &options.alipay_root_cert_pem}}) {
    if (path->empty()) continue;
    auto pem = config::ReadWholeFile(*path);
    if (!pem) return fmt::format("{} {}: cannot be read", field, *path);
    *target = std::move(*pem);
  }
  for (const auto& [code, unified] : account.error_codes()) options.error_codes[code] = unified;
  options.request_timeout_ms = std::chrono::milliseconds(config.payments().provider_timeout_ms());
  options.clock = clock;
  auto adapter = adapters::alipay::AlipayAdapter::Create(std::move(options));
  if (!adapter) return adapter.error().message;
  return std::unique_ptr<adapters::Adapter>(std::move(adapter).value());
}

AdapterResult MakeUnionPay(const config::v1::Config& config,
                           const config::v1::ProviderAccount& account, const AdapterClock& clock,
                           const keys::Keyring& ring) {
  const config::v1::UnionPayAccount& up = account.unionpay();
  adapters::unionpay::UnionPayOptions options;
  options.base_url = up.base_url();
  options.file_base_url = up.file_base_url();
  options.ca_file = up.ca_file();
  options.merchant_account = account.merchant_account();
  options.mer_id = up.mer_id();
  // The store holds the merchant's private key (under the password): a secret like any key.
  auto pfx = keys::CopyCurrent(ring, "sign_pfx_key_id", up.sign_pfx_key_id());
  if (!pfx) return pfx.error();
  options.sign_pfx = std::move(pfx).value();
  auto password =
      keys::CopyCurrent(ring, "sign_pfx_password_key_id", up.sign_pfx_password_key_id());
  if (!password) return password.error();
  options.sign_pfx_password = std::move(password).value();
  for (const auto& [field, path] : {std::pair<const char*, const std::string*>{
                                        "root_cert_file", &up.root_cert_file()},
                                    {"middle_cert_file", &up.middle_cert_file()}}) {
    if (!config::ReadWholeFile(*path)) return fmt::format("{} {}: cannot be read", field, *path);
  }
  options.root_cert_file = up.root_cert_file();
  options.middle_cert_file = up.middle_cert_file();
  if (!up.cert_owner().empty()) options.cert_owner = up.cert_owner();
  options.front_url = up.front_url();
  if (up.close_grace_s() != 0) options.close_grace_s = std::chrono::seconds(up.close_grace_s());
  for (const auto& [code, unified] : account.error_codes()) options.error_codes[code] = unified;
  options.request_timeout_ms = std::chrono::milliseconds(config.payments().provider_timeout_ms());
  options.clock = clock;
  auto adapter = adapters::unionpay::UnionPayAdapter::Create(std::move(options));
  if (!adapter) return adapter.error();
  return std::unique_ptr<adapters::Adapter>(std::move(adapter).value());
}

}  // namespace

AdapterResult MakeAdapter(const config::v1::Config& config,
                          const config::v1::ProviderAccount& account, AdapterClock clock,
                          const keys::Keyring* ring) {
  std::optional<keys::Keyring> loaded;
  if (ring == nullptr) {
    auto configured = keys::LoadConfiguredKeyring(config.keys());
    if (!configured) return configured.error().message;
    loaded = std::move(configured).value();
    ring = &*loaded;
  }
  if (account.provider() == "sandbox") return MakeSandbox(config, account, clock, *ring);
  if (account.provider() == "wechatpay") return MakeWechatPay(config, account, clock, *ring);
  if (account.provider() == "alipay") return MakeAlipay(config, account, clock, *ring);
  if (account.provider() == "unionpay") return MakeUnionPay(config, account, clock, *ring);
  return std::string("no adapter for this provider");
}

}  // namespace paygate::payments
