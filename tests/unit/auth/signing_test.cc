// The signing rules of gateway/auth/signing.h: the exact bytes signed, the header's syntax, and
// the comparison's strictness.
#include "gateway/auth/signing.h"

#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace paygate::auth {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

constexpr std::string_view kSecret = "0123456789abcdef0123456789abcdef";

// Proves the string to sign is laid out as documented, with the body's SHA-256 in lower-case hex.
TEST(SigningTest, StringToSignLayout) {
  EXPECT_EQ(
      StringToSign("POST", "/v1/payments?x=1", 1700000000, "abcdefghijklmnop", R"({"amount":100})"),
      "POST\n/v1/payments?x=1\n1700000000\nabcdefghijklmnop\n"
      "4d4bbe59c6aad22442cde199a6a8a5f034405fcd78fb5a81c24ef249de1c45f1");
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// Proves the signature agrees with an independent implementation (openssl dgst -hmac), so a
// client in any language can follow the documented rules.
TEST(SigningTest, KnownAnswer) {
  const std::string header = SignRequest("k1", kSecret, "POST", "/v1/payments?x=1",
                                         R"({"amount":100})", 1700000000, "abcdefghijklmnop");
  EXPECT_EQ(header,
            "PAYGATE-HMAC-SHA256 KeyId=k1, Timestamp=1700000000, Nonce=abcdefghijklmnop, "
            "Signature=e81ae0575232af64cf85ab176384878aa11322cba1ac78ad4a999dcc49583328");
}

// Proves a signed header parses back into its fields and verifies, and that any change to the
// signed request, or another secret, fails verification.
TEST(SigningTest, RoundTripAndTamper) {
  const std::string header =
      SignRequest("key.1", kSecret, "POST", "/v1/x", "body", 1700000000, "nonce-nonce_12345");
  auto fields = ParseAuthorization(header);
  ASSERT_TRUE(fields) << fields.error();
  EXPECT_EQ(fields.value().key_id, "key.1");
  EXPECT_EQ(fields.value().timestamp, 1700000000);
  EXPECT_EQ(fields.value().nonce, "nonce-nonce_12345");
  auto to_sign = [&](std::string_view method, std::string_view target, std::int64_t ts,
                     std::string_view nonce, std::string_view body) {
    return StringToSign(method, target, ts, nonce, body);
  };
  const std::string& sig = fields.value().signature;
  EXPECT_TRUE(SignatureMatches(
      kSecret, to_sign("POST", "/v1/x", 1700000000, "nonce-nonce_12345", "body"), sig));
  EXPECT_FALSE(SignatureMatches(
      kSecret, to_sign("PUT", "/v1/x", 1700000000, "nonce-nonce_12345", "body"), sig));
  EXPECT_FALSE(SignatureMatches(
      kSecret, to_sign("POST", "/v1/y", 1700000000, "nonce-nonce_12345", "body"), sig));
  EXPECT_FALSE(SignatureMatches(
      kSecret, to_sign("POST", "/v1/x", 1700000001, "nonce-nonce_12345", "body"), sig));
  EXPECT_FALSE(SignatureMatches(
      kSecret, to_sign("POST", "/v1/x", 1700000000, "nonce-nonce_12346", "body"), sig));
  EXPECT_FALSE(SignatureMatches(
      kSecret, to_sign("POST", "/v1/x", 1700000000, "nonce-nonce_12345", "bodY"), sig));
  EXPECT_FALSE(SignatureMatches("another secret of thirty-two bytes",
                                to_sign("POST", "/v1/x", 1700000000, "nonce-nonce_12345", "body"),
                                sig));
}

// Proves the comparison accepts the hex in either case but nothing that is not exactly 64 hex
// digits of the right value.
TEST(SigningTest, SignatureComparisonIsStrict) {
  const std::string message = "m";
  const std::string good = HmacSha256Hex(kSecret, message);
  std::string upper = good;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(SignatureMatches(kSecret, message, good));
  EXPECT_TRUE(SignatureMatches(kSecret, message, upper));
  EXPECT_FALSE(SignatureMatches(kSecret, message, good.substr(0, 63)));
  EXPECT_FALSE(SignatureMatches(kSecret, message, good + "0"));
  EXPECT_FALSE(SignatureMatches(kSecret, message, ""));
  std::string last_flipped = good;
  last_flipped.back() = last_flipped.back() == '0' ? '1' : '0';
  EXPECT_FALSE(SignatureMatches(kSecret, message, last_flipped));
  std::string not_hex = good;
  not_hex[0] = 'g';
  EXPECT_FALSE(SignatureMatches(kSecret, message, not_hex));
}

// Proves parameters may come in any order with or without spaces, and every malformed header is
// refused with a reason.
TEST(SigningTest, ParseAuthorizationSyntax) {
  const std::string sig(64, 'a');
  auto ok = ParseAuthorization("PAYGATE-HMAC-SHA256 Signature=" + sig +
                               ",Nonce=0123456789abcdef,Timestamp=5,KeyId=k");
  ASSERT_TRUE(ok) << ok.error();
  EXPECT_EQ(ok.value().key_id, "k");
  EXPECT_EQ(ok.value().timestamp, 5);

  const std::string base = "KeyId=k, Timestamp=5, Nonce=0123456789abcdef, Signature=" + sig;
  struct Case {
    std::string header;
    std::string reason;
  };
  const Case cases[] = {
      {"Bearer abc", "scheme"},
      {"PAYGATE-HMAC-SHA256", "scheme"},
      {"paygate-hmac-sha256 " + base, "scheme"},
      {"PAYGATE-HMAC-SHA256 KeyId=k, Timestamp=5, Nonce=0123456789abcdef", "required"},
      {"PAYGATE-HMAC-SHA256 " + base + ", KeyId=k", "twice"},
      {"PAYGATE-HMAC-SHA256 " + base + ", Extra=1", "unknown parameter"},
      {"PAYGATE-HMAC-SHA256 " + base + ", junk", "Name=value"},
      {"PAYGATE-HMAC-SHA256 KeyId=k/1, Timestamp=5, Nonce=0123456789abcdef, Signature=" + sig,
       "KeyId"},
      {"PAYGATE-HMAC-SHA256 KeyId=k, Timestamp=-5, Nonce=0123456789abcdef, Signature=" + sig,
       "Timestamp"},
      {"PAYGATE-HMAC-SHA256 KeyId=k, Timestamp=5s, Nonce=0123456789abcdef, Signature=" + sig,
       "Timestamp"},
      {"PAYGATE-HMAC-SHA256 KeyId=k, Timestamp=5, Nonce=short, Signature=" + sig, "Nonce"},
      {"PAYGATE-HMAC-SHA256 KeyId=k, Timestamp=5, Nonce=" + std::string(65, 'n') +
           ", Signature=" + sig,
       "Nonce"},
      {"PAYGATE-HMAC-SHA256 KeyId=k, Timestamp=5, Nonce=0123456789abcde!, Signature=" + sig,
       "Nonce"},
      {"PAYGATE-HMAC-SHA256 KeyId=k, Timestamp=5, Nonce=0123456789abcdef, Signature=abc",
       "Signature"},
  };
  for (const Case& c : cases) {
    auto parsed = ParseAuthorization(c.header);
    ASSERT_FALSE(parsed) << c.header;
    EXPECT_THAT(parsed.error(), HasSubstr(c.reason)) << c.header;
  }
}

// Proves fresh nonces fit the accepted syntax and do not repeat.
TEST(SigningTest, RandomNoncesAreValidAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string nonce = RandomNonce();
    EXPECT_THAT(nonce, MatchesRegex("[A-Za-z0-9_-]{32}"));
    EXPECT_TRUE(seen.insert(nonce).second);
  }
  auto parsed = ParseAuthorization(SignRequestNow("k", kSecret, "GET", "/", ""));
  EXPECT_TRUE(parsed);
}

}  // namespace
}  // namespace paygate::auth
