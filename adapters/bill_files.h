#pragma once

// A provider's bill file, as downloaded or as finance saved it, read into normalised records
// (adapters/common/bill.h) by that provider's real-format parser: WeChat Pay trade bills (plain or
// gzip), Alipay's zip of GBK CSVs (or its bare detail CSV), UnionPay's INN reconciliation file (or
// the zip holding it). Every parser checks the file's own totals against its rows where the format
// has them. Used by `paygatectl recon parse` and by reconciliation's import.
#include <cstddef>
#include <string>
#include <string_view>

#include "adapters/common/bill.h"
#include "config/result.h"

namespace paygate::adapters {

// `provider` is "wechatpay", "alipay" or "unionpay"; `file_name` is the file's name (UnionPay's
// INN name carries the settle date its rows need); `size_max` bounds decompressed bytes.
Result<bill::File, std::string> ParseBillFile(std::string_view provider,
                                              std::string_view file_name, std::string_view bytes,
                                              std::size_t size_max = 256u << 20);

}  // namespace paygate::adapters
