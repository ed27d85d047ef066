#pragma once

// PgPool: a bounded pool of PostgreSQL connections shared by all I/O threads.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <chrono>
#include <cstdint>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "config/paygate_config.pb.h"
#include "config/result.h"
#include "keys/secret.h"
#include "ledger/db/pg_connection.h"

namespace paygate::db {

struct PoolOptions {
  // URL, password, application_name and statement_timeout of every connection.
  ConnectOptions connect;
  std::uint32_t pool_size_max = 8;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds acquire_timeout{2000};
};

// Options from the database section of the configuration. The URL is used as given: the caller
// applies the PAYGATE_DATABASE_URL override first, and reads `password` from database.password_file
// (keys::ReadSecretFile). Zero values (a configuration that skipped validation) take the schema
// defaults.
PoolOptions PoolOptionsFromConfig(const config::v1::Database& database, keys::Secret password);

// A point-in-time view for metrics.
struct PoolStats {
  std::uint32_t size = 0;     // Connections open or being opened (never above pool_size_max).
  std::uint32_t idle = 0;     // Open and free.
  std::uint32_t in_use = 0;   // Leased to a caller.
  std::uint32_t waiting = 0;  // Acquire() calls waiting for a connection.
  std::uint64_t connect_failures_total = 0;
  std::uint64_t connections_opened_total = 0;
  std::uint64_t connections_discarded_total = 0;  // Broken, timed out, or dead while idle.
  std::uint64_t acquire_timeouts_total = 0;       // Acquire() calls that ended in pool_exhausted.
};

namespace detail {
struct PoolState;
}  // namespace detail

// Exclusive use of one connection. Destroying (or Release()-ing) the lease returns the connection
// to the pool, which keeps it only if it is healthy and outside any transaction; a connection left
// mid-statement, inside a transaction, or broken is closed and replaced on demand. May outlive the
// PgPool.
class PgLease {
 public:
  PgLease() = default;
  PgLease(PgLease&& other) noexcept = default;
  PgLease& operator=(PgLease&& other) noexcept;
  PgLease(const PgLease&) = delete;
  PgLease& operator=(const PgLease&) = delete;
  ~PgLease();

  PgConnection& operator*() const { return *conn_; }
  PgConnection* operator->() const { return conn_.get(); }
  explicit operator bool() const { return conn_ != nullptr; }

  // Returns the connection now rather than at destruction.
  void Release();

 private:
  friend class PgPool;
  PgLease(std::shared_ptr<detail::PoolState> state, std::unique_ptr<PgConnection> conn)
      : state_(std::move(state)), conn_(std::move(conn)) {}

  std::shared_ptr<detail::PoolState> state_;
  std::unique_ptr<PgConnection> conn_;
};

// Thread-safety: every member function may be called concurrently from any thread and any executor;
// a mutex guards the bookkeeping and is never held across a suspension or a system call that can
// block. Connection I/O runs on strands of the pool's executor; a waiting Acquire() resumes on the
// caller's own executor. Connections are opened lazily, at most pool_size_max at a time; a
// connection found broken (server restart, lost socket, deadline passed mid-statement) is
// discarded, so the pool heals itself once the server is back, without restarting the daemon.
class PgPool {
 public:
  // Connections do their I/O on `executor`, whose execution context must outlive the pool and every
  // lease taken from it.
  PgPool(boost::asio::any_io_executor executor, PoolOptions options);
  // Closes the pool (see Close()). Outstanding leases stay valid and are closed when returned.
  ~PgPool();
  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;

  // A connection for exclusive use: an idle one, a new one if fewer than pool_size_max are open, or
  // the next one returned. Waits at most until min(deadline, now + acquire_timeout). Errors:
  // pool_exhausted (nothing became free in time), connect_failed / timeout (opening a connection
  // failed; the next call tries again), pool_closed.
  boost::asio::awaitable<Result<PgLease>> Acquire(Deadline deadline);

  // Readiness probe: runs SELECT 1 on a pooled connection. Same errors as Acquire and Execute.
  boost::asio::awaitable<Result<void>> Ping(Deadline deadline);

  PoolStats Stats() const;

  // The executor the pool's connections do their I/O on (the constructor's).
  boost::asio::any_io_executor executor() const;

  // Refuses new Acquire() calls (pool_closed), wakes the waiting ones with pool_closed and closes
  // idle connections. Part of ordered shutdown; idempotent.
  void Close();

 private:
  std::shared_ptr<detail::PoolState> state_;
};

}  // namespace paygate::db
