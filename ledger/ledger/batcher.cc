#include "ledger/ledger/batcher.h"

#include <iterator>

#include "ledger/ledger/errc.h"

namespace paygate::ledger {

namespace asio = boost::asio;

namespace {

using Requests = std::span<std::vector<Transfer>>;

// The coalesced requests as the ledger commits them: one list of transfers and each request's
// end index in it; the results are handed back as one slice per request.
db::Coalescer<std::vector<Transfer>, std::vector<TransferResult>>::CommitFn Flattened(
    Batcher::CommitFn commit) {
  return [commit = std::move(commit)](Requests requests, db::Deadline deadline)
             -> asio::awaitable<Result<std::vector<std::vector<TransferResult>>>> {
    std::vector<Transfer> transfers;
    std::vector<std::size_t> ends;
    ends.reserve(requests.size());
    for (auto& request : requests) {
      std::move(request.begin(), request.end(), std::back_inserter(transfers));
      ends.push_back(transfers.size());
    }
    auto committed = co_await commit(transfers, ends, deadline);
    if (!committed) co_return committed.error();
    if (committed.value().size() != transfers.size()) co_return Errc::inconsistent_state;
    std::vector<std::vector<TransferResult>> sliced;
    sliced.reserve(ends.size());
    std::size_t begin = 0;
    for (std::size_t end : ends) {
      const auto first = committed.value().begin() + static_cast<std::ptrdiff_t>(begin);
      const auto last = committed.value().begin() + static_cast<std::ptrdiff_t>(end);
      sliced.emplace_back(first, last);
      begin = end;
    }
    co_return sliced;
  };
}

}  // namespace

Batcher::Batcher(asio::any_io_executor executor, BatcherOptions options, CommitFn commit)
    : coalescer_(std::move(executor),
                 db::CoalescerOptions{.batch_weight_max = options.batch_size_max,
                                      .batch_wait_max_us = options.batch_wait_max_us,
                                      .queue_weight_max = options.queue_transfers_max},
                 db::CoalescerErrors{.too_large = make_error_code(Errc::too_many_transfers),
                                     .overloaded = make_error_code(Errc::overloaded),
                                     .closed = make_error_code(Errc::closed)},
                 Flattened(std::move(commit)),
                 [](const std::vector<Transfer>& transfers) { return transfers.size(); }) {}

Batcher::~Batcher() = default;

asio::awaitable<Result<std::vector<TransferResult>>> Batcher::Submit(
    std::vector<Transfer> transfers, db::Deadline deadline) {
  if (transfers.empty()) co_return std::vector<TransferResult>{};
  co_return co_await coalescer_.Submit(std::move(transfers), deadline);
}

asio::awaitable<void> Batcher::Stop() { co_await coalescer_.Stop(); }

asio::awaitable<Batcher::Stats> Batcher::GetStats() {
  const auto stats = co_await coalescer_.GetStats();
  co_return Stats{.batches_total = stats.batches_total,
                  .transfers_total = stats.weight_total,
                  .batch_size_largest = static_cast<std::uint32_t>(stats.batch_weight_largest)};
}

}  // namespace paygate::ledger
