#pragma once

// The posting state machine as pure functions: given what the database holds for a batch (locked
// accounts, existing transfers with those ids, referenced pending transfers, failed ids) and the
// transfers of the batch in order, decide one result per transfer and the rows to write. No I/O, so
// unit tests drive every result code directly; PostgresLedger does the reads and writes around it.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/ledger/types.h"

namespace paygate::ledger {

struct AccountState {
  Account account;
  Balance balance;
};

// A transfer already in the journal, as stored (post/void fields resolved).
struct StoredTransfer {
  Transfer transfer;
  std::int64_t created_at_us = 0;  // Unix epoch microseconds.
};

// How a pending transfer was resolved, if it was.
enum class PendingResolution { kNone, kPosted, kVoided, kExpired };

struct BatchSnapshot {
  std::int64_t now_us = 0;  // The batch's commit timestamp (transaction start), epoch microseconds.
  std::map<AccountId, AccountState> accounts;
  // Stored transfers whose id is one of the batch's ids or pending_ids.
  std::map<TransferId, StoredTransfer> stored;
  // Resolutions already stored, by pending id.
  std::map<TransferId, PendingResolution> resolutions;
  // Ids recorded as failed, with the result they failed with.
  std::map<TransferId, std::string> failed;
};

// A transfer to insert, fully resolved (accounts, amount and currency filled in from the pending).
struct PlannedTransfer {
  Transfer transfer;
  TransferId entry_id;  // The id of its linked chain's first transfer (its own when not linked).
};

struct BatchPlan {
  std::vector<TransferResult> results;  // One per input transfer, in order.
  std::vector<PlannedTransfer> inserts;
  std::vector<std::pair<TransferId, TransferResult>> failures;  // Ids to record as failed.
  std::map<AccountId, AccountState> accounts_after;             // Balances the inserts lead to.
};

// `request_ends` are the exclusive end indexes of the requests coalesced into the batch (the last
// equals transfers.size()); a linked chain never crosses a request boundary. Transfers are applied
// in order, each seeing the effects of the ones before it.
BatchPlan PlanBatch(std::span<const Transfer> transfers, std::span<const std::size_t> request_ends,
                    const BatchSnapshot& snapshot);

// Whether `request` (as submitted) describes the same transfer as `stored` (as written): fields a
// post/void/expire may leave empty match the pending's values they were filled from.
bool SameFields(const Transfer& request, const Transfer& stored);

// The hash-chain link of a batch, byte for byte what ledger_batch_hash(batch_id, prev_hash) in
// 0002_ledger.sql computes over the batch's rows once written:
//   sha256(prev_hash || batch_id || "\n" || canonical rows ordered by id, joined by "\n")
// with each row as ledger_transfer_canonical() renders it. Computed here so posting does not make
// the database re-read and re-encode the rows it has just inserted; verify still recomputes it in
// SQL, so an encoding difference shows up as a batch_hash difference, never as silent drift.
// Valid only where the database orders transfer ids bytewise (C collation; PostgresLedger checks)
// and `prev_hash` is 32 bytes. Returns the 32-byte digest.
std::string BatchHash(std::string_view prev_hash, std::int64_t batch_id,
                      std::span<const PlannedTransfer> inserts, std::int64_t created_at_us);

}  // namespace paygate::ledger
