#include "gateway/payouts/beneficiary.h"

#include <algorithm>

namespace paygate::payouts {
namespace {

// UTF-8 code points in `text` (a malformed byte counts as one).
std::size_t CodePoints(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

std::size_t FirstCodePointBytes(std::string_view text) {
  if (text.empty()) return 0;
  std::size_t n = 1;
  while (n < text.size() && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) ++n;
  return n;
}

std::string MaskTail(std::string_view value) {
  if (value.empty()) return {};
  // Show at most 4 characters and never more than a third of the value.
  const std::size_t shown = std::min<std::size_t>(4, value.size() / 3);
  const std::size_t hidden = std::min<std::size_t>(value.size() - shown, 12);
  std::string out(std::max<std::size_t>(hidden, 4), '*');
  out.append(value.substr(value.size() - shown));
  return out;
}

}  // namespace

std::string BeneficiaryAad(std::string_view column, std::string_view payout_id) {
  std::string aad = "payouts/";
  aad.append(payout_id);
  aad.push_back('/');
  aad.append(column);
  return aad;
}

std::string MaskAccount(std::string_view account) { return MaskTail(account); }
std::string MaskIdNumber(std::string_view id_number) { return MaskTail(id_number); }

std::string MaskName(std::string_view name) {
  if (name.empty()) return {};
  const std::size_t first = FirstCodePointBytes(name);
  const std::size_t rest = CodePoints(name.substr(first));
  std::string out(name.substr(0, first));
  out.append(std::max<std::size_t>(std::min<std::size_t>(rest, 10), 2), '*');
  return out;
}

}  // namespace paygate::payouts
