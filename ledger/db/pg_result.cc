#include "ledger/db/pg_result.h"

#include <charconv>
#include <cstdlib>
#include <string>

#include "keys/digest.h"
#include "ledger/db/errc.h"

namespace paygate::db {
int PgResult::rows() const { return result_ ? PQntuples(result_.get()) : 0; }

int PgResult::columns() const { return result_ ? PQnfields(result_.get()) : 0; }

std::int64_t PgResult::affected_rows() const {
  if (!result_) return 0;
  std::string_view text = PQcmdTuples(result_.get());
  std::int64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  return ec == std::errc() && end == text.data() + text.size() ? n : 0;
}

std::string_view PgResult::command_status() const {
  return result_ ? PQcmdStatus(result_.get()) : std::string_view();
}

int PgResult::ColumnIndex(std::string_view name) const {
  for (int col = 0; col < columns(); ++col) {
    if (name == PQfname(result_.get(), col)) return col;
  }
  return -1;
}

void PgResult::CheckCell(int row, int col) const {
  // Indexes come from the caller's code, not from the database, so a bad one is a bug. Kept on in
  // release builds: PQgetvalue on a bad index returns NULL and a later read would crash less
  // clearly.
  if (!result_ || row < 0 || row >= rows() || col < 0 || col >= columns()) {
    std::abort();
  }
}

bool PgResult::IsNull(int row, int col) const {
  CheckCell(row, col);
  return PQgetisnull(result_.get(), row, col) != 0;
}

Result<std::string_view> PgResult::GetText(int row, int col) const {
  if (IsNull(row, col)) return make_error_code(Errc::unexpected_null);
  return std::string_view(PQgetvalue(result_.get(), row, col),
                          static_cast<std::size_t>(PQgetlength(result_.get(), row, col)));
}

Result<std::int64_t> PgResult::GetInt64(int row, int col) const {
  auto text = GetText(row, col);
  if (!text) return text.error();
  std::int64_t value = 0;
  const char* begin = text.value().data();
  const char* end = begin + text.value().size();
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end || begin == end) return make_error_code(Errc::bad_value);
  return value;
}

Result<bool> PgResult::GetBool(int row, int col) const {
  auto text = GetText(row, col);
  if (!text) return text.error();
  if (text.value() == "t") return true;
  if (text.value() == "f") return false;
  return make_error_code(Errc::bad_value);
}

Result<std::string> PgResult::GetBytea(int row, int col) const {
  auto text = GetText(row, col);
  if (!text) return text.error();
  std::string_view hex = text.value();
  // bytea_output=hex (the default since 9.0): "\x" then two hex digits per byte.
  if (hex.size() < 2 || hex[0] != '\\' || hex[1] != 'x' || hex.size() % 2 != 0) {
    return make_error_code(Errc::bad_value);
  }
  std::string bytes;
  bytes.reserve((hex.size() - 2) / 2);
  for (std::size_t i = 2; i < hex.size(); i += 2) {
    int hi = keys::HexDigitValue(hex[i]);
    int lo = keys::HexDigitValue(hex[i + 1]);
    if (hi < 0 || lo < 0) return make_error_code(Errc::bad_value);
    bytes.push_back(static_cast<char>((hi << 4) | lo));
  }
  return bytes;
}

}  // namespace paygate::db
