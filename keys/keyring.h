#pragma once

// Keyring: the named, versioned secrets of a daemon (provider credentials, webhook secrets, hash
// keys), so that configuration refers to them only by id (issue 7, DESIGN.md §6). A key comes from
// a file with strict permissions (ReadSecretFile) or from an envelope: a blob sealed under the
// master key (keys/aead.h format) whose associated data is the key's id and version, so an
// envelope renamed to another id or version does not open.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "config/paygate_config.pb.h"
#include "config/result.h"
#include "keys/errc.h"
#include "keys/master_key.h"
#include "keys/secret.h"

namespace paygate::keys {

enum class KeySource { kFile, kEnvelope, kInline };

// What `paygatectl keys list` and start-up logs may show of a key: never its bytes.
struct KeyInfo {
  std::string id;
  std::uint32_t version = 0;
  KeySource source = KeySource::kFile;
  std::size_t size = 0;
};

// The associated data of the envelope of key `id` at `version`.
std::string EnvelopeAad(std::string_view id, std::uint32_t version);
// An envelope of `key` as stored in an envelope file: the blob in Base64 on one line. Errors:
// bad_key_material (invalid id or version 0), crypto_failed.
Result<std::string> SealEnvelope(const MasterKey& master, std::string_view id,
                                 std::uint32_t version, const Secret& key);
// The key in an envelope file's text (surrounding whitespace ignored). Errors: bad_blob (not
// Base64 or not a blob), key_mismatch (another master key), decrypt_failed (another id or version,
// or tampered).
Result<Secret> OpenEnvelope(const MasterKey& master, std::string_view id, std::uint32_t version,
                            std::string_view text);

// Built once at start-up and then read-only: const members are thread-safe.
class Keyring {
 public:
  // Each id may hold several versions (rotation: the highest is current, older ones still verify).
  // Errors: bad_key_material (invalid id, version 0), duplicate_key, and the file's errors.
  Result<void> AddFile(const std::string& id, std::uint32_t version,
                       const std::filesystem::path& path);
  // The same for binary key material: every byte kept (SecretFileContent::kBinary).
  Result<void> AddBinaryFile(const std::string& id, std::uint32_t version,
                             const std::filesystem::path& path);
  // An envelope file (SealEnvelope's text). The file holds ciphertext only, so its permissions are
  // not checked. Errors: read_failed/not_found, OpenEnvelope's errors, and AddFile's.
  Result<void> AddEnvelopeFile(const std::string& id, std::uint32_t version,
                               const std::filesystem::path& path, const MasterKey& master);
  // A key already in memory (tests, keys derived at start-up).
  Result<void> Add(const std::string& id, std::uint32_t version, Secret key,
                   KeySource source = KeySource::kInline);

  // The current (highest) version of key `id`. Errors: unknown_key. The reference lives as long
  // as the keyring.
  Result<const Secret*> Get(std::string_view id) const;
  // A given version. Errors: unknown_key, unknown_key_version.
  Result<const Secret*> Get(std::string_view id, std::uint32_t version) const;
  // Every version of `id`, newest first (e.g. the webhook secrets valid during a rotation).
  std::vector<const Secret*> AllVersions(std::string_view id) const;
  bool Contains(std::string_view id) const;

  // Ids and versions, sorted; no key bytes.
  std::vector<KeyInfo> List() const;

 private:
  struct Entry {
    Secret key;
    KeySource source = KeySource::kFile;
  };
  // id -> version -> key; std::less<> for lookups by string_view.
  std::map<std::string, std::map<std::uint32_t, Entry>, std::less<>> keys_;
};

std::string_view KeySourceName(KeySource source);

// A failure to load the keys section, naming the entry ("keys.entries[2] (webhook.claims v2)") and
// never the key bytes.
struct KeysLoadError {
  std::error_code code;
  std::string message;
};
// Lets Boost.Outcome treat KeysLoadError like an error code (as db::DetailedError does).
inline std::error_code make_error_code(const KeysLoadError& e) { return e.code; }
[[noreturn]] void outcome_throw_as_system_error_with_payload(const KeysLoadError& e);

// The master key of a validated keys section (config/validate.cc applied the defaults).
Result<MasterKey, KeysLoadError> LoadMasterKey(const config::v1::Keys& keys);
// Every entry of a validated keys section; envelope entries are opened with `master`. Refuses the
// whole keyring when one entry fails, so the daemon does not start with a secret missing.
Result<Keyring, KeysLoadError> LoadKeyring(const config::v1::Keys& keys, const MasterKey& master);

// Whether a validated keys section is in use (names a master key), i.e. LoadMasterKey applies.
bool KeysConfigured(const config::v1::Keys& keys);
// The keyring of a validated keys section, master key and all (an empty keyring without a
// section), for a one-shot command such as paygatectl; the daemon keeps a LiveKeyring instead.
Result<Keyring, KeysLoadError> LoadConfiguredKeyring(const config::v1::Keys& keys);

// A copy of the current version of `id`, for a consumer that keeps its secret for the life of the
// process (a provider adapter, the fraud hash key, the database password). `field` names the
// configuration field referring to the key, for the error ("risk.hash_key_id risk-hash: unknown
// key"); never the bytes.
Result<Secret, std::string> CopyCurrent(const Keyring& ring, std::string_view field,
                                        std::string_view id);

}  // namespace paygate::keys
