#include "ledger/ledger/batcher.h"

#include <algorithm>
#include <exception>

#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "ledger/db/errc.h"
#include "ledger/ledger/errc.h"

namespace paygate::ledger {

namespace asio = boost::asio;

Batcher::Batcher(asio::any_io_executor executor, BatcherOptions options, CommitFn commit)
    : options_(options),
      commit_(std::move(commit)),
      strand_(asio::make_strand(executor)),
      wakeup_(strand_),
      exited_(strand_) {
  options_.batch_size_max = std::max<std::uint32_t>(options_.batch_size_max, 1);
  running_ = true;
  asio::co_spawn(strand_, Run(), asio::detached);
}

Batcher::~Batcher() = default;

asio::awaitable<Result<std::vector<TransferResult>>> Batcher::Submit(
    std::vector<Transfer> transfers, db::Deadline deadline) {
  if (transfers.empty()) co_return std::vector<TransferResult>{};
  if (transfers.size() > options_.batch_size_max) co_return Errc::too_many_transfers;
  auto request = std::make_shared<Request>();
  request->transfers = std::move(transfers);
  request->deadline = deadline;
  Outcome outcome = co_await asio::async_initiate<decltype(asio::use_awaitable), void(Outcome)>(
      [this, request](auto handler) {
        // The completion handler is move-only; std::function wants a copyable callable.
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        auto work = asio::make_work_guard(asio::get_associated_executor(*shared));
        request->complete = [shared, work](Outcome result) mutable {
          asio::post(work.get_executor(), [shared, result = std::move(result)]() mutable {
            (*shared)(std::move(result));
          });
          work.reset();
        };
        asio::post(strand_, [this, request] { Enqueue(request); });
      },
      asio::use_awaitable);
  if (outcome.error) co_return outcome.error;
  co_return std::move(outcome.results);
}

void Batcher::Enqueue(std::shared_ptr<Request> request) {
  if (stopping_ || !running_) {
    request->complete(Outcome{make_error_code(Errc::closed), {}});
    return;
  }
  if (queued_transfers_ + request->transfers.size() > options_.queue_transfers_max) {
    request->complete(Outcome{make_error_code(Errc::overloaded), {}});
    return;
  }
  queued_transfers_ += request->transfers.size();
  queue_.push_back(std::move(request));
  if (idle_ || (lingering_ && LingerDone())) wakeup_.cancel();
}

bool Batcher::LingerDone() const {
  // As many requests as the previous batch carried: in the common closed loop (callers that post
  // again once answered) everyone is back, and waiting longer only adds latency.
  return queued_transfers_ >= options_.batch_size_max ||
         (previous_batch_requests_ > 0 && queue_.size() >= previous_batch_requests_);
}

asio::awaitable<void> Batcher::Run() {
  bool from_idle = true;
  for (;;) {
    boost::system::error_code ignored;
    if (queue_.empty()) {
      if (stopping_) break;
      idle_ = true;
      wakeup_.expires_at(asio::steady_timer::time_point::max());
      co_await wakeup_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      idle_ = false;
      from_idle = true;
      continue;
    }
    // Only a batch opened from idle lingers: requests queued during a commit have waited already.
    if (from_idle && !stopping_ && !LingerDone() && options_.batch_wait_max_us.count() > 0) {
      lingering_ = true;
      wakeup_.expires_after(options_.batch_wait_max_us);
      co_await wakeup_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      lingering_ = false;
    }
    from_idle = false;

    std::vector<std::shared_ptr<Request>> batch;
    std::vector<Transfer> transfers;
    std::vector<std::size_t> ends;
    db::Deadline deadline = db::Deadline::min();
    const db::Deadline now = db::Clock::now();
    while (!queue_.empty()) {
      std::shared_ptr<Request>& next = queue_.front();
      if (!batch.empty() && transfers.size() + next->transfers.size() > options_.batch_size_max) {
        break;
      }
      queued_transfers_ -= next->transfers.size();
      if (next->deadline <= now) {
        // Not written: the caller may retry.
        next->complete(Outcome{make_error_code(db::Errc::timeout), {}});
        queue_.pop_front();
        continue;
      }
      std::move(next->transfers.begin(), next->transfers.end(), std::back_inserter(transfers));
      ends.push_back(transfers.size());
      deadline = std::max(deadline, next->deadline);
      batch.push_back(std::move(next));
      queue_.pop_front();
    }
    if (batch.empty()) continue;
    previous_batch_requests_ = batch.size();

    Result<std::vector<TransferResult>> committed = co_await commit_(transfers, ends, deadline);
    ++stats_.batches_total;
    std::error_code error;
    if (!committed) {
      error = committed.error();
    } else if (committed.value().size() != transfers.size()) {
      error = make_error_code(Errc::inconsistent_state);
    }
    if (error) {
      for (auto& request : batch) request->complete(Outcome{error, {}});
      continue;
    }
    stats_.transfers_total += transfers.size();
    stats_.batch_size_largest =
        std::max(stats_.batch_size_largest, static_cast<std::uint32_t>(transfers.size()));
    std::size_t begin = 0;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const auto first = committed.value().begin() + static_cast<std::ptrdiff_t>(begin);
      const auto last = committed.value().begin() + static_cast<std::ptrdiff_t>(ends[i]);
      batch[i]->complete(Outcome{{}, std::vector<TransferResult>(first, last)});
      begin = ends[i];
    }
  }
  running_ = false;
  exited_.cancel();
}

asio::awaitable<void> Batcher::Stop() {
  co_await asio::co_spawn(
      strand_,
      [this]() -> asio::awaitable<void> {
        stopping_ = true;
        wakeup_.cancel();
        while (running_) {
          boost::system::error_code ignored;
          exited_.expires_at(asio::steady_timer::time_point::max());
          co_await exited_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        }
      },
      asio::use_awaitable);
}

asio::awaitable<Batcher::Stats> Batcher::GetStats() {
  co_return co_await asio::co_spawn(
      strand_, [this]() -> asio::awaitable<Stats> { co_return stats_; }, asio::use_awaitable);
}

}  // namespace paygate::ledger
