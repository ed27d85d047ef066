#include "gateway/ctl.h"

#include <iostream>
#include <optional>
#include <thread>

#include "config/logging.h"
#include "gateway/daemon.h"
#include "gateway/edge/asio_fwd.h"
#include "ledger/db/migrations.h"
#include "ledger/db/pg_pool.h"

namespace paygate::gateway {

namespace asio = edge::asio;

int RunMigrate(const config::v1::Config& config) {
  log::Configure(config.logging());
  auto pool_options = DatabasePoolOptions(config.database());
  if (!pool_options) {
    std::cerr << "paygatectl migrate: " << pool_options.error() << "\n";
    return 1;
  }
  asio::io_context ioc;
  auto work = asio::make_work_guard(ioc);
  std::thread runner([&ioc] { ioc.run(); });
  db::PgPool pool(ioc.get_executor(), std::move(pool_options).value());
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
