// Query parameters are found by exact key and percent-decoded; UTC instants parse strictly and
// print back the same instant.
#include <gtest/gtest.h>

#include "gateway/edge/http.h"
#include "gateway/utc_time.h"

namespace paygate::gateway {
namespace {

// Keys match exactly, values are percent-decoded, malformed escapes and missing keys give nothing.
TEST(QueryParamTest, FindsAndDecodes) {
  EXPECT_EQ(edge::QueryParam("/x?currency=CNY&at=2026-01-01T00%3A00%3A00Z", "at"),
            "2026-01-01T00:00:00Z");
  EXPECT_EQ(edge::QueryParam("/x?currency=CNY", "currency"), "CNY");
  EXPECT_EQ(edge::QueryParam("/x?xcurrency=CNY", "currency"), std::nullopt);
  EXPECT_EQ(edge::QueryParam("/x", "currency"), std::nullopt);
  EXPECT_EQ(edge::QueryParam("/x?a=%4", "a"), std::nullopt);
  EXPECT_EQ(edge::QueryParam("/x?a=%zz", "a"), std::nullopt);
  EXPECT_EQ(edge::QueryParam("/x?flag", "flag"), "");
}

// Only UTC ("Z") is accepted; fractions keep microseconds; formatting round-trips.
TEST(UtcTimeTest, ParsesStrictlyAndRoundTrips) {
  const auto instant = ParseUtc("2026-11-27T03:00:00.25Z");
  ASSERT_TRUE(instant);
  EXPECT_EQ(instant->time_since_epoch().count(), 1'795'748'400'250'000);
  EXPECT_EQ(FormatUtc(*instant), "2026-11-27T03:00:00.250000Z");
  EXPECT_EQ(ParseUtc(FormatUtc(*instant)), instant);
  EXPECT_FALSE(ParseUtc("2026-11-27T03:00:00+08:00"));
  EXPECT_FALSE(ParseUtc("2026-11-27 03:00:00Z"));
  EXPECT_FALSE(ParseUtc("yesterday"));
  EXPECT_FALSE(ParseUtc("2026-11-27T03:00:00.Z"));
}

}  // namespace
}  // namespace paygate::gateway
