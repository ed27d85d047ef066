#include "adapters/common/crypto.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <cstdlib>
#include <ctime>
#include <mutex>

#include "adapters/common/codec.h"
#include "config/file.h"

namespace paygate::adapters::crypto {

struct PrivateKey::Handle {
  EVP_PKEY* key = nullptr;
  ~Handle() { EVP_PKEY_free(key); }
};
struct PublicKey::Handle {
  EVP_PKEY* key = nullptr;
  ~Handle() { EVP_PKEY_free(key); }
};
struct Certificate::Handle {
  X509* cert = nullptr;
  ~Handle() { X509_free(cert); }
};

namespace {

// The newest OpenSSL error as text, and the queue cleared so it cannot leak into a later call.
Error OpenSslError(std::string_view what) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  std::string out(what);
  if (code != 0) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    out += ": ";
    out += buffer;
  }
  return Error{std::move(out)};
}

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

BioPtr MemoryBio(std::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* ctx) const { EVP_PKEY_CTX_free(ctx); }
};
struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};

const EVP_MD* Md(Digest digest) {
  return digest == Digest::kSha1 ? EVP_sha1() : EVP_sha256();
}

CryptoResult<std::string> ReadFile(const std::string& path) {
  auto content = config::ReadWholeFile(path);
  if (!content) return Error{"cannot read " + path};
  return std::move(*content);
}

// Wraps a bare Base64 body in PEM lines under `label`.
std::string WrapPem(std::string_view body, std::string_view label) {
  std::string clean;
  for (const char c : body) {
    if (c != '\n' && c != '\r' && c != ' ' && c != '\t') clean.push_back(c);
  }
  std::string out = "-----BEGIN " + std::string(label) + "-----\n";
  for (std::size_t i = 0; i < clean.size(); i += 64) {
    out += clean.substr(i, 64);
    out += '\n';
  }
  out += "-----END " + std::string(label) + "-----\n";
  return out;
}

bool LooksLikePem(std::string_view text) { return text.find("-----BEGIN ") != std::string_view::npos; }

EVP_PKEY* ReadPrivatePem(std::string_view pem) {
  auto bio = MemoryBio(pem);
  return PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
}

EVP_PKEY* ReadPublicPem(std::string_view pem) {
  auto bio = MemoryBio(pem);
  return PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
}

std::chrono::system_clock::time_point FromAsn1Time(const ASN1_TIME* time) {
  struct tm parts {};
  if (time == nullptr || ASN1_TIME_to_tm(time, &parts) != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&parts));
}

std::string NameRfc2253(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  // RFC 2253 order, but UTF-8 left unescaped: providers hash the readable form.
  const unsigned long flags = (XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) | ASN1_STRFLGS_UTF8_CONVERT;
  X509_NAME_print_ex(bio.get(), name, 0, flags);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

CryptoResult<std::string> SealOrOpen(bool encrypt, std::string_view key,
                                            std::string_view nonce, std::string_view aad,
                                            std::string_view input) {
  constexpr std::size_t kTag = 16;
  const EVP_CIPHER* cipher = nullptr;
  if (key.size() == 16) cipher = EVP_aes_128_gcm();
  if (key.size() == 32) cipher = EVP_aes_256_gcm();
  if (cipher == nullptr) return Error{"AES-GCM key must be 16 or 32 bytes"};
  if (nonce.empty()) return Error{"AES-GCM nonce is empty"};
  if (!encrypt && input.size() < kTag) return Error{"AES-GCM ciphertext shorter than its tag"};
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter> ctx(EVP_CIPHER_CTX_new());
  const std::string_view body = encrypt ? input : input.substr(0, input.size() - kTag);
  std::string out(body.size(), '\0');
  int n = 0;
  const auto* key_bytes = reinterpret_cast<const unsigned char*>(key.data());
  const auto* iv = reinterpret_cast<const unsigned char*>(nonce.data());
  if (EVP_CipherInit_ex(ctx.get(), cipher, nullptr, nullptr, nullptr, encrypt ? 1 : 0) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()),
                          nullptr) != 1 ||
      EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, key_bytes, iv, -1) != 1) {
    return OpenSslError("AES-GCM init");
  }
  if (!aad.empty() &&
      EVP_CipherUpdate(ctx.get(), nullptr, &n, reinterpret_cast<const unsigned char*>(aad.data()),
                       static_cast<int>(aad.size())) != 1) {
    return OpenSslError("AES-GCM aad");
  }
  if (!body.empty() &&
      EVP_CipherUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &n,
                       reinterpret_cast<const unsigned char*>(body.data()),
                       static_cast<int>(body.size())) != 1) {
    return OpenSslError("AES-GCM update");
  }
  if (!encrypt) {
    std::string tag(input.substr(input.size() - kTag));
    if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTag), tag.data()) !=
        1) {
      return OpenSslError("AES-GCM tag");
    }
  }
  int final_n = 0;
  if (EVP_CipherFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + n, &final_n) !=
      1) {
    ERR_clear_error();
    return Error{"AES-GCM authentication failed"};
  }
  if (encrypt) {
    std::string tag(kTag, '\0');
    if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTag), tag.data()) !=
        1) {
      return OpenSslError("AES-GCM tag");
    }
    out += tag;
  }
  return out;
}

}  // namespace

std::string DigestBytes(Digest digest, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), out, &size, Md(digest), nullptr) != 1) std::abort();
  return std::string(reinterpret_cast<const char*>(out), size);
}

struct DigestStream::Context {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), &EVP_MD_CTX_free};
};

DigestStream::DigestStream(Digest digest) : context_(std::make_unique<Context>()) {
  // Only allocation failure makes these fail, like EVP_Digest in DigestBytes.
  if (!context_->ctx || EVP_DigestInit_ex(context_->ctx.get(), Md(digest), nullptr) != 1) {
    std::abort();
  }
}

DigestStream::~DigestStream() = default;

void DigestStream::Update(std::string_view data) {
  if (EVP_DigestUpdate(context_->ctx.get(), data.data(), data.size()) != 1) std::abort();
}

std::string DigestStream::Final() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_DigestFinal_ex(context_->ctx.get(), out, &size) != 1) std::abort();
  return std::string(reinterpret_cast<const char*>(out), size);
}

std::string Md5Bytes(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), out, &size, EVP_md5(), nullptr) != 1) std::abort();
  return std::string(reinterpret_cast<const char*>(out), size);
}

// ---- PrivateKey

CryptoResult<PrivateKey> PrivateKey::FromPem(std::string_view pem) {
  EVP_PKEY* key = nullptr;
  if (LooksLikePem(pem)) {
    key = ReadPrivatePem(pem);
  } else {
    key = ReadPrivatePem(WrapPem(pem, "PRIVATE KEY"));
    if (key == nullptr) {
      ERR_clear_error();
      key = ReadPrivatePem(WrapPem(pem, "RSA PRIVATE KEY"));
    }
  }
  if (key == nullptr) return OpenSslError("cannot parse private key");
  auto handle = std::make_shared<Handle>();
  handle->key = key;
  return PrivateKey(std::move(handle));
}

CryptoResult<PrivateKey> PrivateKey::FromPemFile(const std::string& path) {
  auto content = ReadFile(path);
  if (!content) return content.error();
  return FromPem(content.value());
}

CryptoResult<std::string> PrivateKey::Sign(Digest digest, std::string_view message) const {
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (EVP_DigestSignInit(ctx.get(), &pctx, Md(digest), nullptr, handle_->key) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
    return OpenSslError("sign init");
  }
  std::size_t size = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &size,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return OpenSslError("sign");
  }
  std::string out(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &size,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return OpenSslError("sign");
  }
  out.resize(size);
  return out;
}

CryptoResult<std::string> PrivateKey::DecryptOaep(std::string_view ciphertext) const {
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> ctx(EVP_PKEY_CTX_new(handle_->key, nullptr));
  if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha1()) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha1()) != 1) {
    return OpenSslError("OAEP init");
  }
  const auto* in = reinterpret_cast<const unsigned char*>(ciphertext.data());
  std::size_t size = 0;
  if (EVP_PKEY_decrypt(ctx.get(), nullptr, &size, in, ciphertext.size()) != 1) {
    return OpenSslError("OAEP decrypt");
  }
  std::string out(size, '\0');
  if (EVP_PKEY_decrypt(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &size, in,
                       ciphertext.size()) != 1) {
    return OpenSslError("OAEP decrypt");
  }
  out.resize(size);
  return out;
}

PublicKey PrivateKey::Public() const {
  // An EVP_PKEY holding a private key verifies and encrypts as its public half.
  EVP_PKEY_up_ref(handle_->key);
  auto handle = std::make_shared<PublicKey::Handle>();
  handle->key = handle_->key;
  return PublicKey(std::move(handle));
}

// ---- PublicKey

CryptoResult<PublicKey> PublicKey::FromPem(std::string_view pem) {
  EVP_PKEY* key = LooksLikePem(pem) ? ReadPublicPem(pem) : ReadPublicPem(WrapPem(pem, "PUBLIC KEY"));
  if (key == nullptr) return OpenSslError("cannot parse public key");
  auto handle = std::make_shared<Handle>();
  handle->key = key;
  return PublicKey(std::move(handle));
}

CryptoResult<PublicKey> PublicKey::FromPemFile(const std::string& path) {
  auto content = ReadFile(path);
  if (!content) return content.error();
  return FromPem(content.value());
}

bool PublicKey::Verify(Digest digest, std::string_view message, std::string_view signature) const {
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (EVP_DigestVerifyInit(ctx.get(), &pctx, Md(digest), nullptr, handle_->key) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
    ERR_clear_error();
    return false;
  }
  const int ok = EVP_DigestVerify(
      ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
      reinterpret_cast<const unsigned char*>(message.data()), message.size());
  ERR_clear_error();
  return ok == 1;
}

CryptoResult<std::string> PublicKey::EncryptOaep(std::string_view plaintext) const {
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> ctx(EVP_PKEY_CTX_new(handle_->key, nullptr));
  if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha1()) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha1()) != 1) {
    return OpenSslError("OAEP init");
  }
  const auto* in = reinterpret_cast<const unsigned char*>(plaintext.data());
  std::size_t size = 0;
  if (EVP_PKEY_encrypt(ctx.get(), nullptr, &size, in, plaintext.size()) != 1) {
    return OpenSslError("OAEP encrypt");
  }
  std::string out(size, '\0');
  if (EVP_PKEY_encrypt(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &size, in,
                       plaintext.size()) != 1) {
    return OpenSslError("OAEP encrypt");
  }
  out.resize(size);
  return out;
}

// ---- Certificate

CryptoResult<Certificate> Certificate::Parse(std::string_view pem_or_der) {
  X509* cert = nullptr;
  if (LooksLikePem(pem_or_der)) {
    auto bio = MemoryBio(pem_or_der);
    cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
  } else {
    const auto* p = reinterpret_cast<const unsigned char*>(pem_or_der.data());
    cert = d2i_X509(nullptr, &p, static_cast<long>(pem_or_der.size()));
  }
  if (cert == nullptr) return OpenSslError("cannot parse certificate");
  auto handle = std::make_shared<Handle>();
  handle->cert = cert;
  return Certificate(std::move(handle));
}

CryptoResult<Certificate> Certificate::FromFile(const std::string& path) {
  auto content = ReadFile(path);
  if (!content) return content.error();
  return Parse(content.value());
}

CryptoResult<std::vector<Certificate>> Certificate::ParseBundle(std::string_view pem) {
  std::vector<Certificate> out;
  auto bio = MemoryBio(pem);
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    auto handle = std::make_shared<Handle>();
    handle->cert = cert;
    out.emplace_back(std::move(handle));
  }
  // The loop ends on "no more PEM": expected, not an error.
  ERR_clear_error();
  if (out.empty()) return Error{"no certificate in bundle"};
  return out;
}

PublicKey Certificate::Key() const {
  auto handle = std::make_shared<PublicKey::Handle>();
  handle->key = X509_get_pubkey(handle_->cert);  // a new reference
  return PublicKey(std::move(handle));
}

std::string Certificate::SerialHex() const {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(handle_->cert), nullptr);
  char* text = BN_bn2hex(bn);
  std::string out(text);
  OPENSSL_free(text);
  BN_free(bn);
  return out;
}

std::string Certificate::SerialDecimal() const {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(handle_->cert), nullptr);
  char* text = BN_bn2dec(bn);
  std::string out(text);
  OPENSSL_free(text);
  BN_free(bn);
  return out;
}

std::string Certificate::IssuerRfc2253() const {
  return NameRfc2253(X509_get_issuer_name(handle_->cert));
}

std::string Certificate::SubjectRfc2253() const {
  return NameRfc2253(X509_get_subject_name(handle_->cert));
}

std::string Certificate::SignatureAlgorithmOid() const {
  const int nid = X509_get_signature_nid(handle_->cert);
  char text[128];
  const ASN1_OBJECT* object = OBJ_nid2obj(nid);
  if (object == nullptr) {
    // Unknown to OpenSSL: read the OID from the certificate itself.
    const X509_ALGOR* algorithm = nullptr;
    X509_get0_signature(nullptr, &algorithm, handle_->cert);
    const ASN1_OBJECT* raw = nullptr;
    X509_ALGOR_get0(&raw, nullptr, nullptr, algorithm);
    object = raw;
  }
  OBJ_obj2txt(text, sizeof text, object, 1);
  return text;
}

std::chrono::system_clock::time_point Certificate::NotBefore() const {
  return FromAsn1Time(X509_get0_notBefore(handle_->cert));
}

std::chrono::system_clock::time_point Certificate::NotAfter() const {
  return FromAsn1Time(X509_get0_notAfter(handle_->cert));
}

std::string Certificate::Pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), handle_->cert);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

CryptoResult<void> Certificate::VerifyChain(
    const std::vector<Certificate>& intermediates, const std::vector<Certificate>& roots,
    std::chrono::system_clock::time_point at) const {
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(),
                                                                &X509_STORE_free);
  for (const auto& root : roots) X509_STORE_add_cert(store.get(), root.handle_->cert);
  struct StackDeleter {
    void operator()(STACK_OF(X509) * stack) const { sk_X509_free(stack); }
  };
  std::unique_ptr<STACK_OF(X509), StackDeleter> chain(sk_X509_new_null());
  for (const auto& middle : intermediates) sk_X509_push(chain.get(), middle.handle_->cert);
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(),
                                                                      &X509_STORE_CTX_free);
  if (X509_STORE_CTX_init(ctx.get(), store.get(), handle_->cert, chain.get()) != 1) {
    return OpenSslError("chain init");
  }
  X509_STORE_CTX_set_time(ctx.get(), 0, std::chrono::system_clock::to_time_t(at));
  if (X509_verify_cert(ctx.get()) != 1) {
    const int error = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return Error{std::string("certificate chain: ") + X509_verify_cert_error_string(error)};
  }
  return outcome::success();
}

// ---- PKCS#12

namespace {

// Providers' test key stores (UnionPay's .pfx) protect their keys with RC2-40, which OpenSSL 3 keeps
// in its legacy provider. Loading any provider explicitly stops OpenSSL from loading the default
// one implicitly, so both are loaded, once per process. Without the legacy module only such stores
// fail to open. The providers stay loaded for the process's life; their handles are kept, so the
// loaded modules stay reachable (and LeakSanitizer does not report them).
void EnsureLegacyProvider() {
  static std::once_flag once;
  [[maybe_unused]] static OSSL_PROVIDER* legacy = nullptr;
  [[maybe_unused]] static OSSL_PROVIDER* standard = nullptr;
  std::call_once(once, [] {
    legacy = OSSL_PROVIDER_load(nullptr, "legacy");
    standard = OSSL_PROVIDER_load(nullptr, "default");
    ERR_clear_error();
  });
}

}  // namespace

CryptoResult<KeyStore> ParsePkcs12(std::string_view der, std::string_view password) {
  EnsureLegacyProvider();
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  PKCS12* p12 = d2i_PKCS12(nullptr, &p, static_cast<long>(der.size()));
  if (p12 == nullptr) return OpenSslError("cannot parse PKCS#12");
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  STACK_OF(X509)* extra = nullptr;
  const std::string pass(password);
  const int ok = PKCS12_parse(p12, pass.c_str(), &key, &cert, &extra);
  PKCS12_free(p12);
  sk_X509_pop_free(extra, X509_free);
  if (ok != 1 || key == nullptr || cert == nullptr) {
    EVP_PKEY_free(key);
    X509_free(cert);
    return OpenSslError("cannot open PKCS#12 (wrong password or unsupported cipher)");
  }
  auto key_handle = std::make_shared<PrivateKey::Handle>();
  key_handle->key = key;
  auto cert_handle = std::make_shared<Certificate::Handle>();
  cert_handle->cert = cert;
  return KeyStore{PrivateKey(std::move(key_handle)), Certificate(std::move(cert_handle))};
}

CryptoResult<KeyStore> ReadPkcs12File(const std::string& path, std::string_view password) {
  auto content = ReadFile(path);
  if (!content) return content.error();
  return ParsePkcs12(content.value(), password);
}

// ---- AES-GCM, random

CryptoResult<std::string> AesGcmEncrypt(std::string_view key, std::string_view nonce,
                                               std::string_view aad, std::string_view plaintext) {
  return SealOrOpen(true, key, nonce, aad, plaintext);
}

CryptoResult<std::string> AesGcmDecrypt(std::string_view key, std::string_view nonce,
                                               std::string_view aad,
                                               std::string_view ciphertext_and_tag) {
  return SealOrOpen(false, key, nonce, aad, ciphertext_and_tag);
}

std::string RandomBytes(std::size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    std::abort();
  }
  return out;
}

}  // namespace paygate::adapters::crypto
