#pragma once

// A provider's bill file, as downloaded or as finance saved it, read into normalised records
// (adapters/common/bill.h) by that provider's real-format parser: WeChat Pay trade bills (plain or
// gzip), Alipay's zip of GBK CSVs (or its bare detail CSV), UnionPay's INN reconciliation file (or
// the zip holding it). Every parser checks the file's own totals against its rows where the format
// has them. Used by `paygatectl recon parse` and by reconciliation's import.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
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

// A bill file read from an open file in pieces, each record handed over as its line is read:
// Alipay's zip of GBK CSVs (or its bare detail CSV) and UnionPay's INN file (or the zip holding
// it), inflated with libzip a piece at a time. Memory is a read buffer and one line, whatever the
// file's size (reconciliation spools an upload to a temporary file and reads it with this).
// WeChat Pay's plain trade bill streams through its own reader (adapters/wechatpay/bill.h).
class BillFileStream {
 public:
  using OnRecord = std::function<Result<void, std::string>(bill::Record&&)>;
  // Bytes read (inflated) from one file at most: a small archive must not make the import read
  // for hours. Memory does not depend on it.
  static constexpr std::uint64_t kSizeMax = std::uint64_t{4} << 30;

  // `fd` is read from its start with pread (the caller keeps it open while this lives).
  static Result<std::unique_ptr<BillFileStream>, std::string> Open(
      std::string_view provider, std::string_view file_name, int fd, OnRecord on_record,
      std::uint64_t size_max = kSizeMax);
  ~BillFileStream();
  BillFileStream(const BillFileStream&) = delete;
  BillFileStream& operator=(const BillFileStream&) = delete;

  // Reads and parses the next piece; false at the end, when totals() holds the file's totals.
  Result<bool, std::string> Next();
  const bill::Totals& totals() const;
  // The most bytes of an unfinished line held between pieces, on top of the fixed read buffer.
  std::size_t held_bytes_max() const;

 private:
  struct State;
  explicit BillFileStream(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace paygate::adapters
