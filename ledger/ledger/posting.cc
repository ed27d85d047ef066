#include "ledger/ledger/posting.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include <openssl/evp.h>

namespace paygate::ledger {
namespace {

// Invariants of the state machine stay checked in release builds (STYLE.md "Assert invariants").
#define LEDGER_ASSERT(cond)                                                                    \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "%s:%d: ledger invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)

bool IsResolution(TransferKind kind) {
  return kind == TransferKind::kPostPending || kind == TransferKind::kVoidPending ||
         kind == TransferKind::kExpirePending;
}

// a + b into *out; false on int64 overflow or a negative result (counters are never negative, so a
// negative result means the stored state is inconsistent and the transfer must not be applied).
bool AddCounter(std::int64_t a, std::int64_t b, std::int64_t* out) {
  return !__builtin_add_overflow(a, b, out) && *out >= 0;
}

bool SumFits(std::int64_t a, std::int64_t b) {
  std::int64_t ignored;
  return !__builtin_add_overflow(a, b, &ignored);
}

class Planner {
 public:
  explicit Planner(const BatchSnapshot& snapshot)
      : snapshot_(snapshot), accounts_(snapshot.accounts) {}

  BatchPlan Run(std::span<const Transfer> transfers, std::span<const std::size_t> request_ends) {
    plan_.results.assign(transfers.size(), TransferResult::kOk);
    std::size_t begin = 0;
    for (std::size_t end : request_ends) {
      LEDGER_ASSERT(end >= begin && end <= transfers.size());
      std::size_t i = begin;
      while (i < end) {
        std::size_t last = i;
        while (last + 1 < end && transfers[last].linked) ++last;
        if (last == i && !transfers[i].linked) {
          Single(transfers[i], i);
        } else {
          Chain(transfers, i, last);
        }
        i = last + 1;
      }
      begin = end;
    }
    LEDGER_ASSERT(begin == transfers.size());
    // Every ok result has exactly one insert; nothing else is written.
    LEDGER_ASSERT(static_cast<std::size_t>(std::count(plan_.results.begin(), plan_.results.end(),
                                                      TransferResult::kOk)) ==
                  plan_.inserts.size());
    for (const auto& [id, state] : accounts_) {
      const Balance& b = state.balance;
      LEDGER_ASSERT(b.debits_pending >= 0 && b.debits_posted >= 0 && b.credits_pending >= 0 &&
                    b.credits_posted >= 0);
    }
    plan_.accounts_after = std::move(accounts_);
    return std::move(plan_);
  }

 private:
  const StoredTransfer* Find(const TransferId& id) const {
    if (auto it = inserted_.find(id); it != inserted_.end()) return &it->second;
    if (auto it = snapshot_.stored.find(id); it != snapshot_.stored.end()) return &it->second;
    return nullptr;
  }

  PendingResolution ResolutionOf(const TransferId& id) const {
    if (auto it = resolved_.find(id); it != resolved_.end()) return it->second;
    if (auto it = snapshot_.resolutions.find(id); it != snapshot_.resolutions.end()) {
      return it->second;
    }
    return PendingResolution::kNone;
  }

  void RecordFailure(const Transfer& t, TransferResult result) {
    if (!IsRecordedFailure(result)) return;
    if (failed_now_.emplace(t.id, result).second) plan_.failures.emplace_back(t.id, result);
  }

  void Single(const Transfer& t, std::size_t index) {
    TransferResult result = Apply(t, t.id);
    plan_.results[index] = result;
    RecordFailure(t, result);
  }

  void Chain(std::span<const Transfer> transfers, std::size_t first, std::size_t last) {
    // A chain left open by its request is malformed: nothing in it is evaluated.
    if (transfers[last].linked) {
      for (std::size_t k = first; k <= last; ++k) {
        plan_.results[k] = TransferResult::kLinkedEventFailed;
      }
      plan_.results[last] = TransferResult::kLinkedEventChainOpen;
      return;
    }
    // A retried chain that committed before answers exists for every member.
    bool all_exist = true;
    for (std::size_t k = first; k <= last && all_exist; ++k) {
      const StoredTransfer* stored = Find(transfers[k].id);
      all_exist = stored != nullptr && SameFields(transfers[k], stored->transfer);
    }
    if (all_exist) {
      for (std::size_t k = first; k <= last; ++k) plan_.results[k] = TransferResult::kExists;
      return;
    }
    // All-or-nothing: remember the state to roll back to.
    auto saved_accounts = accounts_;
    const std::size_t saved_inserts = plan_.inserts.size();
    const TransferId& entry_id = transfers[first].id;
    for (std::size_t k = first; k <= last; ++k) {
      TransferResult result = Apply(transfers[k], entry_id);
      if (result == TransferResult::kOk) continue;
      for (std::size_t m = first; m <= last; ++m) {
        plan_.results[m] = TransferResult::kLinkedEventFailed;
      }
      plan_.results[k] = result;
      RecordFailure(transfers[k], result);
      accounts_ = std::move(saved_accounts);
      for (std::size_t m = saved_inserts; m < plan_.inserts.size(); ++m) {
        const Transfer& undone = plan_.inserts[m].transfer;
        inserted_.erase(undone.id);
        if (IsResolution(undone.kind)) resolved_.erase(undone.pending_id);
      }
      plan_.inserts.resize(saved_inserts);
      return;
    }
  }

  TransferResult Apply(const Transfer& t, const TransferId& entry_id) {
    // Caller ids stop at 120 characters so that "expire:" + id fits the database's 128.
    if (!IsValidTransferId(t.id.value) ||
        (t.kind != TransferKind::kExpirePending && t.id.value.size() > 120)) {
      return TransferResult::kIdInvalid;
    }
    if (const StoredTransfer* stored = Find(t.id)) {
      return SameFields(t, stored->transfer) ? TransferResult::kExists
                                             : TransferResult::kExistsWithDifferentFields;
    }
    if (failed_now_.contains(t.id) || snapshot_.failed.contains(t.id)) {
      return TransferResult::kIdAlreadyFailed;
    }
    const bool resolving = IsResolution(t.kind);
    if (t.amount < 0 || (!resolving && t.amount == 0)) return TransferResult::kAmountMustBePositive;
    if (t.reason_code < 0) return TransferResult::kReasonCodeInvalid;
    if (!IsValidExternalRef(t.external_ref)) return TransferResult::kExternalRefInvalid;
    if (t.timeout_s < 0 || (t.kind != TransferKind::kPending && t.timeout_s != 0)) {
      return TransferResult::kTimeoutInvalid;
    }
    if (!resolving && !t.pending_id.value.empty()) return TransferResult::kPendingIdMustBeEmpty;
    if (resolving && t.pending_id.value.empty()) return TransferResult::kPendingIdRequired;
    if (!(resolving && t.currency.empty()) && !IsValidCurrency(t.currency)) {
      return TransferResult::kCurrencyInvalid;
    }

    Transfer r = t;
    std::int64_t pending_amount = 0;
    if (resolving) {
      const StoredTransfer* pending = Find(t.pending_id);
      if (pending == nullptr) return TransferResult::kPendingNotFound;
      const Transfer& p = pending->transfer;
      if (p.kind != TransferKind::kPending) return TransferResult::kPendingNotPending;
      switch (ResolutionOf(p.id)) {
        case PendingResolution::kNone:
          break;
        case PendingResolution::kPosted:
          return TransferResult::kPendingAlreadyPosted;
        case PendingResolution::kVoided:
          return TransferResult::kPendingAlreadyVoided;
        case PendingResolution::kExpired:
          return TransferResult::kPendingAlreadyExpired;
      }
      // timeout_s <= INT32_MAX, so the product fits in int64; the sum is checked.
      std::int64_t expires_at_us = 0;
      const bool expired =
          p.timeout_s > 0 &&
          (__builtin_add_overflow(pending->created_at_us,
                                  static_cast<std::int64_t>(p.timeout_s) * 1'000'000,
                                  &expires_at_us) ||
           snapshot_.now_us >= expires_at_us);
      if (t.kind == TransferKind::kExpirePending) {
        if (!expired) return TransferResult::kPendingNotExpired;
      } else if (expired) {
        return TransferResult::kPendingExpired;
      }
      if (r.debit_account_id.value == 0) r.debit_account_id = p.debit_account_id;
      if (r.credit_account_id.value == 0) r.credit_account_id = p.credit_account_id;
      if (r.currency.empty()) r.currency = p.currency;
      if (r.debit_account_id != p.debit_account_id || r.credit_account_id != p.credit_account_id ||
          r.currency != p.currency) {
        return TransferResult::kPendingDifferentAccounts;
      }
      pending_amount = p.amount;
      if (r.amount == 0) r.amount = p.amount;
      if (t.kind == TransferKind::kPostPending) {
        if (r.amount > p.amount) return TransferResult::kAmountExceedsPending;
      } else if (r.amount != p.amount) {
        return TransferResult::kVoidAmountMustMatchPending;
      }
    }

    if (r.debit_account_id == r.credit_account_id) return TransferResult::kAccountsMustBeDifferent;
    auto debit_it = accounts_.find(r.debit_account_id);
    auto credit_it = accounts_.find(r.credit_account_id);
    if (debit_it == accounts_.end() || credit_it == accounts_.end()) {
      return TransferResult::kAccountNotFound;
    }
    const Account& debit_account = debit_it->second.account;
    const Account& credit_account = credit_it->second.account;
    if (debit_account.currency != r.currency || credit_account.currency != r.currency) {
      return TransferResult::kCurrencyMismatch;
    }
    const bool adds_money = r.kind == TransferKind::kSingle || r.kind == TransferKind::kPending ||
                            r.kind == TransferKind::kPostPending;
    if (adds_money && (debit_account.flags.closed || credit_account.flags.closed)) {
      return TransferResult::kAccountClosed;
    }

    // The same arithmetic as the ledger_transfers_apply trigger (0002_ledger.sql).
    Balance d = debit_it->second.balance;
    Balance c = credit_it->second.balance;
    bool fits = true;
    switch (r.kind) {
      case TransferKind::kSingle:
        fits = AddCounter(d.debits_posted, r.amount, &d.debits_posted) &&
               AddCounter(c.credits_posted, r.amount, &c.credits_posted);
        break;
      case TransferKind::kPending:
        fits = AddCounter(d.debits_pending, r.amount, &d.debits_pending) &&
               AddCounter(c.credits_pending, r.amount, &c.credits_pending);
        break;
      case TransferKind::kPostPending:
        fits = AddCounter(d.debits_pending, -pending_amount, &d.debits_pending) &&
               AddCounter(d.debits_posted, r.amount, &d.debits_posted) &&
               AddCounter(c.credits_pending, -pending_amount, &c.credits_pending) &&
               AddCounter(c.credits_posted, r.amount, &c.credits_posted);
        break;
      case TransferKind::kVoidPending:
      case TransferKind::kExpirePending:
        fits = AddCounter(d.debits_pending, -pending_amount, &d.debits_pending) &&
               AddCounter(c.credits_pending, -pending_amount, &c.credits_pending);
        break;
    }
    // The limit constraints add pending and posted, so their sum must fit too.
    if (!fits || !SumFits(d.debits_pending, d.debits_posted) ||
        !SumFits(c.credits_pending, c.credits_posted)) {
      return TransferResult::kOverflow;
    }
    if (debit_account.flags.debits_must_not_exceed_credits &&
        d.debits_pending + d.debits_posted > d.credits_posted) {
      return TransferResult::kExceedsCredits;
    }
    if (credit_account.flags.credits_must_not_exceed_debits &&
        c.credits_pending + c.credits_posted > c.debits_posted) {
      return TransferResult::kExceedsDebits;
    }

    debit_it->second.balance = d;
    credit_it->second.balance = c;
    if (resolving) {
      resolved_[r.pending_id] = r.kind == TransferKind::kPostPending ? PendingResolution::kPosted
                                : r.kind == TransferKind::kVoidPending
                                    ? PendingResolution::kVoided
                                    : PendingResolution::kExpired;
    }
    inserted_[r.id] = StoredTransfer{r, snapshot_.now_us};
    plan_.inserts.push_back(PlannedTransfer{std::move(r), entry_id});
    return TransferResult::kOk;
  }

  const BatchSnapshot& snapshot_;
  std::map<AccountId, AccountState> accounts_;
  std::map<TransferId, StoredTransfer> inserted_;  // Written by this batch so far.
  std::map<TransferId, PendingResolution> resolved_;
  std::map<TransferId, TransferResult> failed_now_;
  BatchPlan plan_;
};

}  // namespace

bool SameFields(const Transfer& request, const Transfer& stored) {
  const bool resolving = IsResolution(request.kind);
  auto same_account = [&](AccountId a, AccountId b) {
    return a == b || (resolving && a.value == 0);
  };
  return request.kind == stored.kind && request.linked == stored.linked &&
         request.pending_id == stored.pending_id && request.timeout_s == stored.timeout_s &&
         request.reason_code == stored.reason_code && request.external_ref == stored.external_ref &&
         same_account(request.debit_account_id, stored.debit_account_id) &&
         same_account(request.credit_account_id, stored.credit_account_id) &&
         (request.currency == stored.currency || (resolving && request.currency.empty())) &&
         (request.amount == stored.amount || (resolving && request.amount == 0));
}

BatchPlan PlanBatch(std::span<const Transfer> transfers, std::span<const std::size_t> request_ends,
                    const BatchSnapshot& snapshot) {
  return Planner(snapshot).Run(transfers, request_ends);
}

namespace {

// PostgreSQL's length(): characters, not bytes (external_ref may hold multi-byte UTF-8, validated
// before it gets here).
std::size_t CharLength(std::string_view utf8) {
  return static_cast<std::size_t>(std::count_if(utf8.begin(), utf8.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

// length(x) || ':' || x
void AppendPrefixed(std::string& out, std::string_view value) {
  out += std::to_string(CharLength(value));
  out += ':';
  out += value;
}

// ledger_transfer_canonical(): concat_ws('|', ...) over the row as stored; booleans print as t/f.
void AppendCanonical(std::string& out, const PlannedTransfer& p, std::int64_t batch_id,
                     std::int64_t created_at_us) {
  const Transfer& t = p.transfer;
  AppendPrefixed(out, t.id.value);
  for (std::int64_t n : {t.debit_account_id.value, t.credit_account_id.value, t.amount}) {
    out += '|';
    out += std::to_string(n);
  }
  out += '|';
  out += t.currency;
  out += '|';
  out += ToString(t.kind);
  out += '|';
  out += t.linked ? 't' : 'f';
  out += '|';
  AppendPrefixed(out, t.pending_id.value);
  out += '|';
  out += std::to_string(t.timeout_s);
  out += '|';
  out += std::to_string(t.reason_code);
  out += '|';
  AppendPrefixed(out, t.external_ref);
  out += '|';
  AppendPrefixed(out, p.entry_id.value);
  out += '|';
  out += std::to_string(batch_id);
  out += '|';
  out += std::to_string(created_at_us);
}

}  // namespace

std::string BatchHash(std::string_view prev_hash, std::int64_t batch_id,
                      std::span<const PlannedTransfer> inserts, std::int64_t created_at_us) {
  LEDGER_ASSERT(prev_hash.size() == 32);
  std::vector<const PlannedTransfer*> rows;
  rows.reserve(inserts.size());
  for (const PlannedTransfer& p : inserts) rows.push_back(&p);
  std::sort(rows.begin(), rows.end(), [](const PlannedTransfer* a, const PlannedTransfer* b) {
    return a->transfer.id.value < b->transfer.id.value;  // Bytewise, as ORDER BY id in "C".
  });
  std::string message(prev_hash);
  message.reserve(prev_hash.size() + 24 + inserts.size() * 160);
  message += std::to_string(batch_id);
  message += '\n';
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (i > 0) message += '\n';
    AppendCanonical(message, *rows[i], batch_id, created_at_us);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  LEDGER_ASSERT(EVP_Digest(message.data(), message.size(), digest, &size, EVP_sha256(), nullptr) ==
                1);
  return std::string(reinterpret_cast<const char*>(digest), size);
}

}  // namespace paygate::ledger
