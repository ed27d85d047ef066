#include "ledger/db/transaction.h"

#include <utility>  // Before Asio (DESIGN.md §2).

#include <random>

#include "config/logging.h"

namespace paygate::db {
namespace {

std::uint64_t DefaultRandom() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return engine();
}

}  // namespace

RetryPolicy RetryPolicyFromConfig(const config::v1::Database& database) {
  RetryPolicy policy;
  if (database.retry_attempts_max() != 0) policy.attempts_max = database.retry_attempts_max();
  if (database.retry_backoff_base_ms() != 0) {
    policy.backoff_base = std::chrono::milliseconds(database.retry_backoff_base_ms());
  }
  return policy;
}

std::chrono::milliseconds RetryBackoff(const RetryPolicy& policy, std::uint32_t failed_attempts) {
  // 2^20 * the largest configurable base (10 s) still fits comfortably in 64 bits.
  constexpr std::uint32_t kExponentMax = 20;
  std::uint32_t exponent = std::min(failed_attempts == 0 ? 0 : failed_attempts - 1, kExponentMax);
  auto base = static_cast<std::uint64_t>(std::max<std::int64_t>(policy.backoff_base.count(), 0));
  std::uint64_t bound = base << exponent;
  std::uint64_t draw = policy.random ? policy.random() : DefaultRandom();
  return std::chrono::milliseconds(static_cast<std::int64_t>(draw % (bound + 1)));
}

std::string_view BeginStatement(IsolationLevel isolation) {
  switch (isolation) {
    case IsolationLevel::kReadCommitted:
      return "BEGIN ISOLATION LEVEL READ COMMITTED";
    case IsolationLevel::kRepeatableRead:
      return "BEGIN ISOLATION LEVEL REPEATABLE READ";
    case IsolationLevel::kSerializable:
      return "BEGIN ISOLATION LEVEL SERIALIZABLE";
  }
  return "BEGIN";
}

namespace detail {

boost::asio::awaitable<void> Rollback(PgConnection& conn, Deadline deadline) {
  conn.ClearDeferred();  // A BEGIN fn never sent: nothing to roll back, nothing to send later.
  if (!conn.usable()) co_return;
  if (conn.transaction_status() == TransactionStatus::kIdle)
    co_return;  // Already ended by the server.
  if (conn.transaction_status() != TransactionStatus::kInTransaction &&
      conn.transaction_status() != TransactionStatus::kInError) {
    conn.MarkBroken();
    co_return;
  }
  auto rolled_back = co_await conn.ExecuteSimple("ROLLBACK", deadline);
  if (!rolled_back) {
    log::Get("db")->warn("event=rollback_failed error={:?}", rolled_back.error().message());
    conn.MarkBroken();
  }
}

boost::asio::awaitable<Result<void>> Commit(PgConnection& conn, Deadline deadline) {
  auto committed = co_await conn.ExecuteSimple("COMMIT", deadline);
  if (!committed) co_return committed.error();
  if (committed.value().command_status() != "COMMIT") {
    co_return make_error_code(Errc::transaction_rolled_back);
  }
  co_return outcome::success();
}

}  // namespace detail
}  // namespace paygate::db
