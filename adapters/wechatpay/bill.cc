#include "adapters/wechatpay/bill.h"


#include <map>
#include <optional>

#include <fmt/format.h>

#include "adapters/common/codec.h"
#include "adapters/common/crypto.h"
#include "adapters/common/money.h"

namespace paygate::adapters::wechatpay {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";
constexpr std::string_view kSummaryFirstColumn = "总交易单数";
// Fees are written with 5 decimals (fractions of a fen); everything else with 2.
constexpr int kFeeScale = 5;

// The ALL bill's detail header (免充值券 settlement version), in WeChat's order.
constexpr std::string_view kDetailColumns[] = {
    "交易时间",     "公众账号ID",   "商户号",       "特约商户号",   "设备号",   "微信订单号",
    "商户订单号",   "用户标识",     "交易类型",     "交易状态",     "付款银行", "货币种类",
    "应结订单金额", "代金券金额",   "微信退款单号", "商户退款单号", "退款金额", "充值券退款金额",
    "退款类型",     "退款状态",     "商品名称",     "商户数据包",   "手续费",   "费率",
    "订单金额",     "申请退款金额", "费率备注"};
constexpr std::string_view kSummaryColumns[] = {"总交易单数",       "应结订单总金额", "退款总金额",
                                                "充值券退款总金额", "手续费总金额",   "订单总金额",
                                                "申请退款总金额"};

std::vector<std::string_view> Split(std::string_view line, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = line.find(sep, start);
    if (end == std::string_view::npos) {
      out.push_back(line.substr(start));
      return out;
    }
    out.push_back(line.substr(start, end - start));
    start = end + 1;
  }
}

std::vector<std::string_view> Lines(std::string_view file) {
  std::vector<std::string_view> lines = Split(file, '\n');
  for (auto& line : lines) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  }
  // The file ends with a line break: no empty lines count after the last one.
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

// Data fields carry one leading backtick (so spreadsheets keep long ids as text).
std::optional<std::vector<std::string_view>> Fields(std::string_view line, std::size_t expected) {
  std::vector<std::string_view> fields = Split(line, ',');
  if (fields.size() != expected) return std::nullopt;
  for (auto& field : fields) {
    if (field.empty() || field.front() != '`') return std::nullopt;
    field.remove_prefix(1);
  }
  return fields;
}

// Column name -> index.
using Columns = std::map<std::string, std::size_t, std::less<>>;
Columns IndexColumns(const std::vector<std::string_view>& header) {
  Columns columns;
  for (std::size_t i = 0; i < header.size(); ++i) columns.emplace(std::string(header[i]), i);
  return columns;
}

std::optional<std::size_t> Find(const Columns& columns, std::string_view name) {
  auto it = columns.find(name);
  if (it == columns.end()) return std::nullopt;
  return it->second;
}

// Rounds an amount at kFeeScale to fen, half away from zero.
std::int64_t FeeToFen(std::int64_t fee_scaled) {
  constexpr std::int64_t kDivisor = 1000;  // 10^(kFeeScale - 2)
  const std::int64_t magnitude = fee_scaled < 0 ? -fee_scaled : fee_scaled;
  const std::int64_t rounded = (magnitude + kDivisor / 2) / kDivisor;
  return fee_scaled < 0 ? -rounded : rounded;
}

// "2019-02-19 05:01:46" -> "2019-02-19T05:01:46+08:00".
std::optional<std::string> NormaliseTime(std::string_view text) {
  if (text.size() != 19 || text[10] != ' ') return std::nullopt;
  std::string out(text);
  out[10] = 'T';
  return out + "+08:00";
}

struct RowAmounts {
  std::int64_t settlement = 0;
  std::int64_t refund = 0;
  std::int64_t coupon_refund = 0;
  std::int64_t fee_scaled = 0;
  std::int64_t total = 0;
  std::int64_t applied_refund = 0;
};

}  // namespace

WxResult<bill::File> ParseTradeBill(std::string_view file) {
  if (file.substr(0, kBom.size()) == kBom) file.remove_prefix(kBom.size());
  const std::vector<std::string_view> lines = Lines(file);
  if (lines.size() < 3) return Fail("trade bill: too short");

  const std::vector<std::string_view> header = Split(lines[0], ',');
  const Columns columns = IndexColumns(header);
  const auto col_time = Find(columns, "交易时间");
  const auto col_mchid = Find(columns, "商户号");
  const auto col_transaction = Find(columns, "微信订单号");
  const auto col_out_trade_no = Find(columns, "商户订单号");
  const auto col_state = Find(columns, "交易状态");
  if (!col_time || !col_mchid || !col_transaction || !col_out_trade_no || !col_state) {
    return Fail("trade bill: detail header lacks a required column");
  }
  const auto col_currency = Find(columns, "货币种类");
  const auto col_settlement = Find(columns, "应结订单金额");
  const auto col_total = Find(columns, "订单金额");
  const auto col_refund_id = Find(columns, "微信退款单号");
  const auto col_out_refund_no = Find(columns, "商户退款单号");
  const auto col_refund = Find(columns, "退款金额");
  const auto col_coupon_refund = Find(columns, "充值券退款金额");
  const auto col_refund_status = Find(columns, "退款状态");
  const auto col_fee = Find(columns, "手续费");
  const auto col_applied_refund = Find(columns, "申请退款金额");
  if (!col_settlement && !col_total) return Fail("trade bill: no amount column");

  bill::File out;
  RowAmounts sums;
  std::int64_t fee_sum_scaled = 0;
  std::size_t line_no = 1;
  for (; line_no < lines.size(); ++line_no) {
    const std::string_view line = lines[line_no];
    if (line.substr(0, kSummaryFirstColumn.size()) == kSummaryFirstColumn) break;
    auto fields = Fields(line, header.size());
    if (!fields) {
      return Fail(fmt::format("trade bill line {}: expected {} backtick-prefixed fields",
                              line_no + 1, header.size()));
    }
    const auto& f = *fields;
    RowAmounts row;
    // An amount column; absent columns (SUCCESS and REFUND bills lack some) count as 0.
    auto amount = [&](std::optional<std::size_t> col, int scale,
                      std::int64_t* target) -> WxResult<void> {
      if (!col) return outcome::success();
      auto value = money::ParseDecimal(f[*col], scale);
      if (!value) {
        return Fail(fmt::format("trade bill line {}: bad amount '{}' in {}", line_no + 1, f[*col],
                                header[*col]));
      }
      *target = *value;
      return outcome::success();
    };
    for (auto [col, scale, target] :
         {std::tuple{col_settlement, 2, &row.settlement}, std::tuple{col_refund, 2, &row.refund},
          std::tuple{col_coupon_refund, 2, &row.coupon_refund},
          std::tuple{col_fee, kFeeScale, &row.fee_scaled}, std::tuple{col_total, 2, &row.total},
          std::tuple{col_applied_refund, 2, &row.applied_refund}}) {
      if (auto ok = amount(col, scale, target); !ok) return ok.error();
    }
    sums.settlement += row.settlement;
    sums.refund += row.refund;
    sums.coupon_refund += row.coupon_refund;
    sums.total += row.total;
    sums.applied_refund += row.applied_refund;
    fee_sum_scaled += row.fee_scaled;

    bill::Record record;
    record.provider = "wechatpay";
    record.merchant_id = std::string(f[*col_mchid]);
    record.provider_transaction_id = std::string(f[*col_transaction]);
    record.merchant_reference = std::string(f[*col_out_trade_no]);
    record.currency = col_currency && !f[*col_currency].empty() ? std::string(f[*col_currency])
                                                                : std::string("CNY");
    auto at = NormaliseTime(f[*col_time]);
    if (!at)
      return Fail(fmt::format("trade bill line {}: bad time '{}'", line_no + 1, f[*col_time]));
    record.occurred_at = std::move(*at);
    record.fee_minor = FeeToFen(row.fee_scaled);
    const std::string_view state = f[*col_state];
    if (state == "SUCCESS") {
      record.kind = bill::Record::Kind::kPayment;
      record.amount_minor = col_total ? row.total : row.settlement;
      record.status = "SUCCESS";
      out.totals.payment_count += 1;
      out.totals.payment_amount_minor += record.amount_minor;
    } else if (state == "REFUND") {
      record.kind = bill::Record::Kind::kRefund;
      if (col_refund_id) record.provider_refund_id = std::string(f[*col_refund_id]);
      if (col_out_refund_no) record.refund_reference = std::string(f[*col_out_refund_no]);
      // What we asked to refund is what our refund row holds; 退款金额 excludes coupon parts.
      record.amount_minor = col_applied_refund ? row.applied_refund : row.refund;
      if (record.amount_minor < 0) record.amount_minor = -record.amount_minor;
      record.status = col_refund_status ? std::string(f[*col_refund_status]) : "REFUND";
      out.totals.refund_count += 1;
      out.totals.refund_amount_minor += record.amount_minor;
    } else {
      return Fail(
          fmt::format("trade bill line {}: unsupported trade state '{}'", line_no + 1, state));
    }
    out.records.push_back(std::move(record));
  }
  // The fee total is what WeChat states: the exact 5-decimal sum rounded to fen.
  out.totals.fee_amount_minor = FeeToFen(fee_sum_scaled);

  if (line_no + 2 != lines.size()) {
    return Fail("trade bill: expected one summary header and one summary row at the end");
  }
  const std::vector<std::string_view> summary_header = Split(lines[line_no], ',');
  auto summary = Fields(lines[line_no + 1], summary_header.size());
  if (!summary) return Fail("trade bill: malformed summary row");
  const Columns summary_columns = IndexColumns(summary_header);
  auto stated = [&](std::string_view name, int scale) -> std::optional<std::int64_t> {
    auto col = Find(summary_columns, name);
    if (!col) return std::nullopt;
    return money::ParseDecimal((*summary)[*col], scale);
  };
  // Every summary column present must parse and agree with the rows.
  struct Check {
    std::string_view name;
    int scale;
    std::int64_t computed;
  };
  const Check checks[] = {
      {"总交易单数", 0, out.totals.payment_count + out.totals.refund_count},
      {"应结订单总金额", 2, sums.settlement},
      {"退款总金额", 2, sums.refund},
      {"充值券退款总金额", 2, sums.coupon_refund},
      {"手续费总金额", 2, out.totals.fee_amount_minor},
      {"订单总金额", 2, sums.total},
      {"申请退款总金额", 2, sums.applied_refund},
  };
  if (!Find(summary_columns, "总交易单数")) return Fail("trade bill: summary lacks 总交易单数");
  for (const Check& check : checks) {
    if (!Find(summary_columns, check.name)) continue;
    auto value = stated(check.name, check.scale);
    if (!value) return Fail(fmt::format("trade bill: bad summary value for {}", check.name));
    if (*value != check.computed) {
      return Fail(fmt::format("trade bill: summary {} is {} but the rows add up to {}", check.name,
                              *value, check.computed));
    }
  }
  return out;
}

WxResult<void> CheckBillHash(std::string_view hash_type, std::string_view hash_value,
                             std::string_view file) {
  if (hash_type != "SHA1") return Fail(fmt::format("unsupported bill hash_type '{}'", hash_type));
  const std::string actual = codec::HexLower(crypto::DigestBytes(crypto::Digest::kSha1, file));
  if (hash_value.size() != actual.size()) return Fail("bill hash_value malformed");
  for (std::size_t i = 0; i < actual.size(); ++i) {
    char c = hash_value[i];
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (c != actual[i]) return Fail("bill SHA-1 does not match hash_value");
  }
  return outcome::success();
}

std::string FormatTradeBill(const std::vector<TradeBillRow>& rows) {
  std::string out(kBom);
  for (std::size_t i = 0; i < std::size(kDetailColumns); ++i) {
    if (i != 0) out += ',';
    out += kDetailColumns[i];
  }
  out += "\r\n";
  RowAmounts sums;
  std::int64_t fee_sum_fen = 0;
  for (const TradeBillRow& row : rows) {
    const bool refund = row.trade_state == "REFUND";
    const std::int64_t settlement = refund ? 0 : row.total_fen;
    const std::int64_t total = refund ? 0 : row.total_fen;
    const std::int64_t refunded = refund ? row.refund_fen : 0;
    sums.settlement += settlement;
    sums.total += total;
    sums.refund += refunded;
    sums.applied_refund += refunded;
    fee_sum_fen += row.fee_fen;
    const std::string fields[] = {row.time,
                                  row.appid,
                                  row.mchid,
                                  "0",
                                  "",
                                  row.transaction_id,
                                  row.out_trade_no,
                                  row.openid,
                                  row.trade_type,
                                  row.trade_state,
                                  "OTHERS",
                                  "CNY",
                                  money::FormatDecimal(settlement),
                                  "0.00",
                                  refund ? row.refund_id : "0",
                                  refund ? row.out_refund_no : "0",
                                  money::FormatDecimal(refunded),
                                  "0.00",
                                  refund ? "ORIGINAL" : "",
                                  refund ? row.refund_status : "",
                                  row.description,
                                  "",
                                  money::FormatDecimal(row.fee_fen * 1000, kFeeScale),
                                  row.fee_rate,
                                  money::FormatDecimal(total),
                                  money::FormatDecimal(refunded),
                                  ""};
    for (std::size_t i = 0; i < std::size(fields); ++i) {
      if (i != 0) out += ',';
      out += '`';
      out += fields[i];
    }
    out += "\r\n";
  }
  for (std::size_t i = 0; i < std::size(kSummaryColumns); ++i) {
    if (i != 0) out += ',';
    out += kSummaryColumns[i];
  }
  out += "\r\n";
  // WeChat writes the count and the recharge-coupon total with one decimal ("45.0", "0.0").
  out += fmt::format("`{}.0,`{},`{},`0.0,`{},`{},`{}\r\n", rows.size(),
                     money::FormatDecimal(sums.settlement), money::FormatDecimal(sums.refund),
                     money::FormatDecimal(fee_sum_fen), money::FormatDecimal(sums.total),
                     money::FormatDecimal(sums.applied_refund));
  return out;
}

}  // namespace paygate::adapters::wechatpay
