// Proves the aggregate state of gateway/risk/aggregates.h: features read before the current event
// counts, the documented window semantics (at least W, less than W + one bucket), sums per
// currency, exact distinct counts, first/last seen, `where` filters, deterministic replay, and that
// a reload keeps the state of unchanged aggregates while new ones start fresh.
#include <vector>

#include <gtest/gtest.h>

#include "gateway/risk/event.h"
#include "tests/unit/risk/risk_test_util.h"

namespace paygate::risk {
namespace {

using testing::Harness;
using testing::kDay;
using testing::kHour;
using testing::kMinute;
using testing::kT0;
using testing::MustCompile;

constexpr std::string_view kRules = R"(ruleset t
aggregate n_1h = count() by device.id over 1h on premium_payment
aggregate n_24h = count() by device.id over 24h on premium_payment
aggregate sum_24h = sum(payment.amount, CNY) by device.id over 24h on premium_payment
aggregate cards_24h = count_distinct(payer.instrument_hash) by device.id over 24h on premium_payment
aggregate first = first_seen() by device.id on premium_payment
aggregate last = last_seen() by device.id on premium_payment
aggregate small_1h = count() by device.id over 1h on premium_payment where payment.amount < CNY 5.00
rule SEEN on premium_payment review "seen {n_1h}" when n_1h >= 1
)";

Event Pay(std::int64_t t, std::string_view device, std::int64_t fen = 10000,
          std::string_view card = "card-1", std::string_view currency = "CNY") {
  Event e(EventType::kPremiumPayment, t);
  e.SetText(Attr::kDeviceId, device);
  e.SetMoney(Attr::kPaymentAmount, fen, currency);
  e.SetText(Attr::kPayerInstrumentHash, card);
  return e;
}

class AggregatesTest : public ::testing::Test {
 protected:
  AggregatesTest() : rs_(MustCompile(kRules)), store_(rs_, nullptr) {}
  Value Read(std::string_view agg, const Event& at) {
    return store_.Read(static_cast<std::size_t>(rs_->AggregateIndex(agg)), at);
  }
  std::int64_t ReadInt(std::string_view agg, const Event& at) { return Read(agg, at).a; }

  std::shared_ptr<const CompiledRuleset> rs_;
  AggregateStore store_;
};

TEST_F(AggregatesTest, FeaturesExcludeTheCurrentEvent) {
  // Proves a decision sees the state before its own event: the first payment reads 0, the second 1.
  Harness h(rs_);
  EXPECT_FALSE(h.DecideAndObserve(Pay(kT0, "d1")).HasFired("SEEN"));
  const Decision& d = h.DecideAndObserve(Pay(kT0 + 1, "d1"));
  ASSERT_TRUE(d.HasFired("SEEN"));
  EXPECT_EQ(d.fired[0].inputs[0].a, 1);
  const int idx = rs_->AggregateIndex("n_1h");
  EXPECT_EQ(h.store().Read(idx, Pay(kT0 + 2, "d1")).a, 2);
  EXPECT_EQ(h.store().Read(idx, Pay(kT0 + 2, "d2")).a, 0);
}

TEST_F(AggregatesTest, WindowCoversAtLeastWAndLessThanWPlusOneBucket) {
  // Proves the 1h window (5-minute buckets) at its edges: an event exactly W old counts; one older
  // than W + B never counts; one between W and W + B counts only while it shares the oldest bucket.
  const std::int64_t bucket = 5 * kMinute;
  const std::int64_t t_event = (kT0 / bucket) * bucket + 2 * kMinute;  // 2 minutes into a bucket
  store_.Observe(Pay(t_event, "d1"));
  EXPECT_EQ(ReadInt("n_1h", Pay(t_event + kHour, "d1")), 1);  // exactly W later
  // Reads in the bucket 12 buckets on still include the event's bucket: up to W + B - 1 s later.
  const std::int64_t last_included = (t_event / bucket + 12) * bucket + bucket - 1;
  EXPECT_EQ(ReadInt("n_1h", Pay(last_included, "d1")), 1);
  EXPECT_LT(last_included - t_event, kHour + bucket);
  EXPECT_EQ(ReadInt("n_1h", Pay(last_included + 1, "d1")), 0);
  EXPECT_EQ(ReadInt("n_24h", Pay(last_included + 1, "d1")), 1);
}

TEST_F(AggregatesTest, CountsAndSumsPerKeyAndCurrency) {
  // Proves sums add only amounts in the aggregate's currency, per key.
  store_.Observe(Pay(kT0, "d1", 10000));
  store_.Observe(Pay(kT0 + 60, "d1", 2550));
  store_.Observe(Pay(kT0 + 120, "d1", 99999, "card-1", "USD"));
  store_.Observe(Pay(kT0 + 180, "d2", 70000));
  const Value s = Read("sum_24h", Pay(kT0 + 200, "d1"));
  EXPECT_EQ(s.type, Type::kMoney);
  EXPECT_EQ(s.a, 12550);
  EXPECT_EQ(s.aux, *PackCurrency("CNY"));
  EXPECT_EQ(ReadInt("n_24h", Pay(kT0 + 200, "d1")), 3);  // the count includes the USD payment
  EXPECT_EQ(ReadInt("sum_24h", Pay(kT0 + 200, "d2")), 70000);
  EXPECT_EQ(ReadInt("sum_24h", Pay(kT0 + 2 * kDay, "d1")), 0);
}

TEST_F(AggregatesTest, DistinctCountsAreExactWithinTheWindow) {
  // Proves distinct counts count each member once and forget members whose last use left the
  // window.
  store_.Observe(Pay(kT0, "d1", 100, "A"));
  store_.Observe(Pay(kT0 + 10, "d1", 100, "A"));
  store_.Observe(Pay(kT0 + 20, "d1", 100, "B"));
  store_.Observe(Pay(kT0 + 20 * kHour, "d1", 100, "C"));
  store_.Observe(
      Pay(kT0 + 20 * kHour, "d1", 100, "A"));  // A used again: stays in the window longer
  EXPECT_EQ(ReadInt("cards_24h", Pay(kT0 + 21 * kHour, "d1")), 3);
  EXPECT_EQ(ReadInt("cards_24h", Pay(kT0 + 30 * kHour, "d1")), 2);  // B left, A and C remain
}

TEST_F(AggregatesTest, DistinctCountKeepsTheMostRecentMembersAboveItsCap) {
  // Proves the cap: with more than 32 members, the count stays 32 and the newest members are kept.
  for (int i = 0; i < 40; ++i)
    store_.Observe(Pay(kT0 + i * 60, "d1", 100, "card-" + std::to_string(i)));
  EXPECT_EQ(ReadInt("cards_24h", Pay(kT0 + kHour, "d1")),
            static_cast<std::int64_t>(AggregateState::kDistinctCap));
}

TEST_F(AggregatesTest, FirstAndLastSeen) {
  // Proves first_seen is the earliest observation (the event's own time for a new key) and
  // last_seen the latest earlier one (missing for a new key).
  EXPECT_EQ(ReadInt("first", Pay(kT0, "d1")), kT0);
  EXPECT_FALSE(Read("last", Pay(kT0, "d1")).present);
  store_.Observe(Pay(kT0 + 100, "d1"));
  store_.Observe(Pay(kT0 + 50, "d1"));  // out of order: still the earliest
  store_.Observe(Pay(kT0 + 400 * kDay, "d1"));
  EXPECT_EQ(ReadInt("first", Pay(kT0 + 500 * kDay, "d1")), kT0 + 50);
  EXPECT_EQ(ReadInt("last", Pay(kT0 + 500 * kDay, "d1")), kT0 + 400 * kDay);
}

TEST_F(AggregatesTest, WhereFilterSelectsEvents) {
  // Proves only events passing the filter are counted, and an event whose filter input is missing
  // is not.
  store_.Observe(Pay(kT0, "d1", 100));
  store_.Observe(Pay(kT0, "d1", 499));
  store_.Observe(Pay(kT0, "d1", 500));
  Event no_amount(EventType::kPremiumPayment, kT0);
  no_amount.SetText(Attr::kDeviceId, "d1");
  store_.Observe(no_amount);
  EXPECT_EQ(ReadInt("small_1h", Pay(kT0 + 1, "d1")), 2);
  EXPECT_EQ(ReadInt("n_1h", Pay(kT0 + 1, "d1")), 4);
}

TEST_F(AggregatesTest, EventsWithoutTheKeyAreNotCountedAndReadAsMissing) {
  // Proves a missing key neither feeds nor reads an aggregate.
  Event e(EventType::kPremiumPayment, kT0);
  e.SetMoney(Attr::kPaymentAmount, 100, "CNY");
  store_.Observe(e);
  EXPECT_FALSE(Read("n_1h", e).present);
}

TEST_F(AggregatesTest, ReplayIsDeterministic) {
  // Proves two stores fed the same stored events read the same values: the state can be rebuilt
  // after a restart or by another instance from the stored events. The events hold views of their
  // text: keep the strings alive while they are used.
  std::vector<std::string> keep;
  keep.reserve(400);
  std::vector<Event> stable;
  for (int i = 0; i < 200; ++i) {
    keep.push_back("d" + std::to_string(i % 7));
    keep.push_back("c" + std::to_string(i % 5));
    Event e(EventType::kPremiumPayment, kT0 + i * 97);
    e.SetText(Attr::kDeviceId, keep[keep.size() - 2]);
    e.SetText(Attr::kPayerInstrumentHash, keep.back());
    e.SetMoney(Attr::kPaymentAmount, 100 + i, "CNY");
    stable.push_back(e);
  }
  AggregateStore a(rs_, nullptr);
  AggregateStore b(rs_, nullptr);
  for (const auto& e : stable) a.Observe(e);
  b.Replay(stable);
  for (int d = 0; d < 7; ++d) {
    const std::string device = "d" + std::to_string(d);
    const Event probe = Pay(kT0 + 200 * 97, device);
    for (std::size_t i = 0; i < rs_->aggregates.size(); ++i) {
      EXPECT_EQ(a.Read(i, probe), b.Read(i, probe)) << rs_->aggregates[i].name << " " << device;
    }
  }
  EXPECT_EQ(a.Read(rs_->AggregateIndex("n_24h"), Pay(kT0 + 200 * 97, "d0")).a, 29);
}

TEST_F(AggregatesTest, ReloadKeepsUnchangedAggregatesAndFreshensNewOnes) {
  // Proves a reloaded ruleset shares the state of identically defined aggregates (whatever their
  // name) and starts new definitions empty and marked fresh, so only they are rebuilt from history.
  store_.Observe(Pay(kT0, "d1"));
  store_.Observe(Pay(kT0 + 1, "d1"));
  const auto next = MustCompile(R"(ruleset t2
aggregate renamed = count() by device.id over 1h on premium_payment
aggregate n_2h = count() by device.id over 2h on premium_payment
)");
  AggregateStore reloaded(next, &store_);
  EXPECT_FALSE(reloaded.fresh(0));
  EXPECT_TRUE(reloaded.fresh(1));
  const Event probe = Pay(kT0 + 10, "d1");
  EXPECT_EQ(reloaded.Read(0, probe).a, 2);
  EXPECT_EQ(reloaded.Read(1, probe).a, 0);
  // Rebuilding from the stored history fills only the fresh aggregate.
  reloaded.ObserveFresh(Pay(kT0, "d1"));
  reloaded.ObserveFresh(Pay(kT0 + 1, "d1"));
  EXPECT_EQ(reloaded.Read(0, probe).a, 2);
  EXPECT_EQ(reloaded.Read(1, probe).a, 2);
  // New events feed the shared state once, seen through both stores.
  reloaded.Observe(Pay(kT0 + 2, "d1"));
  EXPECT_EQ(ReadInt("n_1h", probe), 3);
}

}  // namespace
}  // namespace paygate::risk
