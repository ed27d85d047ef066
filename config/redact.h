#pragma once

// Printing a configuration without its secrets (STYLE.md "Config": sensitive fields are redacted
// whenever config is printed), e.g. for `paygated --check-config` or the start-up log.
#include <string>

#include "config/paygate_config.pb.h"

namespace paygate::config {

// A YAML rendering of `config` in which every field marked (paygate.config.v1.sensitive) prints
// as "***", wherever it appears (nested messages, repeated fields, maps). Which fields are
// sensitive is read from the schema at run time, so a field newly marked in the proto is redacted
// without code changes. Only fields with a non-zero value are printed (proto3 scalars have no
// presence); strings are always quoted; enums print their full names; map entries are sorted by
// key so the output is stable. The output loads back with LoadYaml (redacted fields aside).
// Thread-safe, does not throw.
std::string RedactedText(const v1::Config& config);

// The same for any message of the schema, e.g. one section such as v1::Database.
std::string RedactedMessageText(const google::protobuf::Message& message);

}  // namespace paygate::config
