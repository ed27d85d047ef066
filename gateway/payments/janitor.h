#pragma once

// The janitor's loop (DESIGN.md §3): every interval it claims due tasks from the persistent
// schedule (janitor_tasks, claimed FOR UPDATE SKIP LOCKED and leased, so several daemons share the
// work and a crashed daemon's claims come due again) and runs them: status inquiries for
// pending/unknown attempts and refunds, expiry of unpaid orders, callbacks stored but not yet
// applied.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <chrono>
#include <cstdint>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "gateway/payments/service.h"

namespace paygate::payments {

struct JanitorOptions {
  std::chrono::milliseconds interval{1000};
  std::int32_t batch_size = 32;
  // How long a claimed task is ours before another daemon may claim it again.
  std::chrono::seconds lease{120};
};

class Janitor {
 public:
  Janitor(boost::asio::any_io_executor executor, std::shared_ptr<PaymentService> service,
          JanitorOptions options);
  ~Janitor();
  Janitor(const Janitor&) = delete;
  Janitor& operator=(const Janitor&) = delete;

  void Start();
  // Stops claiming and waits for the round in progress. Call before destroying.
  boost::asio::awaitable<void> Stop();

  // One round, for tests: claims and runs due tasks; returns how many ran.
  boost::asio::awaitable<std::size_t> RunOnce();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace paygate::payments
