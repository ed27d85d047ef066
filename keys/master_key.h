#pragma once

// MasterKey: the key-encryption key at the root of paygate's key hierarchy (DESIGN.md §6). It never
// encrypts data itself: it wraps data keys (stored wrapped in PostgreSQL, see keys/data_keys.h) and
// envelope-encrypted keys of the keyring (keys/keyring.h), so rotating or moving data never needs
// the master key outside the daemon's memory.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "config/result.h"
#include "keys/aead.h"
#include "keys/errc.h"
#include "keys/secret.h"

namespace paygate::keys {

// Immutable and thread-safe; copies share one key.
class MasterKey {
 public:
  // From a file of 64 hex digits (`openssl rand -hex 32 > master.key; chmod 600 master.key`),
  // refused like any secret file when group- or world-accessible (ReadSecretFile's errors), or
  // bad_key_material when it does not hold exactly 32 hex-encoded bytes. `id` and `version` name
  // the key in every blob it wraps, so a blob wrapped by another master key fails clearly
  // (key_mismatch) instead of as a failed tag.
  static Result<MasterKey> FromFile(std::string id, std::uint32_t version,
                                    const std::filesystem::path& path);
  // From 32 raw bytes (tests, PKCS#11 later). Errors: bad_key_material.
  static Result<MasterKey> FromBytes(std::string id, std::uint32_t version, const Secret& key);

  const std::string& id() const { return key_->name(); }
  std::uint32_t version() const { return key_->version(); }

  // Seals `plaintext` (a key) bound to `aad`, which names what is wrapped (its id and version), so
  // a wrapped key cannot be passed off as another. Errors: crypto_failed.
  Result<std::string> Wrap(const Secret& plaintext, std::string_view aad) const;
  // Errors: bad_blob, key_mismatch (wrapped by another master key or version), decrypt_failed.
  Result<Secret> Unwrap(std::string_view blob, std::string_view aad) const;

 private:
  explicit MasterKey(std::shared_ptr<const AeadKey> key) : key_(std::move(key)) {}
  std::shared_ptr<const AeadKey> key_;
};

// Decodes 2*N hex digits into N bytes; bad_key_material on odd length or a non-hex character.
Result<Secret> SecretFromHex(std::string_view hex);

}  // namespace paygate::keys
