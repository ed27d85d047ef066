#pragma once

// PgResult: the rows or command status of one successful statement, with typed accessors.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <libpq-fe.h>

#include "config/result.h"

namespace paygate::db {

// Owns a PGresult (freed with PQclear). Values arrive in PostgreSQL's text format; the typed
// accessors parse and validate them, because what comes from the database is input, not an
// invariant (STYLE.md). Row and column indexes out of range are programming errors and are
// asserted. Move-only. Immutable after construction, so const access from several threads is safe.
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* result) : result_(result) {}

  int rows() const;
  int columns() const;
  // Rows inserted, updated, deleted, selected... by the statement (PQcmdTuples); 0 when not
  // applicable.
  std::int64_t affected_rows() const;
  // The command tag, e.g. "INSERT 0 1", "COMMIT", "ROLLBACK".
  std::string_view command_status() const;
  // Index of the column named `name`, or -1.
  int ColumnIndex(std::string_view name) const;

  bool IsNull(int row, int col) const;
  // Errc::unexpected_null when NULL. The view is valid while this PgResult lives.
  Result<std::string_view> GetText(int row, int col) const;
  // Errc::unexpected_null when NULL, Errc::bad_value when the text is not a 64-bit integer.
  Result<std::int64_t> GetInt64(int row, int col) const;
  // Errc::unexpected_null when NULL, Errc::bad_value unless the text is "t" or "f".
  Result<bool> GetBool(int row, int col) const;
  // A bytea column (hex output format) decoded into raw bytes.
  Result<std::string> GetBytea(int row, int col) const;

  PGresult* raw() const { return result_.get(); }

 private:
  void CheckCell(int row, int col) const;

  struct Deleter {
    void operator()(PGresult* result) const { PQclear(result); }
  };
  std::unique_ptr<PGresult, Deleter> result_;
};

}  // namespace paygate::db
