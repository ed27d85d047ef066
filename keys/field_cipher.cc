#include "keys/field_cipher.h"

#include <mutex>
#include <utility>

namespace paygate::keys {

Result<std::shared_ptr<FieldCipher>> FieldCipher::Create(std::string name,
                                                         std::vector<DataKeyVersion> versions) {
  if (!IsValidKeyName(name) || versions.empty()) return Errc::bad_key_material;
  std::shared_ptr<FieldCipher> cipher(new FieldCipher(std::move(name)));
  BOOST_OUTCOME_TRY(cipher->AddVersions(std::move(versions)));
  return cipher;
}

Result<std::size_t> FieldCipher::AddVersions(std::vector<DataKeyVersion> versions) {
  // Keys are built before the lock is taken, so a failure adds nothing and readers wait only for
  // the map insertion.
  std::map<std::uint32_t, std::unique_ptr<AeadKey>> fresh;
  {
    std::shared_lock lock(mutex_);
    for (const DataKeyVersion& v : versions) {
      if (keys_.contains(v.version)) continue;
      if (fresh.contains(v.version)) return Errc::bad_key_material;
      BOOST_OUTCOME_TRY(key, AeadKey::Create(name_, v.version, v.key));
      fresh.emplace(v.version, std::move(key));
    }
  }
  const std::unique_lock lock(mutex_);
  std::size_t added = 0;
  for (auto& [version, key] : fresh) {
    if (keys_.emplace(version, std::move(key)).second) ++added;
  }
  if (!keys_.empty()) current_ = keys_.rbegin()->second.get();
  return added;
}

Result<std::string> FieldCipher::Encrypt(std::string_view plaintext, std::string_view aad) const {
  const std::shared_lock lock(mutex_);
  return current_->Seal(plaintext, aad);
}

Result<std::string> FieldCipher::Decrypt(std::string_view blob, std::string_view aad) const {
  BOOST_OUTCOME_TRY(header, ParseBlobHeader(blob));
  if (header.key_name != name_) return Errc::key_mismatch;
  const std::shared_lock lock(mutex_);
  const auto it = keys_.find(header.version);
  if (it == keys_.end()) return Errc::unknown_key_version;
  return it->second->OpenParsed(blob, header, aad);
}

Result<std::uint32_t> FieldCipher::BlobVersion(std::string_view blob) {
  BOOST_OUTCOME_TRY(header, ParseBlobHeader(blob));
  return header.version;
}

std::uint32_t FieldCipher::current_version() const {
  const std::shared_lock lock(mutex_);
  return current_->version();
}

std::vector<std::uint32_t> FieldCipher::versions() const {
  const std::shared_lock lock(mutex_);
  std::vector<std::uint32_t> out;
  out.reserve(keys_.size());
  for (const auto& [version, key] : keys_) out.push_back(version);
  return out;
}

}  // namespace paygate::keys
