#include "adapters/unionpay/bill.h"

#include <algorithm>
#include <optional>

#include <fmt/format.h>

#include "adapters/common/archive.h"
#include "adapters/common/codec.h"
#include "adapters/common/money.h"
#include "adapters/unionpay/codec.h"

namespace paygate::adapters::unionpay {

namespace ar = adapters::archive;
namespace {

// Fields written as right-aligned, zero-padded numbers.
bool Numeric(std::string_view name) {
  static constexpr std::string_view kNumeric[] = {
      "traceNo",       "txnTime",     "txnAmt",     "origTradeSysTraceNo",
      "origTradeTime", "merCharge",   "settleAmt",  "subMerAcccountAmt",
      "settleNetAmt",  "discountAmt", "invoiceAmt", "insAdditionCharge",
      "installmentNum"};
  return std::find(std::begin(kNumeric), std::end(kNumeric), name) != std::end(kNumeric);
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return text;
}

const std::string& Value(const InnRow& row, std::string_view name) {
  static const std::string kEmpty;
  for (const auto& [key, value] : row) {
    if (key == name) return value;
  }
  return kEmpty;
}

// A fee field: digits, optionally after C (credited to the merchant: a fee returned, negative)
// or D (debited: a fee charged, positive).
std::optional<std::int64_t> ParseFee(std::string_view text) {
  if (text.empty()) return 0;
  bool negative = false;
  if (text.front() == 'C' || text.front() == 'D') {
    negative = text.front() == 'C';
    text.remove_prefix(1);
  }
  if (text.empty() || text.front() == '-' || text.front() == '+') return std::nullopt;
  auto value = money::ParseInteger(text);
  if (!value) return std::nullopt;
  return negative ? -*value : *value;
}

}  // namespace

const std::vector<InnField>& InnLayout() {
  static const std::vector<InnField> kLayout = {
      {"tradeNo", 3},        {"acqInsCode", 11},
      {"sendInsCode", 11},   {"traceNo", 6},
      {"txnTime", 10},       {"payCardNo", 19},
      {"txnAmt", 12},        {"merCatCode", 4},
      {"termType", 2},       {"queryId", 21},
      {"oldPayType", 2},     {"orderId", 32},
      {"payCardType", 2},    {"origTradeSysTraceNo", 6},
      {"origTradeTime", 10}, {"merCharge", 13},
      {"settleAmt", 13},     {"payType", 4},
      {"groupMerCode", 15},  {"txnType", 2},
      {"txnSubType", 2},     {"bizType", 6},
      {"accType", 2},        {"billType", 4},
      {"billNo", 32},        {"interactMode", 1},
      {"origQryId", 21},     {"merId", 15},
      {"accountType", 1},    {"subMerId", 15},
      {"subMerAbbr", 32},    {"subMerAcccountAmt", 13},
      {"settleNetAmt", 13},  {"termId", 8},
      {"merReserved", 32},   {"discountAmt", 13},
      {"invoiceAmt", 13},    {"insAdditionCharge", 12},
      {"installmentNum", 2}, {"tradeMedia", 1},
      {"reserved", 131},
  };
  return kLayout;
}

std::size_t InnRecordWidth() {
  std::size_t width = 0;
  for (const auto& field : InnLayout()) width += field.width;
  return width;
}

std::optional<std::string> FormatInnRecord(const InnRow& values, bool separators) {
  for (const auto& [name, value] : values) {
    const auto& layout = InnLayout();
    if (std::none_of(layout.begin(), layout.end(),
                     [&](const InnField& field) { return field.name == name; })) {
      return std::nullopt;
    }
  }
  std::string line;
  const auto& layout = InnLayout();
  for (std::size_t i = 0; i < layout.size(); ++i) {
    const InnField& field = layout[i];
    const std::string& value = Value(values, field.name);
    if (value.size() > field.width) {
      return std::nullopt;
    }
    const std::size_t pad = field.width - value.size();
    if (Numeric(field.name) && !value.empty()) {
      std::string_view digits = value;
      if (digits.front() == 'C' || digits.front() == 'D') {
        line.push_back(digits.front());
        digits.remove_prefix(1);
      }
      line.append(pad, '0');
      line += digits;
    } else {
      line += value;
      line.append(pad, ' ');
    }
    if (separators && i + 1 < layout.size()) line.push_back(' ');
  }
  return line;
}

namespace {

// An INN file a line at a time: what the whole-file parser and the streaming reader share.
struct InnLines {
  int settle_year = 0;
  int settle_month = 0;
  std::size_t line_no = 0;
  bill::Totals totals;

  static Result<InnLines, std::string> For(std::string_view settle_date) {
    if (settle_date.size() != 8 || !money::ParseInteger(settle_date)) {
      return std::string("settle date must be YYYYMMDD");
    }
    InnLines lines;
    lines.settle_year = std::stoi(std::string(settle_date.substr(0, 4)));
    lines.settle_month = std::stoi(std::string(settle_date.substr(4, 2)));
    return lines;
  }

  // One line without its end; a row's record in `record` (false for a blank line).
  Result<bool, std::string> Line(std::string_view line, bill::Record& record) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (Trim(line).empty()) return false;
    const std::size_t width = InnRecordWidth();
    const auto& layout = InnLayout();
    std::size_t separator = 0;
    if (line.size() == width) {
      separator = 0;
    } else if (line.size() == width + layout.size() - 1) {
      separator = 1;
    } else {
      return fmt::format("line {}: {} bytes, expected {} or {} (unverified layout)", line_no,
                         line.size(), width, width + layout.size() - 1);
    }
    InnRow row;
    std::size_t at = 0;
    for (std::size_t i = 0; i < layout.size(); ++i) {
      row.emplace_back(std::string(layout[i].name),
                       std::string(Trim(line.substr(at, layout[i].width))));
      at += layout[i].width;
      if (separator != 0 && i + 1 < layout.size()) {
        if (line[at] != ' ') {
          return fmt::format("line {}: no separator after {}", line_no, layout[i].name);
        }
        at += separator;
      }
    }

    record = bill::Record{};
    record.provider = "unionpay";
    record.currency = "CNY";
    record.status = "settled";
    record.merchant_id = Value(row, "merId");
    const std::string& txn_type = Value(row, "txnType");
    const std::string& order_id = Value(row, "orderId");
    if (order_id.empty()) return fmt::format("line {}: no orderId", line_no);
    if (txn_type == "01") {
      record.kind = bill::Record::Kind::kPayment;
      record.provider_transaction_id = Value(row, "queryId");
      record.merchant_reference = ReferenceFor(order_id);
    } else if (txn_type == "04" || txn_type == "31") {
      record.kind = bill::Record::Kind::kRefund;
      record.provider_refund_id = Value(row, "queryId");
      record.refund_reference = ReferenceFor(order_id);
      record.provider_transaction_id = Value(row, "origQryId");
    } else {
      return fmt::format("line {}: txnType '{}' is not a consume, refund or revoke", line_no,
                         txn_type);
    }
    if (record.provider_transaction_id.empty() && record.provider_refund_id.empty()) {
      return fmt::format("line {}: no queryId", line_no);
    }
    const auto amount = money::ParseInteger(Value(row, "txnAmt"));
    if (!amount || *amount <= 0) {
      return fmt::format("line {}: txnAmt '{}' is not a positive fen amount", line_no,
                         Value(row, "txnAmt"));
    }
    record.amount_minor = *amount;
    const auto fee = ParseFee(Value(row, "merCharge"));
    if (!fee) {
      return fmt::format("line {}: merCharge '{}' is not an amount", line_no,
                         Value(row, "merCharge"));
    }
    record.fee_minor = *fee;
    const std::string& time = Value(row, "txnTime");
    if (time.size() != 10 || !money::ParseInteger(time) || time.front() == '-') {
      return fmt::format("line {}: txnTime '{}' is not MMDDhhmmss", line_no, time);
    }
    // The file's times have no year: a December transaction settled in January is last year's.
    const int month = std::stoi(time.substr(0, 2));
    const int year = month > settle_month ? settle_year - 1 : settle_year;
    const std::string full = fmt::format("{:04}{}", year, time);
    if (!ParseBeijingTime(full)) {
      return fmt::format("line {}: txnTime '{}' is not a time", line_no, time);
    }
    record.occurred_at =
        fmt::format("{}-{}-{}T{}:{}:{}+08:00", full.substr(0, 4), full.substr(4, 2),
                    full.substr(6, 2), full.substr(8, 2), full.substr(10, 2), full.substr(12, 2));

    if (record.kind == bill::Record::Kind::kPayment) {
      ++totals.payment_count;
      totals.payment_amount_minor += record.amount_minor;
    } else {
      ++totals.refund_count;
      totals.refund_amount_minor += record.amount_minor;
    }
    totals.fee_amount_minor += record.fee_minor;
    return true;
  }
};

}  // namespace

Result<bill::File, std::string> ParseInn(std::string_view content, std::string_view settle_date) {
  auto lines = InnLines::For(settle_date);
  if (!lines) return lines.error();
  bill::File file;
  while (!content.empty()) {
    const std::size_t newline = content.find('\n');
    const std::string_view line = content.substr(0, newline);
    content = newline == std::string_view::npos ? std::string_view() : content.substr(newline + 1);
    bill::Record record;
    auto row = lines.value().Line(line, record);
    if (!row) return row.error();
    if (row.value()) file.records.push_back(std::move(record));
  }
  file.totals = lines.value().totals;
  return file;
}

struct InnStream::State {
  InnLines lines;
  OnRecord on_record;
  std::string partial;  // a line not ended yet
  std::size_t held_max = 0;
  std::string error;  // a bad settle date, reported by the first Feed

  Result<void, std::string> Line(std::string_view line) {
    bill::Record record;
    auto row = lines.Line(line, record);
    if (!row) return row.error();
    if (row.value()) return on_record(std::move(record));
    return outcome::success();
  }
};

InnStream::InnStream(std::string_view settle_date, OnRecord on_record)
    : state_(std::make_unique<State>()) {
  state_->on_record = std::move(on_record);
  auto lines = InnLines::For(settle_date);
  if (lines) {
    state_->lines = lines.value();
  } else {
    state_->error = lines.error();
  }
}
InnStream::~InnStream() = default;

Result<void, std::string> InnStream::Feed(std::string_view bytes) {
  State& s = *state_;
  if (!s.error.empty()) return s.error;
  while (!bytes.empty()) {
    const std::size_t eol = bytes.find('\n');
    if (eol == std::string_view::npos) {
      s.partial.append(bytes);
      s.held_max = std::max(s.held_max, s.partial.size());
      if (s.partial.size() > kLineMax) {
        return fmt::format("line {}: longer than {} bytes", s.lines.line_no + 1, kLineMax);
      }
      break;
    }
    std::string_view line = bytes.substr(0, eol);
    if (!s.partial.empty()) {
      s.partial.append(line);
      line = s.partial;
    }
    auto done = s.Line(line);
    if (!done) return done.error();
    s.partial.clear();
    bytes.remove_prefix(eol + 1);
  }
  return outcome::success();
}

Result<bill::Totals, std::string> InnStream::Finish() {
  State& s = *state_;
  if (!s.error.empty()) return s.error;
  if (!s.partial.empty()) {
    auto done = s.Line(s.partial);
    if (!done) return done.error();
    s.partial.clear();
  }
  return s.lines.totals;
}

std::size_t InnStream::held_bytes_max() const { return state_->held_max; }

std::optional<std::string> InnSettleDate(std::string_view file_name) {
  const std::size_t slash = file_name.rfind('/');
  if (slash != std::string_view::npos) file_name.remove_prefix(slash + 1);
  if (file_name.size() < 9 || file_name.substr(0, 3) != "INN") return std::nullopt;
  const std::string date = "20" + std::string(file_name.substr(3, 6));
  if (!ParseBeijingTime(date + "000000")) return std::nullopt;
  return date;
}

Result<BillDownload, std::string> OpenFileContent(std::string_view file_content,
                                                  std::string_view settle_date) {
  auto decoded = codec::Base64Decode(file_content);
  if (!decoded) return std::string("fileContent is not Base64");
  BillDownload download;
  if (decoded->rfind("PK\x03\x04", 0) == 0) {
    download.archive = std::move(*decoded);
  } else {
    auto inflated = ar::ZlibInflate(*decoded);
    if (!inflated) return "fileContent: " + inflated.error().message;
    download.archive = std::move(inflated).value();
  }
  auto entries = ar::ReadZip(download.archive);
  if (!entries) return entries.error().message;
  for (auto& entry : entries.value()) {
    const std::size_t slash = entry.name.rfind('/');
    const std::string base = slash == std::string::npos ? entry.name : entry.name.substr(slash + 1);
    if (base.rfind("INN", 0) != 0) continue;
    if (!download.inn_name.empty()) return std::string("the archive holds two INN files");
    download.inn_name = entry.name;
    download.inn = std::move(entry.data);
  }
  if (download.inn_name.empty()) return std::string("the archive holds no INN file");
  auto parsed = ParseInn(download.inn, settle_date);
  if (!parsed) return fmt::format("{}: {}", download.inn_name, parsed.error());
  download.file = std::move(parsed).value();
  return download;
}

}  // namespace paygate::adapters::unionpay
