#include "gateway/payments/janitor.h"

#include <atomic>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "config/logging.h"

namespace paygate::payments {

namespace asio = boost::asio;

struct Janitor::State {
  State(asio::any_io_executor executor, std::shared_ptr<PaymentService> s, JanitorOptions o)
      : service(std::move(s)), options(o), strand(asio::make_strand(executor)), timer(strand) {}
  std::shared_ptr<PaymentService> service;
  JanitorOptions options;
  // The loop and every touch of its timer run here: the daemon's I/O threads may be several.
  asio::strand<asio::any_io_executor> strand;
  asio::steady_timer timer;
  std::atomic<bool> stopping{false};
  std::atomic<bool> finished{true};

  // A static function taking the shared_ptr by value, not a lambda with captures: GCC 12 releases
  // a coroutine lambda's captured shared_ptr twice.
  static asio::awaitable<void> Loop(std::shared_ptr<State> state);
};

Janitor::Janitor(asio::any_io_executor executor, std::shared_ptr<PaymentService> service,
                 JanitorOptions options)
    : state_(std::make_shared<State>(executor, std::move(service), options)) {}

Janitor::~Janitor() = default;

namespace {

// How often expired nonces and idempotency records are deleted.
constexpr auto kPurgeInterval = std::chrono::minutes(1);

asio::awaitable<std::size_t> Round(PaymentService& service, const JanitorOptions& options,
                                   bool purge) {
  if (purge) {
    // Expired replay nonces and idempotency records (7 days) are the janitor's to delete too.
    auto purged = co_await service.PurgeExpired();
    if (!purged) log::Get("janitor")->warn("purge failed: {}", purged.error().message());
  }
  auto tasks = co_await service.ClaimTasks(options.batch_size, options.lease);
  if (!tasks) {
    log::Get("janitor")->warn("claiming tasks failed: {}", tasks.error().message());
    co_return 0;
  }
  for (JanitorTask& task : tasks.value()) {
    const std::string kind = task.kind;
    const std::string object_id = task.object_id;
    auto ran = co_await service.RunTask(std::move(task));
    if (!ran) {
      // The lease brings it back; nothing is lost.
      log::Get("janitor")->warn("{} {}: {}", kind, object_id, ran.error().message());
    }
  }
  co_return tasks.value().size();
}

}  // namespace

asio::awaitable<std::size_t> Janitor::RunOnce() {
  co_return co_await Round(*state_->service, state_->options, true);
}

asio::awaitable<void> Janitor::State::Loop(std::shared_ptr<State> state) {
  auto last_purge = std::chrono::steady_clock::time_point{};
  while (!state->stopping.load()) {
    const auto now = std::chrono::steady_clock::now();
    const bool purge = now - last_purge >= kPurgeInterval;
    if (purge) last_purge = now;
    const std::size_t ran = co_await Round(*state->service, state->options, purge);
    if (state->stopping.load()) break;
    // A full batch means more may be due: go again at once.
    if (ran >= static_cast<std::size_t>(state->options.batch_size)) continue;
    state->timer.expires_after(state->options.interval);
    boost::system::error_code ec;
    co_await state->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  state->finished.store(true);
}

void Janitor::Start() {
  state_->finished.store(false);
  asio::co_spawn(state_->strand, State::Loop(state_), asio::detached);
}

asio::awaitable<void> Janitor::Stop() {
  state_->stopping.store(true);
  asio::post(state_->strand, [state = state_] { state->timer.cancel(); });
  // The round in progress finishes its tasks (each bounded by its deadlines); shutdown is rare
  // enough that polling for it is simpler than a cross-executor signal.
  asio::steady_timer poll(co_await asio::this_coro::executor);
  while (!state_->finished.load()) {
    poll.expires_after(std::chrono::milliseconds(10));
    boost::system::error_code ec;
    co_await poll.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace paygate::payments
