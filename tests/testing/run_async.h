#pragma once

// Running a coroutine to completion from a plain (test) function.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <exception>
#include <optional>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace paygate::testing {

namespace detail {
template <class T>
boost::asio::awaitable<void> StoreResult(boost::asio::awaitable<T> task, std::optional<T>* out) {
  out->emplace(co_await std::move(task));
}
}  // namespace detail

// Spawns `task` on `io`, runs `io` on the calling thread until it has no work left, and returns the
// task's value. Whatever else was spawned on `io` runs too. An exception escaping the task is
// rethrown (paygate code does not throw; this only turns a bug into a test failure).
template <class T>
T RunAsync(boost::asio::io_context& io, boost::asio::awaitable<T> task) {
  std::optional<T> result;
  std::exception_ptr error;
  boost::asio::co_spawn(io, detail::StoreResult(std::move(task), &result),
                        [&error](std::exception_ptr e) { error = e; });
  io.restart();
  io.run();
  if (error) std::rethrow_exception(error);
  return std::move(*result);
}

inline void RunAsync(boost::asio::io_context& io, boost::asio::awaitable<void> task) {
  std::exception_ptr error;
  boost::asio::co_spawn(io, std::move(task), [&error](std::exception_ptr e) { error = e; });
  io.restart();
  io.run();
  if (error) std::rethrow_exception(error);
}

// Like RunAsync, but returns as soon as `task` completes instead of waiting for `io` to run out of
// work: for fixtures whose io_context always has something armed (the ledger batcher's timer).
template <class T>
T RunUntilDone(boost::asio::io_context& io, boost::asio::awaitable<T> task) {
  std::optional<T> result;
  std::exception_ptr error;
  bool done = false;
  boost::asio::co_spawn(io, detail::StoreResult(std::move(task), &result),
                        [&](std::exception_ptr e) {
                          error = e;
                          done = true;
                        });
  io.restart();
  while (!done) io.run_one();
  if (error) std::rethrow_exception(error);
  return std::move(*result);
}

// Spawns `task` on `io`, which other threads are running, and blocks until it completes: for
// fixtures that run their io_context on threads of their own.
template <class T>
T RunOnThreads(boost::asio::io_context& io, boost::asio::awaitable<T> task) {
  std::optional<T> result;
  boost::asio::co_spawn(io, detail::StoreResult(std::move(task), &result),
                        boost::asio::use_future)
      .get();
  return std::move(*result);
}

}  // namespace paygate::testing
