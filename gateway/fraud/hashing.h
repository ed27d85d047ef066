#pragma once

// The keyed hash that stands in for personal data in the fraud rules (DESIGN.md §6, gateway/risk/
// schema.h): account numbers, ID numbers, names and e-mail addresses are normalised and hashed with
// HMAC-SHA256 under a key of the deployment (risk.hash_key_id) before any rule, list, table or
// log sees them. Equal inputs give equal hashes, so lists and aggregates still match; without the
// key a hash cannot be tested against a guessed value. The stored form is "h1:" and the first 32
// hex digits (128 bits) of the MAC.
#include <string>
#include <string_view>

#include "gateway/risk/value.h"
#include "keys/secret.h"

namespace paygate::fraud {

// What a value is, for its normalisation.
enum class PersonalKind {
  kAccount,   // account and card numbers, tokens: spaces and dashes dropped, upper case
  kIdNumber,  // ID numbers: likewise
  kName,      // names: whitespace runs collapsed to one space, trimmed, upper case
  kEmail,     // e-mail addresses: trimmed, lower case
};

class PersonalHasher {
 public:
  explicit PersonalHasher(keys::Secret key) : key_(std::move(key)) {}

  std::string Hash(PersonalKind kind, std::string_view value) const;

 private:
  keys::Secret key_;
};

// The normalised form that is hashed (exposed for tests).
std::string Normalise(PersonalKind kind, std::string_view value);

// Whether items of a list kind are personal data, stored only hashed, and how they normalise.
bool IsPersonal(risk::ListKind kind);
PersonalKind PersonalKindOf(risk::ListKind kind);

// A stored hash ("h1:" and 32 lower-case hex digits).
bool LooksHashed(std::string_view value);

}  // namespace paygate::fraud
