#include "gateway/utc_time.h"

#include <time.h>

#include <fmt/format.h>

namespace paygate::gateway {

std::optional<ledger::Timestamp> ParseUtc(std::string_view text) {
  const std::string copy(text);
  std::tm tm{};
  const char* rest = ::strptime(copy.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) return std::nullopt;
  std::int64_t micros = 0;
  if (*rest == '.') {
    int digits = 0;
    for (++rest; *rest >= '0' && *rest <= '9' && digits < 6; ++rest, ++digits) {
      micros = micros * 10 + (*rest - '0');
    }
    if (digits == 0) return std::nullopt;
    for (; digits < 6; ++digits) micros *= 10;
  }
  if (std::string_view(rest) != "Z") return std::nullopt;
  const std::int64_t seconds = ::timegm(&tm);
  return ledger::Timestamp(std::chrono::microseconds(seconds * 1'000'000 + micros));
}

std::string FormatUtc(ledger::Timestamp instant) {
  const std::int64_t micros = instant.time_since_epoch().count();
  std::int64_t seconds = micros / 1'000'000;
  std::int64_t fraction = micros % 1'000'000;
  if (fraction < 0) {
    fraction += 1'000'000;
    --seconds;
  }
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, fraction);
}

}  // namespace paygate::gateway
