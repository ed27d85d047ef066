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

// Checks the SHA-1 (hex, any case) that /v3/bill/tradebill announced against the decompressed file.
WxResult<void> CheckBillHash(std::string_view hash_type, std::string_view hash_value,
                             std::string_view file);

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
