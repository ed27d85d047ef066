#pragma once

// Server-side TLS for the edge (DESIGN.md §6): TLS 1.2 and 1.3 only, ECDHE key exchange with AEAD ciphers
// only, optional or required client certificates verified against a private CA, and certificate/key reload
// on SIGHUP without dropping connections: each connection keeps the context it was accepted with, new
// connections get the newest one.
#include <memory>
#include <mutex>
#include <string>

#include "config/paygate_config.pb.h"
#include "config/result.h"
#include "gateway/edge/asio_fwd.h"

namespace paygate::edge {

// Builds a server context from the listener's TLS settings. Fails with a message naming the file and the
// OpenSSL reason when a file is missing, unreadable, unsafe (a private key readable by group or others) or
// the key does not match the certificate.
Result<std::shared_ptr<ssl::context>, std::string> MakeServerTlsContext(
    const config::v1::Tls& tls);

// Holds the current server context of one listener. Thread-safe: Current() may be called from any I/O
// thread while Reload() runs on another.
class TlsContextStore {
 public:
  explicit TlsContextStore(config::v1::Tls tls, std::shared_ptr<ssl::context> initial);

  std::shared_ptr<ssl::context> Current() const;

  // Re-reads the certificate, key and client CA files. On failure the running context stays in place and
  // the error is returned; a bad file on disk never takes the listener down.
  Result<void, std::string> Reload();

 private:
  const config::v1::Tls tls_;
  mutable std::mutex mu_;
  std::shared_ptr<ssl::context> current_;
};

// The verified client certificate's subject common name, or empty when the peer sent none.
std::string PeerCommonName(SSL* ssl);

}  // namespace paygate::edge
