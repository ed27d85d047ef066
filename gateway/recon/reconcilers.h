#pragma once

// The reconciliation engine (ledger/recon) as the configuration sets it up: one Reconciler per
// provider account of recon.accounts (each with its own settlement bank) and one with the
// section's defaults for every other account and for reads. The API, paygatectl and the download
// schedule all import through this, so an upload and a download of the same day post alike. An
// account's settle_on_import decides whether its imports post the day's net themselves or leave
// it to the provider's settlement line (Settle).
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "config/paygate_config.pb.h"
#include "config/result.h"
#include "ledger/recon/reconciler.h"
#include "ledger/recon/settlement.h"

namespace paygate::gateway::recon {

// The engine's options from a validated recon section, for one provider account (its
// settlement bank) or, with empty names, the section's defaults.
paygate::recon::Options OptionsFromConfig(const config::v1::Recon& section,
                                          std::string_view provider = {},
                                          std::string_view merchant_account = {});

// "+HH:MM" / "-HH:MM" -> seconds east of UTC; nullopt when malformed.
std::optional<std::int64_t> ParseUtcOffset(std::string_view text);

class Reconcilers {
 public:
  Reconcilers(const config::v1::Recon& section, db::PgPool& pool,
              ledger::PostgresLedger& ledger);

  // Imports go through the account's reconciler.
  paygate::recon::Reconciler& For(std::string_view provider, std::string_view merchant_account);
  // Reads and the exceptions workflow (they do not depend on an account's options).
  paygate::recon::Reconciler& Default() { return *default_; }
  // A net settlement line (ledger/recon/settlement.h) with its account's options.
  boost::asio::awaitable<paygate::recon::RResult<paygate::recon::Settlement>> Settle(
      paygate::recon::SettlementRequest request, db::Deadline deadline);

 private:
  db::PgPool& pool_;
  ledger::PostgresLedger& ledger_;
  std::unique_ptr<paygate::recon::Reconciler> default_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<paygate::recon::Reconciler>,
           std::less<>>
      accounts_;
};

}  // namespace paygate::gateway::recon
