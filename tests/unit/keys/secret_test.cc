#include "keys/secret.h"

#include <sstream>
#include <string>
#include <type_traits>
#include <utility>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "keys/errc.h"

namespace paygate::keys {
namespace {

static_assert(!std::is_copy_constructible_v<Secret>, "a Secret must exist in one place");
static_assert(!std::is_copy_assignable_v<Secret>, "a Secret must exist in one place");
static_assert(std::is_nothrow_move_constructible_v<Secret>);
static_assert(!std::is_convertible_v<Secret, std::string_view>, "no implicit way to the bytes");

TEST(SecretTest, PrintsAsStarsThroughFmtAndOstream) {
  // Proves a Secret handed to a log or stream call prints "***", never its bytes.
  const Secret secret(std::string_view("hunter2"));
  EXPECT_EQ(fmt::format("{}", secret), "***");
  EXPECT_EQ(fmt::format("password={:>5}", secret), "password=  ***");
  std::ostringstream out;
  out << "password=" << secret;
  EXPECT_EQ(out.str(), "password=***");
}

TEST(SecretTest, RevealGivesTheBytes) {
  // Proves the bytes, including NULs, are reachable through reveal() only.
  const std::string bytes("a\0b", 3);
  const Secret secret{std::string_view(bytes)};
  EXPECT_EQ(secret.reveal(), bytes);
  EXPECT_EQ(secret.size(), 3u);
  EXPECT_FALSE(secret.empty());
  EXPECT_TRUE(Secret().empty());
  EXPECT_EQ(Secret().reveal(), "");
}

TEST(SecretTest, ConstructingFromAnRvalueStringClearsTheSource) {
  // Proves the caller's temporary copy does not keep the bytes.
  std::string source = "a password long enough to live on the heap";
  const Secret secret(std::move(source));
  EXPECT_EQ(secret.reveal(), "a password long enough to live on the heap");
  EXPECT_TRUE(source.empty());  // NOLINT(bugprone-use-after-move): checking the documented state.
}

TEST(SecretTest, MovingTransfersOwnership) {
  // Proves a moved-from Secret is empty and the destination holds the bytes, for both move forms.
  Secret first(std::string_view("k1"));
  Secret second(std::move(first));
  EXPECT_TRUE(first.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(second.reveal(), "k1");
  Secret third(std::string_view("k3"));
  third = std::move(second);
  EXPECT_TRUE(second.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(third.reveal(), "k1");
}

TEST(SecretTest, ComparesByContents) {
  // Proves equality looks at every byte (also past a NUL and in the last position) and at the size.
  const Secret a(std::string_view("key\0bytes-1", 11));
  EXPECT_TRUE(a == Secret(std::string_view("key\0bytes-1", 11)));
  EXPECT_FALSE(a == Secret(std::string_view("key\0bytes-2", 11)));
  EXPECT_FALSE(a == Secret(std::string_view("key\0bytes-", 10)));
  EXPECT_FALSE(a == Secret(std::string_view("xey\0bytes-1", 11)));
  EXPECT_TRUE(SecretEquals(a, std::string_view("key\0bytes-1", 11)));
  EXPECT_FALSE(SecretEquals(a, "key"));
  EXPECT_TRUE(Secret() == Secret());
  EXPECT_TRUE(SecretEquals(Secret(), ""));
  EXPECT_FALSE(SecretEquals(Secret(), "x"));
}

TEST(SecretTest, PrintsAsStarsInSpdlogLines) {
  // Proves a Secret passed to a logger by mistake reaches the sink as "***".
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  spdlog::logger logger("secret_test", sink);
  logger.set_pattern("%v");
  logger.info("key={} id={}", Secret(std::string_view("s3cr3t-bytes")), 7);
  logger.flush();
  EXPECT_EQ(captured.str(), "key=*** id=7\n");
}

TEST(KeysErrcTest, CodesBelongToTheKeysCategory) {
  // Proves Errc converts to std::error_code in the module's own category with a readable message.
  const std::error_code code = Errc::permissions_too_open;
  EXPECT_EQ(code.category().name(), std::string("paygate.keys"));
  EXPECT_EQ(code, Errc::permissions_too_open);
  EXPECT_NE(code, Errc::not_found);
  EXPECT_NE(code.message().find("group or others"), std::string::npos);
  EXPECT_TRUE(code);
}

}  // namespace
}  // namespace paygate::keys
