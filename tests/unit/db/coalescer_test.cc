// Proves the Coalescer answers each job of a batch with its own answer, leaves nothing pending on
// its executor when idle, answers what is queued `closed` and commits nothing more when destroyed
// without Stop(), and drains the queue on Stop(). Built with AddressSanitizer (CMakeLists.txt), so
// a request or the worker's state freed while still in use fails the run.
#include "ledger/db/coalescer.h"

#include <utility>  // Before Asio (DESIGN.md §2).

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace paygate::db {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Strings = Coalescer<std::string, std::string>;

const CoalescerErrors kErrors{.too_large = std::make_error_code(std::errc::message_size),
                              .overloaded = std::make_error_code(std::errc::no_buffer_space),
                              .closed = std::make_error_code(std::errc::operation_canceled)};

// Upper-cases every job; records each batch it commits.
struct Upper {
  std::vector<std::vector<std::string>> batches;

  Strings::CommitFn Fn() {
    return [this](std::span<std::string> jobs,
                  Deadline) -> asio::awaitable<Result<std::vector<std::string>>> {
      batches.emplace_back(jobs.begin(), jobs.end());
      std::vector<std::string> answers;
      for (const auto& job : jobs) {
        std::string upper = job;
        for (char& c : upper) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
        answers.push_back(std::move(upper));
      }
      co_return answers;
    };
  }
};

class CoalescerTest : public ::testing::Test {
 protected:
  // Spawns one Submit per job; answers[i] is set when job i is answered.
  void SubmitAll(Strings& coalescer, const std::vector<std::string>& jobs,
                 std::vector<std::optional<Result<std::string>>>& answers) {
    answers.resize(jobs.size());
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      asio::co_spawn(
          io_,
          [&, i, job = jobs[i]]() -> asio::awaitable<void> {
            answers[i].emplace(co_await coalescer.Submit(job, Clock::now() + 10s));
          },
          asio::detached);
    }
  }

  void RunUntil(const std::function<bool()>& done) {
    io_.restart();
    while (!done()) io_.run_one();
  }

  // Spawns coalescer.Stop(); `stopped` is set once it returns.
  void SpawnStop(Strings& coalescer, bool& stopped) {
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          co_await coalescer.Stop();
          stopped = true;
        },
        asio::detached);
  }

  asio::io_context io_;
};

TEST_F(CoalescerTest, EachJobGetsItsOwnAnswerAndWeightBoundsTheBatch) {
  Upper upper;
  Strings coalescer(io_.get_executor(),
                    {.batch_weight_max = 6, .batch_wait_max_us = 2000us, .queue_weight_max = 100},
                    kErrors, upper.Fn(), [](const std::string& job) { return job.size(); });
  std::vector<std::optional<Result<std::string>>> answers;
  SubmitAll(coalescer, {"ab", "cd", "ef", "gh", "toolongjob"}, answers);
  RunUntil([&] {
    for (const auto& a : answers) {
      if (!a) return false;
    }
    return true;
  });
  EXPECT_EQ(answers[0]->value(), "AB");
  EXPECT_EQ(answers[1]->value(), "CD");
  EXPECT_EQ(answers[2]->value(), "EF");
  EXPECT_EQ(answers[3]->value(), "GH");
  ASSERT_FALSE(*answers[4]);
  EXPECT_EQ(answers[4]->error(), kErrors.too_large);
  // Weight 2 each, bound 6: three jobs, then one.
  ASSERT_EQ(upper.batches.size(), 2u);
  EXPECT_EQ(upper.batches[0], (std::vector<std::string>{"ab", "cd", "ef"}));
  EXPECT_EQ(upper.batches[1], (std::vector<std::string>{"gh"}));
  // Idle, it leaves nothing pending: the context's run() returns (a daemon's shutdown, a test's
  // database thread, are not held up by it).
  io_.restart();
  io_.run_for(2s);
  EXPECT_TRUE(io_.stopped());
  bool stopped = false;
  SpawnStop(coalescer, stopped);
  RunUntil([&] { return stopped; });
}

TEST_F(CoalescerTest, DestroyedWithoutStopAnswersQueuedJobsClosedAndCommitsNothingMore) {
  Upper upper;
  std::vector<std::optional<Result<std::string>>> answers;
  {
    // A linger long enough that the jobs are still queued when the owner goes away.
    Strings coalescer(io_.get_executor(),
                      {.batch_weight_max = 100, .batch_wait_max_us = 10s, .queue_weight_max = 100},
                      kErrors, upper.Fn());
    SubmitAll(coalescer, {"a", "b", "c"}, answers);
    // Let the jobs reach the queue and the worker start lingering.
    io_.restart();
    for (int i = 0; i < 20; ++i) io_.poll_one();
  }
  RunUntil([&] { return answers[0] && answers[1] && answers[2]; });
  for (const auto& answer : answers) {
    ASSERT_FALSE(*answer);
    EXPECT_EQ(answer->error(), kErrors.closed);
  }
  EXPECT_TRUE(upper.batches.empty());
  // The worker exits on its own; nothing is left waiting on the context.
  io_.restart();
  io_.run_for(100ms);
  EXPECT_TRUE(io_.stopped());
}

TEST_F(CoalescerTest, StopDrainsWhatIsQueuedThenRefuses) {
  Upper upper;
  Strings coalescer(io_.get_executor(),
                    {.batch_weight_max = 100, .batch_wait_max_us = 10s, .queue_weight_max = 100},
                    kErrors, upper.Fn());
  std::vector<std::optional<Result<std::string>>> answers;
  SubmitAll(coalescer, {"x", "y"}, answers);
  io_.restart();
  for (int i = 0; i < 20; ++i) io_.poll_one();
  bool stopped = false;
  SpawnStop(coalescer, stopped);
  RunUntil([&] { return stopped && answers[0] && answers[1]; });
  EXPECT_EQ(answers[0]->value(), "X");
  EXPECT_EQ(answers[1]->value(), "Y");
  std::vector<std::optional<Result<std::string>>> late;
  SubmitAll(coalescer, {"z"}, late);
  RunUntil([&] { return late[0].has_value(); });
  ASSERT_FALSE(*late[0]);
  EXPECT_EQ(late[0]->error(), kErrors.closed);
}

}  // namespace
}  // namespace paygate::db
