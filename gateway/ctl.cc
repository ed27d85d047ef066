#include "gateway/ctl.h"

#include <iostream>
#include <optional>
#include <thread>

#include "config/logging.h"
#include "gateway/daemon.h"
#include "gateway/edge/asio_fwd.h"
#include "keys/secret_file.h"
#include "ledger/db/migrations.h"
#include "ledger/db/pg_pool.h"

namespace paygate::gateway {

namespace asio = edge::asio;

int RunMigrate(const config::v1::Config& config) {
  log::Configure(config.logging());
  keys::Secret password;
  if (!config.database().password_file().empty()) {
    auto read = keys::ReadSecretFile(config.database().password_file());
    if (!read) {
      std::cerr << "database.password_file: " << read.error().message() << "\n";
      return 1;
    }
    password = std::move(read).value();
  }
  config::v1::Database database = config.database();
  database.set_url(EffectiveDatabaseUrl(database));
  asio::io_context ioc;
  auto work = asio::make_work_guard(ioc);
  std::thread runner([&ioc] { ioc.run(); });
  db::PgPool pool(ioc.get_executor(), db::PoolOptionsFromConfig(database, std::move(password)));
  std::optional<Result<db::MigrationReport, db::DetailedError>> report;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        report.emplace(
            co_await db::ApplyMigrations(pool, db::Clock::now() + std::chrono::minutes(10)));
      },
      asio::use_future)
      .get();
  pool.Close();
  ioc.stop();
  runner.join();
  if (!*report) {
    std::cerr << "paygatectl migrate: " << report->error().message << "\n";
    return 1;
  }
  std::cout << "migrations applied: " << report->value().applied << " (schema version "
            << report->value().version_before << " -> " << report->value().version_after
            << ")\n";
  return 0;
}

}  // namespace paygate::gateway
