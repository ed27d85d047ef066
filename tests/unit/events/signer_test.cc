// Webhook signatures: the header the dispatcher sends matches HMAC-SHA256 values computed outside
// this code (RFC 4231 and the openssl CLI), carries one v1 per secret in order, and the verify
// helper accepts either secret of a rotation while refusing tampering, staleness and junk.
#include "gateway/events/signer.h"

#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace paygate::events {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kBody = R"({"id":"evt_abc","type":"payment.succeeded"})";
// printf '%s' '1700000000.<kBody>' | openssl dgst -sha256 -hmac whsec_current (and whsec_previous)
constexpr std::string_view kCurrentHex =
    "57cfa076369824b0aeb478bf361b16933a8c1a868fd3311858cb4c7a6618e299";
constexpr std::string_view kPreviousHex =
    "ec99ef6c86335a9e9bf8710f5a33a42dfdaac915385c7bec2b82454b47d47eb0";

std::vector<keys::Secret> Secrets(std::initializer_list<std::string_view> values) {
  std::vector<keys::Secret> secrets;
  for (auto v : values) secrets.emplace_back(v);
  return secrets;
}

TEST(HmacSha256Hex, MatchesRfc4231TestCase2) {
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacSha256Hex, MatchesOpensslCliComputedNow) {
  // Independent of any constant in this file: the CLI computes the expected value at test time.
  FILE* pipe = popen("printf '%s' 'paygate webhook' | openssl dgst -sha256 -hmac 's3cr3t' -r", "r");
  ASSERT_NE(pipe, nullptr);
  char buffer[256] = {};
  const std::size_t n = fread(buffer, 1, sizeof(buffer) - 1, pipe);
  ASSERT_EQ(pclose(pipe), 0);
  const std::string cli(buffer, n);
  ASSERT_GE(cli.size(), 64u);
  EXPECT_EQ(HmacSha256Hex("s3cr3t", "paygate webhook"), cli.substr(0, 64));
}

TEST(SignatureHeader, OneSecret) {
  const auto secrets = Secrets({"whsec_current"});
  EXPECT_EQ(SignatureHeader(secrets, 1700000000, kBody),
            "t=1700000000,v1=" + std::string(kCurrentHex));
}

TEST(SignatureHeader, TwoSecretsDuringRotationFirstSecretFirst) {
  const auto secrets = Secrets({"whsec_current", "whsec_previous"});
  EXPECT_EQ(SignatureHeader(secrets, 1700000000, kBody),
            "t=1700000000,v1=" + std::string(kCurrentHex) + ",v1=" + std::string(kPreviousHex));
}

TEST(SignatureHeader, TimestampIsSigned) {
  const auto secrets = Secrets({"whsec_current"});
  EXPECT_NE(SignatureHeader(secrets, 1700000001, kBody).substr(14),
            SignatureHeader(secrets, 1700000000, kBody).substr(14));
}

class VerifyTest : public ::testing::Test {
 protected:
  VerifyResult Verify(std::string_view header, std::string_view body,
                      std::vector<std::string_view> secrets, std::int64_t now = 1700000000) {
    return VerifySignatureHeader(header, body, secrets, now, 300s);
  }
  std::string rotation_header_ =
      SignatureHeader(Secrets({"whsec_current", "whsec_previous"}), 1700000000, kBody);
};

TEST_F(VerifyTest, EitherSecretOfARotationVerifies) {
  EXPECT_TRUE(Verify(rotation_header_, kBody, {"whsec_current"}));
  EXPECT_TRUE(Verify(rotation_header_, kBody, {"whsec_previous"}));
  EXPECT_TRUE(Verify(rotation_header_, kBody, {"other", "whsec_previous"}));
}

TEST_F(VerifyTest, WrongSecretOrTamperedBodyIsNoMatch) {
  auto wrong = Verify(rotation_header_, kBody, {"whsec_other"});
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error(), VerifyError::kNoMatch);
  auto tampered =
      Verify(rotation_header_, R"({"id":"evt_abc","type":"payment.failed"})", {"whsec_current"});
  ASSERT_FALSE(tampered);
  EXPECT_EQ(tampered.error(), VerifyError::kNoMatch);
  // Moving the timestamp invalidates the signature (it is part of the signed bytes).
  std::string moved = rotation_header_;
  moved.replace(2, 10, "1700000005");
  auto replayed = Verify(moved, kBody, {"whsec_current"});
  ASSERT_FALSE(replayed);
  EXPECT_EQ(replayed.error(), VerifyError::kNoMatch);
}

TEST_F(VerifyTest, ToleranceWindowBothWays) {
  EXPECT_TRUE(Verify(rotation_header_, kBody, {"whsec_current"}, 1700000300));
  EXPECT_TRUE(Verify(rotation_header_, kBody, {"whsec_current"}, 1699999700));
  auto late = Verify(rotation_header_, kBody, {"whsec_current"}, 1700000301);
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error(), VerifyError::kOutsideTolerance);
  auto early = Verify(rotation_header_, kBody, {"whsec_current"}, 1699999699);
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error(), VerifyError::kOutsideTolerance);
}

TEST_F(VerifyTest, MalformedHeaders) {
  const std::string v1 = "v1=" + std::string(kCurrentHex);
  for (const std::string& header :
       {std::string(""), v1, std::string("t=1700000000"), "t=abc," + v1, "t=," + v1,
        "t=1700000000,t=1700000000," + v1, "t=1700000000,v1=" + std::string(kCurrentHex.substr(2)),
        "t=1700000000,v1=zz" + std::string(kCurrentHex.substr(2)), "t=1700000000,garbage," + v1,
        "t=-5," + v1}) {
    auto verified = Verify(header, kBody, {"whsec_current"});
    ASSERT_FALSE(verified) << header;
    EXPECT_EQ(verified.error(), VerifyError::kMalformed) << header;
  }
}

TEST_F(VerifyTest, UnknownSchemesAndSpacesAndUpperCaseHexAreAccepted) {
  std::string upper(kCurrentHex);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(Verify("t=1700000000, v0=deadbeef, v1=" + upper, kBody, {"whsec_current"}));
}

}  // namespace
}  // namespace paygate::events
