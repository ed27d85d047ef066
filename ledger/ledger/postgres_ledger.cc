#include "ledger/ledger/postgres_ledger.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <boost/asio/use_awaitable.hpp>

#include "ledger/db/errc.h"
#include "ledger/db/params.h"
#include "ledger/db/pg_result.h"
#include "ledger/ledger/posting.h"
#include "ledger/ledger/try.h"

namespace paygate::ledger {

namespace asio = boost::asio;
using db::Params;
using db::PgConnection;
using db::PgResult;
using db::Statement;

namespace {

// ---- SQL. Arrays travel as text literals with the type named in the statement. ----

// The third column says whether the database orders transfer ids bytewise, as BatchHash() does
// (see kWriteBatch). Also switches the transaction to custom plans for kReadBatch, after saving
// the mode in force (the subquery's row exists before the outer projection runs the second
// set_config): a generic plan cached while the journal was small (a sequential scan matching
// every row against the id array) would stay cached as the table grows and turn the id look-ups
// into full scans. kReadBatch restores the saved mode, so the write and its trigger's statements
// keep their cached plans (0005_ledger_faster_invariants.sql makes those safe to cache) instead of
// being re-planned every batch.
constexpr Statement kLockHead{
    "ledger_lock_head",
    "SELECT h.last_batch_id, h.last_hash, "
    "coalesce((SELECT a.attcollation IN (950, 951) "  // The "C" and "POSIX" collations.
    "  OR (a.attcollation = 100 AND d.datlocprovider = 'c' "
    "      AND d.datcollate IN ('C', 'POSIX', 'C.UTF-8', 'C.utf8')) "
    "  FROM pg_attribute a, pg_database d "
    "  WHERE a.attrelid = 'ledger_transfers'::regclass AND a.attname = 'id' "
    "  AND d.datname = current_database() AND d.encoding = pg_char_to_encoding('UTF8')), false), "
    "set_config('plan_cache_mode', 'force_custom_plan', true) "
    "FROM (SELECT set_config('paygate.ledger_plan_cache_mode', current_setting('plan_cache_mode'), "
    "  true) OFFSET 0) s, ledger_chain_head h FOR UPDATE OF h"};

// Everything a batch needs to know, in one round trip once the head is locked (a statement of its
// own: its snapshot is taken after the lock is granted, so it sees every earlier batch):
//  * the batch's timestamp: not now() (the transaction's start, which can precede the previous
//    batch's commit when writers queue on the lock) and never before the previous batch's, so
//    journal time order is batch order even if the clock steps back;
//  * stored transfers with the batch's ids ($1) or pending ids ($2), and resolutions of those
//    pending ids;
//  * ids recorded as failed;
//  * the accounts named by the batch ($3) and by the stored transfers, locked in ascending id
//    order (the global lock order after the head);
//  * and it restores the plan cache mode kLockHead saved: this statement was planned before it
//    runs, so only it gets a custom plan.
// Sent in the same round trip as kLockHead (and BEGIN), so it takes nothing from kLockHead's
// result: the previous batch's id comes from the head row, locked by then.
// One row per stored transfer, account, resolution and failure (FULL JOIN ON false stacks them;
// the other groups' columns are NULL), each carrying the timestamp; one row with only the
// timestamp when there is nothing else. Columns: see ReadBatchColumn.
constexpr Statement kReadBatch{
    "ledger_read_batch",
    "WITH stored AS MATERIALIZED ("
    "  SELECT id, debit_account_id, credit_account_id, amount, currency, kind, linked, "
    "  coalesce(pending_id, ''), timeout_s, reason_code, external_ref, "
    "  (extract(epoch FROM created_at) * 1000000)::bigint "
    "  FROM ledger_transfers WHERE id = ANY($1::text[] || $2::text[])), "
    "locked AS MATERIALIZED ("
    "  SELECT id, type, currency, code, name, debits_must_not_exceed_credits, "
    "  credits_must_not_exceed_debits, closed, history, debits_pending, debits_posted, "
    "  credits_pending, credits_posted FROM ledger_accounts "
    "  WHERE id = ANY($3::bigint[] || ARRAY(SELECT debit_account_id FROM stored) "
    "                || ARRAY(SELECT credit_account_id FROM stored)) "
    "  ORDER BY id FOR UPDATE), "
    "resolved AS (SELECT pending_id, kind FROM ledger_transfers WHERE pending_id = "
    "ANY($2::text[])), "
    "failed AS (SELECT id, result FROM ledger_transfer_failures WHERE id = ANY($1::text[])), "
    "batch_time AS MATERIALIZED ("
    "  SELECT (extract(epoch FROM greatest(clock_timestamp(), "
    "  (SELECT max(created_at) FROM ledger_transfers "
    "   WHERE batch_id = (SELECT last_batch_id FROM ledger_chain_head)))) "
    "  * 1000000)::bigint AS now_us WHERE set_config('plan_cache_mode', "
    "  current_setting('paygate.ledger_plan_cache_mode'), true) IS NOT NULL) "
    "SELECT t.now_us, s.*, a.*, r.*, f.* FROM batch_time t LEFT JOIN ("
    "  stored s FULL JOIN locked a ON false FULL JOIN resolved r ON false "
    "  FULL JOIN failed f ON false) ON true"};

// First columns of kReadBatch's groups.
enum ReadBatchColumn {
  kNowColumn = 0,
  kStoredColumns = 1,       // ParseStored's layout, 12 columns.
  kAccountColumns = 13,     // ParseAccount's layout, 13 columns.
  kResolutionColumns = 26,  // pending_id, kind.
  kFailureColumns = 28,     // id, result.
  kReadBatchColumnCount = 30,
};

// Inserts the accepted transfers ($1-$12 arrays, one element per transfer) with the batch id and
// timestamp ($13, $14); their statement trigger validates them and applies the counters. Records
// the failed ids ($15, $16). The two variants below append the rows' hash-chain link.
#define LEDGER_WRITE_ROWS_SQL                                                                      \
  "WITH inserted AS (INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, "      \
  "  amount, currency, kind, linked, pending_id, timeout_s, reason_code, external_ref, entry_id, " \
  "  batch_id, created_at) "                                                                       \
  "  SELECT u.id, u.d, u.c, u.a, u.cur, u.k, u.l, NULLIF(u.p, ''), u.t, u.r, u.x, u.e, "           \
  "  $13::bigint, timestamptz 'epoch' + $14::bigint * interval '1 microsecond' "                   \
  "  FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], "   \
  "  $7::boolean[], $8::text[], $9::integer[], $10::integer[], $11::text[], $12::text[]) "         \
  "  AS u(id, d, c, a, cur, k, l, p, t, r, x, e) RETURNING 1), "                                   \
  "failed AS (INSERT INTO ledger_transfer_failures (id, result) "                                  \
  "  SELECT * FROM unnest($15::text[], $16::text[]) ON CONFLICT DO NOTHING) "

// One round trip for all the batch's writes. The link's hash ($17) is BatchHash() of the rows,
// computed in C++ (the rows of a CTE are not visible to the rest of its statement, so SQL could
// only hash them in a second statement); $18 is the number of rows, 0 for a batch of failures only
// (no link). Returns the rows inserted and whether the head moved, having checked both itself
// (ledger_require, 0005): a batch's COMMIT is sent right behind this statement.
constexpr Statement kWriteBatch{
    "ledger_write_batch", LEDGER_WRITE_ROWS_SQL
    ", link AS (INSERT INTO ledger_batches (id, prev_hash, hash, transfer_count) "
    "  SELECT $13::bigint, h.last_hash, $17::bytea, $18::integer FROM ledger_chain_head h "
    "  WHERE $18::integer > 0 RETURNING id, hash), "
    "head AS (UPDATE ledger_chain_head SET last_batch_id = link.id, last_hash = link.hash "
    "  FROM link RETURNING 1) "
    "SELECT c.inserted, c.moved FROM (SELECT (SELECT count(*) FROM inserted) AS inserted, "
    "  (SELECT count(*) FROM head) AS moved) c "
    "WHERE ledger_require(c.inserted = $18::integer AND c.moved = sign($18::integer), "
    "  'batch write')"};

// Where the database does not order ids bytewise, the rows are written without their link and
// kAppendBatch hashes them in SQL. Returns the rows inserted.
constexpr Statement kWriteRows{"ledger_write_rows",
                               LEDGER_WRITE_ROWS_SQL "SELECT (SELECT count(*) FROM inserted)"};
#undef LEDGER_WRITE_ROWS_SQL

constexpr Statement kCommit{"", "COMMIT"};

// The cached batch's first statement (PostgresLedger::TryCachedBatch): locks the head like
// kLockHead (the same global lock order) and fails the transaction (LG001) unless the head is still
// the link this process committed last, so no other writer has posted since the cache was filled,
// and none of the batch's ids ($3) was recorded as failed. The check reads the locked row version
// (the subquery locks, the outer query tests), not the one seen before waiting for the lock.
constexpr Statement kLockCachedHead{
    "ledger_lock_cached_head",
    "SELECT ledger_require(h.last_batch_id = $1::bigint AND h.last_hash = $2::bytea "
    "  AND NOT EXISTS (SELECT 1 FROM ledger_transfer_failures f WHERE f.id = ANY($3::text[])), "
    "  'cached ledger head') "
    "FROM (SELECT last_batch_id, last_hash FROM ledger_chain_head FOR UPDATE OFFSET 0) h"};

constexpr Statement kAppendBatch{
    "ledger_append_batch",
    "WITH b AS (INSERT INTO ledger_batches (id, prev_hash, hash, transfer_count) "
    "SELECT $1::bigint, h.last_hash, ledger_batch_hash($1::bigint, h.last_hash), $2::integer "
    "FROM ledger_chain_head h RETURNING id, hash) "
    "UPDATE ledger_chain_head SET last_batch_id = b.id, last_hash = b.hash FROM b"};

constexpr Statement kInsertAccount{
    "ledger_insert_account",
    "INSERT INTO ledger_accounts (id, type, currency, code, name, "
    "debits_must_not_exceed_credits, credits_must_not_exceed_debits, closed, history) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING id"};

constexpr Statement kSelectAccount{
    "ledger_select_account",
    "SELECT id, type, currency, code, name, debits_must_not_exceed_credits, "
    "credits_must_not_exceed_debits, closed, history, debits_pending, debits_posted, "
    "credits_pending, credits_posted FROM ledger_accounts WHERE id = $1"};

constexpr Statement kSelectExpired{
    "ledger_select_expired",
    "SELECT p.id FROM ledger_transfers p "
    "WHERE p.kind = 'pending' AND p.timeout_s > 0 "
    "AND p.created_at + p.timeout_s * interval '1 second' <= now() "
    "AND NOT EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = p.id) "
    "ORDER BY p.created_at, p.id LIMIT $1"};

constexpr Statement kBalanceAt{
    "ledger_balance_at",
    "SELECT EXISTS (SELECT 1 FROM ledger_accounts WHERE id = $1), "
    "coalesce(sum(debits_pending), 0)::bigint, coalesce(sum(debits_posted), 0)::bigint, "
    "coalesce(sum(credits_pending), 0)::bigint, coalesce(sum(credits_posted), 0)::bigint "
    "FROM ledger_account_postings($1) "
    "WHERE created_at <= timestamptz 'epoch' + $2::bigint * interval '1 microsecond'"};

// Accounts with the `history` flag (migration 0006): the last history row at or before the instant.
// Column 0 says whether the account exists, column 1 whether it keeps history; without history the
// counters are recomputed from the journal (kBalanceAt).
constexpr Statement kBalanceAtHistory{
    "ledger_balance_at_history",
    "SELECT EXISTS (SELECT 1 FROM ledger_accounts WHERE id = $1), "
    "coalesce((SELECT history FROM ledger_accounts WHERE id = $1), false), "
    "coalesce(h.debits_pending, 0), coalesce(h.debits_posted, 0), "
    "coalesce(h.credits_pending, 0), coalesce(h.credits_posted, 0) "
    "FROM (SELECT 1) one LEFT JOIN LATERAL ("
    "  SELECT debits_pending, debits_posted, credits_pending, credits_posted "
    "  FROM ledger_account_history WHERE account_id = $1 "
    "  AND created_at <= timestamptz 'epoch' + $2::bigint * interval '1 microsecond' "
    "  ORDER BY created_at DESC, transfer_id DESC LIMIT 1) h ON true"};

constexpr Statement kAccountHistoryFlag{"ledger_account_history_flag",
                                        "SELECT history FROM ledger_accounts WHERE id = $1"};

// A statement page of a history account: a range scan of its history rows (running counters
// stored), each joined by primary key to its transfer for the deltas. Same columns as kStatement.
constexpr Statement kStatementFromHistory{
    "ledger_statement_from_history",
    "SELECT h.transfer_id, (extract(epoch FROM h.created_at) * 1000000)::bigint, p.kind, "
    "p.reason_code, p.external_ref, p.debits_pending, p.debits_posted, p.credits_pending, "
    "p.credits_posted, h.debits_pending, h.debits_posted, h.credits_pending, h.credits_posted "
    "FROM ledger_account_history h, LATERAL ("
    "  SELECT * FROM ledger_account_postings($1) q WHERE q.transfer_id = h.transfer_id) p "
    "WHERE h.account_id = $1 AND (h.created_at, h.transfer_id) > "
    "  (timestamptz 'epoch' + $2::bigint * interval '1 microsecond', $3::text) "
    "ORDER BY h.created_at, h.transfer_id LIMIT $4"};

constexpr Statement kSetClosed{"ledger_set_closed",
                               "UPDATE ledger_accounts SET closed = $2 WHERE id = $1 RETURNING id"};

// Without the history flag: running counters recomputed over the account's whole journal.
constexpr Statement kStatement{
    "ledger_statement",
    "SELECT transfer_id, (extract(epoch FROM created_at) * 1000000)::bigint, kind, reason_code, "
    "external_ref, debits_pending, debits_posted, credits_pending, credits_posted, rdp, rdpo, "
    "rcp, rcpo FROM ("
    "  SELECT *, (sum(debits_pending) OVER w)::bigint AS rdp, "
    "  (sum(debits_posted) OVER w)::bigint AS rdpo, (sum(credits_pending) OVER w)::bigint AS rcp, "
    "  (sum(credits_posted) OVER w)::bigint AS rcpo "
    "  FROM ledger_account_postings($1) WINDOW w AS (ORDER BY created_at, transfer_id)) s "
    "WHERE (created_at, transfer_id) > "
    "  (timestamptz 'epoch' + $2::bigint * interval '1 microsecond', $3::text) "
    "ORDER BY created_at, transfer_id LIMIT $4"};

constexpr Statement kTrialBalanceNow{
    "ledger_trial_balance_now",
    "SELECT id, type, name, debits_pending, debits_posted, credits_pending, credits_posted "
    "FROM ledger_accounts WHERE currency = $1 ORDER BY id"};

constexpr Statement kTrialBalanceAt{
    "ledger_trial_balance_at",
    "SELECT a.id, a.type, a.name, coalesce(s.dp, 0)::bigint, coalesce(s.dpo, 0)::bigint, "
    "coalesce(s.cp, 0)::bigint, coalesce(s.cpo, 0)::bigint FROM ledger_accounts a "
    "LEFT JOIN (SELECT account_id, sum(debits_pending) AS dp, sum(debits_posted) AS dpo, "
    "  sum(credits_pending) AS cp, sum(credits_posted) AS cpo FROM ledger_postings "
    "  WHERE currency = $1 "
    "  AND created_at <= timestamptz 'epoch' + $2::bigint * interval '1 microsecond' "
    "  GROUP BY account_id) s ON s.account_id = a.id "
    "WHERE a.currency = $1 ORDER BY a.id"};

constexpr Statement kVerifyAccounts{
    "ledger_verify_accounts",
    "SELECT coalesce(a.id, s.account_id)::text, a.debits_pending::text, a.debits_posted::text, "
    "a.credits_pending::text, a.credits_posted::text, coalesce(s.dp, 0)::text, "
    "coalesce(s.dpo, 0)::text, coalesce(s.cp, 0)::text, coalesce(s.cpo, 0)::text, "
    "(SELECT count(*) FROM ledger_accounts) "
    "FROM ledger_accounts a FULL JOIN ("
    "  SELECT account_id, sum(debits_pending) AS dp, sum(debits_posted) AS dpo, "
    "  sum(credits_pending) AS cp, sum(credits_posted) AS cpo "
    "  FROM ledger_postings GROUP BY account_id) s ON s.account_id = a.id "
    "WHERE a.id IS NULL OR (a.debits_pending, a.debits_posted, a.credits_pending, "
    "a.credits_posted) IS DISTINCT FROM (coalesce(s.dp, 0), coalesce(s.dpo, 0), "
    "coalesce(s.cp, 0), coalesce(s.cpo, 0)) "
    "UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    "(SELECT count(*) FROM ledger_accounts)"};

constexpr Statement kVerifyBatches{
    "ledger_verify_batches",
    "SELECT b.id, b.prev_hash, b.hash, ledger_batch_hash(b.id, b.prev_hash) = b.hash "
    "FROM ledger_batches b ORDER BY b.id"};

constexpr Statement kVerifyHead{"ledger_verify_head",
                                "SELECT last_batch_id, last_hash FROM ledger_chain_head"};

// Each history account's last history row must hold its counters.
constexpr Statement kVerifyHistory{
    "ledger_verify_history",
    "SELECT a.id, (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted)::text, "
    "(coalesce(h.debits_pending, 0), coalesce(h.debits_posted, 0), "
    " coalesce(h.credits_pending, 0), coalesce(h.credits_posted, 0))::text "
    "FROM ledger_accounts a LEFT JOIN LATERAL ("
    "  SELECT * FROM ledger_account_history x WHERE x.account_id = a.id "
    "  ORDER BY x.created_at DESC, x.transfer_id DESC LIMIT 1) h ON true "
    "WHERE a.history AND (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted) "
    "  IS DISTINCT FROM (coalesce(h.debits_pending, 0), coalesce(h.debits_posted, 0), "
    "  coalesce(h.credits_pending, 0), coalesce(h.credits_posted, 0)) ORDER BY a.id"};

constexpr Statement kVerifyOrphans{
    "ledger_verify_orphans",
    "SELECT count(*) FROM ledger_transfers t "
    "WHERE NOT EXISTS (SELECT 1 FROM ledger_batches b WHERE b.id = t.batch_id)"};

// ---- Array literals ----

void AppendQuoted(std::string& out, std::string_view value) {
  out += '"';
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

class ArrayBuilder {
 public:
  ArrayBuilder() : text_("{") {}
  void Text(std::string_view value) {
    Separator();
    AppendQuoted(text_, value);
  }
  void Int(std::int64_t value) {
    Separator();
    text_ += std::to_string(value);
  }
  void Bool(bool value) {
    Separator();
    text_ += value ? "t" : "f";
  }
  std::string Finish() {
    text_ += '}';
    return std::move(text_);
  }

 private:
  void Separator() {
    if (text_.size() > 1) text_ += ',';
  }
  std::string text_;
};

// ---- Parsing rows (database output is input: validated, never asserted) ----

Result<TransferKind> ParseKind(std::string_view text) {
  for (TransferKind kind :
       {TransferKind::kSingle, TransferKind::kPending, TransferKind::kPostPending,
        TransferKind::kVoidPending, TransferKind::kExpirePending}) {
    if (ToString(kind) == text) return kind;
  }
  return make_error_code(Errc::inconsistent_state);
}

Result<AccountType> ParseAccountType(std::string_view text) {
  for (AccountType type : {AccountType::kAsset, AccountType::kLiability, AccountType::kIncome,
                           AccountType::kExpense, AccountType::kEquity}) {
    if (ToString(type) == text) return type;
  }
  return make_error_code(Errc::inconsistent_state);
}

Result<std::int32_t> GetInt32(const PgResult& r, int row, int col) {
  LEDGER_TRY(auto value, r.GetInt64(row, col));
  if (value < INT32_MIN || value > INT32_MAX) return make_error_code(db::Errc::bad_value);
  return static_cast<std::int32_t>(value);
}

// Columns from `first` on: id, debit, credit, amount, currency, kind, linked, pending id, timeout,
// reason code, external ref, created_at in epoch microseconds.
Result<StoredTransfer> ParseStored(const PgResult& r, int row, int first = 0) {
  StoredTransfer s;
  Transfer& t = s.transfer;
  LEDGER_TRY(auto id, r.GetText(row, first + 0));
  t.id.value = std::string(id);
  LEDGER_TRY(t.debit_account_id.value, r.GetInt64(row, first + 1));
  LEDGER_TRY(t.credit_account_id.value, r.GetInt64(row, first + 2));
  LEDGER_TRY(t.amount, r.GetInt64(row, first + 3));
  LEDGER_TRY(auto currency, r.GetText(row, first + 4));
  t.currency = std::string(currency);
  LEDGER_TRY(auto kind, r.GetText(row, first + 5));
  LEDGER_TRY(t.kind, ParseKind(kind));
  LEDGER_TRY(t.linked, r.GetBool(row, first + 6));
  LEDGER_TRY(auto pending_id, r.GetText(row, first + 7));
  t.pending_id.value = std::string(pending_id);
  LEDGER_TRY(t.timeout_s, GetInt32(r, row, first + 8));
  LEDGER_TRY(t.reason_code, GetInt32(r, row, first + 9));
  LEDGER_TRY(auto external_ref, r.GetText(row, first + 10));
  t.external_ref = std::string(external_ref);
  LEDGER_TRY(s.created_at_us, r.GetInt64(row, first + 11));
  return s;
}

// Columns from `first` on: id, type, currency, code, name, four flags, four counters
// (kSelectAccount's order).
Result<AccountState> ParseAccount(const PgResult& r, int row, int first = 0) {
  AccountState s;
  Account& a = s.account;
  LEDGER_TRY(a.id.value, r.GetInt64(row, first + 0));
  LEDGER_TRY(auto type, r.GetText(row, first + 1));
  LEDGER_TRY(a.type, ParseAccountType(type));
  LEDGER_TRY(auto currency, r.GetText(row, first + 2));
  a.currency = std::string(currency);
  LEDGER_TRY(a.code, GetInt32(r, row, first + 3));
  LEDGER_TRY(auto name, r.GetText(row, first + 4));
  a.name = std::string(name);
  LEDGER_TRY(a.flags.debits_must_not_exceed_credits, r.GetBool(row, first + 5));
  LEDGER_TRY(a.flags.credits_must_not_exceed_debits, r.GetBool(row, first + 6));
  LEDGER_TRY(a.flags.closed, r.GetBool(row, first + 7));
  LEDGER_TRY(a.flags.history, r.GetBool(row, first + 8));
  LEDGER_TRY(s.balance.debits_pending, r.GetInt64(row, first + 9));
  LEDGER_TRY(s.balance.debits_posted, r.GetInt64(row, first + 10));
  LEDGER_TRY(s.balance.credits_pending, r.GetInt64(row, first + 11));
  LEDGER_TRY(s.balance.credits_posted, r.GetInt64(row, first + 12));
  return s;
}

Result<Balance> ParseBalance(const PgResult& r, int row, int first_col) {
  Balance b;
  LEDGER_TRY(b.debits_pending, r.GetInt64(row, first_col));
  LEDGER_TRY(b.debits_posted, r.GetInt64(row, first_col + 1));
  LEDGER_TRY(b.credits_pending, r.GetInt64(row, first_col + 2));
  LEDGER_TRY(b.credits_posted, r.GetInt64(row, first_col + 3));
  return b;
}

std::int64_t ToMicros(Timestamp t) { return t.time_since_epoch().count(); }

bool SameAccount(const Account& a, const Account& b) {
  return a.id == b.id && a.type == b.type && a.currency == b.currency && a.code == b.code &&
         a.name == b.name &&
         a.flags.debits_must_not_exceed_credits == b.flags.debits_must_not_exceed_credits &&
         a.flags.credits_must_not_exceed_debits == b.flags.credits_must_not_exceed_debits &&
         a.flags.closed == b.flags.closed && a.flags.history == b.flags.history;
}

bool ValidAccount(const Account& a) {
  return a.id.value > 0 && IsValidCurrency(a.currency) && a.code >= 0 && !a.name.empty() &&
         a.name.size() <= 200 && IsValidExternalRef(a.name) &&
         !(a.flags.debits_must_not_exceed_credits && a.flags.credits_must_not_exceed_debits);
}

// kWriteBatch's and kWriteRows's parameters $1-$16: the plan's rows as arrays, the batch id and
// timestamp, the failed ids.
Params WriteParams(const BatchPlan& plan, std::int64_t batch_id, std::int64_t now_us) {
  ArrayBuilder id, debit, credit, amount, currency, kind, linked, pending, timeout, reason, ref,
      entry;
  for (const PlannedTransfer& p : plan.inserts) {
    const Transfer& t = p.transfer;
    id.Text(t.id.value);
    debit.Int(t.debit_account_id.value);
    credit.Int(t.credit_account_id.value);
    amount.Int(t.amount);
    currency.Text(t.currency);
    kind.Text(ToString(t.kind));
    linked.Bool(t.linked);
    pending.Text(t.pending_id.value);
    timeout.Int(t.timeout_s);
    reason.Int(t.reason_code);
    ref.Text(t.external_ref);
    entry.Text(p.entry_id.value);
  }
  ArrayBuilder failed_ids, failed_results;
  for (const auto& [failed_id, result] : plan.failures) {
    failed_ids.Text(failed_id.value);
    failed_results.Text(ToString(result));
  }
  Params params;
  params.AddUntyped(id.Finish())
      .AddUntyped(debit.Finish())
      .AddUntyped(credit.Finish())
      .AddUntyped(amount.Finish())
      .AddUntyped(currency.Finish())
      .AddUntyped(kind.Finish())
      .AddUntyped(linked.Finish())
      .AddUntyped(pending.Finish())
      .AddUntyped(timeout.Finish())
      .AddUntyped(reason.Finish())
      .AddUntyped(ref.Finish())
      .AddUntyped(entry.Finish())
      .Add(batch_id)
      .Add(now_us)
      .AddUntyped(failed_ids.Finish())
      .AddUntyped(failed_results.Finish());
  return params;
}

}  // namespace

std::string_view ToString(AccountResult result) {
  switch (result) {
    case AccountResult::kOk:
      return "ok";
    case AccountResult::kExists:
      return "exists";
    case AccountResult::kExistsWithDifferentFields:
      return "exists_with_different_fields";
    case AccountResult::kNameTaken:
      return "name_taken";
    case AccountResult::kInvalid:
      return "invalid";
  }
  return "unknown";
}

PostgresLedger::PostgresLedger(db::PgPool& pool, asio::any_io_executor executor,
                               PostgresLedgerOptions options)
    : pool_(pool),
      options_(options),
      batcher_(executor, options.batcher,
               [this](std::span<const Transfer> transfers, std::span<const std::size_t> ends,
                      Deadline deadline) { return CommitBatch(transfers, ends, deadline); }) {}

asio::awaitable<void> PostgresLedger::Stop() { co_await batcher_.Stop(); }

asio::awaitable<Result<std::vector<TransferResult>>> PostgresLedger::PostTransfers(
    std::vector<Transfer> transfers, Deadline deadline) {
  co_return co_await batcher_.Submit(std::move(transfers), deadline);
}

asio::awaitable<Result<std::vector<TransferResult>>> PostgresLedger::CommitBatch(
    std::span<const Transfer> transfers, std::span<const std::size_t> request_ends,
    Deadline deadline) {
  CachedBatch cached = co_await TryCachedBatch(transfers, request_ends, deadline);
  if (cached.decided) {
    if (cached.error) co_return cached.error;
    co_return std::move(cached.results);
  }
  db::TransactionOptions tx;
  tx.retry = options_.retry;
  tx.begin_with_first_statement = true;
  tx.body_may_commit = true;
  co_return co_await db::RunInTransaction(
      pool_, deadline, tx,
      [&](PgConnection& conn) -> asio::awaitable<Result<std::vector<TransferResult>>> {
        co_return co_await WriteBatch(conn, transfers, request_ends, deadline, /*commit=*/true);
      });
}

asio::awaitable<PostgresLedger::CachedBatch> PostgresLedger::TryCachedBatch(
    std::span<const Transfer> transfers, std::span<const std::size_t> request_ends,
    Deadline deadline) {
  using Answer = CachedBatch;
  if (!cache_.valid) co_return Answer();
  // Only what the cache can decide alone: new singles and pendings on cached accounts. A
  // resolution needs its pending transfer, which only the journal holds.
  BatchSnapshot snapshot;
  for (const Transfer& t : transfers) {
    if (t.kind != TransferKind::kSingle && t.kind != TransferKind::kPending) co_return Answer();
    for (const AccountId account_id : {t.debit_account_id, t.credit_account_id}) {
      auto it = cache_.accounts.find(account_id);
      if (it == cache_.accounts.end()) co_return Answer();
      snapshot.accounts.emplace(account_id, it->second);
    }
  }
  // This process's clock, never before the previous batch's time (the journal's time order is its
  // batch order, as kReadBatch keeps it).
  const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  snapshot.now_us = std::max<std::int64_t>(now_us, cache_.last_now_us);
  BatchPlan plan = PlanBatch(transfers, request_ends, snapshot);
  // Any refusal is decided on the fresh state instead: the cache may be behind a change that does
  // not move the head (an account closed or reopened), and a refusal of a new id is recorded for
  // good.
  if (plan.inserts.empty() || !plan.failures.empty() ||
      std::any_of(plan.results.begin(), plan.results.end(),
                  [](TransferResult r) { return r != TransferResult::kOk; })) {
    co_return Answer();
  }

  const std::int64_t expected_batch_id = cache_.last_batch_id;
  const std::int64_t batch_id = expected_batch_id + 1;
  const auto row_count = static_cast<std::int32_t>(plan.inserts.size());
  std::string hash = BatchHash(cache_.last_hash, batch_id, plan.inserts, snapshot.now_us);
  ArrayBuilder ids;
  for (const PlannedTransfer& p : plan.inserts) ids.Text(p.transfer.id.value);
  Params lock_params;
  lock_params.Add(expected_batch_id).AddBytea(cache_.last_hash).AddUntyped(ids.Finish());
  Params write_params = WriteParams(plan, batch_id, snapshot.now_us);
  write_params.AddBytea(hash).Add(row_count);

  // One round trip: BEGIN, the head check, the write, COMMIT. The write itself still fails the
  // transaction on anything the database refuses (an id already stored, a limit, a closed account).
  bool refused = false;  // By the server: nothing was committed.
  db::TransactionOptions tx;
  tx.retry.attempts_max = 1;
  tx.begin_with_first_statement = true;
  tx.body_may_commit = true;
  auto written = co_await db::RunInTransaction(
      pool_, deadline, tx, [&](PgConnection& conn) -> asio::awaitable<Result<void>> {
        std::vector<db::PipelineStep> steps;
        steps.push_back(db::PipelineStep{kLockCachedHead, std::move(lock_params)});
        steps.push_back(db::PipelineStep{kWriteBatch, std::move(write_params)});
        steps.push_back(db::PipelineStep{kCommit, Params()});
        auto done = co_await conn.ExecutePipeline(std::move(steps), deadline);
        if (!done) {
          refused = !conn.last_error().sqlstate.empty();
          co_return done.error();
        }
        if (done.value()[2].command_status() != "COMMIT") {
          refused = true;
          co_return make_error_code(db::Errc::transaction_rolled_back);
        }
        LEDGER_CO_TRY(const std::int64_t inserted, done.value()[1].GetInt64(0, 0));
        LEDGER_CO_TRY(const std::int64_t heads_moved, done.value()[1].GetInt64(0, 1));
        if (inserted != row_count || heads_moved != 1) {
          co_return make_error_code(Errc::inconsistent_state);
        }
        co_return outcome::success();
      });
  if (!written) {
    cache_.valid = false;
    // Refused by the server (another writer moved the head, an id exists, a limit, ...): the full
    // path reads the book and decides. Anything else (the connection lost around COMMIT) leaves the
    // outcome unknown, reported as the full path reports it.
    if (refused) co_return Answer();
    co_return Answer{.decided = true, .error = written.error(), .results = {}};
  }
  for (auto& [account_id, state] : plan.accounts_after) cache_.accounts[account_id] = state;
  cache_.last_batch_id = batch_id;
  cache_.last_hash = std::move(hash);
  cache_.last_now_us = snapshot.now_us;
  cached_batches_.fetch_add(1, std::memory_order_relaxed);
  co_return Answer{.decided = true, .error = {}, .results = std::move(plan.results)};
}

asio::awaitable<Result<std::vector<TransferResult>>> PostgresLedger::PostTransfersInTransaction(
    PgConnection& conn, std::vector<Transfer> transfers, Deadline deadline) {
  const std::size_t end = transfers.size();
  co_return co_await WriteBatch(conn, transfers, std::span<const std::size_t>(&end, 1), deadline,
                                /*commit=*/false);
}

asio::awaitable<Result<std::vector<TransferResult>>> PostgresLedger::WriteBatch(
    PgConnection& conn, std::span<const Transfer> transfers,
    std::span<const std::size_t> request_ends, Deadline deadline, bool commit) {
  // Two round trips: lock the head and read (locking the accounts) in one pipeline, after the
  // transaction's BEGIN when the caller deferred it; then write (and COMMIT, when `commit`).
  // Ids that cannot be valid are left out of the look-ups (they could not be stored anyway,
  // and a NUL byte would make the statement fail for the whole batch).
  std::set<std::string_view> ids;
  std::set<std::string_view> pending_ids;
  std::set<std::int64_t> account_ids;
  for (const Transfer& t : transfers) {
    if (IsValidTransferId(t.id.value)) ids.insert(t.id.value);
    if (IsValidTransferId(t.pending_id.value)) pending_ids.insert(t.pending_id.value);
    if (t.debit_account_id.value > 0) account_ids.insert(t.debit_account_id.value);
    if (t.credit_account_id.value > 0) account_ids.insert(t.credit_account_id.value);
  }
  ArrayBuilder id_array, pending_array, account_array;
  for (auto id : ids) id_array.Text(id);
  for (auto id : pending_ids) pending_array.Text(id);
  for (auto id : account_ids) account_array.Int(id);
  Params read_params;
  read_params.AddUntyped(id_array.Finish())
      .AddUntyped(pending_array.Finish())
      .AddUntyped(account_array.Finish());
  std::vector<db::PipelineStep> steps;
  steps.push_back(db::PipelineStep{kLockHead, Params()});
  steps.push_back(db::PipelineStep{kReadBatch, std::move(read_params)});
  LEDGER_CO_TRY(auto first, co_await conn.ExecutePipeline(std::move(steps), deadline));
  const PgResult& head = first[0];
  const PgResult& read = first[1];

  BatchSnapshot snapshot;
  if (head.rows() != 1) co_return make_error_code(Errc::inconsistent_state);
  LEDGER_CO_TRY(const std::int64_t last_batch_id, head.GetInt64(0, 0));
  LEDGER_CO_TRY(const std::string last_hash, head.GetBytea(0, 1));
  LEDGER_CO_TRY(const bool ids_sort_bytewise, head.GetBool(0, 2));
  if (last_hash.size() != 32) co_return make_error_code(Errc::inconsistent_state);

  if (read.rows() < 1 || read.columns() != kReadBatchColumnCount) {
    co_return make_error_code(Errc::inconsistent_state);
  }
  LEDGER_CO_TRY(snapshot.now_us, read.GetInt64(0, kNowColumn));
  for (int row = 0; row < read.rows(); ++row) {
    if (!read.IsNull(row, kStoredColumns)) {
      LEDGER_CO_TRY(auto stored, ParseStored(read, row, kStoredColumns));
      TransferId id = stored.transfer.id;
      snapshot.stored.emplace(std::move(id), std::move(stored));
    } else if (!read.IsNull(row, kAccountColumns)) {
      LEDGER_CO_TRY(auto account, ParseAccount(read, row, kAccountColumns));
      AccountId id = account.account.id;
      snapshot.accounts.emplace(id, std::move(account));
    } else if (!read.IsNull(row, kResolutionColumns)) {
      LEDGER_CO_TRY(auto pending_id, read.GetText(row, kResolutionColumns));
      LEDGER_CO_TRY(auto kind_text, read.GetText(row, kResolutionColumns + 1));
      LEDGER_CO_TRY(auto kind, ParseKind(kind_text));
      snapshot.resolutions[TransferId{std::string(pending_id)}] =
          kind == TransferKind::kPostPending   ? PendingResolution::kPosted
          : kind == TransferKind::kVoidPending ? PendingResolution::kVoided
                                               : PendingResolution::kExpired;
    } else if (!read.IsNull(row, kFailureColumns)) {
      LEDGER_CO_TRY(auto id, read.GetText(row, kFailureColumns));
      LEDGER_CO_TRY(auto result, read.GetText(row, kFailureColumns + 1));
      snapshot.failed[TransferId{std::string(id)}] = std::string(result);
    }
  }

  BatchPlan plan = PlanBatch(transfers, request_ends, snapshot);
  if (plan.inserts.empty() && plan.failures.empty()) co_return std::move(plan.results);

  const std::int64_t batch_id = last_batch_id + 1;
  const auto row_count = static_cast<std::int32_t>(plan.inserts.size());
  Params params = WriteParams(plan, batch_id, snapshot.now_us);
  // The batch's last statement, with its COMMIT behind it in the same round trip when this
  // transaction is the batch's own.
  auto last_write = [&](const Statement& statement,
                        Params last_params) -> asio::awaitable<Result<PgResult>> {
    std::vector<db::PipelineStep> writes;
    writes.push_back(db::PipelineStep{statement, std::move(last_params)});
    if (commit) writes.push_back(db::PipelineStep{kCommit, Params()});
    auto done = co_await conn.ExecutePipeline(std::move(writes), deadline);
    if (!done) {
      if (conn.last_error().sqlstate == "LG001")
        co_return make_error_code(Errc::inconsistent_state);
      co_return done.error();
    }
    // After an error ignored inside the transaction PostgreSQL answers COMMIT with ROLLBACK.
    if (commit && done.value()[1].command_status() != "COMMIT") {
      co_return make_error_code(db::Errc::transaction_rolled_back);
    }
    co_return std::move(done.value()[0]);
  };
  if (ids_sort_bytewise) {
    std::string hash = BatchHash(last_hash, batch_id, plan.inserts, snapshot.now_us);
    params.AddBytea(hash).Add(row_count);
    LEDGER_CO_TRY(auto written, co_await last_write(kWriteBatch, std::move(params)));
    LEDGER_CO_TRY(const std::int64_t inserted, written.GetInt64(0, 0));
    LEDGER_CO_TRY(const std::int64_t heads_moved, written.GetInt64(0, 1));
    if (inserted != row_count || heads_moved != (row_count > 0 ? 1 : 0)) {
      co_return make_error_code(Errc::inconsistent_state);
    }
    if (commit) {
      // Committed: what this transaction read under the head lock, as its writes left it, is the
      // book as of the new head. Accounts cached from before another writer's batch are stale.
      if (!cache_.valid || cache_.last_batch_id != last_batch_id) cache_.accounts.clear();
      for (auto& [account_id, state] : plan.accounts_after) cache_.accounts[account_id] = state;
      cache_.valid = true;
      if (row_count > 0) {
        cache_.last_batch_id = batch_id;
        cache_.last_hash = std::move(hash);
      } else {
        cache_.last_batch_id = last_batch_id;
        cache_.last_hash = last_hash;
      }
      cache_.last_now_us = snapshot.now_us;
    }
  } else {
    LEDGER_CO_TRY(auto written, co_await conn.Execute(kWriteRows, std::move(params), deadline));
    LEDGER_CO_TRY(const std::int64_t inserted, written.GetInt64(0, 0));
    if (inserted != row_count) co_return make_error_code(Errc::inconsistent_state);
    if (row_count > 0) {
      LEDGER_CO_TRYV(co_await last_write(kAppendBatch, Params().Add(batch_id).Add(row_count)));
    }  // Else the transaction stays open: RunInTransaction commits it (body_may_commit).
  }
  co_return std::move(plan.results);
}

asio::awaitable<Result<std::vector<AccountResult>>> PostgresLedger::CreateAccounts(
    std::vector<Account> accounts, Deadline deadline) {
  // Named, not a braced temporary in the co_await: GCC 12 may destroy that twice, and the retry
  // policy holds a std::function.
  db::TransactionOptions tx;
  tx.retry = options_.retry;
  co_return co_await db::RunInTransaction(
      pool_, deadline, tx,
      [&](PgConnection& conn) -> asio::awaitable<Result<std::vector<AccountResult>>> {
        std::vector<AccountResult> results;
        results.reserve(accounts.size());
        for (const Account& a : accounts) {
          if (!ValidAccount(a)) {
            results.push_back(AccountResult::kInvalid);
            continue;
          }
          Params params;
          params.Add(a.id.value)
              .AddUntyped(ToString(a.type))
              .AddUntyped(a.currency)
              .Add(a.code)
              .Add(a.name)
              .Add(a.flags.debits_must_not_exceed_credits)
              .Add(a.flags.credits_must_not_exceed_debits)
              .Add(a.flags.closed)
              .Add(a.flags.history);
          LEDGER_CO_TRY(auto inserted,
                        co_await conn.Execute(kInsertAccount, std::move(params), deadline));
          if (inserted.rows() == 1) {
            results.push_back(AccountResult::kOk);
            continue;
          }
          LEDGER_CO_TRY(auto existing,
                        co_await conn.Execute(kSelectAccount, Params().Add(a.id.value), deadline));
          if (existing.rows() == 0) {
            results.push_back(AccountResult::kNameTaken);
            continue;
          }
          LEDGER_CO_TRY(auto state, ParseAccount(existing, 0));
          results.push_back(SameAccount(a, state.account)
                                ? AccountResult::kExists
                                : AccountResult::kExistsWithDifferentFields);
        }
        co_return results;
      });
}

asio::awaitable<Result<std::int64_t>> PostgresLedger::ExpirePendingTransfers(std::int32_t limit,
                                                                             Deadline deadline) {
  limit = std::clamp<std::int32_t>(limit, 0,
                                   static_cast<std::int32_t>(options_.batcher.batch_size_max));
  if (limit == 0) co_return 0;
  std::vector<Transfer> expiries;
  {
    LEDGER_CO_TRY(auto lease, co_await pool_.Acquire(deadline));
    LEDGER_CO_TRY(auto due, co_await lease->Execute(kSelectExpired, Params().Add(limit), deadline));
    for (int row = 0; row < due.rows(); ++row) {
      LEDGER_CO_TRY(auto pending_id, due.GetText(row, 0));
      Transfer t;
      t.id.value = "expire:" + std::string(pending_id);
      t.kind = TransferKind::kExpirePending;
      t.pending_id.value = std::string(pending_id);
      expiries.push_back(std::move(t));
    }
  }
  if (expiries.empty()) co_return 0;
  LEDGER_CO_TRY(auto results, co_await PostTransfers(std::move(expiries), deadline));
  // A pending posted or voided meanwhile answers pending_already_*: nothing to expire then.
  co_return static_cast<std::int64_t>(
      std::count(results.begin(), results.end(), TransferResult::kOk));
}

asio::awaitable<Result<Balance>> PostgresLedger::GetBalance(AccountId account,
                                                            std::optional<Timestamp> at,
                                                            Deadline deadline) {
  LEDGER_CO_TRY(auto lease, co_await pool_.Acquire(deadline));
  if (!at) {
    LEDGER_CO_TRY(auto r,
                  co_await lease->Execute(kSelectAccount, Params().Add(account.value), deadline));
    if (r.rows() == 0) co_return make_error_code(Errc::not_found);
    LEDGER_CO_TRY(auto state, ParseAccount(r, 0));
    co_return state.balance;
  }
  LEDGER_CO_TRY(auto h,
                co_await lease->Execute(kBalanceAtHistory,
                                        Params().Add(account.value).Add(ToMicros(*at)), deadline));
  if (h.rows() != 1) co_return make_error_code(Errc::inconsistent_state);
  LEDGER_CO_TRY(const bool exists, h.GetBool(0, 0));
  if (!exists) co_return make_error_code(Errc::not_found);
  LEDGER_CO_TRY(const bool keeps_history, h.GetBool(0, 1));
  if (keeps_history) co_return ParseBalance(h, 0, 2);
  LEDGER_CO_TRY(auto r, co_await lease->Execute(
                            kBalanceAt, Params().Add(account.value).Add(ToMicros(*at)), deadline));
  if (r.rows() != 1) co_return make_error_code(Errc::inconsistent_state);
  co_return ParseBalance(r, 0, 1);
}

asio::awaitable<Result<StatementPage>> PostgresLedger::GetStatement(AccountId account,
                                                                    StatementCursor cursor,
                                                                    std::int32_t limit,
                                                                    Deadline deadline) {
  limit = std::clamp<std::int32_t>(limit, 1, 1000);
  LEDGER_CO_TRY(auto lease, co_await pool_.Acquire(deadline));
  // The cursor's id is compared as text; an empty id sorts first, so the default cursor (epoch, "")
  // starts at the beginning.
  Params params;
  params.Add(account.value)
      .Add(ToMicros(cursor.created_at))
      .Add(cursor.transfer_id.value)
      .Add(limit);
  LEDGER_CO_TRY(auto flag, co_await lease->Execute(kAccountHistoryFlag, Params().Add(account.value),
                                                   deadline));
  if (flag.rows() != 1) co_return make_error_code(Errc::not_found);
  LEDGER_CO_TRY(const bool keeps_history, flag.GetBool(0, 0));
  const Statement& query = keeps_history ? kStatementFromHistory : kStatement;
  LEDGER_CO_TRY(auto r, co_await lease->Execute(query, std::move(params), deadline));
  StatementPage page;
  for (int row = 0; row < r.rows(); ++row) {
    StatementLine line;
    LEDGER_CO_TRY(auto id, r.GetText(row, 0));
    line.transfer_id.value = std::string(id);
    LEDGER_CO_TRY(auto micros, r.GetInt64(row, 1));
    line.created_at = Timestamp(std::chrono::microseconds(micros));
    LEDGER_CO_TRY(auto kind, r.GetText(row, 2));
    LEDGER_CO_TRY(line.kind, ParseKind(kind));
    LEDGER_CO_TRY(line.reason_code, GetInt32(r, row, 3));
    LEDGER_CO_TRY(auto ref, r.GetText(row, 4));
    line.external_ref = std::string(ref);
    LEDGER_CO_TRY(line.delta, ParseBalance(r, row, 5));
    LEDGER_CO_TRY(line.running_balance, ParseBalance(r, row, 9));
    page.lines.push_back(std::move(line));
  }
  if (static_cast<std::int32_t>(page.lines.size()) == limit) {
    page.next = StatementCursor{page.lines.back().created_at, page.lines.back().transfer_id};
  }
  co_return page;
}

asio::awaitable<Result<void>> PostgresLedger::SetAccountClosed(AccountId account, bool closed,
                                                               Deadline deadline) {
  LEDGER_CO_TRY(auto lease, co_await pool_.Acquire(deadline));
  LEDGER_CO_TRY(auto r, co_await lease->Execute(kSetClosed, Params().Add(account.value).Add(closed),
                                                deadline));
  if (r.rows() != 1) co_return make_error_code(Errc::not_found);
  co_return outcome::success();
}

asio::awaitable<Result<TrialBalance>> PostgresLedger::GetTrialBalance(std::string currency,
                                                                      std::optional<Timestamp> at,
                                                                      Deadline deadline) {
  if (!IsValidCurrency(currency)) co_return make_error_code(Errc::not_found);
  LEDGER_CO_TRY(auto lease, co_await pool_.Acquire(deadline));
  // if/else rather than ?: — GCC 12 miscompiles co_await inside a conditional expression.
  Result<PgResult> rows = make_error_code(Errc::inconsistent_state);
  if (at) {
    rows = co_await lease->Execute(kTrialBalanceAt, Params().Add(currency).Add(ToMicros(*at)),
                                   deadline);
  } else {
    rows = co_await lease->Execute(kTrialBalanceNow, Params().Add(currency), deadline);
  }
  if (!rows) co_return rows.error();
  const PgResult& r = rows.value();
  TrialBalance trial;
  trial.currency = currency;
  for (int row = 0; row < r.rows(); ++row) {
    TrialBalanceLine line;
    LEDGER_CO_TRY(line.account_id.value, r.GetInt64(row, 0));
    LEDGER_CO_TRY(auto type, r.GetText(row, 1));
    LEDGER_CO_TRY(line.type, ParseAccountType(type));
    LEDGER_CO_TRY(auto name, r.GetText(row, 2));
    line.name = std::string(name);
    LEDGER_CO_TRY(line.balance, ParseBalance(r, row, 3));
    Balance& total = trial.total;
    if (__builtin_add_overflow(total.debits_pending, line.balance.debits_pending,
                               &total.debits_pending) ||
        __builtin_add_overflow(total.debits_posted, line.balance.debits_posted,
                               &total.debits_posted) ||
        __builtin_add_overflow(total.credits_pending, line.balance.credits_pending,
                               &total.credits_pending) ||
        __builtin_add_overflow(total.credits_posted, line.balance.credits_posted,
                               &total.credits_posted)) {
      co_return make_error_code(Errc::inconsistent_state);
    }
    trial.lines.push_back(std::move(line));
  }
  co_return trial;
}

asio::awaitable<Result<VerifyReport>> PostgresLedger::Verify(Deadline deadline) {
  db::TransactionOptions tx{.isolation = db::IsolationLevel::kRepeatableRead,
                            .retry = options_.retry};
  co_return co_await db::RunInTransaction(
      pool_, deadline, tx, [&](PgConnection& conn) -> asio::awaitable<Result<VerifyReport>> {
        VerifyReport report;
        LEDGER_CO_TRY(auto accounts, co_await conn.Execute(kVerifyAccounts, Params(), deadline));
        for (int row = 0; row < accounts.rows(); ++row) {
          LEDGER_CO_TRY(report.accounts_checked, accounts.GetInt64(row, 9));
          if (accounts.IsNull(row, 0)) continue;  // The count-only row.
          auto text = [&](int col) -> std::string {
            return accounts.IsNull(row, col) ? "missing"
                                             : std::string(accounts.GetText(row, col).value());
          };
          static constexpr std::string_view kNames[] = {"debits_pending", "debits_posted",
                                                        "credits_pending", "credits_posted"};
          for (int k = 0; k < 4; ++k) {
            if (text(1 + k) == text(5 + k)) continue;
            report.differences.push_back({VerifyDifference::Kind::kAccountCounters,
                                          fmt::format("account {} {} stored {} journal {}", text(0),
                                                      kNames[k], text(1 + k), text(5 + k))});
          }
        }

        LEDGER_CO_TRY(auto batches, co_await conn.Execute(kVerifyBatches, Params(), deadline));
        std::string expected_prev(32, '\0');
        std::int64_t expected_id = 1;
        for (int row = 0; row < batches.rows(); ++row) {
          LEDGER_CO_TRY(const std::int64_t id, batches.GetInt64(row, 0));
          LEDGER_CO_TRY(auto prev, batches.GetBytea(row, 1));
          LEDGER_CO_TRY(auto hash, batches.GetBytea(row, 2));
          const bool hash_ok = !batches.IsNull(row, 3) && batches.GetBool(row, 3).value();
          if (id != expected_id || prev != expected_prev) {
            report.differences.push_back(
                {VerifyDifference::Kind::kBatchChainLink,
                 fmt::format("batch {} does not follow batch {}", id, expected_id - 1)});
          }
          if (!hash_ok) {
            report.differences.push_back(
                {VerifyDifference::Kind::kBatchHash,
                 fmt::format("batch {} hash differs from its transfers", id)});
          }
          expected_prev = std::move(hash);
          expected_id = id + 1;
          ++report.batches_checked;
        }

        LEDGER_CO_TRY(auto head, co_await conn.Execute(kVerifyHead, Params(), deadline));
        if (head.rows() != 1) {
          report.differences.push_back(
              {VerifyDifference::Kind::kChainHead, "chain head row missing"});
        } else {
          LEDGER_CO_TRY(const std::int64_t last_id, head.GetInt64(0, 0));
          LEDGER_CO_TRY(auto last_hash, head.GetBytea(0, 1));
          if (last_id != expected_id - 1 || last_hash != expected_prev) {
            report.differences.push_back({VerifyDifference::Kind::kChainHead,
                                          fmt::format("chain head names batch {}, last batch is {}",
                                                      last_id, expected_id - 1)});
          }
        }

        LEDGER_CO_TRY(auto history, co_await conn.Execute(kVerifyHistory, Params(), deadline));
        for (int row = 0; row < history.rows(); ++row) {
          LEDGER_CO_TRY(const std::int64_t id, history.GetInt64(row, 0));
          LEDGER_CO_TRY(auto counters, history.GetText(row, 1));
          LEDGER_CO_TRY(auto last, history.GetText(row, 2));
          report.differences.push_back(
              {VerifyDifference::Kind::kAccountHistory,
               fmt::format("account {} counters {} but its history ends at {}", id, counters,
                           last)});
        }

        LEDGER_CO_TRY(auto orphans, co_await conn.Execute(kVerifyOrphans, Params(), deadline));
        LEDGER_CO_TRY(const std::int64_t orphan_count, orphans.GetInt64(0, 0));
        if (orphan_count != 0) {
          report.differences.push_back(
              {VerifyDifference::Kind::kOrphanTransfers,
               fmt::format("{} transfers belong to no batch of the chain", orphan_count)});
        }
        co_return report;
      });
}

}  // namespace paygate::ledger
