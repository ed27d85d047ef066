#include "gateway/payouts/wiring.h"

namespace paygate::payouts {

namespace asio = boost::asio;

asio::awaitable<Result<std::shared_ptr<const FieldProtector>, std::string>> MakeFieldProtector(
    const config::v1::Config& config, db::PgPool& pool) {
  (void)config;
  (void)pool;
  // keys::FieldCipher (issue 7's keys/ work) is not in this tree yet. Payout routes without it
  // would store beneficiary data unprotected, so the daemon refuses them rather than start.
  co_return std::string(
      "payouts need beneficiary encryption (keys::FieldCipher), which this build does not have");
}

asio::awaitable<Result<std::shared_ptr<PayoutService>, std::string>> BuildPayouts(
    const config::v1::Config& config, db::PgPool& pool, ledger::PostgresLedger& ledger,
    std::shared_ptr<const payments::AdapterRegistry> adapters, payments::PaymentService& payments) {
  if (config.payouts().routes().empty()) co_return std::shared_ptr<PayoutService>();
  auto protector = co_await MakeFieldProtector(config, pool);
  if (!protector) co_return "payouts: " + protector.error();
  auto service = std::make_shared<PayoutService>(pool, ledger, std::move(adapters),
                                                 std::move(protector).value(),
                                                 PayoutsOptionsFromConfig(config));
  auto chart = co_await service->EnsureChartOfAccounts();
  if (!chart) co_return "payouts: ledger chart of accounts: " + chart.error().message();
  payments.AttachPayouts(service->Hooks());
  co_return service;
}

}  // namespace paygate::payouts
