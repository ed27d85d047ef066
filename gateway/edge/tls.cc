#include "gateway/edge/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <fmt/format.h>

#include "keys/secret_file.h"

namespace paygate::edge {
namespace {

// TLS 1.2 suites: ECDHE key exchange with AEAD ciphers only (no CBC, no RSA key transport, no DHE).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* kGroups = "X25519:P-256:P-384";

std::string OpenSslError() {
  unsigned long code = ERR_get_error();  // NOLINT(google-runtime-int): OpenSSL's type.
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

}  // namespace

Result<std::shared_ptr<ssl::context>, std::string> MakeServerTlsContext(
    const config::v1::Tls& tls) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  const int min_version =
      tls.min_version() == config::v1::TLS_MIN_VERSION_1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (SSL_CTX_set_min_proto_version(native, min_version) != 1) return OpenSslError();
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                  SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_SINGLE_ECDH_USE);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) return OpenSslError();
  if (SSL_CTX_set_ciphersuites(native, kTls13Suites) != 1) return OpenSslError();
  if (SSL_CTX_set1_groups_list(native, kGroups) != 1) return OpenSslError();

  if (auto ok = keys::CheckKeyFilePermissions(tls.key_file()); !ok) {
    return fmt::format("{}: {}", tls.key_file(), ok.error().message());
  }
  if (SSL_CTX_use_certificate_chain_file(native, tls.cert_file().c_str()) != 1) {
    return fmt::format("{}: {}", tls.cert_file(), OpenSslError());
  }
  if (SSL_CTX_use_PrivateKey_file(native, tls.key_file().c_str(), SSL_FILETYPE_PEM) != 1) {
    return fmt::format("{}: {}", tls.key_file(), OpenSslError());
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    return fmt::format("{} does not match {}: {}", tls.key_file(), tls.cert_file(), OpenSslError());
  }

  if (tls.client_cert() != config::v1::CLIENT_CERT_MODE_NONE) {
    if (SSL_CTX_load_verify_locations(native, tls.client_ca_file().c_str(), nullptr) != 1) {
      return fmt::format("{}: {}", tls.client_ca_file(), OpenSslError());
    }
    // Tell clients which CA we accept, so they pick the right certificate.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca_file().c_str());
    if (names == nullptr) return fmt::format("{}: {}", tls.client_ca_file(), OpenSslError());
    SSL_CTX_set_client_CA_list(native, names);
    int mode = SSL_VERIFY_PEER;
    if (tls.client_cert() == config::v1::CLIENT_CERT_MODE_REQUIRED) {
      mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
    SSL_CTX_set_verify(native, mode, nullptr);
    SSL_CTX_set_verify_depth(native, 4);
  }
  // Session resumption across reloads is not needed; tickets would need key rotation of their own.
  SSL_CTX_set_options(native, SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(native, 0);
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
  return ctx;
}

TlsContextStore::TlsContextStore(config::v1::Tls tls, std::shared_ptr<ssl::context> initial)
    : tls_(std::move(tls)), current_(std::move(initial)) {}

std::shared_ptr<ssl::context> TlsContextStore::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

Result<void, std::string> TlsContextStore::Reload() {
  auto fresh = MakeServerTlsContext(tls_);
  if (!fresh) return fresh.error();
  std::lock_guard lock(mu_);
  current_ = std::move(fresh).value();
  return outcome::success();
}

std::string PeerCommonName(SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return {};
  X509_NAME* subject = X509_get_subject_name(cert);
  const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0) return {};
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  unsigned char* utf8 = nullptr;
  const int length = ASN1_STRING_to_UTF8(&utf8, data);
  if (length < 0) return {};
  std::string name(reinterpret_cast<const char*>(utf8), static_cast<size_t>(length));
  OPENSSL_free(utf8);
  return name;
}

}  // namespace paygate::edge
