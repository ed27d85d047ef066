#pragma once

// PostgresLedger: the Ledger on PostgreSQL (schema: ledger/migrations/0002_ledger.sql).
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "ledger/db/pg_pool.h"
#include "ledger/db/transaction.h"
#include "ledger/ledger/batcher.h"
#include "ledger/ledger/ledger.h"
#include "ledger/ledger/posting.h"

namespace paygate::ledger {

struct PostgresLedgerOptions {
  BatcherOptions batcher;
  db::RetryPolicy retry;  // For 40001/40P01 on a batch (all writers lock in one order, so rare).
};

// How a batch is written, in one READ COMMITTED transaction:
//  1. lock the chain head (every writer takes it first: one global lock order, batch ids in commit
//     order);
//  2. read the stored transfers, resolutions and failures for the batch's ids;
//  3. lock the accounts involved with SELECT ... ORDER BY id FOR UPDATE (ascending order);
//  4. decide every result in C++ (PlanBatch, pure);
//  5. one INSERT ... SELECT FROM unnest(arrays) of the accepted transfers, whose statement trigger
//     validates them and applies one summed UPDATE per account touched; one INSERT of the failed
//     ids; one INSERT of the batch's hash-chain link.
// The database re-checks what PlanBatch decided (limits, currencies, pending resolutions), so a
// disagreement fails the batch instead of corrupting the book.
// Two round trips per batch (libpq pipelines): BEGIN with steps 1-3, then step 5 with COMMIT.
// The head lock is held across both, so round-trip latency, not only server work, bounds the
// batch rate.
//
// The batcher's cached path skips steps 2-3: while this process is the only writer (the head in the
// database is still the link it committed last), the balances its own batches left are current, so
// a batch of new singles and pendings on accounts it has seen is planned from memory and sent as
// BEGIN, lock-and-check the head, step 5, COMMIT in one round trip. The database still checks
// everything it checks on the full path (plus that no id was recorded as failed); whatever it
// refuses, and any batch the cache cannot decide or would refuse in part, takes the full path.
// Issue 3's hot-account case (every premium credits premiums_received) is the common one it serves.
//
// Thread-safety: as Ledger. The pool and the executor must outlive this object; call Stop() (from a
// coroutine) before destroying it.
class PostgresLedger final : public Ledger {
 public:
  PostgresLedger(db::PgPool& pool, boost::asio::any_io_executor executor,
                 PostgresLedgerOptions options);

  boost::asio::awaitable<Result<std::vector<AccountResult>>> CreateAccounts(
      std::vector<Account> accounts, Deadline deadline) override;
  boost::asio::awaitable<Result<std::vector<TransferResult>>> PostTransfers(
      std::vector<Transfer> transfers, Deadline deadline) override;
  boost::asio::awaitable<Result<std::int64_t>> ExpirePendingTransfers(std::int32_t limit,
                                                                      Deadline deadline) override;
  boost::asio::awaitable<Result<void>> SetAccountClosed(AccountId account, bool closed,
                                                        Deadline deadline) override;
  boost::asio::awaitable<Result<Balance>> GetBalance(AccountId account, std::optional<Timestamp> at,
                                                     Deadline deadline) override;
  boost::asio::awaitable<Result<StatementPage>> GetStatement(AccountId account,
                                                             StatementCursor cursor,
                                                             std::int32_t limit,
                                                             Deadline deadline) override;
  boost::asio::awaitable<Result<TrialBalance>> GetTrialBalance(std::string currency,
                                                               std::optional<Timestamp> at,
                                                               Deadline deadline) override;
  boost::asio::awaitable<Result<VerifyReport>> Verify(Deadline deadline) override;

  // Posts `transfers` (one request: a chain never spans the call) on `conn`, inside the caller's
  // open transaction, so a business state change and its ledger posting commit or roll back
  // together (issue 4: "the posting and the state change commit in the same transaction"). Takes
  // the chain head lock like a batch, so keep the transaction short after this call. Results as
  // PostTransfers; durable only once the caller commits.
  boost::asio::awaitable<Result<std::vector<TransferResult>>> PostTransfersInTransaction(
      db::PgConnection& conn, std::vector<Transfer> transfers, Deadline deadline);

  // Drains the posting queue and stops the batcher; later PostTransfers calls fail with
  // Errc::closed.
  boost::asio::awaitable<void> Stop();

  Batcher& batcher() { return batcher_; }

  // Batches committed by the cached path (see above), for metrics and tests. Read from any thread.
  std::uint64_t cached_batches() const { return cached_batches_.load(std::memory_order_relaxed); }

 private:
  boost::asio::awaitable<Result<std::vector<TransferResult>>> CommitBatch(
      std::span<const Transfer> transfers, std::span<const std::size_t> request_ends,
      Deadline deadline);
  // Steps 1-5 above on an open transaction; with `commit`, also commits it (the COMMIT goes out
  // with the last write; nothing written leaves the transaction open for the caller to commit).
  boost::asio::awaitable<Result<std::vector<TransferResult>>> WriteBatch(
      db::PgConnection& conn, std::span<const Transfer> transfers,
      std::span<const std::size_t> request_ends, Deadline deadline, bool commit);

  // The batcher's fast path: a batch decided from the cache below, written in one round trip that
  // checks the head has not moved. Not `decided`: take the full path (WriteBatch).
  struct CachedBatch {
    bool decided = false;
    std::error_code error;
    std::vector<TransferResult> results;
  };
  boost::asio::awaitable<CachedBatch> TryCachedBatch(
      std::span<const Transfer> transfers, std::span<const std::size_t> request_ends,
      Deadline deadline);

  // What this process's last committed batch left: the head and the balances of the accounts it
  // has read or written since the head last moved under another writer. Valid only while the head
  // in the database is still last_batch_id/last_hash, which the cached path checks under the head
  // lock. Touched only by batch commits, which the batcher runs one at a time.
  struct HeadCache {
    bool valid = false;
    std::int64_t last_batch_id = 0;
    std::string last_hash;
    std::int64_t last_now_us = 0;
    std::map<AccountId, AccountState> accounts;
  };

  db::PgPool& pool_;
  PostgresLedgerOptions options_;
  HeadCache cache_;
  std::atomic<std::uint64_t> cached_batches_{0};
  Batcher batcher_;
};

}  // namespace paygate::ledger
