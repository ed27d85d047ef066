#include "tests/integration/edge/edge_fixture.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <stdexcept>

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "config/validate.h"

namespace paygate::testing {

std::filesystem::path MakeDevPki(const std::filesystem::path& dir) {
  const char* source = std::getenv("PAYGATE_SOURCE_DIR");
  const std::string script =
      std::string(source != nullptr ? source : ".") + "/deploy/local/dev-pki.sh";
  const std::string command = fmt::format("bash '{}' '{}' >/dev/null 2>&1", script, dir.string());
  if (std::system(command.c_str()) != 0) throw std::runtime_error("dev-pki.sh failed: " + command);
  return dir;
}

config::v1::Config TestConfig(const std::filesystem::path& pki) {
  config::v1::Config config;
  for (auto* listener : {config.mutable_api(), config.mutable_admin()}) {
    listener->set_address("127.0.0.1");
    listener->set_port(0);
    auto* tls = listener->mutable_tls();
    tls->set_cert_file((pki / "server.crt").string());
    tls->set_key_file((pki / "server.key").string());
    tls->set_client_ca_file((pki / "ca.crt").string());
    tls->set_client_cert(config::v1::CLIENT_CERT_MODE_OPTIONAL);
    auto* limits = listener->mutable_limits();
    limits->set_header_size_max_bytes(8192);
    limits->set_body_size_max_bytes(64 * 1024);
    limits->set_header_read_timeout_ms(1500);
    limits->set_body_read_timeout_ms(1500);
    limits->set_idle_timeout_ms(1500);
    limits->set_connections_per_ip_max(50);
  }
  config.mutable_database()->set_url("postgresql://paygate@127.0.0.1:1/paygate");
  auto add_principal = [&](const std::string& name, config::v1::Role role) {
    auto* p = config.add_principals();
    p->set_name(name);
    p->set_client_cert_common_name(name);
    p->add_roles(role);
  };
  add_principal("sales-platform", config::v1::ROLE_SALES);
  add_principal("finance", config::v1::ROLE_FINANCE);
  config::ValidateOptions options;
  options.allow_ephemeral_ports = true;
  options.env = [](std::string_view) { return std::nullopt; };
  auto errors = config::ApplyDefaultsAndValidate(&config, options);
  if (!errors.empty()) throw std::runtime_error(config::FormatErrors(errors));
  return config;
}

RunningServer::RunningServer(const config::v1::Config& config, const config::v1::Listener& listener,
                             std::shared_ptr<const edge::Router> router, int threads,
                             std::shared_ptr<edge::Authenticator> authenticator,
                             std::shared_ptr<const edge::PrincipalDirectory> principals)
    : metrics_(std::make_shared<edge::EdgeMetrics>()) {
  if (!principals) principals = std::make_shared<edge::PrincipalDirectory>(config);
  auto context = edge::MakeServerTlsContext(listener.tls());
  if (!context) throw std::runtime_error(context.error());
  auto store = std::make_shared<edge::TlsContextStore>(listener.tls(), context.value());
  server_ = std::make_shared<edge::HttpServer>(
      ioc_, static_cast<std::uint32_t>(threads), "api", listener, /*access_log=*/false, store,
      std::move(router), metrics_, std::move(principals), std::move(authenticator));
  if (auto ok = server_->Listen(); !ok) throw std::runtime_error(ok.error());
  server_->Start();
  work_.emplace(ioc_.get_executor());
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
}

RunningServer::~RunningServer() {
  Drain(std::chrono::milliseconds(500));
  work_.reset();
  ioc_.stop();
  for (auto& t : threads_) t.join();
}

void RunningServer::Drain(std::chrono::milliseconds bound) {
  std::promise<void> done;
  edge::asio::co_spawn(
      ioc_, [this, bound]() { return server_->Drain(bound); },
      [&done](std::exception_ptr) { done.set_value(); });
  done.get_future().wait();
}

TlsClient::TlsClient(std::uint16_t port, ClientOptions options)
    : port_(port), ctx_(edge::ssl::context::tls_client) {
  if (!options.ca.empty()) {
    ctx_.load_verify_file(options.ca.string());
    ctx_.set_verify_mode(edge::ssl::verify_peer);
  } else {
    ctx_.set_verify_mode(edge::ssl::verify_none);
  }
  if (!options.cert.empty()) {
    ctx_.use_certificate_chain_file(options.cert.string());
    ctx_.use_private_key_file(options.key.string(), edge::ssl::context::pem);
  }
  if (options.max_version != 0) {
    // OpenSSL 3 refuses TLS < 1.2 at its default security level even as a client; lower it so the
    // offer really reaches the server and the server is the one refusing.
    SSL_CTX_set_security_level(ctx_.native_handle(), 0);
    SSL_CTX_set_min_proto_version(ctx_.native_handle(), TLS1_VERSION);
    SSL_CTX_set_max_proto_version(ctx_.native_handle(), options.max_version);
    SSL_CTX_set_cipher_list(ctx_.native_handle(), "DEFAULT:@SECLEVEL=0");
  }
  if (!options.tls12_ciphers.empty()) {
    SSL_CTX_set_max_proto_version(ctx_.native_handle(), TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(ctx_.native_handle(), options.tls12_ciphers.c_str());
  }
}

TlsClient::~TlsClient() = default;

edge::beast::error_code TlsClient::Connect() {
  stream_ = std::make_unique<edge::beast::ssl_stream<edge::beast::tcp_stream>>(ioc_, ctx_);
  edge::beast::error_code ec;
  edge::beast::get_lowest_layer(*stream_).connect(
      edge::tcp::endpoint(edge::asio::ip::make_address("127.0.0.1"), port_), ec);
  if (ec) return ec;
  // SNI, as a real client sends it (the macro hides a C cast).
  const char* host = "localhost";
  SSL_ctrl(stream_->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
           const_cast<char*>(host));
  stream_->handshake(edge::ssl::stream_base::client, ec);
  return ec;
}

edge::beast::error_code TlsClient::Send(edge::Request& request, edge::Response* response) {
  edge::beast::error_code ec;
  request.set(edge::http::field::host, "localhost");
  request.prepare_payload();
  edge::http::write(*stream_, request, ec);
  if (ec) return ec;
  edge::http::read(*stream_, buffer_, *response, ec);
  return ec;
}

edge::beast::error_code TlsClient::Read(edge::Response* response) {
  edge::beast::error_code ec;
  edge::http::read(*stream_, buffer_, *response, ec);
  return ec;
}

edge::Response TlsClient::Get(std::string_view target) {
  edge::Request request{edge::http::verb::get, target, 11};
  edge::Response response;
  if (auto ec = Send(request, &response)) throw std::runtime_error("GET failed: " + ec.message());
  return response;
}

edge::beast::error_code TlsClient::WriteRaw(std::string_view bytes) {
  edge::beast::error_code ec;
  edge::asio::write(*stream_, edge::asio::buffer(bytes.data(), bytes.size()), ec);
  return ec;
}

bool TlsClient::ServerClosed(std::chrono::milliseconds wait) {
  // Reads through TLS until the server closes (EOF, truncation, reset) or the wait passes; TLS
  // records that carry no application data are consumed by the TLS layer.
  auto& tcp = edge::beast::get_lowest_layer(*stream_);
  tcp.expires_after(wait);
  char byte;
  bool closed = false;
  std::function<void(edge::beast::error_code, std::size_t)> on_read;
  on_read = [&](edge::beast::error_code e, std::size_t) {
    if (!e) {
      stream_->async_read_some(edge::asio::buffer(&byte, 1), on_read);
      return;
    }
    closed = e != edge::beast::error::timeout;
  };
  stream_->async_read_some(edge::asio::buffer(&byte, 1), on_read);
  ioc_.restart();
  ioc_.run();
  return closed;
}

std::string TlsClient::PeerFingerprint() {
  X509* cert = SSL_get0_peer_certificate(stream_->native_handle());
  if (cert == nullptr) return {};
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  X509_digest(cert, EVP_sha256(), digest, &length);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

std::size_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages_total = 0;
  std::size_t pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace paygate::testing
