// Proves the Batcher coalesces concurrent requests into bounded batches, hands each request its own
// slice of results in order, shares a commit error, and refuses what its limits forbid.
#include "ledger/ledger/batcher.h"

#include <utility>  // Before Asio (DESIGN.md §2).

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "ledger/db/errc.h"
#include "ledger/ledger/errc.h"

namespace paygate::ledger {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Records every batch and answers each transfer with kOk, or kExists when its amount is 2.
struct FakeCommit {
  std::vector<std::vector<std::size_t>> request_ends;
  std::vector<std::size_t> sizes;
  std::error_code fail_with;

  Batcher::CommitFn Fn() {
    return [this](std::span<const Transfer> transfers, std::span<const std::size_t> ends,
                  db::Deadline) -> asio::awaitable<Result<std::vector<TransferResult>>> {
      request_ends.emplace_back(ends.begin(), ends.end());
      sizes.push_back(transfers.size());
      if (fail_with) co_return fail_with;
      std::vector<TransferResult> results;
      for (const auto& t : transfers) {
        results.push_back(t.amount == 2 ? TransferResult::kExists : TransferResult::kOk);
      }
      co_return results;
    };
  }
};

std::vector<Transfer> Request(std::vector<std::int64_t> amounts) {
  std::vector<Transfer> transfers;
  for (auto amount : amounts) {
    Transfer t;
    t.amount = amount;
    transfers.push_back(t);
  }
  return transfers;
}

class BatcherTest : public ::testing::Test {
 protected:
  // Spawns one Submit per request at once and runs until all have answered.
  std::vector<Result<std::vector<TransferResult>>> SubmitAll(
      Batcher& batcher, std::vector<std::vector<Transfer>> requests,
      db::Deadline deadline = db::Clock::now() + 10s) {
    std::vector<std::optional<Result<std::vector<TransferResult>>>> answers(requests.size());
    std::size_t done = 0;
    for (std::size_t i = 0; i < requests.size(); ++i) {
      asio::co_spawn(
          io_,
          [&, i]() -> asio::awaitable<void> {
            answers[i].emplace(co_await batcher.Submit(std::move(requests[i]), deadline));
            ++done;
          },
          asio::detached);
    }
    io_.restart();
    while (done < requests.size()) io_.run_one();
    std::vector<Result<std::vector<TransferResult>>> out;
    for (auto& a : answers) out.push_back(std::move(*a));
    return out;
  }

  void Stop(Batcher& batcher) {
    bool stopped = false;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          co_await batcher.Stop();
          stopped = true;
        },
        asio::detached);
    io_.restart();
    while (!stopped) io_.run_one();
  }

  asio::io_context io_;
};

TEST_F(BatcherTest, CoalescesAndSlicesResultsPerRequest) {
  // Proves requests submitted together share one batch, each gets its own results in order, and
  // the commit sees the request boundaries.
  FakeCommit fake;
  Batcher batcher(io_.get_executor(), {.batch_size_max = 100, .batch_wait_max_us = 2000us},
                  fake.Fn());
  auto answers = SubmitAll(batcher, {Request({1, 2}), Request({2}), Request({1, 1, 2})});
  ASSERT_EQ(fake.sizes, std::vector<std::size_t>{6});
  EXPECT_EQ(fake.request_ends[0], (std::vector<std::size_t>{2, 3, 6}));
  using R = TransferResult;
  EXPECT_EQ(answers[0].value(), (std::vector<R>{R::kOk, R::kExists}));
  EXPECT_EQ(answers[1].value(), (std::vector<R>{R::kExists}));
  EXPECT_EQ(answers[2].value(), (std::vector<R>{R::kOk, R::kOk, R::kExists}));
  Stop(batcher);
}

TEST_F(BatcherTest, BatchesNeverExceedTheSizeBoundAndNeverSplitARequest) {
  // Proves batch_size_max bounds every batch, requests stay whole, and a larger request is refused.
  FakeCommit fake;
  Batcher batcher(io_.get_executor(), {.batch_size_max = 4, .batch_wait_max_us = 2000us},
                  fake.Fn());
  auto answers = SubmitAll(
      batcher, {Request({1, 1, 1}), Request({1, 1}), Request({1, 1}), Request({1, 1, 1, 1, 1})});
  for (std::size_t size : fake.sizes) EXPECT_LE(size, 4u);
  EXPECT_EQ(fake.sizes.size(), 2u);  // {3}, {2, 2}.
  EXPECT_EQ(answers[0].value().size(), 3u);
  ASSERT_FALSE(answers[3]);
  EXPECT_EQ(answers[3].error(), make_error_code(Errc::too_many_transfers));
  Stop(batcher);
}

TEST_F(BatcherTest, LingerEndsOnceThePreviousBatchsCallersAreBack) {
  // Proves a batch opened from idle stops waiting once as many requests are queued as the previous
  // batch carried, instead of waiting out batch_wait_max_us (here far longer than the test).
  FakeCommit fake;
  Batcher batcher(io_.get_executor(), {.batch_size_max = 4, .batch_wait_max_us = 5s}, fake.Fn());
  // Two requests of two transfers fill batch_size_max: no linger.
  SubmitAll(batcher, {Request({1, 1}), Request({1, 1})});
  ASSERT_EQ(fake.sizes, std::vector<std::size_t>{4});
  // Two requests again, two transfers in all: the same callers are back, so the batch goes.
  const auto start = std::chrono::steady_clock::now();
  auto answers = SubmitAll(batcher, {Request({1}), Request({1})});
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_EQ(fake.sizes, (std::vector<std::size_t>{4, 2}));
  EXPECT_TRUE(answers[0] && answers[1]);
  Stop(batcher);
}

TEST_F(BatcherTest, CommitErrorReachesEveryRequestOfTheBatch) {
  // Proves a failed commit is reported to every request in that batch.
  FakeCommit fake;
  fake.fail_with = make_error_code(db::Errc::connection_lost);
  Batcher batcher(io_.get_executor(), {.batch_size_max = 10, .batch_wait_max_us = 2000us},
                  fake.Fn());
  auto answers = SubmitAll(batcher, {Request({1}), Request({1})});
  ASSERT_EQ(fake.sizes.size(), 1u);
  for (auto& a : answers) {
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error(), make_error_code(db::Errc::connection_lost));
  }
  Stop(batcher);
}

TEST_F(BatcherTest, LimitsDeadlinesAndStop) {
  // Proves the queue bound answers overloaded, an expired deadline answers timeout without a
  // commit, and after Stop() requests answer closed.
  FakeCommit fake;
  Batcher batcher(io_.get_executor(),
                  {.batch_size_max = 10, .batch_wait_max_us = 2000us, .queue_transfers_max = 3},
                  fake.Fn());
  auto answers = SubmitAll(batcher, {Request({1, 1}), Request({1, 1})});
  EXPECT_TRUE(answers[0]);
  ASSERT_FALSE(answers[1]);
  EXPECT_EQ(answers[1].error(), make_error_code(Errc::overloaded));

  const std::size_t commits = fake.sizes.size();
  auto late = SubmitAll(batcher, {Request({1})}, db::Clock::now() - 1s);
  ASSERT_FALSE(late[0]);
  EXPECT_EQ(late[0].error(), make_error_code(db::Errc::timeout));
  EXPECT_EQ(fake.sizes.size(), commits);

  Stop(batcher);
  auto closed = SubmitAll(batcher, {Request({1})});
  ASSERT_FALSE(closed[0]);
  EXPECT_EQ(closed[0].error(), make_error_code(Errc::closed));
}

}  // namespace
}  // namespace paygate::ledger
