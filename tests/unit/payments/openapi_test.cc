// The served OpenAPI document (gateway/api/v1/openapi.yaml) and the route table agree: every
// operation the document describes is routed, with the access it states.
#include <utility>  // Before Asio (DESIGN.md §2).

#include <string>

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>
#include <boost/asio/io_context.hpp>

#include "gateway/api/openapi.h"
#include "gateway/events/routes.h"
#include "gateway/fraud/routes.h"
#include "gateway/payments/routes.h"
#include "gateway/payouts/routes.h"
#include "gateway/recon/routes.h"
#include "ledger/db/pg_pool.h"

namespace paygate::payments {
namespace {

namespace http = edge::http;

// "/v1/payments/{id}/refunds" -> "/v1/payments/x/refunds".
std::string Concrete(std::string path) {
  std::string out;
  bool in_param = false;
  for (char c : path) {
    if (c == '{') {
      in_param = true;
      out += 'x';
    } else if (c == '}') {
      in_param = false;
    } else if (!in_param) {
      out += c;
    }
  }
  return out;
}

TEST(OpenApiTest, EveryDocumentedOperationIsRouted) {
  edge::Router router;
  AddPaymentRoutes(router, nullptr, std::make_shared<CallbackCounters>(), {});
  // The routes are only matched, never called: the pool never connects.
  boost::asio::io_context io;
  db::PoolOptions pool_options;
  pool_options.connect.url = "postgresql://nobody@127.0.0.1:1/none";
  db::PgPool pool(io.get_executor(), std::move(pool_options));
  events::AddEventRoutes(router, pool, {}, {});
  fraud::AddRiskRoutes(router, nullptr, nullptr, {});
  payouts::AddPayoutRoutes(router, nullptr, {});
  gateway::recon::AddReconRoutes(router, nullptr, {}, {});
  const YAML::Node doc = YAML::Load(std::string(api::OpenApiDocument()));
  ASSERT_TRUE(doc["paths"].IsMap());
  int operations = 0;
  for (const auto& path : doc["paths"]) {
    const std::string pattern = path.first.as<std::string>();
    for (const auto& op : path.second) {
      const std::string method = op.first.as<std::string>();
      const http::verb verb = method == "get"    ? http::verb::get
                              : method == "delete" ? http::verb::delete_
                                                   : http::verb::post;
      ASSERT_TRUE(method == "get" || method == "post" || method == "delete") << pattern;
      const auto match = router.Find(verb, Concrete(pattern));
      ASSERT_NE(match.route, nullptr) << method << " " << pattern << " is documented, not routed";
      EXPECT_EQ(match.route->pattern, pattern);
      // `security: []` in the document means the route takes no principal (provider callbacks).
      const bool public_in_doc = op.second["security"] && op.second["security"].size() == 0;
      EXPECT_EQ(match.route->access == edge::Access::kPublic, public_in_doc) << pattern;
      ++operations;
    }
  }
  EXPECT_GE(operations, 19);
}

}  // namespace
}  // namespace paygate::payments
