// The UnionPay reconciliation reader: INN records (layout UNVERIFIED, see adapters/unionpay/bill.h)
// written by the same formatter the simulator uses, with and without separators, inside the
// Base64(zlib(zip)) wrapping of fileTransReq; malformed files and amounts are refused.
#include <gtest/gtest.h>

#include "adapters/common/archive.h"
#include "adapters/common/codec.h"
#include "adapters/unionpay/bill.h"

namespace paygate::adapters::unionpay {

namespace ar = adapters::archive;
namespace {

InnRow Payment(const std::string& order_id, const std::string& query_id, const std::string& amount,
               const std::string& fee) {
  return {{"tradeNo", "S22"},
          {"acqInsCode", "48020000"},
          {"traceNo", "123456"},
          {"txnTime", "1126093015"},
          {"payCardNo", "6216****0001"},
          {"txnAmt", amount},
          {"queryId", query_id},
          {"orderId", order_id},
          {"merCharge", fee},
          {"settleAmt", amount},
          {"txnType", "01"},
          {"txnSubType", "01"},
          {"bizType", "000201"},
          {"merId", "777290058165621"}};
}

InnRow Refund(const std::string& order_id, const std::string& query_id,
              const std::string& orig_query_id, const std::string& amount) {
  return {{"tradeNo", "S30"},           {"traceNo", "123457"},
          {"txnTime", "1126101500"},    {"txnAmt", amount},
          {"queryId", query_id},        {"orderId", order_id},
          {"merCharge", "C2"},          {"txnType", "04"},
          {"txnSubType", "00"},         {"bizType", "000201"},
          {"origQryId", orig_query_id}, {"merId", "777290058165621"}};
}

std::string File(const std::vector<InnRow>& rows, bool separators) {
  std::string out;
  for (const auto& row : rows) {
    auto line = FormatInnRecord(row, separators);
    EXPECT_TRUE(line);
    out += line.value_or("") + "\r\n";
  }
  return out;
}

TEST(UnionPayBill, LayoutIs41FieldsOf567Bytes) {
  EXPECT_EQ(InnLayout().size(), 41u);
  EXPECT_EQ(InnRecordWidth(), 567u);
  auto line = FormatInnRecord(Payment("payZabcdefghZ1", "Q1", "100", "D1"), false);
  ASSERT_TRUE(line);
  EXPECT_EQ(line.value().size(), 567u);
  EXPECT_EQ(line.value().substr(0, 3), "S22");
  // txnAmt: 12 digits of fen, right-aligned (3+11+11+6+10+19 = 60 bytes before it).
  EXPECT_EQ(line.value().substr(60, 12), "000000000100");
  EXPECT_EQ(FormatInnRecord(Payment("payZabcdefghZ1", "Q1", "100", "D1"), true).value().size(),
            607u);
}

TEST(UnionPayBill, ParsesRecordsAndTotalsWithAndWithoutSeparators) {
  for (bool separators : {false, true}) {
    const std::string inn = File(
        {Payment("payZabcdefghZ1", "Q1", "1234", "D12"), Payment("payZijklmnopZ1", "Q2", "66", ""),
         Refund("reZabcdefghijk", "R1", "Q1", "234")},
        separators);
    auto parsed = ParseInn(inn, "20261126");
    ASSERT_TRUE(parsed) << parsed.error();
    const bill::File& file = parsed.value();
    ASSERT_EQ(file.records.size(), 3u);
    const bill::Record& first = file.records[0];
    EXPECT_EQ(first.kind, bill::Record::Kind::kPayment);
    EXPECT_EQ(first.provider, "unionpay");
    EXPECT_EQ(first.merchant_id, "777290058165621");
    EXPECT_EQ(first.provider_transaction_id, "Q1");
    EXPECT_EQ(first.merchant_reference, "pay_abcdefgh_1");
    EXPECT_EQ(first.amount_minor, 1234);
    EXPECT_EQ(first.fee_minor, 12);
    EXPECT_EQ(first.currency, "CNY");
    EXPECT_EQ(first.occurred_at, "2026-11-26T09:30:15+08:00");
    const bill::Record& refund = file.records[2];
    EXPECT_EQ(refund.kind, bill::Record::Kind::kRefund);
    EXPECT_EQ(refund.refund_reference, "re_abcdefghijk");
    EXPECT_EQ(refund.provider_refund_id, "R1");
    EXPECT_EQ(refund.provider_transaction_id, "Q1");
    EXPECT_EQ(refund.amount_minor, 234);
    EXPECT_EQ(refund.fee_minor, -2);
    EXPECT_EQ(file.totals.payment_count, 2);
    EXPECT_EQ(file.totals.payment_amount_minor, 1300);
    EXPECT_EQ(file.totals.refund_count, 1);
    EXPECT_EQ(file.totals.refund_amount_minor, 234);
    EXPECT_EQ(file.totals.fee_amount_minor, 10);
  }
}

TEST(UnionPayBill, YearRollsBackForDecemberRowsSettledInJanuary) {
  InnRow row = Payment("payZabcdefghZ1", "Q1", "1", "");
  for (auto& [name, value] : row) {
    if (name == "txnTime") value = "1231235959";
  }
  auto parsed = ParseInn(File({row}, false), "20270101");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed.value().records[0].occurred_at, "2026-12-31T23:59:59+08:00");
}

TEST(UnionPayBill, RefusesMalformedFiles) {
  const std::string good = FormatInnRecord(Payment("payZabcdefghZ1", "Q1", "1", ""), false).value();
  // A line of another length: the layout assumption does not hold.
  EXPECT_FALSE(ParseInn(good.substr(1), "20261126"));
  EXPECT_FALSE(ParseInn(good + " ", "20261126"));
  // Separated layout with a non-space where a separator belongs.
  std::string separated = FormatInnRecord(Payment("payZabcdefghZ1", "Q1", "1", ""), true).value();
  separated[3] = 'X';
  EXPECT_FALSE(ParseInn(separated, "20261126"));
  // Amounts: not digits, zero, a decimal point.
  for (const char* amount : {"12.3", "0", "-5", "1x"}) {
    InnRow row = Payment("payZabcdefghZ1", "Q1", "1", "");
    for (auto& [name, value] : row) {
      if (name == "txnAmt") value = amount;
    }
    std::string line = FormatInnRecord(row, false).value();
    EXPECT_FALSE(ParseInn(line, "20261126")) << amount;
  }
  // A fee that is not an amount.
  EXPECT_FALSE(ParseInn(
      FormatInnRecord(Payment("payZabcdefghZ1", "Q1", "1", "D1.5"), false).value(), "20261126"));
  // An unknown transaction type.
  InnRow preauth = Payment("payZabcdefghZ1", "Q1", "1", "");
  for (auto& [name, value] : preauth) {
    if (name == "txnType") value = "02";
  }
  EXPECT_FALSE(ParseInn(FormatInnRecord(preauth, false).value(), "20261126"));
  // A bad settle date; an impossible txnTime.
  EXPECT_FALSE(ParseInn(good, "2026112"));
  InnRow bad_time = Payment("payZabcdefghZ1", "Q1", "1", "");
  for (auto& [name, value] : bad_time) {
    if (name == "txnTime") value = "1332093015";
  }
  EXPECT_FALSE(ParseInn(FormatInnRecord(bad_time, false).value(), "20261126"));
  // Too long a value cannot be formatted; an unknown field neither.
  EXPECT_FALSE(FormatInnRecord({{"tradeNo", "S222"}}, false));
  EXPECT_FALSE(FormatInnRecord({{"nope", "1"}}, false));
}

TEST(UnionPayBill, OpensTheFileTransferWrapping) {
  const std::string inn = File({Payment("payZabcdefghZ1", "Q1", "500", "D3")}, true);
  const std::string archive =
      ar::WriteZip({{"RD1126_700000000000001", "other file"}, {"INN261126_700000000000001", inn}}).value();
  // Base64(zlib(zip)), as UnionPay's SDK reads it.
  auto opened = OpenFileContent(codec::Base64Encode(ar::ZlibDeflate(archive)), "20261126");
  ASSERT_TRUE(opened) << opened.error();
  EXPECT_EQ(opened.value().archive, archive);
  EXPECT_EQ(opened.value().inn_name, "INN261126_700000000000001");
  EXPECT_EQ(opened.value().inn, inn);
  EXPECT_EQ(opened.value().file.totals.payment_amount_minor, 500);
  // A bare zip is accepted too.
  EXPECT_TRUE(OpenFileContent(codec::Base64Encode(archive), "20261126"));
  // Corruption anywhere is refused.
  std::string corrupt = archive;
  corrupt[corrupt.size() / 3] ^= 0x01;
  EXPECT_FALSE(OpenFileContent(codec::Base64Encode(corrupt), "20261126"));
  EXPECT_FALSE(OpenFileContent("not base64!", "20261126"));
  EXPECT_FALSE(OpenFileContent(codec::Base64Encode(ar::WriteZip({{"RD", "x"}}).value()), "20261126"));
  const std::string compressed = ar::ZlibDeflate(archive);
  EXPECT_FALSE(OpenFileContent(codec::Base64Encode(compressed.substr(0, compressed.size() / 2)),
                               "20261126"));
}

TEST(UnionPayBill, SettleDateFromTheInnFileName) {
  EXPECT_EQ(InnSettleDate("INN26112688ZM_777290058165621"), "20261126");
  EXPECT_EQ(InnSettleDate("dir/INN26010188ZM_1"), "20260101");
  EXPECT_FALSE(InnSettleDate("RD26112688ZM_1"));
  EXPECT_FALSE(InnSettleDate("INN261326"));
  EXPECT_FALSE(InnSettleDate("INN2611"));
  EXPECT_FALSE(InnSettleDate("INN26x12688"));
}

}  // namespace
// The streaming reader, fed in pieces of every size, yields the whole-file parser's records and
// totals, and refuses what it refuses.
TEST(UnionPayBill, StreamingInPiecesReadsTheSameAsWhole) {
  const std::string inn = File(
      {Payment("payZabcdefghZ1", "Q1", "1234", "D12"), Payment("payZijklmnopZ1", "Q2", "66", ""),
       Refund("reZabcdefghijk", "R1", "Q1", "234")},
      true);
  auto whole = ParseInn(inn, "20261126");
  ASSERT_TRUE(whole) << whole.error();
  for (std::size_t piece : {std::size_t{1}, std::size_t{13}, std::size_t{600}, inn.size()}) {
    std::vector<bill::Record> records;
    InnStream stream("20261126", [&](bill::Record&& r) -> Result<void, std::string> {
      records.push_back(std::move(r));
      return outcome::success();
    });
    for (std::size_t at = 0; at < inn.size(); at += piece) {
      auto fed = stream.Feed(std::string_view(inn).substr(at, piece));
      ASSERT_TRUE(fed) << fed.error();
    }
    auto totals = stream.Finish();
    ASSERT_TRUE(totals) << totals.error();
    ASSERT_EQ(records.size(), 3u);
    for (std::size_t i = 0; i < records.size(); ++i) {
      EXPECT_EQ(records[i].merchant_reference, whole.value().records[i].merchant_reference);
      EXPECT_EQ(records[i].refund_reference, whole.value().records[i].refund_reference);
      EXPECT_EQ(records[i].amount_minor, whole.value().records[i].amount_minor);
      EXPECT_EQ(records[i].fee_minor, whole.value().records[i].fee_minor);
      EXPECT_EQ(records[i].occurred_at, whole.value().records[i].occurred_at);
    }
    EXPECT_EQ(totals.value().payment_amount_minor, whole.value().totals.payment_amount_minor);
    EXPECT_EQ(totals.value().fee_amount_minor, whole.value().totals.fee_amount_minor);
    EXPECT_LE(stream.held_bytes_max(), 608u);  // one line and its CR
  }
  InnStream bad_date("2026-11-26", [](bill::Record&&) -> Result<void, std::string> {
    return outcome::success();
  });
  EXPECT_FALSE(bad_date.Feed(inn));
  InnStream short_line("20261126", [](bill::Record&&) -> Result<void, std::string> {
    return outcome::success();
  });
  ASSERT_TRUE(short_line.Feed("too short"));
  EXPECT_FALSE(short_line.Finish());
}

}  // namespace paygate::adapters::unionpay
