#pragma once

// How payouts encrypt beneficiary data at rest (issue 7, DESIGN.md §6): AES-256-GCM per field with
// the row identity as associated data, so a ciphertext copied into another row or column fails to
// decrypt. The production implementation is keys::FieldCipher (data keys wrapped by the master
// key, rotation); payouts see only these two calls, so the cipher behind them is one file's choice
// (gateway/payouts/wiring.cc).
//
// Also here: the masked forms that are the only beneficiary data responses, events and logs carry.
#include <string>
#include <string_view>

#include "config/result.h"

namespace paygate::payouts {

// Thread-safety: both calls may run concurrently from any thread. Neither does I/O.
class FieldProtector {
 public:
  virtual ~FieldProtector() = default;
  // A self-describing blob; encrypting the same plaintext twice gives different blobs.
  virtual Result<std::string> Encrypt(std::string_view plaintext, std::string_view aad) const = 0;
  // Fails when the blob was altered or written under another `aad`.
  virtual Result<std::string> Decrypt(std::string_view blob, std::string_view aad) const = 0;
};

// The associated data of one encrypted beneficiary column of a payout:
// "payouts/<payout id>/<column>", with `column` the blob's column name (beneficiary_account_enc,
// ...): the form keys' rewrap rebuilds from its registry (keys::RowAad with aad_prefix "payouts").
std::string BeneficiaryAad(std::string_view column, std::string_view payout_id);
// The payouts columns that hold blobs (beneficiary_id_number_enc may be NULL).
inline constexpr std::string_view kBeneficiaryColumns[] = {
    "beneficiary_name_enc", "beneficiary_account_enc", "beneficiary_id_number_enc"};

// Masks keep what a person needs to recognise the beneficiary and nothing that identifies them:
//   account "6222020200112233445" -> "************3445" style: the last 4 characters (fewer for
//     short values), every other character '*' (at most 12 of them, so the length does not leak);
//   name "张三丰" -> "张**", "Alice Smith" -> "A**********": the first character (UTF-8 aware);
//   ID number: like the account, last 4 only.
std::string MaskAccount(std::string_view account);
std::string MaskName(std::string_view name);
std::string MaskIdNumber(std::string_view id_number);

}  // namespace paygate::payouts
