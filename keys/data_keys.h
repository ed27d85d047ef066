#pragma once

// Data keys in PostgreSQL (table key_data_keys, migration 0008): versions of named AES-256 keys,
// each wrapped by the master key, turned into FieldCiphers for the daemon and rotated by
// `paygatectl keys rotate` (DESIGN.md §6, issue 7).
//
// This part of keys/ needs the database layer, which itself depends on keys/ (secrets): it is the
// separate library paygate_keys_store, so that `config <- keys <- ledger` still holds for
// paygate_keys.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "config/result.h"
#include "keys/field_cipher.h"
#include "keys/master_key.h"
#include "ledger/db/pg_connection.h"
#include "ledger/db/pg_pool.h"

namespace paygate::keys {

// The associated data of a wrapped data key: its name and version.
std::string DataKeyAad(std::string_view name, std::uint32_t version);

// Data keys live in PostgreSQL, each version wrapped by the master key; the key is created (version
// 1) on first use, safely when several daemons start at once. Returns a cipher holding every
// version unwrapped, the newest current. Errors: bad_key_material (invalid name), key_mismatch (a
// version wrapped by another master key id or version), decrypt_failed (the master key's bytes are
// not the ones that wrapped the data key), bad_blob, and database errors. The cipher does no I/O;
// keep it (shared) for the life of the process and refresh it with ReloadFieldCipher.
boost::asio::awaitable<Result<std::shared_ptr<FieldCipher>>> LoadFieldCipher(
    db::PgPool& pool, const MasterKey& master, std::string data_key_name, db::Deadline deadline);

// Adds to `cipher` the versions created since it was loaded (after `paygatectl keys rotate` on any
// machine), so the running daemon writes under the new version and reads blobs written under it.
// Call on SIGHUP, periodically, or through DecryptReloading. Returns how many versions were added.
// Same errors as LoadFieldCipher.
boost::asio::awaitable<Result<std::size_t>> ReloadFieldCipher(db::PgPool& pool,
                                                              const MasterKey& master,
                                                              FieldCipher& cipher,
                                                              db::Deadline deadline);

// cipher.Decrypt, reloading the cipher once when the blob names a version it does not have yet
// (another daemon rotated and already wrote under the new version). `blob` and `aad` must stay valid
// until the returned awaitable completes. Errors: those of Decrypt and ReloadFieldCipher.
boost::asio::awaitable<Result<std::string>> DecryptReloading(db::PgPool& pool,
                                                             const MasterKey& master,
                                                             FieldCipher& cipher,
                                                             std::string_view blob,
                                                             std::string_view aad,
                                                             db::Deadline deadline);

// Adds the next version (1 when the key has none) of data key `name`: 32 random bytes, wrapped by
// `master`. New writes use it once each daemon reloads; old versions keep decrypting. Concurrent
// rotations of one name serialise on an advisory lock and get distinct versions. Returns the new
// version. Errors: bad_key_material (invalid name), crypto_failed, database errors.
boost::asio::awaitable<Result<std::uint32_t>> RotateDataKey(db::PgPool& pool,
                                                            const MasterKey& master,
                                                            std::string name,
                                                            db::Deadline deadline);

// What `paygatectl keys list` shows: never key bytes.
struct DataKeyInfo {
  std::string name;
  std::uint32_t version = 0;
  std::string master_key_id;
  std::uint32_t master_key_version = 0;
  std::string created_at;  // UTC, ISO 8601.
};

// Every version of every data key, by name and version.
boost::asio::awaitable<Result<std::vector<DataKeyInfo>>> ListDataKeys(db::PgPool& pool,
                                                                      db::Deadline deadline);

}  // namespace paygate::keys
