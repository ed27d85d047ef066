#pragma once

// Secret: bytes that must never be printed or logged (passwords, API keys, private keys).
#include <cstddef>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace paygate::keys {

// Owns a copy of sensitive bytes. Guarantees:
//   - printing it (operator<<, fmt/spdlog) yields "***", so a secret passed to a log call by
//     mistake does not leak; the bytes are only reachable through reveal(), easy to find in
//     review;
//   - the bytes are overwritten (OPENSSL_cleanse, which the compiler may not elide) when the
//     Secret is destroyed or assigned over, so they do not linger in freed heap memory;
//   - move-only, so the bytes exist in one place; a moved-from Secret is empty;
//   - comparison (operator==, SecretEquals) takes time independent of where the bytes differ
//     (CRYPTO_memcmp), so a comparison against an attacker's guess reveals nothing but the length.
// Not thread-safe for concurrent mutation; const access from several threads is safe.
class Secret {
 public:
  Secret() = default;
  // Copies `bytes`; the caller remains responsible for its own copy.
  explicit Secret(std::string_view bytes);
  // Copies `bytes` and cleanses the source string, so the caller does not keep a stray copy.
  explicit Secret(std::string&& bytes);

  Secret(Secret&& other) noexcept;
  Secret& operator=(Secret&& other) noexcept;
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  ~Secret();

  // The secret bytes, valid until this Secret is destroyed, moved from or assigned to.
  std::string_view reveal() const noexcept { return {data_.get(), size_}; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

 private:
  void Wipe() noexcept;

  // A plain heap buffer rather than std::string: a string may reallocate or keep bytes inline (SSO)
  // where a wipe of data() would miss earlier copies.
  std::unique_ptr<char[]> data_;
  std::size_t size_ = 0;
};

std::ostream& operator<<(std::ostream& out, const Secret& secret);

// Equal bytes, compared in time independent of their contents. The sizes are compared first and are
// not secret (a key's length is public; a password's length leaks only through this).
bool operator==(const Secret& a, const Secret& b) noexcept;
// The same against candidate bytes, e.g. a presented token.
bool SecretEquals(const Secret& secret, std::string_view candidate) noexcept;

}  // namespace paygate::keys

// fmt (and therefore spdlog) prints a Secret as "***"; format specs such as width still apply.
template <>
struct fmt::formatter<paygate::keys::Secret> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const paygate::keys::Secret& /*secret*/, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format("***", ctx);
  }
};
