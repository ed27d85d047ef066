#pragma once

// The public-key cryptography the provider protocols need, on OpenSSL 3 (DESIGN.md §6): RSA
// PKCS#1 v1.5 signatures (WeChat Pay, Alipay RSA2/RSA, UnionPay), RSA-OAEP (WeChat Pay's
// sensitive fields), AES-GCM (WeChat Pay callbacks and platform certificates), X.509 certificates
// and chain checks (UnionPay's signPubKeyCert, Alipay certificate mode), PKCS#12 key stores
// (UnionPay's .pfx). Keys are opaque handles; private key bytes never leave OpenSSL.
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/result.h"

namespace paygate::adapters::crypto {

enum class Digest { kSha1, kSha256 };

// Why a cryptographic operation failed, for logs (never key material). A distinct type, because a
// Result<std::string, std::string> could not tell its value from its error.
struct Error {
  std::string message;
};
template <class T>
using CryptoResult = outcome::result<T, Error, outcome::policy::terminate>;

// Digests of raw bytes, as raw bytes (hex them with codec::HexLower).
std::string DigestBytes(Digest digest, std::string_view data);

// The same digest over bytes that arrive in pieces (a bill inflated a piece at a time).
class DigestStream {
 public:
  explicit DigestStream(Digest digest);
  ~DigestStream();
  DigestStream(const DigestStream&) = delete;
  DigestStream& operator=(const DigestStream&) = delete;
  void Update(std::string_view data);
  // The digest of everything given so far, as raw bytes; the stream is spent afterwards.
  std::string Final();

 private:
  struct Context;
  std::unique_ptr<Context> context_;
};
std::string Md5Bytes(std::string_view data);

class PublicKey;

// An RSA (or other) private key.
class PrivateKey {
 public:
  // PEM: "BEGIN PRIVATE KEY" (PKCS#8) or "BEGIN RSA PRIVATE KEY" (PKCS#1). A bare Base64 body
  // without header lines (how Alipay's tools hand out keys) is tried as PKCS#8, then PKCS#1.
  static CryptoResult<PrivateKey> FromPem(std::string_view pem);
  static CryptoResult<PrivateKey> FromPemFile(const std::string& path);

  // RSASSA-PKCS1-v1_5 over `message` hashed with `digest`: the raw signature bytes.
  CryptoResult<std::string> Sign(Digest digest, std::string_view message) const;
  // RSA-OAEP (SHA-1, MGF1-SHA-1) decryption.
  CryptoResult<std::string> DecryptOaep(std::string_view ciphertext) const;
  PublicKey Public() const;

  struct Handle;
  explicit PrivateKey(std::shared_ptr<Handle> handle) : handle_(std::move(handle)) {}
  const Handle& handle() const { return *handle_; }

 private:
  std::shared_ptr<Handle> handle_;
};

class PublicKey {
 public:
  // PEM "BEGIN PUBLIC KEY" (SubjectPublicKeyInfo); a bare Base64 body is accepted too. A certificate's key comes from Certificate::Key.
  static CryptoResult<PublicKey> FromPem(std::string_view pem);
  static CryptoResult<PublicKey> FromPemFile(const std::string& path);

  // True only for a valid signature of exactly `message`; any malformed input is false.
  bool Verify(Digest digest, std::string_view message, std::string_view signature) const;
  // RSA-OAEP (SHA-1, MGF1-SHA-1) encryption.
  CryptoResult<std::string> EncryptOaep(std::string_view plaintext) const;

  struct Handle;
  explicit PublicKey(std::shared_ptr<Handle> handle) : handle_(std::move(handle)) {}
  const Handle& handle() const { return *handle_; }

 private:
  std::shared_ptr<Handle> handle_;
};

class Certificate {
 public:
  // One certificate: PEM or DER.
  static CryptoResult<Certificate> Parse(std::string_view pem_or_der);
  static CryptoResult<Certificate> FromFile(const std::string& path);
  // Every certificate in a PEM bundle, in file order (Alipay's root bundle holds several).
  static CryptoResult<std::vector<Certificate>> ParseBundle(std::string_view pem);

  PublicKey Key() const;
  // The serial number in upper-case hex, two digits per byte of its minimal encoding ("0C4AEF...":
  // WeChat Pay's serial_no form), and in decimal (UnionPay's certId).
  std::string SerialHex() const;
  std::string SerialDecimal() const;
  // Issuer and subject as OpenSSL's RFC 2253 one-line form ("CN=...,OU=...,O=...,C=...": most
  // specific RDN first), without escaping of UTF-8.
  std::string IssuerRfc2253() const;
  std::string SubjectRfc2253() const;
  // The dotted OID of the signature algorithm, e.g. "1.2.840.113549.1.1.11".
  std::string SignatureAlgorithmOid() const;
  std::chrono::system_clock::time_point NotBefore() const;
  std::chrono::system_clock::time_point NotAfter() const;
  std::string Pem() const;

  // Checks that this certificate chains to one of `roots` through `intermediates`, with every
  // validity period judged at `at` (provider test certificates are expired: tests pass a past
  // instant). The error says which check failed.
  CryptoResult<void> VerifyChain(const std::vector<Certificate>& intermediates,
                                        const std::vector<Certificate>& roots,
                                        std::chrono::system_clock::time_point at) const;

  struct Handle;
  explicit Certificate(std::shared_ptr<Handle> handle) : handle_(std::move(handle)) {}
  const Handle& handle() const { return *handle_; }

 private:
  std::shared_ptr<Handle> handle_;
};

// A PKCS#12 (.pfx/.p12) key store: the private key and its certificate.
struct KeyStore {
  PrivateKey key;
  Certificate certificate;
};
CryptoResult<KeyStore> ParsePkcs12(std::string_view der, std::string_view password);
CryptoResult<KeyStore> ReadPkcs12File(const std::string& path, std::string_view password);

// AES-GCM with a 16-byte tag appended to the ciphertext (WeChat Pay's AEAD_AES_256_GCM layout).
// The key length picks AES-128 (16 bytes) or AES-256 (32 bytes); other lengths are an error. The
// nonce may be any non-empty length (WeChat uses 12 ASCII bytes).
CryptoResult<std::string> AesGcmEncrypt(std::string_view key, std::string_view nonce,
                                               std::string_view aad, std::string_view plaintext);
// Fails (without returning any plaintext) when the tag does not authenticate.
CryptoResult<std::string> AesGcmDecrypt(std::string_view key, std::string_view nonce,
                                               std::string_view aad,
                                               std::string_view ciphertext_and_tag);

// Random bytes from OpenSSL's CSPRNG; aborts if the generator is unavailable.
std::string RandomBytes(std::size_t n);

}  // namespace paygate::adapters::crypto
