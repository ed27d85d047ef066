#pragma once

// AES-256-GCM with self-describing blobs: the one authenticated-encryption primitive behind field
// encryption, data-key wrapping and envelope-encrypted keys (DESIGN.md §6).
//
// Blob format 1 (all integers big-endian):
//   [0]        format byte, 0x01
//   [1]        n = length of the key name, 1..kKeyNameSizeMax
//   [2, 2+n)   key name (IsValidKeyName)
//   [2+n, +4)  key version, >= 1
//   [+12)      nonce, random
//   [...]      ciphertext, as long as the plaintext
//   [last 16]  GCM tag
// The GCM associated data is the header (format byte through version) followed by the caller's
// associated data, so neither the key named in a blob nor the row it belongs to can be changed
// without the tag failing.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/result.h"
#include "keys/errc.h"
#include "keys/secret.h"

struct evp_cipher_ctx_st;

namespace paygate::keys {

inline constexpr std::size_t kAeadKeySize = 32;
inline constexpr std::size_t kNonceSize = 12;
inline constexpr std::size_t kTagSize = 16;
inline constexpr std::uint8_t kBlobFormat = 1;
inline constexpr std::size_t kKeyNameSizeMax = 64;

// Lower-case letters, digits, '_', '-', '.' and '/', starting with a letter or digit, at most
// kKeyNameSizeMax characters: safe in blobs, file names, SQL values and log lines.
bool IsValidKeyName(std::string_view name);

struct BlobHeader {
  std::string_view key_name;  // Points into the parsed blob.
  std::uint32_t version = 0;
  std::size_t size = 0;  // Bytes of the header; the nonce follows.
};

// Parses and checks the header of a blob without decrypting it. Errors: bad_blob (too short to
// hold header, nonce and tag; unknown format; malformed name or version 0).
Result<BlobHeader> ParseBlobHeader(std::string_view blob);

// Fills `out` with bytes from OpenSSL's CSPRNG, drawn in chunks into a per-thread buffer so a
// 12-byte nonce does not pay for a full DRBG call (which costs more than the encryption of a short
// field). The buffer is discarded in a forked child, so parent and child never share nonces.
// Errors: crypto_failed.
Result<void> RandomBytes(std::span<unsigned char> out);

// One named, versioned AES-256 key. Thread-safe: Seal and Open may run concurrently from any
// threads. Each call borrows an OpenSSL context already keyed (the key schedule is computed once
// per context, not per call) from a small free list guarded by a mutex held only to pop and push;
// contexts are freed, and their key schedules cleansed, with the key.
class AeadKey {
 public:
  // Errors: bad_key_material (key not kAeadKeySize bytes, invalid name, version 0).
  static Result<std::unique_ptr<AeadKey>> Create(std::string name, std::uint32_t version,
                                                 const Secret& key);
  ~AeadKey();
  AeadKey(const AeadKey&) = delete;
  AeadKey& operator=(const AeadKey&) = delete;

  const std::string& name() const { return name_; }
  std::uint32_t version() const { return version_; }

  // A blob of `plaintext` under a fresh random nonce, bound to `aad`. Errors: crypto_failed.
  Result<std::string> Seal(std::string_view plaintext, std::string_view aad) const;
  // The plaintext of a blob sealed by this key with the same `aad`. Errors: bad_blob,
  // key_mismatch (header names another key or version), decrypt_failed.
  Result<std::string> Open(std::string_view blob, std::string_view aad) const;
  // Open() for a blob whose header the caller already parsed (and matched to this key).
  Result<std::string> OpenParsed(std::string_view blob, const BlobHeader& header,
                                 std::string_view aad) const;

 private:
  struct ContextPool {
    std::mutex mutex;
    std::vector<evp_cipher_ctx_st*> free;
  };
  class Lease;

  AeadKey(std::string name, std::uint32_t version);
  Result<Lease> Borrow(bool encrypt) const;

  std::string name_;
  std::uint32_t version_ = 0;
  std::string header_;  // The blob header of this key, precomputed.
  Secret key_;
  mutable ContextPool encrypt_pool_;
  mutable ContextPool decrypt_pool_;
};

}  // namespace paygate::keys
