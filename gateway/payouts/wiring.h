#pragma once

// Builds the payouts from configuration for the daemon: the payout service on the collections'
// adapter registry, with its chart of accounts and its hooks into the shared callback route and
// janitor. Nothing runs until the daemon takes requests. Without payout routes nothing is built
// (nullptr), so a daemon without payouts needs no data key.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "config/paygate_config.pb.h"
#include "config/result.h"
#include "gateway/payments/service.h"
#include "gateway/payouts/service.h"
#include "keys/field_cipher.h"

namespace paygate::payouts {

// The payout service, attached to `payments`; nullptr when no payout route is configured. With
// routes, `cipher` is required: the daemon's FieldCipher of personal data (keys.pii_data_key), the
// one data key the beneficiary columns are registered under for `paygatectl keys rewrap`
// (gateway::EncryptedColumns). Payouts never store beneficiary data unprotected.
boost::asio::awaitable<Result<std::shared_ptr<PayoutService>, std::string>> BuildPayouts(
    const config::v1::Config& config, db::PgPool& pool, ledger::PostgresLedger& ledger,
    std::shared_ptr<const payments::AdapterRegistry> adapters, payments::PaymentService& payments,
    std::shared_ptr<const keys::FieldCipher> cipher);

}  // namespace paygate::payouts
