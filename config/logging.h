#pragma once

// Logging (STYLE.md "Logging and metrics"): one named spdlog logger per module, one line per event with
// key=value context. Never a secret, a raw provider payload or personal data.
#include <memory>
#include <string_view>

#include <spdlog/spdlog.h>

#include "config/paygate_config.pb.h"

namespace paygate::log {

// Returns the logger of a module ("edge", "db", "config", "main", ...), creating it on first use with the
// current sinks and level. Thread-safe.
std::shared_ptr<spdlog::logger> Get(std::string_view module);

// Applies the logging section of the configuration: format (human or JSON lines) and levels. Loggers
// created before and after the call follow it. Thread-safe; call once at start-up (tests may call it again).
// `sink` replaces standard error as the destination of loggers created afterwards (tests capture output).
void Configure(const config::v1::Logging& logging, spdlog::sink_ptr sink = nullptr);

}  // namespace paygate::log
