#pragma once

// paygatectl commands. Each returns a process exit code and prints what it did. All of them open
// the database the way paygated does (DatabasePoolOptions: PAYGATE_DATABASE_URL overrides
// database.url).
#include <cstdint>
#include <optional>
#include <string>

#include "config/paygate_config.pb.h"

namespace paygate::gateway {

// `paygatectl migrate`: applies pending migrations, printing how many and the schema versions.
int RunMigrate(const config::v1::Config& config);

// `paygatectl ledger verify`: recomputes every balance from the journal and checks the hash chain.
// Exit 0 when the book is sound; 3 when differences were found (each printed); 1 on errors.
int RunLedgerVerify(const config::v1::Config& config);

// `paygatectl ledger trial-balance --currency C [--at TIME]`: every account of the currency with
// its counters as of TIME (ISO 8601 UTC, "2026-11-27T03:00:00Z"; now when absent), and the totals.
int RunLedgerTrialBalance(const config::v1::Config& config, const std::string& currency,
                          const std::optional<std::string>& at);

// `paygatectl ledger statement ACCOUNT [--limit N]`: the account's journal lines with running
// balances, oldest first, at most N (1..1000) lines.
int RunLedgerStatement(const config::v1::Config& config, std::int64_t account, std::int32_t limit);

// `paygatectl ledger close-account ACCOUNT` / `reopen-account ACCOUNT`: a closed account refuses
// new postings; reservations on it can still be voided or expire. Idempotent.
int RunLedgerSetClosed(const config::v1::Config& config, std::int64_t account, bool closed);

struct VerifyCallbackArgs {
  std::string provider;
  std::string merchant_account;  // needed when the provider has several accounts
  std::string headers_file;      // "Name: value" lines as captured
  std::string body_file;         // the raw body
  std::optional<std::int64_t> at_unix;  // judge freshness at this instant (default: now)
};

// `paygatectl provider verify-callback --provider NAME --config FILE --headers FILE --body FILE
// [--at UNIX] [--merchant-account M]`: verifies (and decrypts) a captured callback with the
// configured account's keys and the provider's rules, and prints the decoded event as one JSON
// line. Exit 0 when it verifies; 1 with the reason when it does not; 2 on bad arguments.
int RunProviderVerifyCallback(const config::v1::Config& config, const VerifyCallbackArgs& args);

// `paygatectl recon parse --provider NAME FILE`: the bill file's normalised records as JSON lines,
// then a line of totals (checked against the file's own summary where it has one). Exit 1 when the
// file does not parse or its totals disagree.
int RunReconParse(const std::string& provider, const std::string& file);

}  // namespace paygate::gateway
