#include "keys/aead.h"

#include <pthread.h>

#include <array>
#include <atomic>
#include <cstring>
#include <utility>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace paygate::keys {
namespace {

// Incremented in a forked child; a per-thread random buffer filled in another generation is stale.
std::atomic<std::uint64_t> fork_generation{0};

void OnForkChild() { fork_generation.fetch_add(1, std::memory_order_relaxed); }

struct RandomBuffer {
  static constexpr std::size_t kSize = 4096;
  std::array<unsigned char, kSize> bytes{};
  std::size_t used = kSize;  // Empty until first filled.
  std::uint64_t generation = 0;

  ~RandomBuffer() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
};

// Fetched once: EVP_aes_256_gcm() would look the implementation up in the provider on every init.
const EVP_CIPHER* Aes256Gcm() {
  static EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

void PutU32(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

bool IsValidKeyName(std::string_view name) {
  if (name.empty() || name.size() > kKeyNameSizeMax) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '_' && c != '-' && c != '.' && c != '/'))) return false;
  }
  return true;
}

Result<BlobHeader> ParseBlobHeader(std::string_view blob) {
  if (blob.size() < 2 || static_cast<std::uint8_t>(blob[0]) != kBlobFormat) return Errc::bad_blob;
  const std::size_t name_size = static_cast<std::uint8_t>(blob[1]);
  BlobHeader header;
  header.size = 2 + name_size + 4;
  if (blob.size() < header.size + kNonceSize + kTagSize) return Errc::bad_blob;
  header.key_name = blob.substr(2, name_size);
  if (!IsValidKeyName(header.key_name)) return Errc::bad_blob;
  const auto* v = Bytes(blob.substr(2 + name_size, 4));
  header.version = (std::uint32_t{v[0]} << 24) | (std::uint32_t{v[1]} << 16) |
                   (std::uint32_t{v[2]} << 8) | std::uint32_t{v[3]};
  if (header.version == 0) return Errc::bad_blob;
  return header;
}

Result<void> RandomBytes(std::span<unsigned char> out) {
  static std::once_flag registered;
  std::call_once(registered, [] { ::pthread_atfork(nullptr, nullptr, OnForkChild); });
  thread_local RandomBuffer buffer;
  const std::uint64_t generation = fork_generation.load(std::memory_order_relaxed);
  if (out.size() > RandomBuffer::kSize / 4) {
    if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) return Errc::crypto_failed;
    return outcome::success();
  }
  if (buffer.generation != generation || RandomBuffer::kSize - buffer.used < out.size()) {
    if (RAND_bytes(buffer.bytes.data(), static_cast<int>(buffer.bytes.size())) != 1) {
      return Errc::crypto_failed;
    }
    buffer.used = 0;
    buffer.generation = generation;
  }
  std::memcpy(out.data(), buffer.bytes.data() + buffer.used, out.size());
  // Each byte is handed out once: wipe it, so a later memory disclosure does not reveal used nonces'
  // neighbours either.
  OPENSSL_cleanse(buffer.bytes.data() + buffer.used, out.size());
  buffer.used += out.size();
  return outcome::success();
}

// Returns the borrowed context to its pool on every path.
class AeadKey::Lease {
 public:
  Lease(ContextPool* pool, EVP_CIPHER_CTX* ctx) : pool_(pool), ctx_(ctx) {}
  Lease(Lease&& other) noexcept
      : pool_(other.pool_), ctx_(std::exchange(other.ctx_, nullptr)) {}
  Lease& operator=(Lease&&) = delete;
  ~Lease() {
    if (ctx_ == nullptr) return;
    const std::lock_guard lock(pool_->mutex);
    pool_->free.push_back(ctx_);
  }
  EVP_CIPHER_CTX* get() const { return ctx_; }

 private:
  ContextPool* pool_;
  EVP_CIPHER_CTX* ctx_;
};

AeadKey::AeadKey(std::string name, std::uint32_t version)
    : name_(std::move(name)), version_(version) {
  header_.push_back(static_cast<char>(kBlobFormat));
  header_.push_back(static_cast<char>(name_.size()));
  header_ += name_;
  PutU32(header_, version_);
}

AeadKey::~AeadKey() {
  // EVP_CIPHER_CTX_free cleanses the key schedule held in the context.
  for (auto* pool : {&encrypt_pool_, &decrypt_pool_}) {
    for (EVP_CIPHER_CTX* ctx : pool->free) EVP_CIPHER_CTX_free(ctx);
  }
}

Result<std::unique_ptr<AeadKey>> AeadKey::Create(std::string name, std::uint32_t version,
                                                 const Secret& key) {
  if (key.size() != kAeadKeySize || !IsValidKeyName(name) || version == 0) {
    return Errc::bad_key_material;
  }
  if (Aes256Gcm() == nullptr) return Errc::crypto_failed;
  std::unique_ptr<AeadKey> out(new AeadKey(std::move(name), version));
  out->key_ = Secret(key.reveal());
  return out;
}

Result<AeadKey::Lease> AeadKey::Borrow(bool encrypt) const {
  ContextPool& pool = encrypt ? encrypt_pool_ : decrypt_pool_;
  {
    const std::lock_guard lock(pool.mutex);
    if (!pool.free.empty()) {
      EVP_CIPHER_CTX* ctx = pool.free.back();
      pool.free.pop_back();
      return Lease(&pool, ctx);
    }
  }
  // A new context, keyed once; later calls only set the nonce. Contexts only grow to the number of
  // threads that used the key at the same time.
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr) return Errc::crypto_failed;
  if (EVP_CipherInit_ex(ctx, Aes256Gcm(), nullptr, Bytes(key_.reveal()), nullptr,
                        encrypt ? 1 : 0) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceSize), nullptr) !=
          1) {
    EVP_CIPHER_CTX_free(ctx);
    return Errc::crypto_failed;
  }
  return Lease(&pool, ctx);
}

Result<std::string> AeadKey::Seal(std::string_view plaintext, std::string_view aad) const {
  std::string out;
  out.resize(header_.size() + kNonceSize + plaintext.size() + kTagSize);
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  std::memcpy(p, header_.data(), header_.size());
  unsigned char* nonce = p + header_.size();
  BOOST_OUTCOME_TRY(RandomBytes({nonce, kNonceSize}));
  unsigned char* ciphertext = nonce + kNonceSize;

  BOOST_OUTCOME_TRY(lease, Borrow(true));
  EVP_CIPHER_CTX* ctx = lease.get();
  int n = 0;
  int final_n = 0;
  if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce) != 1 ||
      EVP_EncryptUpdate(ctx, nullptr, &n, Bytes(header_), static_cast<int>(header_.size())) != 1 ||
      (!aad.empty() &&
       EVP_EncryptUpdate(ctx, nullptr, &n, Bytes(aad), static_cast<int>(aad.size())) != 1) ||
      EVP_EncryptUpdate(ctx, ciphertext, &n, Bytes(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx, ciphertext + n, &final_n) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagSize),
                          ciphertext + plaintext.size()) != 1) {
    return Errc::crypto_failed;
  }
  return out;
}

Result<std::string> AeadKey::Open(std::string_view blob, std::string_view aad) const {
  BOOST_OUTCOME_TRY(header, ParseBlobHeader(blob));
  if (header.key_name != name_ || header.version != version_) return Errc::key_mismatch;
  return OpenParsed(blob, header, aad);
}

Result<std::string> AeadKey::OpenParsed(std::string_view blob, const BlobHeader& header,
                                        std::string_view aad) const {
  const std::string_view header_bytes = blob.substr(0, header.size);
  const auto* nonce = Bytes(blob.substr(header.size, kNonceSize));
  const std::size_t ciphertext_size = blob.size() - header.size - kNonceSize - kTagSize;
  const std::string_view ciphertext = blob.substr(header.size + kNonceSize, ciphertext_size);
  // EVP_CTRL_GCM_SET_TAG takes a non-const pointer; copy the tag out of the caller's view.
  std::array<unsigned char, kTagSize> tag{};
  std::memcpy(tag.data(), blob.data() + blob.size() - kTagSize, kTagSize);

  std::string plaintext(ciphertext_size, '\0');
  BOOST_OUTCOME_TRY(lease, Borrow(false));
  EVP_CIPHER_CTX* ctx = lease.get();
  int n = 0;
  int final_n = 0;
  if (EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce) != 1 ||
      EVP_DecryptUpdate(ctx, nullptr, &n, Bytes(header_bytes),
                        static_cast<int>(header_bytes.size())) != 1 ||
      (!aad.empty() &&
       EVP_DecryptUpdate(ctx, nullptr, &n, Bytes(aad), static_cast<int>(aad.size())) != 1) ||
      EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(plaintext.data()), &n,
                        Bytes(ciphertext), static_cast<int>(ciphertext.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagSize), tag.data()) !=
          1) {
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return Errc::crypto_failed;
  }
  if (EVP_DecryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(plaintext.data()) + n,
                          &final_n) != 1) {
    // Unauthenticated plaintext is never handed out.
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return Errc::decrypt_failed;
  }
  return plaintext;
}

}  // namespace paygate::keys
