#include "ledger/db/pg_pool.h"

#include <utility>  // Before Asio (DESIGN.md §2).

#include <algorithm>
#include <deque>
#include <mutex>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "config/logging.h"

namespace paygate::db {

namespace asio = boost::asio;

namespace detail {

// One Acquire() call waiting for a connection. Its fields other than `timer` are guarded by the
// pool mutex; `timer` is only touched from the waiter's executor.
struct Waiter {
  explicit Waiter(asio::any_io_executor ex) : executor(ex), timer(ex) {}
  asio::any_io_executor executor;
  asio::steady_timer timer;
  // Set when another caller hands this waiter either a connection (`conn`) or, with `conn` empty, a
  // free slot to open one in.
  bool granted = false;
  std::unique_ptr<PgConnection> conn;
};

struct PoolState {
  PoolState(asio::any_io_executor ex, PoolOptions opts)
      : executor(std::move(ex)), options(std::move(opts)) {}

  // Takes back a leased connection (called from ~PgLease on any thread).
  void Return(std::unique_ptr<PgConnection> conn);
  // Gives up a slot (a connection that was discarded or never opened): passes it to the first
  // waiter, which will open a connection in it. Requires `mu`.
  void FreeSlotLocked();
  // Wakes a granted waiter on its own executor.
  static void Wake(const std::shared_ptr<Waiter>& waiter);

  const asio::any_io_executor executor;
  const PoolOptions options;

  mutable std::mutex mu;
  std::vector<std::unique_ptr<PgConnection>>
      idle;                                     // Most recently used last (LIFO keeps them warm).
  std::deque<std::shared_ptr<Waiter>> waiters;  // FIFO.
  std::uint32_t size = 0;                       // Idle + in use + connecting.
  std::uint32_t in_use = 0;
  std::uint32_t connecting = 0;
  bool closed = false;
  std::uint64_t connect_failures_total = 0;
  std::uint64_t connections_opened_total = 0;
  std::uint64_t connections_discarded_total = 0;
  std::uint64_t acquire_timeouts_total = 0;
};

void PoolState::Wake(const std::shared_ptr<Waiter>& waiter) {
  asio::post(waiter->executor, [waiter] { waiter->timer.cancel(); });
}

void PoolState::FreeSlotLocked() {
  if (!closed && !waiters.empty()) {
    auto waiter = std::move(waiters.front());
    waiters.pop_front();
    waiter->granted = true;
    ++connecting;
    Wake(waiter);
    return;
  }
  --size;
}

void PoolState::Return(std::unique_ptr<PgConnection> conn) {
  // A connection inside a transaction or mid-statement carries state the next user must not
  // inherit.
  bool reusable = conn->usable() && conn->transaction_status() == TransactionStatus::kIdle;
  std::unique_ptr<PgConnection> discard;
  {
    std::lock_guard lock(mu);
    --in_use;
    if (!reusable || closed) {
      ++connections_discarded_total;
      discard = std::move(conn);
      FreeSlotLocked();
    } else if (!waiters.empty()) {
      auto waiter = std::move(waiters.front());
      waiters.pop_front();
      waiter->granted = true;
      waiter->conn = std::move(conn);
      ++in_use;
      Wake(waiter);
    } else {
      idle.push_back(std::move(conn));
    }
  }
  if (discard && !reusable) {
    log::Get("db")->info("event=connection_discarded backend_pid={} reason={:?}",
                         discard->backend_pid(), discard->last_error().message);
  }
  // `discard` closes the connection here, outside the lock.
}

}  // namespace detail

PoolOptions PoolOptionsFromConfig(const config::v1::Database& database, keys::Secret password) {
  auto or_default = [](std::uint32_t value, std::uint32_t fallback) {
    return value == 0 ? fallback : value;
  };
  PoolOptions options;
  options.connect.url = database.url();
  options.connect.password = std::move(password);
  options.connect.statement_timeout =
      std::chrono::milliseconds(or_default(database.statement_timeout_ms(), 10000));
  options.pool_size_max = or_default(database.pool_size_max(), 8);
  options.connect_timeout =
      std::chrono::milliseconds(or_default(database.connect_timeout_ms(), 5000));
  options.acquire_timeout =
      std::chrono::milliseconds(or_default(database.acquire_timeout_ms(), 2000));
  return options;
}

PgLease& PgLease::operator=(PgLease&& other) noexcept {
  if (this != &other) {
    Release();
    state_ = std::move(other.state_);
    conn_ = std::move(other.conn_);
  }
  return *this;
}

PgLease::~PgLease() { Release(); }

void PgLease::Release() {
  if (conn_) state_->Return(std::move(conn_));
  state_.reset();
}

PgPool::PgPool(asio::any_io_executor executor, PoolOptions options)
    : state_(std::make_shared<detail::PoolState>(std::move(executor), std::move(options))) {}

asio::any_io_executor PgPool::executor() const { return state_->executor; }

PgPool::~PgPool() { Close(); }

void PgPool::Close() {
  std::vector<std::unique_ptr<PgConnection>> idle;
  std::deque<std::shared_ptr<detail::Waiter>> waiters;
  {
    std::lock_guard lock(state_->mu);
    if (state_->closed) return;
    state_->closed = true;
    idle.swap(state_->idle);
    waiters.swap(state_->waiters);
    state_->size -= static_cast<std::uint32_t>(idle.size());
  }
  // Not granted: each waiter wakes, sees `closed` and answers pool_closed.
  for (const auto& waiter : waiters) detail::PoolState::Wake(waiter);
}

PoolStats PgPool::Stats() const {
  std::lock_guard lock(state_->mu);
  return PoolStats{
      .size = state_->size,
      .idle = static_cast<std::uint32_t>(state_->idle.size()),
      .in_use = state_->in_use,
      .waiting = static_cast<std::uint32_t>(state_->waiters.size()),
      .connect_failures_total = state_->connect_failures_total,
      .connections_opened_total = state_->connections_opened_total,
      .connections_discarded_total = state_->connections_discarded_total,
      .acquire_timeouts_total = state_->acquire_timeouts_total,
  };
}

asio::awaitable<Result<PgLease>> PgPool::Acquire(Deadline deadline) {
  // The coroutine holds the state, so a pool destroyed while callers wait does not pull it from
  // under them.
  std::shared_ptr<detail::PoolState> state = state_;
  auto executor = co_await asio::this_coro::executor;
  const Deadline wait_until = std::min(deadline, Clock::now() + state->options.acquire_timeout);

  for (;;) {
    // Either a connection to hand out or, when it stays empty, a reserved slot to open one in.
    std::unique_ptr<PgConnection> conn;
    std::shared_ptr<detail::Waiter> waiter;
    {
      std::lock_guard lock(state->mu);
      if (state->closed) co_return make_error_code(Errc::pool_closed);
      if (!state->idle.empty()) {
        conn = std::move(state->idle.back());
        state->idle.pop_back();
        ++state->in_use;
      } else if (state->size < state->options.pool_size_max) {
        ++state->size;
        ++state->connecting;
      } else {
        waiter = std::make_shared<detail::Waiter>(executor);
        state->waiters.push_back(waiter);
      }
    }

    if (waiter) {
      waiter->timer.expires_at(wait_until);
      boost::system::error_code ignored;  // Expiry and cancellation are told apart by `granted`.
      co_await waiter->timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      std::lock_guard lock(state->mu);
      if (!waiter->granted) {
        // Still queued unless Close() took the queue.
        auto it = std::find(state->waiters.begin(), state->waiters.end(), waiter);
        if (it != state->waiters.end()) state->waiters.erase(it);
        if (state->closed) co_return make_error_code(Errc::pool_closed);
        ++state->acquire_timeouts_total;
        co_return make_error_code(Errc::pool_exhausted);
      }
      conn = std::move(waiter->conn);  // Empty: granted a slot, see FreeSlotLocked().
    }

    if (conn) {
      if (conn->CheckIdle()) co_return PgLease(state, std::move(conn));
      // It died while idle, typically because the server restarted. Close it and go round again:
      // the freed slot lets this caller (or the first waiter) open a fresh connection.
      log::Get("db")->info("event=connection_discarded backend_pid={} reason=dead_while_idle",
                           conn->backend_pid());
      {
        std::lock_guard lock(state->mu);
        --state->in_use;
        ++state->connections_discarded_total;
        state->FreeSlotLocked();
      }
      conn.reset();
      continue;
    }

    // A reserved slot: open a connection in it.
    const Deadline connect_deadline =
        std::min(deadline, Clock::now() + state->options.connect_timeout);
    auto opened =
        co_await PgConnection::Connect(state->executor, state->options.connect, connect_deadline);
    std::lock_guard lock(state->mu);
    --state->connecting;
    if (!opened) {
      ++state->connect_failures_total;
      state->FreeSlotLocked();
      co_return opened.error();
    }
    ++state->connections_opened_total;
    ++state->in_use;
    co_return PgLease(state, std::move(opened).value());
  }
}

asio::awaitable<Result<void>> PgPool::Ping(Deadline deadline) {
  auto lease = co_await Acquire(deadline);
  if (!lease) co_return lease.error();
  auto result = co_await lease.value()->ExecuteSimple("SELECT 1", deadline);
  if (!result) co_return result.error();
  co_return outcome::success();
}

}  // namespace paygate::db
