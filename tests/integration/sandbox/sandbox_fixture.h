#pragma once

// Test-side pieces for the sandbox provider: a dev PKI (plus an untrusted one and a certificate for
// the wrong host name), the paygate-sandbox binary run as a child process, and an in-test HTTPS
// receiver that captures callbacks exactly as they arrive.
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "adapters/adapter.h"

namespace paygate::testing {

struct SandboxPki {
  std::filesystem::path dir;
  std::filesystem::path ca;          // trusted CA
  std::filesystem::path server_crt;  // CN=localhost, SAN localhost/127.0.0.1/::1
  std::filesystem::path server_key;
  std::filesystem::path wrong_crt;  // same CA, SAN DNS:wrong.example only
  std::filesystem::path wrong_key;
  std::filesystem::path other_ca;  // a CA that signed nothing we serve
};

// Creates everything under `dir` (openssl CLI and deploy/local/dev-pki.sh). Throws on failure.
SandboxPki MakeSandboxPki(const std::filesystem::path& dir);

// Writes a 0600 file.
void WriteSecretFile(const std::filesystem::path& path, const std::string& content);

// The built paygate-sandbox as a child process; stopped with SIGTERM on destruction.
class SimulatorProcess {
 public:
  // Runs $PAYGATE_BINARY_DIR/adapters/sandbox/paygate-sandbox with `args` and reads the port from
  // its first stdout line. Throws when it does not start.
  explicit SimulatorProcess(const std::vector<std::string>& args);
  ~SimulatorProcess();
  SimulatorProcess(const SimulatorProcess&) = delete;
  SimulatorProcess& operator=(const SimulatorProcess&) = delete;

  std::uint16_t port() const { return port_; }
  std::string base_url() const { return "https://localhost:" + std::to_string(port_); }

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

// An HTTPS server on 127.0.0.1:0 (its own thread) that records every POST and answers 200, or 503
// while `nack_remaining` is positive.
class CallbackReceiver {
 public:
  CallbackReceiver(const std::filesystem::path& cert, const std::filesystem::path& key);
  ~CallbackReceiver();

  std::uint16_t port() const { return port_; }
  std::string url(const std::string& account) const;

  struct Received {
    adapters::CallbackRequest request;
    std::chrono::steady_clock::time_point at;
    unsigned answered = 0;
  };
  // Waits until at least `n` deliveries arrived, or `timeout`; returns all so far.
  std::vector<Received> WaitFor(std::size_t n, std::chrono::milliseconds timeout);
  std::vector<Received> All();
  void Clear();
  void NackNext(int n);

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
  std::uint16_t port_ = 0;
};

}  // namespace paygate::testing
