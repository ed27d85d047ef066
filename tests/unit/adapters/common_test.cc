// The shared provider primitives against published vectors (tests/vectors/providers): Base64 and
// forms, exact decimals, RSA signatures, certificates, PKCS#12 and AES-GCM.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "adapters/common/archive.h"
#include "adapters/common/codec.h"
#include "adapters/common/crypto.h"
#include "adapters/common/money.h"

namespace paygate::adapters {
namespace {

std::string VectorPath(const std::string& relative) {
  const char* root = std::getenv("PAYGATE_SOURCE_DIR");
  return std::string(root != nullptr ? root : ".") + "/tests/vectors/providers/" + relative;
}

std::string ReadVector(const std::string& relative) {
  std::ifstream in(VectorPath(relative), std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

TEST(Codec, Base64RoundTripsAndRejectsGarbage) {
  EXPECT_EQ(codec::Base64Encode(""), "");
  EXPECT_EQ(codec::Base64Encode("f"), "Zg==");
  EXPECT_EQ(codec::Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(codec::Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(codec::Base64Decode("Zg==").value(), "f");
  EXPECT_EQ(codec::Base64Decode("Zm8=").value(), "fo");
  EXPECT_EQ(codec::Base64Decode("Zm9v\r\nYmFy").value(), "foobar");
  const std::string binary("\x00\xff\x10\x80", 4);
  EXPECT_EQ(codec::Base64Decode(codec::Base64Encode(binary)).value(), binary);
  EXPECT_FALSE(codec::Base64Decode("Zm9").has_value());
  EXPECT_FALSE(codec::Base64Decode("Z=9v").has_value());
  EXPECT_FALSE(codec::Base64Decode("Zm9!").has_value());
  EXPECT_FALSE(codec::Base64Decode("Zh==").has_value());  // "f" with non-zero padding bits
  EXPECT_FALSE(codec::Base64Decode("Zm9=").has_value());
}

TEST(Codec, FormsDecodeAndEncodeLikeBrowsers) {
  EXPECT_EQ(codec::FormEncode("a b&c=d/中"), "a+b%26c%3Dd%2F%E4%B8%AD");
  EXPECT_EQ(codec::FormDecode("a+b%26c%3dd").value(), "a b&c=d");
  EXPECT_FALSE(codec::FormDecode("%4").has_value());
  EXPECT_FALSE(codec::FormDecode("%zz").has_value());
  const auto fields = codec::ParseForm("b=2&a=x+y&empty=&flag").value();
  ASSERT_EQ(fields.size(), 4u);
  EXPECT_EQ(fields[0].first, "b");
  EXPECT_EQ(codec::FindField(fields, "a").value(), "x y");
  EXPECT_EQ(codec::FindField(fields, "empty").value(), "");
  EXPECT_EQ(codec::FindField(fields, "flag").value(), "");
  EXPECT_FALSE(codec::FindField(fields, "missing").has_value());
  EXPECT_EQ(codec::ParseForm(codec::BuildForm(fields)).value(), fields);
  EXPECT_EQ(codec::HexUpper("\x0c\xab"), "0CAB");
}

TEST(Money, ParsesExactDecimals) {
  EXPECT_EQ(money::ParseDecimal("12.34").value(), 1234);
  EXPECT_EQ(money::ParseDecimal("0.1").value(), 10);
  EXPECT_EQ(money::ParseDecimal("45.0").value(), 4500);
  EXPECT_EQ(money::ParseDecimal("7").value(), 700);
  EXPECT_EQ(money::ParseDecimal("-0.04").value(), -4);
  EXPECT_EQ(money::ParseDecimal("0.00000").value(), 0);
  EXPECT_EQ(money::ParseDecimal("45", 0).value(), 45);
  for (const char* bad : {"", "-", ".", "1.", ".5", "1.234", "1e3", " 1", "1,00", "1.2.3", "--1",
                          "99999999999999999999"}) {
    EXPECT_FALSE(money::ParseDecimal(bad).has_value()) << bad;
  }
}

TEST(Money, FormatsMinorUnits) {
  EXPECT_EQ(money::FormatDecimal(1234), "12.34");
  EXPECT_EQ(money::FormatDecimal(1), "0.01");
  EXPECT_EQ(money::FormatDecimal(0), "0.00");
  EXPECT_EQ(money::FormatDecimal(-4), "-0.04");
  EXPECT_EQ(money::FormatDecimal(500, 0), "500");
  EXPECT_EQ(money::ParseInteger("1234").value(), 1234);
  EXPECT_FALSE(money::ParseInteger("12.0").has_value());
  EXPECT_FALSE(money::ParseInteger("+1").has_value());
  EXPECT_FALSE(money::ParseInteger("").has_value());
}

// wechatpay-go utils/sign_test.go: SHA256withRSA("source") with its test key.
TEST(Crypto, RsaSignatureMatchesWechatGoVector) {
  const auto key = crypto::PrivateKey::FromPemFile(VectorPath("wechatpay/go/merchant_private_key_pkcs8.pem"));
  ASSERT_TRUE(key) << key.error().message;
  const auto signature = key.value().Sign(crypto::Digest::kSha256, "source");
  ASSERT_TRUE(signature) << signature.error().message;
  const std::string expected =
      "BKyAfU4iMCuvXMXS0Wzam3V/cnxZ+JaqigPM5OhljS2iOT95OO6Fsuml2JkFANJU9K6q9bLlDhPXuoVz+pp4hAm6pHU4ld"
      "815U4jsKu1RkyaII+1CYBUYC8TK0XtJ8FwUXXz8vZHh58rrAVN1XwNyvD1vfpxrMT4SL536GLwvpUHlCqIMzoZUguLli/K"
      "8V29QiOhuH6IEqLNJn8e9b3nwNcQ7be3CzYGpDAKBfDGPCqCv8Rw5zndhlffk2FEA70G4hvMwe51qMN/RAJbknXG23bSl"
      "ObuTCN7Ndj1aJGH6/L+hdwfLpUtJm4QYVazzW7DFD27EpSQEqA8bX9+8m1rLg==";
  EXPECT_EQ(codec::Base64Encode(signature.value()), expected);

  const auto cert = crypto::Certificate::FromFile(VectorPath("wechatpay/go/platform_cert_F5765756002FDD77.pem"));
  ASSERT_TRUE(cert) << cert.error().message;
  EXPECT_EQ(cert.value().SerialHex(), "F5765756002FDD77");
  EXPECT_TRUE(cert.value().Key().Verify(crypto::Digest::kSha256, "source", signature.value()));
  EXPECT_FALSE(cert.value().Key().Verify(crypto::Digest::kSha256, "sourcE", signature.value()));
  EXPECT_FALSE(cert.value().Key().Verify(crypto::Digest::kSha1, "source", signature.value()));
  const auto public_key = crypto::PublicKey::FromPemFile(VectorPath("wechatpay/go/public_key.pem"));
  ASSERT_TRUE(public_key) << public_key.error().message;
  EXPECT_TRUE(public_key.value().Verify(crypto::Digest::kSha256, "source", signature.value()));
  std::string flipped = signature.value();
  flipped[10] = static_cast<char>(flipped[10] ^ 1);
  EXPECT_FALSE(public_key.value().Verify(crypto::Digest::kSha256, "source", flipped));
  EXPECT_FALSE(public_key.value().Verify(crypto::Digest::kSha256, "source", "short"));
}

TEST(Crypto, CertificateSerialKeepsLeadingZeroNibble) {
  const auto cert = crypto::Certificate::FromFile(
      VectorPath("wechatpay/go/tenpay_cert_serial_0C4AEF34B89340881BB2B25226393DC2E47F094B.pem"));
  ASSERT_TRUE(cert) << cert.error().message;
  // wechatpay-go utils/pem_test.go: the first byte 0x0C keeps its leading zero digit.
  EXPECT_EQ(cert.value().SerialHex(), "0C4AEF34B89340881BB2B25226393DC2E47F094B");
}

TEST(Crypto, BareBase64KeysLoad) {
  const auto key = crypto::PrivateKey::FromPem(ReadVector("alipay/nodejs/app-private-key-no-wrapper.pem"));
  ASSERT_TRUE(key) << key.error().message;
  const auto public_key =
      crypto::PublicKey::FromPem(ReadVector("alipay/nodejs/app-public-key-no-wrapper.pem"));
  ASSERT_TRUE(public_key) << public_key.error().message;
  const auto signature = key.value().Sign(crypto::Digest::kSha256, "a=1&b=2").value();
  EXPECT_TRUE(public_key.value().Verify(crypto::Digest::kSha256, "a=1&b=2", signature));
  EXPECT_TRUE(key.value().Public().Verify(crypto::Digest::kSha256, "a=1&b=2", signature));
}

TEST(Crypto, OaepRoundTrips) {
  const auto key = crypto::PrivateKey::FromPemFile(VectorPath("wechatpay/java/wechat_pay_private_key.pem")).value();
  const auto cert = crypto::Certificate::FromFile(VectorPath("wechatpay/java/wechat_pay_certificate.pem")).value();
  const auto sealed = cert.Key().EncryptOaep("张三").value();
  EXPECT_EQ(key.DecryptOaep(sealed).value(), "张三");
  std::string broken = sealed;
  broken[5] = static_cast<char>(broken[5] ^ 0x40);
  EXPECT_FALSE(key.DecryptOaep(broken));
}

// wechatpay-java AeadAesCipherTest (AES-256) and wechatpay-go utils/aes_test.go (AES-128).
TEST(Crypto, AesGcmVectors) {
  const auto sealed = crypto::AesGcmEncrypt("a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb", "uluk4a9R25RW",
                                            "associatedData", "message");
  ASSERT_TRUE(sealed) << sealed.error().message;
  EXPECT_EQ(codec::Base64Encode(sealed.value()), "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI=");
  EXPECT_EQ(crypto::AesGcmDecrypt("a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb", "uluk4a9R25RW",
                                  "associatedData", sealed.value())
                .value(),
            "message");

  const auto go_ct = codec::Base64Decode("FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC").value();
  EXPECT_EQ(crypto::AesGcmDecrypt("testAPIv3Key0000", "wCq51qZv4Yfg",
                                  "Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8", go_ct)
                .value(),
            "Hello World");
  EXPECT_FALSE(crypto::AesGcmDecrypt("testAPIv3Key1111", "wCq51qZv4Yfg",
                                     "Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8", go_ct));
  EXPECT_FALSE(crypto::AesGcmDecrypt("testAPIv3Key0000", "wCq51qZv4Yfg", "other aad", go_ct));
  EXPECT_FALSE(crypto::AesGcmDecrypt("testAPIv3Key0000", "wCq51qZv4Yfg",
                                     "Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8",
                                     codec::Base64Decode("SGVsbG8gV29ybGQK").value()));
  EXPECT_FALSE(crypto::AesGcmDecrypt("short", "n", "", go_ct));
}

TEST(Crypto, Pkcs12AndUnionPayChain) {
  const auto store = crypto::ReadPkcs12File(VectorPath("unionpay/smartwalle__acp_test_sign.pfx"), "000000");
  ASSERT_TRUE(store) << store.error().message;
  EXPECT_EQ(store.value().certificate.SerialDecimal(), "69903319369");
  EXPECT_FALSE(crypto::ReadPkcs12File(VectorPath("unionpay/smartwalle__acp_test_sign.pfx"), "wrong"));

  const auto leaf = crypto::Certificate::FromFile(VectorPath("unionpay/callback_signPubKeyCert.pem")).value();
  const auto middle = crypto::Certificate::FromFile(VectorPath("unionpay/smartwalle__acp_test_middle.cer")).value();
  const auto root = crypto::Certificate::FromFile(VectorPath("unionpay/smartwalle__acp_test_root.cer")).value();
  // Inside the leaf's validity period the chain holds; without the middle it cannot be built.
  const auto at = leaf.NotBefore() + std::chrono::hours(24);
  const auto chained = leaf.VerifyChain({middle}, {root}, at);
  EXPECT_TRUE(chained) << chained.error().message;
  EXPECT_FALSE(leaf.VerifyChain({}, {root}, at));
  EXPECT_FALSE(leaf.VerifyChain({middle}, {root}, leaf.NotAfter() + std::chrono::hours(24)));
  EXPECT_FALSE(middle.VerifyChain({}, {leaf}, at));
}

TEST(Archive, GzipAndZlibRoundTripWithinTheirBound) {
  const std::string bill = "\xEF\xBB\xBF交易时间,公众账号ID\r\n`2019-02-19,`wx\r\n";
  const std::string gz = archive::Gzip(bill);
  EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);  // gzip magic
  EXPECT_EQ(archive::Gunzip(gz).value(), bill);
  EXPECT_EQ(archive::ZlibInflate(archive::ZlibDeflate(bill)).value(), bill);
  EXPECT_FALSE(archive::Gunzip(archive::ZlibDeflate(bill)));      // the wrong wrapper
  EXPECT_FALSE(archive::Gunzip(gz.substr(0, gz.size() - 3)));    // truncated
  EXPECT_FALSE(archive::Gunzip(gz + "x"));                       // trailing bytes
  std::string corrupt = gz;
  corrupt[gz.size() / 2] = static_cast<char>(corrupt[gz.size() / 2] ^ 0x55);
  EXPECT_FALSE(archive::Gunzip(corrupt));
  // A small bomb: 10 MB of zeros compresses to a few KB, and must not inflate past the bound.
  const std::string bomb = archive::Gzip(std::string(10'000'000, '\0'));
  EXPECT_LT(bomb.size(), 20'000u);
  EXPECT_FALSE(archive::Gunzip(bomb, 1'000'000));
  EXPECT_EQ(archive::Gunzip(bomb).value().size(), 10'000'000u);
}

// Inflated as the compressed bytes arrive, in pieces of any size, a gzip stream gives exactly what
// Gunzip gives, each piece at most 64 KiB; truncation shows at Finish, trailing bytes, corruption
// and the bound at Feed, and a consumer that stops stops the stream.
TEST(Archive, InflateStreamMatchesGunzipWhateverThePieces) {
  std::string bill;
  for (int i = 0; i < 20000; ++i) bill += fmt::format("`2026-03-10 00:00:{:02},`wx{},`{}\r\n", i % 60, i, i * 7);
  const std::string gz = archive::Gzip(bill);
  ASSERT_GT(bill.size(), 3u * 64 * 1024);
  for (const std::size_t piece : {std::size_t{1}, std::size_t{7}, std::size_t{4096}, gz.size()}) {
    archive::InflateStream stream(archive::InflateStream::Wrapper::kGzip);
    std::string out;
    std::size_t largest = 0;
    for (std::size_t at = 0; at < gz.size(); at += piece) {
      auto fed = stream.Feed(std::string_view(gz).substr(at, piece), [&](std::string_view p) {
        largest = std::max(largest, p.size());
        out.append(p);
        return true;
      });
      ASSERT_TRUE(fed) << fed.error().message << " at " << at << " in pieces of " << piece;
    }
    EXPECT_TRUE(stream.Finish());
    EXPECT_EQ(out, bill) << "pieces of " << piece;
    EXPECT_LE(largest, 64u * 1024);
  }
  auto keep = [](std::string_view) { return true; };
  {
    archive::InflateStream stream(archive::InflateStream::Wrapper::kGzip);
    ASSERT_TRUE(stream.Feed(std::string_view(gz).substr(0, gz.size() - 3), keep));
    EXPECT_FALSE(stream.Finish());  // truncated
  }
  {
    archive::InflateStream stream(archive::InflateStream::Wrapper::kGzip);
    EXPECT_FALSE(stream.Feed(gz + "x", keep));  // trailing bytes in the same piece
  }
  {
    archive::InflateStream stream(archive::InflateStream::Wrapper::kGzip);
    ASSERT_TRUE(stream.Feed(gz, keep));
    EXPECT_FALSE(stream.Feed("x", keep));  // trailing bytes in a later piece
  }
  {
    std::string corrupt = gz;
    corrupt[gz.size() / 2] = static_cast<char>(corrupt[gz.size() / 2] ^ 0x55);
    archive::InflateStream stream(archive::InflateStream::Wrapper::kGzip);
    auto fed = stream.Feed(corrupt, keep);
    EXPECT_TRUE(!fed || !stream.Finish());
  }
  {
    archive::InflateStream stream(archive::InflateStream::Wrapper::kGzip, 100'000);
    EXPECT_FALSE(stream.Feed(gz, keep));  // past the bound
  }
  {
    archive::InflateStream stream(archive::InflateStream::Wrapper::kGzip);
    int calls = 0;
    auto fed = stream.Feed(gz, [&](std::string_view) { return ++calls < 2; });
    ASSERT_FALSE(fed);
    EXPECT_EQ(fed.error().message, "");
    EXPECT_EQ(calls, 2);
  }
  {
    archive::InflateStream stream(archive::InflateStream::Wrapper::kZlib);
    std::string out;
    ASSERT_TRUE(stream.Feed(archive::ZlibDeflate(bill), [&](std::string_view p) {
      out.append(p);
      return true;
    }));
    EXPECT_TRUE(stream.Finish());
    EXPECT_EQ(out, bill);
  }
}

TEST(Archive, ZipRoundTripsRawNamesAndRefusesCorruption) {
  // Alipay stores GBK file names without the UTF-8 flag: bytes must come back as stored.
  const std::string gbk_name = "2088_20190916_\xd2\xb5\xce\xf1\xc3\xf7\xcf\xb8.csv";
  const std::vector<archive::ZipEntry> entries = {{gbk_name, std::string(5000, 'a') + "b"},
                                                  {"summary.csv", "#total 1\n"}};
  const auto zipped = archive::WriteZip(entries);
  ASSERT_TRUE(zipped) << zipped.error().message;
  const auto read = archive::ReadZip(zipped.value());
  ASSERT_TRUE(read) << read.error().message;
  ASSERT_EQ(read.value().size(), 2u);
  EXPECT_EQ(read.value()[0].name, gbk_name);
  EXPECT_EQ(read.value()[0].data, entries[0].data);
  EXPECT_EQ(read.value()[1].data, "#total 1\n");
  EXPECT_FALSE(archive::ReadZip(zipped.value(), 100));
  EXPECT_FALSE(archive::ReadZip("PK\x03\x04 not really a zip"));
  // Flip one byte inside the first entry's compressed data: the CRC (or inflate) must catch it.
  std::string corrupt = zipped.value();
  corrupt[60] = static_cast<char>(corrupt[60] ^ 0x01);
  EXPECT_FALSE(archive::ReadZip(corrupt));
}

}  // namespace
}  // namespace paygate::adapters
