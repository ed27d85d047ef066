#include "gateway/events/dispatcher.h"

#include <algorithm>
#include <random>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "config/logging.h"
#include "gateway/events/event_store.h"
#include "gateway/events/signer.h"

namespace paygate::events {

namespace asio = boost::asio;
namespace http = adapters::http;

std::chrono::milliseconds RetryDelay(const BackoffPolicy& policy, std::int32_t failed_attempts,
                                     std::uint64_t random) {
  const std::int64_t base = std::max<std::int64_t>(policy.base.count(), 1);
  const std::int64_t cap = std::max<std::int64_t>(policy.cap.count(), base);
  // Doubling from base reaches any int64 cap within 62 steps; the shift never overflows.
  const int shift = std::clamp(failed_attempts - 1, 0, 62);
  std::int64_t delay = cap;
  if ((cap >> shift) >= base) delay = std::min(cap, base << shift);
  const std::int64_t half = delay / 2;
  const std::int64_t spread = delay - half;  // [half, delay] holds spread + 1 values.
  return std::chrono::milliseconds(
      half + static_cast<std::int64_t>(random % static_cast<std::uint64_t>(spread + 1)));
}

namespace {

auto Logger() { return log::Get("events"); }

db::Deadline DbDeadline(const DispatcherOptions& options) {
  return db::Clock::now() + options.db_timeout;
}

}  // namespace

struct Dispatcher::State {
  State(asio::any_io_executor executor, db::PgPool& p, std::vector<Webhook> w, DispatcherOptions o)
      : pool(p),
        webhooks(std::move(w)),
        options(std::move(o)),
        strand(asio::make_strand(executor)),
        timer(strand) {
    for (const Webhook& hook : webhooks) principals.push_back(hook.principal);
    options.batch_size = std::max(options.batch_size, 1);
    options.concurrency_max = std::max(options.concurrency_max, 1);
    // A claim must outlast the whole round it belongs to: the batch is delivered in waves of
    // concurrency_max, each bounded by the HTTP phases (3 quarters of the timeout to connect,
    // handshake and write, then the timeout itself) and the statement recording the outcome.
    const auto waves = (options.batch_size + options.concurrency_max - 1) / options.concurrency_max;
    const auto per_delivery = options.delivery_timeout * 7 / 4 + options.db_timeout;
    lease = per_delivery * waves + options.db_timeout + std::chrono::seconds(30);
  }

  const Webhook* Find(const std::string& principal) const {
    for (const Webhook& hook : webhooks) {
      if (hook.principal == principal) return &hook;
    }
    return nullptr;
  }

  std::uint64_t Random() {
    if (options.random) return options.random();
    thread_local std::mt19937_64 engine{std::random_device{}()};
    return engine();
  }

  std::int64_t UnixNow() const {
    if (options.unix_now_s) return options.unix_now_s();
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  // Sends one claimed delivery and records the outcome.
  asio::awaitable<void> Deliver(const store::Claim& claim);
  // Claims a batch and delivers it with at most concurrency_max deliveries in flight. Runs on the
  // strand, as do its workers, so the shared cursor and counter need no lock.
  static asio::awaitable<std::size_t> Round(std::shared_ptr<State> state);
  // Coroutines are free or static functions taking shared_ptrs by value, never lambdas with
  // captures: GCC 12 releases a coroutine lambda's captured shared_ptr twice.
  struct Join;
  static asio::awaitable<void> Worker(std::shared_ptr<State> state,
                                      std::shared_ptr<std::vector<store::Claim>> claims,
                                      std::shared_ptr<Join> join);
  static asio::awaitable<void> Loop(std::shared_ptr<State> state);

  db::PgPool& pool;
  std::vector<Webhook> webhooks;
  std::vector<std::string> principals;
  DispatcherOptions options;
  std::chrono::milliseconds lease{0};
  DispatcherCounters counters;
  // Rounds, their workers and every touch of the timer run here: the daemon's I/O threads may be
  // several.
  asio::strand<asio::any_io_executor> strand;
  asio::steady_timer timer;
  std::atomic<bool> stopping{false};
  std::atomic<bool> finished{true};
};

asio::awaitable<void> Dispatcher::State::Deliver(const store::Claim& claim) {
  State& state = *this;
  const Webhook* hook = state.Find(claim.principal);
  std::int32_t status = 0;
  std::string error;
  if (hook == nullptr) {
    // Claims are filtered by the webhook principals; reaching here means the list changed.
    error = "no webhook for principal";
  } else {
    http::HttpsRequest request;
    request.method = "POST";
    request.url = hook->url;
    request.content_type = "application/json";
    request.body = claim.payload;
    if (hook->keyring != nullptr) {
      // Held for this delivery only: the keyring in effect now, with the versions it has now.
      const auto ring = hook->keyring->Current();
      const auto versions = ring->AllVersions(hook->secret_key_id);
      request.headers.emplace_back(std::string(kSignatureHeader),
                                   SignatureHeader(std::span<const keys::Secret* const>(versions),
                                                   state.UnixNow(), claim.payload));
    } else {
      request.headers.emplace_back(std::string(kSignatureHeader),
                                   SignatureHeader(hook->secrets, state.UnixNow(), claim.payload));
    }
    request.headers.emplace_back(std::string(kEventIdHeader), claim.event_id);
    request.headers.emplace_back(std::string(kEventTypeHeader), claim.type);
    const auto quarter = std::max(state.options.delivery_timeout / 4, std::chrono::milliseconds(1));
    request.deadlines.resolve_connect_ms = quarter;
    request.deadlines.handshake_ms = quarter;
    request.deadlines.write_ms = quarter;
    request.deadlines.response_ms = state.options.delivery_timeout;
    auto sent = co_await hook->client->Send(std::move(request));
    if (sent) {
      status = static_cast<std::int32_t>(sent.assume_value().status);
      // The response body is the receiver's and is not kept: only its status matters.
      if (status < 200 || status > 299) error = fmt::format("HTTP {}", status);
    } else {
      error = sent.assume_error().detail;
    }
  }

  Result<store::Recorded> recorded = make_error_code(db::Errc::bad_value);
  if (error.empty()) {
    recorded =
        co_await store::RecordDelivered(state.pool, claim, status, DbDeadline(state.options));
  } else {
    const auto delay = RetryDelay(state.options.backoff, claim.attempts, state.Random());
    recorded = co_await store::RecordFailed(state.pool, claim, status, error, delay,
                                            DbDeadline(state.options));
  }
  if (!recorded) {
    state.counters.unrecorded.fetch_add(1, std::memory_order_relaxed);
    Logger()->warn(
        "event={} principal={} attempt={} outcome not recorded (the lease brings it "
        "back): {}",
        claim.event_id, claim.principal, claim.attempts, recorded.error().message());
    co_return;
  }
  switch (recorded.value()) {
    case store::Recorded::kDelivered:
      state.counters.delivered.fetch_add(1, std::memory_order_relaxed);
      Logger()->debug("event={} principal={} type={} attempt={} delivered status={}",
                      claim.event_id, claim.principal, claim.type, claim.attempts, status);
      break;
    case store::Recorded::kRetry:
      state.counters.retried.fetch_add(1, std::memory_order_relaxed);
      Logger()->info("event={} principal={} type={} attempt={} failed, will retry: {}",
                     claim.event_id, claim.principal, claim.type, claim.attempts, error);
      break;
    case store::Recorded::kDead:
      state.counters.dead.fetch_add(1, std::memory_order_relaxed);
      Logger()->warn("event={} principal={} type={} attempt={} dead-lettered: {}", claim.event_id,
                     claim.principal, claim.type, claim.attempts, error);
      break;
    case store::Recorded::kLeaseLost:
      state.counters.unrecorded.fetch_add(1, std::memory_order_relaxed);
      Logger()->info("event={} principal={} attempt={} lease lost; outcome not recorded",
                     claim.event_id, claim.principal, claim.attempts);
      break;
  }
}

struct Dispatcher::State::Join {
  explicit Join(asio::any_io_executor executor) : done(executor) {}
  std::size_t next = 0;
  std::size_t running = 0;
  asio::steady_timer done;
};

asio::awaitable<void> Dispatcher::State::Worker(std::shared_ptr<State> state,
                                                std::shared_ptr<std::vector<store::Claim>> claims,
                                                std::shared_ptr<Join> join) {
  while (join->next < claims->size()) {
    const store::Claim& claim = (*claims)[join->next++];
    co_await state->Deliver(claim);
  }
}

asio::awaitable<void> Dispatcher::State::Loop(std::shared_ptr<State> state) {
  while (!state->stopping.load()) {
    const std::size_t claimed = co_await State::Round(state);
    if (state->stopping.load()) break;
    // A full batch means more may be due: go again at once.
    if (claimed >= static_cast<std::size_t>(state->options.batch_size)) continue;
    state->timer.expires_after(state->options.interval);
    boost::system::error_code ec;
    co_await state->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  state->finished.store(true);
}

asio::awaitable<std::size_t> Dispatcher::State::Round(std::shared_ptr<State> state) {
  auto claimed = co_await store::ClaimDue(state->pool, state->principals, state->options.batch_size,
                                          state->lease, DbDeadline(state->options));
  if (!claimed) {
    Logger()->warn("claiming deliveries failed: {}", claimed.error().message());
    co_return 0;
  }
  auto claims = std::make_shared<std::vector<store::Claim>>(std::move(claimed).value());
  if (claims->empty()) co_return 0;

  const auto executor = co_await asio::this_coro::executor;
  auto join = std::make_shared<Join>(executor);
  join->done.expires_at(asio::steady_timer::time_point::max());
  join->running = std::min<std::size_t>(claims->size(),
                                        static_cast<std::size_t>(state->options.concurrency_max));
  const std::size_t workers = join->running;
  for (std::size_t i = 0; i < workers; ++i) {
    asio::co_spawn(executor, Worker(state, claims, join),
                   // Also on an exception, so the round never waits for a worker that is gone.
                   [join](std::exception_ptr) {
                     if (--join->running == 0) join->done.cancel();
                   });
  }
  while (join->running > 0) {
    boost::system::error_code ec;
    co_await join->done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return claims->size();
}

Dispatcher::Dispatcher(asio::any_io_executor executor, db::PgPool& pool,
                       std::vector<Webhook> webhooks, DispatcherOptions options)
    : state_(std::make_shared<State>(std::move(executor), pool, std::move(webhooks),
                                     std::move(options))) {}

Dispatcher::~Dispatcher() = default;

const DispatcherCounters& Dispatcher::counters() const { return state_->counters; }

asio::awaitable<std::size_t> Dispatcher::RunOnce() {
  const std::size_t claimed =
      co_await asio::co_spawn(state_->strand, State::Round(state_), asio::use_awaitable);
  co_return claimed;
}

void Dispatcher::Start() {
  if (state_->webhooks.empty()) return;
  state_->finished.store(false);
  asio::co_spawn(state_->strand, State::Loop(state_),
                 [state = state_](std::exception_ptr) { state->finished.store(true); });
}

asio::awaitable<void> Dispatcher::Stop() {
  state_->stopping.store(true);
  asio::post(state_->strand, [state = state_] { state->timer.cancel(); });
  // The round in progress finishes its deliveries (each bounded by the delivery timeout); shutdown
  // is rare enough that polling for it is simpler than a cross-executor signal.
  asio::steady_timer poll(co_await asio::this_coro::executor);
  while (!state_->finished.load()) {
    poll.expires_after(std::chrono::milliseconds(10));
    boost::system::error_code ec;
    co_await poll.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

Result<std::shared_ptr<Dispatcher>, std::string> MakeDispatcher(
    const config::v1::Config& config, db::PgPool& pool, asio::any_io_executor executor,
    std::shared_ptr<const keys::LiveKeyring> keyring) {
  const config::v1::Events& events = config.events();
  std::vector<Webhook> webhooks;
  for (int i = 0; i < events.webhooks_size(); ++i) {
    const config::v1::Webhook& entry = events.webhooks(i);
    const std::string path = fmt::format("events.webhooks[{}]", i);
    Webhook hook;
    hook.principal = entry.principal();
    hook.url = entry.url();
    if (auto parsed = http::ParseHttpsUrl(hook.url); !parsed) {
      return fmt::format("{}.url: {}", path, parsed.error());
    }
    if (keyring == nullptr || !keyring->Current()->Contains(entry.secret_key_id())) {
      return fmt::format("{}.secret_key_id {}: not in the keyring", path, entry.secret_key_id());
    }
    hook.secret_key_id = entry.secret_key_id();
    hook.keyring = keyring;
    http::HttpsClientOptions client_options;
    client_options.ca_file = entry.ca_file();
    // Receivers answer with a status; their bodies are not read beyond this bound.
    client_options.response_body_max_bytes = 64 * 1024;
    auto client = http::HttpsClient::Create(client_options);
    if (!client) return fmt::format("{}.ca_file {}: {}", path, entry.ca_file(), client.error());
    hook.client = std::move(client).value();
    webhooks.push_back(std::move(hook));
  }
  DispatcherOptions options;
  // Zero values (a configuration that skipped validation) keep the defaults.
  if (events.dispatch_interval_ms() != 0) {
    options.interval = std::chrono::milliseconds(events.dispatch_interval_ms());
  }
  if (events.delivery_timeout_ms() != 0) {
    options.delivery_timeout = std::chrono::milliseconds(events.delivery_timeout_ms());
  }
  if (config.database().statement_timeout_ms() != 0) {
    options.db_timeout = std::chrono::milliseconds(config.database().statement_timeout_ms());
  }
  return std::make_shared<Dispatcher>(std::move(executor), pool, std::move(webhooks),
                                      std::move(options));
}

std::vector<prometheus::MetricFamily> DispatcherFamilies(const DispatcherCounters& counters) {
  prometheus::MetricFamily family;
  family.name = "paygate_event_deliveries_total";
  family.help =
      "Webhook delivery attempts by outcome (retried: failed and rescheduled; dead: given up; "
      "unrecorded: outcome not stored, the delivery comes due again).";
  family.type = prometheus::MetricType::Counter;
  for (const auto& [result, value] :
       {std::pair<const char*, std::uint64_t>{"delivered", counters.delivered.load()},
        {"retried", counters.retried.load()},
        {"dead", counters.dead.load()},
        {"unrecorded", counters.unrecorded.load()}}) {
    prometheus::ClientMetric metric;
    metric.label.push_back({"result", result});
    metric.counter.value = static_cast<double>(value);
    family.metric.push_back(std::move(metric));
  }
  return {std::move(family)};
}

}  // namespace paygate::events
