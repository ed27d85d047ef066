// PostgresLedger against a real PostgreSQL: result codes, idempotency, two-phase, linked entries,
// invariants the database enforces on its own, verify, group commit on a hot account, and a seeded
// randomized run.
#include <utility>  // Before Asio (DESIGN.md §2).

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "ledger/db/migrations.h"
#include "ledger/db/pg_pool.h"
#include "ledger/db/transaction.h"
#include "ledger/ledger/postgres_ledger.h"
#include "tests/integration/db/db_test_util.h"
#include "tests/testing/ledger_builders.h"
#include "tests/testing/pg_cluster.h"
#include "tests/testing/run_async.h"

namespace paygate::ledger {

void PrintTo(TransferResult result, std::ostream* os) { *os << ToString(result); }
void PrintTo(AccountResult result, std::ostream* os) { *os << ToString(result); }

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using db::test::FreshDatabase;
using db::test::In;
using db::test::MakePoolOptions;
using R = TransferResult;
using ::testing::HasSubstr;
using K = TransferKind;

// Ids of the test chart of accounts.
constexpr std::int64_t kClearing = 1;  // provider_clearing:wechat:m1, asset
constexpr std::int64_t kPremiums = 2;  // premiums_received, liability
constexpr std::int64_t kBankUsd = 3;   // bank:b1 in USD
constexpr std::int64_t kPayable = 4;   // claims_payable: debits must not exceed credits
constexpr std::int64_t kClosed = 5;    // closed
constexpr std::int64_t kExpense = 6;   // claims_expense
constexpr std::int64_t kReserve = 7;   // suspense: credits must not exceed debits

Account MakeAccount(std::int64_t id, AccountType type, std::string currency, std::string name,
                    AccountFlags flags = {}) {
  return Account{AccountId{id}, type, std::move(currency), 0, std::move(name), flags};
}

std::vector<Account> Chart() {
  return {
      MakeAccount(kClearing, AccountType::kAsset, "CNY", "provider_clearing:wechat:m1"),
      MakeAccount(kPremiums, AccountType::kLiability, "CNY", "premiums_received"),
      MakeAccount(kBankUsd, AccountType::kAsset, "USD", "bank:b1"),
      MakeAccount(kPayable, AccountType::kLiability, "CNY", "claims_payable",
                  {.debits_must_not_exceed_credits = true}),
      MakeAccount(kClosed, AccountType::kAsset, "CNY", "old", {.closed = true}),
      MakeAccount(kExpense, AccountType::kExpense, "CNY", "claims_expense"),
      MakeAccount(kReserve, AccountType::kAsset, "CNY", "suspense",
                  {.credits_must_not_exceed_debits = true}),
  };
}

Transfer T(std::string id, std::int64_t debit, std::int64_t credit, std::int64_t amount,
           K kind = K::kSingle) {
  return paygate::testing::TransferOf(std::move(id), debit, credit, amount, kind);
}

Transfer Resolve(std::string id, std::string pending, K kind, std::int64_t amount = 0) {
  return paygate::testing::ResolveOf(std::move(id), std::move(pending), kind, amount);
}

using testing::RunUntilDone;

void RunUntilDone(asio::io_context& io, asio::awaitable<void> task) {
  std::exception_ptr error;
  bool done = false;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e) {
    error = e;
    done = true;
  });
  io.restart();
  while (!done) io.run_one();
  if (error) std::rethrow_exception(error);
}

class LedgerTest : public ::testing::Test {
 public:
  LedgerTest() : pool_(io_.get_executor(), MakePoolOptions(FreshDatabase(), 4)) {
    auto applied = RunUntilDone(io_, db::ApplyMigrations(pool_, In(30s)));
    EXPECT_TRUE(applied) << applied.error().message;
    PostgresLedgerOptions options;
    options.batcher.batch_size_max = 1000;
    options.batcher.batch_wait_max_us = 300us;
    ledger_ = std::make_unique<PostgresLedger>(pool_, io_.get_executor(), options);
    auto created = RunUntilDone(io_, ledger_->CreateAccounts(Chart(), In(10s)));
    EXPECT_TRUE(created);
  }

  ~LedgerTest() override {
    RunUntilDone(io_, ledger_->Stop());
    ledger_.reset();
  }

  std::vector<R> Post(std::vector<Transfer> transfers) {
    auto results = RunUntilDone(io_, ledger_->PostTransfers(std::move(transfers), In(10s)));
    EXPECT_TRUE(results) << results.error().message();
    return results ? results.value() : std::vector<R>{};
  }

  R PostOne(Transfer t) {
    auto results = Post({std::move(t)});
    return results.empty() ? R::kOk : results[0];
  }

  Balance BalanceOf(std::int64_t account, std::optional<Timestamp> at = std::nullopt) {
    auto balance = RunUntilDone(io_, ledger_->GetBalance(AccountId{account}, at, In(10s)));
    EXPECT_TRUE(balance) << balance.error().message();
    return balance ? balance.value() : Balance{};
  }

  // Runs SQL as the superuser on a pooled connection (set-up, inspection, tampering).
  Result<db::PgResult> Sql(std::string sql) {
    return RunUntilDone(io_, [this, sql]() -> asio::awaitable<Result<db::PgResult>> {
      auto lease = co_await pool_.Acquire(In(10s));
      if (!lease) co_return lease.error();
      co_return co_await lease.value()->ExecuteSimple(sql, In(10s));
    }());
  }

  // Runs SQL expected to fail; returns "SQLSTATE: message" of the server's error, "" on success.
  std::string SqlError(std::string sql) {
    return RunUntilDone(io_, [this, sql]() -> asio::awaitable<std::string> {
      auto lease = co_await pool_.Acquire(In(10s));
      if (!lease) co_return "acquire failed";
      auto r = co_await lease.value()->ExecuteSimple(sql, In(10s));
      if (r) co_return "";
      co_return lease.value()->last_error().sqlstate + ": " + lease.value()->last_error().message;
    }());
  }

  std::int64_t SqlInt(std::string sql) {
    auto r = Sql(sql);
    EXPECT_TRUE(r) << sql;
    return r ? r.value().GetInt64(0, 0).value() : -1;
  }

  Timestamp DbNow() {
    return Timestamp(std::chrono::microseconds(
        SqlInt("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint")));
  }

  VerifyReport VerifyLedger() {
    auto report = RunUntilDone(io_, ledger_->Verify(In(30s)));
    EXPECT_TRUE(report) << report.error().message();
    return report ? report.value() : VerifyReport{};
  }

  asio::io_context io_;
  db::PgPool pool_;
  std::unique_ptr<PostgresLedger> ledger_;
};

TEST_F(LedgerTest, CreateAccountsIsIdempotent) {
  // Proves account creation answers exists / exists_with_different_fields / name_taken / invalid.
  std::vector<Account> again = Chart();
  again.resize(2);
  again[1].code = 9;
  again.push_back(MakeAccount(50, AccountType::kAsset, "CNY", "premiums_received"));
  again.push_back(MakeAccount(51, AccountType::kAsset, "cny", "x"));
  auto results = RunUntilDone(io_, ledger_->CreateAccounts(again, In(10s)));
  ASSERT_TRUE(results);
  EXPECT_EQ(results.value(), (std::vector<AccountResult>{
                                 AccountResult::kExists, AccountResult::kExistsWithDifferentFields,
                                 AccountResult::kNameTaken, AccountResult::kInvalid}));
}

TEST_F(LedgerTest, ResultCodesAndIdempotencyAgainstTheDatabase) {
  // Proves each business result code comes back through the database path, that retries are
  // idempotent, and that a failed id is recorded and cannot be reused.
  EXPECT_EQ(PostOne(T("p1", kClearing, kPremiums, 500)), R::kOk);
  EXPECT_EQ(PostOne(T("p1", kClearing, kPremiums, 500)), R::kExists);
  EXPECT_EQ(PostOne(T("p1", kClearing, kPremiums, 501)), R::kExistsWithDifferentFields);
  EXPECT_EQ(PostOne(T("same", kClearing, kClearing, 1)), R::kAccountsMustBeDifferent);
  EXPECT_EQ(PostOne(T("usd", kClearing, kBankUsd, 1)), R::kCurrencyMismatch);
  EXPECT_EQ(PostOne(T("nope", kClearing, 999, 1)), R::kAccountNotFound);
  EXPECT_EQ(PostOne(T("closed", kClosed, kPremiums, 1)), R::kAccountClosed);
  EXPECT_EQ(PostOne(T("over", kPayable, kClearing, 1)), R::kExceedsCredits);
  EXPECT_EQ(PostOne(T("over2", kClearing, kReserve, 1)), R::kExceedsDebits);
  EXPECT_EQ(PostOne(T("over", kPayable, kClearing, 1)), R::kIdAlreadyFailed);
  // The failed id stays failed even when the transfer would now succeed.
  EXPECT_EQ(PostOne(T("claim", kExpense, kPayable, 10)), R::kOk);
  EXPECT_EQ(PostOne(T("over", kPayable, kClearing, 1)), R::kIdAlreadyFailed);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM ledger_transfer_failures WHERE id = 'over' AND "
                   "result = 'exceeds_credits'"),
            1);
  EXPECT_EQ(BalanceOf(kClearing), (Balance{0, 500, 0, 0}));
  EXPECT_EQ(BalanceOf(kPremiums), (Balance{0, 0, 0, 500}));
  EXPECT_EQ(SqlInt("SELECT count(*) FROM ledger_transfers"), 2);
  EXPECT_TRUE(VerifyLedger().ok());
}

TEST_F(LedgerTest, TwoPhasePostPartialVoidAndExpire) {
  // Proves a pending transfer reserves funds, a partial post posts part and releases the rest, a
  // void releases, a timed-out pending expires via ExpirePendingTransfers and cannot be posted.
  ASSERT_EQ(PostOne(T("claim", kExpense, kPayable, 1000)), R::kOk);
  ASSERT_EQ(PostOne(T("payout1", kPayable, kClearing, 600, K::kPending)), R::kOk);
  EXPECT_EQ(BalanceOf(kPayable), (Balance{600, 0, 0, 1000}));
  // The reservation counts against the limit.
  EXPECT_EQ(PostOne(T("payout2", kPayable, kClearing, 500, K::kPending)), R::kExceedsCredits);
  EXPECT_EQ(PostOne(Resolve("post1", "payout1", K::kPostPending, 450)), R::kOk);
  EXPECT_EQ(BalanceOf(kPayable), (Balance{0, 450, 0, 1000}));
  EXPECT_EQ(BalanceOf(kClearing), (Balance{0, 0, 0, 450}));
  EXPECT_EQ(PostOne(Resolve("post1b", "payout1", K::kVoidPending)), R::kPendingAlreadyPosted);

  ASSERT_EQ(PostOne(T("payout3", kPayable, kClearing, 100, K::kPending)), R::kOk);
  EXPECT_EQ(PostOne(Resolve("void3", "payout3", K::kVoidPending)), R::kOk);
  EXPECT_EQ(PostOne(Resolve("post3", "payout3", K::kPostPending)), R::kPendingAlreadyVoided);

  Transfer timed = T("payout4", kPayable, kClearing, 50, K::kPending);
  timed.timeout_s = 2;
  ASSERT_EQ(PostOne(timed), R::kOk);
  EXPECT_EQ(RunUntilDone(io_, ledger_->ExpirePendingTransfers(100, In(10s))).value(), 0);
  std::this_thread::sleep_for(2100ms);
  EXPECT_EQ(PostOne(Resolve("post4", "payout4", K::kPostPending)), R::kPendingExpired);
  EXPECT_EQ(RunUntilDone(io_, ledger_->ExpirePendingTransfers(100, In(10s))).value(), 1);
  EXPECT_EQ(RunUntilDone(io_, ledger_->ExpirePendingTransfers(100, In(10s))).value(), 0);
  EXPECT_EQ(PostOne(Resolve("post4b", "payout4", K::kPostPending)), R::kPendingAlreadyExpired);
  EXPECT_EQ(BalanceOf(kPayable), (Balance{0, 450, 0, 1000}));
  EXPECT_TRUE(VerifyLedger().ok());
}

TEST_F(LedgerTest, LinkedTransfersCommitAllOrNothingAsOneEntry) {
  // Proves a linked chain with a failing member writes nothing, and a good chain is written as
  // one journal entry.
  Transfer fee = T("fee", kExpense, kClearing, 5);
  fee.linked = true;
  Transfer payout = T("pay", kPayable, kClearing, 1);  // claims_payable has no credits yet.
  auto failed = Post({fee, payout});
  EXPECT_EQ(failed, (std::vector<R>{R::kLinkedEventFailed, R::kExceedsCredits}));
  EXPECT_EQ(SqlInt("SELECT count(*) FROM ledger_transfers"), 0);
  EXPECT_EQ(BalanceOf(kExpense), Balance{});

  Transfer premium = T("prem", kClearing, kPremiums, 100);
  premium.linked = true;
  Transfer fee2 = T("fee2", kExpense, kClearing, 3);
  EXPECT_EQ(Post({premium, fee2}), (std::vector<R>{R::kOk, R::kOk}));
  EXPECT_EQ(SqlInt("SELECT count(*) FROM ledger_transfers WHERE entry_id = 'prem'"), 2);
  // Retrying the committed chain is idempotent.
  EXPECT_EQ(Post({premium, fee2}), (std::vector<R>{R::kExists, R::kExists}));
}

TEST_F(LedgerTest, DatabaseEnforcesInvariantsAgainstRawSql) {
  // Proves the database itself rejects UPDATE/DELETE/TRUNCATE on the journal, limit breaches,
  // currency mismatches, double resolution of a pending, and hand-written counters that unbalance
  // the books, even when the C++ code is bypassed.
  ASSERT_EQ(PostOne(T("p1", kClearing, kPremiums, 100)), R::kOk);
  ASSERT_EQ(PostOne(T("h1", kPayable, kClearing, 10, K::kPending)), R::kExceedsCredits);
  ASSERT_EQ(PostOne(T("c1", kExpense, kPayable, 10)), R::kOk);
  ASSERT_EQ(PostOne(T("r1", kPayable, kClearing, 10, K::kPending)), R::kOk);
  ASSERT_EQ(PostOne(Resolve("v1", "r1", K::kVoidPending)), R::kOk);

  EXPECT_THAT(SqlError("UPDATE ledger_transfers SET amount = 1 WHERE id = 'p1'"),
              HasSubstr("42501: ledger: UPDATE on ledger_transfers is not allowed"));
  EXPECT_THAT(SqlError("DELETE FROM ledger_transfers WHERE id = 'p1'"),
              HasSubstr("42501: ledger: DELETE on ledger_transfers"));
  EXPECT_THAT(SqlError("TRUNCATE ledger_transfers"),
              HasSubstr("42501: ledger: TRUNCATE on ledger_transfers"));
  EXPECT_THAT(SqlError("DELETE FROM ledger_batches"), HasSubstr("42501"));
  const std::string insert =
      "INSERT INTO ledger_transfers VALUES ('%s', %d, %d, %d, '%s', '%s', false, %s, 0, 0, '', "
      "'x', 99, now())";
  auto raw = [&](const char* id, int debit, int credit, int amount, const char* currency,
                 const char* kind, const char* pending) {
    char sql[512];
    std::snprintf(sql, sizeof sql, insert.c_str(), id, debit, credit, amount, currency, kind,
                  pending);
    return SqlError(sql);
  };
  EXPECT_THAT(raw("x1", kPayable, kClearing, 1000, "CNY", "single", "NULL"),
              HasSubstr("ledger_accounts_debits_limit"));
  EXPECT_THAT(raw("x1b", kClearing, kReserve, 1, "CNY", "single", "NULL"),
              HasSubstr("ledger_accounts_credits_limit"));
  EXPECT_THAT(raw("x2", kClearing, kBankUsd, 1, "CNY", "single", "NULL"),
              HasSubstr("one of another currency"));
  EXPECT_THAT(raw("x3", kClearing, kClearing, 1, "CNY", "single", "NULL"),
              HasSubstr("ledger_transfers_accounts_distinct"));
  EXPECT_THAT(raw("x4", kClosed, kClearing, 1, "CNY", "single", "NULL"),
              HasSubstr("closed account"));
  EXPECT_THAT(raw("x5", kPayable, kClearing, 10, "CNY", "void_pending", "'r1'"),
              HasSubstr("ledger_transfers_pending_resolved_once"));
  EXPECT_THAT(raw("x5b", kPayable, kClearing, 10, "CNY", "void_pending", "'p1'"),
              HasSubstr("does not match its pending transfer"));
  EXPECT_THAT(raw("x6", kClearing, kPremiums, 0, "CNY", "single", "NULL"),
              HasSubstr("ledger_transfers_amount_check"));
  // A counter written by hand breaks debits = credits and is refused at commit.
  EXPECT_THAT(SqlError("UPDATE ledger_accounts SET credits_posted = credits_posted + 1 "
                       "WHERE id = 2"),
              HasSubstr("debits and credits differ in currency CNY"));
  EXPECT_THAT(SqlError("UPDATE ledger_accounts SET debits_must_not_exceed_credits = false "
                       "WHERE id = 4"),
              HasSubstr("identity and limit flags are immutable"));
  // A balanced raw insert goes through the same trigger and keeps the counters right.
  EXPECT_EQ(raw("x7", kClearing, kPremiums, 7, "CNY", "single", "NULL"), "");
  EXPECT_EQ(BalanceOf(kPremiums), (Balance{0, 0, 0, 107}));
  // It is outside the hash chain, though, and Verify says so.
  VerifyReport report = VerifyLedger();
  ASSERT_EQ(report.differences.size(), 1u);
  EXPECT_EQ(report.differences[0].kind, VerifyDifference::Kind::kOrphanTransfers);
}

TEST_F(LedgerTest, BalanceCheckCoversEveryStatementThatWritesAccounts) {
  // Proves the per-statement balance check (0005) refuses every way of writing an unbalanced
  // counter by hand: UPDATE, a correction split over two statements of one transaction, INSERT,
  // INSERT ... ON CONFLICT DO UPDATE and MERGE; while the statements posting makes, and changes
  // of `closed`, go through, and identity columns stay immutable.
  ASSERT_EQ(PostOne(T("p1", kClearing, kPremiums, 100)), R::kOk);
  const std::string unbalanced = "debits and credits differ in currency CNY";
  EXPECT_THAT(SqlError("UPDATE ledger_accounts SET debits_pending = debits_pending + 5 "
                       "WHERE id = 1"),
              HasSubstr(unbalanced));
  // Balanced once both statements ran, but each statement alone is not: refused at the first.
  EXPECT_THAT(SqlError("BEGIN; "
                       "UPDATE ledger_accounts SET debits_posted = debits_posted + 1 WHERE id = 1; "
                       "UPDATE ledger_accounts SET credits_posted = credits_posted + 1 WHERE id = 2; "
                       "COMMIT"),
              HasSubstr(unbalanced));
  EXPECT_THAT(SqlError("INSERT INTO ledger_accounts (id, type, currency, code, name, "
                       "credits_posted) VALUES (50, 'asset', 'CNY', 0, 'rich', 10)"),
              HasSubstr(unbalanced));
  EXPECT_THAT(SqlError("INSERT INTO ledger_accounts (id, type, currency, code, name) "
                       "VALUES (2, 'liability', 'CNY', 0, 'premiums_received') "
                       "ON CONFLICT (id) DO UPDATE SET credits_posted = 1000"),
              HasSubstr(unbalanced));
  EXPECT_THAT(SqlError("MERGE INTO ledger_accounts a USING (VALUES (2::bigint)) v(id) "
                       "ON a.id = v.id WHEN MATCHED THEN UPDATE SET credits_posted = 1"),
              HasSubstr(unbalanced));
  EXPECT_THAT(SqlError("UPDATE ledger_accounts SET name = 'renamed' WHERE id = 1"),
              HasSubstr("identity and limit flags are immutable"));
  EXPECT_THAT(SqlError("UPDATE ledger_accounts SET currency = 'USD' WHERE id = 1"),
              HasSubstr("identity and limit flags are immutable"));
  EXPECT_EQ(SqlError("UPDATE ledger_accounts SET closed = true WHERE id = 6"), "");
  EXPECT_EQ(PostOne(T("c1", kExpense, kPayable, 1)), R::kAccountClosed);
  EXPECT_EQ(SqlError("INSERT INTO ledger_accounts (id, type, currency, code, name) "
                     "VALUES (51, 'asset', 'CNY', 0, 'fresh')"),
            "");
  EXPECT_EQ(BalanceOf(kClearing), (Balance{0, 100, 0, 0}));
  EXPECT_EQ(BalanceOf(kPremiums), (Balance{0, 0, 0, 100}));
  EXPECT_TRUE(VerifyLedger().ok());
}

TEST_F(LedgerTest, PostingTriggerFindsTheBatchsAccountsByKey) {
  // Proves the posting trigger (0016) reads the accounts a batch names by primary key and never
  // scans the chart: left to itself the planner joined a batch to every account by a sequential
  // scan (0014), a cost per batch that grew with the chart, not with the batch. The counts are the
  // session's not yet reported ones (pg_stat_xact_user_tables), read before and after the insert
  // in its transaction and kept in tables.
  auto row = [](const char* id, std::int64_t debit, std::int64_t credit, int amount) {
    return "('" + std::string(id) + "', " + std::to_string(debit) + ", " + std::to_string(credit) +
           ", " + std::to_string(amount) +
           ", 'CNY', 'single', false, NULL, 0, 0, '', 'x', 99, now())";
  };
  auto scans_into = [](const char* table) {
    return "CREATE TABLE " + std::string(table) +
           " AS SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables "
           "WHERE relname = 'ledger_accounts'; ";
  };
  ASSERT_EQ(
      SqlError("BEGIN; " + scans_into("scans_before") + "INSERT INTO ledger_transfers VALUES " +
               row("k1", kClearing, kPremiums, 5) + ", " + row("k2", kExpense, kPayable, 3) + "; " +
               scans_into("scans_after") + "COMMIT"),
      "");
  EXPECT_EQ(SqlInt("SELECT a.seq_scan - b.seq_scan FROM scans_after a, scans_before b"), 0);
  // One look-up per named account.
  EXPECT_GE(SqlInt("SELECT a.idx_scan - b.idx_scan FROM scans_after a, scans_before b"), 4);
  EXPECT_EQ(BalanceOf(kPremiums), (Balance{0, 0, 0, 5}));
  EXPECT_EQ(BalanceOf(kPayable), (Balance{0, 0, 0, 3}));
}

TEST_F(LedgerTest, RawInsertRefusalsKeepTheirPrecedence) {
  // Proves the single validation pass of the posting trigger (0005) reports, for rows with several
  // problems, what 0002's successive checks did: a missing or foreign account before a closed one,
  // a closed one before a resolution that does not match its pending transfer.
  ASSERT_EQ(PostOne(T("r1", kClearing, kPremiums, 10, K::kPending)), R::kOk);
  const std::string insert =
      "INSERT INTO ledger_transfers VALUES "
      "('a', %d, %d, 10, 'CNY', '%s', false, %s, 0, 0, '', 'x', 99, now()), "
      "('b', %d, %d, 10, 'CNY', '%s', false, %s, 0, 0, '', 'x', 99, now())";
  auto raw = [&](int d1, int c1, const char* k1, const char* p1, int d2, int c2, const char* k2,
                 const char* p2) {
    char sql[512];
    std::snprintf(sql, sizeof sql, insert.c_str(), d1, c1, k1, p1, d2, c2, k2, p2);
    return SqlError(sql);
  };
  EXPECT_THAT(raw(kClosed, kPremiums, "single", "NULL", 99, kPremiums, "single", "NULL"),
              HasSubstr("missing account or one of another currency"));
  EXPECT_THAT(raw(kClearing, kPremiums, "void_pending", "'p-none'", kClosed, kPremiums, "single",
                  "NULL"),
              HasSubstr("transfer on a closed account"));
  EXPECT_THAT(raw(kClearing, kPremiums, "void_pending", "'p-none'", kClearing, kPremiums, "single",
                  "NULL"),
              HasSubstr("does not match its pending transfer"));
  // A matching resolution and an ordinary transfer together apply both.
  EXPECT_EQ(raw(kClearing, kPremiums, "void_pending", "'r1'", kExpense, kPayable, "single", "NULL"),
            "");
  EXPECT_EQ(BalanceOf(kClearing), (Balance{0, 0, 0, 0}));
  EXPECT_EQ(BalanceOf(kPremiums), (Balance{0, 0, 0, 0}));
  EXPECT_EQ(BalanceOf(kPayable), (Balance{0, 0, 0, 10}));
}

TEST_F(LedgerTest, PostingInACallersTransactionRestoresItsPlanCacheMode) {
  // Proves posting switches to custom plans only for its read and gives the caller's transaction
  // back its own plan_cache_mode, and that posting works with generic plans forced everywhere else
  // (the trigger's statements then run on cached generic plans).
  for (int round = 0; round < 7; ++round) {  // Past the 5 executions before a generic plan.
    std::vector<Transfer> transfers = {T("g" + std::to_string(round), kClearing, kPremiums, 1)};
    auto mode = RunUntilDone(
        io_, db::RunInTransaction(
                 pool_, In(10s), db::TransactionOptions{},
                 [&](db::PgConnection& conn) -> asio::awaitable<Result<std::string>> {
                   auto set = co_await conn.ExecuteSimple(
                       "SET LOCAL plan_cache_mode = force_generic_plan", In(10s));
                   if (!set) co_return set.error();
                   auto posted = co_await ledger_->PostTransfersInTransaction(
                       conn, std::move(transfers), In(10s));
                   if (!posted) co_return posted.error();
                   if (posted.value().size() != 1 || posted.value()[0] != R::kOk) {
                     co_return make_error_code(Errc::inconsistent_state);
                   }
                   auto shown = co_await conn.Execute("SHOW plan_cache_mode", {}, In(10s));
                   if (!shown) co_return shown.error();
                   co_return std::string(shown.value().GetText(0, 0).value());
                 }));
    ASSERT_TRUE(mode) << mode.error().message();
    EXPECT_EQ(mode.value(), "force_generic_plan");
  }
  EXPECT_EQ(BalanceOf(kPremiums), (Balance{0, 0, 0, 7}));
  EXPECT_TRUE(VerifyLedger().ok());
}

TEST_F(LedgerTest, VerifyCatchesTampering) {
  // Proves Verify passes on an untouched ledger and reports both the counter difference and the
  // broken batch hash after a row is altered behind the triggers' back.
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(PostOne(T("t" + std::to_string(i), kClearing, kPremiums, 10 + i)), R::kOk);
  }
  VerifyReport clean = VerifyLedger();
  EXPECT_TRUE(clean.ok());
  EXPECT_EQ(clean.batches_checked, 5);
  EXPECT_EQ(clean.accounts_checked, 7);

  ASSERT_TRUE(
      Sql("SET session_replication_role = replica; "
          "UPDATE ledger_transfers SET amount = amount + 1 WHERE id = 't2'; "
          "SET session_replication_role = origin"));
  VerifyReport tampered = VerifyLedger();
  std::set<VerifyDifference::Kind> kinds;
  for (const auto& d : tampered.differences) kinds.insert(d.kind);
  EXPECT_TRUE(kinds.contains(VerifyDifference::Kind::kAccountCounters));
  EXPECT_TRUE(kinds.contains(VerifyDifference::Kind::kBatchHash));
  EXPECT_EQ(tampered.differences.size(), 3u);  // Two accounts' counters and one batch.
}

// One request (so one batch) whose every hashed field is awkward: ids whose bytewise order differs
// from a language's order, multi-byte UTF-8 external references (length() counts characters, not
// bytes), a post of pending "pend" with accounts, amount and currency left empty, a linked chain,
// a reason code and a timeout.
std::vector<Transfer> AwkwardBatch() {
  std::vector<Transfer> batch = {
      T("a1", kClearing, kPremiums, 11),
      T("B1", kClearing, kPremiums, 12),
      T("a-2", kExpense, kPayable, 13),
      T("Z.9@x/y:z", kPremiums, kClearing, 14, K::kPending),
      Resolve("post-pend", "pend", K::kPostPending, 50),
      T("chain_1", kClearing, kPremiums, 15),
      T("chain_2", kClearing, kPremiums, 16),
  };
  batch[0].external_ref = "保单-2024-€-ü";
  batch[1].external_ref = "";
  batch[3].timeout_s = 3600;
  batch[3].reason_code = 7;
  batch[4].external_ref = "退款 ✓";
  batch[5].linked = true;
  return batch;
}

TEST_F(LedgerTest, BatchHashWrittenAtPostingIsTheOneVerifyRecomputes) {
  // Proves the batch hash posting computes in C++ is byte for byte what ledger_batch_hash()
  // recomputes in SQL (what Verify checks), for every field's encoding.
  ASSERT_EQ(PostOne(T("pend", kClearing, kPremiums, 70, K::kPending)), R::kOk);
  for (R r : Post(AwkwardBatch())) EXPECT_EQ(r, R::kOk);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM ledger_batches WHERE transfer_count = 7"), 1);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM ledger_batches b "
                   "WHERE b.hash = ledger_batch_hash(b.id, b.prev_hash)"),
            2);
  EXPECT_TRUE(VerifyLedger().ok());
}

TEST_F(LedgerTest, DatabaseOrderingIdsByLocaleGetsItsBatchHashFromSql) {
  // Proves that where the database orders ids by a locale (ICU "en-US": "a1" before "B1"), so a
  // bytewise sort in C++ would hash the rows in another order than ORDER BY id, posting leaves the
  // hash to SQL and Verify still passes.
  auto& cluster = testing::SharedPgCluster();
  const std::string created = cluster.Exec(
      "CREATE DATABASE ledger_icu TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' "
      "LOCALE 'C' ENCODING 'UTF8'");
  if (!created.empty()) GTEST_SKIP() << "PostgreSQL without ICU: " << created;
  db::PgPool pool(io_.get_executor(), MakePoolOptions(cluster.Url("ledger_icu"), 2));
  auto applied = RunUntilDone(io_, db::ApplyMigrations(pool, In(30s)));
  ASSERT_TRUE(applied) << applied.error().message;
  PostgresLedger icu(pool, io_.get_executor(), {});
  auto accounts = RunUntilDone(io_, icu.CreateAccounts(Chart(), In(10s)));
  ASSERT_TRUE(accounts);
  auto pend = RunUntilDone(
      io_, icu.PostTransfers({T("pend", kClearing, kPremiums, 70, K::kPending)}, In(10s)));
  ASSERT_TRUE(pend);
  auto posted = RunUntilDone(io_, icu.PostTransfers(AwkwardBatch(), In(10s)));
  ASSERT_TRUE(posted);
  for (R r : posted.value()) EXPECT_EQ(r, R::kOk);
  auto order = RunUntilDone(io_, [&]() -> asio::awaitable<Result<db::PgResult>> {
    auto lease = co_await pool.Acquire(In(10s));
    if (!lease) co_return lease.error();
    co_return co_await lease.value()->ExecuteSimple(
        "SELECT string_agg(id, ' ' ORDER BY id) FROM ledger_transfers WHERE id IN ('a1', 'B1')",
        In(10s));
  }());
  ASSERT_TRUE(order);
  EXPECT_EQ(order.value().GetText(0, 0).value(), "a1 B1");  // Bytewise it would be "B1 a1".
  auto report = RunUntilDone(io_, icu.Verify(In(30s)));
  ASSERT_TRUE(report);
  EXPECT_TRUE(report.value().ok());
  EXPECT_EQ(report.value().batches_checked, 2);
  RunUntilDone(io_, icu.Stop());
}

TEST_F(LedgerTest, StatementBalanceAtAndTrialBalance) {
  // Proves reads: balance at an instant from the journal, a paginated statement with running
  // balance, and a trial balance whose debits equal credits.
  ASSERT_EQ(PostOne(T("a", kClearing, kPremiums, 100)), R::kOk);
  const Timestamp between = DbNow();
  ASSERT_EQ(PostOne(T("b", kClearing, kPremiums, 20)), R::kOk);
  ASSERT_EQ(PostOne(T("c", kPremiums, kClearing, 5)), R::kOk);
  EXPECT_EQ(BalanceOf(kClearing, between), (Balance{0, 100, 0, 0}));
  EXPECT_EQ(BalanceOf(kClearing), (Balance{0, 120, 0, 5}));

  auto page1 = RunUntilDone(io_, ledger_->GetStatement(AccountId{kClearing}, {}, 2, In(10s)));
  ASSERT_TRUE(page1);
  ASSERT_EQ(page1.value().lines.size(), 2u);
  EXPECT_EQ(page1.value().lines[1].running_balance, (Balance{0, 120, 0, 0}));
  ASSERT_TRUE(page1.value().next);
  auto page2 = RunUntilDone(
      io_, ledger_->GetStatement(AccountId{kClearing}, *page1.value().next, 2, In(10s)));
  ASSERT_TRUE(page2);
  ASSERT_EQ(page2.value().lines.size(), 1u);
  EXPECT_EQ(page2.value().lines[0].transfer_id.value, "c");
  EXPECT_EQ(page2.value().lines[0].delta, (Balance{0, 0, 0, 5}));
  EXPECT_EQ(page2.value().lines[0].running_balance, (Balance{0, 120, 0, 5}));

  auto trial = RunUntilDone(io_, ledger_->GetTrialBalance("CNY", std::nullopt, In(10s)));
  ASSERT_TRUE(trial);
  EXPECT_EQ(trial.value().total.debits_posted, 125);
  EXPECT_EQ(trial.value().total.credits_posted, 125);
  auto earlier = RunUntilDone(io_, ledger_->GetTrialBalance("CNY", between, In(10s)));
  ASSERT_TRUE(earlier);
  EXPECT_EQ(earlier.value().total.debits_posted, 100);
  EXPECT_EQ(earlier.value().total.credits_posted, 100);
}

TEST_F(LedgerTest, HistoryAccountsAnswerFromTheirHistoryExactlyAsTheJournalWould) {
  // Proves the `history` flag: a history account and a twin without it receive the same transfers
  // (singles, a pending posted in part, a voided pending, several lines for one account in one
  // batch); statements and balances at instants agree line by line, only the history account has
  // history rows, history is append-only, and Verify catches a forged history row.
  constexpr std::int64_t kHist = 20, kHistPeer = 21, kPlain = 22, kPlainPeer = 23;
  auto created = RunUntilDone(
      io_, ledger_->CreateAccounts(
               {MakeAccount(kHist, AccountType::kAsset, "CNY", "h", {.history = true}),
                MakeAccount(kHistPeer, AccountType::kLiability, "CNY", "h-peer", {.history = true}),
                MakeAccount(kPlain, AccountType::kAsset, "CNY", "p"),
                MakeAccount(kPlainPeer, AccountType::kLiability, "CNY", "p-peer")},
               In(10s)));
  ASSERT_TRUE(created);
  // The same script twice: on the history pair and on the plain pair.
  auto script = [](const std::string& prefix, std::int64_t a, std::int64_t b) {
    std::vector<std::vector<Transfer>> batches = {
        {T(prefix + "1", a, b, 100), T(prefix + "2", a, b, 30), T(prefix + "3", b, a, 7)},
        {T(prefix + "pend", a, b, 50, K::kPending), T(prefix + "pend2", b, a, 9, K::kPending)},
        {Resolve(prefix + "post", prefix + "pend", K::kPostPending, 20),
         Resolve(prefix + "void", prefix + "pend2", K::kVoidPending), T(prefix + "4", b, a, 1)},
    };
    return batches;
  };
  const auto hist_batches = script("h", kHist, kHistPeer);
  const auto plain_batches = script("p", kPlain, kPlainPeer);
  std::vector<Timestamp> instants;
  for (std::size_t i = 0; i < hist_batches.size(); ++i) {
    for (R r : Post(hist_batches[i])) ASSERT_EQ(r, R::kOk);
    for (R r : Post(plain_batches[i])) ASSERT_EQ(r, R::kOk);
    instants.push_back(DbNow());
  }
  EXPECT_EQ(SqlInt("SELECT count(*) FROM ledger_account_history WHERE account_id = 20"), 8);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM ledger_account_history WHERE account_id IN (22, 23)"), 0);

  auto statement = [&](std::int64_t account) {
    auto page = RunUntilDone(io_, ledger_->GetStatement(AccountId{account}, {}, 1000, In(10s)));
    EXPECT_TRUE(page);
    return page ? page.value().lines : std::vector<StatementLine>{};
  };
  for (auto [h, p] : {std::pair{kHist, kPlain}, std::pair{kHistPeer, kPlainPeer}}) {
    const auto from_history = statement(h);
    const auto recomputed = statement(p);
    ASSERT_EQ(from_history.size(), 8u);
    ASSERT_EQ(from_history.size(), recomputed.size());
    for (std::size_t i = 0; i < from_history.size(); ++i) {
      EXPECT_EQ(from_history[i].transfer_id.value.substr(1), recomputed[i].transfer_id.value.substr(1));
      EXPECT_EQ(from_history[i].delta, recomputed[i].delta) << i;
      EXPECT_EQ(from_history[i].running_balance, recomputed[i].running_balance) << i;
    }
    EXPECT_EQ(from_history.back().running_balance, BalanceOf(h));
    for (const Timestamp at : instants) EXPECT_EQ(BalanceOf(h, at), BalanceOf(p, at));
    EXPECT_EQ(BalanceOf(h, Timestamp{}), Balance{});
  }
  // Paging a history statement continues where the cursor points.
  auto first = RunUntilDone(io_, ledger_->GetStatement(AccountId{kHist}, {}, 3, In(10s)));
  ASSERT_TRUE(first && first.value().next);
  auto rest = RunUntilDone(io_, ledger_->GetStatement(AccountId{kHist}, *first.value().next, 1000, In(10s)));
  ASSERT_TRUE(rest);
  EXPECT_EQ(rest.value().lines.size(), 5u);
  EXPECT_EQ(rest.value().lines.front().running_balance, statement(kHist)[3].running_balance);
  EXPECT_FALSE(RunUntilDone(io_, ledger_->GetStatement(AccountId{999}, {}, 10, In(10s))));

  EXPECT_TRUE(VerifyLedger().ok());
  EXPECT_THAT(SqlError("UPDATE ledger_account_history SET debits_posted = 0"), HasSubstr("append-only"));
  EXPECT_THAT(SqlError("DELETE FROM ledger_account_history"), HasSubstr("append-only"));
  ASSERT_TRUE(Sql("INSERT INTO ledger_account_history SELECT account_id, created_at + interval '1 s', "
                  "'forged', batch_id, debits_pending, debits_posted + 1, credits_pending, credits_posted "
                  "FROM ledger_account_history WHERE account_id = 20 "
                  "ORDER BY created_at DESC, transfer_id DESC LIMIT 1"));
  const VerifyReport forged = VerifyLedger();
  ASSERT_EQ(forged.differences.size(), 1u);
  EXPECT_EQ(forged.differences[0].kind, VerifyDifference::Kind::kAccountHistory);
  EXPECT_THAT(forged.differences[0].detail, HasSubstr("account 20"));
}

TEST_F(LedgerTest, ClosedAccountsRefuseNewPostingsButReleaseReservations) {
  // Proves SetAccountClosed: a closed account refuses singles and pendings (kAccountClosed), a
  // reservation made before closing can still be voided, reopening allows postings again, and an
  // unknown account is not_found.
  ASSERT_EQ(PostOne(T("reserve", kClearing, kPremiums, 40, K::kPending)), R::kOk);
  ASSERT_TRUE(RunUntilDone(io_, ledger_->SetAccountClosed(AccountId{kClearing}, true, In(10s))));
  ASSERT_TRUE(RunUntilDone(io_, ledger_->SetAccountClosed(AccountId{kClearing}, true, In(10s))));
  EXPECT_EQ(PostOne(T("after-close", kClearing, kPremiums, 5)), R::kAccountClosed);
  EXPECT_EQ(PostOne(T("after-close-2", kPremiums, kClearing, 5, K::kPending)), R::kAccountClosed);
  EXPECT_EQ(PostOne(Resolve("release", "reserve", K::kVoidPending)), R::kOk);
  EXPECT_EQ(BalanceOf(kClearing), Balance{});
  ASSERT_TRUE(RunUntilDone(io_, ledger_->SetAccountClosed(AccountId{kClearing}, false, In(10s))));
  EXPECT_EQ(PostOne(T("after-reopen", kClearing, kPremiums, 5)), R::kOk);
  const auto missing = RunUntilDone(io_, ledger_->SetAccountClosed(AccountId{999}, true, In(10s)));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), make_error_code(Errc::not_found));
  EXPECT_TRUE(VerifyLedger().ok());
}

TEST_F(LedgerTest, CachedPathStepsAsideWhenAnotherWriterMovedTheHead) {
  // Proves the batcher's cached path (PostgresLedger: balances kept from this process's own last
  // batch) is used only while nobody else has written: after a second ledger on the same database
  // (another daemon) posts, the next batch is refused by the head check, re-decided on the fresh
  // book, and the balances and the hash chain come out exact; the cache then serves again.
  PostgresLedger other(pool_, io_.get_executor(), PostgresLedgerOptions{});
  ASSERT_EQ(PostOne(T("own-1", kClearing, kPremiums, 100)), R::kOk);  // Fills the cache.
  const std::uint64_t cached_before = ledger_->cached_batches();
  ASSERT_EQ(PostOne(T("own-2", kClearing, kPremiums, 20)), R::kOk);
  EXPECT_EQ(ledger_->cached_batches(), cached_before + 1);

  auto foreign = RunUntilDone(
      io_, other.PostTransfers({T("foreign-1", kClearing, kPremiums, 3000)}, In(10s)));
  ASSERT_TRUE(foreign);
  ASSERT_EQ(foreign.value(), std::vector<R>{R::kOk});
  ASSERT_EQ(PostOne(T("own-3", kClearing, kPremiums, 7)), R::kOk);
  EXPECT_EQ(ledger_->cached_batches(), cached_before + 1);  // Re-decided on the full path.
  EXPECT_EQ(BalanceOf(kPremiums), (Balance{0, 0, 0, 3127}));
  EXPECT_EQ(BalanceOf(kClearing), (Balance{0, 3127, 0, 0}));

  ASSERT_EQ(PostOne(T("own-4", kClearing, kPremiums, 1)), R::kOk);
  EXPECT_EQ(ledger_->cached_batches(), cached_before + 2);
  EXPECT_EQ(BalanceOf(kPremiums), (Balance{0, 0, 0, 3128}));
  RunUntilDone(io_, other.Stop());
  EXPECT_TRUE(VerifyLedger().ok());
}

TEST_F(LedgerTest, CachedPathLeavesEveryRefusalToTheFreshBook) {
  // Proves that with a warm cache the answers are exactly the full path's: a closed or reopened
  // account (a change that does not move the head), a retried id (same or different fields), an
  // id that failed before (even once it would fit), and a limit all answer from the database's
  // current state, never from the cache's.
  ASSERT_EQ(PostOne(T("warm", kClearing, kPremiums, 10)), R::kOk);
  ASSERT_EQ(PostOne(T("warm-2", kPayable, kExpense, 1)), R::kExceedsCredits);
  ASSERT_EQ(PostOne(T("fund", kExpense, kPayable, 5)), R::kOk);
  const std::uint64_t cached_before = ledger_->cached_batches();
  ASSERT_EQ(PostOne(T("warm-3", kClearing, kPremiums, 1)), R::kOk);
  ASSERT_GT(ledger_->cached_batches(), cached_before);

  // Closed behind the cache's back (no batch moves the head), then reopened.
  ASSERT_TRUE(RunUntilDone(io_, ledger_->SetAccountClosed(AccountId{kClearing}, true, In(10s))));
  EXPECT_EQ(PostOne(T("closed-1", kClearing, kPremiums, 5)), R::kAccountClosed);
  ASSERT_TRUE(RunUntilDone(io_, ledger_->SetAccountClosed(AccountId{kClearing}, false, In(10s))));
  EXPECT_EQ(PostOne(T("closed-1b", kClearing, kPremiums, 5)), R::kOk);
  // closed-1 failed for a business reason: the id stays spent.
  EXPECT_EQ(PostOne(T("closed-1", kClearing, kPremiums, 5)), R::kIdAlreadyFailed);

  // Retries of a committed id.
  EXPECT_EQ(PostOne(T("warm-3", kClearing, kPremiums, 1)), R::kExists);
  EXPECT_EQ(PostOne(T("warm-3", kClearing, kPremiums, 2)), R::kExistsWithDifferentFields);

  // warm-2 exceeded claims_payable's credits; funded now, it would fit, but the id is spent.
  ASSERT_EQ(PostOne(T("fund-2", kExpense, kPayable, 100)), R::kOk);
  EXPECT_EQ(PostOne(T("warm-2", kPayable, kExpense, 1)), R::kIdAlreadyFailed);
  // The limit itself: 105 credited, 106 is one too many.
  EXPECT_EQ(PostOne(T("over", kPayable, kExpense, 106)), R::kExceedsCredits);
  EXPECT_EQ(PostOne(T("exact", kPayable, kExpense, 105)), R::kOk);
  EXPECT_EQ(BalanceOf(kPayable), (Balance{0, 105, 0, 105}));
  EXPECT_EQ(BalanceOf(kPremiums), (Balance{0, 0, 0, 16}));
  EXPECT_TRUE(VerifyLedger().ok());
}

TEST_F(LedgerTest, HotAccountThroughBatcherGivesExactBalances) {
  // Proves 200 coroutines posting premiums to one hot account through the Batcher all succeed,
  // are coalesced into far fewer transactions than transfers, and leave exact balances.
  constexpr int kClients = 200;
  constexpr int kEach = 5;
  int finished = 0;
  int failures = 0;
  for (int c = 0; c < kClients; ++c) {
    asio::co_spawn(
        io_,
        [&, c]() -> asio::awaitable<void> {
          for (int i = 0; i < kEach; ++i) {
            // Built outside the co_await: GCC 12 rejects a braced temporary inside it.
            std::vector<Transfer> request;
            request.push_back(T("prem-" + std::to_string(c) + "-" + std::to_string(i), kClearing,
                                kPremiums, c + 1));
            auto r = co_await ledger_->PostTransfers(std::move(request), In(30s));
            const std::vector<R> ok{R::kOk};
            if (!r || r.value() != ok) ++failures;
          }
          ++finished;
        },
        asio::detached);
  }
  io_.restart();
  while (finished < kClients) io_.run_one();
  EXPECT_EQ(failures, 0);
  const std::int64_t expected = kEach * (kClients * (kClients + 1) / 2);
  EXPECT_EQ(BalanceOf(kPremiums), (Balance{0, 0, 0, expected}));
  EXPECT_EQ(BalanceOf(kClearing), (Balance{0, expected, 0, 0}));
  auto stats = RunUntilDone(io_, ledger_->batcher().GetStats());
  EXPECT_EQ(stats.transfers_total, static_cast<std::uint64_t>(kClients * kEach));
  EXPECT_LT(stats.batches_total, static_cast<std::uint64_t>(kClients * kEach / 10));
  EXPECT_GT(stats.batch_size_largest, 50u);
  EXPECT_TRUE(VerifyLedger().ok());
}

// Posts a seeded random mix of single, pending, post, void and linked transfers from many
// concurrent clients, twice (the second round is a full retry), optionally while injecting 40001 /
// 40P01 failures and killing server connections, then checks the book. A request that fails is
// retried until it gets an answer, as a real client would.
void RandomizedRun(LedgerTest& test, bool inject_faults) {
  asio::io_context& io_ = test.io_;
  auto& ledger_ = test.ledger_;
  auto PostOne = [&](Transfer t) { return test.PostOne(std::move(t)); };
  auto Sql = [&](std::string sql) { return test.Sql(std::move(sql)); };
  auto SqlInt = [&](std::string sql) { return test.SqlInt(std::move(sql)); };
  std::uint64_t seed = std::random_device{}();
  if (const char* env = std::getenv("PAYGATE_LEDGER_SEED")) seed = std::stoull(env);
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto pick = [&](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  };
  const std::vector<std::int64_t> cny = {kClearing, kPremiums, kPayable, kExpense, kReserve};
  // Seed the limited accounts so that some transfers pass and some fail their limits.
  ASSERT_EQ(PostOne(T("seed1", kExpense, kPayable, 5000)), R::kOk);
  ASSERT_EQ(PostOne(T("seed2", kReserve, kClearing, 5000)), R::kOk);

  constexpr int kClients = 16;
  constexpr int kRequestsEach = 25;
  std::vector<std::vector<std::vector<Transfer>>> plan(kClients);
  int next_id = 0;
  std::vector<std::string> pendings;
  for (int c = 0; c < kClients; ++c) {
    for (int r = 0; r < kRequestsEach; ++r) {
      std::vector<Transfer> request;
      const int size = static_cast<int>(pick(1, 4));
      for (int k = 0; k < size; ++k) {
        const std::int64_t debit = cny[pick(0, cny.size() - 1)];
        std::int64_t credit = cny[pick(0, cny.size() - 1)];
        if (credit == debit && pick(0, 9) != 0) credit = cny[(pick(0, 3) + 1 + debit) % 5];
        std::string id = "r" + std::to_string(next_id++);
        const std::int64_t op = pick(0, 9);
        Transfer t;
        if (op < 5 || pendings.empty()) {
          t = T(id, debit, credit, pick(1, 3000), op == 4 ? K::kPending : K::kSingle);
          if (op == 4) pendings.push_back(id);
        } else if (op < 8) {
          t = Resolve(id, pendings[pick(0, pendings.size() - 1)], K::kPostPending, pick(0, 2000));
        } else {
          t = Resolve(id, pendings[pick(0, pendings.size() - 1)], K::kVoidPending);
        }
        t.linked = k + 1 < size && pick(0, 1) == 1;
        request.push_back(std::move(t));
      }
      request.back().linked = pick(0, 19) == 0;  // Now and then an open chain.
      plan[c].push_back(std::move(request));
    }
  }

  if (inject_faults) {
    // Every 5th batch insert fails with a serialization failure and every 7th with a deadlock (a
    // sequence, because it is not rolled back with the failed attempt).
    ASSERT_TRUE(Sql(R"sql(
      CREATE SEQUENCE test_fault_seq;
      CREATE FUNCTION test_fault() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE n bigint := nextval('test_fault_seq');
      BEGIN
        IF n % 5 = 0 THEN RAISE EXCEPTION 'injected' USING ERRCODE = '40001'; END IF;
        IF n % 7 = 0 THEN RAISE EXCEPTION 'injected' USING ERRCODE = '40P01'; END IF;
        RETURN NULL;
      END $$;
      CREATE TRIGGER test_fault AFTER INSERT ON ledger_batches
        FOR EACH STATEMENT EXECUTE FUNCTION test_fault())sql"));
  }

  // Every client posts its requests in order; then posts them all again (retry).
  std::map<std::string, R> first;
  std::map<std::string, R> second;
  int finished = 0;
  int errors = 0;
  int gave_up = 0;
  int kills = 0;
  bool stop_killer = false;
  bool killer_done = !inject_faults;
  if (inject_faults) {
    // Terminates a random server backend of this database every few milliseconds: a connection
    // lost mid-batch or mid-COMMIT leaves the outcome unknown to the client, which retries.
    const std::uint64_t killer_seed = rng();
    asio::co_spawn(
        io_,
        [&, killer_seed]() -> asio::awaitable<void> {
          std::mt19937_64 killer_rng(killer_seed);
          asio::steady_timer timer(io_);
          while (!stop_killer) {
            timer.expires_after(std::chrono::milliseconds(2 + killer_rng() % 15));
            boost::system::error_code ignored;
            co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
            auto lease = co_await test.pool_.Acquire(In(5s));
            if (!lease) continue;
            auto killed = co_await lease.value()->ExecuteSimple(
                "SELECT count(pg_terminate_backend(pid)) FROM (SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend' ORDER BY pid LIMIT 1 OFFSET " +
                    std::to_string(killer_rng() % 3) + ") s",
                In(5s));
            if (killed && killed.value().rows() == 1) {
              kills += static_cast<int>(killed.value().GetInt64(0, 0).value());
            }
          }
          killer_done = true;
        },
        asio::detached);
  }
  for (int round = 0; round < 2; ++round) {
    finished = 0;
    auto& seen = round == 0 ? first : second;
    for (int c = 0; c < kClients; ++c) {
      asio::co_spawn(
          io_,
          [&, c, round]() -> asio::awaitable<void> {
            asio::steady_timer backoff(io_);
            for (const auto& request : plan[c]) {
              bool errored = false;
              for (int attempt = 0;; ++attempt) {
                auto r = co_await ledger_->PostTransfers(request, In(30s));
                if (r && r.value().size() == request.size()) {
                  for (std::size_t i = 0; i < request.size(); ++i) {
                    R result = r.value()[i];
                    // An attempt whose answer was lost may have committed: in the first round
                    // (ids are fresh) exists can only mean that, so it is an acknowledgement.
                    if (round == 0 && errored && result == R::kExists) result = R::kOk;
                    seen[request[i].id.value] = result;
                  }
                  break;
                }
                errored = true;
                ++errors;
                if (attempt >= 50) {
                  ++gave_up;
                  break;
                }
                backoff.expires_after(5ms);
                boost::system::error_code ignored;
                co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
              }
            }
            ++finished;
          },
          asio::detached);
    }
    io_.restart();
    while (finished < kClients) io_.run_one();
  }
  stop_killer = true;
  while (!killer_done) io_.run_one();
  ASSERT_EQ(gave_up, 0);
  test.RecordProperty("request_errors", errors);
  test.RecordProperty("backends_killed", kills);
  std::printf("randomized run: request errors %d, backends killed %d\n", errors, kills);
  if (inject_faults) {
    EXPECT_GT(kills, 0);
    EXPECT_GT(SqlInt("SELECT last_value FROM test_fault_seq"), 5);
    ASSERT_TRUE(Sql("DROP TRIGGER test_fault ON ledger_batches"));
  } else {
    EXPECT_EQ(errors, 0);
  }

  // Acknowledged (ok) transfers are stored exactly once; nothing else from the run is stored.
  std::set<std::string> acked;
  for (const auto& [id, result] : first) {
    if (result == R::kOk) acked.insert(id);
    // A retry answers exists for what was written and never writes anything new.
    if (result == R::kOk) {
      EXPECT_EQ(second[id], R::kExists) << id;
    } else {
      EXPECT_NE(second[id], R::kOk) << id << " first " << ToString(result);
    }
  }
  auto stored = Sql("SELECT id FROM ledger_transfers WHERE id LIKE 'r%'");
  ASSERT_TRUE(stored);
  std::set<std::string> stored_ids;
  for (int row = 0; row < stored.value().rows(); ++row) {
    EXPECT_TRUE(stored_ids.insert(std::string(stored.value().GetText(row, 0).value())).second);
  }
  EXPECT_EQ(stored_ids, acked);
  EXPECT_GT(acked.size(), 50u);

  // Linked entries are whole: every stored entry has exactly its chain's members.
  EXPECT_EQ(SqlInt("SELECT count(*) FROM ledger_transfers t WHERE t.entry_id <> t.id AND "
                   "NOT EXISTS (SELECT 1 FROM ledger_transfers e WHERE e.id = t.entry_id "
                   "AND e.batch_id = t.batch_id)"),
            0);
  // Debits equal credits per entry and currency, and overall.
  EXPECT_EQ(SqlInt("SELECT count(*) FROM (SELECT t.entry_id, t.currency, "
                   "sum(p.debits_posted) - sum(p.credits_posted) AS d, "
                   "sum(p.debits_pending) - sum(p.credits_pending) AS q "
                   "FROM ledger_postings p JOIN ledger_transfers t ON t.id = p.transfer_id "
                   "GROUP BY 1, 2) s WHERE d <> 0 OR q <> 0"),
            0);
  // Journal time order is batch order (statements and reads at an instant rely on it).
  EXPECT_EQ(SqlInt("SELECT count(*) FROM ledger_transfers a JOIN ledger_transfers b "
                   "ON b.batch_id > a.batch_id WHERE b.created_at < a.created_at"),
            0);
  auto trial = RunUntilDone(io_, test.ledger_->GetTrialBalance("CNY", std::nullopt, In(10s)));
  ASSERT_TRUE(trial);
  EXPECT_EQ(trial.value().total.debits_posted, trial.value().total.credits_posted);
  EXPECT_EQ(trial.value().total.debits_pending, trial.value().total.credits_pending);
  // No limit broken.
  for (const auto& line : trial.value().lines) {
    const Balance& b = line.balance;
    if (line.account_id.value == kPayable) {
      EXPECT_LE(b.debits_pending + b.debits_posted, b.credits_posted);
    }
    if (line.account_id.value == kReserve) {
      EXPECT_LE(b.credits_pending + b.credits_posted, b.debits_posted);
    }
  }
  EXPECT_TRUE(test.VerifyLedger().ok());
}

TEST_F(LedgerTest, SeededRandomizedConcurrentPosting) {
  // Proves, for a random mix of single, pending, post, void and linked transfers from many
  // concurrent clients: every acknowledged transfer is stored exactly once and nothing else is,
  // retries stay idempotent, no limit is broken, debits equal credits overall and per entry, and
  // Verify finds nothing. A failure prints the seed (PAYGATE_LEDGER_SEED replays it).
  RandomizedRun(*this, /*inject_faults=*/false);
}

TEST_F(LedgerTest, SeededRandomizedPostingWithInjectedFaults) {
  // Proves the same properties while batches hit injected 40001/40P01 failures and server
  // connections are killed mid-batch and mid-COMMIT, with clients retrying requests whose outcome
  // they did not learn.
  RandomizedRun(*this, /*inject_faults=*/true);
}

}  // namespace
}  // namespace paygate::ledger
