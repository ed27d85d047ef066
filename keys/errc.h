#pragma once

// Error codes of the keys module (STYLE.md "Errors and async": one enum and category per module).
#include <system_error>
#include <type_traits>

namespace paygate::keys {

enum class Errc {
  // The file does not exist (0 is reserved for success by std::error_code).
  not_found = 1,
  // A directory, FIFO, device or socket where a key or secret file was expected.
  not_regular_file,
  // Readable or writable by group or others (mode & 077 != 0).
  permissions_too_open,
  // The file exists but could not be opened or read.
  read_failed,
  // Larger than kSecretFileSizeMax: not a secret file.
  too_large,
  // No bytes left after stripping the trailing newline.
  empty,
  // Key material of the wrong size or encoding (an AES-256 key is 32 bytes; a master key file holds
  // 64 hex digits), or a key name or version outside its syntax.
  bad_key_material,
  // Not an encrypted blob of a known format: too short, unknown format byte, malformed header.
  bad_blob,
  // The blob was written under another key (its header names a different key).
  key_mismatch,
  // The blob names a version of the key that is not loaded (rotated after the last reload?).
  unknown_key_version,
  // Authentication failed: wrong key, wrong associated data (a blob copied to another row), or
  // tampered bytes. Deliberately one code: which of these it was is not knowable.
  decrypt_failed,
  // OpenSSL failed for a reason other than authentication (allocation, RNG).
  crypto_failed,
  // The keyring has no key with this id.
  unknown_key,
  // The same key id and version twice in a keyring.
  duplicate_key,
};

const std::error_category& ErrorCategory() noexcept;

// Found by argument-dependent lookup when an Errc is converted to std::error_code.
std::error_code make_error_code(Errc e) noexcept;

}  // namespace paygate::keys

template <>
struct std::is_error_code_enum<paygate::keys::Errc> : std::true_type {};
