#pragma once

// Reading secrets and checking key files on disk (DESIGN.md §6: secrets live in files with strict
// permissions; the daemon refuses to start with key files readable by others).
#include <cstddef>
#include <filesystem>

#include "config/result.h"
#include "keys/errc.h"
#include "keys/secret.h"

namespace paygate::keys {

// A secret file holds a password or a key, not data; anything larger is refused unread.
inline constexpr std::size_t kSecretFileSizeMax = 64 * 1024;

// Reads a secret (e.g. database.password_file) into a Secret. Refuses, with an Errc, a file that is
// missing (not_found), not a regular file after following symlinks (not_regular_file), readable or
// writable by group or others (permissions_too_open), larger than kSecretFileSizeMax (too_large),
// unreadable (read_failed), or empty (empty). The checks are made on the opened descriptor, so the
// file cannot be swapped between the check and the read. One trailing newline ("\n" or "\r\n"), as
// editors and `echo` add, is stripped. Symlinks are followed because mounted secrets (Kubernetes)
// are symlinks; the target's mode is what is checked. Thread-safe, does not throw (apart from
// std::bad_alloc).
Result<Secret> ReadSecretFile(const std::filesystem::path& path);

// How a secret file's bytes become the secret.
enum class SecretFileContent {
  kText,    // One trailing newline stripped (ReadSecretFile).
  kBinary,  // Every byte kept: binary key material (a PKCS#12 store) may end in 0x0a.
};
// ReadSecretFile, with the bytes taken as `content` says; the same checks and errors.
Result<Secret> ReadSecretFile(const std::filesystem::path& path, SecretFileContent content);

// Checks that a private key file (e.g. a listener's tls.key_file) exists, is a regular file and is
// not accessible by group or others; the same error codes as ReadSecretFile. The key itself is read
// by OpenSSL. Thread-safe, does not throw.
Result<void> CheckKeyFilePermissions(const std::filesystem::path& path);

}  // namespace paygate::keys
