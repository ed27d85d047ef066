#include "gateway/recon/reconcilers.h"

namespace paygate::gateway::recon {

std::optional<std::int64_t> ParseUtcOffset(std::string_view text) {
  if (text.size() != 6 || (text[0] != '+' && text[0] != '-') || text[3] != ':') return std::nullopt;
  for (int i : {1, 2, 4, 5}) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
  }
  const std::int64_t seconds =
      ((text[1] - '0') * 10 + (text[2] - '0')) * 3600 + ((text[4] - '0') * 10 + (text[5] - '0')) * 60;
  return text[0] == '-' ? -seconds : seconds;
}

paygate::recon::Options OptionsFromConfig(const config::v1::Recon& section,
                                          std::string_view provider,
                                          std::string_view merchant_account) {
  paygate::recon::Options options;
  if (section.cutoff_window_s() != 0) {
    options.cutoff_window = std::chrono::seconds(section.cutoff_window_s());
  }
  options.amount_tolerance_minor = section.amount_tolerance_minor();
  if (section.rule_window_s() != 0) {
    options.rule_window = std::chrono::seconds(section.rule_window_s());
  }
  // The engine's way of turning rule matching off.
  if (section.rule_matching_disabled()) options.rule_window = std::chrono::seconds(0);
  if (!section.settlement_bank().empty()) options.settlement_bank = section.settlement_bank();
  if (auto offset = ParseUtcOffset(section.bill_utc_offset())) {
    options.bill_utc_offset = std::chrono::seconds(*offset);
  }
  for (const auto& account : section.accounts()) {
    if (account.provider() != provider || account.merchant_account() != merchant_account) continue;
    if (!account.settlement_bank().empty()) options.settlement_bank = account.settlement_bank();
    if (account.has_settle_on_import()) options.settle_on_import = account.settle_on_import();
  }
  return options;
}

Reconcilers::Reconcilers(const config::v1::Recon& section, db::PgPool& pool,
                         ledger::PostgresLedger& ledger)
    : pool_(pool),
      ledger_(ledger),
      default_(std::make_unique<paygate::recon::Reconciler>(pool, ledger,
                                                            OptionsFromConfig(section))) {
  for (const auto& account : section.accounts()) {
    accounts_.emplace(
        std::pair{account.provider(), account.merchant_account()},
        std::make_unique<paygate::recon::Reconciler>(
            pool, ledger,
            OptionsFromConfig(section, account.provider(), account.merchant_account())));
  }
}

paygate::recon::Reconciler& Reconcilers::For(std::string_view provider,
                                             std::string_view merchant_account) {
  auto it = accounts_.find(std::pair<std::string, std::string>(provider, merchant_account));
  return it == accounts_.end() ? *default_ : *it->second;
}

boost::asio::awaitable<paygate::recon::RResult<paygate::recon::Settlement>> Reconcilers::Settle(
    paygate::recon::SettlementRequest request, db::Deadline deadline) {
  // The account's options: its settlement bank.
  const paygate::recon::Options& options =
      For(request.provider, request.merchant_account).options();
  co_return co_await paygate::recon::SettleNet(pool_, ledger_, options, std::move(request),
                                               deadline);
}

}  // namespace paygate::gateway::recon
