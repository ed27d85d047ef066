// The WeChat Pay mapper: request bodies and targets, and the outcome class of every reply it can
// meet, signed as WeChat Pay signs (with the Java SDK's WeChat-side test key). An unsigned, badly
// signed, stale, 5xx or unrecognised reply is never declined.
#include "adapters/wechatpay/mapper.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "adapters/common/codec.h"
#include "adapters/wechatpay/json.h"
#include "adapters/wechatpay/wechatpay.pb.h"
#include "tests/unit/wechatpay/vectors.h"

namespace paygate::adapters::wechatpay {
namespace {

using testing::ReadVector;
namespace pb = paygate::adapters::wechatpay::v3;

constexpr std::int64_t kNow = 1795737600;
constexpr const char* kSerial = "440024045C4A427599D09BB4E3DE0279F2E813FD";
constexpr const char* kApiV3Key = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";

std::chrono::system_clock::time_point At(std::int64_t unix_seconds) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(unix_seconds));
}

class WechatMapper : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = crypto::PrivateKey::FromPem(ReadVector("java/wechat_pay_private_key.pem"));
    ASSERT_TRUE(key);
    wechat_key_ = std::make_unique<crypto::PrivateKey>(std::move(key).value());
    verifiers_.Add(kSerial, wechat_key_->Public());
  }

  // A reply as WeChat Pay sends it: signed over its exact body.
  http::HttpsResponse Signed(unsigned status, std::string body, std::int64_t ts = kNow) const {
    http::HttpsResponse reply;
    reply.status = status;
    reply.body = std::move(body);
    const std::string nonce = NewNonce();
    auto sig = wechat_key_->Sign(crypto::Digest::kSha256,
                                 ResponseMessage(std::to_string(ts), nonce, reply.body));
    reply.headers = {{"wechatpay-timestamp", std::to_string(ts)},
                     {"wechatpay-nonce", nonce},
                     {"wechatpay-signature", codec::Base64Encode(sig.value())},
                     {"wechatpay-serial", kSerial},
                     {"request-id", "08F0B0D5"}};
    return reply;
  }
  bool Trusted(const http::HttpsResponse& reply) const {
    return static_cast<bool>(VerifyReply(verifiers_, reply, At(kNow)));
  }

  std::unique_ptr<crypto::PrivateKey> wechat_key_;
  Verifiers verifiers_;
};

CreatePaymentRequest Payment(std::string method) {
  CreatePaymentRequest request;
  request.merchant_account = "m1";
  request.provider_reference = "pay_abcdefghijklmnopqrstuvwx_1";
  request.amount_minor = 12800;
  request.currency = "CNY";
  request.method = std::move(method);
  request.description = "意外险-年度保单";
  request.notify_url = "https://127.0.0.1/v1/callbacks/wechatpay/m1";
  return request;
}

TEST_F(WechatMapper, PrepayBodiesPerMethod) {
  const MerchantIds ids{"1234567891", "wxd678efh567hg6787"};
  auto native = EncodePrepay(ids, Method::kNative, Payment("wechat_native"), {});
  ASSERT_TRUE(native);
  EXPECT_EQ(native.value(),
            R"({"appid":"wxd678efh567hg6787","mchid":"1234567891","description":"意外险-年度保单",)"
            R"("out_trade_no":"pay_abcdefghijklmnopqrstuvwx_1",)"
            R"("notify_url":"https://127.0.0.1/v1/callbacks/wechatpay/m1",)"
            R"("amount":{"total":12800,"currency":"CNY"}})");
  auto expiring = Payment("wechat_native");
  expiring.expires_at = At(1795737606);
  EXPECT_NE(EncodePrepay(ids, Method::kNative, expiring, {})
                .value()
                .find(R"("time_expire":"2026-11-27T08:00:06+08:00")"),
            std::string::npos);
  // JSAPI needs the payer's openid; H5 the payer's IP: without them nothing is sent.
  EXPECT_FALSE(EncodePrepay(ids, Method::kJsapi, Payment("wechat_jsapi"), {}));
  auto jsapi =
      EncodePrepay(ids, Method::kJsapi, Payment("wechat_jsapi"), PayerInfo{"oUpF8u", "", "Wap"});
  ASSERT_TRUE(jsapi);
  EXPECT_NE(jsapi.value().find(R"("payer":{"openid":"oUpF8u"})"), std::string::npos);
  EXPECT_FALSE(EncodePrepay(ids, Method::kH5, Payment("wechat_h5"), {}));
  auto h5 =
      EncodePrepay(ids, Method::kH5, Payment("wechat_h5"), PayerInfo{"", "203.0.113.9", "Wap"});
  ASSERT_TRUE(h5);
  EXPECT_NE(
      h5.value().find(R"("scene_info":{"payer_client_ip":"203.0.113.9","h5_info":{"type":"Wap"}})"),
      std::string::npos);
  // Amounts: CNY fen, positive, within int32; references in WeChat's alphabet.
  auto usd = Payment("wechat_native");
  usd.currency = "USD";
  EXPECT_FALSE(EncodePrepay(ids, Method::kNative, usd, {}));
  auto huge = Payment("wechat_native");
  huge.amount_minor = 2147483648;
  EXPECT_FALSE(EncodePrepay(ids, Method::kNative, huge, {}));
  auto zero = Payment("wechat_native");
  zero.amount_minor = 0;
  EXPECT_FALSE(EncodePrepay(ids, Method::kNative, zero, {}));
  auto bad_ref = Payment("wechat_native");
  bad_ref.provider_reference = "pay/../x";
  EXPECT_FALSE(EncodePrepay(ids, Method::kNative, bad_ref, {}));
  EXPECT_EQ(ParseMethod("wechat_app"), Method::kApp);
  EXPECT_FALSE(ParseMethod("alipay_page"));
}

TEST_F(WechatMapper, TargetsAreExactlyWhatIsSigned) {
  EXPECT_EQ(QueryPaymentTarget("1234567891", "POL2026112700000001"),
            "/v3/pay/transactions/out-trade-no/POL2026112700000001?mchid=1234567891");
  EXPECT_EQ(ClosePaymentTarget("pay_x_1"), "/v3/pay/transactions/out-trade-no/pay_x_1/close");
  EXPECT_EQ(QueryRefundTarget("re_1"), "/v3/refund/domestic/refunds/re_1");
  EXPECT_EQ(QueryTransferTarget("po123456"),
            "/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/po123456");
  EXPECT_EQ(TradeBillTarget("2026-11-27", "ALL", true),
            "/v3/bill/tradebill?bill_date=2026-11-27&bill_type=ALL&tar_type=GZIP");
  EXPECT_EQ(EncodeClose("1234567891"), R"({"mchid":"1234567891"})");
}

TEST_F(WechatMapper, RepliesMustBeSignedFreshAndNot5xx) {
  EXPECT_TRUE(Trusted(Signed(200, R"({"code_url":"weixin://x"})")));
  EXPECT_FALSE(Trusted(Signed(500, R"({"code":"SYSTEM_ERROR","message":"x"})")));
  EXPECT_FALSE(Trusted(Signed(200, R"({"code_url":"weixin://x"})", kNow - 300)));
  auto tampered = Signed(200, R"({"code_url":"weixin://x"})");
  tampered.body = R"({"code_url":"weixin://y"})";
  EXPECT_FALSE(Trusted(tampered));
  auto unsigned_reply = Signed(200, "{}");
  unsigned_reply.headers.clear();
  EXPECT_FALSE(Trusted(unsigned_reply));
}

TEST_F(WechatMapper, PrepayOutcomes) {
  const auto& codes = DefaultErrorCodes();
  auto native = ReadPrepayReply(
      Method::kNative, Signed(200, R"({"code_url":"weixin://wxpay/bizpayurl?pr=a"})"), codes);
  EXPECT_EQ(native.outcome, Outcome::kPending);
  EXPECT_EQ(native.next_action_type, "qr_code_url");
  EXPECT_EQ(native.next_action_value, "weixin://wxpay/bizpayurl?pr=a");
  auto h5 =
      ReadPrepayReply(Method::kH5, Signed(200, R"({"h5_url":"https://wx.tenpay.com/x"})"), codes);
  EXPECT_EQ(h5.next_action_type, "redirect_url");
  auto app = ReadPrepayReply(Method::kApp, Signed(200, R"({"prepay_id":"wx2014"})"), codes);
  EXPECT_EQ(app.next_action_type, "wechat_prepay_id");
  EXPECT_EQ(app.next_action_value, "wx2014");
  // A 200 without the handle of its method, or not JSON: unknown.
  EXPECT_EQ(ReadPrepayReply(Method::kNative, Signed(200, R"({"prepay_id":"wx"})"), codes).outcome,
            Outcome::kUnknown);
  EXPECT_EQ(ReadPrepayReply(Method::kNative, Signed(200, R"({"code_url":)"), codes).outcome,
            Outcome::kUnknown);
  // Definitive refusals are declined with the unified code; the others stay unknown.
  auto param = ReadPrepayReply(Method::kNative,
                               Signed(400, R"({"code":"PARAM_ERROR","message":"bad"})"), codes);
  EXPECT_EQ(param.outcome, Outcome::kDeclined);
  EXPECT_EQ(param.decline_code, "invalid_request");
  EXPECT_EQ(param.decline_message, "bad");
  for (const char* code :
       {"INVALID_REQUEST", "ORDERPAID", "OUT_TRADE_NO_USED", "SYSTEM_ERROR", "SOMETHING_NEW"}) {
    auto r = ReadPrepayReply(
        Method::kNative, Signed(403, fmt::format(R"({{"code":"{}","message":"m"}})", code)), codes);
    EXPECT_EQ(r.outcome, Outcome::kUnknown) << code;
  }
  ErrorCodes custom = codes;
  custom["NOT_ENOUGH"] = "balance_low";
  EXPECT_EQ(ReadPrepayReply(Method::kNative, Signed(403, R"({"code":"NOT_ENOUGH","message":"m"})"),
                            custom)
                .decline_code,
            "balance_low");
}

TEST_F(WechatMapper, TradeStatesMapExactly) {
  const std::pair<const char*, Outcome> cases[] = {
      {"SUCCESS", Outcome::kSucceeded}, {"REFUND", Outcome::kSucceeded},
      {"NOTPAY", Outcome::kPending},    {"USERPAYING", Outcome::kPending},
      {"CLOSED", Outcome::kDeclined},   {"REVOKED", Outcome::kDeclined},
      {"PAYERROR", Outcome::kDeclined}, {"SOMETHING_NEW", Outcome::kUnknown},
      {"", Outcome::kUnknown}};
  for (auto [state, outcome] : cases) {
    pb::Transaction t;
    t.set_out_trade_no("pay_x_1");
    t.set_transaction_id("4200");
    t.set_trade_state(state);
    t.mutable_amount()->set_total(12800);
    auto r = ReadQueryPaymentReply(Signed(200, ToJson(t)), "pay_x_1");
    EXPECT_EQ(r.outcome, outcome) << state;
    if (outcome == Outcome::kSucceeded) {
      EXPECT_EQ(r.amount_minor, 12800);
    }
  }
  // Another payment's reply, and any refusal of a query, are unknown (absence is not proof).
  pb::Transaction other;
  other.set_out_trade_no("pay_y_1");
  other.set_trade_state("CLOSED");
  EXPECT_EQ(ReadQueryPaymentReply(Signed(200, ToJson(other)), "pay_x_1").outcome,
            Outcome::kUnknown);
  EXPECT_EQ(
      ReadQueryPaymentReply(Signed(404, R"({"code":"ORDER_NOT_EXIST","message":"m"})"), "pay_x_1")
          .outcome,
      Outcome::kUnknown);
}

TEST_F(WechatMapper, CloseRefundAndTransferOutcomes) {
  const auto& codes = DefaultErrorCodes();
  EXPECT_EQ(ReadCloseReply(Signed(204, ""), codes).outcome, Outcome::kSucceeded);
  EXPECT_EQ(ReadCloseReply(Signed(400, R"({"code":"ORDER_CLOSED","message":"m"})"), codes).outcome,
            Outcome::kSucceeded);
  auto paid = ReadCloseReply(Signed(400, R"({"code":"ORDERPAID","message":"m"})"), codes);
  EXPECT_EQ(paid.outcome, Outcome::kDeclined);
  EXPECT_EQ(paid.decline_code, "already_paid");
  EXPECT_EQ(
      ReadCloseReply(Signed(404, R"({"code":"ORDER_NOT_EXIST","message":"m"})"), codes).outcome,
      Outcome::kUnknown);

  for (auto [status, outcome] :
       {std::pair{"SUCCESS", Outcome::kSucceeded}, std::pair{"PROCESSING", Outcome::kPending},
        std::pair{"ABNORMAL", Outcome::kPending}, std::pair{"CLOSED", Outcome::kDeclined},
        std::pair{"NEW_STATE", Outcome::kUnknown}}) {
    pb::Refund refund;
    refund.set_out_refund_no("re_000001");
    refund.set_status(status);
    refund.mutable_amount()->set_refund(2800);
    EXPECT_EQ(
        ReadRefundReply(Operation::kQueryRefund, Signed(200, ToJson(refund)), "re_000001", codes)
            .outcome,
        outcome)
        << status;
  }
  EXPECT_EQ(
      ReadRefundReply(Operation::kCreateRefund,
                      Signed(403, R"({"code":"NOT_ENOUGH","message":"m"})"), "re_000001", codes)
          .outcome,
      Outcome::kDeclined);
  EXPECT_EQ(ReadRefundReply(Operation::kQueryRefund,
                            Signed(404, R"({"code":"RESOURCE_NOT_EXISTS","message":"m"})"),
                            "re_000001", codes)
                .outcome,
            Outcome::kUnknown);

  for (auto [state, outcome] :
       {std::pair{"ACCEPTED", Outcome::kPending}, std::pair{"PROCESSING", Outcome::kPending},
        std::pair{"WAIT_USER_CONFIRM", Outcome::kPending},
        std::pair{"TRANSFERING", Outcome::kPending}, std::pair{"CANCELING", Outcome::kPending},
        std::pair{"SUCCESS", Outcome::kSucceeded}, std::pair{"FAIL", Outcome::kDeclined},
        std::pair{"CANCELLED", Outcome::kDeclined}, std::pair{"NEW_STATE", Outcome::kUnknown}}) {
    pb::TransferBill bill;
    bill.set_out_bill_no("po1234567");
    bill.set_transfer_bill_no("1330000114850082");
    bill.set_state(state);
    bill.set_package_info("affffddafdfafddffda==");
    auto r =
        ReadTransferReply(Operation::kQueryTransfer, Signed(200, ToJson(bill)), "po1234567", codes);
    EXPECT_EQ(r.result.outcome, outcome) << state;
    EXPECT_EQ(r.state, state);
    EXPECT_EQ(r.package_info, "affffddafdfafddffda==");
  }
  // A payout refused with an ambiguous code must not be declined: a declined payout may be retried.
  EXPECT_EQ(ReadTransferReply(Operation::kCreateTransfer,
                              Signed(400, R"({"code":"INVALID_REQUEST","message":"m"})"),
                              "po1234567", codes)
                .result.outcome,
            Outcome::kUnknown);
  EXPECT_EQ(
      ReadTransferReply(Operation::kCreateTransfer,
                        Signed(403, R"({"code":"NOT_ENOUGH","message":"m"})"), "po1234567", codes)
          .result.outcome,
      Outcome::kDeclined);
}

TEST_F(WechatMapper, TransferBodyEncryptsNothingItself) {
  TransferRequest request;
  request.out_bill_no = "po1234567";
  request.openid = "o-MYE42l80oelYMDE34nYD456Xoy";
  request.amount_minor = 400000;
  request.remark = "理赔款";
  request.notify_url = "https://127.0.0.1/v1/callbacks/wechatpay/m1";
  request.transfer_scene_id = "1000";
  request.scene_report_infos = {{"活动名称", "理赔"}};
  auto body = EncodeTransfer("wxf636efh567hg4356", request, "CIPHER==");
  ASSERT_TRUE(body);
  EXPECT_EQ(body.value(),
            R"({"appid":"wxf636efh567hg4356","out_bill_no":"po1234567","transfer_scene_id":"1000",)"
            R"("openid":"o-MYE42l80oelYMDE34nYD456Xoy","user_name":"CIPHER==",)"
            R"("transfer_amount":400000,"transfer_remark":"理赔款",)"
            R"("notify_url":"https://127.0.0.1/v1/callbacks/wechatpay/m1",)"
            R"("transfer_scene_report_infos":[{"info_type":"活动名称","info_content":"理赔"}]})");
  request.transfer_scene_id.clear();
  EXPECT_FALSE(EncodeTransfer("wx", request, ""));
}

TEST_F(WechatMapper, RefundAndTransferCallbacks) {
  auto make = [&](const std::string& event_type, const std::string& original_type,
                  const std::string& plaintext) {
    pb::Notification n;
    n.set_id("EV-1");
    n.set_create_time("2026-11-27T08:00:06+08:00");
    n.set_resource_type("encrypt-resource");
    n.set_event_type(event_type);
    auto* r = n.mutable_resource();
    r->set_original_type(original_type);
    r->set_algorithm("AEAD_AES_256_GCM");
    r->set_associated_data(original_type);
    r->set_nonce("abcdefghijkl");
    r->set_ciphertext(EncryptResource(kApiV3Key, "abcdefghijkl", original_type, plaintext).value());
    const auto reply = Signed(200, ToJson(n));
    CallbackRequest request;
    request.headers = reply.headers;
    request.body = reply.body;
    return request;
  };
  pb::RefundNotice refund;
  refund.set_mchid("1234567891");
  refund.set_out_refund_no("re_000001");
  refund.set_refund_id("50300001");
  refund.set_refund_status("SUCCESS");
  refund.mutable_amount()->set_refund(2800);
  auto event = ReadCallback(verifiers_, kApiV3Key, "1234567891",
                            make("REFUND.SUCCESS", "refund", ToJson(refund)), At(kNow));
  ASSERT_TRUE(event) << event.error();
  EXPECT_EQ(event.value().kind, CallbackEvent::Kind::kRefund);
  EXPECT_EQ(event.value().reference, "re_000001");
  EXPECT_EQ(event.value().result.outcome, Outcome::kSucceeded);
  EXPECT_EQ(event.value().result.amount_minor, 2800);

  pb::TransferBill bill;
  bill.set_mch_id("1234567891");
  bill.set_out_bill_no("po1234567");
  bill.set_state("FAIL");
  bill.set_fail_reason("PAYEE_ACCOUNT_ABNORMAL");
  auto transfer = ReadTransferCallback(
      verifiers_, kApiV3Key, "1234567891",
      make("MCHTRANSFER.BILL.FINISHED", "mch_payment", ToJson(bill)), At(kNow));
  ASSERT_TRUE(transfer) << transfer.error();
  EXPECT_EQ(transfer.value().reference, "po1234567");
  EXPECT_EQ(transfer.value().result.result.outcome, Outcome::kDeclined);
  EXPECT_EQ(transfer.value().result.result.decline_message, "PAYEE_ACCOUNT_ABNORMAL");
  // Through ReadCallback (the Adapter interface) it is a payout's, with out_bill_no mapped back to
  // the attempt reference; FAIL is declined, never succeeded or unknown.
  bill.set_out_bill_no("poXabc234X2");
  auto payout = ReadCallback(verifiers_, kApiV3Key, "1234567891",
                             make("MCHTRANSFER.BILL.FINISHED", "mch_payment", ToJson(bill)),
                             At(kNow));
  ASSERT_TRUE(payout) << payout.error();
  EXPECT_EQ(payout.value().kind, CallbackEvent::Kind::kPayout);
  EXPECT_EQ(payout.value().reference, "po_abc234_2");
  EXPECT_EQ(payout.value().result.outcome, Outcome::kDeclined);
  bill.set_mch_id("9999999999");
  EXPECT_FALSE(ReadCallback(verifiers_, kApiV3Key, "1234567891",
                            make("MCHTRANSFER.BILL.FINISHED", "mch_payment", ToJson(bill)),
                            At(kNow)));
  // A payment or refund callback is not a transfer callback.
  EXPECT_FALSE(ReadTransferCallback(verifiers_, kApiV3Key, "1234567891",
                                    make("REFUND.SUCCESS", "refund", ToJson(refund)), At(kNow)));
}

TEST_F(WechatMapper, AckIsWhatWechatExpects) {
  EXPECT_EQ(MakeAck(true).status, 204u);
  EXPECT_TRUE(MakeAck(true).body.empty());
  const auto fail = MakeAck(false);
  EXPECT_GE(fail.status, 400u);
  EXPECT_EQ(fail.body, R"({"code":"FAIL","message":"失败"})");
}

// The payout reference <-> out_bill_no mapping: one-to-one on our alphabet, refused outside it.
TEST(WechatOutBillNo, IsLettersAndDigitsAndMapsBack) {
  auto mapped = OutBillNoOf("po_abc234_12");
  ASSERT_TRUE(mapped);
  EXPECT_EQ(mapped.value(), "poXabc234X12");
  EXPECT_EQ(ReferenceOfOutBillNo(mapped.value()), "po_abc234_12");
  EXPECT_NE(OutBillNoOf("po_ab_1").value(), OutBillNoOf("poab__1").value());
  EXPECT_FALSE(OutBillNoOf("po_X_1"));   // upper case would not map back
  EXPECT_FALSE(OutBillNoOf("po-a_1"));   // WeChat allows no '-' in out_bill_no
  EXPECT_FALSE(OutBillNoOf("p_1"));      // too short
  EXPECT_FALSE(OutBillNoOf(std::string(33, 'a')));
}

}  // namespace
}  // namespace paygate::adapters::wechatpay
