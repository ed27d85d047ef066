// ledger_bench: the ledger half of the ledger benchmark (tests/bench/ledger/run.sh, DESIGN.md §8).
// Posts one-transfer requests through PostgresLedger from N concurrent callers, each waiting for
// its own result before posting the next, for a fixed time, and prints on stdout one line
//   tps=<transfers per second> p50_ms=<...> p99_ms=<...> transfers=<n> batches=<n> batch_avg=<n>
// Every transfer is "premium paid" (DESIGN.md §4): Dr provider_clearing:wechat:m<k> (k random among
// --merchants accounts) / Cr premiums_received, so every transfer hits the same hot account, as the
// pgbench anchor (anchor.sql) does.
//
// Usage: ledger_bench --url URL [--setup] [--concurrency N] [--seconds S] [--warmup-seconds S]
//                     [--merchants M] [--threads T] [--tag TAG]
//   --setup  applies the migrations and creates the chart (idempotent); without it the run expects
//            them in place.
//   --tag    prefix of the transfer ids, so several runs can share one database.
// Exits non-zero when any transfer fails or the hot account's counters do not add up afterwards.
#include <utility>  // Before Asio (DESIGN.md §2).

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include "ledger/db/migrations.h"
#include "ledger/db/pg_pool.h"
#include "ledger/ledger/chart.h"
#include "ledger/ledger/postgres_ledger.h"

namespace {

namespace asio = boost::asio;
namespace ledger = paygate::ledger;
namespace db = paygate::db;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string url;
  bool setup = false;
  int concurrency = 64;
  double seconds = 20;
  double warmup_seconds = 2;
  int merchants = 1000;
  int threads = 1;
  std::string tag = "b";
};

[[noreturn]] void Usage(std::string_view problem) {
  std::fprintf(stderr,
               "ledger_bench: %.*s\nusage: ledger_bench --url URL [--setup] [--concurrency N] "
               "[--seconds S] [--warmup-seconds S] [--merchants M] [--threads T] [--tag TAG]\n",
               static_cast<int>(problem.size()), problem.data());
  std::exit(2);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(std::string(arg) + " needs a value");
      return argv[++i];
    };
    try {
      if (arg == "--url") {
        o.url = value();
      } else if (arg == "--setup") {
        o.setup = true;
      } else if (arg == "--concurrency") {
        o.concurrency = std::stoi(value());
      } else if (arg == "--seconds") {
        o.seconds = std::stod(value());
      } else if (arg == "--warmup-seconds") {
        o.warmup_seconds = std::stod(value());
      } else if (arg == "--merchants") {
        o.merchants = std::stoi(value());
      } else if (arg == "--threads") {
        o.threads = std::stoi(value());
      } else if (arg == "--tag") {
        o.tag = value();
      } else {
        Usage("unknown argument " + std::string(arg));
      }
    } catch (const std::exception&) {
      Usage("bad value for " + std::string(arg));
    }
  }
  if (o.url.empty()) Usage("--url is required");
  if (o.concurrency < 1 || o.seconds <= 0 || o.warmup_seconds < 0 || o.merchants < 1 ||
      o.threads < 1) {
    Usage("concurrency, seconds, merchants and threads must be positive");
  }
  return o;
}

// Runs `task` on the io_context's threads and waits for it from this (non-I/O) thread.
template <class T>
T Await(asio::io_context& io, asio::awaitable<T> task) {
  auto wrapped = [](asio::awaitable<T> t) -> asio::awaitable<std::optional<T>> {
    co_return co_await std::move(t);
  };
  return *asio::co_spawn(io, wrapped(std::move(task)), asio::use_future).get();
}

void Await(asio::io_context& io, asio::awaitable<void> task) {
  asio::co_spawn(io, std::move(task), asio::use_future).get();
}

// What one caller saw; merged after the run.
struct CallerStats {
  std::vector<float> latencies_ms;  // Of the transfers completed inside the measurement window.
  std::int64_t amount_posted = 0;   // Every kOk transfer, warm-up included.
  std::int64_t failures = 0;        // Errors and results other than kOk.
};

asio::awaitable<void> Caller(ledger::PostgresLedger& book, const Options& options, int caller,
                             const std::vector<ledger::AccountId>& clearing,
                             ledger::AccountId premiums, Clock::time_point measure_from,
                             Clock::time_point stop_at, CallerStats& stats) {
  std::mt19937_64 rng(static_cast<std::uint64_t>(caller) * 7919 + 1);
  std::uniform_int_distribution<std::size_t> pick(0, clearing.size() - 1);
  std::uniform_int_distribution<std::int64_t> amount(1, 100000);
  for (std::int64_t seq = 0; Clock::now() < stop_at; ++seq) {
    std::vector<ledger::Transfer> request(1);
    ledger::Transfer& t = request[0];
    t.id.value = options.tag + "-" + std::to_string(caller) + "-" + std::to_string(seq);
    t.debit_account_id = clearing[pick(rng)];
    t.credit_account_id = premiums;
    t.amount = amount(rng);
    t.currency = "CNY";
    t.kind = ledger::TransferKind::kSingle;
    t.reason_code = 1;
    t.external_ref = "order-" + t.id.value;
    const std::int64_t posted_amount = t.amount;
    const auto start = Clock::now();
    auto results = co_await book.PostTransfers(std::move(request), start + 30s);
    const auto end = Clock::now();
    if (!results || results.value().size() != 1 ||
        results.value()[0] != ledger::TransferResult::kOk) {
      if (stats.failures++ == 0) {
        std::fprintf(stderr, "ledger_bench: caller %d: transfer failed: %s\n", caller,
                     results ? std::string(ToString(results.value().at(0))).c_str()
                             : results.error().message().c_str());
      }
      continue;
    }
    stats.amount_posted += posted_amount;
    if (end >= measure_from && end <= stop_at) {
      stats.latencies_ms.push_back(std::chrono::duration<float, std::milli>(end - start).count());
    }
  }
}

// Sets up (optionally), runs the callers and prints the result line. Returns the exit status.
int Run(asio::io_context& io, const Options& options) {
  db::PoolOptions pool_options;
  pool_options.connect.url = options.url;
  pool_options.connect.application_name = "ledger_bench";
  pool_options.connect.statement_timeout = 30000ms;
  pool_options.pool_size_max = 4;
  db::PgPool pool(io.get_executor(), std::move(pool_options));
  ledger::PostgresLedger book(pool, io.get_executor(), {});
  // The batcher must be stopped before it is destroyed, on every path out.
  struct StopGuard {
    asio::io_context& io;
    ledger::PostgresLedger& book;
    ~StopGuard() { Await(io, book.Stop()); }
  } stop_guard{io, book};

  ledger::ChartSpec spec;
  spec.currency = "CNY";
  for (int m = 0; m < options.merchants; ++m) {
    spec.clearing.push_back({"wechat", "m" + std::to_string(m)});
  }
  spec.banks = {"icbc-001"};
  std::vector<ledger::AccountId> clearing;
  for (const auto& c : spec.clearing) {
    clearing.push_back(
        ledger::AccountIdFor("CNY", "provider_clearing:wechat:" + c.merchant_account));
  }
  const ledger::AccountId premiums = ledger::AccountIdFor("CNY", "premiums_received");

  if (options.setup) {
    auto migrated = Await(io, db::ApplyMigrations(pool, db::Clock::now() + 60s));
    if (!migrated) {
      std::fprintf(stderr, "ledger_bench: migrations failed: %s\n",
                   migrated.error().message.c_str());
      return 1;
    }
    auto created =
        Await(io, book.CreateAccounts(ledger::StandardChart(spec), db::Clock::now() + 60s));
    if (!created) {
      std::fprintf(stderr, "ledger_bench: creating the chart failed: %s\n",
                   created.error().message().c_str());
      return 1;
    }
    for (auto r : created.value()) {
      if (r != ledger::AccountResult::kOk && r != ledger::AccountResult::kExists) {
        std::fprintf(stderr, "ledger_bench: creating the chart: %s\n",
                     std::string(ToString(r)).c_str());
        return 1;
      }
    }
  }

  auto before = Await(io, book.GetBalance(premiums, std::nullopt, db::Clock::now() + 10s));
  if (!before) {
    std::fprintf(stderr, "ledger_bench: no premiums_received account (run with --setup): %s\n",
                 before.error().message().c_str());
    return 1;
  }
  const auto stats_before = Await(io, book.batcher().GetStats());
  const std::uint64_t cached_before = book.cached_batches();

  auto seconds = [](double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  const auto measure_from = Clock::now() + seconds(options.warmup_seconds);
  const auto stop_at = measure_from + seconds(options.seconds);
  std::vector<CallerStats> stats(static_cast<std::size_t>(options.concurrency));
  int running = options.concurrency;
  std::mutex done_mutex;
  std::condition_variable done;
  for (int c = 0; c < options.concurrency; ++c) {
    asio::co_spawn(io,
                   Caller(book, options, c, clearing, premiums, measure_from, stop_at,
                          stats[static_cast<std::size_t>(c)]),
                   [&](std::exception_ptr e) {
                     if (e) std::fprintf(stderr, "ledger_bench: a caller threw\n");
                     std::lock_guard lock(done_mutex);
                     if (--running == 0) done.notify_all();
                   });
  }
  {
    std::unique_lock lock(done_mutex);
    done.wait(lock, [&] { return running == 0; });
  }
  const auto stats_after = Await(io, book.batcher().GetStats());
  auto after = Await(io, book.GetBalance(premiums, std::nullopt, db::Clock::now() + 10s));

  std::vector<float> latencies;
  std::int64_t amount_posted = 0;
  std::int64_t failures = 0;
  for (auto& s : stats) {
    latencies.insert(latencies.end(), s.latencies_ms.begin(), s.latencies_ms.end());
    amount_posted += s.amount_posted;
    failures += s.failures;
  }
  int status = 0;
  // The book must show exactly what the callers were told was posted.
  if (!after || after.value().credits_posted - before.value().credits_posted != amount_posted) {
    std::fprintf(
        stderr, "ledger_bench: premiums_received moved by %lld, callers posted %lld\n",
        after ? static_cast<long long>(after.value().credits_posted - before.value().credits_posted)
              : -1LL,
        static_cast<long long>(amount_posted));
    status = 1;
  }
  if (failures != 0) {
    std::fprintf(stderr, "ledger_bench: %lld transfers failed\n", static_cast<long long>(failures));
    status = 1;
  }
  if (latencies.empty()) {
    std::fprintf(stderr, "ledger_bench: no transfer completed inside the measurement window\n");
    status = 1;
  }
  if (status != 0) return status;

  std::sort(latencies.begin(), latencies.end());
  auto quantile = [&](double q) {
    const auto index = static_cast<std::size_t>(q * static_cast<double>(latencies.size()));
    return latencies[std::min(latencies.size() - 1, index)];
  };
  const std::uint64_t batches = stats_after.batches_total - stats_before.batches_total;
  const std::uint64_t cached = book.cached_batches() - cached_before;
  const std::uint64_t transfers = stats_after.transfers_total - stats_before.transfers_total;
  std::printf(
      "tps=%.1f p50_ms=%.3f p99_ms=%.3f transfers=%zu batches=%llu batch_avg=%.1f "
      "cached_batches=%llu\n",
      static_cast<double>(latencies.size()) / options.seconds, quantile(0.50), quantile(0.99),
      latencies.size(), static_cast<unsigned long long>(batches),
      batches ? static_cast<double>(transfers) / static_cast<double>(batches) : 0.0,
      static_cast<unsigned long long>(cached));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = ParseArgs(argc, argv);
  asio::io_context io(options.threads);
  auto work = asio::make_work_guard(io);
  std::vector<std::thread> threads;
  for (int i = 0; i < options.threads; ++i) threads.emplace_back([&io] { io.run(); });
  const int status = Run(io, options);
  work.reset();
  io.stop();
  for (auto& t : threads) t.join();
  return status;
}
