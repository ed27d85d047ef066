#pragma once

// The normalised form of one line of a provider's bill file, whatever the provider (DESIGN.md §3,
// reconciliation). Each adapter's bill parser produces these; reconciliation matches them against
// payment attempts and refunds by our reference first, then by the provider's id.
#include <cstdint>
#include <string>
#include <vector>

namespace paygate::adapters::bill {

struct Record {
  enum class Kind { kPayment, kRefund };
  Kind kind = Kind::kPayment;
  std::string provider;                // "wechatpay", "alipay", "unionpay"
  std::string merchant_id;             // the provider's merchant number (mchid, PID, merId)
  std::string provider_transaction_id; // WeChat transaction_id, Alipay trade_no, UnionPay queryId
  std::string merchant_reference;      // our payment attempt reference (out_trade_no / orderId)
  std::string provider_refund_id;      // refunds: the provider's refund id, when it has one
  std::string refund_reference;        // refunds: our refund reference (out_refund_no / out_request_no)
  // Positive minor units: what was paid, or what was refunded (refunds are not negative here even
  // when the file writes them so; `kind` carries the direction).
  std::int64_t amount_minor = 0;
  // The provider's fee on this line in minor units (negative when the provider returns a fee).
  std::int64_t fee_minor = 0;
  std::string currency;                // ISO 4217, "CNY" when the file does not say
  // When the provider booked it, as written in the file, normalised to "YYYY-MM-DDTHH:MM:SS+08:00".
  std::string occurred_at;
  std::string status;                  // the provider's own state word for the line, e.g. "SUCCESS"
};

// Totals a bill file states about itself, next to the totals recomputed from its rows. A parser
// fails when they differ.
struct Totals {
  std::int64_t payment_count = 0;
  std::int64_t payment_amount_minor = 0;
  std::int64_t refund_count = 0;
  std::int64_t refund_amount_minor = 0;
  std::int64_t fee_amount_minor = 0;
};

struct File {
  std::vector<Record> records;
  Totals totals;  // as recomputed from the rows, equal to the file's own summary
};

}  // namespace paygate::adapters::bill
