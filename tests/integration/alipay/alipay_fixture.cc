#include "tests/integration/alipay/alipay_fixture.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "adapters/http/beast.h"

extern char** environ;

namespace paygate::testing {
namespace {

using namespace adapters::net;  // NOLINT(google-build-using-namespace): asio/beast aliases.

void Run(const std::string& command) {
  if (std::system(command.c_str()) != 0) throw std::runtime_error("failed: " + command);
}

}  // namespace

AlipaySimProcess::AlipaySimProcess(const std::vector<std::string>& args) {
  const char* dir = std::getenv("PAYGATE_BINARY_DIR");
  const std::string binary = std::string(dir ? dir : ".") + "/adapters/alipay/paygate-alipay-sim";
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
    throw std::runtime_error(fmt::format("paygate-alipay-sim did not start: '{}'", line));
  }
  port_ = static_cast<std::uint16_t>(port);
}

AlipaySimProcess::~AlipaySimProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
}

class NotifyReceiver::Impl {
 public:
  Impl(const std::filesystem::path& cert, const std::filesystem::path& key, Answer answer)
      : answer_(std::move(answer)),
        ssl_(ssl::context::tls_server),
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
      const std::string target(request.target());
      received.request.merchant_account = target.substr(target.rfind('/') + 1);
      for (const auto& field : request) {
        std::string name(field.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        received.request.headers.emplace_back(name, std::string(field.value()));
      }
      received.request.body = request.body();
      received.ack = answer_(received.request);
      bhttp::response<bhttp::string_body> response{static_cast<bhttp::status>(received.ack.status),
                                                   11};
      response.set(bhttp::field::content_type, received.ack.content_type);
      response.body() = received.ack.body;
      {
        std::lock_guard lock(mu_);
        received_.push_back(std::move(received));
      }
      cv_.notify_all();
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      co_await bhttp::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
    }
  }

  Answer answer_;
  asio::io_context ioc_;
  ssl::context ssl_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Received> received_;
};

NotifyReceiver::NotifyReceiver(const std::filesystem::path& cert, const std::filesystem::path& key,
                               Answer answer)
    : impl_(std::make_unique<Impl>(cert, key, std::move(answer))) {}

NotifyReceiver::~NotifyReceiver() = default;

std::string NotifyReceiver::url(const std::string& account) const {
  return fmt::format("https://127.0.0.1:{}/notify/{}", impl_->acceptor_.local_endpoint().port(),
                     account);
}

std::vector<NotifyReceiver::Received> NotifyReceiver::WaitFor(std::size_t n,
                                                              std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mu_);
  impl_->cv_.wait_for(lock, timeout, [&] { return impl_->received_.size() >= n; });
  return impl_->received_;
}

void NotifyReceiver::Clear() {
  std::lock_guard lock(impl_->mu_);
  impl_->received_.clear();
}

AlipayCertPki MakeAlipayCertPki(const std::filesystem::path& dir,
                                const std::filesystem::path& alipay_key,
                                const std::filesystem::path& app_key) {
  const std::string d = dir.string();
  Run(fmt::format(
      "cd {0} && "
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.crt -days 3650 "
      "-subj '/C=CN/O=Paygate Test/OU=Certification Authority/CN=Paygate Test Alipay Root' "
      "2>/dev/null && "
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ecroot.key "
      "-out ecroot.crt -days 3650 -subj '/C=CN/O=Paygate Test/CN=Paygate Test EC Root' "
      "2>/dev/null && "
      "openssl req -new -key {1} -subj '/C=CN/O=Paygate Test/OU=Alipay/CN=Alipay Public Key' "
      "-out alipay.csr && "
      "openssl x509 -req -in alipay.csr -CA root.crt -CAkey root.key -set_serial 4242424242 "
      "-days 365 -out alipay.crt 2>/dev/null && "
      "openssl req -new -key {2} -subj '/C=CN/O=Paygate Test/OU=App/CN=2021000000000002' "
      "-out app.csr && "
      "openssl x509 -req -in app.csr -CA root.crt -CAkey root.key -set_serial 77 -days 365 "
      "-out app.crt 2>/dev/null && "
      "cat root.crt ecroot.crt > root_bundle.crt",
      d, alipay_key.string(), app_key.string()));
  return AlipayCertPki{dir / "root_bundle.crt", dir / "alipay.crt", dir / "app.crt"};
}

}  // namespace paygate::testing
