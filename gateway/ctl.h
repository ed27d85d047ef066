#pragma once

// paygatectl commands. Each returns a process exit code and prints what it did.
#include "config/paygate_config.pb.h"

namespace paygate::gateway {

// `paygatectl migrate`: applies pending migrations to the configured database (PAYGATE_DATABASE_URL
// overrides database.url), printing each one applied.
int RunMigrate(const config::v1::Config& config);

}  // namespace paygate::gateway
