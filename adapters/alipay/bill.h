#pragma once

// Alipay's trade bill (业务明细, PROTOCOLS.md §B.6) to normalised records for reconciliation.
//
// alipay.data.dataservice.bill.downloadurl.query hands out a URL of a zip holding GBK CSV files:
// "<pid>_<yyyyMMdd>_业务明细.csv" (the rows) and "..._业务明细(汇总).csv" (per-store totals). This
// parser reads the detail CSV. Its layout: "#" lines before the rows (title, account
// "[<16-digit PID><4-digit suffix>]", period), a header row naming 25 columns, the rows, then "#"
// footer lines carrying the totals the file states about itself:
//   #交易合计：6笔，商家实收共0.06元，商家优惠共0.00元
//   #退款合计：4笔，商家实收退款共-0.04元，商家优惠退款共0.00元
// ID-like fields end in a TAB (Excel guard), trimmed here. Amounts are yuan decimals, parsed
// exactly. The recomputed counts and 商家实收 (merchant receipts) and 商家优惠 (merchant discount)
// sums must equal the footer, or the file is refused.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "adapters/alipay/signing.h"
#include "adapters/common/bill.h"
#include "config/result.h"

namespace paygate::adapters::alipay {

// GBK bytes to UTF-8 (iconv). An error on bytes that are not GBK.
AlipayResult<std::string> GbkToUtf8(std::string_view gbk);
// UTF-8 to GBK, for the simulator's files. An error on characters GBK cannot hold.
AlipayResult<std::string> Utf8ToGbk(std::string_view utf8);

// Parses a detail CSV already converted to UTF-8. LF and CRLF line ends are both accepted.
//
// Records: 业务类型 交易 -> kPayment, 退款 -> kRefund (any other type refuses the file: a line we
// cannot classify must not vanish from reconciliation). amount_minor = |订单金额| (what the payer
// paid, or what was refunded: the amounts our attempts carry); fee_minor = |服务费| for payments and
// -|服务费| for refunds (a refund returns its share of the fee); refund_reference = 退款批次号/请求号
// (our out_request_no); occurred_at = 完成时间 in +08:00; status = the 业务类型 word.
// Totals: counts per kind and the 商家实收 sums (refunds positive), as the footer states them;
// fee_amount_minor = the sum of fee_minor.
AlipayResult<bill::File> ParseBillCsv(std::string_view utf8);

// The same, streaming: the GBK detail CSV fed in pieces of any size, each row handed to
// `on_record` as its line ends (an error from it stops the read and is returned). Holds one line
// at a time, whatever the file's size; a line longer than kLineMax refuses the file.
class BillCsvStream {
 public:
  using OnRecord = std::function<AlipayResult<void>(bill::Record&&)>;
  static constexpr std::size_t kLineMax = 64 * 1024;

  explicit BillCsvStream(OnRecord on_record);
  ~BillCsvStream();
  BillCsvStream(const BillCsvStream&) = delete;
  BillCsvStream& operator=(const BillCsvStream&) = delete;

  AlipayResult<void> Feed(std::string_view gbk);
  // After the last piece: the totals, checked against the footer as ParseBillCsv does.
  AlipayResult<bill::Totals> Finish();
  // The most bytes of an unfinished line held between pieces (tests: memory stays bounded).
  std::size_t held_bytes_max() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Whether a zip entry's raw (GBK) name is the detail CSV ("..._业务明细.csv", not the summary).
bool IsDetailCsvName(std::string_view raw_name);

// The GBK detail CSV ("..._业务明细.csv") inside the zip Alipay serves a bill as; a plain CSV (not
// a zip) is returned as it is. Fails on a corrupt or oversized archive, or one without exactly one
// detail file.
AlipayResult<std::string> DetailCsvOfBill(std::string_view download, std::size_t size_max);

// GbkToUtf8, then ParseBillCsv.
AlipayResult<bill::File> ParseBillCsvGbk(std::string_view gbk);

}  // namespace paygate::adapters::alipay
