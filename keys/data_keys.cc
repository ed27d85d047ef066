#include "keys/data_keys.h"

#include <charconv>

#include <fmt/format.h>

#include "ledger/db/params.h"
#include "ledger/db/transaction.h"
#include "ledger/ledger/try.h"

namespace paygate::keys {
namespace {

namespace asio = boost::asio;
using db::Params;
using db::PgConnection;

constexpr db::Statement kSelectVersions{
    "keys_select_versions",
    "SELECT version, wrapped_key FROM key_data_keys WHERE name = $1 AND version > $2 "
    "ORDER BY version"};

// One lock per data key name, so concurrent creations and rotations of a name take turns.
constexpr db::Statement kLockName{
    "keys_lock_name", "SELECT pg_advisory_xact_lock(hashtextextended('paygate/data_key/' || $1, 0))"};

constexpr db::Statement kMaxVersion{
    "keys_max_version", "SELECT coalesce(max(version), 0) FROM key_data_keys WHERE name = $1"};

constexpr db::Statement kInsert{
    "keys_insert",
    "INSERT INTO key_data_keys (name, version, wrapped_key, master_key_id, master_key_version) "
    "VALUES ($1, $2, $3, $4, $5)"};

Result<std::uint32_t> ToVersion(std::int64_t v) {
  if (v < 1 || v > std::int64_t{INT32_MAX}) return Errc::bad_blob;
  return static_cast<std::uint32_t>(v);
}

// The versions of `name` above `above`, unwrapped.
asio::awaitable<Result<std::vector<DataKeyVersion>>> FetchVersions(PgConnection& conn,
                                                                   const MasterKey& master,
                                                                   const std::string& name,
                                                                   std::uint32_t above,
                                                                   db::Deadline deadline) {
  LEDGER_CO_TRY(auto rows, co_await conn.Execute(
                               kSelectVersions,
                               Params().Add(name).Add(static_cast<std::int64_t>(above)), deadline));
  std::vector<DataKeyVersion> out;
  for (int r = 0; r < rows.rows(); ++r) {
    LEDGER_CO_TRY(auto raw_version, rows.GetInt64(r, 0));
    LEDGER_CO_TRY(auto version, ToVersion(raw_version));
    LEDGER_CO_TRY(auto wrapped, rows.GetBytea(r, 1));
    LEDGER_CO_TRY(auto key, master.Unwrap(wrapped, DataKeyAad(name, version)));
    out.push_back(DataKeyVersion{version, std::move(key)});
  }
  co_return out;
}

// Inserts version max+1 of `name` unless `only_if_absent` and a version exists; returns the
// version inserted, or 0 when nothing was.
asio::awaitable<Result<std::uint32_t>> AddVersion(db::PgPool& pool, const MasterKey& master,
                                                  const std::string& name, bool only_if_absent,
                                                  db::Deadline deadline) {
  co_return co_await db::RunInTransaction(
      pool, deadline, db::TransactionOptions{},
      [&](PgConnection& conn) -> asio::awaitable<Result<std::uint32_t>> {
        LEDGER_CO_TRYV(co_await conn.Execute(kLockName, Params().Add(name), deadline));
        LEDGER_CO_TRY(auto max_rows, co_await conn.Execute(kMaxVersion, Params().Add(name),
                                                           deadline));
        LEDGER_CO_TRY(auto max_version, max_rows.GetInt64(0, 0));
        if (only_if_absent && max_version > 0) co_return std::uint32_t{0};
        LEDGER_CO_TRY(auto version, ToVersion(max_version + 1));
        std::string bytes(kAeadKeySize, '\0');
        LEDGER_CO_TRYV(RandomBytes(
            {reinterpret_cast<unsigned char*>(bytes.data()), bytes.size()}));
        const Secret key(std::move(bytes));
        LEDGER_CO_TRY(auto wrapped, master.Wrap(key, DataKeyAad(name, version)));
        LEDGER_CO_TRYV(co_await conn.Execute(
            kInsert,
            Params()
                .Add(name)
                .Add(static_cast<std::int64_t>(version))
                .AddBytea(wrapped)
                .Add(master.id())
                .Add(static_cast<std::int64_t>(master.version())),
            deadline));
        co_return version;
      });
}

}  // namespace

std::string DataKeyAad(std::string_view name, std::uint32_t version) {
  return fmt::format("paygate/data_key/{}/{}", name, version);
}

asio::awaitable<Result<std::shared_ptr<FieldCipher>>> LoadFieldCipher(db::PgPool& pool,
                                                                      const MasterKey& master,
                                                                      std::string data_key_name,
                                                                      db::Deadline deadline) {
  if (!IsValidKeyName(data_key_name)) co_return Errc::bad_key_material;
  std::vector<DataKeyVersion> versions;
  {
    LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
    LEDGER_CO_TRY(versions, co_await FetchVersions(*lease, master, data_key_name, 0, deadline));
  }
  if (versions.empty()) {
    // First use: create version 1 (another daemon may win the race; then this inserts nothing).
    LEDGER_CO_TRYV(co_await AddVersion(pool, master, data_key_name, /*only_if_absent=*/true,
                                       deadline));
    LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
    LEDGER_CO_TRY(versions, co_await FetchVersions(*lease, master, data_key_name, 0, deadline));
    if (versions.empty()) co_return db::Errc::protocol_error;
  }
  co_return FieldCipher::Create(std::move(data_key_name), std::move(versions));
}

asio::awaitable<Result<std::size_t>> ReloadFieldCipher(db::PgPool& pool, const MasterKey& master,
                                                       FieldCipher& cipher,
                                                       db::Deadline deadline) {
  LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
  const std::uint32_t current = cipher.current_version();
  LEDGER_CO_TRY(auto versions,
                co_await FetchVersions(*lease, master, cipher.name(), current, deadline));
  lease.Release();
  if (versions.empty()) co_return std::size_t{0};
  co_return cipher.AddVersions(std::move(versions));
}

asio::awaitable<Result<std::string>> DecryptReloading(db::PgPool& pool, const MasterKey& master,
                                                      FieldCipher& cipher, std::string_view blob,
                                                      std::string_view aad,
                                                      db::Deadline deadline) {
  auto plaintext = cipher.Decrypt(blob, aad);
  if (plaintext || plaintext.error() != Errc::unknown_key_version) co_return plaintext;
  LEDGER_CO_TRYV(co_await ReloadFieldCipher(pool, master, cipher, deadline));
  co_return cipher.Decrypt(blob, aad);
}

asio::awaitable<Result<std::uint32_t>> RotateDataKey(db::PgPool& pool, const MasterKey& master,
                                                     std::string name, db::Deadline deadline) {
  if (!IsValidKeyName(name)) co_return Errc::bad_key_material;
  co_return co_await AddVersion(pool, master, name, /*only_if_absent=*/false, deadline);
}

asio::awaitable<Result<std::vector<DataKeyInfo>>> ListDataKeys(db::PgPool& pool,
                                                               db::Deadline deadline) {
  LEDGER_CO_TRY(auto lease, co_await pool.Acquire(deadline));
  LEDGER_CO_TRY(
      auto rows,
      co_await lease->Execute(
          "SELECT name, version, master_key_id, master_key_version, "
          "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
          "FROM key_data_keys ORDER BY name, version",
          Params(), deadline));
  std::vector<DataKeyInfo> out;
  for (int r = 0; r < rows.rows(); ++r) {
    DataKeyInfo info;
    LEDGER_CO_TRY(auto name, rows.GetText(r, 0));
    info.name = std::string(name);
    LEDGER_CO_TRY(auto version, rows.GetInt64(r, 1));
    LEDGER_CO_TRY(info.version, ToVersion(version));
    LEDGER_CO_TRY(auto master_id, rows.GetText(r, 2));
    info.master_key_id = std::string(master_id);
    LEDGER_CO_TRY(auto master_version, rows.GetInt64(r, 3));
    LEDGER_CO_TRY(info.master_key_version, ToVersion(master_version));
    LEDGER_CO_TRY(auto created, rows.GetText(r, 4));
    info.created_at = std::string(created);
    out.push_back(std::move(info));
  }
  co_return out;
}

}  // namespace paygate::keys
