#include "keys/master_key.h"

#include <string>
#include <utility>

#include <openssl/crypto.h>

#include "keys/digest.h"
#include "keys/secret_file.h"

namespace paygate::keys {

Result<Secret> SecretFromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return Errc::bad_key_material;
  std::string bytes(hex.size() / 2, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const int high = HexDigitValue(hex[2 * i]);
    const int low = HexDigitValue(hex[2 * i + 1]);
    if (high < 0 || low < 0) {
      OPENSSL_cleanse(bytes.data(), bytes.size());
      return Errc::bad_key_material;
    }
    bytes[i] = static_cast<char>((high << 4) | low);
  }
  return Secret(std::move(bytes));
}

Result<MasterKey> MasterKey::FromFile(std::string id, std::uint32_t version,
                                      const std::filesystem::path& path) {
  BOOST_OUTCOME_TRY(hex, ReadSecretFile(path));
  if (hex.size() != 2 * kAeadKeySize) return Errc::bad_key_material;
  BOOST_OUTCOME_TRY(bytes, SecretFromHex(hex.reveal()));
  return FromBytes(std::move(id), version, bytes);
}

Result<MasterKey> MasterKey::FromBytes(std::string id, std::uint32_t version, const Secret& key) {
  BOOST_OUTCOME_TRY(aead, AeadKey::Create(std::move(id), version, key));
  return MasterKey(std::shared_ptr<const AeadKey>(std::move(aead)));
}

Result<std::string> MasterKey::Wrap(const Secret& plaintext, std::string_view aad) const {
  return key_->Seal(plaintext.reveal(), aad);
}

Result<Secret> MasterKey::Unwrap(std::string_view blob, std::string_view aad) const {
  BOOST_OUTCOME_TRY(plaintext, key_->Open(blob, aad));
  return Secret(std::move(plaintext));
}

}  // namespace paygate::keys
