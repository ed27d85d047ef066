#pragma once

// paygatectl recon import|report|settle (issue 8): the same engine, options and report as the
// API, from the command line, against the configured database (PAYGATE_DATABASE_URL overrides
// database.url). Changes are audited as principal "paygatectl:<user>".
#include <iosfwd>
#include <string>
#include <vector>

#include "config/paygate_config.pb.h"

namespace paygate::gateway::recon {

struct ReconImportArgs {
  std::string file;
  std::string provider;
  std::string merchant_account;
  std::string bill_date;  // YYYY-MM-DD
  bool progress = true;   // draw the progress bar on `err`
};

// `paygatectl recon import FILE --provider P --account A --date D`: hashes the file, then streams
// it into the engine (a WeChat bill record by record, so memory stays bounded whatever its size)
// with a progress bar on stderr, and prints the reconciliation's report. Importing the same file
// again changes nothing ("already imported"). Exit 0; 1 on errors; 2 on refused input (unknown
// account, unreadable file, a bill that does not parse).
int RunReconImport(const config::v1::Config& config, const ReconImportArgs& args,
                   std::ostream& out, std::ostream& err);

// `paygatectl recon report DATE [--csv]`: the day's current reconciliations, every provider
// account, as a table or CSV: the same numbers as GET /v1/reconciliations?bill_date=DATE.
// Exit 0; 1 on errors; 2 on a malformed date.
int RunReconReport(const config::v1::Config& config, const std::string& bill_date, bool csv,
                   std::ostream& out, std::ostream& err);

struct ReconSettleArgs {
  std::string provider;
  std::string merchant_account;
  std::string provider_reference;  // the settlement line's id at the provider
  std::string value_date;          // YYYY-MM-DD
  std::string currency = "CNY";
  std::string amount;              // received, major units: "129.22", "-5.00"
  std::vector<std::string> references;  // covered out_trade_no / out_refund_no
  std::string bill_date;           // without references: settle the day's unsettled lines
};

// `paygatectl recon settle --provider P --account A --reference R --value-date D --amount 129.22
// (--date BILL_DAY | REFERENCE...)`: records one net settlement line (ledger/recon/settlement.h,
// as POST /v1/reconciliations/settlements) and prints the expected net, the difference and any
// settlement_mismatch exception. The same reference again prints the first result. Exit 0; 1 on
// errors; 2 on refused input (unknown account, malformed amount or date, lines already settled
// or not found).
int RunReconSettle(const config::v1::Config& config, const ReconSettleArgs& args,
                   std::ostream& out, std::ostream& err);

}  // namespace paygate::gateway::recon
