#pragma once

// Coalescer: group commit for any kind of write (DESIGN.md §4 "batched posting", §8). Requests from
// any number of coroutines are queued and handed to one commit function together, so N concurrent
// callers share one database transaction, a few multi-row statements and one fsync instead of
// paying for N of each. The ledger's posting Batcher and the payments service's order intents are
// built on it.
//
// Batches are committed one at a time, in arrival order, by one worker coroutine on a strand of the
// constructor's executor. The first request after an idle spell starts the worker and the worker
// ends when the queue is empty: an idle Coalescer leaves nothing pending on the executor, so it
// never keeps an io_context's run() from returning. A batch opened from an idle queue lingers up
// to wait_max for company, and stops lingering once as many requests are queued as the previous
// batch carried (in a closed loop everyone is back); under load no wait is added: requests that
// queued during a commit form the next batch at once. A commit error is every request's error in
// that batch: nothing of it was written (the commit function runs one transaction).
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <system_error>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "config/result.h"
#include "ledger/db/errc.h"
#include "ledger/db/pg_connection.h"

namespace paygate::db {

struct CoalescerOptions {
  // Weight (the unit the caller chooses: requests, transfers) per batch; a heavier request is
  // refused with Errors::too_large.
  std::size_t batch_weight_max = 1000;
  // How long a batch opened from an idle queue waits for more requests (see above).
  std::chrono::microseconds batch_wait_max_us{500};
  // Weight queued and not yet taken into a batch; beyond it requests fail with Errors::overloaded.
  std::size_t queue_weight_max = 100000;
};

// The codes a Coalescer answers with on its own, in its user's error category.
struct CoalescerErrors {
  std::error_code too_large;   // One request weighs more than batch_weight_max.
  std::error_code overloaded;  // The queue is full.
  std::error_code closed;      // Stop() was called; nothing of the request was written.
};

template <class Job, class Answer>
class Coalescer {
  struct Core;

 public:
  // Commits one batch in one transaction: the jobs in arrival order and the latest deadline among
  // them. Returns one answer per job, in the same order, or one error for the whole batch.
  using CommitFn =
      std::function<boost::asio::awaitable<Result<std::vector<Answer>>>(std::span<Job>, Deadline)>;
  // A job's weight against the bounds above; every job weighs 1 when not given.
  using WeightFn = std::function<std::size_t(const Job&)>;

  struct Stats {
    std::uint64_t batches_total = 0;
    std::uint64_t weight_total = 0;
    std::size_t batch_weight_largest = 0;
  };

  Coalescer(boost::asio::any_io_executor executor, CoalescerOptions options, CoalescerErrors errors,
            CommitFn commit, WeightFn weight = {})
      : core_(std::make_shared<Core>(executor, options, errors, std::move(commit),
                                     std::move(weight))) {}
  // Without Stop(), the queued requests are answered closed and nothing more is committed; the
  // worker's state outlives this object until it has exited. A batch still committing must not
  // outlive what its commit function uses: its callers are still waiting, so whoever destroys
  // the owner drains them (or calls Stop()) first.
  ~Coalescer() {
    boost::asio::post(core_->strand, [core = core_] { core->Abandon(); });
  }
  Coalescer(const Coalescer&) = delete;
  Coalescer& operator=(const Coalescer&) = delete;

  // Queues the job and waits for its batch to commit. Errors: the CoalescerErrors, Errc::timeout
  // when the deadline passed before the job's batch began (nothing written), or the batch's error.
  boost::asio::awaitable<Result<Answer>> Submit(Job job, Deadline deadline) {
    namespace asio = boost::asio;
    const std::size_t weight = core_->weight ? core_->weight(job) : 1;
    if (weight > core_->options.batch_weight_max) co_return core_->errors.too_large;
    auto request = std::make_shared<Request>();
    request->weight = weight;
    request->job = std::move(job);
    request->deadline = deadline;
    // A named initiation, not a lambda temporary inside the co_await expression: GCC 12 destroys
    // such a temporary twice, and with it the copy of `request` it captured, freeing the request
    // while this frame still points at it (AddressSanitizer: heap-use-after-free).
    auto initiation = [core = core_, request](auto handler) {
      // The completion handler is move-only; std::function wants a copyable callable.
      auto shared = std::make_shared<decltype(handler)>(std::move(handler));
      auto work = asio::make_work_guard(asio::get_associated_executor(*shared));
      request->complete = [shared, work](Outcome result) mutable {
        asio::post(work.get_executor(), [shared, result = std::move(result)]() mutable {
          (*shared)(std::move(result));
        });
        work.reset();
      };
      asio::post(core->strand, [core, request] { core->Enqueue(request); });
    };
    Outcome outcome = co_await asio::async_initiate<decltype(asio::use_awaitable), void(Outcome)>(
        std::move(initiation), asio::use_awaitable);
    if (outcome.error) co_return outcome.error;
    co_return std::move(outcome.answer);
  }

  // Refuses new requests (closed), commits what is already queued, and returns when the worker has
  // exited (ordered shutdown: drain, then stop). Idempotent.
  boost::asio::awaitable<void> Stop() {
    namespace asio = boost::asio;
    // Named, not a temporary in the co_await expression (see Submit).
    auto stop = [core = core_]() -> asio::awaitable<void> {
      core->stopping = true;
      core->wakeup.cancel();
      while (core->running) {
        boost::system::error_code ignored;
        core->exited.expires_at(asio::steady_timer::time_point::max());
        co_await core->exited.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      }
    };
    co_await asio::co_spawn(core_->strand, std::move(stop), asio::use_awaitable);
  }

  // Read on the worker's strand; call from a coroutine.
  boost::asio::awaitable<Stats> GetStats() {
    // Named, not a temporary in the co_await expression (see Submit).
    auto read = [core = core_]() -> boost::asio::awaitable<Stats> { co_return core->stats; };
    co_return co_await boost::asio::co_spawn(core_->strand, std::move(read),
                                             boost::asio::use_awaitable);
  }

 private:
  struct Outcome {
    std::error_code error;
    Answer answer{};
  };
  struct Request {
    Job job;
    std::size_t weight = 1;
    Deadline deadline;
    std::function<void(Outcome)> complete;
  };

  // Everything the worker touches, shared with it so that it may outlive the Coalescer. Members
  // below `strand` are touched only on it.
  struct Core : std::enable_shared_from_this<Core> {
    Core(boost::asio::any_io_executor executor, CoalescerOptions o, CoalescerErrors e, CommitFn c,
         WeightFn w)
        : options(o),
          errors(e),
          commit(std::move(c)),
          weight(std::move(w)),
          strand(boost::asio::make_strand(executor)),
          wakeup(strand),
          exited(strand) {
      options.batch_weight_max = std::max<std::size_t>(options.batch_weight_max, 1);
    }

    void Enqueue(std::shared_ptr<Request> request) {
      if (stopping) {
        request->complete(Outcome{errors.closed, {}});
        return;
      }
      if (queued_weight + request->weight > options.queue_weight_max) {
        request->complete(Outcome{errors.overloaded, {}});
        return;
      }
      queued_weight += request->weight;
      queue.push_back(std::move(request));
      if (!running) {
        // No worker while idle, so an idle Coalescer keeps no operation pending on the executor
        // (its io_context's run() may return); the first request starts one.
        running = true;
        boost::asio::co_spawn(strand, Run(this->shared_from_this()), boost::asio::detached);
      } else if (lingering && LingerDone()) {
        wakeup.cancel();
      }
    }

    // The owner is gone: nothing more is committed.
    void Abandon() {
      abandoned = true;
      stopping = true;
      for (auto& request : queue) request->complete(Outcome{errors.closed, {}});
      queue.clear();
      queued_weight = 0;
      wakeup.cancel();
    }

    // Whether a lingering batch has gathered enough to go.
    bool LingerDone() const {
      return queued_weight >= options.batch_weight_max ||
             (previous_batch_requests > 0 && queue.size() >= previous_batch_requests);
    }

    static boost::asio::awaitable<void> Run(std::shared_ptr<Core> self) {
      co_await self->Loop();
      self->running = false;
      self->exited.cancel();
    }

    // Commits batches until the queue is empty.
    boost::asio::awaitable<void> Loop() {
      namespace asio = boost::asio;
      // Only the first batch, opened from an idle queue, lingers: requests queued during a
      // commit have waited already.
      if (!stopping && !LingerDone() && options.batch_wait_max_us.count() > 0) {
        boost::system::error_code ignored;
        lingering = true;
        wakeup.expires_after(options.batch_wait_max_us);
        co_await wakeup.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        lingering = false;
      }
      while (!abandoned && !queue.empty()) {
        std::vector<std::shared_ptr<Request>> batch;
        std::vector<Job> jobs;
        std::size_t batch_weight = 0;
        Deadline deadline = Deadline::min();
        const Deadline now = Clock::now();
        while (!queue.empty()) {
          std::shared_ptr<Request>& next = queue.front();
          if (!batch.empty() && batch_weight + next->weight > options.batch_weight_max) break;
          queued_weight -= next->weight;
          if (next->deadline <= now) {
            // Not written: the caller may retry.
            next->complete(Outcome{make_error_code(Errc::timeout), {}});
            queue.pop_front();
            continue;
          }
          batch_weight += next->weight;
          jobs.push_back(std::move(next->job));
          deadline = std::max(deadline, next->deadline);
          batch.push_back(std::move(next));
          queue.pop_front();
        }
        if (batch.empty()) continue;
        previous_batch_requests = batch.size();

        Result<std::vector<Answer>> committed = co_await commit(std::span<Job>(jobs), deadline);
        ++stats.batches_total;
        std::error_code error;
        if (!committed) {
          error = committed.error();
        } else if (committed.value().size() != batch.size()) {
          error = make_error_code(Errc::protocol_error);
        }
        if (error) {
          for (auto& request : batch) request->complete(Outcome{error, {}});
          continue;
        }
        stats.weight_total += batch_weight;
        stats.batch_weight_largest = std::max(stats.batch_weight_largest, batch_weight);
        for (std::size_t i = 0; i < batch.size(); ++i) {
          batch[i]->complete(Outcome{{}, std::move(committed.value()[i])});
        }
      }
    }

    CoalescerOptions options;
    const CoalescerErrors errors;
    const CommitFn commit;
    const WeightFn weight;
    boost::asio::strand<boost::asio::any_io_executor> strand;
    boost::asio::steady_timer wakeup;  // Ends a linger early.
    boost::asio::steady_timer exited;  // Cancelled when the worker exits.
    std::deque<std::shared_ptr<Request>> queue;
    std::size_t queued_weight = 0;
    std::size_t previous_batch_requests = 0;  // 0 before the first batch.
    bool lingering = false;
    bool stopping = false;
    bool abandoned = false;
    bool running = false;  // A worker is committing (or lingering); none while idle.
    Stats stats;
  };

  std::shared_ptr<Core> core_;
};

}  // namespace paygate::db
