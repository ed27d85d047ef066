// The sandbox mapper on crafted bytes: which replies may be believed, and what each means per
// operation. Every case here is one that, misread, would report money as moved or not moved
// wrongly.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "adapters/http/https_client.h"
#include "adapters/sandbox/mapper.h"
#include "adapters/sandbox/signing.h"

namespace paygate::adapters::sandbox {
namespace {

using std::chrono::system_clock;
constexpr std::string_view kSecret = "k3y";
constexpr std::string_view kNonce = "0123456789abcdef0123";

http::HttpsResponse SignedReply(Operation op, unsigned status, std::string body,
                                system_clock::time_point at = system_clock::now(),
                                std::string_view nonce = kNonce) {
  http::HttpsResponse reply;
  reply.status = status;
  const std::string ts = FormatTimestamp(at);
  reply.headers = {{"x-sandbox-account", "m1"},
                   {"x-sandbox-timestamp", ts},
                   {"x-sandbox-nonce", std::string(nonce)},
                   {"x-sandbox-signature",
                    Sign(kSecret, ReplyLine(status, OperationPath(op)), ts, nonce, body)}};
  reply.body = std::move(body);
  return reply;
}

ProviderResult Read(Operation op, const http::HttpsResponse& reply,
                    std::string_view reference = "ord_1") {
  ReplyContext context;
  context.op = op;
  context.account = "m1";
  context.secret = kSecret;
  context.request_nonce = kNonce;
  context.reference = reference;
  context.now = system_clock::now();
  return ReadReply(context, reply);
}

constexpr const char* kPaid =
    R"({"reference":"ord_1","transaction_id":"t1","status":"PAYMENT_STATUS_SUCCEEDED","amount_minor":"100"})";

TEST(SandboxMapper, SignedPaidReplyIsSucceeded) {
  const auto result =
      Read(Operation::kQueryPayment, SignedReply(Operation::kQueryPayment, 200, kPaid));
  EXPECT_EQ(result.outcome, Outcome::kSucceeded);
  EXPECT_EQ(result.amount_minor, 100);
  EXPECT_EQ(result.provider_transaction_id, "t1");
}

TEST(SandboxMapper, ReplyBoundToAnotherRequestOrPathOrTimeIsUnknown) {
  EXPECT_EQ(Read(Operation::kQueryPayment, SignedReply(Operation::kQueryPayment, 200, kPaid,
                                                       system_clock::now(), "ffffffffffffffffffff"))
                .outcome,
            Outcome::kUnknown);
  // Signed for the close path, presented as a query reply.
  EXPECT_EQ(
      Read(Operation::kQueryPayment, SignedReply(Operation::kClosePayment, 200, kPaid)).outcome,
      Outcome::kUnknown);
  EXPECT_EQ(
      Read(Operation::kQueryPayment, SignedReply(Operation::kQueryPayment, 200, kPaid,
                                                 system_clock::now() - std::chrono::minutes(6)))
          .outcome,
      Outcome::kUnknown);
  // About another payment.
  EXPECT_EQ(
      Read(Operation::kQueryPayment, SignedReply(Operation::kQueryPayment, 200, kPaid), "ord_2")
          .outcome,
      Outcome::kUnknown);
  // The status is signed too: a 200 relabelled as 422 does not verify.
  auto relabelled = SignedReply(Operation::kCreatePayment, 200, R"({"code":"invalid_amount"})");
  relabelled.status = 422;
  EXPECT_EQ(Read(Operation::kCreatePayment, relabelled).outcome, Outcome::kUnknown);
}

TEST(SandboxMapper, RefusalsAreDeclinedOnlyForCallsThatChangeState) {
  const std::string refusal = R"({"code":"invalid_amount","message":"no"})";
  const auto create =
      Read(Operation::kCreatePayment, SignedReply(Operation::kCreatePayment, 422, refusal));
  EXPECT_EQ(create.outcome, Outcome::kDeclined);
  EXPECT_EQ(create.decline_code, "invalid_amount");
  EXPECT_EQ(
      Read(Operation::kCreateRefund, SignedReply(Operation::kCreateRefund, 422, refusal), "ref_1")
          .outcome,
      Outcome::kDeclined);
  // A refused query says nothing about the payment.
  EXPECT_EQ(Read(Operation::kQueryPayment,
                 SignedReply(Operation::kQueryPayment, 404, R"({"code":"not_found"})"))
                .outcome,
            Outcome::kUnknown);
  EXPECT_EQ(
      Read(Operation::kQueryRefund,
           SignedReply(Operation::kQueryRefund, 401, R"({"code":"unauthenticated"})"), "ref_1")
          .outcome,
      Outcome::kUnknown);
  // The reference exists with other fields: it may be paid.
  EXPECT_EQ(Read(Operation::kCreatePayment,
                 SignedReply(Operation::kCreatePayment, 409, R"({"code":"reference_conflict"})"))
                .outcome,
            Outcome::kUnknown);
}

TEST(SandboxMapper, ServerErrorsAndMalformedBodiesAreUnknown) {
  EXPECT_EQ(Read(Operation::kCreatePayment,
                 SignedReply(Operation::kCreatePayment, 503, R"({"code":"internal"})"))
                .outcome,
            Outcome::kUnknown);
  EXPECT_EQ(Read(Operation::kCreatePayment, SignedReply(Operation::kCreatePayment, 200, "{\"ref"))
                .outcome,
            Outcome::kUnknown);
  EXPECT_EQ(
      Read(Operation::kCreatePayment, SignedReply(Operation::kCreatePayment, 422, "oops")).outcome,
      Outcome::kUnknown);
  EXPECT_EQ(Read(Operation::kCreatePayment,
                 SignedReply(Operation::kCreatePayment, 200, R"({"reference":"ord_1"})"))
                .outcome,
            Outcome::kUnknown);
}

TEST(SandboxMapper, CloseOfAPaidPaymentIsDeclinedAndOfAClosedOneSucceeded) {
  EXPECT_EQ(
      Read(Operation::kClosePayment, SignedReply(Operation::kClosePayment, 200, kPaid)).outcome,
      Outcome::kDeclined);
  EXPECT_EQ(Read(Operation::kClosePayment,
                 SignedReply(Operation::kClosePayment, 200,
                             R"({"reference":"ord_1","status":"PAYMENT_STATUS_CLOSED"})"))
                .outcome,
            Outcome::kSucceeded);
  EXPECT_EQ(Read(Operation::kClosePayment,
                 SignedReply(Operation::kClosePayment, 200,
                             R"({"reference":"ord_1","status":"PAYMENT_STATUS_PENDING"})"))
                .outcome,
            Outcome::kUnknown);
}

TEST(SandboxMapper, CallbackVerifiesOnlyWithTheRightKeyAccountAndTime) {
  const std::string body =
      R"({"notification_id":"n1","type":"refund","refund":{"refund_reference":"ref_1",)"
      R"("status":"REFUND_STATUS_SUCCEEDED","amount_minor":"40"}})";
  const std::string ts = FormatTimestamp(system_clock::now());
  CallbackRequest request;
  request.merchant_account = "m1";
  request.headers = {{"x-sandbox-account", "m1"},
                     {"x-sandbox-timestamp", ts},
                     {"x-sandbox-nonce", std::string(kNonce)},
                     {"x-sandbox-signature", Sign(kSecret, kCallbackLine, ts, kNonce, body)}};
  request.body = body;
  auto event = ReadCallback("m1", kSecret, request, system_clock::now());
  ASSERT_TRUE(event) << event.error();
  EXPECT_EQ(event.value().kind, CallbackEvent::Kind::kRefund);
  EXPECT_EQ(event.value().reference, "ref_1");
  EXPECT_EQ(event.value().dedup_key, "n1");
  EXPECT_EQ(event.value().result.amount_minor, 40);
  EXPECT_FALSE(ReadCallback("m1", "other", request, system_clock::now()));
  EXPECT_FALSE(ReadCallback("m2", kSecret, request, system_clock::now()));
  EXPECT_FALSE(ReadCallback("m1", kSecret, request, system_clock::now() + std::chrono::minutes(6)));
  // A request signature is not a callback signature.
  request.headers[3].second = Sign(kSecret, RequestLine("POST", "/v1/payments"), ts, kNonce, body);
  EXPECT_FALSE(ReadCallback("m1", kSecret, request, system_clock::now()));
}

// Payouts: money out cannot be called back, so every misreading here would pay twice or never.
TEST(SandboxMapper, PayoutStatusesMapToOutcomesAndOnlyCreateRefusalsAreDeclined) {
  auto payout = [](std::string_view status) {
    return fmt::format(
        R"({{"reference":"po1_1","transaction_id":"sbx_po_1","status":"{}","amount_minor":"900",)"
        R"("failure_code":"{}"}})",
        status, status == "PAYOUT_STATUS_FAILED" ? "insufficient_funds" : "");
  };
  const auto pending = Read(Operation::kCreatePayout,
                            SignedReply(Operation::kCreatePayout, 200, payout("PAYOUT_STATUS_PENDING")),
                            "po1_1");
  EXPECT_EQ(pending.outcome, Outcome::kPending);
  EXPECT_EQ(pending.amount_minor, 900);
  EXPECT_EQ(pending.provider_transaction_id, "sbx_po_1");
  EXPECT_EQ(Read(Operation::kQueryPayout,
                 SignedReply(Operation::kQueryPayout, 200, payout("PAYOUT_STATUS_SUCCEEDED")),
                 "po1_1")
                .outcome,
            Outcome::kSucceeded);
  const auto failed = Read(Operation::kQueryPayout,
                           SignedReply(Operation::kQueryPayout, 200, payout("PAYOUT_STATUS_FAILED")),
                           "po1_1");
  EXPECT_EQ(failed.outcome, Outcome::kDeclined);
  EXPECT_EQ(failed.decline_code, "insufficient_funds");
  // About another attempt of the same payout: not this one's answer.
  EXPECT_EQ(Read(Operation::kQueryPayout,
                 SignedReply(Operation::kQueryPayout, 200, payout("PAYOUT_STATUS_SUCCEEDED")),
                 "po1_2")
                .outcome,
            Outcome::kUnknown);
  // No status: unknown, never declined.
  EXPECT_EQ(Read(Operation::kQueryPayout,
                 SignedReply(Operation::kQueryPayout, 200, R"({"reference":"po1_1"})"), "po1_1")
                .outcome,
            Outcome::kUnknown);
  // A signed 4xx refuses a create before it executes; a refused query proves nothing.
  EXPECT_EQ(Read(Operation::kCreatePayout,
                 SignedReply(Operation::kCreatePayout, 422, R"({"code":"invalid_amount"})"),
                 "po1_1")
                .outcome,
            Outcome::kDeclined);
  EXPECT_EQ(Read(Operation::kCreatePayout,
                 SignedReply(Operation::kCreatePayout, 409, R"({"code":"reference_conflict"})"),
                 "po1_1")
                .outcome,
            Outcome::kUnknown);
  EXPECT_EQ(Read(Operation::kQueryPayout,
                 SignedReply(Operation::kQueryPayout, 400, R"({"code":"bad_request"})"), "po1_1")
                .outcome,
            Outcome::kUnknown);
  EXPECT_EQ(Read(Operation::kCreatePayout,
                 SignedReply(Operation::kCreatePayout, 502, R"({"code":"internal"})"), "po1_1")
                .outcome,
            Outcome::kUnknown);
  // A payout reply signed for the payment path does not verify as a payout reply.
  EXPECT_EQ(Read(Operation::kCreatePayout,
                 SignedReply(Operation::kCreatePayment, 200, payout("PAYOUT_STATUS_SUCCEEDED")),
                 "po1_1")
                .outcome,
            Outcome::kUnknown);
}

TEST(SandboxMapper, PayoutCallbackIsOfKindPayoutAndTheBodyCarriesTheBeneficiary) {
  const std::string body =
      R"({"notification_id":"n9","type":"payout","payout":{"reference":"po1_2",)"
      R"("status":"PAYOUT_STATUS_SUCCEEDED","amount_minor":"700"}})";
  const std::string ts = FormatTimestamp(system_clock::now());
  CallbackRequest request;
  request.merchant_account = "m1";
  request.headers = {{"x-sandbox-account", "m1"},
                     {"x-sandbox-timestamp", ts},
                     {"x-sandbox-nonce", std::string(kNonce)},
                     {"x-sandbox-signature", Sign(kSecret, kCallbackLine, ts, kNonce, body)}};
  request.body = body;
  auto event = ReadCallback("m1", kSecret, request, system_clock::now());
  ASSERT_TRUE(event) << event.error();
  EXPECT_EQ(event.value().kind, CallbackEvent::Kind::kPayout);
  EXPECT_EQ(event.value().reference, "po1_2");
  EXPECT_EQ(event.value().result.outcome, Outcome::kSucceeded);
  EXPECT_EQ(event.value().result.amount_minor, 700);
  // A payout notification without its payout is refused, not read as something else.
  const std::string empty = R"({"notification_id":"n10","type":"payout"})";
  request.body = empty;
  request.headers[3].second = Sign(kSecret, kCallbackLine, ts, kNonce, empty);
  EXPECT_FALSE(ReadCallback("m1", kSecret, request, system_clock::now()));

  CreatePayoutRequest create;
  create.provider_reference = "po1_2";
  create.amount_minor = 700;
  create.currency = "CNY";
  create.beneficiary.name = "Han Meimei";
  create.beneficiary.account = "6222000011112222";
  const std::string encoded = EncodeCreatePayout(create);
  EXPECT_THAT(encoded, ::testing::HasSubstr(R"("reference":"po1_2")"));
  EXPECT_THAT(encoded, ::testing::HasSubstr(R"("amount_minor":"700")"));
  EXPECT_THAT(encoded, ::testing::HasSubstr(R"("account":"6222000011112222")"));
  EXPECT_EQ(EncodePayoutRef({"m1", "po1_2", {}}), R"({"reference":"po1_2"})");
}

TEST(HttpsUrl, ParsesHostPortAndTargetAndRefusesNonHttps) {
  auto url = http::ParseHttpsUrl("https://pay.example.com:8443/v1/payments?x=1#frag");
  ASSERT_TRUE(url);
  EXPECT_EQ(url.value().host, "pay.example.com");
  EXPECT_EQ(url.value().port, "8443");
  EXPECT_EQ(url.value().target, "/v1/payments?x=1");
  auto plain = http::ParseHttpsUrl("https://[::1]");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain.value().host, "::1");
  EXPECT_EQ(plain.value().port, "443");
  EXPECT_EQ(plain.value().target, "/");
  EXPECT_FALSE(http::ParseHttpsUrl("http://pay.example.com/"));
  EXPECT_FALSE(http::ParseHttpsUrl("https://user@pay.example.com/"));
  EXPECT_FALSE(http::ParseHttpsUrl("https://pay.example.com:99999/"));
  EXPECT_FALSE(http::ParseHttpsUrl("https://:443/"));
}

}  // namespace
}  // namespace paygate::adapters::sandbox
