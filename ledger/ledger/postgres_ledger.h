#pragma once

// PostgresLedger: the Ledger on PostgreSQL (schema: ledger/migrations/0002_ledger.sql).
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <cstddef>
#include <span>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "ledger/db/pg_pool.h"
#include "ledger/db/transaction.h"
#include "ledger/ledger/batcher.h"
#include "ledger/ledger/ledger.h"

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

 private:
  boost::asio::awaitable<Result<std::vector<TransferResult>>> CommitBatch(
      std::span<const Transfer> transfers, std::span<const std::size_t> request_ends,
      Deadline deadline);
  // Steps 1-5 above on an open transaction; with `commit`, also commits it (the COMMIT goes out
  // with the last write; nothing written leaves the transaction open for the caller to commit).
  boost::asio::awaitable<Result<std::vector<TransferResult>>> WriteBatch(
      db::PgConnection& conn, std::span<const Transfer> transfers,
      std::span<const std::size_t> request_ends, Deadline deadline, bool commit);

  db::PgPool& pool_;
  PostgresLedgerOptions options_;
  Batcher batcher_;
};

}  // namespace paygate::ledger
