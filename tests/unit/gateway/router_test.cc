// Router: literal and {placeholder} segments match exactly, the query string is ignored, and a path
// known under another method is told apart from an unknown one.
#include "gateway/edge/router.h"

#include <gtest/gtest.h>

namespace paygate::edge {
namespace {

Handler Noop() {
  return [](RequestContext& ctx) -> asio::awaitable<Response> {
    co_return Response{http::status::ok, ctx.request.version()};
  };
}

Router Routes() {
  Router router;
  router.Add({http::verb::get, "/healthz", Access::kPublic, {}, Noop()});
  router.Add({http::verb::get, "/v1/payments/{id}", Access::kAuthenticated, {}, Noop()});
  router.Add({http::verb::post, "/v1/payments/{id}/refunds", Access::kAuthenticated, {}, Noop()});
  return router;
}

// Literal routes match only their exact path; a trailing slash or an extra segment is another path.
TEST(RouterTest, LiteralSegmentsMatchExactly) {
  const Router router = Routes();
  EXPECT_NE(router.Find(http::verb::get, "/healthz").route, nullptr);
  EXPECT_NE(router.Find(http::verb::get, "/healthz?verbose=1").route, nullptr);
  EXPECT_EQ(router.Find(http::verb::get, "/healthz/").route, nullptr);
  EXPECT_EQ(router.Find(http::verb::get, "/healthz/x").route, nullptr);
  EXPECT_EQ(router.Find(http::verb::get, "/").route, nullptr);
  EXPECT_EQ(router.Find(http::verb::get, "").route, nullptr);
  EXPECT_EQ(router.Find(http::verb::get, "healthz").route, nullptr);
}

// Placeholders capture one non-empty segment each, in order.
TEST(RouterTest, PlaceholdersCaptureSegments) {
  const Router router = Routes();
  auto match = router.Find(http::verb::post, "/v1/payments/pay_123/refunds");
  ASSERT_NE(match.route, nullptr);
  EXPECT_EQ(match.route->pattern, "/v1/payments/{id}/refunds");
  ASSERT_EQ(match.params.size(), 1u);
  EXPECT_EQ(match.params[0], "pay_123");
  EXPECT_EQ(router.Find(http::verb::get, "/v1/payments/").route, nullptr);
  EXPECT_EQ(router.Find(http::verb::get, "/v1/payments//refunds").route, nullptr);
}

// A path that exists under another method reports other_method (405), an unknown one does not
// (404).
TEST(RouterTest, OtherMethodIsDistinguished) {
  const Router router = Routes();
  auto wrong_method = router.Find(http::verb::delete_, "/healthz");
  EXPECT_EQ(wrong_method.route, nullptr);
  EXPECT_TRUE(wrong_method.other_method);
  auto unknown = router.Find(http::verb::get, "/nowhere");
  EXPECT_EQ(unknown.route, nullptr);
  EXPECT_FALSE(unknown.other_method);
}

}  // namespace
}  // namespace paygate::edge
