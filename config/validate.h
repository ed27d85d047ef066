#pragma once

// Defaults and validation of a configuration: the rules stated in paygate_config.proto comments.
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/paygate_config.pb.h"

namespace paygate::config {

// One problem in a configuration. `path` names the field in proto field-name syntax
// ("api.limits.body_size_max_bytes", "principals[1].roles[0]", "logging.module_levels.edge"); an
// empty path concerns the file as a whole (unreadable file, YAML syntax error).
struct FieldError {
  std::string path;
  std::string message;
};
using FieldErrors = std::vector<FieldError>;

// One "path: message" line per error (just "message" when the path is empty), each ending in '\n'.
std::string FormatErrors(const FieldErrors& errors);

// Reads an environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

// The process environment, via getenv.
std::optional<std::string> ProcessEnv(std::string_view name);

struct ValidateOptions {
  // Consulted for PAYGATE_DATABASE_URL, which makes database.url optional. Tests inject a fake so
  // the result does not depend on the environment they run in.
  EnvLookup env = ProcessEnv;
  // Port 0 binds an ephemeral port. Only tests that start a server in-process want it; a
  // configuration file never does, so it is rejected unless this is set.
  bool allow_ephemeral_ports = false;
};

// Applies every default stated in the schema (a zero or empty value means "use the default"),
// including in optional sections, which are created, so readers see effective values. Then checks
// every stated range and requirement. Returns all errors found; an empty result means the
// configuration is valid. Does not touch the file system: whether referenced files exist and have
// safe permissions is checked by their users at start-up (keys/secret_file.h).
FieldErrors ApplyDefaultsAndValidate(v1::Config* config, const ValidateOptions& options = {});

}  // namespace paygate::config
