// The outbox dispatcher and the event routes against a real PostgreSQL and a real TLS webhook
// receiver. Proves: deliveries carry a signature the receiver verifies with either secret of a
// rotation plus the event id and type headers; failures are retried with exponential backoff and
// then delivered; a delivery is dead-lettered once give_up_at has passed (and its last retry is
// never scheduled later than that); redelivering a dead event delivers it; two dispatchers on two
// pools deliver each event exactly once; clients list only their own events, filtered by delivery
// state, oldest first, page by page; the daemon's MakeDispatcher builds a working dispatcher from
// configuration and refuses unsafe secret files.
#include <utility>  // Before Asio (DESIGN.md §2).

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "adapters/http/https_client.h"
#include "gateway/api/v1/payments.pb.h"
#include "gateway/events/dispatcher.h"
#include "gateway/events/routes.h"
#include "gateway/events/signer.h"
#include "keys/live_keyring.h"
#include "ledger/db/migrations.h"
#include "ledger/db/pg_pool.h"
#include "tests/integration/db/db_test_util.h"
#include "tests/integration/edge/edge_fixture.h"
#include "tests/testing/pg_cluster.h"

namespace paygate::events {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using db::test::FreshDatabase;
using db::test::In;
using db::test::MakePoolOptions;
using edge::http::status;
using edge::http::verb;
using testing::RunningServer;
using testing::TlsClient;

std::int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// What the receiver saw of one delivery.
struct Receipt {
  std::string event_id;
  std::string event_type;
  std::string signature;
  std::string content_type;
  std::string body;
};

// A webhook receiver on a real TLS listener (the dev PKI's server certificate). Answers each
// request with the next queued status, or 200 when none is queued, after an optional delay.
class Receiver {
 public:
  explicit Receiver(const config::v1::Config& config) {
    auto router = std::make_shared<edge::Router>();
    router->Add({verb::post,
                 "/hook",
                 edge::Access::kPublic,
                 {},
                 [this](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
                   unsigned code = 200;
                   std::chrono::milliseconds delay{0};
                   {
                     std::lock_guard lock(mu_);
                     receipts_.push_back({std::string(ctx.request[kEventIdHeader]),
                                          std::string(ctx.request[kEventTypeHeader]),
                                          std::string(ctx.request[kSignatureHeader]),
                                          std::string(ctx.request[edge::http::field::content_type]),
                                          ctx.request.body()});
                     if (!statuses_.empty()) {
                       code = statuses_.front();
                       statuses_.pop_front();
                     }
                     delay = delay_;
                   }
                   if (delay.count() > 0) {
                     asio::steady_timer timer(co_await asio::this_coro::executor);
                     timer.expires_after(delay);
                     boost::system::error_code ec;
                     co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
                   }
                   edge::Response response{static_cast<status>(code), ctx.request.version()};
                   response.body() = "ok";
                   response.prepare_payload();
                   co_return response;
                 }});
    server_ = std::make_unique<RunningServer>(config, config.api(), router, 2);
  }

  std::string url() const { return fmt::format("https://127.0.0.1:{}/hook", server_->port()); }

  void Queue(std::initializer_list<unsigned> statuses) {
    std::lock_guard lock(mu_);
    statuses_.insert(statuses_.end(), statuses);
  }
  void AlwaysAnswer(unsigned code) {
    std::lock_guard lock(mu_);
    statuses_.assign(1000, code);
  }
  void Delay(std::chrono::milliseconds delay) {
    std::lock_guard lock(mu_);
    delay_ = delay;
  }
  std::vector<Receipt> Receipts() {
    std::lock_guard lock(mu_);
    return receipts_;
  }

 private:
  std::mutex mu_;
  std::vector<Receipt> receipts_;
  std::deque<unsigned> statuses_;
  std::chrono::milliseconds delay_{0};
  std::unique_ptr<RunningServer> server_;
};

class EventsTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    char pattern[] = "/tmp/paygate-events-XXXXXX";
    const char* dir = mkdtemp(pattern);
    ASSERT_NE(dir, nullptr);
    pki_ = new fs::path(testing::MakeDevPki(fs::path(dir) / "pki"));
  }
  static void TearDownTestSuite() {
    std::error_code ignored;
    fs::remove_all(pki_->parent_path(), ignored);
    delete pki_;
    pki_ = nullptr;
  }

  EventsTest() : work_(io_.get_executor()) {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
    db_url_ = FreshDatabase();
    pool_ = std::make_unique<db::PgPool>(io_.get_executor(), MakePoolOptions(db_url_, 8));
    auto applied = Run(db::ApplyMigrations(*pool_, In(30s)));
    EXPECT_TRUE(applied) << applied.error().message;
    config_ = testing::TestConfig(*pki_);
    // A second sales client, to prove one client never sees another's events.
    auto* other = config_.add_principals();
    other->set_name("claims-system");
    other->set_client_cert_common_name("claims-system");
    other->add_roles(config::v1::ROLE_SALES);
    receiver_ = std::make_unique<Receiver>(config_);
  }

  ~EventsTest() override {
    for (auto& dispatcher : dispatchers_) Run(StopCo(dispatcher));
    dispatchers_.clear();
    api_.reset();
    receiver_.reset();
    extra_pools_.clear();
    pool_.reset();
    work_.reset();
    for (auto& t : threads_) t.join();
  }

  // Runs a coroutine on the I/O threads and waits for its value.
  template <class T>
  T Run(asio::awaitable<T> task) {
    std::optional<T> out;
    std::promise<void> done;
    std::exception_ptr error;
    asio::co_spawn(
        io_, [&]() -> asio::awaitable<void> { out.emplace(co_await std::move(task)); },
        [&](std::exception_ptr e) {
          error = e;
          done.set_value();
        });
    done.get_future().wait();
    if (error) std::rethrow_exception(error);
    return std::move(*out);
  }

  static asio::awaitable<bool> StopCo(std::shared_ptr<Dispatcher> dispatcher) {
    co_await dispatcher->Stop();
    co_return true;
  }

  db::PgResult Sql(std::string sql, db::Params params = {}, db::PgPool* pool = nullptr) {
    db::PgPool& target = pool != nullptr ? *pool : *pool_;
    auto result = Run([&]() -> asio::awaitable<Result<db::PgResult>> {
      auto conn = co_await target.Acquire(In(10s));
      if (!conn) co_return conn.error();
      co_return co_await conn.value()->Execute(sql, std::move(params), In(10s));
    }());
    EXPECT_TRUE(result) << sql << ": " << result.error().message();
    return result ? std::move(result).value() : db::PgResult();
  }
  std::string Text(std::string sql, db::Params params = {}) {
    auto r = Sql(std::move(sql), std::move(params));
    if (r.rows() != 1) {
      ADD_FAILURE() << "expected one row";
      return {};
    }
    auto v = r.GetText(0, 0);
    return v ? std::string(v.value()) : std::string("<null>");
  }
  std::int64_t Int(std::string sql, db::Params params = {}) {
    auto r = Sql(std::move(sql), std::move(params));
    if (r.rows() != 1) {
      ADD_FAILURE() << "expected one row";
      return -1;
    }
    auto v = r.GetInt64(0, 0);
    return v ? v.value() : -1;
  }
  std::string Delivery(const std::string& id, const std::string& column) {
    return Text("SELECT " + column + "::text FROM event_deliveries WHERE event_id = $1",
                db::Params().Add(id));
  }

  // An event as the payment code writes it: the outbox row and its pending delivery, retried for
  // three days. `order` fixes created_at, so listings have a known order.
  std::string InsertEvent(const std::string& principal, const std::string& type, int order) {
    static int counter = 0;
    const std::string id = fmt::format("evt_{:024d}", ++counter);
    const std::string payment_id = fmt::format("pay_{:024d}", counter);
    api::v1::Event event;
    event.set_id(id);
    event.set_type(type);
    event.set_created_at(fmt::format("2026-01-01T00:00:{:02d}Z", order));
    event.mutable_payment()->set_id(payment_id);
    event.mutable_payment()->set_status("succeeded");
    event.mutable_payment()->set_amount_minor(12345);
    event.mutable_payment()->set_currency("CNY");
    std::string payload;
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    EXPECT_TRUE(google::protobuf::util::MessageToJsonString(event, &payload, options).ok());
    Sql("WITH e AS (INSERT INTO outbox_events (id, principal, type, object_id, payload, "
        "created_at) "
        "VALUES ($1, $2, $3, $4, $5, timestamptz '2026-01-01 00:00:00+00' + $6::bigint * "
        "interval '1 second') RETURNING id) "
        "INSERT INTO event_deliveries (event_id, state, give_up_at) "
        "SELECT id, 'pending', now() + interval '3 days' FROM e",
        db::Params()
            .Add(id)
            .Add(principal)
            .Add(type)
            .Add(payment_id)
            .Add(payload)
            .Add(static_cast<std::int64_t>(order)));
    return id;
  }

  static DispatcherOptions FastOptions() {
    DispatcherOptions options;
    options.interval = 20ms;
    options.delivery_timeout = 3s;
    options.backoff = {1s, 10s};
    // Jitter at the bottom of its range: the n-th retry waits exactly base * 2^(n-1) / 2.
    options.random = [] { return std::uint64_t{0}; };
    return options;
  }

  Webhook MakeWebhook(std::vector<std::string> secrets, std::string url = {}) {
    Webhook hook;
    hook.principal = "sales-platform";
    hook.url = url.empty() ? receiver_->url() : url;
    for (const auto& s : secrets) hook.secrets.emplace_back(s);
    adapters::http::HttpsClientOptions client_options;
    client_options.ca_file = (*pki_ / "ca.crt").string();
    auto client = adapters::http::HttpsClient::Create(client_options);
    EXPECT_TRUE(client);
    hook.client = std::move(client).value();
    return hook;
  }

  std::shared_ptr<Dispatcher> NewDispatcher(std::vector<std::string> secrets,
                                            DispatcherOptions options = FastOptions(),
                                            db::PgPool* pool = nullptr, std::string url = {}) {
    std::vector<Webhook> hooks;
    hooks.push_back(MakeWebhook(std::move(secrets), std::move(url)));
    auto dispatcher = std::make_shared<Dispatcher>(
        io_.get_executor(), pool != nullptr ? *pool : *pool_, std::move(hooks), std::move(options));
    dispatchers_.push_back(dispatcher);
    return dispatcher;
  }

  std::size_t RunOnce(Dispatcher& dispatcher) { return Run(dispatcher.RunOnce()); }

  void StartApi() {
    auto router = std::make_shared<edge::Router>();
    EventRoutesOptions options;
    options.retry_window = 3600s;
    AddEventRoutes(*router, *pool_, options, nullptr);
    api_ = std::make_unique<RunningServer>(config_, config_.api(), router, 2);
  }

  edge::Response Call(const std::string& principal, verb method, const std::string& target) {
    testing::ClientOptions options;
    options.ca = *pki_ / "ca.crt";
    options.cert = *pki_ / (principal + ".crt");
    options.key = *pki_ / (principal + ".key");
    TlsClient client(api_->port(), options);
    EXPECT_FALSE(client.Connect());
    edge::Request request{method, target, 11};
    edge::Response response;
    EXPECT_FALSE(client.Send(request, &response));
    return response;
  }

  template <class M>
  M Parse(const edge::Response& response) {
    M message;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(response.body(), &message).ok())
        << response.body();
    return message;
  }

  std::vector<std::string> Ids(const api::v1::ListEventsResponse& page) {
    std::vector<std::string> ids;
    for (const auto& e : page.events()) ids.push_back(e.id());
    return ids;
  }

  // Polls until `condition` holds or `bound` passes.
  template <class F>
  bool Eventually(F condition, std::chrono::milliseconds bound = 30s) {
    const auto until = std::chrono::steady_clock::now() + bound;
    while (std::chrono::steady_clock::now() < until) {
      if (condition()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return condition();
  }

  static fs::path* pki_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
  std::string db_url_;
  std::unique_ptr<db::PgPool> pool_;
  std::vector<std::unique_ptr<db::PgPool>> extra_pools_;
  config::v1::Config config_;
  std::unique_ptr<Receiver> receiver_;
  std::unique_ptr<RunningServer> api_;
  std::vector<std::shared_ptr<Dispatcher>> dispatchers_;
};

fs::path* EventsTest::pki_ = nullptr;

TEST_F(EventsTest, DeliversSignedEventVerifiableWithEitherSecretOfARotation) {
  const std::string id = InsertEvent("sales-platform", "payment.succeeded", 1);
  // claims-system has no webhook: its events wait to be listed and are never claimed.
  const std::string unhooked = InsertEvent("claims-system", "payment.succeeded", 2);
  auto dispatcher = NewDispatcher({"whsec_new", "whsec_old"});

  EXPECT_EQ(RunOnce(*dispatcher), 1u);

  const auto receipts = receiver_->Receipts();
  ASSERT_EQ(receipts.size(), 1u);
  const Receipt& r = receipts[0];
  EXPECT_EQ(r.event_id, id);
  EXPECT_EQ(r.event_type, "payment.succeeded");
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, Text("SELECT payload FROM outbox_events WHERE id = $1", db::Params().Add(id)));
  EXPECT_EQ(std::count(r.signature.begin(), r.signature.end(), '='), 3) << r.signature;
  const std::int64_t now = UnixNow();
  for (std::string_view secret : {"whsec_new", "whsec_old"}) {
    const std::vector<std::string_view> secrets = {secret};
    auto verified = VerifySignatureHeader(r.signature, r.body, secrets, now, 300s);
    EXPECT_TRUE(verified) << secret;
  }
  const std::vector<std::string_view> wrong = {"whsec_other"};
  EXPECT_FALSE(VerifySignatureHeader(r.signature, r.body, wrong, now, 300s));

  EXPECT_EQ(Delivery(id, "state"), "delivered");
  EXPECT_EQ(Delivery(id, "attempts"), "1");
  EXPECT_EQ(Delivery(id, "last_status"), "200");
  EXPECT_NE(Delivery(id, "delivered_at"), "<null>");
  EXPECT_EQ(dispatcher->counters().delivered.load(), 1u);

  // Nothing is due any more: no second delivery.
  EXPECT_EQ(RunOnce(*dispatcher), 0u);
  EXPECT_EQ(receiver_->Receipts().size(), 1u);
  EXPECT_EQ(Delivery(unhooked, "state"), "pending");
  EXPECT_EQ(Delivery(unhooked, "attempts"), "0");
}

TEST_F(EventsTest, RetriesWithExponentialBackoffAfterFailuresThenDelivers) {
  const std::string id = InsertEvent("sales-platform", "payment.failed", 1);
  receiver_->Queue({500, 503});
  auto dispatcher = NewDispatcher({"whsec"});
  const std::string remaining_ms =
      "SELECT (extract(epoch FROM next_attempt_at - clock_timestamp()) * 1000)::bigint "
      "FROM event_deliveries WHERE event_id = $1";

  EXPECT_EQ(RunOnce(*dispatcher), 1u);
  EXPECT_EQ(Delivery(id, "state"), "pending");
  EXPECT_EQ(Delivery(id, "attempts"), "1");
  EXPECT_EQ(Delivery(id, "last_status"), "500");
  EXPECT_EQ(Delivery(id, "last_error"), "HTTP 500");
  // First retry: base 1 s, jitter at the bottom of [d/2, d]: 500 ms.
  std::int64_t wait = Int(remaining_ms, db::Params().Add(id));
  EXPECT_GT(wait, 250);
  EXPECT_LE(wait, 500);
  // Not due yet: nothing is sent.
  EXPECT_EQ(RunOnce(*dispatcher), 0u);
  EXPECT_EQ(receiver_->Receipts().size(), 1u);

  std::this_thread::sleep_for(std::chrono::milliseconds(wait + 50));
  EXPECT_EQ(RunOnce(*dispatcher), 1u);
  EXPECT_EQ(Delivery(id, "attempts"), "2");
  EXPECT_EQ(Delivery(id, "last_status"), "503");
  // Second retry waits twice as long.
  wait = Int(remaining_ms, db::Params().Add(id));
  EXPECT_GT(wait, 750);
  EXPECT_LE(wait, 1000);

  std::this_thread::sleep_for(std::chrono::milliseconds(wait + 50));
  EXPECT_EQ(RunOnce(*dispatcher), 1u);
  EXPECT_EQ(Delivery(id, "state"), "delivered");
  EXPECT_EQ(Delivery(id, "attempts"), "3");
  EXPECT_EQ(Delivery(id, "last_error"), "");
  const auto receipts = receiver_->Receipts();
  ASSERT_EQ(receipts.size(), 3u);
  for (const auto& r : receipts) EXPECT_EQ(r.event_id, id);
  EXPECT_EQ(dispatcher->counters().retried.load(), 2u);
  EXPECT_EQ(dispatcher->counters().delivered.load(), 1u);
}

TEST_F(EventsTest, UnreachableReceiverIsRetriedWithTheConnectionError) {
  const std::string id = InsertEvent("sales-platform", "payment.succeeded", 1);
  // Nothing listens on port 1.
  auto dispatcher = NewDispatcher({"whsec"}, FastOptions(), nullptr, "https://127.0.0.1:1/hook");
  EXPECT_EQ(RunOnce(*dispatcher), 1u);
  EXPECT_EQ(Delivery(id, "state"), "pending");
  EXPECT_EQ(Delivery(id, "last_status"), "0");
  EXPECT_NE(Delivery(id, "last_error").find("connect"), std::string::npos)
      << Delivery(id, "last_error");
  EXPECT_EQ(dispatcher->counters().retried.load(), 1u);
}

TEST_F(EventsTest, DeadLettersOnceGiveUpAtHasPassed) {
  receiver_->AlwaysAnswer(500);
  const std::string expired = InsertEvent("sales-platform", "payment.succeeded", 1);
  Sql("UPDATE event_deliveries SET give_up_at = now() - interval '1 second' WHERE event_id = $1",
      db::Params().Add(expired));
  auto dispatcher = NewDispatcher({"whsec"});

  EXPECT_EQ(RunOnce(*dispatcher), 1u);
  EXPECT_EQ(Delivery(expired, "state"), "dead");
  EXPECT_EQ(Delivery(expired, "last_status"), "500");
  EXPECT_EQ(dispatcher->counters().dead.load(), 1u);
  // Dead is final for the dispatcher.
  EXPECT_EQ(RunOnce(*dispatcher), 0u);
  EXPECT_EQ(receiver_->Receipts().size(), 1u);

  // A retry is never scheduled past give_up_at: with a one-hour backoff the last attempt still
  // happens at the give-up instant, and its failure dead-letters the event.
  DispatcherOptions slow = FastOptions();
  slow.backoff = {3600s, 3600s};
  auto patient = NewDispatcher({"whsec"}, slow);
  const std::string closing = InsertEvent("sales-platform", "payment.succeeded", 2);
  Sql("UPDATE event_deliveries SET give_up_at = now() + interval '400 milliseconds' "
      "WHERE event_id = $1",
      db::Params().Add(closing));
  EXPECT_EQ(RunOnce(*patient), 1u);
  EXPECT_EQ(Delivery(closing, "state"), "pending");
  EXPECT_EQ(Text("SELECT (next_attempt_at = give_up_at)::text FROM event_deliveries "
                 "WHERE event_id = $1",
                 db::Params().Add(closing)),
            "true");
  std::this_thread::sleep_for(450ms);
  EXPECT_EQ(RunOnce(*patient), 1u);
  EXPECT_EQ(Delivery(closing, "state"), "dead");
  EXPECT_EQ(Delivery(closing, "attempts"), "2");
}

TEST_F(EventsTest, RedeliverOfADeadEventDeliversIt) {
  StartApi();
  const std::string id = InsertEvent("sales-platform", "refund.succeeded", 1);
  Sql("UPDATE event_deliveries SET state = 'dead', attempts = 7, last_status = 500, "
      "give_up_at = now() - interval '1 day', next_attempt_at = now() - interval '1 day' "
      "WHERE event_id = $1",
      db::Params().Add(id));
  auto dispatcher = NewDispatcher({"whsec"});
  EXPECT_EQ(RunOnce(*dispatcher), 0u);

  // Another client's event is as unknown as a missing one.
  auto foreign = Call("claims-system", verb::post, "/v1/events/" + id + "/redeliver");
  EXPECT_EQ(foreign.result(), status::not_found) << foreign.body();
  EXPECT_EQ(Delivery(id, "state"), "dead");
  auto missing =
      Call("sales-platform", verb::post, "/v1/events/evt_zzzzzzzzzzzzzzzzzzzzzzzz/redeliver");
  EXPECT_EQ(missing.result(), status::not_found);

  auto answered = Call("sales-platform", verb::post, "/v1/events/" + id + "/redeliver");
  ASSERT_EQ(answered.result(), status::ok) << answered.body();
  const auto event = Parse<api::v1::Event>(answered);
  EXPECT_EQ(event.id(), id);
  EXPECT_EQ(event.type(), "refund.succeeded");
  EXPECT_EQ(event.delivery_state(), "pending");
  EXPECT_EQ(event.delivery_attempts(), 0);
  EXPECT_TRUE(event.has_payment());
  // A fresh retry window (the routes' option: one hour).
  EXPECT_EQ(Text("SELECT (give_up_at > now() + interval '3500 seconds' AND "
                 "give_up_at <= now() + interval '3600 seconds')::text "
                 "FROM event_deliveries WHERE event_id = $1",
                 db::Params().Add(id)),
            "true");

  EXPECT_EQ(RunOnce(*dispatcher), 1u);
  EXPECT_EQ(Delivery(id, "state"), "delivered");
  ASSERT_EQ(receiver_->Receipts().size(), 1u);
  EXPECT_EQ(receiver_->Receipts()[0].event_id, id);
}

TEST_F(EventsTest, TwoDispatchersDeliverEachEventExactlyOnce) {
  constexpr int kEvents = 40;
  std::set<std::string> inserted;
  for (int i = 0; i < kEvents; ++i) {
    inserted.insert(InsertEvent("sales-platform", "payment.succeeded", i));
  }
  // Slow enough answers that the two dispatchers' rounds overlap.
  receiver_->Delay(10ms);
  DispatcherOptions options = FastOptions();
  options.interval = 10ms;
  options.batch_size = 3;
  options.concurrency_max = 2;
  // Two daemons: each its own pool of connections.
  extra_pools_.push_back(
      std::make_unique<db::PgPool>(io_.get_executor(), MakePoolOptions(db_url_, 4)));
  auto first = NewDispatcher({"whsec"}, options);
  auto second = NewDispatcher({"whsec"}, options, extra_pools_.back().get());
  first->Start();
  second->Start();

  EXPECT_TRUE(Eventually([&] {
    return Int("SELECT count(*) FROM event_deliveries WHERE state = 'delivered'") == kEvents;
  }));
  Run(StopCo(first));
  Run(StopCo(second));

  const auto receipts = receiver_->Receipts();
  std::multiset<std::string> received;
  for (const auto& r : receipts) received.insert(r.event_id);
  EXPECT_EQ(receipts.size(), static_cast<std::size_t>(kEvents));
  EXPECT_EQ(std::set<std::string>(received.begin(), received.end()), inserted);
  for (const auto& id : inserted) EXPECT_EQ(received.count(id), 1u) << id;
  EXPECT_EQ(first->counters().delivered.load() + second->counters().delivered.load(),
            static_cast<std::uint64_t>(kEvents));
  // Both took part, so the test really raced them.
  EXPECT_GT(first->counters().delivered.load(), 0u);
  EXPECT_GT(second->counters().delivered.load(), 0u);
  EXPECT_EQ(first->counters().unrecorded.load() + second->counters().unrecorded.load(), 0u);
  EXPECT_EQ(Int("SELECT count(*) FROM event_deliveries WHERE attempts <> 1"), 0);
}

TEST_F(EventsTest, ListsOwnEventsFilteredByDeliveryOldestFirst) {
  StartApi();
  std::vector<std::string> own;
  for (int i = 1; i <= 6; ++i)
    own.push_back(InsertEvent("sales-platform", "payment.succeeded", i * 2));
  const std::string other_a = InsertEvent("claims-system", "payment.failed", 3);
  const std::string other_b = InsertEvent("claims-system", "payment.closed", 7);
  for (int i : {0, 2, 4}) {
    Sql("UPDATE event_deliveries SET state = 'delivered', attempts = 1, delivered_at = now() "
        "WHERE event_id = $1",
        db::Params().Add(own[i]));
  }
  Sql("UPDATE event_deliveries SET state = 'dead', attempts = 9 WHERE event_id = $1",
      db::Params().Add(own[3]));
  Sql("UPDATE event_deliveries SET attempts = 2 WHERE event_id = $1", db::Params().Add(own[5]));

  auto all = Call("sales-platform", verb::get, "/v1/events");
  ASSERT_EQ(all.result(), status::ok) << all.body();
  const auto all_page = Parse<api::v1::ListEventsResponse>(all);
  EXPECT_EQ(Ids(all_page), own);
  EXPECT_EQ(all_page.next_cursor(), "");
  ASSERT_EQ(all_page.events_size(), 6);
  EXPECT_EQ(all_page.events(0).delivery_state(), "delivered");
  EXPECT_EQ(all_page.events(0).delivery_attempts(), 1);
  EXPECT_EQ(all_page.events(0).type(), "payment.succeeded");
  EXPECT_EQ(all_page.events(0).payment().amount_minor(), 12345);

  const auto undelivered = Parse<api::v1::ListEventsResponse>(
      Call("sales-platform", verb::get, "/v1/events?delivered=false"));
  EXPECT_EQ(Ids(undelivered), (std::vector<std::string>{own[1], own[3], own[5]}));
  ASSERT_EQ(undelivered.events_size(), 3);
  EXPECT_EQ(undelivered.events(0).delivery_state(), "pending");
  EXPECT_EQ(undelivered.events(1).delivery_state(), "dead");
  EXPECT_EQ(undelivered.events(1).delivery_attempts(), 9);
  EXPECT_EQ(undelivered.events(2).delivery_attempts(), 2);

  const auto delivered = Parse<api::v1::ListEventsResponse>(
      Call("sales-platform", verb::get, "/v1/events?delivered=true"));
  EXPECT_EQ(Ids(delivered), (std::vector<std::string>{own[0], own[2], own[4]}));

  // Pages: oldest first, no gap, no repeat.
  const auto first =
      Parse<api::v1::ListEventsResponse>(Call("sales-platform", verb::get, "/v1/events?limit=4"));
  EXPECT_EQ(Ids(first), (std::vector<std::string>(own.begin(), own.begin() + 4)));
  ASSERT_FALSE(first.next_cursor().empty());
  const auto second = Parse<api::v1::ListEventsResponse>(
      Call("sales-platform", verb::get, "/v1/events?limit=4&cursor=" + first.next_cursor()));
  EXPECT_EQ(Ids(second), (std::vector<std::string>(own.begin() + 4, own.end())));
  EXPECT_EQ(second.next_cursor(), "");
  const auto undelivered_page = Parse<api::v1::ListEventsResponse>(
      Call("sales-platform", verb::get, "/v1/events?delivered=false&limit=2"));
  EXPECT_EQ(Ids(undelivered_page), (std::vector<std::string>{own[1], own[3]}));
  const auto undelivered_rest = Parse<api::v1::ListEventsResponse>(
      Call("sales-platform", verb::get,
           "/v1/events?delivered=false&limit=2&cursor=" + undelivered_page.next_cursor()));
  EXPECT_EQ(Ids(undelivered_rest), (std::vector<std::string>{own[5]}));

  // The other client sees its own events only.
  const auto others =
      Parse<api::v1::ListEventsResponse>(Call("claims-system", verb::get, "/v1/events"));
  EXPECT_EQ(Ids(others), (std::vector<std::string>{other_a, other_b}));

  for (const std::string target : {"/v1/events?delivered=maybe", "/v1/events?limit=0",
                                   "/v1/events?limit=101", "/v1/events?cursor=junk"}) {
    EXPECT_EQ(Call("sales-platform", verb::get, target).result(), status::bad_request) << target;
  }
  EXPECT_EQ(Call("finance", verb::get, "/v1/events").result(), status::forbidden);
}

TEST_F(EventsTest, MakeDispatcherSignsWithEveryVersionOfTheKeyringSecret) {
  // The webhook names its secret by key id; both versions of a rotation sign, newest first, and a
  // keyring reload (a re-written file) changes the signature from the next delivery on.
  const fs::path dir = pki_->parent_path() / "webhook-keys";
  fs::create_directories(dir);
  auto write = [&](const fs::path& path, const std::string& text) {
    std::ofstream(path, std::ios::trunc) << text;
    ::chmod(path.c_str(), 0600);
  };
  write(dir / "master.key", std::string(64, 'a'));
  write(dir / "v1", "whsec_version_one\n");
  write(dir / "v2", "whsec_version_two\n");
  auto* keys = config_.mutable_keys();
  keys->mutable_master_key()->set_id("test-master");
  keys->mutable_master_key()->set_version(1);
  keys->mutable_master_key()->set_file((dir / "master.key").string());
  for (const std::uint32_t version : {1u, 2u}) {
    auto* entry = keys->add_entries();
    entry->set_id("webhook.sales");
    entry->set_version(version);
    entry->set_file((dir / ("v" + std::to_string(version))).string());
  }
  auto* events = config_.mutable_events();
  events->set_dispatch_interval_ms(20);
  auto* hook = events->add_webhooks();
  hook->set_principal("sales-platform");
  hook->set_url(receiver_->url());
  hook->set_ca_file((*pki_ / "ca.crt").string());
  hook->set_secret_key_id("webhook.sales");

  auto keyring = keys::LiveKeyring::Load(config_.keys());
  ASSERT_TRUE(keyring) << keyring.error().message;
  auto made = MakeDispatcher(config_, *pool_, io_.get_executor(), keyring.value());
  ASSERT_TRUE(made) << made.error();
  auto dispatcher = made.value();
  dispatchers_.push_back(dispatcher);
  dispatcher->Start();
  const std::string first = InsertEvent("sales-platform", "payment.pending", 1);
  EXPECT_TRUE(Eventually([&] { return Delivery(first, "state") == "delivered"; }));
  auto receipts = receiver_->Receipts();
  ASSERT_EQ(receipts.size(), 1u);
  const std::string t = receipts[0].signature.substr(0, receipts[0].signature.find(','));
  const std::int64_t ts = std::stoll(t.substr(2));
  const std::string payload = std::to_string(ts) + "." + receipts[0].body;
  EXPECT_EQ(receipts[0].signature, t + ",v1=" + HmacSha256Hex("whsec_version_two", payload) +
                                       ",v1=" + HmacSha256Hex("whsec_version_one", payload));
  for (const std::string_view secret : {"whsec_version_one", "whsec_version_two"}) {
    const std::vector<std::string_view> secrets = {secret};
    EXPECT_TRUE(
        VerifySignatureHeader(receipts[0].signature, receipts[0].body, secrets, UnixNow(), 300s));
  }

  // v2 re-written in place (a mounted secret updated), then the keyring reloaded (SIGHUP).
  write(dir / "v2", "whsec_version_two_b\n");
  ASSERT_TRUE(keyring.value()->Reload());
  const std::string second = InsertEvent("sales-platform", "payment.succeeded", 2);
  EXPECT_TRUE(Eventually([&] { return Delivery(second, "state") == "delivered"; }));
  Run(StopCo(dispatcher));
  receipts = receiver_->Receipts();
  ASSERT_EQ(receipts.size(), 2u);
  const std::vector<std::string_view> old_two = {"whsec_version_two"};
  const std::vector<std::string_view> new_two = {"whsec_version_two_b"};
  EXPECT_FALSE(
      VerifySignatureHeader(receipts[1].signature, receipts[1].body, old_two, UnixNow(), 300s));
  EXPECT_TRUE(
      VerifySignatureHeader(receipts[1].signature, receipts[1].body, new_two, UnixNow(), 300s));

  // A secret others can read stops the keyring from loading, naming the entry, never the bytes;
  // a webhook whose key id is not in the keyring is refused, naming the field.
  ::chmod((dir / "v1").c_str(), 0644);
  auto refused = keys::LiveKeyring::Load(config_.keys());
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("webhook.sales v1"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(refused.error().message.find("whsec"), std::string::npos);
  hook->set_secret_key_id("webhook.other");
  auto unknown = MakeDispatcher(config_, *pool_, io_.get_executor(), keyring.value());
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().find("events.webhooks[0].secret_key_id"), std::string::npos)
      << unknown.error();
}

}  // namespace
}  // namespace paygate::events
