#pragma once

// RunInTransaction: runs a coroutine inside BEGIN ... COMMIT on a pooled connection and retries it
// on serialization failures (40001) and deadlocks (40P01).
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <string_view>
#include <type_traits>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "config/paygate_config.pb.h"
#include "config/result.h"
#include "ledger/db/errc.h"
#include "ledger/db/pg_connection.h"
#include "ledger/db/pg_pool.h"

namespace paygate::db {

enum class IsolationLevel { kReadCommitted, kRepeatableRead, kSerializable };

struct RetryPolicy {
  // Attempts in total, the first included (config: database.retry_attempts_max). At least 1.
  std::uint32_t attempts_max = 5;
  // Each retry waits a uniformly random time in [0, backoff_base * 2^(failed attempts - 1)] ("full
  // jitter"), so transactions that collided do not collide again in lockstep.
  std::chrono::milliseconds backoff_base{10};
  // Source of randomness (uniform over uint64). Injected so tests and simulations are
  // deterministic; empty means a per-thread std::mt19937_64 seeded from std::random_device.
  std::function<std::uint64_t()> random;
};

// From database.retry_attempts_max and database.retry_backoff_base_ms (zeros take the schema
// defaults).
RetryPolicy RetryPolicyFromConfig(const config::v1::Database& database);

// The wait before the retry that follows `failed_attempts` failures (>= 1). Pure apart from
// policy.random; the exponent is capped so the bound cannot overflow.
std::chrono::milliseconds RetryBackoff(const RetryPolicy& policy, std::uint32_t failed_attempts);

// What happened, for callers and tests that want more than the result.
struct TransactionReport {
  std::uint32_t attempts = 0;  // Attempts started (fn runs once per attempt that got past BEGIN).
  PgError last_error;          // The server's error behind the last failed attempt, if any.
};

struct TransactionOptions {
  IsolationLevel isolation = IsolationLevel::kReadCommitted;
  RetryPolicy retry;
  TransactionReport* report = nullptr;  // Filled in when set.
  // BEGIN goes out with fn's first statement (PgConnection::Defer) instead of on its own: one
  // round trip less per transaction. A connection lost then is reported, not retried, since
  // fn's first statement may have been sent too.
  bool begin_with_first_statement = false;
  // fn may end the transaction itself, sending COMMIT in one pipeline with its last statement
  // (PgConnection::ExecutePipeline) to save a round trip; it must then return COMMIT's error, if
  // any. A connection fn left outside a transaction is taken as committed; one still inside is
  // committed here as usual.
  bool body_may_commit = false;
};

// The BEGIN statement for an isolation level.
std::string_view BeginStatement(IsolationLevel isolation);

namespace detail {

template <class A>
struct AwaitableResult;
template <class T>
struct AwaitableResult<boost::asio::awaitable<Result<T>>> {
  using Value = T;
};

// Errors that mean "the same transaction may well succeed if run again".
inline bool IsRetryable(std::error_code ec) {
  return ec == Errc::serialization_failure || ec == Errc::deadlock;
}

// Ends a failed attempt. A connection in an unknown state is marked broken so the pool drops it.
boost::asio::awaitable<void> Rollback(PgConnection& conn, Deadline deadline);

// COMMIT, checking that the server did commit: after an ignored error inside the transaction
// PostgreSQL answers COMMIT with ROLLBACK, which is a failure here (transaction_rolled_back).
boost::asio::awaitable<Result<void>> Commit(PgConnection& conn, Deadline deadline);

}  // namespace detail

// Runs `fn(PgConnection&) -> awaitable<Result<T>>` inside a transaction at the given isolation
// level: BEGIN, fn, COMMIT. When fn, or COMMIT, fails with serialization_failure or deadlock, the
// transaction is rolled back and run again on a fresh attempt, after a full-jitter backoff, up to
// options.retry.attempts_max attempts in all and never past `deadline`; the last error is returned
// then. Any other error from fn rolls back and is returned as is. fn may therefore run several
// times: it must not have effects outside the database, and must not swallow errors of statements
// it runs (COMMIT would then report transaction_rolled_back). A connection error at COMMIT leaves
// the outcome unknown and is returned, never retried; a connection lost before BEGIN completed is
// retried at once. Each attempt leases its own connection from `pool`.
template <class Fn>
requires std::invocable<Fn&, PgConnection&>
auto RunInTransaction(PgPool& pool, Deadline deadline, TransactionOptions options, Fn fn)
    -> boost::asio::awaitable<
        Result<typename detail::AwaitableResult<std::invoke_result_t<Fn&, PgConnection&>>::Value>> {
  using T = typename detail::AwaitableResult<std::invoke_result_t<Fn&, PgConnection&>>::Value;
  const std::uint32_t attempts_max = std::max<std::uint32_t>(options.retry.attempts_max, 1);
  std::error_code last_error;
  for (std::uint32_t attempt = 1;; ++attempt) {
    if (options.report) options.report->attempts = attempt;
    {
      auto lease = co_await pool.Acquire(deadline);
      if (!lease) co_return lease.error();
      PgConnection& conn = *lease.value();
      Result<PgResult> begun = PgResult();
      if (options.begin_with_first_statement) {
        conn.Defer(BeginStatement(options.isolation));
      } else {
        begun = co_await conn.ExecuteSimple(BeginStatement(options.isolation), deadline);
      }
      if (!begun) {
        // A connection that died just before BEGIN (server restart) ran nothing: another attempt on
        // a fresh connection is safe.
        if (begun.error() != Errc::connection_lost || attempt >= attempts_max) {
          co_return begun.error();
        }
        continue;
      }

      Result<T> result = co_await fn(conn);
      if (result) {
        Result<void> committed = outcome::success();
        // Outside a transaction with BEGIN still deferred, fn ran nothing: commit as usual.
        if (!options.body_may_commit || conn.transaction_status() != TransactionStatus::kIdle ||
            conn.has_deferred()) {
          committed = co_await detail::Commit(conn, deadline);
        }
        if (committed) co_return std::move(result);
        last_error = committed.error();
        if (options.report) options.report->last_error = conn.last_error();
      } else {
        last_error = result.error();
        // Before the rollback, which replaces last_error().
        if (options.report) options.report->last_error = conn.last_error();
        co_await detail::Rollback(conn, deadline);
      }
    }  // The connection goes back to the pool before the backoff.

    if (!detail::IsRetryable(last_error) || attempt >= attempts_max) co_return last_error;
    auto wait = RetryBackoff(options.retry, attempt);
    if (Clock::now() + wait >= deadline) co_return last_error;
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    timer.expires_after(wait);
    boost::system::error_code ignored;
    co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
  }
}

}  // namespace paygate::db
