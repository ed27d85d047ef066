#pragma once

// Instants as operators and clients write them: ISO 8601 in UTC, "2026-11-27T03:00:00Z", optionally
// with up to six fractional digits. UTC only, so no answer depends on a time zone setting.
#include <optional>
#include <string>
#include <string_view>

#include "ledger/ledger/ledger.h"

namespace paygate::gateway {

std::optional<ledger::Timestamp> ParseUtc(std::string_view text);
std::string FormatUtc(ledger::Timestamp instant);

}  // namespace paygate::gateway
