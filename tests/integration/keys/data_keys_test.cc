#include <utility>  // Before Asio (DESIGN.md §2).

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#include "keys/data_keys.h"
#include "keys/field_cipher.h"
#include "keys/master_key.h"
#include "keys/rewrap.h"
#include "ledger/db/migrations.h"
#include "ledger/db/pg_pool.h"
#include "ledger/db/transaction.h"
#include "tests/integration/db/db_test_util.h"
#include "tests/testing/run_async.h"

namespace paygate::keys {
namespace {

namespace asio = boost::asio;
using db::test::FreshDatabase;
using db::test::In;
using db::test::MakePoolOptions;
using namespace std::chrono_literals;
using testing::RunAsync;

MasterKey Master(char fill, std::string id = "master", std::uint32_t version = 1) {
  return MasterKey::FromBytes(std::move(id), version, Secret(std::string(kAeadKeySize, fill)))
      .value();
}

const EncryptedColumn kAccount{"test_payouts", "id", "account", "test_payouts", "beneficiary"};

std::string AccountNumber(int i) { return "62220202" + std::to_string(10000000 + i); }

class DataKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = FreshDatabase();
    pool_ = std::make_unique<db::PgPool>(io_.get_executor(), MakePoolOptions(url_, 4));
    auto migrated = RunAsync(io_, db::ApplyMigrations(*pool_, In(60s)));
    ASSERT_TRUE(migrated) << migrated.error().message;
    Sql("CREATE TABLE test_payouts (id text PRIMARY KEY, account bytea)");
  }
  void TearDown() override { pool_->Close(); }

  db::PgResult Sql(const std::string& sql) {
    auto result = RunAsync(io_, [&]() -> asio::awaitable<Result<db::PgResult>> {
      auto lease = co_await pool_->Acquire(In(10s));
      if (!lease) co_return lease.error();
      co_return co_await lease.value()->ExecuteSimple(sql, In(30s));
    }());
    EXPECT_TRUE(result) << sql << ": " << result.error().message();
    return result ? std::move(result).value() : db::PgResult();
  }

  std::shared_ptr<FieldCipher> Load(const MasterKey& master) {
    auto cipher = RunAsync(io_, LoadFieldCipher(*pool_, master, "beneficiary", In(10s)));
    EXPECT_TRUE(cipher) << cipher.error().message();
    return cipher ? cipher.value() : nullptr;
  }

  std::uint32_t Rotate(const MasterKey& master) {
    auto version = RunAsync(io_, RotateDataKey(*pool_, master, "beneficiary", In(10s)));
    EXPECT_TRUE(version) << version.error().message();
    return version ? version.value() : 0;
  }

  // Inserts rows [from, to) encrypted by `cipher`, as a writer would, in one statement.
  void Insert(const FieldCipher& cipher, int from, int to) {
    std::string values;
    for (int i = from; i < to; ++i) {
      const std::string id = "po_" + std::to_string(100000 + i);
      const std::string blob = cipher.Encrypt(AccountNumber(i), RowAad(kAccount, id)).value();
      std::string hex;
      for (const unsigned char c : blob) hex += fmt::format("{:02x}", c);
      values += fmt::format("{}('{}', '\\x{}')", values.empty() ? "" : ",", id, hex);
    }
    Sql("INSERT INTO test_payouts (id, account) VALUES " + values);
  }

  // id -> (version, plaintext or "<error>") of every non-NULL row.
  std::map<std::string, std::pair<std::uint32_t, std::string>> ReadAll(const FieldCipher& cipher) {
    std::map<std::string, std::pair<std::uint32_t, std::string>> out;
    const db::PgResult rows = Sql("SELECT id, account FROM test_payouts WHERE account IS NOT NULL");
    for (int r = 0; r < rows.rows(); ++r) {
      const std::string id(rows.GetText(r, 0).value());
      const std::string blob = rows.GetBytea(r, 1).value();
      auto plaintext = cipher.Decrypt(blob, RowAad(kAccount, id));
      out[id] = {FieldCipher::BlobVersion(blob).value(),
                 plaintext ? plaintext.value() : "<" + plaintext.error().message() + ">"};
    }
    return out;
  }

  RewrapReport Rewrap(const FieldCipher& cipher, RewrapOptions options) {
    auto report = RunAsync(io_, RewrapColumn(*pool_, cipher, kAccount, std::move(options)));
    EXPECT_TRUE(report) << report.error().message();
    return report ? report.value() : RewrapReport{};
  }

  asio::io_context io_;
  std::string url_;
  std::unique_ptr<db::PgPool> pool_;
};

TEST_F(DataKeysTest, FirstUseCreatesOneVersionEvenWhenDaemonsRace) {
  // Proves concurrent first loads (two daemons starting) create exactly one version and share it,
  // and that the database holds the key only wrapped.
  const MasterKey master = Master('m');
  std::vector<std::optional<Result<std::shared_ptr<FieldCipher>>>> loaded(2);
  for (int i = 0; i < 2; ++i) {
    asio::co_spawn(
        io_,
        [&, i]() -> asio::awaitable<void> {
          loaded[i] = co_await LoadFieldCipher(*pool_, master, "beneficiary", In(10s));
        },
        asio::detached);
  }
  io_.restart();
  io_.run();
  ASSERT_TRUE(loaded[0] && *loaded[0] && loaded[1] && *loaded[1]);
  EXPECT_EQ(Sql("SELECT count(*) FROM key_data_keys").GetInt64(0, 0).value(), 1);
  const auto blob = loaded[0]->value()->Encrypt("6222", "row").value();
  EXPECT_EQ(loaded[1]->value()->Decrypt(blob, "row").value(), "6222");
  EXPECT_EQ(loaded[1]->value()->current_version(), 1u);
  const db::PgResult row =
      Sql("SELECT master_key_id, master_key_version, length(wrapped_key) FROM key_data_keys");
  EXPECT_EQ(row.GetText(0, 0).value(), "master");
  EXPECT_EQ(row.GetInt64(0, 1).value(), 1);
  // A wrapped 32-byte key: header ("master", version), nonce, 32 bytes, tag.
  EXPECT_EQ(row.GetInt64(0, 2).value(), static_cast<std::int64_t>(2 + 6 + 4 + 12 + 32 + 16));
}

TEST_F(DataKeysTest, WrongMasterKeyFails) {
  // Proves data keys wrapped by one master key do not load under another: other bytes fail the
  // tag, another id or version is named as a mismatch.
  ASSERT_TRUE(Load(Master('m')));
  auto other_bytes = RunAsync(io_, LoadFieldCipher(*pool_, Master('x'), "beneficiary", In(10s)));
  ASSERT_FALSE(other_bytes);
  EXPECT_EQ(other_bytes.error(), Errc::decrypt_failed);
  auto other_id =
      RunAsync(io_, LoadFieldCipher(*pool_, Master('m', "other"), "beneficiary", In(10s)));
  ASSERT_FALSE(other_id);
  EXPECT_EQ(other_id.error(), Errc::key_mismatch);
  auto other_version =
      RunAsync(io_, LoadFieldCipher(*pool_, Master('m', "master", 2), "beneficiary", In(10s)));
  ASSERT_FALSE(other_version);
  EXPECT_EQ(other_version.error(), Errc::key_mismatch);
}

TEST_F(DataKeysTest, WrappedKeyMovedToAnotherVersionDoesNotUnwrap) {
  // Proves the wrapped key is bound to its name and version: a row whose wrapped key was copied
  // from another version is refused rather than silently using the wrong key.
  const MasterKey master = Master('m');
  ASSERT_TRUE(Load(master));
  Sql("ALTER TABLE key_data_keys DISABLE TRIGGER key_data_keys_keep_versions");
  Sql("INSERT INTO key_data_keys (name, version, wrapped_key, master_key_id, master_key_version) "
      "SELECT name, 2, wrapped_key, master_key_id, master_key_version FROM key_data_keys");
  auto loaded = RunAsync(io_, LoadFieldCipher(*pool_, master, "beneficiary", In(10s)));
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error(), Errc::decrypt_failed);
}

TEST_F(DataKeysTest, VersionsCannotBeDeletedOrRenumbered) {
  // Proves the trigger keeps every data key version: deleting one would make data unreadable.
  ASSERT_TRUE(Load(Master('m')));
  for (const char* sql : {"DELETE FROM key_data_keys", "UPDATE key_data_keys SET version = 9"}) {
    auto result = RunAsync(io_, [&]() -> asio::awaitable<Result<db::PgResult>> {
      auto lease = co_await pool_->Acquire(In(10s));
      if (!lease) co_return lease.error();
      co_return co_await lease.value()->ExecuteSimple(sql, In(10s));
    }());
    EXPECT_FALSE(result) << sql;
  }
  EXPECT_EQ(Sql("SELECT count(*) FROM key_data_keys").GetInt64(0, 0).value(), 1);
}

TEST_F(DataKeysTest, RotationReachesARunningCipherWithoutRestart) {
  // Proves a rotation made elsewhere (paygatectl) reaches a loaded cipher: a blob written under the
  // new version decrypts through DecryptReloading, and afterwards the cipher writes under it.
  const MasterKey master = Master('m');
  const auto running = Load(master);
  ASSERT_TRUE(running);
  const std::string v1 = running->Encrypt("old", "row").value();
  EXPECT_EQ(Rotate(master), 2u);
  const auto fresh = Load(master);
  const std::string v2 = fresh->Encrypt("new", "row").value();
  EXPECT_EQ(FieldCipher::BlobVersion(v2).value(), 2u);
  EXPECT_EQ(running->Decrypt(v2, "row").error(), Errc::unknown_key_version);
  auto reloaded =
      RunAsync(io_, DecryptReloading(*pool_, master, *running, v2, "row", In(10s)));
  ASSERT_TRUE(reloaded) << reloaded.error().message();
  EXPECT_EQ(reloaded.value(), "new");
  EXPECT_EQ(running->current_version(), 2u);
  EXPECT_EQ(running->Decrypt(v1, "row").value(), "old");
  // A third rotation, picked up by an explicit reload (SIGHUP or a timer in the daemon).
  EXPECT_EQ(Rotate(master), 3u);
  EXPECT_EQ(RunAsync(io_, ReloadFieldCipher(*pool_, master, *running, In(10s))).value(), 1u);
  EXPECT_EQ(FieldCipher::BlobVersion(running->Encrypt("x", "row").value()).value(), 3u);
  auto list = RunAsync(io_, ListDataKeys(*pool_, In(10s)));
  ASSERT_TRUE(list);
  ASSERT_EQ(list.value().size(), 3u);
  EXPECT_EQ(list.value()[2].version, 3u);
  EXPECT_EQ(list.value()[2].master_key_id, "master");
  EXPECT_EQ(list.value()[2].created_at.size(), 20u);
}

TEST_F(DataKeysTest, RewrapMovesEveryRowToTheCurrentVersion) {
  // Proves the rotation story end to end: rows written under v1, rotate, rows written under v2,
  // rewrap in small batches: every row is on v2 and still decrypts to its own value; a second run
  // finds nothing to do; a blob copied into another row is counted as failed and left alone.
  const MasterKey master = Master('m');
  const auto v1 = Load(master);
  Insert(*v1, 0, 300);
  Sql("INSERT INTO test_payouts (id, account) VALUES ('po_null', NULL)");
  ASSERT_EQ(Rotate(master), 2u);
  const auto v2 = Load(master);
  Insert(*v2, 300, 400);
  // A v1 blob copied from another row: its associated data names the other row.
  Sql("INSERT INTO test_payouts (id, account) SELECT 'po_copied', account FROM test_payouts "
      "WHERE id = 'po_100007'");

  auto before = ReadAll(*v2);
  int on_v1 = 0;
  for (const auto& [id, row] : before) on_v1 += row.first == 1 ? 1 : 0;
  EXPECT_EQ(on_v1, 301);

  RewrapOptions options;
  options.batch_size = 64;
  const RewrapReport report = Rewrap(*v2, options);
  EXPECT_EQ(report.rewrapped, 300);
  EXPECT_EQ(report.failed, 1);
  EXPECT_TRUE(report.reached_end);
  EXPECT_EQ(report.remaining, 1);  // the copied blob
  EXPECT_EQ(report.batches, 5);    // 301 old rows in batches of 64

  const auto after = ReadAll(*v2);
  ASSERT_EQ(after.size(), 401u);
  for (int i = 0; i < 400; ++i) {
    const std::string id = "po_" + std::to_string(100000 + i);
    ASSERT_EQ(after.at(id).first, 2u) << id;
    ASSERT_EQ(after.at(id).second, AccountNumber(i)) << id;
  }
  EXPECT_EQ(after.at("po_copied").first, 1u);
  EXPECT_EQ(Sql("SELECT count(*) FROM test_payouts WHERE account IS NULL").GetInt64(0, 0).value(),
            1);
  // Rows written under v2 were not even rewritten: identical bytes.
  const RewrapReport again = Rewrap(*v2, options);
  EXPECT_EQ(again.rewrapped, 0);
  EXPECT_EQ(again.batches, 1);
}

TEST_F(DataKeysTest, RewrapIsBoundedResumableAndSkipsRowsAWriterHolds) {
  // Proves batches_max bounds a run and after_id resumes it, and that a row locked by a concurrent
  // writer is skipped (not waited for, not overwritten) and picked up by the next run.
  const MasterKey master = Master('m');
  const auto v1 = Load(master);
  Insert(*v1, 0, 50);
  ASSERT_EQ(Rotate(master), 2u);
  const auto v2 = Load(master);

  RewrapOptions first;
  first.batch_size = 10;
  first.batches_max = 2;
  const RewrapReport partial = Rewrap(*v2, first);
  EXPECT_EQ(partial.rewrapped, 20);
  EXPECT_FALSE(partial.reached_end);
  EXPECT_EQ(partial.last_id, "po_100019");
  EXPECT_EQ(partial.remaining, 30);

  // A writer holds po_100030 in an open transaction and updates it under v2 meanwhile.
  const std::string id = "po_100030";
  const std::string written = v2->Encrypt("changed", RowAad(kAccount, id)).value();
  RewrapReport resumed;
  RunAsync(io_, [&]() -> asio::awaitable<void> {
    auto writer = co_await pool_->Acquire(In(10s));
    CO_ASSERT_OK(writer);
    CO_ASSERT_OK(co_await writer.value()->ExecuteSimple("BEGIN", In(10s)));
    auto locked = co_await writer.value()->Execute(
        "SELECT account FROM test_payouts WHERE id = $1 FOR UPDATE", db::Params().Add(id), In(10s));
    CO_ASSERT_OK(locked);
    RewrapOptions rest;
    rest.batch_size = 10;
    rest.after_id = partial.last_id;
    auto report = co_await RewrapColumn(*pool_, *v2, kAccount, rest);
    CO_ASSERT_OK(report);
    resumed = report.value();
    CO_ASSERT_OK(co_await writer.value()->Execute(
        "UPDATE test_payouts SET account = $1 WHERE id = $2",
        db::Params().AddBytea(written).Add(id), In(10s)));
    CO_ASSERT_OK(co_await writer.value()->ExecuteSimple("COMMIT", In(10s)));
  }());
  EXPECT_EQ(resumed.rewrapped, 29);
  EXPECT_TRUE(resumed.reached_end);
  EXPECT_EQ(resumed.remaining, 1);  // the locked row, still on v1 while the writer held it

  // The writer's own update survived, and put the row on v2 itself.
  const auto after = ReadAll(*v2);
  EXPECT_EQ(after.at(id), std::make_pair(2u, std::string("changed")));
  for (const auto& [row_id, row] : after) EXPECT_EQ(row.first, 2u) << row_id;
}

TEST_F(DataKeysTest, RewrapRefusesIdentifiersThatAreNotPlain) {
  // Proves table and column names are never spliced into SQL unless they are plain identifiers.
  const auto cipher = Load(Master('m'));
  EncryptedColumn bad = kAccount;
  bad.table = "test_payouts; DROP TABLE key_data_keys";
  auto report = RunAsync(io_, RewrapColumn(*pool_, *cipher, bad, RewrapOptions{}));
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error(), Errc::bad_key_material);
  EXPECT_EQ(RowAad(kAccount, "po_1"), "test_payouts/po_1/account");
}

}  // namespace
}  // namespace paygate::keys
