// keys/digest.h: the SHA-256 / HMAC-SHA256 / hex primitives every signature in paygate relies on,
// against published vectors (FIPS 180-2 and RFC 4231).
#include <gtest/gtest.h>

#include "keys/digest.h"

namespace paygate::keys {
namespace {

TEST(DigestTest, Sha256OfAbcIsTheFipsVector) {
  EXPECT_EQ(ToHex(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(DigestTest, HmacSha256MatchesRfc4231TestCase2) {
  EXPECT_EQ(ToHex(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(DigestTest, HexRoundTripsAndRefusesMalformedInput) {
  const Sha256Digest digest = HmacSha256("key", "message");
  const std::string hex = ToHex(digest);
  ASSERT_EQ(hex.size(), 64u);
  ASSERT_TRUE(DigestFromHex(hex));
  EXPECT_TRUE(DigestsEqual(*DigestFromHex(hex), digest));
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(DigestFromHex(upper));
  EXPECT_FALSE(DigestFromHex(hex.substr(1)));
  EXPECT_FALSE(DigestFromHex(hex + "0"));
  EXPECT_FALSE(DigestFromHex(std::string(63, '0') + "g"));
  Sha256Digest other = digest;
  other[31] ^= 1;
  EXPECT_FALSE(DigestsEqual(digest, other));
}

}  // namespace
}  // namespace paygate::keys
