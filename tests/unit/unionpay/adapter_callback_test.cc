// The adapter's callback path on the real vector: the raw URL-encoded body as it arrived verifies
// through UnionPay's chain (its txnType 79, a token-open message, is then refused as no payment
// event, not as a bad signature); a one-byte change of the raw body is refused as untrusted.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "adapters/unionpay/unionpay_adapter.h"

namespace paygate::adapters::unionpay {
namespace {

std::string VectorPath(const std::string& name) {
  const char* source = std::getenv("PAYGATE_SOURCE_DIR");
  return std::string(source != nullptr ? source : ".") + "/tests/vectors/providers/unionpay/" +
         name;
}

std::unique_ptr<UnionPayAdapter> Adapter(const std::string& mer_id, const std::string& owner) {
  UnionPayOptions options;
  options.base_url = "https://gateway.test.95516.com";
  options.merchant_account = "m1";
  options.mer_id = mer_id;
  options.sign_pfx_file = VectorPath("smartwalle__acp_test_sign.pfx");
  options.sign_pfx_password = keys::Secret(std::string_view("000000"));
  options.root_cert_file = VectorPath("smartwalle__acp_test_root.cer");
  options.middle_cert_file = VectorPath("smartwalle__acp_test_middle.cer");
  options.cert_owner = owner;
  options.cert_clock = [] { return *ParseBeijingTime("20171030223623"); };
  auto adapter = UnionPayAdapter::Create(std::move(options));
  EXPECT_TRUE(adapter) << (adapter ? "" : adapter.error());
  return adapter ? std::move(adapter).value() : nullptr;
}

CallbackRequest VectorCallback() {
  std::ifstream in(VectorPath("callback_WtzCompleteFrontOpen_5.1.0.form"), std::ios::binary);
  std::stringstream body;
  body << in.rdbuf();
  CallbackRequest request;
  request.merchant_account = "m1";
  request.headers = {{"content-type", "application/x-www-form-urlencoded"}};
  request.body = body.str();
  return request;
}

TEST(UnionPayAdapterCallback, RealVectorVerifiesThenIsNoPaymentEvent) {
  auto adapter = Adapter("777290058146592", "00040000:SIGN");
  ASSERT_NE(adapter, nullptr);
  auto event = adapter->VerifyCallback(VectorCallback());
  ASSERT_FALSE(event);
  EXPECT_NE(event.error().find("unsupported txnType 79"), std::string::npos) << event.error();
}

TEST(UnionPayAdapterCallback, RawBodyMutationsAreUntrusted) {
  auto adapter = Adapter("777290058146592", "00040000:SIGN");
  ASSERT_NE(adapter, nullptr);
  const CallbackRequest original = VectorCallback();
  // Every 7th byte of the raw body, replaced by a byte that decodes differently.
  for (std::size_t pos = 0; pos < original.body.size(); pos += 7) {
    CallbackRequest mutated = original;
    char& c = mutated.body[pos];
    if (c == '&' || c == '=' || c == '%') continue;  // structure: covered by the parser tests
    c = c == '0' ? '1' : '0';
    auto event = adapter->VerifyCallback(mutated);
    ASSERT_FALSE(event) << pos;
    EXPECT_EQ(event.error().find("unsupported txnType"), std::string::npos)
        << "mutation at " << pos << " still verified";
  }
}

TEST(UnionPayAdapterCallback, ProductionOwnerRefusesTheTestCertificate) {
  auto adapter = Adapter("777290058146592", std::string(kProductionCertOwner));
  ASSERT_NE(adapter, nullptr);
  auto event = adapter->VerifyCallback(VectorCallback());
  ASSERT_FALSE(event);
  EXPECT_NE(event.error().find("not trusted"), std::string::npos) << event.error();
}

TEST(UnionPayAdapterCallback, AnotherMerIdOrAccountIsRefused) {
  auto adapter = Adapter("777290058165621", "00040000:SIGN");
  ASSERT_NE(adapter, nullptr);
  auto other_mer = adapter->VerifyCallback(VectorCallback());
  ASSERT_FALSE(other_mer);
  EXPECT_NE(other_mer.error().find("another merId"), std::string::npos) << other_mer.error();
  CallbackRequest other_account = VectorCallback();
  other_account.merchant_account = "m2";
  EXPECT_FALSE(adapter->VerifyCallback(other_account));
}

TEST(UnionPayAdapterCallback, CreateRefusesMissingKeysAndCertificates) {
  UnionPayOptions options;
  options.base_url = "https://gateway.test.95516.com";
  options.merchant_account = "m1";
  options.mer_id = "777290058165621";
  options.sign_pfx_file = VectorPath("smartwalle__acp_test_sign.pfx");
  options.sign_pfx_password = keys::Secret(std::string_view("wrong"));
  options.root_cert_file = VectorPath("smartwalle__acp_test_root.cer");
  options.middle_cert_file = VectorPath("smartwalle__acp_test_middle.cer");
  EXPECT_FALSE(UnionPayAdapter::Create(std::move(options)));
  UnionPayOptions no_url;
  EXPECT_FALSE(UnionPayAdapter::Create(std::move(no_url)));
}

}  // namespace
}  // namespace paygate::adapters::unionpay
