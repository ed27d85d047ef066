// edge::ApiResponse: API answers come back as binary protobuf when the client asks for it (Accept,
// or a protobuf request without an Accept) and as JSON otherwise (DESIGN.md §5).
#include <gtest/gtest.h>

#include "gateway/api/v1/payments.pb.h"
#include "gateway/edge/http.h"

namespace paygate::edge {
namespace {

api::v1::Payment Sample() {
  api::v1::Payment p;
  p.set_id("pay_abc");
  p.set_amount_minor(12345);
  p.set_status("pending");
  return p;
}

Request With(std::string_view accept, std::string_view content_type) {
  Request request{http::verb::get, "/v1/payments/pay_abc", 11};
  if (!accept.empty()) request.set(http::field::accept, accept);
  if (!content_type.empty()) request.set(http::field::content_type, content_type);
  return request;
}

TEST(ApiResponseTest, ProtobufWhenAcceptedOrSentWithoutAccept) {
  for (const Request& request :
       {With("application/x-protobuf", ""), With("", "application/x-protobuf"),
        With("application/json, application/x-protobuf", "")}) {
    const Response response = ApiResponse(request, http::status::created, Sample());
    EXPECT_EQ(response.result(), http::status::created);
    EXPECT_EQ(response[http::field::content_type], "application/x-protobuf");
    api::v1::Payment parsed;
    ASSERT_TRUE(parsed.ParseFromString(response.body()));
    EXPECT_EQ(parsed.id(), "pay_abc");
    EXPECT_EQ(parsed.amount_minor(), 12345);
  }
}

TEST(ApiResponseTest, JsonOtherwiseAndAnAcceptWins) {
  for (const Request& request : {With("", ""), With("application/json", ""),
                                 With("application/json", "application/x-protobuf")}) {
    const Response response = ApiResponse(request, http::status::ok, Sample());
    EXPECT_EQ(response[http::field::content_type], "application/json");
    EXPECT_NE(response.body().find(R"("amount_minor":"12345")"), std::string::npos)
        << response.body();
  }
}

}  // namespace
}  // namespace paygate::edge
