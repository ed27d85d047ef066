// Proves typed lists: exact items with expiry, IP addresses and CIDR blocks (v4 and v6), BIN
// prefixes and overlapping ranges, malformed items refused with the list and item named, and atomic
// swaps.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/risk/event.h"
#include "gateway/risk/lists.h"
#include "tests/unit/risk/risk_test_util.h"

namespace paygate::risk {
namespace {

using testing::kT0;

Value Str(std::string_view s) {
  return Value::Of(Type::kString, static_cast<std::int64_t>(HashString(s)));
}
Value Ip(std::string_view s) {
  const auto ip = ParseIp(s);
  Value v = Value::Of(Type::kIp, static_cast<std::int64_t>(ip->high));
  v.b = ip->low;
  return v;
}
Value Bin(std::string_view s) { return Value::Of(Type::kBin, *ParseBin(s)); }

TEST(ListsTest, ExactItemsWithExpiry) {
  // Proves membership, that an item counts only before its expiry, and that a duplicate keeps the
  // later expiry.
  ListSetBuilder b(3);
  ASSERT_TRUE(b.Add("acc", ListKind::kAccountHash, "h1"));
  ASSERT_TRUE(b.Add("acc", ListKind::kAccountHash, "h2", kT0 + 100));
  ASSERT_TRUE(b.Add("acc", ListKind::kAccountHash, "h3", kT0 + 100));
  ASSERT_TRUE(b.Add("acc", ListKind::kAccountHash, "h3", kT0 + 200));
  const auto set = std::move(b).Build();
  EXPECT_EQ(set->version(), 3u);
  const TypedList* l = set->Find("acc");
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->size(), 3u);
  EXPECT_TRUE(l->Contains(Str("h1"), kT0 + 1'000'000));
  EXPECT_TRUE(l->Contains(Str("h2"), kT0 + 99));
  EXPECT_FALSE(l->Contains(Str("h2"), kT0 + 100));
  EXPECT_TRUE(l->Contains(Str("h3"), kT0 + 150));
  EXPECT_FALSE(l->Contains(Str("h4"), kT0));
  EXPECT_FALSE(l->Contains(Value::Missing(Type::kString), kT0));
  EXPECT_EQ(set->Find("nope"), nullptr);
}

TEST(ListsTest, IpAddressesAndCidrBlocks) {
  // Proves single addresses and CIDR blocks of several prefix lengths, for IPv4 and IPv6.
  ListSetBuilder b(1);
  ASSERT_TRUE(b.Add("ips", ListKind::kIp, "203.0.113.7"));
  ASSERT_TRUE(b.Add("ips", ListKind::kIp, "198.51.100.0/24"));
  ASSERT_TRUE(b.Add("ips", ListKind::kIp, "10.0.0.0/8", kT0 + 10));
  ASSERT_TRUE(b.Add("ips", ListKind::kIp, "2001:db8::/32"));
  const auto set = std::move(b).Build();
  const TypedList& l = *set->Find("ips");
  EXPECT_TRUE(l.Contains(Ip("203.0.113.7"), kT0));
  EXPECT_FALSE(l.Contains(Ip("203.0.113.8"), kT0));
  EXPECT_TRUE(l.Contains(Ip("198.51.100.255"), kT0));
  EXPECT_FALSE(l.Contains(Ip("198.51.101.0"), kT0));
  EXPECT_TRUE(l.Contains(Ip("10.200.3.4"), kT0));
  EXPECT_FALSE(l.Contains(Ip("10.200.3.4"), kT0 + 10));
  EXPECT_TRUE(l.Contains(Ip("2001:db8:ffff::1"), kT0));
  EXPECT_FALSE(l.Contains(Ip("2001:db9::1"), kT0));
  EXPECT_FALSE(l.Contains(Ip("::ffff:0:1"), kT0));
}

TEST(ListsTest, BinPrefixesAndOverlappingRanges) {
  // Proves a 6-digit BIN covers its 8-digit cards, and overlapping ranges are all honoured.
  ListSetBuilder b(1);
  ASSERT_TRUE(b.Add("bins", ListKind::kBin, "411111"));
  ASSERT_TRUE(b.Add("bins", ListKind::kBin, "50000000-59999999"));
  ASSERT_TRUE(b.Add("bins", ListKind::kBin, "52000000-52000010", kT0 + 5));
  ASSERT_TRUE(b.Add("bins", ListKind::kBin, "530000-530001"));
  const auto set = std::move(b).Build();
  const TypedList& l = *set->Find("bins");
  EXPECT_TRUE(l.Contains(Bin("41111100"), kT0));
  EXPECT_TRUE(l.Contains(Bin("41111199"), kT0));
  EXPECT_FALSE(l.Contains(Bin("41111200"), kT0));
  EXPECT_TRUE(l.Contains(Bin("55555555"), kT0));
  EXPECT_TRUE(l.Contains(Bin("52000005"), kT0 + 100));  // the wide range still covers it
  EXPECT_FALSE(l.Contains(Bin("60000000"), kT0));
  EXPECT_FALSE(l.Contains(Bin("49999999"), kT0));
}

TEST(ListsTest, MalformedItemsAreRefusedWithTheirListNamed) {
  // Proves list input is validated, never trusted.
  ListSetBuilder b(1);
  EXPECT_THAT(b.Add("ips", ListKind::kIp, "10.0.0.0/33").assume_error(),
              ::testing::HasSubstr("list @ips: item '10.0.0.0/33'"));
  EXPECT_FALSE(b.Add("ips", ListKind::kIp, "nope"));
  EXPECT_FALSE(b.Add("bins", ListKind::kBin, "4111"));
  EXPECT_FALSE(b.Add("bins", ListKind::kBin, "59999999-50000000"));
  EXPECT_FALSE(b.Add("cc", ListKind::kCountry, "china"));
  EXPECT_FALSE(b.Add("acc", ListKind::kAccountHash, ""));
  ASSERT_TRUE(b.Add("acc", ListKind::kAccountHash, "x"));
  EXPECT_THAT(b.Add("acc", ListKind::kDeviceId, "y").assume_error(),
              ::testing::HasSubstr("holds account_hash"));
}

TEST(ListsTest, RuleSeesTheSnapshotPinnedForTheDecision) {
  // Proves a list swap changes later decisions, not the rules: no recompile is needed.
  testing::Harness h(testing::MustCompile(R"(ruleset t
list @blocked : account_hash
rule B on premium_payment block "blocked instrument" when payer.instrument_hash in @blocked
)"));
  Event e(EventType::kPremiumPayment, kT0);
  e.SetText(Attr::kPayerInstrumentHash, "acct-9");
  EXPECT_EQ(h.Decide(e).outcome, Outcome::kAllow);  // the list does not exist yet: empty
  ListHolder holder;
  ListSetBuilder b(2);
  ASSERT_TRUE(b.Add("blocked", ListKind::kAccountHash, "acct-9"));
  holder.Swap(std::move(b).Build());
  h.SetLists(holder.Current());
  EXPECT_EQ(h.Decide(e).outcome, Outcome::kBlock);
  EXPECT_EQ(h.Decide(e).lists_version, 2u);
}

}  // namespace
}  // namespace paygate::risk
