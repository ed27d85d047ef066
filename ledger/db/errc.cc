#include "ledger/db/errc.h"

#include <string>
#include <system_error>

namespace paygate::db {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "paygate.db"; }

  std::string message(int value) const override {
    switch (static_cast<Errc>(value)) {
      case Errc::connect_failed:
        return "could not connect to the database";
      case Errc::timeout:
        return "database operation exceeded its deadline";
      case Errc::connection_lost:
        return "connection to the database was lost";
      case Errc::query_failed:
        return "database statement failed";
      case Errc::serialization_failure:
        return "serialization failure (SQLSTATE 40001)";
      case Errc::deadlock:
        return "deadlock detected (SQLSTATE 40P01)";
      case Errc::unique_violation:
        return "unique constraint violated (SQLSTATE 23505)";
      case Errc::query_canceled:
        return "statement canceled by the server (SQLSTATE 57014)";
      case Errc::pool_exhausted:
        return "no database connection became free in time";
      case Errc::pool_closed:
        return "database pool is closed";
      case Errc::unexpected_null:
        return "unexpected NULL in a database result";
      case Errc::bad_value:
        return "database value does not have the expected type";
      case Errc::protocol_error:
        return "unexpected response from the database";
      case Errc::transaction_rolled_back:
        return "transaction was rolled back instead of committed";
      case Errc::schema_outdated:
        return "database schema is missing migrations";
      case Errc::schema_too_new:
        return "database schema is newer than this binary";
      case Errc::migration_checksum_mismatch:
        return "an applied migration differs from the embedded one";
      case Errc::migration_failed:
        return "migration failed";
      case Errc::unsafe_durability:
        return "database durability settings are unsafe";
    }
    return "unknown database error";
  }
};

}  // namespace

const std::error_category& ErrorCategory() noexcept {
  static const Category category;
  return category;
}

std::error_code make_error_code(Errc e) noexcept { return {static_cast<int>(e), ErrorCategory()}; }

bool IsConnectionError(std::error_code ec) noexcept {
  return ec == Errc::connection_lost || ec == Errc::timeout || ec == Errc::connect_failed ||
         ec == Errc::protocol_error;
}

void outcome_throw_as_system_error_with_payload(const DetailedError& e) {
  // Only reached when a caller calls value() on an error without checking, which is a bug in the
  // caller.
  throw std::system_error(e.code, e.message);
}

}  // namespace paygate::db
