#pragma once

// PostgreSQL's binary COPY format (PostgreSQL 15 docs, COPY, "Binary Format"), for the bulk paths
// of reconciliation: a million bill lines go in and a million of our items come out per import.
// Binary saves the server parsing and printing every value as text (timestamps above all) and
// the client parsing numbers back; values are big-endian, each field length-prefixed.
//
// Only the types reconciliation uses: text/char(n) (UTF-8 bytes, validated by the server as text
// COPY is), int4, int8, bool, timestamptz (microseconds since 2000-01-01 UTC; integer datetimes,
// the only kind PostgreSQL 10+ builds).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace paygate::recon {

// Unix seconds of 2000-01-01T00:00:00Z, PostgreSQL's timestamp epoch.
inline constexpr std::int64_t kPgEpochUnix = 946684800;

// Appends COPY FROM STDIN (FORMAT binary) data to `out`: Header() once, then rows, Trailer() once.
class BinaryCopyWriter {
 public:
  explicit BinaryCopyWriter(std::string& out) : out_(out) {}

  void Header();
  void Trailer();
  // Starts a row of `fields` values, which must follow.
  void Row(std::int16_t fields);
  void Text(std::string_view value);
  void Int4(std::int32_t value);
  void Int8(std::int64_t value);
  void Bool(bool value);
  void TimestampUnix(std::int64_t unix_seconds);
  void Null();

 private:
  void Be32(std::uint32_t value);
  void Be64(std::uint64_t value);
  std::string& out_;
};

// One field of a row read back: nullopt for NULL, else its bytes (valid while the message is).
using BinaryField = std::optional<std::string_view>;

// Reads COPY TO STDOUT (FORMAT binary) data, one data message at a time as the server sends them
// (one row each; the file header arrives with the first row, the trailer alone).
class BinaryCopyReader {
 public:
  enum class Status { kRow, kEnd, kMalformed };
  // Decodes the row `message` holds into `fields` (reused between calls to save allocations).
  Status Next(std::string_view message, std::vector<BinaryField>& fields);

  // Field decoders; nullopt when the field is NULL or not of the type's width.
  static std::optional<std::int64_t> Int8(const BinaryField& field);
  static std::optional<std::int32_t> Int4(const BinaryField& field);
  static std::optional<bool> Bool(const BinaryField& field);
  // timestamptz as whole unix seconds (rounded down).
  static std::optional<std::int64_t> TimestampUnix(const BinaryField& field);

 private:
  bool header_seen_ = false;
};

}  // namespace paygate::recon
