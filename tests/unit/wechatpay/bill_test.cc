// WeChat trade bills: the real sample parses to totals equal to its summary line; a disagreeing
// summary, a bad decimal or a broken line is refused; written bills parse back; gzip and the SHA-1
// check.
#include "adapters/wechatpay/bill.h"

#include <gtest/gtest.h>

#include "tests/unit/wechatpay/vectors.h"

namespace paygate::adapters::wechatpay {
namespace {

using testing::ReadVector;

std::string Sample() { return ReadVector("php/tradebill_ALL_sample.csv"); }

void ReplaceOnce(std::string& text, std::string_view from, std::string_view to) {
  const auto at = text.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  text.replace(at, from.size(), to);
}

TEST(WechatBill, RealSampleParsesWithTotalsEqualToItsSummary) {
  auto file = ParseTradeBill(Sample());
  ASSERT_TRUE(file) << file.error().message;
  const bill::File& f = file.value();
  ASSERT_EQ(f.records.size(), 45u);
  EXPECT_EQ(f.totals.payment_count, 31);
  EXPECT_EQ(f.totals.refund_count, 14);
  // Summary: `45.0,`0.47,`0.14,`0.0,`0.08,`0.47,`0.14
  EXPECT_EQ(f.totals.payment_amount_minor, 47);
  EXPECT_EQ(f.totals.refund_amount_minor, 14);
  EXPECT_EQ(f.totals.fee_amount_minor, 8);

  const bill::Record& refund = f.records[0];
  EXPECT_EQ(refund.kind, bill::Record::Kind::kRefund);
  EXPECT_EQ(refund.provider, "wechatpay");
  EXPECT_EQ(refund.merchant_id, "1921000401");
  EXPECT_EQ(refund.provider_transaction_id, "4200000263201902167700134212");
  EXPECT_EQ(refund.merchant_reference, "autotest_20190216081946_82335");
  EXPECT_EQ(refund.provider_refund_id, "50000709672019011908420787722");
  EXPECT_EQ(refund.refund_reference, "REF4200000263201902167700963919");
  EXPECT_EQ(refund.amount_minor, 1);
  EXPECT_EQ(refund.status, "SUCCESS");
  EXPECT_EQ(refund.occurred_at, "2019-02-19T05:01:46+08:00");
  EXPECT_EQ(refund.currency, "CNY");

  const bill::Record& payment = f.records[2];
  EXPECT_EQ(payment.kind, bill::Record::Kind::kPayment);
  EXPECT_EQ(payment.merchant_reference, "autotest_20190219015232_89201");
  EXPECT_EQ(payment.amount_minor, 3);
  EXPECT_EQ(payment.fee_minor, 1);
  EXPECT_EQ(payment.status, "SUCCESS");
  EXPECT_TRUE(payment.provider_refund_id.empty() || payment.kind == bill::Record::Kind::kPayment);
}

TEST(WechatBill, SampleHashMatchesAndAnyChangeDoesNot) {
  const std::string sample = Sample();
  EXPECT_TRUE(CheckBillHash("SHA1", "9bb6cd819be348f17a9cbcedddc8eb62fefbd790", sample));
  EXPECT_TRUE(CheckBillHash("SHA1", "9BB6CD819BE348F17A9CBCEDDDC8EB62FEFBD790", sample));
  EXPECT_FALSE(CheckBillHash("SHA1", "9bb6cd819be348f17a9cbcedddc8eb62fefbd791", sample));
  EXPECT_FALSE(CheckBillHash("SHA1", "9bb6cd819be348f17a9cbcedddc8eb62fefbd790", sample + "\r\n"));
  EXPECT_FALSE(CheckBillHash("MD5", "9bb6cd819be348f17a9cbcedddc8eb62fefbd790", sample));
}

TEST(WechatBill, SummaryThatDisagreesWithRowsIsRefused) {
  for (auto [from, to] :
       {std::pair{"`45.0,", "`44.0,"}, std::pair{",`0.47,`0.14,", ",`0.48,`0.14,"},
        std::pair{",`0.08,", ",`0.07,"}, std::pair{",`0.47,`0.14\r\n", ",`0.47,`0.15\r\n"}}) {
    std::string text = Sample();
    ReplaceOnce(text, from, to);
    auto file = ParseTradeBill(text);
    EXPECT_FALSE(file) << from;
    if (!file) {
      EXPECT_NE(file.error().message.find("summary"), std::string::npos) << file.error().message;
    }
  }
  // A changed row amount is just as wrong as a changed summary.
  std::string text = Sample();
  ReplaceOnce(text, "`NATIVE,`SUCCESS,`OTHERS,`CNY,`0.03,", "`NATIVE,`SUCCESS,`OTHERS,`CNY,`0.04,");
  EXPECT_FALSE(ParseTradeBill(text));
}

TEST(WechatBill, BadDecimalsAndBrokenLinesAreRefused) {
  for (std::string_view bad : {"`0.031,", "`0.0x,", "`1e2,", "` 0.03,", "`0,03,", "`,"}) {
    std::string text = Sample();
    ReplaceOnce(text, "`NATIVE,`SUCCESS,`OTHERS,`CNY,`0.03,",
                std::string("`NATIVE,`SUCCESS,`OTHERS,`CNY,") + std::string(bad));
    EXPECT_FALSE(ParseTradeBill(text)) << bad;
  }
  std::string no_backtick = Sample();
  ReplaceOnce(no_backtick, ",`wxab8acd895ab1638a,", ",wxab8acd895ab1638a,");
  EXPECT_FALSE(ParseTradeBill(no_backtick));
  std::string no_summary = Sample();
  no_summary.resize(no_summary.find("总交易单数"));
  EXPECT_FALSE(ParseTradeBill(no_summary));
  EXPECT_FALSE(ParseTradeBill(""));
  // Without a BOM and with LF line ends the content still parses.
  std::string plain = Sample().substr(3);
  std::erase(plain, '\r');
  EXPECT_TRUE(ParseTradeBill(plain));
}

TEST(WechatBill, WrittenBillParsesBack) {
  std::vector<TradeBillRow> rows(2);
  rows[0] = {"2026-11-27 08:00:05",
             "wxd678efh567hg6787",
             "1234567891",
             "4200000001",
             "pay_a_1",
             "oUpF8",
             "NATIVE",
             "SUCCESS",
             12800,
             "",
             "",
             0,
             "",
             "保险费",
             77,
             "0.60%"};
  rows[1] = {"2026-11-27 09:00:00",
             "wxd678efh567hg6787",
             "1234567891",
             "4200000001",
             "pay_a_1",
             "oUpF8",
             "NATIVE",
             "REFUND",
             0,
             "50300001",
             "re_1",
             2800,
             "SUCCESS",
             "保险费",
             -17,
             "0.60%"};
  const std::string text = FormatTradeBill(rows);
  EXPECT_EQ(text.substr(0, 3), "\xEF\xBB\xBF");
  auto file = ParseTradeBill(text);
  ASSERT_TRUE(file) << file.error().message;
  EXPECT_EQ(file.value().totals.payment_amount_minor, 12800);
  EXPECT_EQ(file.value().totals.refund_amount_minor, 2800);
  EXPECT_EQ(file.value().totals.fee_amount_minor, 60);
  EXPECT_EQ(file.value().records[1].refund_reference, "re_1");
  EXPECT_EQ(file.value().records[1].fee_minor, -17);
  EXPECT_EQ(file.value().records[0].occurred_at, "2026-11-27T08:00:05+08:00");
}

}  // namespace
}  // namespace paygate::adapters::wechatpay
