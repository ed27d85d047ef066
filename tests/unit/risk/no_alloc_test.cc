// Proves the evaluation path does not allocate: with the insurance pack, populated aggregates and
// lists, Evaluate makes no heap allocation once its scratch space is sized (global operator new is
// counted in this test binary only).
#include <atomic>
#include <cstdlib>
#include <new>

#include <gtest/gtest.h>

#include "gateway/risk/event.h"
#include "tests/unit/risk/risk_test_util.h"

namespace {
std::atomic<long> g_allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace paygate::risk {
namespace {

using testing::kDay;
using testing::kT0;

TEST(NoAllocTest, EvaluateDoesNotAllocate) {
  const auto pack = testing::MustCompile(testing::ReadSourceFile("config/rules/insurance.rules"));
  ASSERT_NE(pack, nullptr);
  AggregateStore store(pack, nullptr);
  ListSetBuilder b(1);
  ASSERT_TRUE(b.Add("blocked_instruments", ListKind::kAccountHash, "card-x"));
  ASSERT_TRUE(b.Add("risky_ips", ListKind::kIp, "198.51.100.0/24"));
  ASSERT_TRUE(b.Add("prepaid_bins", ListKind::kBin, "530000"));
  const auto lists = std::move(b).Build();

  Event premium(EventType::kPremiumPayment, kT0);
  premium.SetText(Attr::kDeviceId, "dev-1");
  premium.SetText(Attr::kDeviceIp, "192.0.2.1");
  premium.SetText(Attr::kPolicyId, "pol-1");
  premium.SetText(Attr::kPolicyHolderId, "cust-1");
  premium.SetText(Attr::kCustomerEmailHash, "em-1");
  premium.SetText(Attr::kPayerInstrumentHash, "card-1");
  premium.SetText(Attr::kPayerCardBin, "530000");
  premium.SetMoney(Attr::kPaymentAmount, 250000, "CNY");
  premium.SetMoney(Attr::kPolicyPremiumDue, 200000, "CNY");
  premium.SetTime(Attr::kCustomerCreatedAt, kT0 - kDay);
  Event claim(EventType::kClaimPayout, kT0);
  claim.SetText(Attr::kClaimantId, "cust-1");
  claim.SetText(Attr::kBeneficiaryAccountHash, "acct-1");
  claim.SetMoney(Attr::kClaimAmount, 500000, "CNY");
  claim.SetTime(Attr::kClaimLossDate, kT0 - kDay);
  claim.SetTime(Attr::kPolicyStartDate, kT0 - 5 * kDay);
  for (int i = 0; i < 10; ++i) {
    store.Observe(premium);
    store.Observe(claim);
  }

  EvalScratch scratch;
  Decision d;
  Evaluate(store, *lists, premium, scratch, d);  // sizes the scratch
  Evaluate(store, *lists, claim, scratch, d);
  const long before = g_allocations.load();
  EXPECT_GT(before, 0);  // the counter sees this binary's allocations (compiling, building lists)
  for (int i = 0; i < 1000; ++i) {
    Evaluate(store, *lists, premium, scratch, d);
    Evaluate(store, *lists, claim, scratch, d);
  }
  const long during = g_allocations.load() - before;
  EXPECT_EQ(during, 0);
  // And the decisions were real ones: the claim fired rules with inputs.
  EXPECT_GT(d.fired_count, 0);
  EXPECT_NE(d.outcome, Outcome::kAllow);
}

}  // namespace
}  // namespace paygate::risk
