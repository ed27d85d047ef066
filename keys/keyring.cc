#include "keys/keyring.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "config/file.h"
#include "keys/aead.h"
#include "keys/secret_file.h"

namespace paygate::keys {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\r' ||
                        s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string Base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

Result<std::string> FromBase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return Errc::bad_blob;
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return Errc::bad_blob;
  // EVP_DecodeBlock counts the padding as zero bytes.
  std::size_t size = static_cast<std::size_t>(n);
  if (text.ends_with("==")) {
    size -= 2;
  } else if (text.ends_with("=")) {
    size -= 1;
  }
  out.resize(size);
  return out;
}

}  // namespace

std::string EnvelopeAad(std::string_view id, std::uint32_t version) {
  return fmt::format("paygate/keyring/{}/{}", id, version);
}

Result<std::string> SealEnvelope(const MasterKey& master, std::string_view id,
                                 std::uint32_t version, const Secret& key) {
  if (!IsValidKeyName(id) || version == 0) return Errc::bad_key_material;
  BOOST_OUTCOME_TRY(blob, master.Wrap(key, EnvelopeAad(id, version)));
  return Base64(blob);
}

Result<Secret> OpenEnvelope(const MasterKey& master, std::string_view id, std::uint32_t version,
                            std::string_view text) {
  BOOST_OUTCOME_TRY(blob, FromBase64(Trim(text)));
  return master.Unwrap(blob, EnvelopeAad(id, version));
}

Result<void> Keyring::Add(const std::string& id, std::uint32_t version, Secret key,
                          KeySource source) {
  if (!IsValidKeyName(id) || version == 0) return Errc::bad_key_material;
  auto& versions = keys_[id];
  if (versions.contains(version)) return Errc::duplicate_key;
  versions.emplace(version, Entry{std::move(key), source});
  return outcome::success();
}

Result<void> Keyring::AddFile(const std::string& id, std::uint32_t version,
                              const std::filesystem::path& path) {
  BOOST_OUTCOME_TRY(key, ReadSecretFile(path));
  return Add(id, version, std::move(key), KeySource::kFile);
}

Result<void> Keyring::AddBinaryFile(const std::string& id, std::uint32_t version,
                                    const std::filesystem::path& path) {
  BOOST_OUTCOME_TRY(key, ReadSecretFile(path, SecretFileContent::kBinary));
  return Add(id, version, std::move(key), KeySource::kFile);
}

Result<void> Keyring::AddEnvelopeFile(const std::string& id, std::uint32_t version,
                                      const std::filesystem::path& path,
                                      const MasterKey& master) {
  auto text = config::ReadWholeFile(path.string());
  if (!text) return std::filesystem::exists(path) ? Errc::read_failed : Errc::not_found;
  BOOST_OUTCOME_TRY(key, OpenEnvelope(master, id, version, *text));
  return Add(id, version, std::move(key), KeySource::kEnvelope);
}

Result<const Secret*> Keyring::Get(std::string_view id) const {
  const auto it = keys_.find(id);
  if (it == keys_.end() || it->second.empty()) return Errc::unknown_key;
  return &it->second.rbegin()->second.key;
}

Result<const Secret*> Keyring::Get(std::string_view id, std::uint32_t version) const {
  const auto it = keys_.find(id);
  if (it == keys_.end() || it->second.empty()) return Errc::unknown_key;
  const auto v = it->second.find(version);
  if (v == it->second.end()) return Errc::unknown_key_version;
  return &v->second.key;
}

std::vector<const Secret*> Keyring::AllVersions(std::string_view id) const {
  std::vector<const Secret*> out;
  const auto it = keys_.find(id);
  if (it == keys_.end()) return out;
  for (auto v = it->second.rbegin(); v != it->second.rend(); ++v) out.push_back(&v->second.key);
  return out;
}

bool Keyring::Contains(std::string_view id) const { return keys_.find(id) != keys_.end(); }

std::vector<KeyInfo> Keyring::List() const {
  std::vector<KeyInfo> out;
  for (const auto& [id, versions] : keys_) {
    for (const auto& [version, entry] : versions) {
      out.push_back(KeyInfo{id, version, entry.source, entry.key.size()});
    }
  }
  return out;
}

void outcome_throw_as_system_error_with_payload(const KeysLoadError& e) {
  throw std::system_error(e.code, e.message);
}

Result<MasterKey, KeysLoadError> LoadMasterKey(const config::v1::Keys& keys) {
  const auto& ref = keys.master_key();
  auto master = MasterKey::FromFile(ref.id(), ref.version(), ref.file());
  if (!master) {
    return KeysLoadError{master.error(),
                         fmt::format("keys.master_key ({} v{}, {}): {}", ref.id(), ref.version(),
                                     ref.file(), master.error().message())};
  }
  return std::move(master).value();
}

Result<Keyring, KeysLoadError> LoadKeyring(const config::v1::Keys& keys, const MasterKey& master) {
  Keyring ring;
  for (int i = 0; i < keys.entries_size(); ++i) {
    const auto& entry = keys.entries(i);
    auto added =
        !entry.envelope_file().empty()
            ? ring.AddEnvelopeFile(entry.id(), entry.version(), entry.envelope_file(), master)
        : entry.binary() ? ring.AddBinaryFile(entry.id(), entry.version(), entry.file())
                         : ring.AddFile(entry.id(), entry.version(), entry.file());
    if (!added) {
      return KeysLoadError{
          added.error(),
          fmt::format("keys.entries[{}] ({} v{}, {}): {}", i, entry.id(), entry.version(),
                      entry.envelope_file().empty() ? entry.file() : entry.envelope_file(),
                      added.error().message())};
    }
  }
  return ring;
}

bool KeysConfigured(const config::v1::Keys& keys) { return !keys.master_key().file().empty(); }

Result<Keyring, KeysLoadError> LoadConfiguredKeyring(const config::v1::Keys& keys) {
  if (!KeysConfigured(keys)) return Keyring{};
  BOOST_OUTCOME_TRY(master, LoadMasterKey(keys));
  return LoadKeyring(keys, master);
}

Result<Secret, std::string> CopyCurrent(const Keyring& ring, std::string_view field,
                                        std::string_view id) {
  auto key = ring.Get(id);
  if (!key) return fmt::format("{} {}: {}", field, id, key.error().message());
  return Secret(key.value()->reveal());
}

std::string_view KeySourceName(KeySource source) {
  switch (source) {
    case KeySource::kFile:
      return "file";
    case KeySource::kEnvelope:
      return "envelope";
    case KeySource::kInline:
      return "inline";
  }
  return "unknown";
}

}  // namespace paygate::keys
