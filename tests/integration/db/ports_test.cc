#include "tests/testing/ports.h"

#include <gtest/gtest.h>

#include <set>

namespace paygate::testing {
namespace {

// Tests write the ports they pick into config files, so two picks must never agree: the kernel can
// hand out the same ephemeral port twice in a row, which once started a daemon with its api and
// admin listeners on one port. A thousand picks from the ~28,000-port range would collide a dozen
// times by chance if nothing prevented it.
TEST(FreeLoopbackPortTest, NeverGivesTheSamePortTwice) {
  std::set<std::uint16_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::uint16_t port = FreeLoopbackPort();
    ASSERT_NE(port, 0);
    EXPECT_TRUE(seen.insert(port).second) << "port " << port << " given twice, pick " << i;
  }
}

}  // namespace
}  // namespace paygate::testing
