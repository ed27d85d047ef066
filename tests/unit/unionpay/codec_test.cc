// The UnionPay codec against the published vectors (tests/vectors/providers/unionpay): the real
// signed 5.1.0 message verifies through its certificate chain, every mutation of it fails, the
// DERIVED signing vector is reproduced byte for byte with the test .pfx, and replies map to outcome
// classes as PROTOCOL.md says.
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "adapters/common/codec.h"
#include "adapters/common/crypto.h"
#include "adapters/unionpay/codec.h"

namespace paygate::adapters::unionpay {
namespace {

using Clock = std::chrono::system_clock;

std::string VectorPath(const std::string& name) {
  const char* source = std::getenv("PAYGATE_SOURCE_DIR");
  return std::string(source != nullptr ? source : ".") + "/tests/vectors/providers/unionpay/" +
         name;
}

std::string ReadVector(const std::string& name) {
  std::ifstream in(VectorPath(name), std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

crypto::Certificate Cert(const std::string& name) {
  auto cert = crypto::Certificate::FromFile(VectorPath(name));
  EXPECT_TRUE(cert) << name;
  return cert.value();
}

// Inside the callback certificate's validity (2015-12-04 .. 2017-12-04).
Clock::time_point In2017() { return *ParseBeijingTime("20171030223623"); }

Trust TestTrust() {
  Trust trust;
  trust.middle = {Cert("smartwalle__acp_test_middle.cer")};
  trust.roots = {Cert("smartwalle__acp_test_root.cer")};
  trust.cert_owner = "00040000:SIGN";  // UnionPay's test environment
  return trust;
}

Fields CallbackFields() {
  auto fields = ParseNotifyForm(ReadVector("callback_WtzCompleteFrontOpen_5.1.0.form"));
  EXPECT_TRUE(fields);
  return fields.value();
}

TEST(UnionPayCodec, RealCallbackVerifies) {
  const Fields fields = CallbackFields();
  // The sign content's digest is the one the vector records.
  EXPECT_EQ(SignDigestHex(fields),
            "e9fa180c291a5d8016c720b14a7339bc26f0af44105ab4ba74e57ff7975e80da");
  // The CRLFs of signPubKeyCert are part of the signed string.
  EXPECT_NE(fields.at("signPubKeyCert").find("\r\n"), std::string::npos);
  auto verified = VerifySigned(fields, TestTrust(), In2017());
  EXPECT_TRUE(verified) << verified.error();
}

TEST(UnionPayCodec, CallbackCertificateIsTheVectorsAndChainsOnlyWhenValid) {
  const Fields fields = CallbackFields();
  auto embedded = crypto::Certificate::Parse(fields.at("signPubKeyCert"));
  ASSERT_TRUE(embedded);
  EXPECT_EQ(embedded.value().SerialDecimal(), Cert("callback_signPubKeyCert.pem").SerialDecimal());
  // The leaf expired on 2017-12-04: at today's date the chain check must refuse it.
  auto now = VerifySigned(fields, TestTrust(), *ParseBeijingTime("20261127080000"));
  ASSERT_FALSE(now);
  EXPECT_NE(now.error().find("expired"), std::string::npos) << now.error();
}

TEST(UnionPayCodec, EveryMutationOfTheCallbackFails) {
  const Fields original = CallbackFields();
  const Trust trust = TestTrust();
  std::size_t mutations = 0;
  for (const auto& [name, value] : original) {
    // Every byte of every value: signature, signPubKeyCert (the serial and key inside it), times,
    // amounts, ids, signMethod.
    for (std::size_t pos = 0; pos < value.size(); ++pos) {
      Fields mutated = original;
      std::string& v = mutated[name];
      v[pos] = v[pos] == 'A' ? 'B' : 'A';
      ++mutations;
      ASSERT_FALSE(VerifySigned(mutated, trust, In2017())) << name << " at " << pos;
    }
    // Every byte of the field's name.
    for (std::size_t pos = 0; pos < name.size(); ++pos) {
      Fields renamed = original;
      std::string other = name;
      other[pos] = other[pos] == 'A' ? 'B' : 'A';
      renamed.erase(name);
      renamed[other] = value;
      EXPECT_FALSE(VerifySigned(renamed, trust, In2017())) << name << " renamed at " << pos;
    }
    // Dropping a signed field fails too (empty values are skipped, so this changes the content).
    Fields dropped = original;
    dropped.erase(name);
    EXPECT_FALSE(VerifySigned(dropped, trust, In2017())) << "without " << name;
  }
  EXPECT_GT(mutations, 2900u);
  // An added field changes the signed content.
  Fields added = original;
  added["reqReserved"] = "x";
  EXPECT_FALSE(VerifySigned(added, trust, In2017()));
}

TEST(UnionPayCodec, CallbackRefusedWithoutTheRightChainOrOwner) {
  const Fields fields = CallbackFields();
  Trust no_middle = TestTrust();
  no_middle.middle.clear();
  EXPECT_FALSE(VerifySigned(fields, no_middle, In2017()));
  Trust wrong_root = TestTrust();
  wrong_root.roots = {Cert("smartwalle__acp_test_middle.cer")};
  wrong_root.middle.clear();
  // The middle certificate alone is no trust anchor: the chain must reach the self-signed root.
  EXPECT_FALSE(VerifySigned(fields, wrong_root, In2017()));
  Trust production = TestTrust();
  production.cert_owner = std::string(kProductionCertOwner);
  auto owner = VerifySigned(fields, production, In2017());
  ASSERT_FALSE(owner);
  EXPECT_NE(owner.error().find("owner"), std::string::npos);
  // A certificate swapped for another CFCA test certificate (a merchant's) fails the signature.
  Fields swapped = fields;
  swapped["signPubKeyCert"] = Cert("omnipay__acp_test_enc.cer").Pem();
  Trust any_owner = TestTrust();
  EXPECT_FALSE(VerifySigned(swapped, any_owner, *ParseBeijingTime("20170601000000")));
  // signMethod must be 01.
  Fields method = fields;
  method["signMethod"] = "11";
  EXPECT_FALSE(VerifySigned(method, TestTrust(), In2017()));
}

TEST(UnionPayCodec, DerivedSigningVectorIsReproduced) {
  auto signer = LoadSigner(VectorPath("smartwalle__acp_test_sign.pfx"), "000000");
  ASSERT_TRUE(signer) << signer.error();
  EXPECT_EQ(signer.value().cert_id, "69903319369");
  Fields fields{
      {"version", "5.1.0"},
      {"encoding", "UTF-8"},
      {"txnType", "01"},
      {"txnSubType", "01"},
      {"bizType", "000201"},
      {"channelType", "07"},
      {"accessType", "0"},
      {"merId", "777290058165621"},
      {"orderId", "20261127000001"},
      {"txnTime", "20261127080000"},
      {"txnAmt", "100"},
      {"currencyCode", "156"},
      {"frontUrl", "http://127.0.0.1:8080/front"},
      {"backUrl", "http://127.0.0.1:8080/back"},
      {"payTimeout", "20261127081500"},
  };
  ASSERT_TRUE(Sign(signer.value(), fields));
  EXPECT_EQ(SignContent(fields),
            "accessType=0&backUrl=http://127.0.0.1:8080/back&bizType=000201&certId=69903319369&"
            "channelType=07&currencyCode=156&encoding=UTF-8&frontUrl=http://127.0.0.1:8080/front&"
            "merId=777290058165621&orderId=20261127000001&payTimeout=20261127081500&"
            "signMethod=01&txnAmt=100&txnSubType=01&txnTime=20261127080000&txnType=01&"
            "version=5.1.0");
  EXPECT_EQ(SignDigestHex(fields),
            "e774a5a4aa616906eccf811aec450157aa2830c84860809e98046ec47bc9cd05");
  EXPECT_EQ(
      fields.at("signature"),
      "ER4bsq8vxJ4YEAdsDnqrJoHy8CTE5MutSkUa+tbBmlovO3LukqRrH0CGYhzkpZKqs61CuhWup8pWIMi/"
      "nBfyY37zZYjlFk5FKgghc+Jsz0/n2VcZ9kGeKycJZS/NId80zD7+Q4aaYIOS7gRKalHT2NuOVECcXefB1wxFoVTt"
      "dfW+E/RzFtfLqrRlrti2NMsp0Xwgo9qfM2oD/UTv62BoUfXCragOz3ckPLUutgFMZNa9fikpX1Cq+"
      "JW89s1ZhpPkFNYpwfEBE2gjabOl6iEYJYMvzgz0MLeulvXnpcCKJOhzmH/2S+p2W3IjVV/"
      "oIwKke3XSZ1N0S16CqCaeQrqNoA==");
  // The simulator's side accepts it with the merchant's certificate, and refuses a change.
  EXPECT_TRUE(VerifyMerchantSigned(fields, signer.value().certificate));
  fields["txnAmt"] = "101";
  EXPECT_FALSE(VerifyMerchantSigned(fields, signer.value().certificate));
}

TEST(UnionPayCodec, OmnipayPfxCertIdIsDecimalSerial) {
  auto signer = LoadSigner(VectorPath("omnipay__acp_test_sign.pfx"), "000000");
  ASSERT_TRUE(signer) << signer.error();
  EXPECT_EQ(signer.value().cert_id, "68759663125");
  EXPECT_FALSE(LoadSigner(VectorPath("omnipay__acp_test_sign.pfx"), "000001"));
}

TEST(UnionPayCodec, SignAsUnionPayRoundTripsThroughTheReplyEncoding) {
  // The simulator signs with the old omnipay test certificate (CFCA TEST OCA1-issued).
  auto signer = LoadSigner(VectorPath("omnipay__acp_test_sign.pfx"), "000000");
  ASSERT_TRUE(signer);
  Fields fields = QueryFields("777290058165621", "payZabcZ1", "20170601120000");
  fields["respCode"] = "00";
  fields["tokenPayData"] = "{token=62&trId=1}";
  ASSERT_TRUE(SignAsUnionPay(signer.value(), fields));
  // Raw (unencoded) reply, as the gateway answers synchronously.
  auto parsed = ParseReply(BuildReply(fields));
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed.value(), fields);
  Trust trust = TestTrust();
  trust.cert_owner = "700000000000001:SIGN";
  const auto at = *ParseBeijingTime("20170601120000");
  EXPECT_TRUE(VerifySigned(parsed.value(), trust, at));
  // And through the notify encoding.
  auto form = ParseNotifyForm(BuildForm(fields));
  ASSERT_TRUE(form);
  EXPECT_TRUE(VerifySigned(form.value(), trust, at));
}

TEST(UnionPayCodec, ReplyParsingIsStrict) {
  auto nested = ParseReply("a=1&b={x=1&y={z=2}}&c=3");
  ASSERT_TRUE(nested);
  EXPECT_EQ(nested.value().at("b"), "{x=1&y={z=2}}");
  EXPECT_EQ(nested.value().at("c"), "3");
  EXPECT_FALSE(ParseReply("a=1&a=2"));
  EXPECT_FALSE(ParseReply("a=1&b"));
  EXPECT_FALSE(ParseReply("a={1&b=2"));
  EXPECT_FALSE(ParseReply("=1"));
  EXPECT_FALSE(ParseNotifyForm("a=1&a=1"));
  EXPECT_FALSE(ParseNotifyForm("a=%4"));
  // Values stay raw: '+' is not a space in a reply.
  EXPECT_EQ(ParseReply("k=a+b%2F").value().at("k"), "a+b%2F");
}

TEST(UnionPayCodec, OrderIdMappingIsReversibleAndBounded) {
  const std::string reference = "pay_abcdefghijklmnopqrstuvwx_12";
  auto order_id = OrderIdFor(reference);
  ASSERT_TRUE(order_id);
  EXPECT_EQ(*order_id, "payZabcdefghijklmnopqrstuvwxZ12");
  EXPECT_EQ(ReferenceFor(*order_id), reference);
  EXPECT_FALSE(OrderIdFor("short_1"));
  EXPECT_FALSE(OrderIdFor("pay-abcdefgh"));
  EXPECT_FALSE(OrderIdFor("PAY_abcdefgh"));
  EXPECT_FALSE(OrderIdFor(std::string(33, 'a')));
}

TEST(UnionPayCodec, BeijingTimeIsUtcPlusEight) {
  const auto t = Clock::from_time_t(1'764'230'400);  // 2025-11-27 08:00:00 UTC
  EXPECT_EQ(BeijingTime(t), "20251127160000");
  EXPECT_EQ(ParseBeijingTime("20251127160000"), t);
  EXPECT_FALSE(ParseBeijingTime("20250230120000"));
  EXPECT_FALSE(ParseBeijingTime("2025113012000"));
  EXPECT_FALSE(ParseBeijingTime("2025113012000x"));
}

TEST(UnionPayCodec, CodeClassesNeverDeclineTheUnknown) {
  EXPECT_EQ(ClassifyCode("00"), CodeClass::kSuccess);
  EXPECT_EQ(ClassifyCode("A6"), CodeClass::kSuccess);
  EXPECT_EQ(ClassifyCode("05"), CodeClass::kInProgress);
  EXPECT_EQ(ClassifyCode("64"), CodeClass::kRefused);
  for (const char* unclear : {"06", "12", "34", "42", "74", "75", "99", "ZZ", ""}) {
    EXPECT_EQ(ClassifyCode(unclear), CodeClass::kUnclear) << unclear;
  }
}

TEST(UnionPayCodec, ReplyOutcomes) {
  const ErrorCodeTable codes = DefaultErrorCodes();
  // App consume.
  auto app = AppConsumeOutcome({{"respCode", "00"}, {"tn", "795707271060389032008"}}, codes);
  EXPECT_EQ(app.outcome, Outcome::kPending);
  EXPECT_EQ(app.next_action_type, "unionpay_tn");
  EXPECT_EQ(app.next_action_value, "795707271060389032008");
  EXPECT_EQ(AppConsumeOutcome({{"respCode", "00"}}, codes).outcome, Outcome::kUnknown);
  auto refused = AppConsumeOutcome({{"respCode", "33"}, {"respMsg", "limit"}}, codes);
  EXPECT_EQ(refused.outcome, Outcome::kDeclined);
  EXPECT_EQ(refused.decline_code, "amount_limit_exceeded");
  EXPECT_EQ(refused.decline_message, "limit");
  EXPECT_EQ(AppConsumeOutcome({{"respCode", "12"}}, codes).outcome, Outcome::kUnknown);
  EXPECT_EQ(AppConsumeOutcome({{"respCode", "03"}}, codes).outcome, Outcome::kUnknown);

  // Query.
  Fields paid{{"respCode", "00"}, {"origRespCode", "00"}, {"txnType", "01"},
              {"txnAmt", "1234"}, {"queryId", "Q1"},      {"currencyCode", "156"}};
  auto succeeded = QueryOutcome(paid, "01", codes);
  EXPECT_EQ(succeeded.outcome, Outcome::kSucceeded);
  EXPECT_EQ(succeeded.amount_minor, 1234);
  EXPECT_EQ(succeeded.provider_transaction_id, "Q1");
  EXPECT_EQ(QueryOutcome(paid, "04", codes).outcome, Outcome::kUnknown);
  Fields in_progress = paid;
  in_progress["origRespCode"] = "05";
  EXPECT_EQ(QueryOutcome(in_progress, "01", codes).outcome, Outcome::kPending);
  Fields failed = paid;
  failed["origRespCode"] = "64";
  auto declined = QueryOutcome(failed, "01", codes);
  EXPECT_EQ(declined.outcome, Outcome::kDeclined);
  EXPECT_EQ(declined.decline_code, "insufficient_funds");
  Fields unmapped = paid;
  unmapped["origRespCode"] = "02";
  EXPECT_EQ(QueryOutcome(unmapped, "01", {}).decline_code, "unionpay_02");
  EXPECT_EQ(QueryOutcome({{"respCode", "34"}}, "01", codes).outcome, Outcome::kUnknown);
  Fields odd_amount = paid;
  odd_amount["txnAmt"] = "12.34";
  EXPECT_EQ(QueryOutcome(odd_amount, "01", codes).outcome, Outcome::kUnknown);
  Fields usd = paid;
  usd["currencyCode"] = "840";
  EXPECT_EQ(QueryOutcome(usd, "01", codes).outcome, Outcome::kUnknown);

  // Refund.
  auto accepted = RefundOutcome({{"respCode", "00"}, {"queryId", "R1"}, {"txnAmt", "5"}}, codes);
  EXPECT_EQ(accepted.outcome, Outcome::kPending);
  EXPECT_EQ(accepted.provider_transaction_id, "R1");
  EXPECT_EQ(RefundOutcome({{"respCode", "35"}}, codes).outcome, Outcome::kDeclined);
  EXPECT_EQ(RefundOutcome({{"respCode", "12"}}, codes).outcome, Outcome::kUnknown);
}

TEST(UnionPayCodec, EchoChecks) {
  Fields reply{{"merId", "M"}, {"orderId", "O"}, {"txnTime", "T"}};
  EXPECT_TRUE(CheckEcho(reply, "M", "O", "T"));
  EXPECT_FALSE(CheckEcho(reply, "X", "O", "T"));
  EXPECT_FALSE(CheckEcho(reply, "M", "X", "T"));
  EXPECT_FALSE(CheckEcho(reply, "M", "O", "X"));
}

TEST(UnionPayCodec, NotifyEvents) {
  const ErrorCodeTable codes = DefaultErrorCodes();
  Fields paid{{"merId", "M"},         {"txnType", "01"}, {"orderId", "payZabcdefghZ1"},
              {"respCode", "00"},     {"txnAmt", "100"}, {"queryId", "Q9"},
              {"currencyCode", "156"}};
  auto event = NotifyEvent(paid, "M", codes);
  ASSERT_TRUE(event) << event.error();
  EXPECT_EQ(event.value().kind, CallbackEvent::Kind::kPayment);
  EXPECT_EQ(event.value().reference, "pay_abcdefgh_1");
  EXPECT_EQ(event.value().result.outcome, Outcome::kSucceeded);
  EXPECT_EQ(event.value().result.amount_minor, 100);
  EXPECT_EQ(event.value().dedup_key, "unionpay:01:Q9:00");
  Fields refund = paid;
  refund["txnType"] = "04";
  refund["orderId"] = "reZabcdefgh";
  auto refund_event = NotifyEvent(refund, "M", codes);
  ASSERT_TRUE(refund_event);
  EXPECT_EQ(refund_event.value().kind, CallbackEvent::Kind::kRefund);
  EXPECT_EQ(refund_event.value().reference, "re_abcdefgh");
  EXPECT_FALSE(NotifyEvent(paid, "OTHER", codes));
  Fields token = paid;
  token["txnType"] = "79";
  EXPECT_FALSE(NotifyEvent(token, "M", codes));
  Fields unclear = paid;
  unclear["respCode"] = "99";
  EXPECT_FALSE(NotifyEvent(unclear, "M", codes));
  // The real vector is a token-open (txnType 79) message: it verifies but is no payment event.
  auto real = NotifyEvent(CallbackFields(), "777290058146592", codes);
  ASSERT_FALSE(real);
  EXPECT_NE(real.error().find("79"), std::string::npos);
}

TEST(UnionPayCodec, AutoPostFormRoundTrips) {
  Fields fields{{"backUrl", "https://a.example/cb?x=1&y=\"2\""},
                {"orderId", "payZ1234567"},
                {"signature", "ab+/=="}};
  const std::string html = AutoPostForm("https://gw.example/gateway/api/frontTransReq.do", fields);
  EXPECT_NE(html.find("document.forms[0].submit()"), std::string::npos);
  EXPECT_EQ(html.find("y=\"2\""), std::string::npos);  // escaped
  auto parsed = ParseAutoPostForm(html);
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed.value().first, "https://gw.example/gateway/api/frontTransReq.do");
  EXPECT_EQ(parsed.value().second, fields);
}

}  // namespace
}  // namespace paygate::adapters::unionpay
