#include "keys/field_cipher.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "keys/aead.h"
#include "keys/digest.h"

namespace paygate::keys {
namespace {

Secret KeyBytes(char fill) { return Secret(std::string(kAeadKeySize, fill)); }

std::vector<DataKeyVersion> Versions(std::initializer_list<std::pair<std::uint32_t, char>> list) {
  std::vector<DataKeyVersion> out;
  for (const auto& [version, fill] : list) out.push_back({version, KeyBytes(fill)});
  return out;
}

std::shared_ptr<FieldCipher> MakeCipher(std::initializer_list<std::pair<std::uint32_t, char>> v,
                                        std::string name = "beneficiary") {
  auto cipher = FieldCipher::Create(std::move(name), Versions(v));
  EXPECT_TRUE(cipher) << cipher.error().message();
  return cipher.value();
}

constexpr std::string_view kRow = "payouts/po_123/beneficiary_account";

TEST(FieldCipherTest, RoundTripsUnderTheCurrentVersion) {
  // Proves Encrypt/Decrypt round-trip (also empty and binary plaintexts) and that the blob names the
  // current version and hides the plaintext.
  const auto cipher = MakeCipher({{1, 'a'}, {3, 'c'}, {2, 'b'}});
  EXPECT_EQ(cipher->current_version(), 3u);
  for (const std::string& plaintext : {std::string("6222020200112233445"), std::string(),
                                      std::string("\0\xff\n", 3), std::string(5000, 'x')}) {
    auto blob = cipher->Encrypt(plaintext, kRow);
    ASSERT_TRUE(blob);
    EXPECT_EQ(blob.value().size(),
              2 + cipher->name().size() + 4 + kNonceSize + plaintext.size() + kTagSize);
    if (!plaintext.empty()) {
      EXPECT_EQ(blob.value().find(plaintext), std::string::npos);
    }
    EXPECT_EQ(FieldCipher::BlobVersion(blob.value()).value(), 3u);
    auto back = cipher->Decrypt(blob.value(), kRow);
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(back.value(), plaintext);
  }
}

TEST(FieldCipherTest, EqualPlaintextsGiveDifferentBlobs) {
  // Proves nonces are fresh per call: the same value in two rows is not linkable by its ciphertext.
  const auto cipher = MakeCipher({{1, 'a'}});
  std::set<std::string> blobs;
  for (int i = 0; i < 1000; ++i) blobs.insert(cipher->Encrypt("6222020200112233445", kRow).value());
  EXPECT_EQ(blobs.size(), 1000u);
}

TEST(FieldCipherTest, WrongAadFails) {
  // Proves a blob copied to another row, or to another column of the same row, does not decrypt.
  const auto cipher = MakeCipher({{1, 'a'}});
  const auto blob = cipher->Encrypt("6222020200112233445", kRow).value();
  EXPECT_EQ(cipher->Decrypt(blob, "payouts/po_124/beneficiary_account").error(),
            Errc::decrypt_failed);
  EXPECT_EQ(cipher->Decrypt(blob, "payouts/po_123/beneficiary_id_number").error(),
            Errc::decrypt_failed);
  EXPECT_EQ(cipher->Decrypt(blob, "").error(), Errc::decrypt_failed);
  EXPECT_TRUE(cipher->Decrypt(blob, kRow));
}

TEST(FieldCipherTest, EveryTamperedByteFails) {
  // Proves a change to any byte of the blob (header, nonce, ciphertext, tag) is refused, never
  // answered with altered plaintext.
  const auto cipher = MakeCipher({{1, 'a'}, {2, 'b'}});
  const auto blob = cipher->Encrypt("6222020200112233445", kRow).value();
  for (std::size_t i = 0; i < blob.size(); ++i) {
    std::string tampered = blob;
    tampered[i] = static_cast<char>(tampered[i] ^ 0x01);
    auto result = cipher->Decrypt(tampered, kRow);
    ASSERT_FALSE(result) << "byte " << i;
  }
  // Truncation and extension too.
  EXPECT_FALSE(cipher->Decrypt(blob.substr(0, blob.size() - 1), kRow));
  EXPECT_FALSE(cipher->Decrypt(blob + "x", kRow));
}

TEST(FieldCipherTest, HeaderVersionCannotBeSwapped) {
  // Proves that relabelling a v2 blob as v1 (both loaded) fails: the header is authenticated and
  // v1's key is another key.
  const auto cipher = MakeCipher({{1, 'a'}, {2, 'b'}});
  std::string blob = cipher->Encrypt("secret", kRow).value();
  const std::size_t version_last = 2 + cipher->name().size() + 3;
  ASSERT_EQ(blob[version_last], 2);
  blob[version_last] = 1;
  EXPECT_EQ(cipher->Decrypt(blob, kRow).error(), Errc::decrypt_failed);
}

TEST(FieldCipherTest, OldVersionsStillDecryptAfterAddVersions) {
  // Proves a rotation (AddVersions) moves new writes to the new version while blobs of older
  // versions keep decrypting, and that an unknown version is reported as such.
  const auto writer = MakeCipher({{1, 'a'}, {2, 'b'}});
  const auto reader = MakeCipher({{1, 'a'}});
  const auto v1 = reader->Encrypt("old", kRow).value();
  const auto v2 = writer->Encrypt("new", kRow).value();
  EXPECT_EQ(reader->Decrypt(v2, kRow).error(), Errc::unknown_key_version);
  EXPECT_EQ(reader->AddVersions(Versions({{1, 'a'}, {2, 'b'}})).value(), 1u);
  EXPECT_EQ(reader->current_version(), 2u);
  EXPECT_EQ(reader->versions(), (std::vector<std::uint32_t>{1, 2}));
  EXPECT_EQ(reader->Decrypt(v2, kRow).value(), "new");
  EXPECT_EQ(reader->Decrypt(v1, kRow).value(), "old");
  EXPECT_EQ(FieldCipher::BlobVersion(reader->Encrypt("x", kRow).value()).value(), 2u);
}

TEST(FieldCipherTest, WrongKeyMaterialOrNameFails) {
  // Proves a cipher with other key bytes under the same name and version cannot decrypt (as after
  // unwrapping with a wrong master key), and another data key's blob is refused as key_mismatch.
  const auto right = MakeCipher({{1, 'a'}});
  const auto wrong = MakeCipher({{1, 'z'}});
  const auto other = MakeCipher({{1, 'a'}}, "other");
  const auto blob = right->Encrypt("secret", kRow).value();
  EXPECT_EQ(wrong->Decrypt(blob, kRow).error(), Errc::decrypt_failed);
  EXPECT_EQ(other->Decrypt(blob, kRow).error(), Errc::key_mismatch);
}

TEST(FieldCipherTest, MalformedBlobsAreRefused) {
  // Proves blobs of a wrong format or too short to hold a tag are bad_blob, not a crash.
  const auto cipher = MakeCipher({{1, 'a'}});
  EXPECT_EQ(cipher->Decrypt("", kRow).error(), Errc::bad_blob);
  EXPECT_EQ(FieldCipher::BlobVersion("").error(), Errc::bad_blob);
  std::string blob = cipher->Encrypt("x", kRow).value();
  std::string wrong_format = blob;
  wrong_format[0] = 2;
  EXPECT_EQ(cipher->Decrypt(wrong_format, kRow).error(), Errc::bad_blob);
  std::string long_name = blob;
  long_name[1] = static_cast<char>(200);
  EXPECT_EQ(FieldCipher::BlobVersion(long_name).error(), Errc::bad_blob);
  EXPECT_EQ(cipher->Decrypt(blob.substr(0, 2 + 11 + 4 + kNonceSize + kTagSize - 1), kRow).error(),
            Errc::bad_blob);
}

TEST(FieldCipherTest, CreateRefusesBadKeys) {
  // Proves keys of the wrong size, version 0, duplicates and invalid names are refused.
  EXPECT_EQ(FieldCipher::Create("k", {}).error(), Errc::bad_key_material);
  std::vector<DataKeyVersion> short_key;
  short_key.push_back({1, Secret(std::string(31, 'a'))});
  EXPECT_EQ(FieldCipher::Create("k", std::move(short_key)).error(), Errc::bad_key_material);
  EXPECT_EQ(FieldCipher::Create("k", Versions({{0, 'a'}})).error(), Errc::bad_key_material);
  EXPECT_EQ(FieldCipher::Create("k", Versions({{1, 'a'}, {1, 'b'}})).error(),
            Errc::bad_key_material);
  EXPECT_EQ(FieldCipher::Create("Bad Name", Versions({{1, 'a'}})).error(),
            Errc::bad_key_material);
}

TEST(FieldCipherTest, MatchesOpenSslGcmDirectly) {
  // Proves the blob is plain AES-256-GCM as documented in keys/aead.h: a blob sealed here opens
  // with an AeadKey built from the same bytes, whose associated data is the header plus the row.
  const auto cipher = MakeCipher({{7, 'q'}}, "k");
  const auto blob = cipher->Encrypt("plain", kRow).value();
  auto key = AeadKey::Create("k", 7, KeyBytes('q')).value();
  EXPECT_EQ(key->Open(blob, kRow).value(), "plain");
  auto other_version = AeadKey::Create("k", 8, KeyBytes('q')).value();
  EXPECT_EQ(other_version->Open(blob, kRow).error(), Errc::key_mismatch);
}

TEST(FieldCipherTest, ConcurrentUseWhileVersionsAreAdded) {
  // Proves the cipher is safe to share between threads while a reload adds versions: every
  // round trip succeeds (run under TSan/ASan in the sanitizer preset).
  const auto cipher = MakeCipher({{1, 'a'}});
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string value = std::to_string(t * 100000 + i);
        auto blob = cipher->Encrypt(value, kRow);
        if (!blob) {
          ++failures;
          continue;
        }
        auto back = cipher->Decrypt(blob.value(), kRow);
        if (!back || back.value() != value) ++failures;
      }
    });
  }
  for (std::uint32_t v = 2; v <= 20; ++v) {
    ASSERT_TRUE(cipher->AddVersions(Versions({{v, static_cast<char>('a' + v)}})));
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(cipher->current_version(), 20u);
}

TEST(RandomBytesTest, ForkedChildDrawsOtherBytesThanTheParent) {
  // Proves the per-thread nonce buffer is not shared across fork(): parent and child draw
  // different bytes right after the fork.
  std::array<unsigned char, 12> warm{};
  ASSERT_TRUE(RandomBytes(warm));
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::array<unsigned char, 12> mine{};
    const bool ok = static_cast<bool>(RandomBytes(mine));
    const ssize_t written = ::write(fds[1], mine.data(), mine.size());
    ::_exit(ok && written == 12 ? 0 : 1);
  }
  std::array<unsigned char, 12> parent{};
  ASSERT_TRUE(RandomBytes(parent));
  std::array<unsigned char, 12> from_child{};
  ASSERT_EQ(::read(fds[0], from_child.data(), from_child.size()), 12);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_NE(parent, from_child);
  ::close(fds[0]);
  ::close(fds[1]);
}

}  // namespace
}  // namespace paygate::keys
