// Alipay signatures against the official vectors: request signing (byte-exact signatures and form
// bodies), rsaCheckV1/V2 notify verification of real Alipay notifies, the real response signature
// over the raw "*_response" text, certificate SNs, and that any tampering fails verification.
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

// 2026-11-27 08:00:00 Beijing time.
const std::chrono::system_clock::time_point kVectorTime =
    std::chrono::system_clock::time_point(std::chrono::seconds(1795737600));

Credentials VectorApp() {
  return Credentials{"2021000122671080", AppKey(), AppPublicKey(), "", "", ""};
}

TEST(AlipaySigning, DerivedRequestVectorsSignByteForByte) {
  const auto vectors = NodeVectors();
  ASSERT_EQ(vectors.derived_request_sign_vectors().cases_size(), 3);
  const crypto::PrivateKey key = AppKey();
  for (const auto& vector : vectors.derived_request_sign_vectors().cases()) {
    const Params params = ToParams(vector.params());
    const auto content = RequestSignContent(params);
    ASSERT_TRUE(content);
    EXPECT_EQ(*content, vector.sign_content());
    // PKCS#1 v1.5 is deterministic: the signature itself must be identical.
    auto sign = SignContent(*content, key);
    ASSERT_TRUE(sign);
    EXPECT_EQ(sign.value(), vector.sign());
    EXPECT_TRUE(VerifyContent(*content, vector.sign(), AppPublicKey()));
  }
}

TEST(AlipaySigning, EveryKeyEncodingOfTheAppKeySignsTheSame) {
  const std::string content = "app_id=1&method=x&sign_type=RSA2";
  auto reference = SignContent(content, AppKey());
  ASSERT_TRUE(reference);
  for (const char* file : {"nodejs/app-private-key-pkcs8.pem", "nodejs/app-private-key-no-wrapper.pem",
                           "nodejs/app-private-key-pkcs8-no-wrapper.pem"}) {
    auto sign = SignContent(content, PrivateKeyFile(file));
    ASSERT_TRUE(sign) << file;
    EXPECT_EQ(sign.value(), reference.value()) << file;
  }
}

TEST(AlipaySigning, SignedCallsProduceTheVectorFormBodies) {
  const auto vectors = NodeVectors();
  const Credentials app = VectorApp();
  RefundRequest refund;
  refund.payment_reference = "POL2026112700000001";
  refund.refund_reference = "RF2026112700000001";
  refund.amount_minor = 12800;
  refund.currency = "CNY";
  refund.reason = "退保";
  auto refund_biz = EncodeRefund(refund);
  ASSERT_TRUE(refund_biz);
  const std::vector<std::pair<std::string_view, std::string>> calls = {
      {kMethodQuery, EncodeTradeRef("POL2026112700000001")},
      {kMethodRefund, refund_biz.value()},
      {kMethodBillUrl, EncodeBillUrl("trade", "2026-11-26")},
  };
  ASSERT_EQ(vectors.derived_request_sign_vectors().cases_size(), 3);
  for (std::size_t i = 0; i < calls.size(); ++i) {
    const auto& vector = vectors.derived_request_sign_vectors().cases(static_cast<int>(i));
    EXPECT_EQ(calls[i].second, vector.params().at("biz_content"));
    auto params = SignedCall(app, calls[i].first, calls[i].second, "", kVectorTime);
    ASSERT_TRUE(params);
    EXPECT_EQ(codec::BuildForm(params.value()), vector.form_body_utf8());
  }
}

TEST(AlipaySigning, RequestContentSkipsEmptyValuesAndOnlySign) {
  const Params params = {{"b", "2"}, {"a", "1"}, {"sign", "zzz"}, {"empty", ""}, {"sign_type", "RSA2"}};
  EXPECT_EQ(RequestSignContent(params), "a=1&b=2&sign_type=RSA2");
  // Notify V1 keeps empty values and drops sign_type; V2 keeps sign_type.
  EXPECT_EQ(NotifySignContentV1(params), "a=1&b=2&empty=");
  EXPECT_EQ(NotifySignContentV2(params), "a=1&b=2&empty=&sign_type=RSA2");
  // A name given twice is ambiguous, whichever rule.
  const Params twice = {{"a", "1"}, {"a", "2"}};
  EXPECT_FALSE(RequestSignContent(twice));
  EXPECT_FALSE(NotifySignContentV1(twice));
  EXPECT_FALSE(NotifySignContentV2(twice));
}

TEST(AlipaySigning, SignRequestRoundTripsAndDetectsTampering) {
  Params params = {{"app_id", "2021000122671080"}, {"method", "alipay.trade.query"},
                   {"sign_type", "RSA2"}, {"biz_content", R"({"out_trade_no":"o1"})"}};
  ASSERT_TRUE(SignRequest(params, AppKey()));
  EXPECT_TRUE(VerifyRequest(params, AppPublicKey()));
  EXPECT_FALSE(VerifyRequest(params, FakeAlipayPublicKey()));
  Params tampered = params;
  tampered[3].second = R"({"out_trade_no":"o2"})";
  EXPECT_FALSE(VerifyRequest(tampered, AppPublicKey()));
  // Signing twice is a bug, not a second signature.
  EXPECT_FALSE(SignRequest(params, AppKey()));
}

TEST(AlipaySigning, JavaRsaCheckV2Vectors) {
  const auto vectors = JavaVectors();
  ASSERT_EQ(vectors.rsacheckv2_vectors_size(), 3);
  const crypto::PublicKey key = CertFile("java-all/appCertPublicKey_2021003126695331.crt").Key();
  for (const auto& vector : vectors.rsacheckv2_vectors()) {
    Params params = ToParams(vector.params());
    params.emplace_back("sign", vector.sign());
    EXPECT_EQ(NotifySignContentV2(params), vector.sign_content());
    EXPECT_TRUE(VerifyNotifyV2(params, key)) << vector.alg();
    EXPECT_EQ(VerifyNotify(params, key), NotifyRule::kV2);
    // The algorithm follows sign_type: an RSA (SHA-1) signature presented as RSA2 fails, and the
    // other way round.
    for (auto& [name, value] : params) {
      if (name == "sign_type") value = value == "RSA" ? "RSA2" : "RSA";
    }
    EXPECT_FALSE(VerifyNotify(params, key)) << vector.alg();
  }
}

const paygate::tests::alipay::NotifyVector& Notify(const paygate::tests::alipay::NodeVectors& v,
                                                   int index) {
  return v.notify_vectors(index);
}

crypto::PublicKey TradeNotifyKey() {
  return PublicKeyFile("nodejs/alipay_public_key_for_trade_notify_2019073166072302.b64");
}

TEST(AlipaySigning, RealTradeNotifyVerifiesOnlyWithoutSignType) {
  const auto vectors = NodeVectors();
  const auto& vector = Notify(vectors, 0);
  const Params params = ToParams(vector.params());
  EXPECT_EQ(NotifySignContentV1(params), vector.expected_sign_content());
  const crypto::PublicKey key = TradeNotifyKey();
  EXPECT_TRUE(VerifyNotifyV1(params, key));
  EXPECT_FALSE(VerifyNotifyV2(params, key));
  EXPECT_EQ(VerifyNotify(params, key), NotifyRule::kV1);
  // The key of the fixtures is not this app's key.
  EXPECT_FALSE(VerifyNotify(params, PublicKeyFile("nodejs/alipay-notify-sign-public-key-v1.pem")));
}

TEST(AlipaySigning, ServicemarketNotifyVerifiesOnlyWithSignType) {
  const auto vectors = NodeVectors();
  const auto& vector = Notify(vectors, 1);
  Params params = ToParams(vector.params());
  EXPECT_EQ(NotifySignContentV2(params), vector.expected_sign_content());
  const crypto::PublicKey key = PublicKeyFile("nodejs/alipay-notify-sign-public-key-v2.pem");
  EXPECT_TRUE(VerifyNotifyV2(params, key));
  EXPECT_FALSE(VerifyNotifyV1(params, key));
  EXPECT_EQ(VerifyNotify(params, key), NotifyRule::kV2);
  for (auto& [name, value] : params) {
    if (name == "service_code") value = "58621634111";
  }
  EXPECT_FALSE(VerifyNotify(params, key));
}

TEST(AlipaySigning, NotifyOfAnotherAppFails) {
  const auto vectors = NodeVectors();
  const auto& vector = Notify(vectors, 2);
  ASSERT_TRUE(vector.expected().has_bool_value());
  EXPECT_FALSE(vector.expected().bool_value());
  EXPECT_FALSE(VerifyNotify(ToParams(vector.params()), TradeNotifyKey()));
}

TEST(AlipaySigning, RealNotifyFormVerifiesAndAnyByteMutationFails) {
  const std::string body =
      ReadVector("nodejs/notify_trade_success_2019081500222155624068450559358070.form");
  const crypto::PublicKey key = TradeNotifyKey();
  auto form = codec::ParseForm(body);
  ASSERT_TRUE(form);
  ASSERT_EQ(VerifyNotify(*form, key), NotifyRule::kV1);
  std::size_t checked = 0;
  for (std::size_t i = 0; i < body.size(); ++i) {
    std::string mutated = body;
    mutated[i] = static_cast<char>(mutated[i] ^ 0x01);
    auto parsed = codec::ParseForm(mutated);
    if (!parsed) continue;  // Not even a form: refused earlier.
    EXPECT_FALSE(VerifyNotify(*parsed, key)) << "byte " << i << " of the notify form";
    ++checked;
  }
  EXPECT_GT(checked, body.size() / 2);
}

TEST(AlipaySigning, EveryNotifyValueIsCovered) {
  const auto vectors = NodeVectors();
  const Params params = ToParams(Notify(vectors, 0).params());
  const crypto::PublicKey key = TradeNotifyKey();
  for (std::size_t i = 0; i < params.size(); ++i) {
    // sign_type is not signed by V1 but picks the algorithm: changing it must fail too.
    Params mutated = params;
    std::string& value = mutated[i].second;
    ASSERT_FALSE(value.empty());
    value[value.size() / 2] = static_cast<char>(value[value.size() / 2] ^ 0x02);
    EXPECT_FALSE(VerifyNotify(mutated, key)) << params[i].first;
    // An added parameter is signed content too.
    Params added = params;
    added.emplace_back("zz_extra", "1");
    EXPECT_FALSE(VerifyNotify(added, key));
  }
}

TEST(AlipaySigning, RealResponseSignatureOverRawResponseText) {
  const auto vectors = NodeVectors();
  ASSERT_EQ(vectors.response_sign_vectors_size(), 1);
  const auto& vector = vectors.response_sign_vectors(0);
  auto parts = SplitResponse(vector.raw_response(), vector.response_key());
  ASSERT_TRUE(parts) << parts.error().message;
  EXPECT_EQ(parts.value().source, vector.signed_content());
  EXPECT_FALSE(parts.value().error_response);
  for (const char* file : {"nodejs/alipay-public-key.pem", "nodejs/alipay-public-key-no-wrapper.pem"}) {
    EXPECT_TRUE(VerifyContent(parts.value().source, parts.value().sign, PublicKeyFile(file)));
  }
  // One changed byte of the signed text, or the wrong key, fails.
  std::string changed(parts.value().source);
  changed[changed.find("10000")] = '2';
  EXPECT_FALSE(VerifyContent(changed, parts.value().sign, PublicKeyFile("nodejs/alipay-public-key.pem")));
  EXPECT_FALSE(VerifyContent(parts.value().source, parts.value().sign, AppPublicKey()));
  EXPECT_EQ(ResponseKey("alipay.open.file.upload"), vector.response_key());
}

TEST(AlipaySigning, JavaExtractionVectors) {
  const auto vectors = JavaVectors();
  ASSERT_EQ(vectors.response_sign_source_extraction_vectors_size(), 3);
  for (const auto& vector : vectors.response_sign_source_extraction_vectors()) {
    auto parts = SplitResponse(vector.response(), "alipay_trade_create_response");
    ASSERT_TRUE(parts) << vector.note() << ": " << parts.error().message;
    EXPECT_EQ(parts.value().source, vector.expected_signed_source()) << vector.note();
  }
}

// Extraction cases beyond the three published ones: what a naive "find the key, then the first
// brace" reader gets wrong.
TEST(AlipaySigning, ExtractionEdgeCases) {
  const std::string key = "alipay_trade_query_response";
  struct Case {
    std::string body;
    std::string source;
  };
  const std::vector<Case> cases = {
      // Signature first, response after it.
      {R"({"sign":"abc","alipay_trade_query_response":{"code":"10000"}})", R"({"code":"10000"})"},
      // Escaped quotes and backslashes inside strings.
      {R"({"alipay_trade_query_response":{"msg":"a\"}b\\","x":"\\\""},"sign":"s"})",
       R"({"msg":"a\"}b\\","x":"\\\""})"},
      // The key's own name as a string value elsewhere, before the real member.
      {R"({"note":"alipay_trade_query_response","alipay_trade_query_response":{"code":"1"},"sign":"s"})",
       R"({"code":"1"})"},
      // Whitespace around tokens is not part of the signed text.
      {"{ \"alipay_trade_query_response\" : {\"a\": [1, {\"b\": \"]\"}]} ,\n \"sign\" : \"s\" }",
       R"({"a": [1, {"b": "]"}]})"},
      // Unicode escapes and raw UTF-8 stay as sent.
      {R"({"alipay_trade_query_response":{"s":"\u4e2d中"},"sign":"s"})", R"({"s":"\u4e2d中"})"},
      // A nested object of the same name is not the top-level member.
      {R"({"x":{"alipay_trade_query_response":{"wrong":1}},"alipay_trade_query_response":{"right":1},"sign":"s"})",
       R"({"right":1})"},
  };
  for (const auto& c : cases) {
    auto parts = SplitResponse(c.body, key);
    ASSERT_TRUE(parts) << c.body << ": " << parts.error().message;
    EXPECT_EQ(parts.value().source, c.source) << c.body;
  }
  // The signature is unescaped ("\/" is "/").
  auto escaped = SplitResponse(R"({"alipay_trade_query_response":{},"sign":"a\/b+c="})", key);
  ASSERT_TRUE(escaped);
  EXPECT_EQ(escaped.value().sign, "a/b+c=");
  // Gateway errors come under error_response.
  auto error = SplitResponse(R"({"error_response":{"code":"40002"},"sign":"s"})", key);
  ASSERT_TRUE(error);
  EXPECT_TRUE(error.value().error_response);
  EXPECT_EQ(error.value().source, R"({"code":"40002"})");
  // Refused: no such member, a repeated member, trailing bytes, unbalanced nesting, not JSON.
  for (const std::string& bad : std::vector<std::string>{
           R"({"other_response":{},"sign":"s"})",
        R"({"alipay_trade_query_response":{"a":1},"alipay_trade_query_response":{"a":2},"sign":"s"})",
        R"({"alipay_trade_query_response":{},"sign":"s"}x)",
        R"({"alipay_trade_query_response":{"a":[1}},"sign":"s"})",
        R"({"alipay_trade_query_response":{"a":"1},"sign":"s"})", std::string("not json")}) {
    EXPECT_FALSE(SplitResponse(bad, key)) << bad;
  }
}

TEST(AlipaySigning, CertificateSerialNumbersMatchTheVectors) {
  const auto vectors = NodeVectors();
  const auto& expected = vectors.cert_sn_vectors();
  EXPECT_EQ(CertSn(CertFile("nodejs/appCertPublicKey_2021001161683774.crt")),
            expected.at("appCertPublicKey_2021001161683774.crt"));
  EXPECT_EQ(CertSn(CertFile("nodejs/alipayCertPublicKey_RSA2.crt")),
            expected.at("alipayCertPublicKey_RSA2.crt"));
  auto root = RootCertSn(ReadVector("nodejs/alipayRootCert.crt"));
  ASSERT_TRUE(root) << root.error().message;
  EXPECT_EQ(root.value(), expected.at("alipayRootCert.crt"));
  // A bundle without RSA roots has no root SN.
  EXPECT_FALSE(RootCertSn("not a bundle"));
}

}  // namespace
}  // namespace paygate::adapters::alipay
