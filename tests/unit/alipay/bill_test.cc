// Alipay's trade bill (业务明细) from its real GBK bytes: the sample parses to totals equal to its
// footer, and a file whose footer disagrees, or with an amount that is not an exact decimal, or a
// row we cannot classify, is refused rather than half-read.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "adapters/alipay/bill.h"
#include "adapters/common/archive.h"
#include "tests/unit/alipay/test_util.h"

namespace paygate::adapters::alipay {
namespace {

using namespace testing;  // NOLINT: the Alipay vector helpers.

const char* const kGbk = "bill/2088xxx_20190916_业务明细.gbk.csv";
const char* const kUtf8 = "bill/2088xxx_20190916_业务明细.utf8.csv";

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  if (at == std::string::npos) throw std::runtime_error("sample lacks " + from);
  return text.replace(at, from.size(), to);
}

TEST(AlipayBill, SampleParsesWithTotalsEqualToItsFooter) {
  auto file = ParseBillCsvGbk(ReadVector(kGbk));
  ASSERT_TRUE(file) << file.error().message;
  const bill::File& f = file.value();
  ASSERT_EQ(f.records.size(), 10u);
  EXPECT_EQ(f.totals.payment_count, 6);
  EXPECT_EQ(f.totals.payment_amount_minor, 6);
  EXPECT_EQ(f.totals.refund_count, 4);
  EXPECT_EQ(f.totals.refund_amount_minor, 4);
  EXPECT_EQ(f.totals.fee_amount_minor, 0);

  const bill::Record& first = f.records[0];
  EXPECT_EQ(first.kind, bill::Record::Kind::kPayment);
  EXPECT_EQ(first.provider, "alipay");
  EXPECT_EQ(first.merchant_id, "2088021109625633");
  // The Excel-guard TAB is gone.
  EXPECT_EQ(first.provider_transaction_id, "2019091622001458860515315453");
  EXPECT_EQ(first.merchant_reference, "service_1568601259302");
  EXPECT_EQ(first.amount_minor, 1);
  EXPECT_EQ(first.currency, "CNY");
  EXPECT_EQ(first.occurred_at, "2019-09-16T10:55:23+08:00");
  EXPECT_EQ(first.status, "交易");

  const bill::Record& refund = f.records[1];
  EXPECT_EQ(refund.kind, bill::Record::Kind::kRefund);
  EXPECT_EQ(refund.merchant_reference, "service_1568601259302");
  EXPECT_EQ(refund.refund_reference, "re_test_1568602607356");
  // Written -0.01 in the file; positive here, the kind carries the direction.
  EXPECT_EQ(refund.amount_minor, 1);
  EXPECT_EQ(refund.occurred_at, "2019-09-16T10:56:48+08:00");

  // The row with an empty store and Chinese subject.
  EXPECT_EQ(f.records[8].merchant_reference, "20190916165659224L3VUQRL9");
}

TEST(AlipayBill, GbkAndUtf8AndCrlfReadTheSame) {
  auto gbk = ParseBillCsvGbk(ReadVector(kGbk));
  const std::string utf8 = ReadVector(kUtf8);
  auto plain = ParseBillCsv(utf8);
  std::string crlf;
  for (char c : utf8) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  auto windows = ParseBillCsv(crlf);
  ASSERT_TRUE(gbk && plain && windows);
  ASSERT_EQ(gbk.value().records.size(), plain.value().records.size());
  ASSERT_EQ(windows.value().records.size(), plain.value().records.size());
  for (std::size_t i = 0; i < plain.value().records.size(); ++i) {
    EXPECT_EQ(gbk.value().records[i].merchant_reference, plain.value().records[i].merchant_reference);
    EXPECT_EQ(windows.value().records[i].occurred_at, plain.value().records[i].occurred_at);
    EXPECT_EQ(windows.value().records[i].refund_reference, plain.value().records[i].refund_reference);
  }
}

TEST(AlipayBill, FooterDisagreementIsRefused) {
  const std::string utf8 = ReadVector(kUtf8);
  EXPECT_FALSE(ParseBillCsv(Replace(utf8, "#交易合计：6笔", "#交易合计：7笔")));
  EXPECT_FALSE(ParseBillCsv(Replace(utf8, "商家实收共0.06元", "商家实收共0.07元")));
  EXPECT_FALSE(ParseBillCsv(Replace(utf8, "商家实收退款共-0.04元", "商家实收退款共-0.03元")));
  EXPECT_FALSE(ParseBillCsv(Replace(utf8, "商家优惠共0.00元", "商家优惠共0.01元")));
  // A changed row amount is caught by the same check.
  EXPECT_FALSE(ParseBillCsv(Replace(utf8, "0.01,0.01,0.00", "0.01,0.02,0.00")));
  // No footer at all: nothing to check against.
  const std::size_t footer = utf8.find("#交易合计");
  EXPECT_FALSE(ParseBillCsv(utf8.substr(0, footer)));
  // The GBK file with a changed footer, byte for byte in GBK.
  auto gbk = Utf8ToGbk(Replace(utf8, "#退款合计：4笔", "#退款合计：5笔"));
  ASSERT_TRUE(gbk);
  EXPECT_FALSE(ParseBillCsvGbk(gbk.value()));
}

TEST(AlipayBill, BadDecimalsAndRowsAreRefused) {
  const std::string utf8 = ReadVector(kUtf8);
  const std::string row_amounts = "*津水(602***@qq.com)\t,0.01,0.01,";
  for (const std::string bad : {"1e-2", "0.011", "0,01", "", "0.0.1", " 0.01", "０.01"}) {
    EXPECT_FALSE(ParseBillCsv(Replace(utf8, row_amounts, "*津水(602***@qq.com)\t," + bad + ",0.01,")))
        << bad;
  }
  // A business type we cannot classify must not vanish from reconciliation.
  EXPECT_FALSE(ParseBillCsv(Replace(utf8, ",交易\t,", ",冻结\t,")));
  // A comma inside a field shifts the columns: refused, not read askew.
  EXPECT_FALSE(ParseBillCsv(Replace(utf8, ",下单测试,", ",下单,测试,")));
  // Not a date.
  EXPECT_FALSE(ParseBillCsv(Replace(utf8, "2019-09-16 10:55:23", "2019/09/16 10:55:23")));
  // Bytes that are not GBK.
  EXPECT_FALSE(ParseBillCsvGbk(std::string("\x81\x20 not gbk", 10)));
}

TEST(AlipayBill, GbkRoundTrip) {
  const std::string utf8 = ReadVector(kUtf8);
  auto gbk = Utf8ToGbk(utf8);
  ASSERT_TRUE(gbk);
  EXPECT_EQ(gbk.value(), ReadVector(kGbk));
  auto back = GbkToUtf8(gbk.value());
  ASSERT_TRUE(back);
  EXPECT_EQ(back.value(), utf8);
}

TEST(AlipayBill, DetailCsvComesOutOfTheZipAlipayServes) {
  // Alipay's download is a zip of GBK CSVs with GBK names: the detail file is found by its name
  // next to the summary, and parses to the sample's totals.
  const std::string detail = ReadVector(kGbk);
  const auto detail_name = Utf8ToGbk("2088xxx_20190916_业务明细.csv").value();
  const auto summary_name = Utf8ToGbk("2088xxx_20190916_业务明细(汇总).csv").value();
  const auto summary = Utf8ToGbk("#支付宝业务汇总查询\n").value();
  const auto zipped = archive::WriteZip({{summary_name, summary}, {detail_name, detail}}).value();
  auto extracted = DetailCsvOfBill(zipped, 1 << 20);
  ASSERT_TRUE(extracted) << extracted.error().message;
  EXPECT_EQ(extracted.value(), detail);
  auto parsed = ParseBillCsvGbk(extracted.value());
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed.value().totals.payment_count, 6);
  EXPECT_FALSE(DetailCsvOfBill(zipped, 100));  // beyond the bound
  EXPECT_FALSE(DetailCsvOfBill(archive::WriteZip({{summary_name, summary}}).value(), 1 << 20));
  EXPECT_FALSE(DetailCsvOfBill(
      archive::WriteZip({{detail_name, detail}, {"x" + detail_name, detail}}).value(), 1 << 20));
  EXPECT_FALSE(DetailCsvOfBill(zipped.substr(0, zipped.size() / 2), 1 << 20));
}

}  // namespace
// The streaming reader, fed the GBK file in pieces of every size from one byte (splitting lines
// and two-byte characters anywhere), yields exactly the records and totals of the whole-file
// parser, holding no more than one line between pieces.
TEST(AlipayBill, StreamingInPiecesReadsTheSameAsWhole) {
  const std::string gbk = ReadVector(kGbk);
  auto whole = ParseBillCsvGbk(gbk);
  ASSERT_TRUE(whole) << whole.error().message;
  for (std::size_t piece : {std::size_t{1}, std::size_t{2}, std::size_t{7}, std::size_t{100},
                            gbk.size()}) {
    std::vector<bill::Record> records;
    BillCsvStream stream([&](bill::Record&& r) -> AlipayResult<void> {
      records.push_back(std::move(r));
      return outcome::success();
    });
    for (std::size_t at = 0; at < gbk.size(); at += piece) {
      auto fed = stream.Feed(std::string_view(gbk).substr(at, piece));
      ASSERT_TRUE(fed) << fed.error().message;
    }
    auto totals = stream.Finish();
    ASSERT_TRUE(totals) << totals.error().message;
    ASSERT_EQ(records.size(), whole.value().records.size()) << piece;
    for (std::size_t i = 0; i < records.size(); ++i) {
      const bill::Record& a = records[i];
      const bill::Record& b = whole.value().records[i];
      EXPECT_EQ(a.merchant_reference, b.merchant_reference);
      EXPECT_EQ(a.provider_transaction_id, b.provider_transaction_id);
      EXPECT_EQ(a.refund_reference, b.refund_reference);
      EXPECT_EQ(a.amount_minor, b.amount_minor);
      EXPECT_EQ(a.occurred_at, b.occurred_at);
      EXPECT_EQ(a.status, b.status);
      EXPECT_EQ(a.merchant_id, b.merchant_id);
    }
    EXPECT_EQ(totals.value().payment_count, whole.value().totals.payment_count);
    EXPECT_EQ(totals.value().refund_amount_minor, whole.value().totals.refund_amount_minor);
    // The longest line of the sample is under 400 bytes.
    EXPECT_LT(stream.held_bytes_max(), 400u);
  }
}

// A streamed file is refused as the whole one is: a footer that disagrees, bytes that are not
// GBK, a line without end beyond the bound; and an error from the consumer stops the read.
TEST(AlipayBill, StreamingRefusesWhatTheWholeParserRefuses) {
  auto run = [](std::string_view gbk, bool consumer_fails = false) {
    BillCsvStream stream([&](bill::Record&&) -> AlipayResult<void> {
      if (consumer_fails) return Error{"consumer says no"};
      return outcome::success();
    });
    auto fed = stream.Feed(gbk);
    if (!fed) return fed.error().message;
    auto totals = stream.Finish();
    return totals ? std::string() : totals.error().message;
  };
  const std::string gbk = ReadVector(kGbk);
  EXPECT_EQ(run(gbk), "");
  const std::string utf8 = ReadVector(kUtf8);
  auto bad_footer = Utf8ToGbk(Replace(utf8, "#交易合计：6笔", "#交易合计：7笔"));
  ASSERT_TRUE(bad_footer);
  EXPECT_THAT(run(bad_footer.value()), ::testing::HasSubstr("disagree"));
  EXPECT_THAT(run(gbk + "\xff\xff\n"), ::testing::HasSubstr("not GBK"));
  EXPECT_THAT(run(std::string(BillCsvStream::kLineMax + 1, 'x')), ::testing::HasSubstr("longer than"));
  EXPECT_EQ(run(gbk, true), "consumer says no");
}

}  // namespace paygate::adapters::alipay
