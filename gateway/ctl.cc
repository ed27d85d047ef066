#include "gateway/ctl.h"

#include <functional>
#include <iostream>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "config/logging.h"
#include "gateway/ctl_database.h"
#include "gateway/daemon.h"
#include "gateway/edge/asio_fwd.h"
#include "gateway/utc_time.h"
#include "ledger/db/migrations.h"
#include "ledger/db/pg_pool.h"
#include "ledger/ledger/postgres_ledger.h"

namespace paygate::gateway {

namespace asio = edge::asio;
using namespace std::chrono_literals;

int WithDatabase(const config::v1::Config& config, std::string_view name,
                 std::function<asio::awaitable<int>(db::PgPool&, asio::io_context&)> command) {
  log::Configure(config.logging());
  auto pool_options = DatabasePoolOptions(config);
  if (!pool_options) {
    std::cerr << "paygatectl " << name << ": " << pool_options.error() << "\n";
    return 1;
  }
  asio::io_context ioc;
  auto work = asio::make_work_guard(ioc);
  std::thread runner([&ioc] { ioc.run(); });
  int exit_code = 1;
  {
    db::PgPool pool(ioc.get_executor(), std::move(pool_options).value());
    asio::co_spawn(
        ioc, [&]() -> asio::awaitable<void> { exit_code = co_await command(pool, ioc); },
        asio::use_future)
        .get();
    pool.Close();
  }
  ioc.stop();
  runner.join();
  return exit_code;
}

namespace {

// Runs `read` on a ledger over `pool` and stops the ledger afterwards, as its contract requires.
template <class T>
asio::awaitable<Result<T>> WithLedger(
    db::PgPool& pool, asio::io_context& ioc,
    std::function<asio::awaitable<Result<T>>(ledger::Ledger&)> read) {
  ledger::PostgresLedger ledger(pool, ioc.get_executor(), {});
  auto result = co_await read(ledger);
  co_await ledger.Stop();
  co_return result;
}

std::string FormatBalance(const ledger::Balance& b) {
  return fmt::format("dr_posted={} cr_posted={} dr_pending={} cr_pending={}", b.debits_posted,
                     b.credits_posted, b.debits_pending, b.credits_pending);
}

constexpr auto kCommandTime = 10min;

}  // namespace

int RunMigrate(const config::v1::Config& config) {
  return WithDatabase(
      config, "migrate", [](db::PgPool& pool, asio::io_context&) -> asio::awaitable<int> {
        auto report = co_await db::ApplyMigrations(pool, db::Clock::now() + kCommandTime);
        if (!report) {
          std::cerr << "paygatectl migrate: " << report.error().message << "\n";
          co_return 1;
        }
        std::cout << "migrations applied: " << report.value().applied << " (schema version "
                  << report.value().version_before << " -> " << report.value().version_after
                  << ")\n";
        co_return 0;
      });
}

int RunLedgerVerify(const config::v1::Config& config) {
  return WithDatabase(
      config, "ledger verify", [](db::PgPool& pool, asio::io_context& ioc) -> asio::awaitable<int> {
        auto report = co_await WithLedger<ledger::VerifyReport>(
            pool, ioc,
            [](ledger::Ledger& ledger) { return ledger.Verify(db::Clock::now() + kCommandTime); });
        if (!report) {
          std::cerr << "paygatectl ledger verify: " << report.error().message() << "\n";
          co_return 1;
        }
        for (const auto& difference : report.value().differences) {
          std::cout << "DIFFERENCE " << difference.detail << "\n";
        }
        std::cout << fmt::format(
            "ledger verify: {} accounts and {} batches checked: {}\n",
            report.value().accounts_checked, report.value().batches_checked,
            report.value().ok()
                ? std::string("sound")
                : fmt::format("{} difference(s)", report.value().differences.size()));
        co_return report.value().ok() ? 0 : 3;
      });
}

int RunLedgerTrialBalance(const config::v1::Config& config, const std::string& currency,
                          const std::optional<std::string>& at) {
  std::optional<ledger::Timestamp> instant;
  if (at) {
    instant = ParseUtc(*at);
    if (!instant) {
      std::cerr << "paygatectl ledger trial-balance: --at must be UTC like 2026-11-27T03:00:00Z\n";
      return 2;
    }
  }
  return WithDatabase(
      config, "ledger trial-balance",
      [&](db::PgPool& pool, asio::io_context& ioc) -> asio::awaitable<int> {
        auto trial =
            co_await WithLedger<ledger::TrialBalance>(pool, ioc, [&](ledger::Ledger& ledger) {
              return ledger.GetTrialBalance(currency, instant, db::Clock::now() + kCommandTime);
            });
        if (!trial) {
          std::cerr << "paygatectl ledger trial-balance: " << trial.error().message() << "\n";
          co_return 1;
        }
        for (const auto& line : trial.value().lines) {
          std::cout << fmt::format("{:>8} {:<10} {:<40} {}\n", line.account_id.value,
                                   ledger::ToString(line.type), line.name,
                                   FormatBalance(line.balance));
        }
        std::cout << fmt::format("total {} {}\n", trial.value().currency,
                                 FormatBalance(trial.value().total));
        co_return 0;
      });
}

int RunLedgerStatement(const config::v1::Config& config, std::int64_t account, std::int32_t limit) {
  return WithDatabase(
      config, "ledger statement",
      [&](db::PgPool& pool, asio::io_context& ioc) -> asio::awaitable<int> {
        auto page =
            co_await WithLedger<ledger::StatementPage>(pool, ioc, [&](ledger::Ledger& ledger) {
              return ledger.GetStatement(ledger::AccountId{account}, {}, limit,
                                         db::Clock::now() + kCommandTime);
            });
        if (!page) {
          std::cerr << "paygatectl ledger statement: " << page.error().message() << "\n";
          co_return 1;
        }
        for (const auto& line : page.value().lines) {
          std::cout << fmt::format("{} {:<24} {:<12} ref={} delta[{}] balance[{}]\n",
                                   line.created_at.time_since_epoch().count(),
                                   line.transfer_id.value, ledger::ToString(line.kind),
                                   line.external_ref, FormatBalance(line.delta),
                                   FormatBalance(line.running_balance));
        }
        if (page.value().next) std::cout << "(more lines follow)\n";
        co_return 0;
      });
}

int RunLedgerSetClosed(const config::v1::Config& config, std::int64_t account, bool closed) {
  const std::string command = closed ? "ledger close-account" : "ledger reopen-account";
  return WithDatabase(
      config, command, [&](db::PgPool& pool, asio::io_context& ioc) -> asio::awaitable<int> {
        auto done = co_await WithLedger<void>(pool, ioc, [&](ledger::Ledger& ledger) {
          return ledger.SetAccountClosed(ledger::AccountId{account}, closed,
                                         db::Clock::now() + kCommandTime);
        });
        if (!done) {
          std::cerr << "paygatectl " << command << ": " << done.error().message() << "\n";
          co_return 1;
        }
        std::cout << fmt::format("account {} {}\n", account, closed ? "closed" : "reopened");
        co_return 0;
      });
}

}  // namespace paygate::gateway
