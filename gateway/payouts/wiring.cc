#include "gateway/payouts/wiring.h"

namespace paygate::payouts {

namespace asio = boost::asio;

asio::awaitable<Result<std::shared_ptr<PayoutService>, std::string>> BuildPayouts(
    const config::v1::Config& config, db::PgPool& pool, ledger::PostgresLedger& ledger,
    std::shared_ptr<const payments::AdapterRegistry> adapters, payments::PaymentService& payments,
    std::shared_ptr<const keys::FieldCipher> cipher) {
  if (config.payouts().routes().empty()) co_return std::shared_ptr<PayoutService>();
  if (!cipher) {
    co_return "payouts: routes are configured but no data key keys.pii_data_key (\"" +
        config.keys().pii_data_key() +
        "\") was loaded (keys.master_key missing?); beneficiary data is never stored unprotected";
  }
  auto service = std::make_shared<PayoutService>(
      pool, ledger, std::move(adapters), std::move(cipher), PayoutsOptionsFromConfig(config));
  auto chart = co_await service->EnsureChartOfAccounts();
  if (!chart) co_return "payouts: ledger chart of accounts: " + chart.error().message();
  payments.AttachPayouts(service->Hooks());
  co_return service;
}

}  // namespace paygate::payouts
