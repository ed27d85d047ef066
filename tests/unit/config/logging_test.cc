// Logging: JSON lines stay valid JSON whatever the message holds, and levels follow the configuration.
#include "config/logging.h"

#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

namespace paygate::log {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Quotes, backslashes and control characters in a message are escaped in JSON output, so one event is
// exactly one parseable line.
TEST(LoggingTest, JsonLinesEscapeTheMessage) {
  std::ostringstream out;
  config::v1::Logging logging;
  logging.set_format(config::v1::LOG_FORMAT_JSON);
  Configure(logging, std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  auto logger = Get("json-test");
  logger->info("value=\"quoted\" path=C:\\dir\nsecond line\x01");
  logger->flush();
  const std::string line = out.str();
  EXPECT_THAT(line, HasSubstr(R"("logger":"json-test")"));
  EXPECT_THAT(line, HasSubstr(R"("msg":"value=\"quoted\" path=C:\\dir\nsecond line\u0001"})"));
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
}

// A module level override silences that module below its level while others keep the default.
TEST(LoggingTest, ModuleLevelsOverrideTheDefault) {
  std::ostringstream out;
  config::v1::Logging logging;
  logging.set_level("info");
  (*logging.mutable_module_levels())["quiet-test"] = "error";
  Configure(logging, std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  Get("quiet-test")->warn("hidden warning");
  Get("loud-test")->info("shown info");
  Get("quiet-test")->flush();
  Get("loud-test")->flush();
  EXPECT_THAT(out.str(), Not(HasSubstr("hidden warning")));
  EXPECT_THAT(out.str(), HasSubstr("shown info"));
}

}  // namespace
}  // namespace paygate::log
