#pragma once

// Beneficiary data of payouts (issue 7, DESIGN.md §6): encrypted at rest per field by
// keys::FieldCipher (AES-256-GCM under a data key wrapped by the master key) with the row identity
// as associated data, so a ciphertext copied into another row or column fails to decrypt; and the
// masked forms that are the only beneficiary data responses, events and logs carry.
#include <string>
#include <string_view>

namespace paygate::payouts {

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
