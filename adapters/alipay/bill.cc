#include "adapters/alipay/bill.h"

#include <iconv.h>

#include <cerrno>
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "adapters/common/archive.h"
#include "adapters/common/money.h"

namespace paygate::adapters::alipay {
namespace {

AlipayResult<std::string> Convert(std::string_view input, const char* from, const char* to) {
  iconv_t cd = iconv_open(to, from);
  if (cd == reinterpret_cast<iconv_t>(-1)) return Error{fmt::format("iconv {} -> {} unavailable", from, to)};
  std::string out;
  out.resize(input.size() * 2 + 16);
  // iconv's interface takes non-const pointers but does not write through the input one.
  char* in_ptr = const_cast<char*>(input.data());
  std::size_t in_left = input.size();
  std::size_t written = 0;
  for (;;) {
    char* out_ptr = out.data() + written;
    std::size_t out_left = out.size() - written;
    const std::size_t rc = iconv(cd, &in_ptr, &in_left, &out_ptr, &out_left);
    written = out.size() - out_left;
    if (rc != static_cast<std::size_t>(-1)) break;
    if (errno == E2BIG) {
      out.resize(out.size() * 2);
      continue;
    }
    iconv_close(cd);
    return Error{fmt::format("not {} at byte {}", from, input.size() - in_left)};
  }
  iconv_close(cd);
  out.resize(written);
  return out;
}

// "2019-09-16 10:55:23" -> "2019-09-16T10:55:23+08:00" (bill times are Beijing time).
std::optional<std::string> BeijingTime(std::string_view text) {
  if (text.size() != 19) return std::nullopt;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool want_digit = !(i == 4 || i == 7 || i == 10 || i == 13 || i == 16);
    if (want_digit && (c < '0' || c > '9')) return std::nullopt;
  }
  if (text[4] != '-' || text[7] != '-' || text[10] != ' ' || text[13] != ':' || text[16] != ':') {
    return std::nullopt;
  }
  std::string out(text);
  out[10] = 'T';
  return out + "+08:00";
}

// Only the Excel-guard TABs go: any other stray byte in an amount must fail its parse, not be
// silently cleaned.
std::string_view Trim(std::string_view s) {
  while (!s.empty() && s.front() == '\t') s.remove_prefix(1);
  while (!s.empty() && s.back() == '\t') s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> Split(std::string_view line, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    const std::size_t at = line.find(sep);
    out.push_back(line.substr(0, at));
    if (at == std::string_view::npos) break;
    line.remove_prefix(at + 1);
  }
  return out;
}

// The text between `prefix` and the next `suffix` after it, when the line contains them.
std::optional<std::string_view> Between(std::string_view line, std::string_view prefix,
                                        std::string_view suffix) {
  const std::size_t start = line.find(prefix);
  if (start == std::string_view::npos) return std::nullopt;
  const std::size_t from = start + prefix.size();
  const std::size_t end = line.find(suffix, from);
  if (end == std::string_view::npos) return std::nullopt;
  return line.substr(from, end - from);
}

struct Stated {
  std::int64_t count = 0;
  std::int64_t receipts = 0;  // 商家实收, as written (refunds negative)
  std::int64_t discount = 0;  // 商家优惠, as written
};

// "#交易合计：6笔，商家实收共0.06元，商家优惠共0.00元" (or the 退款 line with 退款 in the names).
std::optional<Stated> ParseTotalsLine(std::string_view line, std::string_view kind,
                                      std::string_view suffix) {
  const std::string label = fmt::format("{}合计：", kind);
  auto count = Between(line, label, "笔");
  auto receipts = Between(line, fmt::format("商家实收{}共", suffix), "元");
  auto discount = Between(line, fmt::format("商家优惠{}共", suffix), "元");
  if (!count || !receipts || !discount) return std::nullopt;
  Stated stated;
  auto n = money::ParseInteger(*count);
  auto r = money::ParseDecimal(*receipts, 2);
  auto d = money::ParseDecimal(*discount, 2);
  if (!n || *n < 0 || !r || !d) return std::nullopt;
  stated.count = *n;
  stated.receipts = *r;
  stated.discount = *d;
  return stated;
}

std::int64_t Abs(std::int64_t v) { return v < 0 ? -v : v; }

}  // namespace

AlipayResult<std::string> GbkToUtf8(std::string_view gbk) {
  return Convert(gbk, "GBK", "UTF-8");
}

AlipayResult<std::string> Utf8ToGbk(std::string_view utf8) {
  return Convert(utf8, "UTF-8", "GBK");
}

namespace {

// Columns the parser needs, by header name (the file has 25; reading by name survives Alipay
// adding one).
constexpr std::string_view kTradeNo = "支付宝交易号";
constexpr std::string_view kOutTradeNo = "商户订单号";
constexpr std::string_view kType = "业务类型";
constexpr std::string_view kFinished = "完成时间";
constexpr std::string_view kOrderAmount = "订单金额（元）";
constexpr std::string_view kReceipts = "商家实收（元）";
constexpr std::string_view kDiscount = "商家优惠（元）";
constexpr std::string_view kRequestNo = "退款批次号/请求号";
constexpr std::string_view kFee = "服务费（元）";
constexpr std::string_view kNeeded[] = {kTradeNo,  kOutTradeNo, kType,      kFinished, kOrderAmount,
                                        kReceipts, kDiscount,   kRequestNo, kFee};

// The detail CSV a line at a time: what the whole-file parser and the streaming reader share.
struct BillCsvLines {
  std::string merchant_id;
  std::vector<std::string> header;
  std::optional<Stated> stated_trades;
  std::optional<Stated> stated_refunds;
  Stated rows_trades;
  Stated rows_refunds;
  std::int64_t fees = 0;
  std::size_t line_no = 0;

  std::size_t Column(std::string_view name) const {
    for (std::size_t i = 0; i < header.size(); ++i) {
      if (header[i] == name) return i;
    }
    return header.size();
  }

  // One line without its end; a row's record in `record` (false when the line held none).
  AlipayResult<bool> Line(std::string_view line, bill::Record& record) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) return false;

    if (line.front() == '#') {
      if (auto account = Between(line, "#账号：[", "]")) {
        // 16-digit PID followed by a 4-digit account suffix.
        if (account->size() < 16) return Error{fmt::format("line {}: account id too short", line_no)};
        merchant_id = std::string(account->substr(0, 16));
      } else if (line.find("#交易合计：") == 0) {
        if (header.empty()) return Error{fmt::format("line {}: totals before the header row", line_no)};
        stated_trades = ParseTotalsLine(line, "交易", "");
        if (!stated_trades) return Error{fmt::format("line {}: unreadable trade totals", line_no)};
      } else if (line.find("#退款合计：") == 0) {
        if (header.empty()) return Error{fmt::format("line {}: totals before the header row", line_no)};
        stated_refunds = ParseTotalsLine(line, "退款", "退款");
        if (!stated_refunds) return Error{fmt::format("line {}: unreadable refund totals", line_no)};
      }
      return false;
    }
    if (stated_trades || stated_refunds) {
      return Error{fmt::format("line {}: a row after the totals", line_no)};
    }
    if (header.empty()) {
      for (std::string_view name : Split(line, ',')) header.emplace_back(Trim(name));
      for (std::string_view name : kNeeded) {
        if (Column(name) == header.size()) {
          return Error{fmt::format("line {}: header lacks column {}", line_no, name)};
        }
      }
      return false;
    }

    const std::vector<std::string_view> fields = Split(line, ',');
    // Fields are not quoted: a comma inside one would shift every column after it, so a row of the
    // wrong width is refused rather than read askew.
    if (fields.size() != header.size()) {
      return Error{fmt::format("line {}: {} fields, header has {}", line_no, fields.size(),
                         header.size())};
    }
    auto field = [&](std::string_view name) { return Trim(fields[Column(name)]); };
    record = bill::Record{};
    record.provider = "alipay";
    record.merchant_id = merchant_id;
    record.currency = "CNY";
    record.provider_transaction_id = std::string(field(kTradeNo));
    record.merchant_reference = std::string(field(kOutTradeNo));
    const std::string_view type = field(kType);
    record.status = std::string(type);
    if (type == "交易") {
      record.kind = bill::Record::Kind::kPayment;
    } else if (type == "退款") {
      record.kind = bill::Record::Kind::kRefund;
      record.refund_reference = std::string(field(kRequestNo));
    } else {
      return Error{fmt::format("line {}: unknown business type {}", line_no, type)};
    }
    auto amount = money::ParseDecimal(field(kOrderAmount), 2);
    auto receipts = money::ParseDecimal(field(kReceipts), 2);
    auto discount = money::ParseDecimal(field(kDiscount), 2);
    auto fee = money::ParseDecimal(field(kFee), 2);
    if (!amount || !receipts || !discount || !fee) {
      return Error{fmt::format("line {}: an amount is not a decimal", line_no)};
    }
    auto at = BeijingTime(field(kFinished));
    if (!at) return Error{fmt::format("line {}: bad completion time", line_no)};
    if (record.provider_transaction_id.empty() || record.merchant_reference.empty()) {
      return Error{fmt::format("line {}: row without trade numbers", line_no)};
    }
    record.occurred_at = std::move(*at);
    record.amount_minor = Abs(*amount);
    Stated& sums = record.kind == bill::Record::Kind::kPayment ? rows_trades : rows_refunds;
    sums.count += 1;
    sums.receipts += *receipts;
    sums.discount += *discount;
    record.fee_minor = record.kind == bill::Record::Kind::kPayment ? Abs(*fee) : -Abs(*fee);
    fees += record.fee_minor;
    return true;
  }

  // After the last line: the rows against the footer's totals.
  AlipayResult<bill::Totals> Finish() const {
    if (header.empty()) return Error{"no header row"};
    if (!stated_trades || !stated_refunds) return Error{"totals lines missing"};
    auto check = [](const Stated& rows, const Stated& stated, std::string_view what)
        -> std::optional<std::string> {
      if (rows.count != stated.count || rows.receipts != stated.receipts ||
          rows.discount != stated.discount) {
        return fmt::format(
            "{} rows disagree with the totals line: {} rows {} receipts {} discount, stated {} {} {}",
            what, rows.count, rows.receipts, rows.discount, stated.count, stated.receipts,
            stated.discount);
      }
      return std::nullopt;
    };
    if (auto error = check(rows_trades, *stated_trades, "trade")) return Error{*error};
    if (auto error = check(rows_refunds, *stated_refunds, "refund")) return Error{*error};
    bill::Totals totals;
    totals.fee_amount_minor = fees;
    totals.payment_count = rows_trades.count;
    totals.payment_amount_minor = rows_trades.receipts;
    totals.refund_count = rows_refunds.count;
    totals.refund_amount_minor = -rows_refunds.receipts;
    return totals;
  }
};

}  // namespace

AlipayResult<bill::File> ParseBillCsv(std::string_view utf8) {
  BillCsvLines lines;
  bill::File file;
  for (std::string_view rest = utf8; !rest.empty();) {
    const std::size_t eol = rest.find('\n');
    const std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view{} : rest.substr(eol + 1);
    bill::Record record;
    auto row = lines.Line(line, record);
    if (!row) return row.error();
    if (row.value()) file.records.push_back(std::move(record));
  }
  auto totals = lines.Finish();
  if (!totals) return totals.error();
  file.totals = totals.value();
  return file;
}

// GBK lines converted one at a time: in GBK a line feed byte is always a line feed (trail bytes
// are 0x40 and above), so lines split before conversion and no character straddles two.
struct BillCsvStream::State {
  explicit State(OnRecord f) : on_record(std::move(f)) {}
  ~State() {
    if (cd != reinterpret_cast<iconv_t>(-1)) iconv_close(cd);
  }
  OnRecord on_record;
  iconv_t cd = iconv_open("UTF-8", "GBK");
  BillCsvLines lines;
  std::string partial;  // GBK bytes of a line not ended yet
  std::string utf8;
  std::uint64_t offset = 0;  // GBK bytes before `partial`
  std::size_t held_max = 0;

  AlipayResult<void> Line(std::string_view gbk) {
    if (cd == reinterpret_cast<iconv_t>(-1)) return Error{"iconv GBK -> UTF-8 unavailable"};
    utf8.resize(gbk.size() * 2 + 16);
    char* in_ptr = const_cast<char*>(gbk.data());  // iconv does not write through it
    std::size_t in_left = gbk.size();
    char* out_ptr = utf8.data();
    std::size_t out_left = utf8.size();
    iconv(cd, nullptr, nullptr, nullptr, nullptr);  // initial state
    // GBK is at most two bytes a character and UTF-8 at most three: the output always fits.
    if (iconv(cd, &in_ptr, &in_left, &out_ptr, &out_left) == static_cast<std::size_t>(-1)) {
      return Error{fmt::format("not GBK at byte {}", offset + (gbk.size() - in_left))};
    }
    utf8.resize(utf8.size() - out_left);
    bill::Record record;
    auto row = lines.Line(utf8, record);
    if (!row) return row.error();
    if (row.value()) return on_record(std::move(record));
    return outcome::success();
  }
};

BillCsvStream::BillCsvStream(OnRecord on_record)
    : state_(std::make_unique<State>(std::move(on_record))) {}
BillCsvStream::~BillCsvStream() = default;

AlipayResult<void> BillCsvStream::Feed(std::string_view gbk) {
  State& s = *state_;
  while (!gbk.empty()) {
    const std::size_t eol = gbk.find('\n');
    if (eol == std::string_view::npos) {
      s.partial.append(gbk);
      s.held_max = std::max(s.held_max, s.partial.size());
      if (s.partial.size() > kLineMax) {
        return Error{fmt::format("line {}: longer than {} bytes", s.lines.line_no + 1, kLineMax)};
      }
      break;
    }
    std::string_view line = gbk.substr(0, eol);
    if (!s.partial.empty()) {
      s.partial.append(line);
      line = s.partial;
    }
    auto done = s.Line(line);
    if (!done) return done.error();
    s.offset += line.size() + 1;
    s.partial.clear();
    gbk.remove_prefix(eol + 1);
  }
  return outcome::success();
}

AlipayResult<bill::Totals> BillCsvStream::Finish() {
  State& s = *state_;
  if (!s.partial.empty()) {
    auto done = s.Line(s.partial);
    if (!done) return done.error();
    s.partial.clear();
  }
  return s.lines.Finish();
}

std::size_t BillCsvStream::held_bytes_max() const { return state_->held_max; }

AlipayResult<bill::File> ParseBillCsvGbk(std::string_view gbk) {
  auto utf8 = GbkToUtf8(gbk);
  if (!utf8) return utf8.error();
  return ParseBillCsv(utf8.value());
}

bool IsDetailCsvName(std::string_view raw_name) {
  // Entry names are GBK bytes, as Alipay writes them.
  auto name = GbkToUtf8(raw_name);
  if (!name) return false;
  const std::string& n = name.value();
  constexpr std::string_view kDetail = "_业务明细.csv";
  return n.size() >= kDetail.size() &&
         n.compare(n.size() - kDetail.size(), kDetail.size(), kDetail) == 0;
}

AlipayResult<std::string> DetailCsvOfBill(std::string_view download, std::size_t size_max) {
  if (download.rfind("PK\x03\x04", 0) != 0) return std::string(download);
  auto entries = archive::ReadZip(download, size_max);
  if (!entries) return Error{"bill archive: " + entries.error().message};
  std::optional<std::string> detail;
  for (auto& entry : entries.value()) {
    if (!IsDetailCsvName(entry.name)) continue;
    if (detail) return Error{"bill archive holds two detail files"};
    detail = std::move(entry.data);
  }
  if (!detail) return Error{"bill archive holds no 业务明细 detail file"};
  return std::move(*detail);
}

}  // namespace paygate::adapters::alipay
