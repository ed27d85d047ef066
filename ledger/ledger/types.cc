#include "ledger/ledger/types.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace paygate::ledger {

std::string_view ToString(TransferResult result) {
  switch (result) {
    case TransferResult::kOk:
      return "ok";
    case TransferResult::kExists:
      return "exists";
    case TransferResult::kExistsWithDifferentFields:
      return "exists_with_different_fields";
    case TransferResult::kIdAlreadyFailed:
      return "id_already_failed";
    case TransferResult::kIdInvalid:
      return "id_invalid";
    case TransferResult::kAmountMustBePositive:
      return "amount_must_be_positive";
    case TransferResult::kCurrencyInvalid:
      return "currency_invalid";
    case TransferResult::kExternalRefInvalid:
      return "external_ref_invalid";
    case TransferResult::kReasonCodeInvalid:
      return "reason_code_invalid";
    case TransferResult::kTimeoutInvalid:
      return "timeout_invalid";
    case TransferResult::kPendingIdMustBeEmpty:
      return "pending_id_must_be_empty";
    case TransferResult::kPendingIdRequired:
      return "pending_id_required";
    case TransferResult::kAccountsMustBeDifferent:
      return "accounts_must_be_different";
    case TransferResult::kAccountNotFound:
      return "account_not_found";
    case TransferResult::kCurrencyMismatch:
      return "currency_mismatch";
    case TransferResult::kAccountClosed:
      return "account_closed";
    case TransferResult::kExceedsCredits:
      return "exceeds_credits";
    case TransferResult::kExceedsDebits:
      return "exceeds_debits";
    case TransferResult::kOverflow:
      return "overflow";
    case TransferResult::kPendingNotFound:
      return "pending_not_found";
    case TransferResult::kPendingNotPending:
      return "pending_not_pending";
    case TransferResult::kPendingAlreadyPosted:
      return "pending_already_posted";
    case TransferResult::kPendingAlreadyVoided:
      return "pending_already_voided";
    case TransferResult::kPendingAlreadyExpired:
      return "pending_already_expired";
    case TransferResult::kPendingExpired:
      return "pending_expired";
    case TransferResult::kPendingNotExpired:
      return "pending_not_expired";
    case TransferResult::kPendingDifferentAccounts:
      return "pending_different_accounts";
    case TransferResult::kAmountExceedsPending:
      return "amount_exceeds_pending";
    case TransferResult::kVoidAmountMustMatchPending:
      return "void_amount_must_match_pending";
    case TransferResult::kLinkedEventFailed:
      return "linked_event_failed";
    case TransferResult::kLinkedEventChainOpen:
      return "linked_event_chain_open";
  }
  return "unknown";
}

std::string_view ToString(TransferKind kind) {
  switch (kind) {
    case TransferKind::kSingle:
      return "single";
    case TransferKind::kPending:
      return "pending";
    case TransferKind::kPostPending:
      return "post_pending";
    case TransferKind::kVoidPending:
      return "void_pending";
    case TransferKind::kExpirePending:
      return "expire_pending";
  }
  return "unknown";
}

std::string_view ToString(AccountType type) {
  switch (type) {
    case AccountType::kAsset:
      return "asset";
    case AccountType::kLiability:
      return "liability";
    case AccountType::kIncome:
      return "income";
    case AccountType::kExpense:
      return "expense";
    case AccountType::kEquity:
      return "equity";
  }
  return "unknown";
}

bool IsRecordedFailure(TransferResult result) {
  switch (result) {
    case TransferResult::kOk:
    case TransferResult::kExists:
    case TransferResult::kExistsWithDifferentFields:
    case TransferResult::kIdAlreadyFailed:
    case TransferResult::kIdInvalid:
    case TransferResult::kLinkedEventFailed:
    case TransferResult::kLinkedEventChainOpen:
      return false;
    default:
      return true;
  }
}

bool IsValidTransferId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == ':' || c == '@' || c == '/' || c == '-';
  });
}

bool IsValidCurrency(std::string_view currency) {
  return currency.size() == 3 &&
         std::all_of(currency.begin(), currency.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

bool IsValidExternalRef(std::string_view ref) {
  if (ref.size() > 256) return false;
  for (std::size_t i = 0; i < ref.size();) {
    const auto c = static_cast<unsigned char>(ref[i]);
    std::size_t len = 0;
    std::uint32_t min = 0;
    if (c == 0) return false;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      min = 0x10000;
    } else {
      return false;
    }
    if (i + len > ref.size()) return false;
    std::uint32_t cp = c & (0x7F >> len);
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(ref[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

}  // namespace paygate::ledger
