#include "config/logging.h"

#include <map>
#include <mutex>
#include <string>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace paygate::log {
namespace {

// JSON lines: the message goes through the '*' flag below, which escapes it as a JSON string, so a quote
// or control character in a message can never break the line apart.
constexpr const char* kJsonPattern =
    R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","logger":"%n","thread":%t,"msg":"%*"})";

// Appends the message payload escaped for a JSON string (RFC 8259 §7).
class JsonEscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    for (char c : std::string_view(msg.payload.data(), msg.payload.size())) {
      switch (c) {
        case '"': dest.append(std::string_view("\\\"")); break;
        case '\\': dest.append(std::string_view("\\\\")); break;
        case '\n': dest.append(std::string_view("\\n")); break;
        case '\r': dest.append(std::string_view("\\r")); break;
        case '\t': dest.append(std::string_view("\\t")); break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            fmt::format_to(std::back_inserter(dest), "\\u{:04x}", static_cast<int>(c));
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessage>();
  }
};
constexpr const char* kHumanPattern = "%Y-%m-%dT%H:%M:%S.%fZ %^%-5l%$ [%n] %v";

struct State {
  std::mutex mu;
  spdlog::sink_ptr sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  std::string pattern = kHumanPattern;
  spdlog::level::level_enum default_level = spdlog::level::info;
  std::map<std::string, spdlog::level::level_enum, std::less<>> module_levels;
};

State& GetState() {
  static State state;
  return state;
}

spdlog::level::level_enum LevelFor(const State& state, std::string_view module) {
  auto it = state.module_levels.find(module);
  return it == state.module_levels.end() ? state.default_level : it->second;
}

void ApplyTo(const State& state, spdlog::logger& logger) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<JsonEscapedMessage>('*').set_pattern(state.pattern);
  logger.set_formatter(std::move(formatter));
  logger.set_level(LevelFor(state, logger.name()));
}

}  // namespace

std::shared_ptr<spdlog::logger> Get(std::string_view module) {
  State& state = GetState();
  std::lock_guard lock(state.mu);
  std::string name(module);
  if (auto existing = spdlog::get(name)) return existing;
  auto logger = std::make_shared<spdlog::logger>(name, state.sink);
  ApplyTo(state, *logger);
  logger->flush_on(spdlog::level::warn);
  spdlog::register_logger(logger);
  return logger;
}

void Configure(const config::v1::Logging& logging, spdlog::sink_ptr sink) {
  State& state = GetState();
  std::lock_guard lock(state.mu);
  if (sink) state.sink = std::move(sink);
  state.pattern =
      logging.format() == config::v1::LOG_FORMAT_JSON ? kJsonPattern : kHumanPattern;
  state.default_level =
      logging.level().empty() ? spdlog::level::info : spdlog::level::from_str(logging.level());
  state.module_levels.clear();
  for (const auto& [module, level] : logging.module_levels()) {
    state.module_levels[module] = spdlog::level::from_str(level);
  }
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& logger) { ApplyTo(state, *logger); });
}

}  // namespace paygate::log
