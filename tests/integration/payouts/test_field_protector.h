#pragma once

// A FieldProtector for tests until keys::FieldCipher is wired in: real AES-256-GCM (OpenSSL EVP)
// under one random key, a random 12-byte nonce per field, the AAD bound in. Blob: nonce,
// ciphertext, 16-byte tag. Counts calls so tests can prove a flow decrypted (or did not).
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <atomic>
#include <memory>
#include <string>

#include "gateway/payouts/field_protector.h"
#include "ledger/db/errc.h"

namespace paygate::payouts::test {

class TestFieldProtector final : public FieldProtector {
 public:
  TestFieldProtector() { RAND_bytes(key_.data(), static_cast<int>(key_.size())); }

  Result<std::string> Encrypt(std::string_view plaintext, std::string_view aad) const override {
    ++encryptions;
    std::string blob(12 + plaintext.size() + 16, '\0');
    auto* out = reinterpret_cast<unsigned char*>(blob.data());
    RAND_bytes(out, 12);
    std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                        EVP_CIPHER_CTX_free);
    int len = 0;
    if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), out) != 1 ||
        EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                          reinterpret_cast<const unsigned char*>(aad.data()),
                          static_cast<int>(aad.size())) != 1 ||
        EVP_EncryptUpdate(ctx.get(), out + 12, &len,
                          reinterpret_cast<const unsigned char*>(plaintext.data()),
                          static_cast<int>(plaintext.size())) != 1 ||
        EVP_EncryptFinal_ex(ctx.get(), out + 12 + len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, out + 12 + plaintext.size()) !=
            1) {
      return make_error_code(db::Errc::bad_value);
    }
    return blob;
  }

  Result<std::string> Decrypt(std::string_view blob, std::string_view aad) const override {
    ++decryptions;
    if (blob.size() < 28) return make_error_code(db::Errc::bad_value);
    const auto* in = reinterpret_cast<const unsigned char*>(blob.data());
    const std::size_t n = blob.size() - 28;
    std::string plain(n, '\0');
    std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                        EVP_CIPHER_CTX_free);
    int len = 0;
    std::array<unsigned char, 16> tag{};
    std::copy(in + 12 + n, in + 28 + n, tag.begin());
    if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), in) != 1 ||
        EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                          reinterpret_cast<const unsigned char*>(aad.data()),
                          static_cast<int>(aad.size())) != 1 ||
        EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &len, in + 12,
                          static_cast<int>(n)) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, 16, tag.data()) != 1 ||
        EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()) + len,
                            &len) != 1) {
      return make_error_code(db::Errc::bad_value);
    }
    return plain;
  }

  mutable std::atomic<int> encryptions{0};
  mutable std::atomic<int> decryptions{0};

 private:
  std::array<unsigned char, 32> key_{};
};

}  // namespace paygate::payouts::test
