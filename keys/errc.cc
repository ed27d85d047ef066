#include "keys/errc.h"

#include <string>

namespace paygate::keys {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "paygate.keys"; }

  std::string message(int value) const override {
    switch (static_cast<Errc>(value)) {
      case Errc::not_found:
        return "file not found";
      case Errc::not_regular_file:
        return "not a regular file";
      case Errc::permissions_too_open:
        return "file is accessible by group or others; chmod 600 (or 400) it";
      case Errc::read_failed:
        return "file could not be read";
      case Errc::too_large:
        return "file is too large to be a secret";
      case Errc::empty:
        return "file is empty";
      case Errc::bad_key_material:
        return "key material of the wrong size or encoding";
      case Errc::bad_blob:
        return "not an encrypted blob of a known format";
      case Errc::key_mismatch:
        return "blob was encrypted under another key";
      case Errc::unknown_key_version:
        return "blob names a key version that is not loaded";
      case Errc::decrypt_failed:
        return "decryption failed: wrong key, wrong associated data or tampered bytes";
      case Errc::crypto_failed:
        return "cryptographic library failure";
      case Errc::unknown_key:
        return "no such key id in the keyring";
      case Errc::duplicate_key:
        return "key id and version configured twice";
    }
    return "unknown keys error";
  }
};

}  // namespace

const std::error_category& ErrorCategory() noexcept {
  static const Category category;
  return category;
}

std::error_code make_error_code(Errc e) noexcept { return {static_cast<int>(e), ErrorCategory()}; }

}  // namespace paygate::keys
