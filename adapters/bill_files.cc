#include "adapters/bill_files.h"

#include <fmt/format.h>

#include "adapters/alipay/bill.h"
#include "adapters/common/archive.h"
#include "adapters/unionpay/bill.h"
#include "adapters/wechatpay/bill.h"

namespace paygate::adapters {
namespace {

bool StartsWith(std::string_view bytes, std::string_view prefix) {
  return bytes.substr(0, prefix.size()) == prefix;
}

std::string_view BaseName(std::string_view path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

Result<bill::File, std::string> Wechatpay(std::string_view bytes, std::size_t size_max) {
  std::string plain;
  if (StartsWith(bytes, "\x1f\x8b")) {  // the tar_type=GZIP download
    auto inflated = archive::Gunzip(bytes, size_max);
    if (!inflated) return inflated.error().message;
    plain = std::move(inflated).value();
    bytes = plain;
  }
  auto parsed = wechatpay::ParseTradeBill(bytes);
  if (!parsed) return parsed.error().message;
  return std::move(parsed).value();
}

Result<bill::File, std::string> Alipay(std::string_view bytes, std::size_t size_max) {
  auto detail = alipay::DetailCsvOfBill(bytes, size_max);
  if (!detail) return detail.error().message;
  auto parsed = alipay::ParseBillCsvGbk(detail.value());
  if (!parsed) return parsed.error().message;
  return std::move(parsed).value();
}

Result<bill::File, std::string> Unionpay(std::string_view file_name, std::string_view bytes,
                                         std::size_t size_max) {
  std::string name(BaseName(file_name));
  std::string inn;
  if (StartsWith(bytes, "PK\x03\x04")) {
    auto entries = archive::ReadZip(bytes, size_max);
    if (!entries) return entries.error().message;
    for (auto& entry : entries.value()) {
      const std::string entry_name(BaseName(entry.name));
      if (entry_name.rfind("INN", 0) != 0) continue;
      if (!inn.empty()) return std::string("the archive holds two INN files");
      name = entry_name;
      inn = std::move(entry.data);
    }
    if (inn.empty()) return std::string("the archive holds no INN file");
    bytes = inn;
  }
  const auto settle_date = unionpay::InnSettleDate(name);
  if (!settle_date) {
    return fmt::format("\"{}\" is not an INN file name (INN<yyMMdd>88ZM_<merId>): its rows' dates "
                       "need the settle date it carries",
                       name);
  }
  return unionpay::ParseInn(bytes, *settle_date);
}

}  // namespace

Result<bill::File, std::string> ParseBillFile(std::string_view provider,
                                              std::string_view file_name, std::string_view bytes,
                                              std::size_t size_max) {
  if (provider == "wechatpay") return Wechatpay(bytes, size_max);
  if (provider == "alipay") return Alipay(bytes, size_max);
  if (provider == "unionpay") return Unionpay(file_name, bytes, size_max);
  return fmt::format("no bill format for provider \"{}\" (wechatpay, alipay, unionpay)", provider);
}

}  // namespace paygate::adapters
