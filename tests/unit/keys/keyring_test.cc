#include "keys/keyring.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "keys/live_keyring.h"
#include "keys/master_key.h"

namespace paygate::keys {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kMasterHex =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

class KeyringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "paygate-keyring-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  fs::path Write(const std::string& name, const std::string& content, mode_t mode = 0600) {
    const fs::path path = dir_ / name;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    EXPECT_EQ(::fchmod(fd, mode), 0);
    ::close(fd);
    return path;
  }
  MasterKey Master(std::string id = "master", std::uint32_t version = 1) {
    return MasterKey::FromFile(std::move(id), version,
                               Write("master-" + std::to_string(version), std::string(kMasterHex) + "\n"))
        .value();
  }

  fs::path dir_;
};

TEST_F(KeyringTest, MasterKeyFileMustBeStrictAndHex) {
  // Proves the master key file is refused when group/world-accessible or not 64 hex digits.
  EXPECT_TRUE(MasterKey::FromFile("m", 1, Write("ok", std::string(kMasterHex))));
  EXPECT_EQ(MasterKey::FromFile("m", 1, Write("open", std::string(kMasterHex), 0640)).error(),
            Errc::permissions_too_open);
  EXPECT_EQ(MasterKey::FromFile("m", 1, Write("short", std::string(kMasterHex.substr(2)))).error(),
            Errc::bad_key_material);
  std::string not_hex(kMasterHex);
  not_hex[5] = 'g';
  EXPECT_EQ(MasterKey::FromFile("m", 1, Write("nothex", not_hex)).error(), Errc::bad_key_material);
  EXPECT_EQ(MasterKey::FromFile("m", 0, Write("v0", std::string(kMasterHex))).error(),
            Errc::bad_key_material);
}

TEST_F(KeyringTest, FileKeysNeedStrictPermissions) {
  // Proves the keyring refuses group- or world-readable key files and serves the newest version.
  Keyring ring;
  EXPECT_EQ(ring.AddFile("webhook", 1, Write("w1", "old-secret\n", 0644)).error(),
            Errc::permissions_too_open);
  EXPECT_EQ(ring.Get("webhook").error(), Errc::unknown_key);
  ASSERT_TRUE(ring.AddFile("webhook", 1, Write("w1", "old-secret\n")));
  ASSERT_TRUE(ring.AddFile("webhook", 2, Write("w2", "new-secret")));
  EXPECT_EQ(ring.AddFile("webhook", 2, Write("w2b", "again")).error(), Errc::duplicate_key);
  EXPECT_EQ(ring.Get("webhook").value()->reveal(), "new-secret");
  EXPECT_EQ(ring.Get("webhook", 1).value()->reveal(), "old-secret");
  EXPECT_EQ(ring.Get("webhook", 3).error(), Errc::unknown_key_version);
  ASSERT_EQ(ring.AllVersions("webhook").size(), 2u);
  EXPECT_EQ(ring.AllVersions("webhook")[1]->reveal(), "old-secret");
  EXPECT_EQ(ring.AddFile("Not Valid", 1, Write("x", "x")).error(), Errc::bad_key_material);
}

TEST_F(KeyringTest, EnvelopeRoundTripsAndIsBoundToIdVersionAndMaster) {
  // Proves an envelope opens under the master key that sealed it, for the id and version it was
  // sealed as, and for nothing else.
  const MasterKey master = Master();
  const Secret key(std::string_view("provider-api-v3-key-0123456789ab"));
  const std::string text = SealEnvelope(master, "wechat.apiv3", 4, key).value();
  EXPECT_EQ(text.find("provider-api"), std::string::npos);

  Keyring ring;
  ASSERT_TRUE(ring.AddEnvelopeFile("wechat.apiv3", 4, Write("env", text + "\n", 0644), master));
  EXPECT_TRUE(*ring.Get("wechat.apiv3").value() == key);
  EXPECT_EQ(ring.List().at(0).source, KeySource::kEnvelope);

  EXPECT_EQ(OpenEnvelope(master, "wechat.apiv3", 5, text).error(), Errc::decrypt_failed);
  EXPECT_EQ(OpenEnvelope(master, "alipay.key", 4, text).error(), Errc::decrypt_failed);
  // Same bytes under another master id: refused by name before any decryption.
  const MasterKey renamed = MasterKey::FromBytes("master2", 1, Secret(std::string(32, 'x'))).value();
  EXPECT_EQ(OpenEnvelope(renamed, "wechat.apiv3", 4, text).error(), Errc::key_mismatch);
  // A different key under the same id and version: the tag fails.
  const MasterKey wrong = MasterKey::FromBytes("master", 1, Secret(std::string(32, 'x'))).value();
  EXPECT_EQ(OpenEnvelope(wrong, "wechat.apiv3", 4, text).error(), Errc::decrypt_failed);
  EXPECT_EQ(OpenEnvelope(master, "wechat.apiv3", 4, "not base64!").error(), Errc::bad_blob);
  EXPECT_EQ(ring.AddEnvelopeFile("x", 1, dir_ / "missing", master).error(), Errc::not_found);
}

TEST_F(KeyringTest, ListShowsNoKeyBytes) {
  // Proves List() names ids, versions, sources and sizes only.
  Keyring ring;
  ASSERT_TRUE(ring.Add("b", 1, Secret(std::string_view("bbbb"))));
  ASSERT_TRUE(ring.Add("a", 2, Secret(std::string_view("aa"))));
  const auto list = ring.List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, "a");
  EXPECT_EQ(list[0].version, 2u);
  EXPECT_EQ(list[0].size, 2u);
  EXPECT_EQ(list[1].id, "b");
  EXPECT_EQ(KeySourceName(list[1].source), "inline");
}

TEST_F(KeyringTest, LoadsTheConfigSectionByIdAndNamesTheFailingEntry) {
  // Proves a keys section resolves ids to secrets from files and envelopes, and that one bad entry
  // refuses the whole keyring with a message naming the entry but not the secret.
  const fs::path master_file = Write("master.key", std::string(kMasterHex));
  config::v1::Keys keys;
  keys.mutable_master_key()->set_id("master");
  keys.mutable_master_key()->set_version(1);
  keys.mutable_master_key()->set_file(master_file.string());
  const MasterKey master = LoadMasterKey(keys).value();
  auto* v1 = keys.add_entries();
  v1->set_id("webhook.claims");
  v1->set_version(1);
  v1->set_file(Write("v1", "first-secret-value").string());
  auto* v2 = keys.add_entries();
  v2->set_id("webhook.claims");
  v2->set_version(2);
  const Secret second(std::string_view("second-secret-value"));
  v2->set_envelope_file(Write("v2.env", SealEnvelope(master, "webhook.claims", 2, second).value()).string());
  auto ring = LoadKeyring(keys, master);
  ASSERT_TRUE(ring) << ring.error().message;
  EXPECT_EQ(ring.value().Get("webhook.claims").value()->reveal(), "second-secret-value");
  EXPECT_EQ(ring.value().Get("webhook.claims", 1).value()->reveal(), "first-secret-value");

  v1->set_file(Write("v1-open", "first-secret-value", 0604).string());
  auto refused = LoadKeyring(keys, master);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::permissions_too_open);
  EXPECT_NE(refused.error().message.find("keys.entries[0] (webhook.claims v1"), std::string::npos);
  EXPECT_EQ(refused.error().message.find("first-secret"), std::string::npos);

  keys.mutable_master_key()->set_file(Write("master-open.key", std::string(kMasterHex), 0640).string());
  auto no_master = LoadMasterKey(keys);
  ASSERT_FALSE(no_master);
  EXPECT_EQ(no_master.error().code, Errc::permissions_too_open);
  EXPECT_NE(no_master.error().message.find("keys.master_key (master v1"), std::string::npos);
}

}  // namespace
}  // namespace paygate::keys

namespace paygate::keys {
namespace {

// A keyring of the configuration, re-read without a restart: a file replaced in place is picked up
// by Reload(), the whole keyring is swapped at once, and a reload that fails keeps the running one
// (a secret is never taken away by a half-written or mis-permissioned file).
TEST_F(KeyringTest, LiveKeyringReloadsFilesAndKeepsTheOldOnFailure) {
  config::v1::Keys keys;
  keys.mutable_master_key()->set_id("master");
  keys.mutable_master_key()->set_version(1);
  keys.mutable_master_key()->set_file(Write("master.key", std::string(kMasterHex)).string());
  auto* entry = keys.add_entries();
  entry->set_id("webhook.sales");
  entry->set_version(1);
  entry->set_file(Write("w1", "first\n").string());
  auto live = LiveKeyring::Load(keys);
  ASSERT_TRUE(live) << live.error().message;
  ASSERT_NE(live.value()->master(), nullptr);
  const auto before = live.value()->Current();
  EXPECT_EQ(before->Get("webhook.sales").value()->reveal(), "first");

  Write("w1", "second\n");
  ASSERT_TRUE(live.value()->Reload());
  EXPECT_EQ(live.value()->Current()->Get("webhook.sales").value()->reveal(), "second");
  // A snapshot taken before stays valid and unchanged for whoever holds it.
  EXPECT_EQ(before->Get("webhook.sales").value()->reveal(), "first");

  Write("w1", "third\n", 0644);
  auto failed = live.value()->Reload();
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, Errc::permissions_too_open);
  EXPECT_NE(failed.error().message.find("keys.entries[0] (webhook.sales v1"), std::string::npos);
  EXPECT_EQ(live.value()->Current()->Get("webhook.sales").value()->reveal(), "second");

  // Without a section: an empty keyring, no master key, nothing to reload.
  auto none = LiveKeyring::Load(config::v1::Keys{});
  ASSERT_TRUE(none);
  EXPECT_EQ(none.value()->master(), nullptr);
  EXPECT_TRUE(none.value()->Current()->List().empty());
  EXPECT_TRUE(none.value()->Reload());
}

// A binary entry keeps every byte (a PKCS#12 store may end in 0x0a); a text entry loses one
// trailing newline. CopyCurrent names the field and id on a missing key, never bytes.
TEST_F(KeyringTest, BinaryEntriesKeepTheTrailingNewlineAndCopyCurrentNamesTheField) {
  config::v1::Keys keys;
  keys.mutable_master_key()->set_id("master");
  keys.mutable_master_key()->set_version(1);
  keys.mutable_master_key()->set_file(Write("master.key", std::string(kMasterHex)).string());
  const std::string der("\x30\x03\x02\x01\x0a", 5);
  for (const bool binary : {true, false}) {
    auto* entry = keys.add_entries();
    entry->set_id(binary ? "pfx.binary" : "pfx.text");
    entry->set_version(1);
    entry->set_file(Write(entry->id(), der).string());
    entry->set_binary(binary);
  }
  auto ring = LoadConfiguredKeyring(keys);
  ASSERT_TRUE(ring) << ring.error().message;
  EXPECT_EQ(ring.value().Get("pfx.binary").value()->reveal(), der);
  EXPECT_EQ(ring.value().Get("pfx.text").value()->reveal(), der.substr(0, 4));
  auto copy = CopyCurrent(ring.value(), "unionpay.sign_pfx_key_id", "pfx.binary");
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy.value().reveal(), der);
  auto missing = CopyCurrent(ring.value(), "risk.hash_key_id", "risk-hash");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().find("risk.hash_key_id risk-hash"), std::string::npos);
}

}  // namespace
}  // namespace paygate::keys
