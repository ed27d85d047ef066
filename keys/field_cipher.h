#pragma once

// FieldCipher: per-field encryption of personal data at rest (DESIGN.md §6, issue 7 "Field
// encryption"), e.g. a payout beneficiary's account number. AES-256-GCM (keys/aead.h) under a data
// key that has versions; the row identity is the associated data, so a ciphertext copied into
// another row or column fails to decrypt.
//
// The data key versions come from PostgreSQL, wrapped by the master key (LoadFieldCipher in
// keys/data_keys.h); this class itself does no I/O.
#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "config/result.h"
#include "keys/aead.h"
#include "keys/errc.h"
#include "keys/secret.h"

namespace paygate::keys {

struct DataKeyVersion {
  std::uint32_t version = 0;
  Secret key;  // kAeadKeySize bytes.
};

// Thread-safe: Encrypt, Decrypt and the accessors may run concurrently with each other and with
// AddVersions (a reader-writer lock, taken shared per call; no allocation beyond the result, no
// I/O). Once added, a version stays: blobs written under it must keep decrypting.
class FieldCipher {
 public:
  // A cipher for data key `name` holding `versions` (at least one; the highest is current).
  // Errors: bad_key_material (invalid name, no versions, a version 0 or twice, a key not 32 bytes).
  static Result<std::shared_ptr<FieldCipher>> Create(std::string name,
                                                     std::vector<DataKeyVersion> versions);

  // AES-256-GCM under the CURRENT version of the data key; `aad` is the row identity (e.g.
  // "payouts/po_123/beneficiary_account", see RowAad in keys/rewrap.h), so a ciphertext copied to
  // another row fails to decrypt. The blob is self-describing: format byte, data-key name+version,
  // 12-byte random nonce, ciphertext, tag (keys/aead.h). Errors: crypto_failed.
  Result<std::string> Encrypt(std::string_view plaintext, std::string_view aad) const;
  // Decrypts a blob written under any known version. Errors: bad_blob, key_mismatch (another data
  // key's blob), unknown_key_version (written under a version rotated in after this cipher was last
  // loaded: reload, see ReloadFieldCipher/DecryptReloading, and try again), decrypt_failed (wrong
  // aad, tampered bytes, or the key material differs from the writer's).
  Result<std::string> Decrypt(std::string_view blob, std::string_view aad) const;
  // The version a blob was written under (for rewrap), without decrypting. Errors: bad_blob.
  static Result<std::uint32_t> BlobVersion(std::string_view blob);

  const std::string& name() const { return name_; }
  std::uint32_t current_version() const;
  // Every loaded version, ascending.
  std::vector<std::uint32_t> versions() const;

  // Adds the versions not loaded yet (a reload after a rotation); the highest becomes current.
  // Versions already loaded are skipped. Returns how many were added. Errors: bad_key_material
  // (nothing is added then).
  Result<std::size_t> AddVersions(std::vector<DataKeyVersion> versions);

 private:
  explicit FieldCipher(std::string name) : name_(std::move(name)) {}

  const std::string name_;
  mutable std::shared_mutex mutex_;
  std::map<std::uint32_t, std::unique_ptr<AeadKey>> keys_;  // Guarded by mutex_.
  const AeadKey* current_ = nullptr;                        // Guarded by mutex_.
};

}  // namespace paygate::keys
