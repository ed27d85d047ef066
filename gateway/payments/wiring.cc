#include "gateway/payments/wiring.h"

#include <fmt/format.h>

#include "gateway/payments/adapter_factory.h"
#include "keys/keyring.h"

namespace paygate::payments {

Result<Collections, std::string> BuildCollections(const config::v1::Config& config,
                                                  db::PgPool& pool, ledger::PostgresLedger& ledger,
                                                  boost::asio::any_io_executor executor,
                                                  const keys::Keyring& ring) {
  auto registry = std::make_shared<AdapterRegistry>();
  for (const config::v1::ProviderAccount& account : config.providers()) {
    const std::string where =
        fmt::format("provider {} account {}", account.provider(), account.merchant_account());
    auto adapter = MakeAdapter(config, account, {}, &ring);
    if (!adapter) return where + ": " + adapter.error();
    registry->Add(account.merchant_account(), std::move(adapter).value());
  }
  Collections c;
  c.adapters = registry;
  c.service =
      std::make_shared<PaymentService>(pool, ledger, registry, PaymentsOptionsFromConfig(config));
  c.counters = std::make_shared<CallbackCounters>();
  JanitorOptions janitor;
  janitor.interval = std::chrono::milliseconds(config.janitor().interval_ms());
  janitor.batch_size = static_cast<std::int32_t>(config.janitor().batch_size());
  c.janitor = std::make_unique<Janitor>(std::move(executor), c.service, janitor);
  return c;
}

std::vector<prometheus::MetricFamily> CallbackFamilies(const CallbackCounters& counters) {
  prometheus::MetricFamily family;
  family.name = "paygate_callbacks_total";
  family.help = "Provider callbacks received, by result (rejected: failed verification).";
  family.type = prometheus::MetricType::Counter;
  for (const auto& [result, value] :
       {std::pair<const char*, std::uint64_t>{"accepted", counters.accepted.load()},
        {"duplicate", counters.duplicates.load()},
        {"rejected", counters.rejected.load()}}) {
    prometheus::ClientMetric metric;
    metric.label.push_back({"result", result});
    metric.counter.value = static_cast<double>(value);
    family.metric.push_back(std::move(metric));
  }
  return {std::move(family)};
}

}  // namespace paygate::payments
