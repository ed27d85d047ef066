#pragma once

// A WeChat Pay trade bill's payment line as the tests and benchmarks write their bills
// (adapters/wechatpay/bill.h FormatTradeBill): a NATIVE payment of one test payer for a premium,
// with the 0.60% fee rate, at `time` ("YYYY-MM-DD HH:MM:SS", China time).
#include <cstdint>
#include <string>
#include <utility>

#include "adapters/wechatpay/bill.h"

namespace paygate::testing {

inline adapters::wechatpay::TradeBillRow NativePaymentLine(
    std::string time, std::string transaction_id, std::string out_trade_no, std::int64_t amount_fen,
    std::int64_t fee_fen, std::string mchid = "1900000109") {
  adapters::wechatpay::TradeBillRow row;
  row.time = std::move(time);
  row.appid = "wxd678efh567hg6787";
  row.mchid = std::move(mchid);
  row.transaction_id = std::move(transaction_id);
  row.out_trade_no = std::move(out_trade_no);
  row.openid = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";
  row.trade_type = "NATIVE";
  row.trade_state = "SUCCESS";
  row.total_fen = amount_fen;
  row.description = "premium";
  row.fee_fen = fee_fen;
  row.fee_rate = "0.60%";
  return row;
}

}  // namespace paygate::testing
