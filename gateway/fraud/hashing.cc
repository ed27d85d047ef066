#include "gateway/fraud/hashing.h"

#include <algorithm>
#include <cctype>
#include <span>

#include "keys/digest.h"

namespace paygate::fraud {

std::string Normalise(PersonalKind kind, std::string_view value) {
  std::string out;
  out.reserve(value.size());
  switch (kind) {
    case PersonalKind::kAccount:
    case PersonalKind::kIdNumber:
      for (unsigned char c : value) {
        if (std::isspace(c) || c == '-') continue;
        out.push_back(static_cast<char>(std::toupper(c)));
      }
      break;
    case PersonalKind::kName: {
      bool space = false;
      for (unsigned char c : value) {
        if (std::isspace(c)) {
          space = !out.empty();
          continue;
        }
        if (space) out.push_back(' ');
        space = false;
        out.push_back(static_cast<char>(std::toupper(c)));
      }
      break;
    }
    case PersonalKind::kEmail:
      for (unsigned char c : value) {
        if (std::isspace(c)) continue;
        out.push_back(static_cast<char>(std::tolower(c)));
      }
      break;
  }
  return out;
}

std::string PersonalHasher::Hash(PersonalKind kind, std::string_view value) const {
  // The kind is part of the message: an account number and an ID number with the same digits hash
  // differently.
  std::string message(1, static_cast<char>('0' + static_cast<int>(kind)));
  message += ':';
  message += Normalise(kind, value);
  const keys::Sha256Digest mac = keys::HmacSha256(key_.reveal(), message);
  return "h1:" + keys::ToHex(std::span<const unsigned char>(mac.data(), 16));
}

bool IsPersonal(risk::ListKind kind) {
  return kind == risk::ListKind::kAccountHash || kind == risk::ListKind::kIdNumber ||
         kind == risk::ListKind::kName;
}

PersonalKind PersonalKindOf(risk::ListKind kind) {
  switch (kind) {
    case risk::ListKind::kIdNumber:
      return PersonalKind::kIdNumber;
    case risk::ListKind::kName:
      return PersonalKind::kName;
    default:
      return PersonalKind::kAccount;
  }
}

bool LooksHashed(std::string_view value) {
  return value.size() == 35 && value.starts_with("h1:") &&
         std::all_of(value.begin() + 3, value.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace paygate::fraud
