#pragma once

// Strict YAML -> paygate.config.v1.Config conversion (STYLE.md "Config"). The YAML is walked
// against the protobuf descriptors, so every problem in a file is reported at once with the field
// path it concerns, instead of stopping at the first one.
//
// Conversion rules:
//   - Keys are the proto field names (snake_case). An unknown or duplicate key is an error.
//   - Messages are YAML mappings, repeated fields are sequences, map fields are mappings.
//   - Integers are plain decimal scalars. A quoted scalar, a fraction, a sign on an unsigned
//     field or a value outside the field's type is an error. Bools are plain true/false only.
//   - Enums are written by full name ("CLIENT_CERT_MODE_REQUIRED") or by lower-case short name
//     ("required"; '.' may stand for '_', so "1.2" means TLS_MIN_VERSION_1_2). *_UNSPECIFIED is
//     rejected.
//   - A null value ("key:", "key: ~") leaves the field unset, like an absent key, so it takes
//     its default.
//
// Thread-safety: all functions are pure apart from LoadFile reading its file and the environment
// lookup done by validation; they may be called concurrently. No function throws.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "config/paygate_config.pb.h"
#include "config/result.h"
#include "config/validate.h"

namespace paygate::config {

// LoadFile refuses larger files: a configuration is a few kilobytes; far bigger is a mistake.
inline constexpr std::uintmax_t kConfigFileSizeMax = 1024 * 1024;

// Parses YAML text, converts it strictly and applies defaults and validation (config/validate.h).
// Returns the effective configuration, or every error found. Validation errors about a field that
// already failed conversion (or about its enclosing or enclosed fields) are left out, since they
// would only repeat it.
Result<v1::Config, FieldErrors> LoadYaml(std::string_view yaml_text,
                                         const ValidateOptions& options = {});

// Reads a file and calls LoadYaml. Problems with the file itself (missing, not a regular file, too
// large, unreadable) are reported as one FieldError with an empty path.
Result<v1::Config, FieldErrors> LoadFile(const std::filesystem::path& path,
                                         const ValidateOptions& options = {});

}  // namespace paygate::config
