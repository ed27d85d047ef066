// Migrations and the durability check against a real private PostgreSQL.
#include <utility>  // Before Asio (DESIGN.md §2).

#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "ledger/db/durability.h"
#include "ledger/db/migrations.h"
#include "tests/integration/db/db_test_util.h"
#include "tests/testing/pg_cluster.h"
#include "tests/testing/run_async.h"

namespace paygate::db {
namespace {

namespace asio = boost::asio;
using namespace test;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::RunAsync;

// Runs one statement and returns its result (test set-up and inspection).
Result<PgResult> Query(asio::io_context& io, PgPool& pool, std::string sql) {
  return RunAsync(io, [&]() -> asio::awaitable<Result<PgResult>> {
    auto lease = co_await pool.Acquire(In(5s));
    if (!lease) co_return lease.error();
    co_return co_await lease.value()->ExecuteSimple(sql, In(5s));
  }());
}

TEST(MigrationsTest, EmbeddedMigrationsAreNumberedAndChecksummed) {
  // Proves the build embedded the migration files in version order with SHA-256 checksums.
  auto migrations = EmbeddedMigrations();
  ASSERT_FALSE(migrations.empty());
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    EXPECT_EQ(migrations[i].version, static_cast<std::int32_t>(i + 1));
    EXPECT_EQ(migrations[i].sha256_hex.size(), 64u);
    EXPECT_FALSE(migrations[i].sql.empty());
  }
  EXPECT_EQ(migrations[0].name, "schema_migrations");
  EXPECT_THAT(std::string(migrations[0].sql), HasSubstr("CREATE TABLE paygate_schema_migrations"));
}

TEST(MigrationsTest, ApplyOnceThenIdempotentAndSchemaCheckFollows) {
  // Proves a fresh database fails CheckSchemaCurrent with schema_outdated, ApplyMigrations applies
  // every migration once and records it, a second run applies nothing, and the check then passes.
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase(), 2));
  const auto migrations = EmbeddedMigrations();

  auto before = RunAsync(io, CheckSchemaCurrent(pool, In(5s)));
  ASSERT_FALSE(before);
  EXPECT_EQ(before.error().code, Errc::schema_outdated);
  EXPECT_THAT(before.error().message, HasSubstr("1 (schema_migrations)"));

  auto first = RunAsync(io, ApplyMigrations(pool, In(30s)));
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first.value().applied, static_cast<std::int32_t>(migrations.size()));
  EXPECT_EQ(first.value().version_before, 0);
  EXPECT_EQ(first.value().version_after, migrations.back().version);

  auto second = RunAsync(io, ApplyMigrations(pool, In(30s)));
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second.value().applied, 0);
  EXPECT_EQ(second.value().version_before, migrations.back().version);

  auto after = RunAsync(io, CheckSchemaCurrent(pool, In(5s)));
  EXPECT_TRUE(after) << after.error().message;

  auto recorded = Query(io, pool,
                        "SELECT count(*), (SELECT checksum_sha256 FROM paygate_schema_migrations "
                        "WHERE version = 1) FROM paygate_schema_migrations");
  ASSERT_TRUE(recorded);
  EXPECT_EQ(recorded.value().GetInt64(0, 0).value(), static_cast<std::int64_t>(migrations.size()));
  EXPECT_EQ(recorded.value().GetText(0, 1).value(), migrations[0].sha256_hex);
  auto instance = Query(io, pool, "SELECT count(*) FROM paygate_instance");
  ASSERT_TRUE(instance);
  EXPECT_EQ(instance.value().GetInt64(0, 0).value(), 1);
}

TEST(MigrationsTest, IdentifierChecksAcceptExactlyWhatTheirRegexesDid) {
  // Proves 0013_cheaper_checks.sql changed only the cost of the identifier CHECK constraints: for
  // each one, the installed expression and the bounded-repeat regex it replaced agree on every
  // candidate: random strings over an alphabet with valid, invalid and multi-byte characters,
  // valid bodies behind each prefix, and each length bound, one under and one over.
  struct Replaced {
    const char* table;
    const char* constraint;
    const char* column;
    const char* old_regex;
    const char* prefix;  // candidates are also built behind this prefix
  };
  const std::vector<Replaced> replaced = {
      {"ledger_transfers", "ledger_transfers_id_check", "id", "^[A-Za-z0-9_.:@/-]{1,128}$", ""},
      {"payment_orders", "payment_orders_id_check", "id", "^pay_[a-z0-9]{20,40}$", "pay_"},
      {"payment_refunds", "payment_refunds_id_check", "id", "^re_[a-z0-9]{20,40}$", "re_"},
      {"outbox_events", "outbox_events_id_check", "id", "^evt_[a-z0-9]{20,40}$", "evt_"},
      {"payouts", "payouts_id_check", "id", "^po_[a-z0-9]{20,40}$", "po_"},
      {"idempotency_keys", "idempotency_keys_key_check", "key", "^[!-~]{1,255}$", ""},
      {"api_nonces", "api_nonces_key_id_check", "key_id", "^[A-Za-z0-9_.-]{1,64}$", ""},
      {"api_nonces", "api_nonces_nonce_check", "nonce", "^[A-Za-z0-9_-]{16,64}$", ""},
  };
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase(), 2));
  ASSERT_TRUE(RunAsync(io, ApplyMigrations(pool, In(30s))));
  // Deterministic candidates (setseed) in a temporary table on the pool's one connection.
  ASSERT_TRUE(Query(io, pool,
                    "SELECT setseed(0.42); CREATE TABLE candidates AS "
                    "SELECT string_agg(substr(a, 1 + floor(random() * length(a))::int, 1), '') "
                    "AS v FROM (VALUES ('abcz09AZ_.:@/-!~ é' || E'\\n\\t\"')) x(a), "
                    "generate_series(1, 6000) s, generate_series(1, 1 + s % 300) n GROUP BY s"));
  for (const auto& r : replaced) {
    SCOPED_TRACE(r.constraint);
    auto def = Query(io, pool,
                     fmt::format("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                                 "WHERE conname = '{}' AND conrelid = '{}'::regclass",
                                 r.constraint, r.table));
    ASSERT_TRUE(def);
    ASSERT_EQ(def.value().rows(), 1);
    std::string expression(def.value().GetText(0, 0).value());
    ASSERT_EQ(expression.rfind("CHECK ", 0), 0u) << expression;
    expression = expression.substr(6);
    EXPECT_EQ(expression.find('{'), std::string::npos) << "still a bounded repeat: " << expression;
    // Valid bodies of every length from 0 to 300 behind the prefix, some with one bad character.
    const std::string query = fmt::format(
        "WITH c(v) AS (SELECT v FROM candidates UNION ALL "
        "  SELECT '{0}' || repeat('a1', n / 2) || repeat('z', n % 2) FROM generate_series(0, 300) n "
        "  UNION ALL SELECT '{0}' || repeat('b', n) || '-' FROM generate_series(0, 300) n "
        "  UNION ALL SELECT '{0}' || repeat('9', n) || E'\\n' FROM generate_series(0, 300) n "
        "  UNION ALL SELECT '{0}' || repeat('Q', n) FROM generate_series(0, 300) n "
        "  UNION ALL SELECT '' UNION ALL SELECT 'é') "
        "SELECT count(*), count(*) FILTER (WHERE ok), "
        "  min(quote_literal({1})) FILTER (WHERE ok IS DISTINCT FROM old) "
        "FROM (SELECT v AS {1} FROM c) t, LATERAL (SELECT {2} AS ok, {1} ~ '{3}' AS old) x",
        r.prefix, r.column, expression, r.old_regex);
    auto compared = Query(io, pool, query);
    ASSERT_TRUE(compared) << compared.error().message();
    EXPECT_GT(compared.value().GetInt64(0, 0).value(), 6000);
    EXPECT_GE(compared.value().GetInt64(0, 1).value(), 21) << "too few valid candidates";
    EXPECT_TRUE(compared.value().IsNull(0, 2))
        << "disagrees on " << compared.value().GetText(0, 2).value();
  }
}

TEST(MigrationsTest, ConcurrentRunnersApplyEachMigrationOnce) {
  // Proves two instances migrating the same database at once (the advisory lock) apply each
  // migration exactly once and both succeed.
  const std::string url = FreshDatabase();
  asio::io_context io;
  PgPool pool_a(io.get_executor(), MakePoolOptions(url, 1));
  PgPool pool_b(io.get_executor(), MakePoolOptions(url, 1));
  std::optional<Result<MigrationReport, DetailedError>> a;
  std::optional<Result<MigrationReport, DetailedError>> b;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { a = co_await ApplyMigrations(pool_a, In(30s)); },
      [](std::exception_ptr) {});
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { b = co_await ApplyMigrations(pool_b, In(30s)); },
      [](std::exception_ptr) {});
  io.run();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(*a) << a->error().message;
  ASSERT_TRUE(*b) << b->error().message;
  EXPECT_EQ(a->value().applied + b->value().applied,
            static_cast<std::int32_t>(EmbeddedMigrations().size()));
  auto count = Query(io, pool_a, "SELECT count(*) FROM paygate_instance");
  ASSERT_TRUE(count);
  EXPECT_EQ(count.value().GetInt64(0, 0).value(), 1);
}

TEST(MigrationsTest, ChecksumMismatchIsDetected) {
  // Proves a recorded migration whose checksum differs from the embedded file (tampered history or
  // an edited migration) makes both the check and ApplyMigrations fail with
  // migration_checksum_mismatch.
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase(), 2));
  ASSERT_TRUE(RunAsync(io, ApplyMigrations(pool, In(30s))));
  ASSERT_TRUE(Query(io, pool,
                    "UPDATE paygate_schema_migrations SET checksum_sha256 = repeat('0', 64) "
                    "WHERE version = 1"));

  auto check = RunAsync(io, CheckSchemaCurrent(pool, In(5s)));
  ASSERT_FALSE(check);
  EXPECT_EQ(check.error().code, Errc::migration_checksum_mismatch);
  EXPECT_THAT(check.error().message, HasSubstr("migration 1 (schema_migrations)"));
  auto apply = RunAsync(io, ApplyMigrations(pool, In(30s)));
  ASSERT_FALSE(apply);
  EXPECT_EQ(apply.error().code, Errc::migration_checksum_mismatch);
}

TEST(MigrationsTest, UnknownNewerVersionIsRefused) {
  // Proves a database migrated by a newer binary is refused with schema_too_new, naming the
  // version.
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase(), 2));
  ASSERT_TRUE(RunAsync(io, ApplyMigrations(pool, In(30s))));
  ASSERT_TRUE(Query(io, pool,
                    "INSERT INTO paygate_schema_migrations (version, name, checksum_sha256) "
                    "VALUES (9999, 'from_the_future', repeat('a', 64))"));
  auto check = RunAsync(io, CheckSchemaCurrent(pool, In(5s)));
  ASSERT_FALSE(check);
  EXPECT_EQ(check.error().code, Errc::schema_too_new);
  EXPECT_THAT(check.error().message, HasSubstr("9999"));
  auto apply = RunAsync(io, ApplyMigrations(pool, In(30s)));
  ASSERT_FALSE(apply);
  EXPECT_EQ(apply.error().code, Errc::schema_too_new);
}

TEST(MigrationsTest, FailingMigrationRollsBackEntirely) {
  // Proves a migration whose SQL fails half-way leaves nothing behind (its own transaction) and is
  // reported as migration_failed with the server's message; the migrations before it stay applied.
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase(), 2));
  std::vector<Migration> migrations(EmbeddedMigrations().begin(), EmbeddedMigrations().end());
  const auto next = static_cast<std::int32_t>(migrations.size() + 1);
  migrations.push_back(Migration{
      .version = next,
      .name = "broken",
      .sql = "CREATE TABLE half_done (id int8); SELECT 1 / 0;",
      .sha256_hex =
          std::string_view("0000000000000000000000000000000000000000000000000000000000000000")});
  auto apply = RunAsync(io, ApplyMigrations(pool, In(30s), migrations));
  ASSERT_FALSE(apply);
  EXPECT_EQ(apply.error().code, Errc::migration_failed);
  EXPECT_THAT(apply.error().message, HasSubstr("broken"));
  EXPECT_THAT(apply.error().message, HasSubstr("22012"));
  auto table = Query(io, pool, "SELECT to_regclass('half_done') IS NULL");
  ASSERT_TRUE(table);
  EXPECT_TRUE(table.value().GetBool(0, 0).value());
  // The embedded migrations were applied before the failing one.
  EXPECT_TRUE(RunAsync(io, CheckSchemaCurrent(pool, In(5s))));
}

TEST(DurabilityTest, DefaultClusterIsSafe) {
  // Proves the check passes on a server with fsync, full_page_writes and synchronous_commit on, and
  // accepts synchronous_commit=local.
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase(), 1));
  auto safe = RunAsync(io, CheckDurability(pool, In(5s)));
  EXPECT_TRUE(safe) << safe.error().message;
  auto local = RunAsync(io, [&]() -> asio::awaitable<Result<void, DetailedError>> {
    auto lease = co_await pool.Acquire(In(5s));
    if (!lease) co_return lease.error();
    auto set = co_await lease.value()->ExecuteSimple("SET synchronous_commit = local", In(5s));
    if (!set) co_return set.error();
    co_return co_await CheckDurability(*lease.value(), In(5s));
  }());
  EXPECT_TRUE(local) << local.error().message;
}

TEST(DurabilityTest, UnsafeSettingsAreRefusedByName) {
  // Proves the check fails with unsafe_durability and names exactly the unsafe settings: fsync=off
  // from the server's start options, full_page_writes=off after a reload, synchronous_commit=off
  // per session.
  auto cluster = testing::PgCluster::Start({.extra_settings = {{"fsync", "off"}}});
  ASSERT_NE(cluster, nullptr);
  asio::io_context io;
  PgPool pool(io.get_executor(), MakePoolOptions(cluster->Url(), 1));

  auto fsync_off = RunAsync(io, CheckDurability(pool, In(5s)));
  ASSERT_FALSE(fsync_off);
  EXPECT_EQ(fsync_off.error().code, Errc::unsafe_durability);
  EXPECT_THAT(fsync_off.error().message, HasSubstr("fsync=off"));
  EXPECT_THAT(fsync_off.error().message, Not(HasSubstr("full_page_writes")));
  EXPECT_THAT(fsync_off.error().message, Not(HasSubstr("synchronous_commit")));

  ASSERT_EQ(cluster->SetSetting("full_page_writes", "off"), "");
  auto all_off = RunAsync(io, [&]() -> asio::awaitable<Result<void, DetailedError>> {
    auto lease = co_await pool.Acquire(In(5s));
    if (!lease) co_return lease.error();
    auto set = co_await lease.value()->ExecuteSimple("SET synchronous_commit = off", In(5s));
    if (!set) co_return set.error();
    co_return co_await CheckDurability(*lease.value(), In(5s));
  }());
  ASSERT_FALSE(all_off);
  EXPECT_EQ(all_off.error().code, Errc::unsafe_durability);
  EXPECT_THAT(all_off.error().message,
              HasSubstr("fsync=off, synchronous_commit=off, full_page_writes=off"));
}

}  // namespace
}  // namespace paygate::db
