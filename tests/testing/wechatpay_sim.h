#pragma once

// The WeChat Pay simulator (adapters/wechatpay/simulator) in-process over real TLS, with an
// adapter keyed for it by the Java SDK's vector keys and a client of its test-control API: what
// the integration tests that pay, refund and download bills through WeChat Pay share.
//
// The simulator serves on a thread of its own. The adapter's and the control client's pooled TLS
// connections live on the executor of whoever called them: call Release() while that executor's
// io_context still exists (before the test's io_context is destroyed).
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/awaitable.hpp>

#include "adapters/http/https_client.h"
#include "adapters/wechatpay/simulator/simulator.h"
#include "adapters/wechatpay/wechatpay_adapter.h"
#include "config/result.h"

namespace paygate::testing {

struct WechatPaySimOptions {
  // Our name of the account the adapter serves.
  std::string merchant_account = "wx1";
  // Callbacks: WeChat's retry schedule times this, and deliveries of one callback in all.
  double callback_time_scale = 0.001;
  std::uint32_t callback_attempts_max = 1;
};

class WechatPaySim {
 public:
  static constexpr const char* kMchid = "1234567891";
  static constexpr const char* kAppid = "wxd678efh567hg6787";

  // Starts the simulator; throws std::runtime_error when it, or the adapter, cannot be made.
  explicit WechatPaySim(WechatPaySimOptions options = {});
  ~WechatPaySim();
  WechatPaySim(const WechatPaySim&) = delete;
  WechatPaySim& operator=(const WechatPaySim&) = delete;

  const std::shared_ptr<adapters::wechatpay::WechatPayAdapter>& adapter() const {
    return adapter_;
  }
  const std::string& base_url() const { return base_url_; }
  const std::filesystem::path& ca_file() const { return ca_; }

  // POST /control/v1/<path> with the control token.
  boost::asio::awaitable<Result<adapters::http::HttpsResponse, adapters::http::HttpsError>>
  Control(std::string path, std::string body);

  // Drops the adapter and the control client (and their pooled connections).
  void Release();

 private:
  std::filesystem::path dir_, ca_;
  std::unique_ptr<adapters::wechatpay::Simulator> simulator_;
  std::thread thread_;
  std::string base_url_;
  std::shared_ptr<adapters::wechatpay::WechatPayAdapter> adapter_;
  std::shared_ptr<adapters::http::HttpsClient> control_;
};

}  // namespace paygate::testing
