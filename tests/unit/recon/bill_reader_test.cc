// The record-at-a-time trade bill reader gives exactly what the whole-file parser gives, however
// the file is split into chunks (lines split across chunks, CRLF split between chunks), and
// refuses what the whole-file parser refuses.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "adapters/wechatpay/bill.h"

namespace paygate::adapters::wechatpay {
namespace {

std::string Bill() {
  std::vector<TradeBillRow> rows;
  for (int i = 0; i < 50; ++i) {
    TradeBillRow row;
    row.time = "2026-03-10 10:00:0" + std::to_string(i % 10);
    row.appid = "wxd678efh567hg6787";
    row.mchid = "1900000109";
    row.transaction_id = "42000000" + std::to_string(1000 + i);
    row.out_trade_no = "pay_" + std::to_string(1000 + i) + "_1";
    row.trade_type = "NATIVE";
    row.trade_state = i % 7 == 0 ? "REFUND" : "SUCCESS";
    row.total_fen = 100 + i;
    row.refund_fen = i % 7 == 0 ? 50 : 0;
    row.refund_id = "5030" + std::to_string(i);
    row.out_refund_no = "re_" + std::to_string(i);
    row.refund_status = "SUCCESS";
    row.fee_fen = i % 3;
    rows.push_back(row);
  }
  return FormatTradeBill(rows);
}

TEST(TradeBillReaderTest, AnyChunkingGivesTheWholeFileResult) {
  const std::string bill = Bill();
  auto whole = ParseTradeBill(bill);
  ASSERT_TRUE(whole) << whole.error().message;
  for (std::size_t chunk : {1u, 2u, 7u, 64u, 100000u}) {
    std::vector<bill::Record> records;
    TradeBillReader reader([&](bill::Record&& r) -> WxResult<void> {
      records.push_back(std::move(r));
      return outcome::success();
    });
    for (std::size_t at = 0; at < bill.size(); at += chunk) {
      ASSERT_TRUE(reader.Feed(std::string_view(bill).substr(at, chunk))) << chunk;
    }
    auto totals = reader.Finish();
    ASSERT_TRUE(totals) << totals.error().message;
    ASSERT_EQ(records.size(), whole.value().records.size());
    for (std::size_t i = 0; i < records.size(); ++i) {
      EXPECT_EQ(records[i].merchant_reference, whole.value().records[i].merchant_reference);
      EXPECT_EQ(records[i].amount_minor, whole.value().records[i].amount_minor);
      EXPECT_EQ(records[i].fee_minor, whole.value().records[i].fee_minor);
      EXPECT_EQ(records[i].kind, whole.value().records[i].kind);
    }
    EXPECT_EQ(totals.value().payment_amount_minor, whole.value().totals.payment_amount_minor);
    EXPECT_EQ(totals.value().fee_amount_minor, whole.value().totals.fee_amount_minor);
  }
}

TEST(TradeBillReaderTest, RefusesWhatTheParserRefuses) {
  std::string bill = Bill();
  bill.resize(bill.size() - 20);  // the summary row cut short
  EXPECT_FALSE(ParseTradeBill(bill));
  TradeBillReader reader([](bill::Record&&) -> WxResult<void> { return outcome::success(); });
  auto fed = reader.Feed(bill);
  EXPECT_TRUE(!fed || !reader.Finish());
  // A callback's error stops the reader.
  TradeBillReader stopping([](bill::Record&&) -> WxResult<void> { return Fail("stop"); });
  EXPECT_FALSE(stopping.Feed(Bill()));
}

}  // namespace
}  // namespace paygate::adapters::wechatpay
