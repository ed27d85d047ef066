#include "tests/integration/sandbox/sandbox_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>

#include "adapters/http/beast.h"

extern char** environ;

namespace paygate::testing {
namespace {

using namespace adapters::net;  // NOLINT(google-build-using-namespace): asio/beast aliases.

void Run(const std::string& command) {
  if (std::system(command.c_str()) != 0) throw std::runtime_error("failed: " + command);
}

std::string EnvOr(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : fallback;
}

}  // namespace

SandboxPki MakeSandboxPki(const std::filesystem::path& dir) {
  const std::string script = EnvOr("PAYGATE_SOURCE_DIR", ".") + "/deploy/local/dev-pki.sh";
  SandboxPki pki;
  pki.dir = dir;
  Run(fmt::format("bash '{}' '{}/pki' >/dev/null 2>&1", script, dir.string()));
  Run(fmt::format("bash '{}' '{}/other' >/dev/null 2>&1", script, dir.string()));
  pki.ca = dir / "pki/ca.crt";
  pki.server_crt = dir / "pki/server.crt";
  pki.server_key = dir / "pki/server.key";
  pki.other_ca = dir / "other/ca.crt";
  pki.wrong_crt = dir / "wrong.crt";
  pki.wrong_key = dir / "wrong.key";
  // A certificate from the trusted CA for another name: the chain verifies, the name does not.
  const std::string d = dir.string();
  Run(fmt::format(
      "cd '{0}' && umask 077 && "
      "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out wrong.key 2>/dev/null "
      "&& "
      "openssl req -new -key wrong.key -subj /CN=wrong.example -out wrong.csr 2>/dev/null && "
      "printf 'subjectAltName=DNS:wrong.example\\nextendedKeyUsage=serverAuth\\n' > wrong.ext && "
      "openssl x509 -req -in wrong.csr -CA pki/ca.crt -CAkey pki/ca.key -set_serial 0x5eed "
      "-days 30 -sha256 -extfile wrong.ext -out wrong.crt 2>/dev/null",
      d));
  return pki;
}

void WriteSecretFile(const std::filesystem::path& path, const std::string& content) {
  {
    std::ofstream out(path, std::ios::trunc);
    out << content;
  }
  std::filesystem::permissions(
      path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

SimulatorProcess::SimulatorProcess(const std::vector<std::string>& args) {
  const std::string binary = EnvOr("PAYGATE_BINARY_DIR", ".") + "/adapters/sandbox/paygate-sandbox";
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  std::vector<std::string> argv_storage{binary};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const int rc = posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    throw std::runtime_error("cannot run " + binary);
  }
  FILE* out = fdopen(fds[0], "r");
  char line[256] = {};
  const bool got = std::fgets(line, sizeof(line), out) != nullptr;
  std::fclose(out);
  unsigned port = 0;
  const char* colon = got ? std::strrchr(line, ':') : nullptr;
  if (colon == nullptr || std::sscanf(colon + 1, "%u", &port) != 1 || port == 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    throw std::runtime_error(fmt::format("paygate-sandbox did not start: '{}'", line));
  }
  port_ = static_cast<std::uint16_t>(port);
}

SimulatorProcess::~SimulatorProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
}

class CallbackReceiver::Impl {
 public:
  Impl(const std::filesystem::path& cert, const std::filesystem::path& key)
      : ssl_(ssl::context::tls_server),
        acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    ssl_.use_certificate_chain_file(cert.string());
    ssl_.use_private_key_file(key.string(), ssl::context::pem);
    asio::co_spawn(ioc_, Accept(), asio::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~Impl() {
    ioc_.stop();
    thread_.join();
  }

  asio::awaitable<void> Accept() {
    for (;;) {
      boost::system::error_code ec;
      auto socket = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      asio::co_spawn(ioc_, Session(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> Session(tcp::socket socket) {
    beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), ssl_);
    boost::system::error_code ec;
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
    co_await stream.async_handshake(ssl::stream_base::server,
                                    asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request<bhttp::string_body> request;
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
      co_await bhttp::async_read(stream, buffer, request,
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      Received received;
      received.at = std::chrono::steady_clock::now();
      const std::string target(request.target());
      received.request.merchant_account = target.substr(target.rfind('/') + 1);
      for (const auto& field : request) {
        std::string name(field.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        received.request.headers.emplace_back(name, std::string(field.value()));
      }
      received.request.body = request.body();
      unsigned status = 200;
      {
        std::lock_guard lock(mu_);
        if (nack_ > 0) {
          --nack_;
          status = 503;
        }
        received.answered = status;
        received_.push_back(std::move(received));
      }
      cv_.notify_all();
      bhttp::response<bhttp::string_body> response{static_cast<bhttp::status>(status), 11};
      response.set(bhttp::field::content_type, "application/json");
      response.body() = status == 200 ? R"({"received":true})" : "{}";
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      co_await bhttp::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
    }
  }

  asio::io_context ioc_;
  ssl::context ssl_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Received> received_;
  int nack_ = 0;
};

CallbackReceiver::CallbackReceiver(const std::filesystem::path& cert,
                                   const std::filesystem::path& key)
    : impl_(std::make_unique<Impl>(cert, key)) {
  port_ = impl_->acceptor_.local_endpoint().port();
}

CallbackReceiver::~CallbackReceiver() = default;

std::string CallbackReceiver::url(const std::string& account) const {
  return fmt::format("https://localhost:{}/v1/callbacks/sandbox/{}", port_, account);
}

std::vector<CallbackReceiver::Received> CallbackReceiver::WaitFor(
    std::size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mu_);
  impl_->cv_.wait_for(lock, timeout, [&] { return impl_->received_.size() >= n; });
  return impl_->received_;
}

std::vector<CallbackReceiver::Received> CallbackReceiver::All() {
  std::lock_guard lock(impl_->mu_);
  return impl_->received_;
}

void CallbackReceiver::Clear() {
  std::lock_guard lock(impl_->mu_);
  impl_->received_.clear();
  impl_->nack_ = 0;
}

void CallbackReceiver::NackNext(int n) {
  std::lock_guard lock(impl_->mu_);
  impl_->nack_ = n;
}

}  // namespace paygate::testing
