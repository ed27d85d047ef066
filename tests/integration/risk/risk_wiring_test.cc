// gateway/fraud against a real PostgreSQL: velocity counts survive a restart and agree across two
// service instances on one database (each stored event counted exactly once per instance, also
// one that commits after a higher id was already read), list changes are audited and never hold
// personal data in plain text, a ruleset that does not compile never replaces the running one,
// and shadow mode stores its differences without changing a live decision.
#include <utility>  // Before Asio (DESIGN.md §2).

#include <chrono>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "gateway/fraud/events.h"
#include "gateway/fraud/service.h"
#include "gateway/fraud/store.h"
#include "ledger/db/migrations.h"
#include "ledger/db/pg_pool.h"
#include "ledger/db/transaction.h"
#include "tests/integration/db/db_test_util.h"
#include "tests/testing/pg_cluster.h"
#include "tests/testing/run_async.h"

namespace paygate::fraud {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using db::test::FreshDatabase;
using db::test::In;
using db::test::MakePoolOptions;
using testing::RunAsync;

constexpr const char* kRules = R"(ruleset velocity
thresholds review 40 block 80
list @blocked : account_hash
aggregate attempts_per_policy_1h = count() by policy.id over 1h on premium_payment
rule V-01 on premium_payment review "{attempts_per_policy_1h} earlier attempts in 1h"
  when attempts_per_policy_1h >= 3
rule B-01 on premium_payment block "instrument on the block list"
  when payer.instrument_hash in @blocked
)";

constexpr const char* kHashKey = "risk-wiring-test-hash-key-0123456789abcdef";

std::shared_ptr<const risk::CompiledRuleset> Compiled(std::string_view text) {
  auto compiled = risk::Compile(text, "test.rules");
  EXPECT_TRUE(compiled) << (compiled ? "" : compiled.assume_error().ToString());
  return compiled ? std::move(compiled).assume_value() : nullptr;
}

// One daemon's risk service with its own pool, as a separate process would have.
struct Instance {
  Instance(asio::io_context& io, const std::string& url, std::string_view shadow = {})
      : pool(io.get_executor(), MakePoolOptions(url, 4)) {
    RiskOptions options;
    options.db_timeout = 10s;
    service = std::make_shared<RiskService>(
        pool, io.get_executor(), options, keys::Secret(std::string_view(kHashKey)),
        Compiled(kRules), shadow.empty() ? nullptr : Compiled(shadow));
    auto started = RunAsync(io, service->Start(false));
    EXPECT_TRUE(started) << (started ? "" : started.error().message());
  }
  ~Instance() { pool.Close(); }
  db::PgPool pool;
  std::shared_ptr<RiskService> service;
};

class RiskWiringTest : public ::testing::Test {
 protected:
  RiskWiringTest() : url_(FreshDatabase()), admin_(io_.get_executor(), MakePoolOptions(url_, 2)) {
    auto applied = RunAsync(io_, db::ApplyMigrations(admin_, In(60s)));
    EXPECT_TRUE(applied) << (applied ? "" : applied.error().message);
  }
  ~RiskWiringTest() override { admin_.Close(); }

  api::v1::CreatePaymentRequest Request(const std::string& policy,
                                        const std::string& instrument = "6222-0001") {
    api::v1::CreatePaymentRequest r;
    r.set_policy_number(policy);
    r.set_payer_id("cust-1");
    r.set_amount_minor(10000);
    r.set_currency("CNY");
    r.set_method("sandbox");
    r.mutable_risk()->set_instrument(instrument);
    return r;
  }

  // Decides a payment on `instance` and stores it, as the payment flow does.
  Verdict DecideAndStore(Instance& instance, const api::v1::CreatePaymentRequest& request,
                         std::int64_t at_s = 0) {
    EventTexts texts;
    const std::int64_t now_s =
        at_s != 0 ? at_s
                  : std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    auto event = PremiumPaymentEvent(request, "sales", {}, now_s, instance.service->hasher(), texts);
    EXPECT_TRUE(event);
    Verdict verdict = instance.service->Decide(event.value(), "payment",
                                               "pay_" + std::to_string(++seq_), "sales");
    auto recorded = RunAsync(
        io_, db::RunInTransaction(instance.pool, In(10s), db::TransactionOptions{},
                                  [&](db::PgConnection& conn)
                                      -> asio::awaitable<Result<store::RecordedDecision>> {
                                    co_return co_await store::RecordDecisionTx(
                                        conn, verdict.record, verdict.holds(), In(10s));
                                  }));
    EXPECT_TRUE(recorded);
    if (recorded) instance.service->Recorded(verdict, recorded.value().event_id);
    RunAsync(io_, [&]() -> asio::awaitable<void> { co_return; }());  // let shadow work run
    return verdict;
  }

  // The velocity aggregate an instance holds for `policy` right now.
  std::int64_t Count(Instance& instance, const std::string& policy) {
    EventTexts texts;
    auto event = PremiumPaymentEvent(Request(policy), "sales", {},
                                     std::chrono::duration_cast<std::chrono::seconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count(),
                                     instance.service->hasher(), texts);
    const risk::Value v = instance.service->ReadAggregate("attempts_per_policy_1h", event.value());
    return v.present ? v.a : -1;
  }

  void Poll(Instance& instance) {
    auto polled = RunAsync(io_, instance.service->PollOnce());
    EXPECT_TRUE(polled) << (polled ? "" : polled.error().message());
  }

  std::int64_t SqlCount(const std::string& sql) {
    return RunAsync(io_, [&]() -> asio::awaitable<std::int64_t> {
      auto lease = co_await admin_.Acquire(In(10s));
      if (!lease) co_return -1;
      auto r = co_await lease.value()->ExecuteSimple(sql, In(10s));
      if (!r) co_return -2;
      co_return r.value().GetInt64(0, 0).value();
    }());
  }

  asio::io_context io_;
  std::string url_;
  db::PgPool admin_;
  int seq_ = 0;
};

TEST_F(RiskWiringTest, VelocityCountsSurviveARestartAndAgreeAcrossInstances) {
  auto a = std::make_unique<Instance>(io_, url_);
  // Counts exclude the current event: 0, 1, 2 earlier attempts allow; the fourth (3) reviews.
  EXPECT_EQ(DecideAndStore(*a, Request("POL-V")).outcome, risk::Outcome::kAllow);
  EXPECT_EQ(DecideAndStore(*a, Request("POL-V")).outcome, risk::Outcome::kAllow);
  EXPECT_EQ(Count(*a, "POL-V"), 2);

  // A second daemon on the same database, started now: it rebuilds from the stored events.
  Instance b(io_, url_);
  EXPECT_EQ(Count(b, "POL-V"), 2);
  EXPECT_EQ(DecideAndStore(b, Request("POL-V")).outcome, risk::Outcome::kAllow);
  EXPECT_EQ(Count(b, "POL-V"), 3);

  // A learns of B's event by tailing; its own two are not counted again, and neither are B's own
  // when B tails.
  Poll(*a);
  Poll(b);
  EXPECT_EQ(Count(*a, "POL-V"), 3);
  EXPECT_EQ(Count(b, "POL-V"), 3);
  const Verdict fourth = DecideAndStore(*a, Request("POL-V"));
  EXPECT_EQ(fourth.outcome, risk::Outcome::kReview);
  EXPECT_EQ(fourth.reason_codes, std::vector<std::string>{"V-01"});
  Poll(b);
  EXPECT_EQ(Count(b, "POL-V"), 4);
  Poll(*a);
  EXPECT_EQ(Count(*a, "POL-V"), 4);

  // Restart: A goes away, a new instance rebuilds exactly what was stored.
  a.reset();
  Instance c(io_, url_);
  EXPECT_EQ(Count(c, "POL-V"), 4);
  EXPECT_EQ(DecideAndStore(c, Request("POL-V")).outcome, risk::Outcome::kReview);
  EXPECT_EQ(SqlCount("SELECT count(*) FROM risk_events"), 5);
  EXPECT_EQ(SqlCount("SELECT count(*) FROM risk_decisions WHERE outcome = 'review'"), 2);
  EXPECT_EQ(SqlCount("SELECT count(*) FROM risk_reviews WHERE status = 'open'"), 2);
  // Events older than the window are not part of it after a rebuild.
  const std::int64_t two_hours_ago =
      std::chrono::duration_cast<std::chrono::seconds>(
          (std::chrono::system_clock::now() - 2h).time_since_epoch())
          .count();
  DecideAndStore(c, Request("POL-OLD"), two_hours_ago);
  Instance d(io_, url_);
  EXPECT_EQ(Count(d, "POL-OLD"), 0);
  EXPECT_EQ(Count(d, "POL-V"), 5);
}

TEST_F(RiskWiringTest, AnEventCommittedAfterAHigherIdIsStillCountedOnce) {
  Instance a(io_, url_);
  Instance b(io_, url_);
  // A's first decision is stored in a transaction that stays open while a later one commits.
  EventTexts texts;
  const std::int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
  auto event = PremiumPaymentEvent(Request("POL-G"), "sales", {}, now_s, a.service->hasher(), texts);
  const Verdict slow = a.service->Decide(event.value(), "payment", "pay_slow", "sales");
  auto lease = RunAsync(io_, a.pool.Acquire(In(10s)));
  ASSERT_TRUE(lease);
  db::PgConnection& conn = *lease.value();
  ASSERT_TRUE(RunAsync(io_, conn.ExecuteSimple("BEGIN", In(10s))));
  auto slow_ids = RunAsync(io_, store::RecordDecisionTx(conn, slow.record, false, In(10s)));
  ASSERT_TRUE(slow_ids);
  DecideAndStore(a, Request("POL-G"));  // a higher id, committed first
  Poll(b);
  EXPECT_EQ(Count(b, "POL-G"), 1);
  ASSERT_TRUE(RunAsync(io_, conn.ExecuteSimple("COMMIT", In(10s))));
  Poll(b);
  Poll(b);
  EXPECT_EQ(Count(b, "POL-G"), 2);
  EXPECT_EQ(Count(a, "POL-G"), 2);
}

TEST_F(RiskWiringTest, ListChangesAreAuditedHashedAndSeenByEveryInstance) {
  Instance a(io_, url_);
  Instance b(io_, url_);
  EXPECT_EQ(DecideAndStore(a, Request("POL-L", "6222 0000 1111 2222")).outcome,
            risk::Outcome::kAllow);
  api::v1::AddRiskListItemRequest add;
  add.set_value("6222 0000 1111 2222");
  add.set_note("chargeback");
  auto added = RunAsync(io_, a.service->AddListItem("risk-team", "blocked", add));
  ASSERT_TRUE(added) << added.error().message;
  EXPECT_TRUE(LooksHashed(added.value().item())) << added.value().item();
  // The same number written differently hashes alike.
  EXPECT_EQ(added.value().item(),
            a.service->hasher().Hash(PersonalKind::kAccount, "62220000-11112222"));
  const Verdict blocked = DecideAndStore(a, Request("POL-L", "6222000011112222"));
  EXPECT_EQ(blocked.outcome, risk::Outcome::kBlock);
  EXPECT_EQ(blocked.reason_codes, std::vector<std::string>{"B-01"});
  // B sees the change on its next round.
  EXPECT_EQ(DecideAndStore(b, Request("POL-L2", "6222000011112222")).outcome,
            risk::Outcome::kAllow);
  Poll(b);
  EXPECT_EQ(DecideAndStore(b, Request("POL-L3", "6222000011112222")).outcome,
            risk::Outcome::kBlock);

  // Nothing personal in plain text anywhere.
  EXPECT_EQ(SqlCount("SELECT count(*) FROM risk_list_items WHERE item LIKE '%6222%'"), 0);
  EXPECT_EQ(SqlCount("SELECT count(*) FROM risk_list_audit WHERE item LIKE '%6222%' OR "
                     "after::text LIKE '%6222%'"),
            0);
  EXPECT_EQ(SqlCount("SELECT count(*) FROM risk_events WHERE position('\\x36323232'::bytea in "
                     "payload) > 0"),
            0);

  auto removed =
      RunAsync(io_, a.service->RemoveListItem("risk-team", "blocked", "6222 0000 1111 2222", true));
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_EQ(DecideAndStore(a, Request("POL-L4", "6222000011112222")).outcome,
            risk::Outcome::kAllow);
  EXPECT_EQ(SqlCount("SELECT count(*) FROM risk_list_audit WHERE principal = 'risk-team'"), 3);
  EXPECT_EQ(SqlCount("SELECT count(*) FROM risk_list_audit WHERE action = 'remove_item' AND "
                     "before IS NOT NULL AND after IS NULL"),
            1);
  // The audit is append-only, enforced by the database.
  const std::int64_t updated = RunAsync(io_, [&]() -> asio::awaitable<std::int64_t> {
    auto lease = co_await admin_.Acquire(In(10s));
    auto r = co_await lease.value()->ExecuteSimple("UPDATE risk_list_audit SET principal = 'x'",
                                                   In(10s));
    co_return r ? 1 : 0;
  }());
  EXPECT_EQ(updated, 0);
}

TEST_F(RiskWiringTest, ABrokenRulesetIsRejectedWithPositionsAndTheRunningOneStays) {
  Instance a(io_, url_);
  Instance b(io_, url_);
  const std::string before = a.service->Status().live().version();
  auto broken = RunAsync(io_, a.service->LoadRuleset(Target::kLive,
                                                     "ruleset x\nrule R-1 on premium_payment "
                                                     "block \"r\"\n  when nosuch.attr > 3\n",
                                                     "api", "risk-team"));
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().status, 400u);
  EXPECT_EQ(broken.error().code, "ruleset_invalid");
  EXPECT_NE(broken.error().message.find("api:3:"), std::string::npos) << broken.error().message;
  EXPECT_EQ(a.service->Status().live().version(), before);
  EXPECT_EQ(SqlCount("SELECT count(*) FROM risk_rulesets"), 0);

  // A good one is swapped in, keeps the velocity state of the unchanged aggregate, and reaches
  // the other instance.
  DecideAndStore(a, Request("POL-R"));
  std::string next = kRules;
  next += "rule A-01 on premium_payment allow \"allow-listed policy\" when policy.id == \"POL-R\"\n";
  auto loaded = RunAsync(io_, a.service->LoadRuleset(Target::kLive, next, "api", "risk-team"));
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_NE(loaded.value().live().version(), before);
  EXPECT_EQ(Count(a, "POL-R"), 1);
  Poll(b);
  EXPECT_EQ(b.service->Status().live().version(), loaded.value().live().version());
  EXPECT_EQ(SqlCount("SELECT count(*) FROM risk_rulesets WHERE principal = 'risk-team'"), 1);
}

TEST_F(RiskWiringTest, ShadowDifferencesAreStoredAndNeverChangeTheLiveDecision) {
  Instance a(io_, url_,
             "ruleset candidate\nrule S-01 on premium_payment block \"everything\"\n"
             "  when payment.amount > CNY 0.00\n");
  const Verdict live = DecideAndStore(a, Request("POL-S"));
  EXPECT_EQ(live.outcome, risk::Outcome::kAllow);
  EXPECT_EQ(SqlCount("SELECT count(*) FROM risk_decisions WHERE outcome = 'allow'"), 1);
  EXPECT_EQ(SqlCount("SELECT count(*) FROM risk_shadow_diffs WHERE live_outcome = 'allow' AND "
                     "shadow_outcome = 'block' AND fired_only_shadow = '{S-01}'"),
            1);
  EXPECT_EQ(a.service->counters().shadow_differences.load(), 1u);
}

}  // namespace
}  // namespace paygate::fraud
