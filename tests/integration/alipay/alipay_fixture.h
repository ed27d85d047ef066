#pragma once

// Test-side pieces for the Alipay simulator: the paygate-alipay-sim binary run as a child process,
// an in-test HTTPS notify receiver that answers through the adapter under test (so Alipay's
// "success"-or-redeliver rule is exercised for real), and a certificate-mode PKI (root bundle with
// an RSA and an EC root, Alipay and app certificates) made with the openssl CLI.
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "adapters/adapter.h"

namespace paygate::testing {

// $PAYGATE_BINARY_DIR/adapters/alipay/paygate-alipay-sim with `args`; SIGTERM on destruction.
class AlipaySimProcess {
 public:
  explicit AlipaySimProcess(const std::vector<std::string>& args);
  ~AlipaySimProcess();
  AlipaySimProcess(const AlipaySimProcess&) = delete;
  AlipaySimProcess& operator=(const AlipaySimProcess&) = delete;

  std::uint16_t port() const { return port_; }
  std::string gateway_url() const {
    return "https://localhost:" + std::to_string(port_) + "/gateway.do";
  }

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

// Records every notify POSTed to https://127.0.0.1:<port>/<account> and answers with what
// `answer` returns (the adapter's AckCallback of its VerifyCallback).
class NotifyReceiver {
 public:
  using Answer = std::function<adapters::CallbackAck(const adapters::CallbackRequest&)>;
  NotifyReceiver(const std::filesystem::path& cert, const std::filesystem::path& key, Answer answer);
  ~NotifyReceiver();

  std::string url(const std::string& account) const;
  struct Received {
    adapters::CallbackRequest request;
    adapters::CallbackAck ack;
  };
  // Waits until at least `n` notifies arrived, or `timeout`; returns all so far.
  std::vector<Received> WaitFor(std::size_t n, std::chrono::milliseconds timeout);
  void Clear();

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

struct AlipayCertPki {
  std::filesystem::path root_bundle;  // RSA root, then an EC root
  std::filesystem::path alipay_cert;  // for the stand-in Alipay key, issued by the RSA root
  std::filesystem::path app_cert;     // for the app key, issued by the RSA root
};
// `alipay_key` and `app_key` are PEM files. Throws on failure.
AlipayCertPki MakeAlipayCertPki(const std::filesystem::path& dir,
                                const std::filesystem::path& alipay_key,
                                const std::filesystem::path& app_key);

}  // namespace paygate::testing
