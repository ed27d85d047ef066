#pragma once

// Reading a whole file that is not a secret (certificates, public keys, rules, bill files). Secrets
// go through keys/secret_file.h, which also checks their permissions.
#include <optional>
#include <string>

namespace paygate::config {

// The file's bytes, or nullopt when it cannot be opened or read.
std::optional<std::string> ReadWholeFile(const std::string& path);

}  // namespace paygate::config
