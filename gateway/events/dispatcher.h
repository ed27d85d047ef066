#pragma once

// The outbox dispatcher (DESIGN.md §3, issue 4 §9): every interval it claims due deliveries of
// principals that have a webhook (event_store.h: FOR UPDATE SKIP LOCKED plus a lease, so any number
// of daemons run it side by side and each delivery is sent by one of them at a time) and POSTs each
// event's JSON to the principal's webhook, signed (signer.h), with Paygate-Event-Id and
// Paygate-Event-Type headers. A 2xx answer marks the delivery delivered; anything else schedules
// the next attempt after an exponential backoff with jitter, until the delivery's give_up_at
// passes and it is dead-lettered. Clients list and redeliver events through routes.h.
//
// Delivery is at least once: a daemon that dies after the receiver answered but before recording
// it sends the event again when the lease ends, so receivers deduplicate on Paygate-Event-Id.
// Neither a secret nor a payload is ever logged.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "adapters/http/https_client.h"
#include "config/paygate_config.pb.h"
#include "config/result.h"
#include "keys/live_keyring.h"
#include "keys/secret.h"
#include "ledger/db/pg_pool.h"

namespace paygate::events {

struct BackoffPolicy {
  // Delay after the first failed attempt; it doubles with each further failure...
  std::chrono::milliseconds base{5'000};
  // ...up to this bound.
  std::chrono::milliseconds cap{3'600'000};
};

// The wait after `failed_attempts` (>= 1) failures: d = min(cap, base * 2^(failed_attempts - 1)),
// then uniformly in [d/2, d] by `random` ("equal jitter"): receivers that were down together are
// not hit by every queued event in the same instant when they come back, yet the wait never drops
// below half the schedule. Pure.
std::chrono::milliseconds RetryDelay(const BackoffPolicy& policy, std::int32_t failed_attempts,
                                     std::uint64_t random);

// One principal's webhook.
struct Webhook {
  std::string principal;
  // https://host[:port]/path
  std::string url;
  // The signing secrets: every version of `secret_key_id` in `keyring` as it is at each delivery
  // (newest first; two during a rotation), so a keyring reload takes effect at the next delivery.
  std::string secret_key_id;
  std::shared_ptr<const keys::LiveKeyring> keyring;
  // Without a keyring: fixed secrets, the first signs, a second one also signs. Never both empty.
  std::vector<keys::Secret> secrets;
  // Verifies the receiver against the webhook's ca_file (or the system store).
  std::shared_ptr<adapters::http::HttpsClient> client;
};

struct DispatcherOptions {
  // Pause between rounds that found less than a full batch (events.dispatch_interval_ms).
  std::chrono::milliseconds interval{500};
  // The receiver's time to answer once the request is written (events.delivery_timeout_ms);
  // connecting, the TLS handshake and writing each get a quarter of it.
  std::chrono::milliseconds delivery_timeout{10'000};
  // Deliveries claimed per round.
  std::int32_t batch_size = 64;
  // Deliveries in flight at once, all webhooks together.
  std::int32_t concurrency_max = 16;
  BackoffPolicy backoff;
  // Bound on each database statement (acquire included).
  std::chrono::milliseconds db_timeout{5'000};
  // Uniform over uint64, for the jitter; empty: a per-thread std::mt19937_64 seeded from
  // std::random_device. Injected so tests are deterministic.
  std::function<std::uint64_t()> random;
  // Seconds since the epoch for the signature's t=; empty: the system clock.
  std::function<std::int64_t()> unix_now_s;
};

// Outcomes since start, for /metrics and tests.
struct DispatcherCounters {
  std::atomic<std::uint64_t> delivered{0};
  // Failed attempts that will be retried.
  std::atomic<std::uint64_t> retried{0};
  std::atomic<std::uint64_t> dead{0};
  // Outcomes not recorded: the lease was lost (another daemon or a redelivery took the row over)
  // or the database failed; the row comes due again.
  std::atomic<std::uint64_t> unrecorded{0};
};

// Thread-safety: Start, Stop and RunOnce may be called from any thread; rounds run one at a time
// on the dispatcher's own strand.
class Dispatcher {
 public:
  Dispatcher(boost::asio::any_io_executor executor, db::PgPool& pool, std::vector<Webhook> webhooks,
             DispatcherOptions options);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Starts the loop; does nothing when no webhook is configured.
  void Start();
  // Stops claiming and waits for the round in progress (its deliveries are bounded by the delivery
  // timeout). Call before destroying, and before closing the pool.
  boost::asio::awaitable<void> Stop();

  // One round, for tests: claims due deliveries and delivers them; returns how many were claimed.
  boost::asio::awaitable<std::size_t> RunOnce();

  const DispatcherCounters& counters() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// The dispatcher of the configuration's events section: one HTTPS client per webhook (its
// ca_file loaded) and its signing secret's versions from `keyring`. Fails, naming the field, when
// a CA file cannot be used or the secret is not in the keyring. With no webhook configured the
// dispatcher is still returned and its Start() does nothing.
Result<std::shared_ptr<Dispatcher>, std::string> MakeDispatcher(
    const config::v1::Config& config, db::PgPool& pool, boost::asio::any_io_executor executor,
    std::shared_ptr<const keys::LiveKeyring> keyring);

// paygate_event_deliveries_total{result="delivered|retried|dead|unrecorded"} for /metrics.
std::vector<prometheus::MetricFamily> DispatcherFamilies(const DispatcherCounters& counters);

}  // namespace paygate::events
