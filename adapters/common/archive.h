#pragma once

// The containers providers wrap their bill files in, on Debian's zlib and libzip: gzip (WeChat Pay's
// tar_type=GZIP bill download), zlib streams (UnionPay's fileTransReq fileContent) and zip archives
// (Alipay's bill download, and what UnionPay's zlib stream holds). Inflating is bounded: a provider
// (or anyone posing as one) must not be able to exhaust memory with a small compressed file.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/result.h"

namespace paygate::adapters::archive {

struct Error {
  std::string message;
};
template <class T>
using ArchiveResult = outcome::result<T, Error, outcome::policy::terminate>;

// Default bound on inflated bytes: a day's bill of a large merchant is tens of MiB.
inline constexpr std::size_t kInflatedMax = 512u << 20;
// Bound on the inflated bytes of a bill streamed through InflateStream, which holds a piece at a
// time: a bound on the work a small download can cause, not on memory (a million WeChat lines are
// about 200 MiB).
inline constexpr std::size_t kStreamedInflatedMax = std::size_t{4} << 30;

// gzip (RFC 1952) and zlib (RFC 1950) streams. Decompression fails on corrupt or truncated input,
// trailing garbage, and output beyond `size_max`.
ArchiveResult<std::string> Gunzip(std::string_view compressed, std::size_t size_max = kInflatedMax);
std::string Gzip(std::string_view data);
ArchiveResult<std::string> ZlibInflate(std::string_view compressed,
                                       std::size_t size_max = kInflatedMax);
std::string ZlibDeflate(std::string_view data);

// A gzip or zlib stream inflated as its compressed bytes arrive, for files too large to hold
// inflated: WeChat Pay's GZIP bill is checked against its SHA-1 and parsed a piece at a time. The
// same checks as Gunzip: corruption, bytes after the end, more than `size_max` inflated bytes (a
// bound on work here rather than memory) and, in Finish, truncation.
class InflateStream {
 public:
  enum class Wrapper { kGzip, kZlib };
  explicit InflateStream(Wrapper wrapper, std::size_t size_max = kInflatedMax);
  ~InflateStream();
  InflateStream(const InflateStream&) = delete;
  InflateStream& operator=(const InflateStream&) = delete;

  // Inflates `in`, handing each inflated piece (at most 64 KiB) to `out` as it comes. When `out`
  // returns false the stream stops with an error whose message is empty: the caller has its own.
  ArchiveResult<void> Feed(std::string_view in, const std::function<bool(std::string_view)>& out);
  // After the last Feed: an error when the stream has not reached its end.
  ArchiveResult<void> Finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

struct ZipEntry {
  std::string name;  // as stored; providers store GBK names without the UTF-8 flag, bytes kept as is
  std::string data;
};

// Every file entry of a zip archive held in memory (directories skipped), checked against their
// CRCs. Fails on a corrupt archive, encrypted entries, or entries that together exceed `size_max`.
ArchiveResult<std::vector<ZipEntry>> ReadZip(std::string_view archive,
                                             std::size_t size_max = kInflatedMax);
// One entry of a zip archive in a file, read in pieces: a bill of hundreds of MiB is parsed as it
// inflates instead of being held whole. Checked against its CRC when read to its end.
class ZipEntryStream {
 public:
  ~ZipEntryStream();
  ZipEntryStream(const ZipEntryStream&) = delete;
  ZipEntryStream& operator=(const ZipEntryStream&) = delete;

  // Opens the archive in the file `fd` reads (from its start; the descriptor is duplicated, the
  // caller keeps its own) and the file entry whose raw name `want` accepts; an error when none or
  // several do, or the entry is encrypted or larger than `size_max`. `name` receives the entry's
  // raw name.
  static ArchiveResult<std::unique_ptr<ZipEntryStream>> Open(
      int fd, const std::function<bool(std::string_view raw_name)>& want, std::size_t size_max,
      std::string* name);
  // Up to `size` inflated bytes into `out`; 0 at the end. Fails on corruption, a bad CRC or an
  // entry longer than it states.
  ArchiveResult<std::size_t> Read(char* out, std::size_t size);

 private:
  struct State;
  explicit ZipEntryStream(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// A deflated zip archive of `entries`, for simulators producing bill downloads.
ArchiveResult<std::string> WriteZip(const std::vector<ZipEntry>& entries);

}  // namespace paygate::adapters::archive
