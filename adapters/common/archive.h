#pragma once

// The containers providers wrap their bill files in, on Debian's zlib and libzip: gzip (WeChat Pay's
// tar_type=GZIP bill download), zlib streams (UnionPay's fileTransReq fileContent) and zip archives
// (Alipay's bill download, and what UnionPay's zlib stream holds). Inflating is bounded: a provider
// (or anyone posing as one) must not be able to exhaust memory with a small compressed file.
#include <cstddef>
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

// gzip (RFC 1952) and zlib (RFC 1950) streams. Decompression fails on corrupt or truncated input,
// trailing garbage, and output beyond `size_max`.
ArchiveResult<std::string> Gunzip(std::string_view compressed, std::size_t size_max = kInflatedMax);
std::string Gzip(std::string_view data);
ArchiveResult<std::string> ZlibInflate(std::string_view compressed,
                                       std::size_t size_max = kInflatedMax);
std::string ZlibDeflate(std::string_view data);

struct ZipEntry {
  std::string name;  // as stored; providers store GBK names without the UTF-8 flag, bytes kept as is
  std::string data;
};

// Every file entry of a zip archive held in memory (directories skipped), checked against their
// CRCs. Fails on a corrupt archive, encrypted entries, or entries that together exceed `size_max`.
ArchiveResult<std::vector<ZipEntry>> ReadZip(std::string_view archive,
                                             std::size_t size_max = kInflatedMax);
// A deflated zip archive of `entries`, for simulators producing bill downloads.
ArchiveResult<std::string> WriteZip(const std::vector<ZipEntry>& entries);

}  // namespace paygate::adapters::archive
