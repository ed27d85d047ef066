#pragma once

// paygatectl recon import|report (issue 8): the same engine, options and report as the API, from
// the command line, against the configured database (PAYGATE_DATABASE_URL overrides
// database.url). Changes are audited as principal "paygatectl:<user>".
#include <iosfwd>
#include <string>

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

}  // namespace paygate::gateway::recon
