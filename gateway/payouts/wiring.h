#pragma once

// Builds the payouts from configuration for the daemon: the field protector (keys/), the payout
// service on the collections' adapter registry, its hooks into the shared callback route and
// janitor. Nothing runs until the daemon takes requests. Without payout routes nothing is built
// (an empty result), so a daemon without payouts needs no data key.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "config/paygate_config.pb.h"
#include "config/result.h"
#include "gateway/payments/service.h"
#include "gateway/payouts/field_protector.h"
#include "gateway/payouts/service.h"

namespace paygate::payouts {

// The protector of beneficiary data: keys::FieldCipher under the data key "payouts". This is the
// one place that chooses it.
boost::asio::awaitable<Result<std::shared_ptr<const FieldProtector>, std::string>>
MakeFieldProtector(const config::v1::Config& config, db::PgPool& pool);

// The payout service (nullptr when no payout route is configured), attached to `payments` and
// with its chart of accounts created.
boost::asio::awaitable<Result<std::shared_ptr<PayoutService>, std::string>> BuildPayouts(
    const config::v1::Config& config, db::PgPool& pool, ledger::PostgresLedger& ledger,
    std::shared_ptr<const payments::AdapterRegistry> adapters, payments::PaymentService& payments);

}  // namespace paygate::payouts
