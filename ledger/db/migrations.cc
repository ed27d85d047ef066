#include "ledger/db/migrations.h"

#include <utility>  // Before Asio (DESIGN.md §2).

#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "config/logging.h"
#include "ledger/db/transaction.h"

namespace paygate::db {
namespace {

// Key of the transaction-scoped advisory lock serialising migrations across daemon instances:
// "paygate1" in ASCII, unlikely to collide with locks taken by other software sharing the database.
constexpr std::int64_t kMigrationLockKey = 0x7061796761746531;

struct Recorded {
  std::int32_t version = 0;
  std::string name;
  std::string checksum;
};

// The recorded history, empty when the bookkeeping table does not exist yet (fresh database).
boost::asio::awaitable<Result<std::vector<Recorded>>> ReadRecorded(PgConnection& conn,
                                                                   Deadline deadline) {
  auto exists = co_await conn.Execute("SELECT to_regclass('paygate_schema_migrations') IS NOT NULL",
                                      {}, deadline);
  if (!exists) co_return exists.error();
  auto table_exists = exists.value().GetBool(0, 0);
  if (!table_exists) co_return table_exists.error();
  std::vector<Recorded> recorded;
  if (!table_exists.value()) co_return recorded;

  auto rows = co_await conn.Execute(
      "SELECT version, name, checksum_sha256 FROM paygate_schema_migrations ORDER BY version", {},
      deadline);
  if (!rows) co_return rows.error();
  const PgResult& result = rows.value();
  for (int row = 0; row < result.rows(); ++row) {
    auto version = result.GetInt64(row, 0);
    auto name = result.GetText(row, 1);
    auto checksum = result.GetText(row, 2);
    if (!version) co_return version.error();
    if (!name) co_return name.error();
    if (!checksum) co_return checksum.error();
    recorded.push_back(Recorded{.version = static_cast<std::int32_t>(version.value()),
                                .name = std::string(name.value()),
                                .checksum = std::string(checksum.value())});
  }
  co_return recorded;
}

std::int32_t HighestVersion(const std::vector<Recorded>& recorded) {
  return recorded.empty() ? 0 : recorded.back().version;  // Ordered by version.
}

// Compares the recorded history with the embedded migrations; returns the embedded migrations
// missing from the database, in order.
Result<std::vector<const Migration*>, DetailedError> Compare(
    const std::vector<Recorded>& recorded, std::span<const Migration> migrations) {
  for (const Recorded& r : recorded) {
    auto it = std::find_if(migrations.begin(), migrations.end(),
                           [&](const Migration& m) { return m.version == r.version; });
    if (it == migrations.end()) {
      return DetailedError(
          make_error_code(Errc::schema_too_new),
          fmt::format("database has migration {} ({}) which this binary does not know; deploy a "
                      "newer paygated",
                      r.version, r.name));
    }
    if (it->sha256_hex != r.checksum) {
      return DetailedError(
          make_error_code(Errc::migration_checksum_mismatch),
          fmt::format("migration {} ({}): recorded checksum {} differs from the embedded {}; an "
                      "applied migration must never change, add a new one instead",
                      r.version, r.name, r.checksum, it->sha256_hex));
    }
  }
  std::vector<const Migration*> missing;
  const std::int32_t highest = HighestVersion(recorded);
  for (const Migration& m : migrations) {
    bool applied = std::any_of(recorded.begin(), recorded.end(),
                               [&](const Recorded& r) { return r.version == m.version; });
    if (applied) continue;
    if (m.version < highest) {
      return DetailedError(
          make_error_code(Errc::migration_failed),
          fmt::format("migration {} ({}) is missing below the applied version {}; the recorded "
                      "history is inconsistent",
                      m.version, m.name, highest));
    }
    missing.push_back(&m);
  }
  return missing;
}

}  // namespace

boost::asio::awaitable<Result<MigrationReport, DetailedError>> ApplyMigrations(
    PgPool& pool, Deadline deadline, std::span<const Migration> migrations) {
  MigrationReport report;
  bool first = true;
  for (;;) {
    // Set by the transaction body when it fails with something worth a message.
    DetailedError detail;
    // Migrations are not retried: a failure is a bug to fix, not contention (the lock prevents
    // that).
    TransactionOptions options{
        .isolation = IsolationLevel::kReadCommitted,
        .retry = RetryPolicy{.attempts_max = 1, .backoff_base = {}, .random = {}},
        .report = nullptr};
    auto step = co_await RunInTransaction(
        pool, deadline, std::move(options),
        [&](PgConnection& conn) -> boost::asio::awaitable<Result<std::int32_t>> {
          auto locked = co_await conn.Execute("SELECT pg_advisory_xact_lock($1)",
                                              Params().Add(kMigrationLockKey), deadline);
          if (!locked) co_return locked.error();
          auto recorded = co_await ReadRecorded(conn, deadline);
          if (!recorded) co_return recorded.error();
          if (first) {
            report.version_before = HighestVersion(recorded.value());
            first = false;
          }
          auto missing = Compare(recorded.value(), migrations);
          if (!missing) {
            detail = missing.error();
            co_return detail.code;
          }
          if (missing.value().empty()) co_return 0;

          const Migration& next = *missing.value().front();
          auto applied = co_await conn.ExecuteSimple(next.sql, deadline);
          if (!applied) {
            if (IsConnectionError(applied.error())) co_return applied.error();
            detail = DetailedError(
                make_error_code(Errc::migration_failed),
                fmt::format("migration {} ({}) failed: SQLSTATE {}: {}", next.version, next.name,
                            conn.last_error().sqlstate, conn.last_error().message));
            co_return detail.code;
          }
          auto recorded_now = co_await conn.Execute(
              "INSERT INTO paygate_schema_migrations (version, name, checksum_sha256) "
              "VALUES ($1, $2, $3)",
              Params().Add(next.version).Add(next.name).Add(next.sha256_hex), deadline);
          if (!recorded_now) co_return recorded_now.error();
          co_return next.version;
        });
    if (!step) {
      if (detail.code == step.error()) co_return detail;
      co_return DetailedError(step.error());
    }
    if (step.value() == 0) break;
    ++report.applied;
    log::Get("db")->info("event=migration_applied version={}", step.value());
  }
  auto final_state = co_await CheckSchemaCurrent(pool, deadline, migrations);
  if (!final_state) co_return final_state.error();
  report.version_after = migrations.empty() ? 0 : migrations.back().version;
  co_return report;
}

boost::asio::awaitable<Result<void, DetailedError>> CheckSchemaCurrent(
    PgPool& pool, Deadline deadline, std::span<const Migration> migrations) {
  auto lease = co_await pool.Acquire(deadline);
  if (!lease) co_return DetailedError(lease.error());
  auto recorded = co_await ReadRecorded(*lease.value(), deadline);
  if (!recorded) co_return DetailedError(recorded.error());
  auto missing = Compare(recorded.value(), migrations);
  if (!missing) co_return missing.error();
  if (!missing.value().empty()) {
    std::string versions;
    for (const Migration* m : missing.value()) {
      versions += fmt::format("{}{} ({})", versions.empty() ? "" : ", ", m->version, m->name);
    }
    co_return DetailedError(
        make_error_code(Errc::schema_outdated),
        fmt::format("database schema is at version {}, missing migrations: {}; run the migrations "
                    "before starting paygated",
                    HighestVersion(recorded.value()), versions));
  }
  co_return outcome::success();
}

}  // namespace paygate::db
