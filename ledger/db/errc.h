#pragma once

// Error codes of the database access layer (STYLE.md "Errors and async": one enum and category per
// module).
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

namespace paygate::db {

enum class Errc {
  // 0 is reserved for success by std::error_code.
  connect_failed = 1,       // A connection could not be established (refused, auth, bad URL).
  timeout,                  // The caller's deadline passed; the connection is discarded.
  connection_lost,          // The server went away mid-operation (restart, crash, network).
  query_failed,             // The server rejected a statement (see PgConnection::last_error()).
  serialization_failure,    // SQLSTATE 40001; RunInTransaction retries it.
  deadlock,                 // SQLSTATE 40P01; RunInTransaction retries it.
  unique_violation,         // SQLSTATE 23505; last_error().constraint names the constraint.
  query_canceled,           // SQLSTATE 57014: server-side statement_timeout or a cancel request.
  pool_exhausted,           // No connection became free within the acquire timeout.
  pool_closed,              // PgPool::Close() was called.
  unexpected_null,          // A typed accessor met NULL; check IsNull() first for nullable columns.
  bad_value,                // A column's text does not parse as the requested type.
  protocol_error,           // libpq reported an unexpected result status.
  transaction_rolled_back,  // COMMIT answered ROLLBACK: a statement failed and the error was
                            // ignored.
  schema_outdated,          // Embedded migrations are missing from the database.
  schema_too_new,           // The database has a migration version this binary does not know.
  migration_checksum_mismatch,  // A recorded migration differs from the embedded file.
  migration_failed,             // A migration's SQL failed or the recorded history is inconsistent.
  unsafe_durability,            // fsync, synchronous_commit or full_page_writes is off.
};

const std::error_category& ErrorCategory() noexcept;

// Found by argument-dependent lookup when an Errc is converted to std::error_code.
std::error_code make_error_code(Errc e) noexcept;

// Errors where retrying on a fresh connection is the right reaction: the connection (not the
// statement) is the problem. Used by the pool to discard connections.
bool IsConnectionError(std::error_code ec) noexcept;

// An error with a message for operators, for start-up checks (migrations, durability) whose answer
// must name what is wrong ("fsync=off", "migration 3 checksum differs"). The message never holds
// secrets.
struct DetailedError {
  std::error_code code;
  std::string message;

  DetailedError() = default;
  // Implicit so a plain error code (from a query) propagates through a DetailedResult unchanged.
  DetailedError(std::error_code c) : code(c), message(c.message()) {}  // NOLINT(google-explicit-*)
  DetailedError(Errc e) : DetailedError(make_error_code(e)) {}         // NOLINT(google-explicit-*)
  DetailedError(std::error_code c, std::string m) : code(c), message(std::move(m)) {}
};

// Lets Boost.Outcome treat DetailedError like an error code (value() on an error throws
// system_error).
inline std::error_code make_error_code(const DetailedError& e) { return e.code; }
[[noreturn]] void outcome_throw_as_system_error_with_payload(const DetailedError& e);

}  // namespace paygate::db

template <>
struct std::is_error_code_enum<paygate::db::Errc> : std::true_type {};
