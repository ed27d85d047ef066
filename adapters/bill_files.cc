#include "adapters/bill_files.h"

#include <unistd.h>

#include <cerrno>
#include <optional>
#include <vector>

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

struct BillFileStream::State {
  static constexpr std::size_t kPiece = 64 * 1024;

  int fd = -1;
  std::uint64_t offset = 0;  // of a plain file
  std::uint64_t size_max = 0;
  std::uint64_t read = 0;
  std::unique_ptr<archive::ZipEntryStream> zip;  // null: a plain file
  std::unique_ptr<alipay::BillCsvStream> alipay;
  std::unique_ptr<unionpay::InnStream> inn;
  std::string error;  // the record callback's, kept across the parsers' own error types
  bill::Totals totals;
  std::vector<char> buffer = std::vector<char>(kPiece);

  Result<std::size_t, std::string> Read() {
    if (zip) {
      auto n = zip->Read(buffer.data(), buffer.size());
      if (!n) return n.error().message;
      return n.value();
    }
    for (;;) {
      const ssize_t n = pread(fd, buffer.data(), buffer.size(), static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fmt::format("reading the bill file: errno {}", errno);
      offset += static_cast<std::uint64_t>(n);
      return static_cast<std::size_t>(n);
    }
  }
};

BillFileStream::BillFileStream(std::unique_ptr<State> state) : state_(std::move(state)) {}
BillFileStream::~BillFileStream() = default;

Result<std::unique_ptr<BillFileStream>, std::string> BillFileStream::Open(
    std::string_view provider, std::string_view file_name, int fd, OnRecord on_record,
    std::uint64_t size_max) {
  if (provider != "alipay" && provider != "unionpay") {
    return fmt::format("no streaming bill reader for provider \"{}\" (alipay, unionpay)", provider);
  }
  auto state = std::make_unique<State>();
  state->fd = fd;
  state->size_max = size_max;
  char magic[4] = {};
  const ssize_t got = pread(fd, magic, sizeof magic, 0);
  if (got < 0) return fmt::format("reading the bill file: errno {}", errno);
  const bool zipped = std::string_view(magic, static_cast<std::size_t>(got)) == "PK\x03\x04";
  State* s = state.get();
  if (provider == "alipay") {
    if (zipped) {
      auto zip = archive::ZipEntryStream::Open(
          fd, [](std::string_view name) { return alipay::IsDetailCsvName(name); }, size_max,
          nullptr);
      if (!zip) {
        return zip.error().message == "zip: two entries of the kind wanted"
                   ? std::string("bill archive holds two detail files")
               : zip.error().message == "zip: no entry of the kind wanted"
                   ? std::string("bill archive holds no 业务明细 detail file")
                   : "bill archive: " + zip.error().message;
      }
      state->zip = std::move(zip).value();
    }
    state->alipay = std::make_unique<alipay::BillCsvStream>(
        [s, on_record](bill::Record&& r) -> alipay::AlipayResult<void> {
          auto done = on_record(std::move(r));
          if (!done) {
            s->error = done.error();
            return alipay::Error{done.error()};
          }
          return outcome::success();
        });
  } else {
    std::string name(BaseName(file_name));
    if (zipped) {
      auto zip = archive::ZipEntryStream::Open(
          fd, [](std::string_view entry) { return BaseName(entry).rfind("INN", 0) == 0; },
          size_max, &name);
      if (!zip) {
        return zip.error().message == "zip: two entries of the kind wanted"
                   ? std::string("the archive holds two INN files")
               : zip.error().message == "zip: no entry of the kind wanted"
                   ? std::string("the archive holds no INN file")
                   : zip.error().message;
      }
      state->zip = std::move(zip).value();
      name = std::string(BaseName(name));
    }
    const auto settle_date = unionpay::InnSettleDate(name);
    if (!settle_date) {
      return fmt::format("\"{}\" is not an INN file name (INN<yyMMdd>88ZM_<merId>): its rows' "
                         "dates need the settle date it carries",
                         name);
    }
    state->inn = std::make_unique<unionpay::InnStream>(*settle_date, on_record);
  }
  return std::unique_ptr<BillFileStream>(new BillFileStream(std::move(state)));
}

Result<bool, std::string> BillFileStream::Next() {
  State& s = *state_;
  auto n = s.Read();
  if (!n) return n.error();
  if (n.value() == 0) {
    if (s.alipay) {
      auto totals = s.alipay->Finish();
      if (!totals) return s.error.empty() ? totals.error().message : s.error;
      s.totals = totals.value();
    } else {
      auto totals = s.inn->Finish();
      if (!totals) return totals.error();
      s.totals = totals.value();
    }
    return false;
  }
  s.read += n.value();
  if (s.read > s.size_max) return std::string("the bill file exceeds the size bound");
  const std::string_view piece(s.buffer.data(), n.value());
  if (s.alipay) {
    if (auto fed = s.alipay->Feed(piece); !fed) {
      return s.error.empty() ? fed.error().message : s.error;
    }
  } else if (auto fed = s.inn->Feed(piece); !fed) {
    return fed.error();
  }
  return true;
}

const bill::Totals& BillFileStream::totals() const { return state_->totals; }

std::size_t BillFileStream::held_bytes_max() const {
  return state_->alipay ? state_->alipay->held_bytes_max() : state_->inn->held_bytes_max();
}

}  // namespace paygate::adapters
