#pragma once

// Batcher: group commit for PostTransfers. Requests from any number of coroutines are queued and
// committed together, one database transaction per batch, so a hot account (premiums_received)
// costs one row update per batch instead of one per transfer and fsync cost is shared.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "config/result.h"
#include "ledger/db/coalescer.h"
#include "ledger/db/pg_connection.h"
#include "ledger/ledger/types.h"

namespace paygate::ledger {

struct BatcherOptions {
  // Transfers per batch (one database transaction); a request larger than this is refused.
  std::uint32_t batch_size_max = 8000;
  // How long a batch started from an idle queue waits for more requests; it stops waiting early
  // once as many requests are queued as the previous batch carried. Under load no wait is added:
  // requests that queued during the previous commit form the next batch at once.
  std::chrono::microseconds batch_wait_max_us{500};
  // Transfers queued and not yet taken into a batch; beyond it requests fail with Errc::overloaded.
  std::uint32_t queue_transfers_max = 100000;
};

// Thread-safety: Submit() may be called from any coroutine on any executor. Batches are committed
// one at a time, in arrival order, by the db::Coalescer's worker on a strand of the constructor's
// executor.
class Batcher {
 public:
  // Commits one batch: the transfers of the coalesced requests in order, the exclusive end index of
  // each request, and the latest deadline among them. Returns one result per transfer.
  using CommitFn = std::function<boost::asio::awaitable<Result<std::vector<TransferResult>>>(
      std::span<const Transfer>, std::span<const std::size_t>, db::Deadline)>;

  Batcher(boost::asio::any_io_executor executor, BatcherOptions options, CommitFn commit);
  // Stop() must have completed (the worker exited) before destruction; see Stop().
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues the request and waits for its batch to commit. Errors: Errc::too_many_transfers,
  // Errc::overloaded, Errc::closed, or the batch's commit error (shared by every request in it).
  boost::asio::awaitable<Result<std::vector<TransferResult>>> Submit(
      std::vector<Transfer> transfers, db::Deadline deadline);

  // Refuses new requests (Errc::closed), commits what is already queued, and returns when the
  // worker has exited (ordered shutdown: drain, then stop). Idempotent.
  boost::asio::awaitable<void> Stop();

  struct Stats {
    std::uint64_t batches_total = 0;
    std::uint64_t transfers_total = 0;
    std::uint32_t batch_size_largest = 0;
  };
  // Read on the worker's strand; call from a coroutine.
  boost::asio::awaitable<Stats> GetStats();

 private:
  // One request is one job, weighing its number of transfers.
  db::Coalescer<std::vector<Transfer>, std::vector<TransferResult>> coalescer_;
};

}  // namespace paygate::ledger
