#pragma once

// Builds the collections from configuration for the daemon: one adapter per configured provider
// account (secrets read from their files, permissions checked), the payment service, the janitor
// and the callback counters. Nothing here listens or runs until the daemon starts it.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <memory>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>
#include <boost/asio/any_io_executor.hpp>

#include "config/paygate_config.pb.h"
#include "config/result.h"
#include "gateway/payments/janitor.h"
#include "gateway/payments/routes.h"
#include "gateway/payments/service.h"

namespace paygate::keys {
class Keyring;
}

namespace paygate::payments {

struct Collections {
  std::shared_ptr<AdapterRegistry> adapters;
  std::shared_ptr<PaymentService> service;
  std::shared_ptr<CallbackCounters> counters;
  std::unique_ptr<Janitor> janitor;
};

Result<Collections, std::string> BuildCollections(const config::v1::Config& config,
                                                  db::PgPool& pool, ledger::PostgresLedger& ledger,
                                                  boost::asio::any_io_executor executor,
                                                  const keys::Keyring& ring);

// paygate_callbacks_total{result="accepted|duplicate|rejected"} for /metrics.
std::vector<prometheus::MetricFamily> CallbackFamilies(const CallbackCounters& counters);

}  // namespace paygate::payments
