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

}  // namespace paygate::gateway
