#pragma once

// One provider account of the configuration turned into its adapter: secrets from the keyring by
// the ids the account names (the current version of each; a provider credential changes with a
// restart), public keys and certificates read from their files, the adapter's options filled from
// the account's section and `error_codes`. The daemon builds every configured account with it;
// paygatectl builds one to verify a captured callback with the provider's real rules.
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "adapters/adapter.h"
#include "config/paygate_config.pb.h"
#include "config/result.h"
#include "keys/keyring.h"

namespace paygate::payments {

using AdapterResult = Result<std::unique_ptr<adapters::Adapter>, std::string>;
// The adapter's wall clock for signatures and their freshness; empty: the system clock.
using AdapterClock = std::function<std::chrono::system_clock::time_point()>;

// The error names what is missing or unreadable; it never carries key material. Without `ring`
// the configured keyring is loaded (paygatectl).
AdapterResult MakeAdapter(const config::v1::Config& config,
                          const config::v1::ProviderAccount& account, AdapterClock clock = {},
                          const keys::Keyring* ring = nullptr);

}  // namespace paygate::payments
