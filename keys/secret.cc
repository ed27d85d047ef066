#include "keys/secret.h"

#include <cstring>
#include <utility>

#include <openssl/crypto.h>

namespace paygate::keys {

Secret::Secret(std::string_view bytes) : size_(bytes.size()) {
  if (size_ == 0) return;
  data_ = std::make_unique<char[]>(size_);
  std::memcpy(data_.get(), bytes.data(), size_);
}

Secret::Secret(std::string&& bytes) : Secret(std::string_view(bytes)) {
  // Cleanse the whole capacity: the string may have held longer contents before.
  OPENSSL_cleanse(bytes.data(), bytes.capacity());
  bytes.clear();
}

Secret::Secret(Secret&& other) noexcept
    : data_(std::move(other.data_)), size_(std::exchange(other.size_, 0)) {}

Secret& Secret::operator=(Secret&& other) noexcept {
  if (this != &other) {
    Wipe();
    data_ = std::move(other.data_);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Secret::~Secret() { Wipe(); }

void Secret::Wipe() noexcept {
  if (data_ != nullptr) OPENSSL_cleanse(data_.get(), size_);
  data_.reset();
  size_ = 0;
}

std::ostream& operator<<(std::ostream& out, const Secret& /*secret*/) { return out << "***"; }

bool SecretEquals(const Secret& secret, std::string_view candidate) noexcept {
  if (secret.size() != candidate.size()) return false;
  if (candidate.empty()) return true;
  return CRYPTO_memcmp(secret.reveal().data(), candidate.data(), candidate.size()) == 0;
}

bool operator==(const Secret& a, const Secret& b) noexcept { return SecretEquals(a, b.reveal()); }

}  // namespace paygate::keys
