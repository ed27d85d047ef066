// Proves the posting state machine (PlanBatch) answers every TransferResult for the situation it
// names, applies two-phase and linked semantics, and never breaks a limit flag.
#include "ledger/ledger/posting.h"
#include "tests/testing/ledger_builders.h"

#include <cstdint>
#include <limits>
#include <ostream>
#include <vector>

#include <gtest/gtest.h>

namespace paygate::ledger {

// Readable gtest failures.
void PrintTo(TransferResult result, std::ostream* os) { *os << ToString(result); }

namespace {

using R = TransferResult;
using K = TransferKind;

constexpr std::int64_t kNowUs = 1'700'000'000'000'000;

Account MakeAccount(std::int64_t id, std::string currency = "CNY", AccountFlags flags = {}) {
  Account a;
  a.id = AccountId{id};
  a.type = AccountType::kAsset;
  a.currency = std::move(currency);
  a.name = "a" + std::to_string(id);
  a.flags = flags;
  return a;
}

Transfer T(std::string id, std::int64_t debit, std::int64_t credit, std::int64_t amount,
           K kind = K::kSingle) {
  return paygate::testing::TransferOf(std::move(id), debit, credit, amount, kind);
}

Transfer Resolve(std::string id, std::string pending, K kind, std::int64_t amount = 0) {
  return paygate::testing::ResolveOf(std::move(id), std::move(pending), kind, amount);
}

class PostingTest : public ::testing::Test {
 protected:
  PostingTest() {
    snapshot_.now_us = kNowUs;
    Add(MakeAccount(1));
    Add(MakeAccount(2));
    Add(MakeAccount(3, "USD"));
    Add(MakeAccount(4, "CNY", AccountFlags{.debits_must_not_exceed_credits = true}));
    Add(MakeAccount(5, "CNY", AccountFlags{.credits_must_not_exceed_debits = true}));
    Add(MakeAccount(6, "CNY", AccountFlags{.closed = true}));
  }

  void Add(Account a) {
    AccountId id = a.id;
    snapshot_.accounts[id] = AccountState{std::move(a), {}};
  }

  void Store(Transfer t, std::int64_t created_at_us = kNowUs - 1) {
    TransferId id = t.id;
    snapshot_.stored[id] = StoredTransfer{std::move(t), created_at_us};
  }

  // Plans `transfers` as one request.
  BatchPlan Plan(std::vector<Transfer> transfers) {
    std::vector<std::size_t> ends{transfers.size()};
    return PlanBatch(transfers, ends, snapshot_);
  }

  R One(Transfer t) { return Plan({std::move(t)}).results.at(0); }

  BatchSnapshot snapshot_;
};

TEST_F(PostingTest, SingleTransferMovesPostedCounters) {
  // Proves an accepted transfer is planned for insert and moves exactly the posted counters.
  BatchPlan plan = Plan({T("t1", 1, 2, 100)});
  ASSERT_EQ(plan.results, std::vector<R>{R::kOk});
  ASSERT_EQ(plan.inserts.size(), 1u);
  EXPECT_EQ(plan.inserts[0].entry_id.value, "t1");
  EXPECT_EQ(plan.accounts_after.at(AccountId{1}).balance, (Balance{0, 100, 0, 0}));
  EXPECT_EQ(plan.accounts_after.at(AccountId{2}).balance, (Balance{0, 0, 0, 100}));
}

TEST_F(PostingTest, ValidationCodes) {
  // Proves each malformed or impossible transfer gets its own precise code and writes nothing.
  EXPECT_EQ(One(T("", 1, 2, 1)), R::kIdInvalid);
  EXPECT_EQ(One(T("bad id", 1, 2, 1)), R::kIdInvalid);
  EXPECT_EQ(One(T(std::string(121, 'x'), 1, 2, 1)), R::kIdInvalid);
  EXPECT_EQ(One(T("a", 1, 2, 0)), R::kAmountMustBePositive);
  EXPECT_EQ(One(T("a", 1, 2, -5)), R::kAmountMustBePositive);
  Transfer bad_currency = T("a", 1, 2, 1);
  bad_currency.currency = "cny";
  EXPECT_EQ(One(bad_currency), R::kCurrencyInvalid);
  Transfer bad_ref = T("a", 1, 2, 1);
  bad_ref.external_ref = std::string("x\0y", 3);
  EXPECT_EQ(One(bad_ref), R::kExternalRefInvalid);
  bad_ref.external_ref = "\xff";
  EXPECT_EQ(One(bad_ref), R::kExternalRefInvalid);
  Transfer bad_reason = T("a", 1, 2, 1);
  bad_reason.reason_code = -1;
  EXPECT_EQ(One(bad_reason), R::kReasonCodeInvalid);
  Transfer bad_timeout = T("a", 1, 2, 1);
  bad_timeout.timeout_s = 5;
  EXPECT_EQ(One(bad_timeout), R::kTimeoutInvalid);
  Transfer stray_pending = T("a", 1, 2, 1);
  stray_pending.pending_id.value = "p";
  EXPECT_EQ(One(stray_pending), R::kPendingIdMustBeEmpty);
  EXPECT_EQ(One(Resolve("a", "", K::kPostPending)), R::kPendingIdRequired);
  EXPECT_EQ(One(T("a", 1, 1, 1)), R::kAccountsMustBeDifferent);
  EXPECT_EQ(One(T("a", 1, 99, 1)), R::kAccountNotFound);
  EXPECT_EQ(One(T("a", 1, 3, 1)), R::kCurrencyMismatch);
  EXPECT_EQ(One(T("a", 6, 1, 1)), R::kAccountClosed);
  EXPECT_EQ(One(T("a", 1, 6, 1)), R::kAccountClosed);
}

TEST_F(PostingTest, LimitsAndOverflow) {
  // Proves limit flags count pending debits/credits and that counters never overflow int64.
  snapshot_.accounts[AccountId{4}].balance.credits_posted = 100;
  EXPECT_EQ(One(T("a", 4, 1, 101)), R::kExceedsCredits);
  EXPECT_EQ(One(T("a", 4, 1, 100)), R::kOk);
  BatchPlan plan = Plan({T("p", 4, 1, 60, K::kPending), T("a", 4, 1, 50)});
  EXPECT_EQ(plan.results, (std::vector<R>{R::kOk, R::kExceedsCredits}));
  snapshot_.accounts[AccountId{5}].balance.debits_posted = 10;
  EXPECT_EQ(One(T("a", 1, 5, 11)), R::kExceedsDebits);
  EXPECT_EQ(One(T("a", 1, 5, 10)), R::kOk);
  snapshot_.accounts[AccountId{2}].balance.credits_posted =
      std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(One(T("a", 1, 2, 1)), R::kOverflow);
}

TEST_F(PostingTest, IdempotencyAndFailedIds) {
  // Proves same id + same fields answers exists, different fields a distinct code, and an id that
  // failed for a business reason stays failed (also within the same batch).
  Store(T("t1", 1, 2, 100));
  EXPECT_EQ(One(T("t1", 1, 2, 100)), R::kExists);
  EXPECT_EQ(One(T("t1", 1, 2, 101)), R::kExistsWithDifferentFields);
  EXPECT_EQ(One(T("t1", 2, 1, 100)), R::kExistsWithDifferentFields);
  snapshot_.failed[TransferId{"f1"}] = "exceeds_credits";
  EXPECT_EQ(One(T("f1", 1, 2, 1)), R::kIdAlreadyFailed);

  BatchPlan plan = Plan({T("x", 1, 3, 1), T("x", 1, 2, 1), T("y", 1, 2, 5), T("y", 1, 2, 5)});
  EXPECT_EQ(plan.results,
            (std::vector<R>{R::kCurrencyMismatch, R::kIdAlreadyFailed, R::kOk, R::kExists}));
  ASSERT_EQ(plan.failures.size(), 1u);
  EXPECT_EQ(plan.failures[0].first.value, "x");
  EXPECT_EQ(plan.failures[0].second, R::kCurrencyMismatch);
  EXPECT_EQ(plan.inserts.size(), 1u);
}

TEST_F(PostingTest, TwoPhasePostPartialVoidExpire) {
  // Proves pending reserves, a partial post releases the whole reservation and posts the part, a
  // void releases it, and each pending resolves at most once.
  BatchPlan plan =
      Plan({T("p1", 1, 2, 100, K::kPending), Resolve("c1", "p1", K::kPostPending, 30),
            Resolve("c2", "p1", K::kVoidPending), T("p2", 1, 2, 50, K::kPending),
            Resolve("v2", "p2", K::kVoidPending), Resolve("v3", "p2", K::kPostPending)});
  EXPECT_EQ(plan.results, (std::vector<R>{R::kOk, R::kOk, R::kPendingAlreadyPosted, R::kOk, R::kOk,
                                          R::kPendingAlreadyVoided}));
  EXPECT_EQ(plan.accounts_after.at(AccountId{1}).balance, (Balance{0, 30, 0, 0}));
  EXPECT_EQ(plan.accounts_after.at(AccountId{2}).balance, (Balance{0, 0, 0, 30}));
  ASSERT_EQ(plan.inserts.size(), 4u);
  EXPECT_EQ(plan.inserts[1].transfer.debit_account_id, AccountId{1});  // Filled from the pending.
  EXPECT_EQ(plan.inserts[2].transfer.amount, 50);                      // Void: the full amount.
}

TEST_F(PostingTest, PendingErrorCodes) {
  // Proves every way a post/void/expire can fail against its pending transfer is told apart.
  Transfer pending = T("p", 1, 2, 100, K::kPending);
  pending.timeout_s = 10;
  Store(pending, kNowUs - 5'000'000);
  snapshot_.accounts[AccountId{1}].balance.debits_pending = 100;
  snapshot_.accounts[AccountId{2}].balance.credits_pending = 100;
  Store(T("s", 1, 2, 100));
  EXPECT_EQ(One(Resolve("c", "nope", K::kPostPending)), R::kPendingNotFound);
  EXPECT_EQ(One(Resolve("c", "s", K::kPostPending)), R::kPendingNotPending);
  EXPECT_EQ(One(Resolve("c", "p", K::kPostPending, 101)), R::kAmountExceedsPending);
  EXPECT_EQ(One(Resolve("c", "p", K::kVoidPending, 99)), R::kVoidAmountMustMatchPending);
  Transfer other = Resolve("c", "p", K::kPostPending);
  other.credit_account_id = AccountId{5};
  EXPECT_EQ(One(other), R::kPendingDifferentAccounts);
  EXPECT_EQ(One(Resolve("c", "p", K::kExpirePending)), R::kPendingNotExpired);
  EXPECT_EQ(One(Resolve("c", "p", K::kPostPending)), R::kOk);

  snapshot_.now_us = kNowUs + 5'000'000;  // Exactly at the timeout.
  EXPECT_EQ(One(Resolve("c", "p", K::kPostPending)), R::kPendingExpired);
  EXPECT_EQ(One(Resolve("c", "p", K::kVoidPending)), R::kPendingExpired);
  EXPECT_EQ(One(Resolve("expire:p", "p", K::kExpirePending)), R::kOk);

  snapshot_.resolutions[TransferId{"p"}] = PendingResolution::kExpired;
  EXPECT_EQ(One(Resolve("c", "p", K::kVoidPending)), R::kPendingAlreadyExpired);
}

TEST_F(PostingTest, LinkedChainIsAllOrNothing) {
  // Proves a failing member fails the whole chain (its own code, linked_event_failed for the
  // rest, state rolled back), a passing chain forms one entry, and an open chain is refused.
  snapshot_.accounts[AccountId{4}].balance.credits_posted = 100;
  Transfer a = T("a", 1, 2, 10);
  a.linked = true;
  Transfer b = T("b", 4, 1, 500);  // Exceeds credits.
  Transfer c = T("c", 2, 1, 5);
  BatchPlan failed = Plan({a, b, c});
  EXPECT_EQ(failed.results, (std::vector<R>{R::kLinkedEventFailed, R::kExceedsCredits, R::kOk}));
  EXPECT_EQ(failed.inserts.size(), 1u);  // Only c, which is not in the chain.
  EXPECT_EQ(failed.accounts_after.at(AccountId{2}).balance, (Balance{0, 5, 0, 0}));
  ASSERT_EQ(failed.failures.size(), 1u);
  EXPECT_EQ(failed.failures[0].first.value, "b");

  Transfer b_ok = T("b2", 2, 4, 7);
  b_ok.linked = true;
  Transfer last = T("d", 1, 2, 3);
  BatchPlan ok = Plan({a, b_ok, last});
  EXPECT_EQ(ok.results, (std::vector<R>{R::kOk, R::kOk, R::kOk}));
  for (const auto& insert : ok.inserts) EXPECT_EQ(insert.entry_id.value, "a");

  BatchPlan open = Plan({a, b_ok});
  EXPECT_EQ(open.results, (std::vector<R>{R::kLinkedEventFailed, R::kLinkedEventChainOpen}));
  EXPECT_TRUE(open.inserts.empty());
  EXPECT_TRUE(open.failures.empty());
}

TEST_F(PostingTest, ChainsNeverCrossRequests) {
  // Proves a request ending in linked = true fails on its own and does not swallow the next
  // request's transfers in a batch.
  Transfer a = T("a", 1, 2, 10);
  a.linked = true;
  std::vector<Transfer> transfers{a, T("b", 1, 2, 1)};
  std::vector<std::size_t> ends{1, 2};
  BatchPlan plan = PlanBatch(transfers, ends, snapshot_);
  EXPECT_EQ(plan.results, (std::vector<R>{R::kLinkedEventChainOpen, R::kOk}));
}

TEST_F(PostingTest, RetriedCommittedChainAnswersExists) {
  // Proves retrying a committed linked chain is idempotent: every member answers exists.
  Transfer a = T("a", 1, 2, 10);
  a.linked = true;
  Transfer b = T("b", 2, 1, 4);
  Store(a);
  Store(b);
  EXPECT_EQ(Plan({a, b}).results, (std::vector<R>{R::kExists, R::kExists}));
  EXPECT_TRUE(Plan({a, b}).inserts.empty());
}

TEST(TypesTest, ExternalRefUtf8) {
  // Proves external references accept UTF-8 (e.g. Chinese merchant references) and refuse what
  // PostgreSQL text would reject for the whole batch.
  EXPECT_TRUE(IsValidExternalRef("订单-42"));
  EXPECT_FALSE(IsValidExternalRef("\xc0\xaf"));      // Overlong.
  EXPECT_FALSE(IsValidExternalRef("\xed\xa0\x80"));  // Surrogate.
  EXPECT_FALSE(IsValidExternalRef(std::string(257, 'a')));
}

}  // namespace
}  // namespace paygate::ledger
