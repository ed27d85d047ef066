#pragma once

// Helpers shared by the config unit tests.
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "config/loader.h"
#include "config/validate.h"

namespace paygate::config::testing {

// Options whose environment is empty, so results do not depend on the machine running the tests.
inline ValidateOptions NoEnv() {
  ValidateOptions options;
  options.env = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
  return options;
}

// The smallest valid configuration; tests append or vary sections.
inline constexpr std::string_view kMinimalYaml = R"(
api:
  address: 127.0.0.1
  port: 8443
  tls: {cert_file: a.crt, key_file: a.key, client_ca_file: ca.crt}
admin:
  address: 127.0.0.1
  port: 9443
  tls: {cert_file: a.crt, key_file: a.key, client_cert: none}
database:
  url: postgresql://paygate@127.0.0.1:5432/paygate
)";

inline std::set<std::string> Paths(const FieldErrors& errors) {
  std::set<std::string> paths;
  for (const FieldError& error : errors) paths.insert(error.path);
  return paths;
}

// The errors of a YAML text that must fail to load.
inline FieldErrors LoadErrors(std::string_view yaml) {
  auto result = LoadYaml(yaml, NoEnv());
  EXPECT_FALSE(result.has_value()) << "loaded although it should not:\n" << yaml;
  return result.has_value() ? FieldErrors{} : result.error();
}

// Whether an error with exactly `path` has a message containing `text`.
inline ::testing::AssertionResult HasError(const FieldErrors& errors, std::string_view path,
                                           std::string_view text) {
  for (const FieldError& error : errors) {
    if (error.path == path && error.message.find(text) != std::string::npos) {
      return ::testing::AssertionSuccess();
    }
  }
  return ::testing::AssertionFailure()
         << "no error at \"" << path << "\" containing \"" << text << "\"; errors:\n"
         << FormatErrors(errors);
}

inline std::filesystem::path SourceDir() {
  if (const char* dir = std::getenv("PAYGATE_SOURCE_DIR")) return dir;
  return PAYGATE_TEST_SOURCE_DIR;
}

}  // namespace paygate::config::testing
