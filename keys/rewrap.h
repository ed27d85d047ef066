#pragma once

// Rewrap: moves encrypted columns to the current version of their data key, in bounded batches,
// while the daemon keeps writing (issue 7 "Rotation without downtime"; `paygatectl keys rewrap`).
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "config/result.h"
#include "keys/field_cipher.h"
#include "ledger/db/pg_connection.h"
#include "ledger/db/pg_pool.h"

namespace paygate::keys {

// A column of FieldCipher blobs (bytea, NULL allowed) and how its rows' associated data is built.
// The module that owns the table registers it (gateway/keys_ctl.cc, EncryptedColumns()) and
// encrypts with RowAad, so rewrap rebuilds exactly the associated data the writer used.
struct EncryptedColumn {
  std::string table;        // e.g. "payouts" (a plain lower-case SQL identifier)
  std::string id_column;    // the row's unique, ordered id, e.g. "id"
  std::string blob_column;  // e.g. "beneficiary_account"
  std::string aad_prefix;   // e.g. "payouts"
  std::string data_key;     // the data key whose FieldCipher encrypts the column
};

// The associated data of the blob in `column` of row `row_id`: "<aad_prefix>/<row_id>/<blob_column>",
// e.g. "payouts/po_123/beneficiary_account". Writers must encrypt with exactly this.
std::string RowAad(const EncryptedColumn& column, std::string_view row_id);

// Lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters): table and column names
// are spliced into SQL, so nothing else is accepted.
bool IsPlainIdentifier(std::string_view name);

struct RewrapOptions {
  // Rows per transaction (`--batch N`): each batch locks at most this many rows, briefly.
  std::int32_t batch_size = 500;
  // Start after this id (the last_id of an interrupted run); empty: from the start. Re-running
  // without it is also correct, only slower: rows already on the current version are not touched.
  std::optional<std::string> after_id;
  // Stop after this many batches; 0: until the end of the table.
  std::int64_t batches_max = 0;
  // Bound of each batch's transaction.
  std::chrono::milliseconds batch_timeout{30000};
  // Pause between batches, so a rewrap in the background leaves the database to the daemon.
  std::chrono::milliseconds pause{0};
};

struct RewrapReport {
  std::int64_t batches = 0;
  std::int64_t rewrapped = 0;  // Rows now on the current version.
  // Rows older than the current version that did not decrypt (wrong associated data, another key,
  // tampered): left untouched and counted, never "repaired".
  std::int64_t failed = 0;
  std::string last_id;  // The last row id seen; pass as after_id to resume.
  bool reached_end = false;
  // Rows still below the current version after the run (locked by a writer at the time, failed,
  // or beyond batches_max); run again to pick up the locked ones.
  std::int64_t remaining = 0;
};

// Re-encrypts every blob of `column` written under a version older than `cipher`'s current one
// (its version is read from the blob header in SQL, so current rows are not even fetched), walking
// the table in id order. Each batch runs in its own transaction: SELECT ... FOR UPDATE SKIP LOCKED
// (rows a writer holds are skipped, not waited for), decrypt with the old version, encrypt under
// the current one, UPDATE ... WHERE the blob is still the one read. A concurrent writer therefore
// never loses its update, and an interrupted run loses nothing: a batch commits whole or not at
// all. Blobs newer than `cipher` (another daemon rotated since it loaded) are left alone. Errors:
// bad_key_material (column names not plain identifiers, batch_size < 1), database errors (the
// report up to the failed batch is lost; rerun).
boost::asio::awaitable<Result<RewrapReport>> RewrapColumn(db::PgPool& pool,
                                                          const FieldCipher& cipher,
                                                          const EncryptedColumn& column,
                                                          RewrapOptions options);

}  // namespace paygate::keys
