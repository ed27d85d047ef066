// The request fingerprint and key syntax behind Idempotency-Key (gateway/idempotency/).
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "gateway/idempotency/idempotency_store.h"
#include "gateway/idempotency/with_idempotency.h"

namespace paygate::idempotency {
namespace {

// Proves the fingerprint is a SHA-256 that changes with each of method, target, Content-Type and
// body, and that moving bytes between fields changes it (the fields are length-prefixed).
TEST(FingerprintTest, EveryPartCounts) {
  const std::string base = RequestFingerprint("POST", "/v1/payments", "application/json", "{}");
  EXPECT_EQ(base.size(), 32u);
  EXPECT_EQ(base, RequestFingerprint("POST", "/v1/payments", "application/json", "{}"));
  std::set<std::string> all = {
      base,
      RequestFingerprint("PUT", "/v1/payments", "application/json", "{}"),
      RequestFingerprint("POST", "/v1/payments?x", "application/json", "{}"),
      RequestFingerprint("POST", "/v1/payments", "application/x-protobuf", "{}"),
      RequestFingerprint("POST", "/v1/payments", "application/json", "{ }"),
      RequestFingerprint("POST", "/v1/payments", "application/json", ""),
      // Same concatenation, different split.
      RequestFingerprint("POST", "/v1/payments", "application/json{", "}"),
      RequestFingerprint("POST", "/v1/payment", "sapplication/json", "{}"),
  };
  EXPECT_EQ(all.size(), 8u);
}

// Proves keys are 1 to 255 visible ASCII characters.
TEST(FingerprintTest, KeySyntax) {
  EXPECT_TRUE(IsValidKey("a"));
  EXPECT_TRUE(IsValidKey("8e03978e-40d5-43e8-bc93-6894a57f9324"));
  EXPECT_TRUE(IsValidKey(std::string(255, '~')));
  EXPECT_FALSE(IsValidKey(""));
  EXPECT_FALSE(IsValidKey(std::string(256, 'k')));
  EXPECT_FALSE(IsValidKey("with space"));
  EXPECT_FALSE(IsValidKey("tab\t"));
  EXPECT_FALSE(IsValidKey("caf\xc3\xa9"));
}

}  // namespace
}  // namespace paygate::idempotency
