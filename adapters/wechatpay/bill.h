#pragma once

// WeChat Pay trade bills (交易账单, shared/providers/PROTOCOLS.md §A.6): parsing into the
// normalised bill::File for reconciliation, the SHA-1 integrity check of a download, gzip, and (for
// the simulator) writing a bill in the same format. Pure functions.
//
// Format: UTF-8 with a BOM, CRLF; a detail header line, detail rows whose every field starts with
// one backtick, a summary header line and one summary row. Columns are found by their (Chinese)
// header names, so the ALL, SUCCESS and REFUND variants all parse. Amounts are yuan decimals,
// parsed exactly.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/common/bill.h"
#include "adapters/wechatpay/error.h"
#include "config/result.h"

namespace paygate::adapters::wechatpay {

// Parses a decompressed trade bill. Fails on a malformed line or amount, a missing column, or
// summary totals that differ from the rows'.
WxResult<bill::File> ParseTradeBill(std::string_view file);

// The same parser, one record at a time, for bills too large to hold (reconciliation streams a
// million-line bill into PostgreSQL with bounded memory). Feed() takes the decompressed file in
// chunks split anywhere; each detail row is checked and handed to `on_record` as soon as its line
// is complete (an error from `on_record` stops the reader and is returned). Finish() checks the
// summary row against the rows and returns the totals. Memory: one line, whatever the file size.
class TradeBillReader {
 public:
  using OnRecord = std::function<WxResult<void>(bill::Record&&)>;
  static constexpr std::size_t kLineBytesMax = 64 * 1024;

  explicit TradeBillReader(OnRecord on_record);
  ~TradeBillReader();
  TradeBillReader(const TradeBillReader&) = delete;
  TradeBillReader& operator=(const TradeBillReader&) = delete;

  WxResult<void> Feed(std::string_view chunk);
  WxResult<bill::Totals> Finish();
  // Detail rows handed over so far.
  std::uint64_t records() const { return records_; }

 private:
  enum class Stage { kHeader, kDetail, kSummaryRow, kDone };
  struct Layout;
  struct Sums;
  WxResult<void> Line(std::string_view line);
  WxResult<void> Header(std::string_view line);
  WxResult<void> Detail(std::string_view line);
  WxResult<void> Summary(std::string_view line);
  WxResult<void> Failed(std::string message);

  OnRecord on_record_;
  std::unique_ptr<Layout> layout_;
  std::unique_ptr<Sums> sums_;
  std::vector<std::string> summary_header_;
  bill::Totals totals_;
  std::string carry_;
  std::uint64_t line_no_ = 0;
  std::uint64_t records_ = 0;
  Stage stage_ = Stage::kHeader;
  bool failed_ = false;
};

// Checks the SHA-1 (hex, any case) that /v3/bill/tradebill announced against the decompressed file.
WxResult<void> CheckBillHash(std::string_view hash_type, std::string_view hash_value,
                             std::string_view file);
// The same check against the raw digest of a file hashed a piece at a time
// (crypto::DigestStream(kSha1)).
WxResult<void> CheckBillDigest(std::string_view hash_type, std::string_view hash_value,
                               std::string_view sha1);

// One detail row, for writing bills (the simulator).
struct TradeBillRow {
  std::string time;  // "2026-11-27 08:00:05", China time
  std::string appid;
  std::string mchid;
  std::string transaction_id;
  std::string out_trade_no;
  std::string openid;
  std::string trade_type;      // JSAPI, NATIVE, APP, MWEB
  std::string trade_state;     // SUCCESS or REFUND
  std::int64_t total_fen = 0;  // payment rows: the order amount
  std::string refund_id;
  std::string out_refund_no;
  std::int64_t refund_fen = 0;  // refund rows
  std::string refund_status;    // refund rows: SUCCESS, PROCESSING, ...
  std::string description;
  std::int64_t fee_fen = 0;  // may be negative on refund rows
  std::string fee_rate;      // "0.60%"
};
// An ALL-type bill (27 columns) with its summary, byte-exact in WeChat's layout.
std::string FormatTradeBill(const std::vector<TradeBillRow>& rows);

}  // namespace paygate::adapters::wechatpay
