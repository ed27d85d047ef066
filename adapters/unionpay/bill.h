#pragma once

// UnionPay's daily reconciliation download (fileTransReq, txnType 76) and its INN file of the
// merchant's settled transactions (一般交易明细), parsed into normalised bill records.
//
// UNVERIFIED LAYOUT. No real INN file was obtainable. The record layout below (41 fixed-width
// fields, 567 bytes) is a third party's (PROTOCOLS.md §D); whether fields are separated by one
// byte is not confirmed, so a line of exactly 567 bytes is read without separators and one of
// 607 bytes (567 + 40) with a one-byte separator after each field but the last; any other length
// is refused. Widths are bytes (the file's text is GBK). The amount encodings (12-digit fen for
// txnAmt; 13 bytes, optionally a leading C/D sign, for fees) are assumptions too. The parser is
// tested with files our simulator writes, which follow the same assumptions: a first real file
// must be checked by hand before reconciliation trusts this parser.
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/common/bill.h"
#include "config/result.h"

namespace paygate::adapters::unionpay {

struct InnField {
  std::string_view name;
  std::size_t width;
};
// The 41 fields in file order.
const std::vector<InnField>& InnLayout();
// Sum of the widths (567).
std::size_t InnRecordWidth();

// One line's fields by name, trimmed of padding spaces.
using InnRow = std::vector<std::pair<std::string, std::string>>;

// Formats one record (the simulator's side): numeric fields right-aligned zero-padded, text
// left-aligned space-padded; `separators` puts one space after each field but the last. nullopt
// when a value is longer than its field or names no field.
std::optional<std::string> FormatInnRecord(const InnRow& values, bool separators);

// Parses an INN file (lines separated by LF or CRLF; blank lines ignored). `settle_date` is the
// bill's date as YYYYMMDD: txnTime in the file has no year. txnType 01 rows are payments, 04
// (refund) and 31 (revoke) rows are refunds; any other type refuses the file, since the layout
// being wrong is likelier than an unknown row. Totals are recomputed from the rows: the INN file
// carries no summary line of its own to cross-check against.
Result<bill::File, std::string> ParseInn(std::string_view content, std::string_view settle_date);

// The same, streaming: the INN file fed in pieces of any size, each row handed to `on_record` as
// its line ends (an error from it stops the read and is returned). Holds one line at a time; a
// line longer than kLineMax refuses the file.
class InnStream {
 public:
  using OnRecord = std::function<Result<void, std::string>(bill::Record&&)>;
  static constexpr std::size_t kLineMax = 64 * 1024;

  InnStream(std::string_view settle_date, OnRecord on_record);
  ~InnStream();
  InnStream(const InnStream&) = delete;
  InnStream& operator=(const InnStream&) = delete;

  Result<void, std::string> Feed(std::string_view bytes);
  // After the last piece: the totals recomputed from the rows.
  Result<bill::Totals, std::string> Finish();
  // The most bytes of an unfinished line held between pieces (tests: memory stays bounded).
  std::size_t held_bytes_max() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The settle date (YYYYMMDD) an INN file's name carries, "INN<yyMMdd>88ZM_<merId>" (the year taken
// as 20yy), for reading a file without its download context; nullopt for another name.
std::optional<std::string> InnSettleDate(std::string_view file_name);

// What fileTransReq returned, opened: the archive's bytes and the INN entry parsed.
struct BillDownload {
  std::string file_name;  // fileName of the reply, e.g. "700000000000001_20261126.zip"
  std::string archive;    // the .zip bytes (after Base64 and zlib)
  std::string inn_name;   // the INN entry's name inside the archive
  std::string inn;        // its bytes
  bill::File file;
};
// fileContent: Base64 of zlib(zip). A value that already decodes to a zip ("PK\3\4") is accepted
// as such too (the wrapping is recalled from UnionPay's SDK, not verified).
Result<BillDownload, std::string> OpenFileContent(std::string_view file_content,
                                                  std::string_view settle_date);

}  // namespace paygate::adapters::unionpay
