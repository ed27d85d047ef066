#include "config/logging.h"

#include <map>
#include <mutex>
#include <string>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace paygate::log {
namespace {

// JSON lines: the message itself is escaped by spdlog's %v only as text, so the pattern keeps the message in
// a "msg" field and callers keep quotes out of their key=value messages (values are logged via fmt's {:?}
// when they may contain quotes).
constexpr const char* kJsonPattern =
    R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","logger":"%n","thread":%t,"msg":"%v"})";
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
  logger.set_formatter(
      std::make_unique<spdlog::pattern_formatter>(state.pattern, spdlog::pattern_time_type::utc));
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

void Configure(const config::v1::Logging& logging) {
  State& state = GetState();
  std::lock_guard lock(state.mu);
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
