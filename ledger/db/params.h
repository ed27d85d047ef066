#pragma once

// Params: typed statement parameters, passed to libpq with their type OIDs so the server does not
// guess.
#include <concepts>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <libpq-fe.h>

namespace paygate::db {

// Builder of the parameters $1, $2, ... of one statement. Values are copied, so the builder may be
// built from temporaries. Values go in text format (the server parses them with the declared type),
// bytea in binary format (no escaping). Text cannot hold a NUL byte in PostgreSQL; a value with one
// marks the Params invalid and the statement fails with Errc::bad_value instead of being silently
// truncated. Overloads are exact on purpose: a `const char*` is text (not bool), and an unsigned or
// size_t argument does not compile rather than silently changing sign.
class Params {
 public:
  // Type OIDs from pg_type.h (server headers are not installed with libpq-dev; the values are
  // stable).
  static constexpr Oid kBoolOid = 16;
  static constexpr Oid kByteaOid = 17;
  static constexpr Oid kInt8Oid = 20;
  static constexpr Oid kInt4Oid = 23;
  static constexpr Oid kTextOid = 25;

  Params& Add(std::int64_t value);
  Params& Add(std::int32_t value);
  Params& Add(std::string_view value);
  Params& Add(const char* value) { return Add(std::string_view(value)); }
  Params& Add(const std::string& value) { return Add(std::string_view(value)); }
  template <std::same_as<bool> B>
  Params& Add(B value) {
    return Push(kBoolOid, value ? "t" : "f", /*binary=*/false);
  }
  // NULL with the type left for the server to infer from the statement.
  Params& AddNull();
  // A value in text format with the type left for the server to infer (uuid, timestamptz,
  // numeric...); the server parses it with the type's input function. Must not contain a NUL byte
  // (see above).
  Params& AddUntyped(std::string_view text);
  // Raw bytes for a bytea parameter.
  Params& AddBytea(std::span<const std::byte> bytes);
  Params& AddBytea(std::string_view bytes);
  // NULL when empty, the value otherwise.
  template <class T>
  Params& Add(const std::optional<T>& value) {
    return value ? Add(*value) : AddNull();
  }

  int size() const { return static_cast<int>(values_.size()); }
  bool valid() const { return valid_; }
  const Oid* types() const { return types_.data(); }

  // Arrays in the shape PQsendQueryParams wants; valid until this Params is modified or destroyed.
  struct Raw {
    std::vector<const char*> values;
    std::vector<int> lengths;
    std::vector<int> formats;
  };
  Raw ToRaw() const;

 private:
  Params& Push(Oid type, std::string_view value, bool binary);

  std::vector<Oid> types_;
  std::vector<std::optional<std::string>> values_;
  std::vector<bool> binary_;
  bool valid_ = true;
};

// PostgreSQL array literals, for a parameter the statement casts (`$1::text[]`, `$2::bigint[]`):
// one parameter for any number of values. Text elements are quoted and escaped, so any text
// (commas, braces, quotes, "NULL") arrives as itself.
std::string ArrayLiteral(const std::vector<std::string>& values);
std::string ArrayLiteral(const std::vector<std::int64_t>& values);

}  // namespace paygate::db
