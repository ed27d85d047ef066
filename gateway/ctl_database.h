#pragma once

// For paygatectl's command implementations (ctl.cc, risk_ctl.cc): a command coroutine run against
// the configured database on a private I/O thread.
#include <functional>
#include <string_view>

#include "config/paygate_config.pb.h"
#include "gateway/edge/asio_fwd.h"
#include "ledger/db/pg_pool.h"

namespace paygate::gateway {

// Opens the configured database (PAYGATE_DATABASE_URL overrides database.url), runs `command`,
// closes the pool. Returns the command's exit code, or 1 when the database cannot be opened.
int WithDatabase(
    const config::v1::Config& config, std::string_view name,
    std::function<edge::asio::awaitable<int>(db::PgPool&, edge::asio::io_context&)> command);

}  // namespace paygate::gateway
