// Idempotency-Key over real TLS against a real PostgreSQL: replay byte for byte, 422 for another
// request under the same key, 409 while the first is in flight, release on 5xx, keys per principal,
// takeover after a crashed daemon's lease, retention and purge, and 50 concurrent identical POSTs
// running the handler once.
#include <atomic>
#include <future>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/idempotency/idempotency_store.h"
#include "gateway/idempotency/with_idempotency.h"
#include "gateway/routes.h"
#include "tests/integration/auth/auth_fixture.h"

namespace paygate::testing {
namespace {

using namespace std::chrono_literals;
using idempotency::IdempotencyKey;
using idempotency::PostgresIdempotencyStore;
using ::testing::HasSubstr;

// The wrapped handler: counts its runs, can be held mid-flight, slowed, or made to fail once.
struct Inner {
  std::atomic<int> calls{0};
  std::atomic<bool> hold{false};
  std::atomic<int> delay_ms{0};
  std::atomic<int> fail_once_with{0};
};

std::shared_ptr<edge::Router> Routes(std::shared_ptr<idempotency::IdempotencyStore> store,
                                     std::shared_ptr<Inner> inner) {
  auto router = gateway::BuildApiRouter();
  edge::Handler handler = [inner](edge::RequestContext& ctx) -> asio::awaitable<edge::Response> {
    const int n = ++inner->calls;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    while (inner->hold) {
      timer.expires_after(5ms);
      co_await timer.async_wait(asio::use_awaitable);
    }
    if (inner->delay_ms > 0) {
      timer.expires_after(std::chrono::milliseconds(inner->delay_ms.load()));
      co_await timer.async_wait(asio::use_awaitable);
    }
    const int failure = inner->fail_once_with.exchange(0);
    if (failure != 0) {
      co_return edge::ErrorResponse(ctx.request, static_cast<status>(failure), "api_error",
                                    "test_failure", "Failed on purpose.", ctx.request_id);
    }
    edge::Response response{status::created, ctx.request.version()};
    response.set(edge::http::field::content_type, "application/json");
    response.set(edge::http::field::location, fmt::format("/test/things/{}", n));
    response.set("X-Thing-Run", std::to_string(n));
    response.body() = fmt::format(R"({{"run":{},"principal":"{}","request_id":"{}","body":{}}})", n,
                                  ctx.principal->name, ctx.request_id, ctx.request.body());
    response.prepare_payload();
    co_return response;
  };
  router->Add({verb::post,
               "/test/things",
               edge::Access::kRoles,
               {config::v1::ROLE_SALES, config::v1::ROLE_CLAIMS},
               idempotency::WithIdempotency(store, handler)});
  router->Add({verb::get,
               "/test/things",
               edge::Access::kRoles,
               {config::v1::ROLE_SALES},
               idempotency::WithIdempotency(store, handler)});
  return router;
}

class IdempotencyTest : public AuthTest {
 protected:
  void SetUp() override {
    AuthTest::SetUp();
    store_ = std::make_shared<PostgresIdempotencyStore>(*pool_, StoreOptions());
    inner_ = std::make_shared<Inner>();
    server_ = StartServer(Routes(store_, inner_));
  }
  void TearDown() override {
    server_.reset();
    AuthTest::TearDown();
  }
  virtual idempotency::PostgresIdempotencyStoreOptions StoreOptions() { return {}; }

  edge::Response Post(const std::string& key, std::string body,
                      const std::string& principal = "sales-platform") {
    edge::Request request = MakeRequest(verb::post, "/test/things", std::move(body));
    if (!key.empty()) request.set("Idempotency-Key", key);
    return Exchange(server_->port(), As(principal), std::move(request));
  }

  std::shared_ptr<PostgresIdempotencyStore> store_;
  std::shared_ptr<Inner> inner_;
  std::unique_ptr<RunningServer> server_;
};

// The key is required on POST and must be well-formed; other methods pass through untouched.
TEST_F(IdempotencyTest, KeyIsRequiredOnPost) {
  const edge::Response missing = Post("", "{}");
  EXPECT_EQ(missing.result(), status::bad_request);
  EXPECT_EQ(ErrorCode(missing), "idempotency_key_missing");
  EXPECT_THAT(missing.body(), HasSubstr(R"("param":"Idempotency-Key")"));
  const edge::Response invalid = Post("has space", "{}");
  EXPECT_EQ(invalid.result(), status::bad_request);
  EXPECT_EQ(ErrorCode(invalid), "idempotency_key_invalid");
  EXPECT_EQ(inner_->calls, 0);
  const edge::Response get =
      Exchange(server_->port(), As("sales-platform"), MakeRequest(verb::get, "/test/things"));
  EXPECT_EQ(get.result(), status::created);
  EXPECT_EQ(inner_->calls, 1);
}

// A replay returns the first response byte for byte (status, Content-Type, replayable headers,
// body), marked as replayed, without running the handler again; the record is kept 7 days.
TEST_F(IdempotencyTest, ReplayIsByteForByte) {
  const edge::Response first = Post("key-1", R"({"amount":100})");
  ASSERT_EQ(first.result(), status::created) << first.body();
  EXPECT_TRUE(first["Idempotent-Replayed"].empty());
  const edge::Response second = Post("key-1", R"({"amount":100})");
  EXPECT_EQ(second.result(), status::created);
  EXPECT_EQ(second.body(), first.body());
  EXPECT_EQ(second[edge::http::field::content_type], "application/json");
  EXPECT_EQ(second[edge::http::field::location], first[edge::http::field::location]);
  EXPECT_EQ(second["X-Thing-Run"], "1");
  EXPECT_EQ(second["Idempotent-Replayed"], "true");
  EXPECT_EQ(second["Original-Request-Id"], first["Request-Id"]);
  EXPECT_NE(second["Request-Id"], first["Request-Id"]);
  EXPECT_EQ(inner_->calls, 1);
  EXPECT_EQ(
      Sql("SELECT count(*) FROM idempotency_keys WHERE principal = 'sales-platform' AND "
          "key = 'key-1' AND state = 'done' AND expires_at >= created_at + interval '7 days'"),
      1);
}

// The same key with another body, path or content type is a different request: 422.
TEST_F(IdempotencyTest, DifferentRequestUnderSameKeyIs422) {
  ASSERT_EQ(Post("key-2", R"({"amount":100})").result(), status::created);
  const edge::Response other = Post("key-2", R"({"amount":101})");
  EXPECT_EQ(other.result(), status::unprocessable_entity) << other.body();
  EXPECT_EQ(ErrorCode(other), "idempotency_key_reused");
  edge::Request other_type = MakeRequest(verb::post, "/test/things", R"({"amount":100})");
  other_type.set(edge::http::field::content_type, "text/plain");
  other_type.set("Idempotency-Key", "key-2");
  EXPECT_EQ(Exchange(server_->port(), As("sales-platform"), std::move(other_type)).result(),
            status::unprocessable_entity);
  EXPECT_EQ(inner_->calls, 1);
}

// While the first request runs, the same key answers 409 with Retry-After; once it finishes, the
// retry gets its response.
TEST_F(IdempotencyTest, InFlightIs409) {
  inner_->hold = true;
  auto first = std::async(std::launch::async, [&] { return Post("key-3", "{}"); });
  for (int i = 0; i < 500 && inner_->calls == 0; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(inner_->calls, 1);
  const edge::Response during = Post("key-3", "{}");
  EXPECT_EQ(during.result(), status::conflict) << during.body();
  EXPECT_EQ(ErrorCode(during), "idempotency_key_in_use");
  EXPECT_EQ(during[edge::http::field::retry_after], "1");
  inner_->hold = false;
  const edge::Response done = first.get();
  EXPECT_EQ(done.result(), status::created);
  const edge::Response after = Post("key-3", "{}");
  EXPECT_EQ(after.body(), done.body());
  EXPECT_EQ(inner_->calls, 1);
}

// A 5xx (and a 409 or 429) is not stored: the key is released and the retry runs the handler
// again, whose success is then stored.
TEST_F(IdempotencyTest, FailuresReleaseTheKey) {
  for (int failure : {503, 500, 409, 429}) {
    const std::string key = fmt::format("key-fail-{}", failure);
    const int before = inner_->calls;
    inner_->fail_once_with = failure;
    const edge::Response failed = Post(key, "{}");
    EXPECT_EQ(failed.result_int(), static_cast<unsigned>(failure));
    const edge::Response retried = Post(key, "{}");
    EXPECT_EQ(retried.result(), status::created) << failure;
    EXPECT_TRUE(retried["Idempotent-Replayed"].empty());
    const edge::Response replayed = Post(key, "{}");
    EXPECT_EQ(replayed.body(), retried.body());
    EXPECT_EQ(inner_->calls, before + 2) << failure;
  }
  // A 4xx other than 409/429 is an answer like any other: stored and replayed.
  inner_->fail_once_with = 404;
  const int before = inner_->calls;
  EXPECT_EQ(Post("key-404", "{}").result(), status::not_found);
  const edge::Response again = Post("key-404", "{}");
  EXPECT_EQ(again.result(), status::not_found);
  EXPECT_EQ(again["Idempotent-Replayed"], "true");
  EXPECT_EQ(inner_->calls, before + 1);
}

// Keys are per principal: another principal's identical key (and body) is a different request,
// whether it authenticates by certificate or by API key.
TEST_F(IdempotencyTest, KeysArePerPrincipal) {
  const edge::Response sales = Post("shared-key", "{}");
  ASSERT_EQ(sales.result(), status::created);
  edge::Request batch_request = MakeRequest(verb::post, "/test/things", "{}");
  batch_request.set("Idempotency-Key", "shared-key");
  Sign(batch_request, kBatchKey, UnixNow(), auth::RandomNonce());
  const edge::Response batch = Exchange(server_->port(), Anonymous(), std::move(batch_request));
  ASSERT_EQ(batch.result(), status::created) << batch.body();
  EXPECT_THAT(sales.body(), HasSubstr(R"("principal":"sales-platform")"));
  EXPECT_THAT(batch.body(), HasSubstr(R"("principal":"batch")"));
  EXPECT_TRUE(batch["Idempotent-Replayed"].empty());
  EXPECT_EQ(inner_->calls, 2);
  // And each replays its own.
  EXPECT_EQ(Post("shared-key", "{}").body(), sales.body());
}

// 50 identical POSTs at once run the handler exactly once; every answer is that response or 409.
TEST_F(IdempotencyTest, ConcurrentIdenticalPostsRunOnce) {
  inner_->delay_ms = 200;
  std::vector<std::future<edge::Response>> answers;
  for (int i = 0; i < 50; ++i) {
    answers.push_back(
        std::async(std::launch::async, [&] { return Post("key-burst", R"({"n":1})"); }));
  }
  std::vector<edge::Response> responses;
  for (auto& a : answers) responses.push_back(a.get());
  EXPECT_EQ(inner_->calls, 1);
  std::string created_body;
  int created = 0, conflicts = 0;
  for (const auto& r : responses) {
    if (r.result() == status::created) {
      ++created;
      if (created_body.empty()) created_body = r.body();
      EXPECT_EQ(r.body(), created_body);
    } else {
      EXPECT_EQ(r.result(), status::conflict) << r.body();
      ++conflicts;
    }
  }
  EXPECT_GE(created, 1);
  EXPECT_EQ(created + conflicts, 50);
  EXPECT_EQ(Post("key-burst", R"({"n":1})").body(), created_body);
  EXPECT_EQ(inner_->calls, 1);
}

// Concurrent requests each store their own response: each key replays its own body, and a
// completion whose lease is no longer its own is refused while another completing at the same time
// is stored exactly (binary body and headers).
TEST_F(IdempotencyTest, ConcurrentCompletionsEachStoreTheirOwnResponse) {
  inner_->delay_ms = 50;
  std::vector<std::future<edge::Response>> answers;
  for (int i = 0; i < 30; ++i) {
    answers.push_back(std::async(std::launch::async, [this, i] {
      return Post("many-" + std::to_string(i), R"({"n":)" + std::to_string(i) + "}");
    }));
  }
  std::vector<std::string> bodies;
  for (auto& a : answers) {
    const edge::Response r = a.get();
    ASSERT_EQ(r.result(), status::created) << r.body();
    bodies.push_back(r.body());
  }
  for (int i = 0; i < 30; ++i) {
    const edge::Response replay =
        Post("many-" + std::to_string(i), R"({"n":)" + std::to_string(i) + "}");
    EXPECT_EQ(replay["Idempotent-Replayed"], "true");
    EXPECT_EQ(replay.body(), bodies[i]);
  }
  EXPECT_EQ(inner_->calls, 30);

  // Two claims completed at once, one with a token that is not its lease's.
  const idempotency::IdempotencyKey mine{"sales-platform", "batch-mine"};
  const idempotency::IdempotencyKey stolen{"sales-platform", "batch-stolen"};
  auto claim = [this](const idempotency::IdempotencyKey& key) {
    auto begun = OnDb(store_->Begin(key, std::string(32, 'f'), "req", db::Clock::now() + 10s));
    EXPECT_TRUE(begun && begun.value().kind == idempotency::BeginOutcome::Kind::kClaimed);
    return begun ? begun.value().lease_token : std::string();
  };
  const std::string token = claim(mine);
  claim(stolen);
  idempotency::StoredResponse response;
  response.status = 201;
  response.content_type = "application/json";
  response.headers = "X-A: 1\r\n";
  response.body = "x";
  response.body += '\0';
  response.body += '\xff';
  response.body += "y";
  std::promise<Result<void>> mine_done, stolen_done;
  asio::post(db_ioc_, [&] {
    asio::co_spawn(
        db_ioc_,
        [&]() -> asio::awaitable<void> {
          mine_done.set_value(
              co_await store_->Complete(mine, token, response, db::Clock::now() + 10s));
        },
        asio::detached);
    asio::co_spawn(
        db_ioc_,
        [&]() -> asio::awaitable<void> {
          stolen_done.set_value(co_await store_->Complete(
              stolen, "00000000-0000-0000-0000-000000000000", response, db::Clock::now() + 10s));
        },
        asio::detached);
  });
  const Result<void> mine_result = mine_done.get_future().get();
  const Result<void> stolen_result = stolen_done.get_future().get();
  EXPECT_TRUE(mine_result);
  ASSERT_FALSE(stolen_result);
  EXPECT_EQ(stolen_result.error(), make_error_code(idempotency::Errc::lease_lost));
  EXPECT_EQ(Sql("SELECT count(*) FROM idempotency_keys WHERE key = 'batch-mine' AND state = 'done' "
                "AND response_status = 201 AND response_content_type = 'application/json' "
                "AND response_headers = decode('582d413a20310d0a', 'hex') "
                "AND response_body = decode('7800ff79', 'hex') AND lease_expires_at IS NULL"),
            1);
  EXPECT_EQ(Sql("SELECT count(*) FROM idempotency_keys WHERE key = 'batch-stolen' "
                "AND state = 'in_flight' AND response_body IS NULL"),
            1);
}

// Expired records are purged; live ones stay.
TEST_F(IdempotencyTest, ExpiredRecordsArePurged) {
  ASSERT_EQ(Post("old", "{}").result(), status::created);
  ASSERT_EQ(Post("new", "{}").result(), status::created);
  Sql("UPDATE idempotency_keys SET created_at = now() - interval '8 days', "
      "expires_at = now() - interval '1 day' WHERE key = 'old'");
  auto purged = OnDb(store_->Purge(db::Clock::now() + 10s));
  ASSERT_TRUE(purged);
  EXPECT_EQ(purged.value(), 1);
  EXPECT_EQ(Sql("SELECT count(*) FROM idempotency_keys"), 1);
  // The purged key is free again.
  EXPECT_EQ(Post("old", R"({"other":true})").result(), status::created);
}

class IdempotencyLeaseTest : public IdempotencyTest {
 protected:
  idempotency::PostgresIdempotencyStoreOptions StoreOptions() override {
    idempotency::PostgresIdempotencyStoreOptions options;
    options.lease = 1000ms;
    return options;
  }
};

// A key left in flight by a daemon that crashed is 409 until its lease passes, then the same
// request runs; the crashed claim can no longer complete over it, and another request still gets
// 422.
TEST_F(IdempotencyLeaseTest, AbandonedClaimIsTakenOverAfterItsLease) {
  const std::string body = "{}";
  edge::Request probe = MakeRequest(verb::post, "/test/things", body);
  const std::string fingerprint = idempotency::RequestFingerprint(
      "POST", "/test/things", probe[edge::http::field::content_type], body);
  const IdempotencyKey key{"sales-platform", "crash-key"};
  auto crashed = OnDb(store_->Begin(key, fingerprint, "crashedreq", db::Clock::now() + 10s));
  ASSERT_TRUE(crashed);
  ASSERT_EQ(crashed.value().kind, idempotency::BeginOutcome::Kind::kClaimed);

  EXPECT_EQ(Post("crash-key", body).result(), status::conflict);
  std::this_thread::sleep_for(1200ms);
  EXPECT_EQ(Post("crash-key", R"({"different":1})").result(), status::unprocessable_entity);
  const edge::Response taken = Post("crash-key", body);
  EXPECT_EQ(taken.result(), status::created) << taken.body();
  EXPECT_EQ(inner_->calls, 1);

  idempotency::StoredResponse late{200, "text/plain", "", "late"};
  auto completed =
      OnDb(store_->Complete(key, crashed.value().lease_token, late, db::Clock::now() + 10s));
  ASSERT_FALSE(completed);
  EXPECT_EQ(completed.error(), idempotency::Errc::lease_lost);
  EXPECT_EQ(Post("crash-key", body).body(), taken.body());
}

}  // namespace
}  // namespace paygate::testing
