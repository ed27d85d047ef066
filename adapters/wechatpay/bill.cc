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

// The columns of the detail header, found by name once.
struct TradeBillReader::Layout {
  std::size_t width = 0;
  std::vector<std::string> header;
  std::optional<std::size_t> time, mchid, transaction, out_trade_no, state, currency, settlement,
      total, refund_id, out_refund_no, refund, coupon_refund, refund_status, fee, applied_refund;
};

struct TradeBillReader::Sums {
  RowAmounts rows;
  std::int64_t fee_scaled = 0;
};

TradeBillReader::TradeBillReader(OnRecord on_record)
    : on_record_(std::move(on_record)), sums_(std::make_unique<Sums>()) {}
TradeBillReader::~TradeBillReader() = default;

WxResult<void> TradeBillReader::Feed(std::string_view chunk) {
  if (failed_) return Fail("trade bill: reader already failed");
  // Complete lines are handled straight from the chunk; only a line split across chunks is copied.
  while (!chunk.empty()) {
    const std::size_t newline = chunk.find('\n');
    if (newline == std::string_view::npos) {
      carry_.append(chunk);
      if (carry_.size() > kLineBytesMax) return Failed("trade bill: line too long");
      return outcome::success();
    }
    WxResult<void> handled = outcome::success();
    if (carry_.empty()) {
      handled = Line(chunk.substr(0, newline));
    } else {
      carry_.append(chunk.substr(0, newline));
      handled = Line(carry_);
      carry_.clear();
    }
    if (!handled) {
      failed_ = true;
      return handled;
    }
    chunk.remove_prefix(newline + 1);
  }
  return outcome::success();
}

WxResult<void> TradeBillReader::Failed(std::string message) {
  failed_ = true;
  return Fail(std::move(message));
}

WxResult<void> TradeBillReader::Line(std::string_view line) {
  ++line_no_;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line_no_ == 1 && line.substr(0, kBom.size()) == kBom) line.remove_prefix(kBom.size());
  switch (stage_) {
    case Stage::kHeader:
      return Header(line);
    case Stage::kDetail:
      if (line.substr(0, kSummaryFirstColumn.size()) == kSummaryFirstColumn) {
        for (auto name : Split(line, ',')) summary_header_.emplace_back(name);
        stage_ = Stage::kSummaryRow;
        return outcome::success();
      }
      return Detail(line);
    case Stage::kSummaryRow:
      return Summary(line);
    case Stage::kDone:
      // Nothing but line breaks may follow the summary row.
      if (!line.empty()) {
        return Fail("trade bill: expected one summary header and one summary row at the end");
      }
      return outcome::success();
  }
  return Fail("trade bill: bad reader state");
}

WxResult<void> TradeBillReader::Header(std::string_view line) {
  layout_ = std::make_unique<Layout>();
  Layout& l = *layout_;
  const std::vector<std::string_view> header = Split(line, ',');
  for (auto name : header) l.header.emplace_back(name);
  l.width = header.size();
  const Columns columns = IndexColumns(header);
  l.time = Find(columns, "交易时间");
  l.mchid = Find(columns, "商户号");
  l.transaction = Find(columns, "微信订单号");
  l.out_trade_no = Find(columns, "商户订单号");
  l.state = Find(columns, "交易状态");
  if (!l.time || !l.mchid || !l.transaction || !l.out_trade_no || !l.state) {
    return Fail("trade bill: detail header lacks a required column");
  }
  l.currency = Find(columns, "货币种类");
  l.settlement = Find(columns, "应结订单金额");
  l.total = Find(columns, "订单金额");
  l.refund_id = Find(columns, "微信退款单号");
  l.out_refund_no = Find(columns, "商户退款单号");
  l.refund = Find(columns, "退款金额");
  l.coupon_refund = Find(columns, "充值券退款金额");
  l.refund_status = Find(columns, "退款状态");
  l.fee = Find(columns, "手续费");
  l.applied_refund = Find(columns, "申请退款金额");
  if (!l.settlement && !l.total) return Fail("trade bill: no amount column");
  stage_ = Stage::kDetail;
  return outcome::success();
}

WxResult<void> TradeBillReader::Detail(std::string_view line) {
  const Layout& l = *layout_;
  auto fields = Fields(line, l.width);
  if (!fields) {
    return Fail(fmt::format("trade bill line {}: expected {} backtick-prefixed fields", line_no_,
                            l.width));
  }
  const auto& f = *fields;
  RowAmounts row;
  // An amount column; absent columns (SUCCESS and REFUND bills lack some) count as 0.
  auto amount = [&](std::optional<std::size_t> col, int scale,
                    std::int64_t* target) -> WxResult<void> {
    if (!col) return outcome::success();
    auto value = money::ParseDecimal(f[*col], scale);
    if (!value) {
      return Fail(fmt::format("trade bill line {}: bad amount '{}' in {}", line_no_, f[*col],
                              l.header[*col]));
    }
    *target = *value;
    return outcome::success();
  };
  for (auto [col, scale, target] :
       {std::tuple{l.settlement, 2, &row.settlement}, std::tuple{l.refund, 2, &row.refund},
        std::tuple{l.coupon_refund, 2, &row.coupon_refund},
        std::tuple{l.fee, kFeeScale, &row.fee_scaled}, std::tuple{l.total, 2, &row.total},
        std::tuple{l.applied_refund, 2, &row.applied_refund}}) {
    if (auto ok = amount(col, scale, target); !ok) return ok.error();
  }
  RowAmounts& sums = sums_->rows;
  sums.settlement += row.settlement;
  sums.refund += row.refund;
  sums.coupon_refund += row.coupon_refund;
  sums.total += row.total;
  sums.applied_refund += row.applied_refund;
  sums_->fee_scaled += row.fee_scaled;

  bill::Record record;
  record.provider = "wechatpay";
  record.merchant_id = std::string(f[*l.mchid]);
  record.provider_transaction_id = std::string(f[*l.transaction]);
  record.merchant_reference = std::string(f[*l.out_trade_no]);
  record.currency =
      l.currency && !f[*l.currency].empty() ? std::string(f[*l.currency]) : std::string("CNY");
  auto at = NormaliseTime(f[*l.time]);
  if (!at) return Fail(fmt::format("trade bill line {}: bad time '{}'", line_no_, f[*l.time]));
  record.occurred_at = std::move(*at);
  record.fee_minor = FeeToFen(row.fee_scaled);
  const std::string_view state = f[*l.state];
  if (state == "SUCCESS") {
    record.kind = bill::Record::Kind::kPayment;
    record.amount_minor = l.total ? row.total : row.settlement;
    record.status = "SUCCESS";
    totals_.payment_count += 1;
    totals_.payment_amount_minor += record.amount_minor;
  } else if (state == "REFUND") {
    record.kind = bill::Record::Kind::kRefund;
    if (l.refund_id) record.provider_refund_id = std::string(f[*l.refund_id]);
    if (l.out_refund_no) record.refund_reference = std::string(f[*l.out_refund_no]);
    // What we asked to refund is what our refund row holds; 退款金额 excludes coupon parts.
    record.amount_minor = l.applied_refund ? row.applied_refund : row.refund;
    if (record.amount_minor < 0) record.amount_minor = -record.amount_minor;
    record.status = l.refund_status ? std::string(f[*l.refund_status]) : "REFUND";
    totals_.refund_count += 1;
    totals_.refund_amount_minor += record.amount_minor;
  } else {
    return Fail(fmt::format("trade bill line {}: unsupported trade state '{}'", line_no_, state));
  }
  ++records_;
  return on_record_(std::move(record));
}

WxResult<void> TradeBillReader::Summary(std::string_view line) {
  // The fee total is what WeChat states: the exact 5-decimal sum rounded to fen.
  totals_.fee_amount_minor = FeeToFen(sums_->fee_scaled);
  std::vector<std::string_view> summary_header(summary_header_.begin(), summary_header_.end());
  auto summary = Fields(line, summary_header.size());
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
  const RowAmounts& sums = sums_->rows;
  const Check checks[] = {
      {"总交易单数", 0, totals_.payment_count + totals_.refund_count},
      {"应结订单总金额", 2, sums.settlement},
      {"退款总金额", 2, sums.refund},
      {"充值券退款总金额", 2, sums.coupon_refund},
      {"手续费总金额", 2, totals_.fee_amount_minor},
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
  stage_ = Stage::kDone;
  return outcome::success();
}

WxResult<bill::Totals> TradeBillReader::Finish() {
  if (failed_) return Fail("trade bill: reader already failed");
  if (!carry_.empty()) {
    std::string last = std::move(carry_);
    carry_.clear();
    if (auto handled = Line(last); !handled) {
      failed_ = true;
      return handled.error();
    }
  }
  if (stage_ == Stage::kHeader || (stage_ == Stage::kDetail && line_no_ < 3)) {
    return Fail("trade bill: too short");
  }
  if (stage_ != Stage::kDone) {
    return Fail("trade bill: expected one summary header and one summary row at the end");
  }
  return totals_;
}

WxResult<bill::File> ParseTradeBill(std::string_view file) {
  bill::File out;
  TradeBillReader reader([&out](bill::Record&& record) -> WxResult<void> {
    out.records.push_back(std::move(record));
    return outcome::success();
  });
  if (auto fed = reader.Feed(file); !fed) return fed.error();
  auto totals = reader.Finish();
  if (!totals) return totals.error();
  out.totals = totals.value();
  return out;
}

WxResult<void> CheckBillHash(std::string_view hash_type, std::string_view hash_value,
                             std::string_view file) {
  return CheckBillDigest(hash_type, hash_value, crypto::DigestBytes(crypto::Digest::kSha1, file));
}

WxResult<void> CheckBillDigest(std::string_view hash_type, std::string_view hash_value,
                               std::string_view sha1) {
  if (hash_type != "SHA1") return Fail(fmt::format("unsupported bill hash_type '{}'", hash_type));
  const std::string actual = codec::HexLower(sha1);
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
