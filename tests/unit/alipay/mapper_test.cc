// The Alipay mapper on crafted, signed bytes: which replies may be believed, and what each means per
// operation; what a create hands the payer; how real and crafted notifies decode. Every case here
// is one that, misread, would report money as moved or not moved wrongly.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "adapters/alipay/mapper.h"
#include "adapters/alipay/signing.h"
#include "adapters/common/codec.h"
#include "tests/unit/alipay/test_util.h"

namespace paygate::adapters::alipay {
namespace {

using namespace testing;  // NOLINT: the Alipay vector helpers.

constexpr std::string_view kAppId = "2021000122671080";

Credentials App() { return Credentials{std::string(kAppId), AppKey(), FakeAlipayPublicKey(), "", "", ""}; }

Credentials CertApp() {
  Credentials credentials = App();
  credentials.app_cert_sn = "866efef280dec9137a87d047ac446315";
  credentials.alipay_root_cert_sn = "687b59193f3f462dd5336e5abf83c5d8_02941eef3187dddf3d3b83462e1dfcf6";
  credentials.alipay_cert_sn = "7513daaaa48aa3ba2e4018d84402479c";
  return credentials;
}

// A reply as Alipay lays it out, signed over `source` by the stand-in Alipay key (or `signer`).
http::HttpsResponse Reply(Operation op, const std::string& source, std::string_view cert_sn = {},
                          unsigned status = 200) {
  auto sign = SignContent(source, FakeAlipayKey());
  http::HttpsResponse reply;
  reply.status = status;
  reply.body = BuildResponse(ResponseKey(MethodOf(op)), source, sign.value(), cert_sn);
  return reply;
}

ProviderResult Read(Operation op, const http::HttpsResponse& reply, std::string_view reference = "o1",
                    const Credentials& credentials = App(), const ErrorTable& errors = DefaultErrorTable()) {
  ReplyContext context;
  context.op = op;
  context.credentials = &credentials;
  context.errors = &errors;
  context.reference = reference;
  return ReadReply(context, reply);
}

TEST(AlipayMapper, TradeQueryStates) {
  auto q = [](const std::string& source) { return Read(Operation::kQueryPayment, Reply(Operation::kQueryPayment, source)); };
  auto paid = q(R"({"code":"10000","msg":"Success","out_trade_no":"o1","trade_no":"t1","trade_status":"TRADE_SUCCESS","total_amount":"12.34"})");
  EXPECT_EQ(paid.outcome, Outcome::kSucceeded);
  EXPECT_EQ(paid.amount_minor, 1234);
  EXPECT_EQ(paid.provider_transaction_id, "t1");
  EXPECT_EQ(q(R"({"code":"10000","out_trade_no":"o1","trade_status":"TRADE_FINISHED","total_amount":"1.00"})").outcome,
            Outcome::kSucceeded);
  EXPECT_EQ(q(R"({"code":"10000","out_trade_no":"o1","trade_status":"WAIT_BUYER_PAY"})").outcome, Outcome::kPending);
  auto closed = q(R"({"code":"10000","out_trade_no":"o1","trade_status":"TRADE_CLOSED","total_amount":"1.00"})");
  EXPECT_EQ(closed.outcome, Outcome::kDeclined);
  EXPECT_EQ(closed.decline_code, "closed");
  // Closed after a full refund: the payment did succeed.
  EXPECT_EQ(q(R"({"code":"10000","out_trade_no":"o1","trade_status":"TRADE_CLOSED","total_amount":"1.00","send_pay_date":"2026-11-27 08:00:01"})")
                .outcome,
            Outcome::kSucceeded);
  EXPECT_EQ(q(R"({"code":"10000","out_trade_no":"o1","trade_status":"SOMETHING_NEW"})").outcome, Outcome::kUnknown);
  // Absence is not proof, nor is a system error, nor 20000.
  EXPECT_EQ(q(R"({"code":"40004","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"no"})").outcome, Outcome::kUnknown);
  EXPECT_EQ(q(R"({"code":"20000","sub_code":"isp.unknow-error"})").outcome, Outcome::kUnknown);
  // About another trade.
  EXPECT_EQ(q(R"({"code":"10000","out_trade_no":"o2","trade_status":"TRADE_SUCCESS","total_amount":"1.00"})").outcome,
            Outcome::kUnknown);
}

TEST(AlipayMapper, UntrustworthyRepliesAreUnknown) {
  const std::string paid =
      R"({"code":"10000","out_trade_no":"o1","trade_status":"TRADE_SUCCESS","total_amount":"1.00"})";
  // Signed by someone else.
  http::HttpsResponse forged;
  forged.status = 200;
  forged.body = BuildResponse(ResponseKey(kMethodQuery), paid, SignContent(paid, AppKey()).value());
  EXPECT_EQ(Read(Operation::kQueryPayment, forged).outcome, Outcome::kUnknown);
  // Signed, then altered.
  auto altered = Reply(Operation::kQueryPayment, paid);
  altered.body.replace(altered.body.find("1.00"), 4, "9.00");
  EXPECT_EQ(Read(Operation::kQueryPayment, altered).outcome, Outcome::kUnknown);
  // Unsigned.
  http::HttpsResponse unsigned_reply;
  unsigned_reply.status = 200;
  unsigned_reply.body = "{\"alipay_trade_query_response\":" + paid + "}";
  EXPECT_EQ(Read(Operation::kQueryPayment, unsigned_reply).outcome, Outcome::kUnknown);
  // 5xx, even correctly signed; a non-200.
  EXPECT_EQ(Read(Operation::kQueryPayment, Reply(Operation::kQueryPayment, paid, {}, 502)).outcome, Outcome::kUnknown);
  EXPECT_EQ(Read(Operation::kQueryPayment, Reply(Operation::kQueryPayment, paid, {}, 404)).outcome, Outcome::kUnknown);
  // Signed for another method (a refund reply presented as a query reply).
  EXPECT_EQ(Read(Operation::kQueryPayment, Reply(Operation::kRefund, paid)).outcome, Outcome::kUnknown);
  // Cut in half.
  auto cut = Reply(Operation::kQueryPayment, paid);
  cut.body.resize(cut.body.size() / 2);
  EXPECT_EQ(Read(Operation::kQueryPayment, cut).outcome, Outcome::kUnknown);
  // An encrypted (quoted) response: signed, but we hold no content key.
  EXPECT_EQ(Read(Operation::kQueryPayment, Reply(Operation::kQueryPayment, "\"c2VjcmV0\"")).outcome,
            Outcome::kUnknown);
}

TEST(AlipayMapper, CertificateModeTrustsOnlyItsAlipayCertificate) {
  const std::string paid =
      R"({"code":"10000","out_trade_no":"o1","trade_status":"TRADE_SUCCESS","total_amount":"1.00"})";
  const Credentials cert = CertApp();
  EXPECT_EQ(Read(Operation::kQueryPayment, Reply(Operation::kQueryPayment, paid, cert.alipay_cert_sn), "o1", cert).outcome,
            Outcome::kSucceeded);
  // A reply naming another certificate (Alipay rotated it) cannot be checked against ours.
  EXPECT_EQ(Read(Operation::kQueryPayment, Reply(Operation::kQueryPayment, paid, "00000000000000000000000000000000"),
                 "o1", cert)
                .outcome,
            Outcome::kUnknown);
}

TEST(AlipayMapper, CloseOutcomes) {
  auto c = [](const std::string& source) { return Read(Operation::kClosePayment, Reply(Operation::kClosePayment, source)); };
  EXPECT_EQ(c(R"({"code":"10000","msg":"Success","out_trade_no":"o1","trade_no":"t1"})").outcome, Outcome::kSucceeded);
  auto paid = c(R"({"code":"40004","sub_code":"ACQ.TRADE_STATUS_ERROR","sub_msg":"paid"})");
  EXPECT_EQ(paid.outcome, Outcome::kDeclined);
  EXPECT_EQ(paid.decline_code, "payment_state_conflict");
  // Never opened by the payer: Alipay has no trade yet, and the payer may still open it.
  EXPECT_EQ(c(R"({"code":"40004","sub_code":"ACQ.TRADE_NOT_EXIST"})").outcome, Outcome::kUnknown);
  EXPECT_EQ(c(R"({"code":"40004","sub_code":"ACQ.SYSTEM_ERROR"})").outcome, Outcome::kUnknown);
  EXPECT_EQ(c(R"({"code":"20000"})").outcome, Outcome::kUnknown);
}

TEST(AlipayMapper, RefundOutcomesAndErrorTable) {
  auto r = [](const std::string& source, const ErrorTable& table = DefaultErrorTable()) {
    return Read(Operation::kRefund, Reply(Operation::kRefund, source), "o1", App(), table);
  };
  EXPECT_EQ(r(R"({"code":"10000","out_trade_no":"o1","trade_no":"t1","fund_change":"Y","refund_fee":"1.00"})").outcome,
            Outcome::kSucceeded);
  EXPECT_EQ(r(R"({"code":"10000","out_trade_no":"o1","fund_change":"N"})").outcome, Outcome::kPending);
  EXPECT_EQ(r(R"({"code":"10000","out_trade_no":"o1"})").outcome, Outcome::kUnknown);
  auto poor = r(R"({"code":"40004","sub_code":"ACQ.SELLER_BALANCE_NOT_ENOUGH","sub_msg":"balance"})");
  EXPECT_EQ(poor.outcome, Outcome::kDeclined);
  EXPECT_EQ(poor.decline_code, "insufficient_balance");
  EXPECT_EQ(poor.decline_message, "balance");
  // Unlisted sub codes decline generically; the table is configurable.
  EXPECT_EQ(r(R"({"code":"40004","sub_code":"ACQ.NEW_THING"})").decline_code, "provider_declined");
  ErrorTable table = DefaultErrorTable();
  table.codes["ACQ.NEW_THING"] = "new_thing";
  table.unknown.insert("ACQ.MAYBE");
  EXPECT_EQ(r(R"({"code":"40004","sub_code":"ACQ.NEW_THING"})", table).decline_code, "new_thing");
  EXPECT_EQ(r(R"({"code":"40004","sub_code":"ACQ.MAYBE"})", table).outcome, Outcome::kUnknown);
  // Alipay-side failures never decline.
  EXPECT_EQ(r(R"({"code":"40004","sub_code":"ACQ.SYSTEM_ERROR"})").outcome, Outcome::kUnknown);
  EXPECT_EQ(r(R"({"code":"40004","sub_code":"isp.whatever"})").outcome, Outcome::kUnknown);
  // A gateway-level refusal under error_response, signed: nothing was executed.
  http::HttpsResponse gateway;
  const std::string error = R"({"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-signature"})";
  gateway.status = 200;
  gateway.body = BuildResponse("error_response", error, SignContent(error, FakeAlipayKey()).value());
  EXPECT_EQ(Read(Operation::kRefund, gateway).outcome, Outcome::kDeclined);
  // The same refusal to a query says nothing about the trade.
  EXPECT_EQ(Read(Operation::kQueryPayment, gateway).outcome, Outcome::kUnknown);
}

TEST(AlipayMapper, RefundQueryOutcomes) {
  auto q = [](const std::string& source) {
    return Read(Operation::kQueryRefund, Reply(Operation::kQueryRefund, source), "r1");
  };
  auto done = q(R"({"code":"10000","out_trade_no":"o1","out_request_no":"r1","refund_amount":"0.50","refund_status":"REFUND_SUCCESS"})");
  EXPECT_EQ(done.outcome, Outcome::kSucceeded);
  EXPECT_EQ(done.amount_minor, 50);
  EXPECT_EQ(q(R"({"code":"10000","out_trade_no":"o1"})").outcome, Outcome::kUnknown);
  EXPECT_EQ(q(R"({"code":"10000","out_request_no":"r2","refund_status":"REFUND_SUCCESS"})").outcome, Outcome::kUnknown);
  EXPECT_EQ(q(R"({"code":"40004","sub_code":"ACQ.TRADE_NOT_EXIST"})").outcome, Outcome::kUnknown);
}

TEST(AlipayMapper, TransferOutcomes) {
  const Credentials cert = CertApp();
  auto t = [&cert](Operation op, const std::string& source) {
    return Read(op, Reply(op, source, cert.alipay_cert_sn), "b1", cert);
  };
  auto ok = t(Operation::kPayout, R"({"code":"10000","out_biz_no":"b1","order_id":"20261127","status":"SUCCESS","trans_date":"2026-11-27 08:00:00"})");
  EXPECT_EQ(ok.outcome, Outcome::kSucceeded);
  EXPECT_EQ(ok.provider_transaction_id, "20261127");
  EXPECT_EQ(t(Operation::kPayout, R"({"code":"10000","out_biz_no":"b1","status":"DEALING"})").outcome, Outcome::kPending);
  EXPECT_EQ(t(Operation::kPayout, R"({"code":"10000","out_biz_no":"b1","status":"FAIL"})").outcome, Outcome::kDeclined);
  auto poor = t(Operation::kPayout, R"({"code":"40004","sub_code":"PAYER_BALANCE_NOT_ENOUGH"})");
  EXPECT_EQ(poor.outcome, Outcome::kDeclined);
  EXPECT_EQ(poor.decline_code, "insufficient_balance");
  EXPECT_EQ(t(Operation::kPayout, R"({"code":"40004","sub_code":"SYSTEM_ERROR"})").outcome, Outcome::kUnknown);
  EXPECT_EQ(t(Operation::kPayout, R"({"code":"10000","out_biz_no":"b2","status":"SUCCESS"})").outcome, Outcome::kUnknown);
  auto returned = t(Operation::kQueryPayout, R"({"code":"10000","out_biz_no":"b1","status":"REFUND"})");
  EXPECT_EQ(returned.outcome, Outcome::kDeclined);
  EXPECT_EQ(returned.decline_code, "payout_returned");
  EXPECT_EQ(t(Operation::kQueryPayout, R"({"code":"40004","sub_code":"ORDER_NOT_EXIST"})").outcome, Outcome::kUnknown);
  // Money out: a sub_code never heard of, or a reused out_biz_no, is no proof that nothing moved.
  EXPECT_EQ(t(Operation::kPayout, R"({"code":"40004","sub_code":"ORDER_DUPLICATE"})").outcome, Outcome::kUnknown);
  EXPECT_EQ(t(Operation::kPayout, R"({"code":"40004","sub_code":"ACQ.DISCORDANT_REPEAT_REQUEST"})").outcome, Outcome::kUnknown);
  EXPECT_EQ(t(Operation::kPayout, R"({"code":"40004","sub_code":"SOMETHING_NEW"})").outcome, Outcome::kUnknown);
  EXPECT_EQ(t(Operation::kPayout, R"({"code":"40004","sub_code":"PAYEE_NOT_EXIST"})").decline_code, "payee_not_found");
  EXPECT_EQ(PayeeIdentityType("alipay_login_id"), std::optional<std::string_view>("ALIPAY_LOGON_ID"));
  EXPECT_EQ(PayeeIdentityType("alipay_user_id"), std::optional<std::string_view>("ALIPAY_USER_ID"));
  EXPECT_FALSE(PayeeIdentityType("bank_card"));
}

TEST(AlipayMapper, PayoutRequestsAreValidated) {
  PayoutRequest payout;
  payout.reference = "b1";
  payout.amount_minor = 100;
  payout.payee_identity = "2088123412341234";
  auto biz = EncodeTransfer(payout);
  ASSERT_TRUE(biz);
  EXPECT_THAT(biz.value(), ::testing::HasSubstr(R"("trans_amount":"1.00")"));
  EXPECT_THAT(biz.value(), ::testing::HasSubstr(R"("product_code":"TRANS_ACCOUNT_NO_PWD")"));
  EXPECT_THAT(biz.value(), ::testing::HasSubstr(R"("identity_type":"ALIPAY_USER_ID")"));
  payout.payee_identity_type = "ALIPAY_LOGON_ID";
  EXPECT_FALSE(EncodeTransfer(payout));  // a logon id needs the payee's name
  payout.payee_name = "张三";
  EXPECT_TRUE(EncodeTransfer(payout));
  payout.amount_minor = 0;
  EXPECT_FALSE(EncodeTransfer(payout));
  payout.amount_minor = 1;
  payout.currency = "USD";
  EXPECT_FALSE(EncodeTransfer(payout));
}

CreatePaymentRequest Create(std::string method) {
  CreatePaymentRequest request;
  request.merchant_account = "m1";
  request.provider_reference = "ord1_1";
  request.amount_minor = 1234;
  request.currency = "CNY";
  request.method = std::move(method);
  request.description = "保费";
  request.notify_url = "https://gw.example/callbacks/alipay/m1";
  // 2026-11-27 08:30:00 Beijing time.
  request.expires_at = std::chrono::system_clock::time_point(std::chrono::seconds(1795737600 + 1800));
  return request;
}

TEST(AlipayMapper, PagePaymentIsASignedGatewayUrl) {
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1795737600));
  auto result = BuildPayment(App(), "https://openapi.alipay.com/gateway.do", Create("alipay_page"), now);
  ASSERT_EQ(result.outcome, Outcome::kPending) << result.detail;
  EXPECT_EQ(result.next_action_type, "redirect_url");
  const std::string prefix = "https://openapi.alipay.com/gateway.do?";
  ASSERT_EQ(result.next_action_value.rfind(prefix, 0), 0u);
  auto params = codec::ParseForm(std::string_view(result.next_action_value).substr(prefix.size()));
  ASSERT_TRUE(params);
  // What Alipay's gateway checks: our app key signed exactly these parameters.
  EXPECT_TRUE(VerifyRequest(*params, AppPublicKey()));
  EXPECT_EQ(codec::FindField(*params, "method"), "alipay.trade.page.pay");
  EXPECT_EQ(codec::FindField(*params, "timestamp"), "2026-11-27 08:00:00");
  EXPECT_EQ(codec::FindField(*params, "notify_url"), "https://gw.example/callbacks/alipay/m1");
  EXPECT_EQ(codec::FindField(*params, "biz_content"),
            R"({"out_trade_no":"ord1_1","total_amount":"12.34","subject":"保费","product_code":"FAST_INSTANT_TRADE_PAY","time_expire":"2026-11-27 08:30:00"})");
  EXPECT_FALSE(codec::FindField(*params, "app_cert_sn"));
}

TEST(AlipayMapper, WapAndAppPaymentsAndCertMode) {
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1795737600));
  auto wap = BuildPayment(App(), "https://gw/gateway.do", Create("alipay_wap"), now);
  ASSERT_EQ(wap.outcome, Outcome::kPending);
  EXPECT_THAT(wap.next_action_value, ::testing::HasSubstr("QUICK_WAP_WAY"));
  auto app = BuildPayment(CertApp(), "https://gw/gateway.do", Create("alipay_app"), now);
  ASSERT_EQ(app.outcome, Outcome::kPending);
  EXPECT_EQ(app.next_action_type, "app_order_string");
  auto params = codec::ParseForm(app.next_action_value);
  ASSERT_TRUE(params);
  EXPECT_TRUE(VerifyRequest(*params, AppPublicKey()));
  EXPECT_EQ(codec::FindField(*params, "method"), "alipay.trade.app.pay");
  // Certificate mode: both SNs are signed parameters.
  EXPECT_EQ(codec::FindField(*params, "app_cert_sn"), CertApp().app_cert_sn);
  EXPECT_EQ(codec::FindField(*params, "alipay_root_cert_sn"), CertApp().alipay_root_cert_sn);
  // What cannot be built is not sent.
  auto usd = Create("alipay_page");
  usd.currency = "USD";
  EXPECT_EQ(BuildPayment(App(), "https://gw/gateway.do", usd, now).outcome, Outcome::kNotSent);
  auto zero = Create("alipay_page");
  zero.amount_minor = 0;
  EXPECT_EQ(BuildPayment(App(), "https://gw/gateway.do", zero, now).outcome, Outcome::kNotSent);
  EXPECT_EQ(BuildPayment(App(), "https://gw/gateway.do", Create("wechat_native"), now).outcome, Outcome::kNotSent);
}

CallbackRequest FormCallback(const Params& params, std::string account = "m1") {
  CallbackRequest request;
  request.merchant_account = std::move(account);
  request.headers = {{"content-type", "application/x-www-form-urlencoded; charset=utf-8"}};
  request.body = codec::BuildForm(params);
  return request;
}

TEST(AlipayMapper, RealTradeNotifyDecodes) {
  const std::string body =
      ReadVector("nodejs/notify_trade_success_2019081500222155624068450559358070.form");
  Credentials credentials{"2019073166072302", AppKey(),
                          PublicKeyFile("nodejs/alipay_public_key_for_trade_notify_2019073166072302.b64"),
                          "", "", ""};
  NotifyContext context{&credentials, "m1", "2088531891668739"};
  CallbackRequest request;
  request.merchant_account = "m1";
  request.body = body;
  auto event = ReadNotify(context, request);
  ASSERT_TRUE(event) << event.error().message;
  EXPECT_EQ(event.value().kind, CallbackEvent::Kind::kPayment);
  EXPECT_EQ(event.value().reference, "20190815155618536-564-57");
  EXPECT_EQ(event.value().dedup_key, "2019081500222155624068450559358070");
  EXPECT_EQ(event.value().result.outcome, Outcome::kSucceeded);
  EXPECT_EQ(event.value().result.amount_minor, 10);
  EXPECT_EQ(event.value().result.provider_transaction_id, "2019081522001468450512505578");
  // Verified, but not ours: another account, another app, another seller.
  request.merchant_account = "m2";
  EXPECT_FALSE(ReadNotify(context, request));
  request.merchant_account = "m1";
  NotifyContext other_seller{&credentials, "m1", "2088000000000000"};
  EXPECT_FALSE(ReadNotify(other_seller, request));
  Credentials other_app = credentials;
  other_app.app_id = "2019073166072303";
  NotifyContext other{&other_app, "m1", ""};
  EXPECT_FALSE(ReadNotify(other, request));
  // A tampered amount fails the signature.
  request.body.replace(request.body.find("total_amount=0.10"), 17, "total_amount=9.10");
  EXPECT_FALSE(ReadNotify(context, request));
}

Params SignedNotify(Params params) {
  auto content = NotifySignContentV1(params);
  params.emplace_back("sign", SignContent(*content, FakeAlipayKey()).value());
  params.emplace_back("sign_type", "RSA2");
  return params;
}

Params TradeNotify(std::string status) {
  return {{"notify_type", "trade_status_sync"}, {"notify_id", "n1"}, {"app_id", std::string(kAppId)},
          {"out_trade_no", "o1"}, {"trade_no", "t1"}, {"trade_status", std::move(status)},
          {"total_amount", "12.34"}, {"charset", "utf-8"}, {"version", "1.0"}};
}

TEST(AlipayMapper, CraftedNotifies) {
  const Credentials credentials = App();
  NotifyContext context{&credentials, "m1", ""};
  auto closed = ReadNotify(context, FormCallback(SignedNotify(TradeNotify("TRADE_CLOSED"))));
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed.value().result.outcome, Outcome::kDeclined);
  auto waiting = ReadNotify(context, FormCallback(SignedNotify(TradeNotify("WAIT_BUYER_PAY"))));
  ASSERT_TRUE(waiting);
  EXPECT_EQ(waiting.value().result.outcome, Outcome::kPending);
  EXPECT_FALSE(ReadNotify(context, FormCallback(SignedNotify(TradeNotify("NEW_STATE")))));
  // A refund on the trade: out_biz_no is our refund reference.
  Params refund = TradeNotify("TRADE_SUCCESS");
  refund.emplace_back("out_biz_no", "r1");
  refund.emplace_back("refund_fee", "2.00");
  refund.emplace_back("gmt_refund", "2026-11-27 08:00:00.123");
  auto refunded = ReadNotify(context, FormCallback(SignedNotify(refund)));
  ASSERT_TRUE(refunded);
  EXPECT_EQ(refunded.value().kind, CallbackEvent::Kind::kRefund);
  EXPECT_EQ(refunded.value().reference, "r1");
  EXPECT_EQ(refunded.value().result.outcome, Outcome::kSucceeded);
  // Signed by a key that is not Alipay's.
  Params forged = TradeNotify("TRADE_SUCCESS");
  forged.emplace_back("sign", SignContent(*NotifySignContentV1(forged), AppKey()).value());
  EXPECT_FALSE(ReadNotify(context, FormCallback(forged)));
  // Not a form at all.
  CallbackRequest junk;
  junk.merchant_account = "m1";
  junk.body = "%zz";
  EXPECT_FALSE(ReadNotify(context, junk));
}

TEST(AlipayMapper, AckIsExactlySuccess) {
  EXPECT_EQ(MakeAck(true).body, "success");
  EXPECT_EQ(MakeAck(true).status, 200u);
  EXPECT_NE(MakeAck(false).body, "success");
}

TEST(AlipayMapper, BeijingTimeIsUtcPlusEight) {
  EXPECT_EQ(BeijingTime(std::chrono::system_clock::time_point(std::chrono::seconds(1795737600))),
            "2026-11-27 08:00:00");
  EXPECT_EQ(BeijingTime(std::chrono::system_clock::time_point(std::chrono::seconds(1795708800 + 59))),
            "2026-11-27 00:00:59");
}

}  // namespace
}  // namespace paygate::adapters::alipay
