// WeChat Pay v3 signing, verification and AEAD against every VERIFIED vector (Go, Java and official
// documentation), the derived fixtures, and tampering of each part of a signed callback.
#include "adapters/wechatpay/signing.h"

#include <gtest/gtest.h>

#include "adapters/common/codec.h"
#include "adapters/wechatpay/mapper.h"
#include "tests/unit/wechatpay/vectors.h"

namespace paygate::adapters::wechatpay {
namespace {

using testing::ReadJsonVector;
using testing::ReadVector;
using testing::Str;

std::chrono::system_clock::time_point At(std::int64_t unix_seconds) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(unix_seconds));
}

crypto::PrivateKey Key(const std::string& file) {
  auto key = crypto::PrivateKey::FromPem(ReadVector(file));
  EXPECT_TRUE(key) << file;
  return std::move(key).value();
}

crypto::Certificate Cert(const std::string& file) {
  auto cert = crypto::Certificate::Parse(ReadVector(file));
  EXPECT_TRUE(cert) << file;
  return std::move(cert).value();
}

std::string SignB64(const crypto::PrivateKey& key, std::string_view message) {
  auto sig = key.Sign(crypto::Digest::kSha256, message);
  EXPECT_TRUE(sig);
  return codec::Base64Encode(sig.value());
}

TEST(WechatSigning, GoSignatureVectorSignsAndVerifiesWithCertAndPublicKey) {
  const auto v = ReadJsonVector("go/vectors.json");
  const std::string expected = Str(v, {"signature_vectors", "0", "expected_signature"});
  const auto key = Key("go/merchant_private_key_pkcs8.pem");
  EXPECT_EQ(SignB64(key, "source"), expected);

  const auto cert = Cert("go/platform_cert_F5765756002FDD77.pem");
  EXPECT_EQ(cert.SerialHex(), "F5765756002FDD77");
  auto pub = crypto::PublicKey::FromPem(ReadVector("go/public_key.pem"));
  ASSERT_TRUE(pub);
  const std::string raw = *codec::Base64Decode(expected);
  EXPECT_TRUE(cert.Key().Verify(crypto::Digest::kSha256, "source", raw));
  EXPECT_TRUE(pub.value().Verify(crypto::Digest::kSha256, "source", raw));
  EXPECT_FALSE(pub.value().Verify(crypto::Digest::kSha256, "sourcE", raw));
}

TEST(WechatSigning, GoAuthorizationHeaderShape) {
  const auto v = ReadJsonVector("go/vectors.json");
  for (const char* i : {"0", "1"}) {
    const std::string method = Str(v, {"authorization_header_vectors", i, "method"});
    const std::string url = Str(v, {"authorization_header_vectors", i, "canonical_url"});
    const std::string body = Str(v, {"authorization_header_vectors", i, "body"});
    const std::string nonce = Str(v, {"authorization_header_vectors", i, "nonce"});
    const auto ts = static_cast<std::int64_t>(
        testing::At(v, {"authorization_header_vectors", i, "timestamp"}).number_value());
    // The Go test's mock signer returns "Sign:" + message under algorithm "Mock".
    const std::string header =
        AuthorizationValue("WECHATPAY2-Mock", Str(v, {"authorization_header_vectors", i, "mchid"}),
                           nonce, ts, Str(v, {"authorization_header_vectors", i, "serial_no"}),
                           "Sign:" + RequestMessage(method, url, ts, nonce, body));
    EXPECT_EQ(header, Str(v, {"authorization_header_vectors", i, "expected"})) << i;
  }
}

TEST(WechatSigning, GoAes128GcmVectorAndItsNegatives) {
  const auto v = ReadJsonVector("go/vectors.json");
  const std::string key = Str(v, {"aes_gcm_vectors", "0", "key"});
  const std::string nonce = Str(v, {"aes_gcm_vectors", "0", "nonce"});
  const std::string aad = Str(v, {"aes_gcm_vectors", "0", "associated_data"});
  const std::string ct = Str(v, {"aes_gcm_vectors", "0", "ciphertext_b64"});
  auto plain = DecryptResource(key, nonce, aad, ct);
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ(plain.value(), "Hello World");
  EXPECT_FALSE(
      DecryptResource(Str(v, {"aes_gcm_vectors", "0", "negative", "wrong_key"}), nonce, aad, ct));
  EXPECT_FALSE(DecryptResource(key, nonce, aad,
                               Str(v, {"aes_gcm_vectors", "0", "negative", "bad_ciphertext_b64"})));
  EXPECT_FALSE(DecryptResource(key, nonce, aad + "x", ct));
}

TEST(WechatSigning, GoCertificateSerialVector) {
  EXPECT_EQ(Cert("go/tenpay_cert_serial_0C4AEF34B89340881BB2B25226393DC2E47F094B.pem").SerialHex(),
            "0C4AEF34B89340881BB2B25226393DC2E47F094B");
}

// The Go SDK's full callback: platform-certificate serial, signature, AES-128 resource.
TEST(WechatSigning, GoNotifyVectorVerifiesAndDecrypts) {
  const auto v = ReadJsonVector("go/notify_vector.json");
  Verifiers verifiers;
  verifiers.Add(Cert("go/platform_cert_D7CE59D1F522D701.pem"));
  CallbackRequest request;
  for (const char* name : {"Wechatpay-Nonce", "Wechatpay-Timestamp", "Wechatpay-Serial",
                           "Wechatpay-Signature", "Content-Type"}) {
    std::string lower(name);
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    request.headers.emplace_back(lower, Str(v, {"headers", name}));
  }
  request.body = ReadVector("go/notify_body.json");
  const std::string key = Str(v, {"apiv3_key"});
  auto notice = OpenNotification(verifiers, key, request, At(1624523846));
  ASSERT_TRUE(notice) << notice.error().message;
  EXPECT_EQ(notice.value().plaintext, ReadVector("go/notify_expected_plaintext.json"));
  EXPECT_EQ(notice.value().event_type, "PAYSCORE.USER_OPEN_SERVICE");
  EXPECT_EQ(notice.value().id, "3119dfba-e649-5eec-ab1e-3412bc4d2e17");
  // Not a payment or refund: the payment-callback reader refuses it after verifying.
  EXPECT_FALSE(ReadCallback(verifiers, key, "1234567890", request, At(1624523846)));
}

TEST(WechatSigning, JavaAes256GcmEncryptIsExactAndDecrypts) {
  const auto v = ReadJsonVector("java/vectors.json");
  const std::string key = Str(v, {"aes_256_gcm_vectors", "0", "key"});
  const std::string nonce = Str(v, {"aes_256_gcm_vectors", "0", "nonce"});
  const std::string aad = Str(v, {"aes_256_gcm_vectors", "0", "associated_data"});
  auto sealed = EncryptResource(key, nonce, aad, "message");
  ASSERT_TRUE(sealed);
  EXPECT_EQ(sealed.value(), Str(v, {"aes_256_gcm_vectors", "0", "ciphertext_b64"}));
  auto plain = DecryptResource(key, nonce, aad, sealed.value());
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain.value(), "message");
}

TEST(WechatSigning, JavaPlatformCertificateDownloadDecrypts) {
  const auto v = ReadJsonVector("java/vectors.json");
  auto certs = ReadCertificatesReply(
      ReadVector("java/download_certificates_response_real_aes256.json"), Str(v, {"apiv3_key"}));
  ASSERT_TRUE(certs) << certs.error().message;
  ASSERT_EQ(certs.value().size(), 1u);
  EXPECT_EQ(certs.value()[0].SerialHex(), "5DEA10EF55877E3CF6C33255C2E7DEFFF7E427EC");
  auto expected = crypto::Certificate::Parse(
      ReadVector("java/platform_cert_5DEA10EF55877E3CF6C33255C2E7DEFFF7E427EC_decrypted.pem"));
  ASSERT_TRUE(expected);
  EXPECT_EQ(certs.value()[0].Pem(), expected.value().Pem());
  // The wrong APIv3 key decrypts nothing.
  EXPECT_FALSE(
      ReadCertificatesReply(ReadVector("java/download_certificates_response_real_aes256.json"),
                            "b7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb"));
}

TEST(WechatSigning, JavaRsaSignatureVectorAndWrongKey) {
  const auto v = ReadJsonVector("java/vectors.json");
  const std::string expected = Str(v, {"rsa_signature_vectors", "0", "expected_signature"});
  EXPECT_EQ(SignB64(Key("java/merchant_private_key.pem"), "message"), expected);
  const auto cert = Cert("java/merchant_certificate.pem");
  EXPECT_EQ(cert.SerialHex(), Str(v, {"merchant", "serial_no"}));
  const std::string raw = *codec::Base64Decode(expected);
  EXPECT_TRUE(cert.Key().Verify(crypto::Digest::kSha256, "message", raw));
  auto wechat = crypto::PublicKey::FromPem(ReadVector("java/wechat_pay_public_key.pem"));
  ASSERT_TRUE(wechat);
  EXPECT_FALSE(wechat.value().Verify(crypto::Digest::kSha256, "message", raw));
  EXPECT_EQ(Cert("java/wechat_pay_certificate.pem").SerialHex(),
            Str(v, {"wechatpay_platform", "serial_no"}));
}

TEST(WechatSigning, JavaCanonicalUrlMessage) {
  const auto v = ReadJsonVector("java/vectors.json");
  EXPECT_EQ(
      RequestMessage("GET", "/v3/pay/transactions/id/1217752501201407033233368018?mchid=1230000109",
                     1652750623, Str(v, {"canonical_url_vector", "nonce"}), ""),
      Str(v, {"canonical_url_vector", "expected_message"}));
}

TEST(WechatSigning, OfficialDocRequestAndClientPaySignatures) {
  const auto v = ReadJsonVector("official-doc/vectors.json");
  const auto key = Key("official-doc/doc_test_private_key_pkcs8.pem");
  // POST jsapi: the message built from its parts, then signed.
  const std::string body = Str(v, {"vectors", "0", "body"});
  const std::string message = RequestMessage("POST", "/v3/pay/transactions/jsapi", 1554208460,
                                             "593BEC0C930BF1AFEB40B4A08C8FB242", body);
  EXPECT_EQ(message, Str(v, {"vectors", "0", "message"}));
  MerchantKey merchant{"1900007291", "SERIAL", key};
  auto header = SignRequest(merchant, "POST", "/v3/pay/transactions/jsapi", 1554208460,
                            "593BEC0C930BF1AFEB40B4A08C8FB242", body);
  ASSERT_TRUE(header);
  EXPECT_EQ(
      header.value(),
      AuthorizationValue(kAuthScheme, "1900007291", "593BEC0C930BF1AFEB40B4A08C8FB242", 1554208460,
                         "SERIAL", Str(v, {"vectors", "0", "expected_signature"})));
  // GET with an empty body (derived): the final empty line is part of the message.
  EXPECT_EQ(SignB64(key, RequestMessage("GET", "/v3/certificates", 1554208460,
                                        "593BEC0C930BF1AFEB40B4A08C8FB242", "")),
            Str(v, {"vectors", "1", "expected_signature"}));
  // JSAPI paySign and APP sign, through the client-parameter builders.
  auto jsapi =
      JsapiPayParams(key, "wx2421b1c4370ec43b", 1554208460, "593BEC0C930BF1AFEB40B4A08C8FB242",
                     "wx201410272009395522657a690389285100");
  ASSERT_TRUE(jsapi);
  EXPECT_EQ(PaySignMessage("wx2421b1c4370ec43b", "1554208460", "593BEC0C930BF1AFEB40B4A08C8FB242",
                           "prepay_id=wx201410272009395522657a690389285100"),
            Str(v, {"vectors", "2", "message"}));
  EXPECT_EQ(jsapi.value(),
            std::string(R"({"appId":"wx2421b1c4370ec43b","timeStamp":"1554208460",)"
                        R"("nonceStr":"593BEC0C930BF1AFEB40B4A08C8FB242",)"
                        R"("package":"prepay_id=wx201410272009395522657a690389285100",)"
                        R"("signType":"RSA","paySign":")") +
                Str(v, {"vectors", "2", "expected_signature"}) + "\"}");
  auto app =
      AppPayParams(key, "wx2421b1c4370ec43b", "1900007291", 1554208460,
                   "593BEC0C930BF1AFEB40B4A08C8FB242", "wx201410272009395522657a690389285100");
  ASSERT_TRUE(app);
  EXPECT_NE(app.value().find("\"sign\":\"" + Str(v, {"vectors", "3", "expected_signature"}) + "\""),
            std::string::npos)
      << app.value();
  EXPECT_NE(app.value().find(R"("package":"Sign=WXPay")"), std::string::npos);
}

TEST(WechatSigning, OfficialDocRealResponseSignatureVerifies) {
  const auto v = ReadJsonVector("official-doc/vectors.json");
  auto pub = crypto::PublicKey::FromPem(ReadVector("official-doc/response_verify_public_key.pem"));
  ASSERT_TRUE(pub);
  Verifiers verifiers;
  verifiers.Add("PUB_KEY_ID_0000000000000024101100397200000006", pub.value());
  const std::string ts = Str(v, {"vectors", "4", "headers", "Wechatpay-Timestamp"});
  const std::string nonce = Str(v, {"vectors", "4", "headers", "Wechatpay-Nonce"});
  const std::string sig = Str(v, {"vectors", "4", "headers", "Wechatpay-Signature"});
  const std::string body = Str(v, {"vectors", "4", "body"});
  EXPECT_EQ(ResponseMessage(ts, nonce, body), Str(v, {"vectors", "4", "message"}));
  SignedHeaders headers{ts, nonce, sig, "PUB_KEY_ID_0000000000000024101100397200000006"};
  EXPECT_TRUE(VerifySigned(verifiers, headers, body, At(1722850421 + 10)));
  // Outside the window (now is years later) the same reply is refused.
  EXPECT_FALSE(VerifySigned(verifiers, headers, body, At(1722850421 + 300)));
  EXPECT_FALSE(VerifySigned(verifiers, headers, body + " ", At(1722850421)));
}

TEST(WechatSigning, DerivedRequestSignaturesAndAuthorization) {
  const auto v = ReadJsonVector("derived/vectors.json");
  MerchantKey merchant{"1234567891", "5F1C72E2A8931B72A2E13AF8DEE92471EB397115",
                       Key("java/merchant_private_key.pem")};
  for (const char* i : {"0", "1"}) {
    const std::string method = Str(v, {"request_signatures", i, "method"});
    const std::string url = Str(v, {"request_signatures", i, "url"});
    const std::string nonce = Str(v, {"request_signatures", i, "nonce"});
    const std::string body = Str(v, {"request_signatures", i, "body"});
    const std::int64_t ts = std::stoll(Str(v, {"request_signatures", i, "timestamp"}));
    EXPECT_EQ(RequestMessage(method, url, ts, nonce, body),
              Str(v, {"request_signatures", i, "message"}));
    auto header = SignRequest(merchant, method, url, ts, nonce, body);
    ASSERT_TRUE(header);
    EXPECT_NE(header.value().find(Str(v, {"request_signatures", i, "signature"})),
              std::string::npos);
  }
  auto header =
      SignRequest(merchant, "POST", "/v3/pay/transactions/jsapi", 1795737600,
                  "593BEC0C930BF1AFEB40B4A08C8FB242", Str(v, {"request_signatures", "0", "body"}));
  EXPECT_EQ(header.value(), Str(v, {"request_signatures", "0", "authorization"}));
}

// The derived TRANSACTION.SUCCESS callback: accepted as is, refused after any single-byte change.
class DerivedCallback : public ::testing::Test {
 protected:
  void SetUp() override {
    v_ = ReadJsonVector("derived/vectors.json");
    verifiers_.Add(Cert("java/wechat_pay_certificate.pem"));
    for (const char* name : {"Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Serial",
                             "Wechatpay-Signature", "Wechatpay-Signature-Type", "Content-Type"}) {
      std::string lower(name);
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      request_.headers.emplace_back(lower, Str(v_, {"payment_notify", "headers", name}));
    }
    request_.body = ReadVector("derived/notify_transaction_success_body.json");
    request_.merchant_account = "acct";
  }
  Result<CallbackEvent, std::string> Read(const CallbackRequest& request,
                                          std::int64_t now = 1795737606) const {
    return ReadCallback(verifiers_, "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb", "1234567891", request,
                        At(now));
  }
  std::string& Header(CallbackRequest& request, std::string_view name) {
    for (auto& [key, value] : request.headers) {
      if (key == name) return value;
    }
    throw std::runtime_error("no header");
  }

  google::protobuf::Struct v_;
  Verifiers verifiers_;
  CallbackRequest request_;
};

TEST_F(DerivedCallback, VerifiesDecryptsAndMaps) {
  auto event = Read(request_);
  ASSERT_TRUE(event) << event.error();
  EXPECT_EQ(event.value().kind, CallbackEvent::Kind::kPayment);
  EXPECT_EQ(event.value().reference, "POL2026112700000001");
  EXPECT_EQ(event.value().dedup_key, "EV-2018022511223320873");
  EXPECT_EQ(event.value().result.outcome, Outcome::kSucceeded);
  EXPECT_EQ(event.value().result.amount_minor, 12800);
  EXPECT_EQ(event.value().result.provider_transaction_id, "4200001234202611270000000001");
  auto notice =
      OpenNotification(verifiers_, "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb", request_, At(1795737606));
  ASSERT_TRUE(notice);
  EXPECT_EQ(notice.value().plaintext,
            ReadVector("derived/notify_transaction_success_plaintext.json"));
}

TEST_F(DerivedCallback, EveryBodyByteMatters) {
  for (std::size_t i = 0; i < request_.body.size(); ++i) {
    CallbackRequest tampered = request_;
    tampered.body[i] = static_cast<char>(tampered.body[i] ^ 0x01);
    EXPECT_FALSE(Read(tampered)) << "body byte " << i;
  }
}

TEST_F(DerivedCallback, EverySignatureTimestampNonceAndSerialByteMatters) {
  for (std::string_view name : {kSignatureHeader, kTimestampHeader, kNonceHeader, kSerialHeader}) {
    const std::string original = Header(request_, name);
    for (std::size_t i = 0; i < original.size(); ++i) {
      CallbackRequest tampered = request_;
      std::string& value = Header(tampered, name);
      // A different character of the same class keeps Base64 and digits well-formed.
      value[i] = value[i] == 'A' ? 'B' : 'A';
      EXPECT_FALSE(Read(tampered)) << name << " byte " << i;
    }
  }
}

TEST_F(DerivedCallback, MissingHeadersProbesWindowAndKeys) {
  for (std::string_view name : {kSignatureHeader, kTimestampHeader, kNonceHeader, kSerialHeader}) {
    CallbackRequest missing = request_;
    std::erase_if(missing.headers, [&](const auto& h) { return h.first == name; });
    EXPECT_FALSE(Read(missing)) << name;
  }
  CallbackRequest probe = request_;
  Header(probe, kSignatureHeader) = "WECHATPAY/SIGNTEST/" + Header(probe, kSignatureHeader);
  auto refused = Read(probe);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().find("SIGNTEST"), std::string::npos);
  // 300 s window: 299 s either way passes, 300 s does not.
  EXPECT_TRUE(Read(request_, 1795737606 + 299));
  EXPECT_TRUE(Read(request_, 1795737606 - 299));
  EXPECT_FALSE(Read(request_, 1795737606 + 300));
  EXPECT_FALSE(Read(request_, 1795737606 - 300));
  // Another mchid, another APIv3 key, no verifier for the serial.
  EXPECT_FALSE(ReadCallback(verifiers_, "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb", "1900000000", request_,
                            At(1795737606)));
  EXPECT_FALSE(ReadCallback(verifiers_, "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gc", "1234567891", request_,
                            At(1795737606)));
  EXPECT_FALSE(ReadCallback(Verifiers{}, "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb", "1234567891", request_,
                            At(1795737606)));
  // Signed by the merchant key instead of WeChat Pay's: refused.
  Verifiers wrong;
  wrong.Add("440024045C4A427599D09BB4E3DE0279F2E813FD",
            Cert("java/merchant_certificate.pem").Key());
  EXPECT_FALSE(ReadCallback(wrong, "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb", "1234567891", request_,
                            At(1795737606)));
}

TEST(WechatSigning, SensitiveFieldOaepRoundTrip) {
  const auto wechat_key = Key("java/wechat_pay_private_key.pem");
  auto sealed = EncryptSensitive(wechat_key.Public(), "张三");
  ASSERT_TRUE(sealed);
  auto opened = wechat_key.DecryptOaep(*codec::Base64Decode(sealed.value()));
  ASSERT_TRUE(opened);
  EXPECT_EQ(opened.value(), "张三");
  // OAEP is randomised: two encryptions differ.
  EXPECT_NE(EncryptSensitive(wechat_key.Public(), "张三").value(), sealed.value());
}

TEST(WechatSigning, NonceAndTimeFormats) {
  const std::string a = NewNonce();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, NewNonce());
  for (char c : a) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'));
  EXPECT_EQ(Rfc3339China(At(1795737606)), "2026-11-27T08:00:06+08:00");
}

}  // namespace
}  // namespace paygate::adapters::wechatpay
