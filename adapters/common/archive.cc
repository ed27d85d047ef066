#include "adapters/common/archive.h"

#include <unistd.h>
#include <zip.h>
#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>

namespace paygate::adapters::archive {
namespace {

// windowBits for zlib's inflateInit2/deflateInit2: 15 + 16 selects the gzip wrapper, 15 zlib's.
constexpr int kGzipBits = 15 + 16;
constexpr int kZlibBits = 15;

std::string Deflate(std::string_view in, int window_bits) {
  z_stream stream{};
  if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window_bits, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    std::abort();  // only on allocation failure
  }
  std::string out(deflateBound(&stream, static_cast<uLong>(in.size())), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  stream.avail_in = static_cast<uInt>(in.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  if (deflate(&stream, Z_FINISH) != Z_STREAM_END) std::abort();  // the bound guarantees room
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

struct ZipCloser {
  void operator()(zip_t* archive) const { zip_discard(archive); }
};
struct FileCloser {
  void operator()(zip_file_t* file) const { zip_fclose(file); }
};

std::string ZipErrorText(zip_error_t* error) {
  std::string text = zip_error_strerror(error);
  zip_error_fini(error);
  return text;
}

}  // namespace

struct InflateStream::State {
  z_stream z{};
  bool ended = false;
  std::size_t total = 0;
  std::size_t size_max = 0;
  std::unique_ptr<char[]> buffer = std::make_unique<char[]>(kPiece);

  static constexpr std::size_t kPiece = 64 * 1024;
};

InflateStream::InflateStream(Wrapper wrapper, std::size_t size_max)
    : state_(std::make_unique<State>()) {
  state_->size_max = size_max;
  // Only allocation failure makes init fail; abort like Deflate rather than half-construct.
  if (inflateInit2(&state_->z, wrapper == Wrapper::kGzip ? kGzipBits : kZlibBits) != Z_OK) {
    std::abort();
  }
}

InflateStream::~InflateStream() { inflateEnd(&state_->z); }

ArchiveResult<void> InflateStream::Feed(std::string_view in,
                                        const std::function<bool(std::string_view)>& out) {
  State& st = *state_;
  if (st.ended) {
    if (in.empty()) return outcome::success();
    return Error{"inflate: bytes after the end of the stream"};
  }
  st.z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  st.z.avail_in = static_cast<uInt>(in.size());
  std::size_t produced = 0;
  do {
    st.z.next_out = reinterpret_cast<Bytef*>(st.buffer.get());
    st.z.avail_out = static_cast<uInt>(State::kPiece);
    const int status = inflate(&st.z, Z_NO_FLUSH);
    // Z_BUF_ERROR: no progress possible until more input arrives (Finish tells truncation).
    if (status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR) {
      return Error{std::string("inflate: ") + (st.z.msg != nullptr ? st.z.msg : "corrupt")};
    }
    produced = State::kPiece - st.z.avail_out;
    st.total += produced;
    if (st.total > st.size_max) return Error{"inflate: output exceeds the size bound"};
    if (produced > 0 && !out(std::string_view(st.buffer.get(), produced))) return Error{""};
    if (status == Z_STREAM_END) {
      st.ended = true;
      if (st.z.avail_in != 0) return Error{"inflate: bytes after the end of the stream"};
    }
    if (status == Z_BUF_ERROR) break;
  } while (!st.ended && (st.z.avail_in > 0 || produced == State::kPiece));
  return outcome::success();
}

ArchiveResult<void> InflateStream::Finish() {
  if (!state_->ended) return Error{"inflate: truncated input"};
  return outcome::success();
}

namespace {

ArchiveResult<std::string> Inflate(std::string_view in, InflateStream::Wrapper wrapper,
                                   std::size_t size_max) {
  InflateStream stream(wrapper, size_max);
  std::string out;
  auto fed = stream.Feed(in, [&out](std::string_view piece) {
    out.append(piece);
    return true;
  });
  if (!fed) return fed.error();
  if (auto done = stream.Finish(); !done) return done.error();
  return out;
}

}  // namespace

ArchiveResult<std::string> Gunzip(std::string_view compressed, std::size_t size_max) {
  return Inflate(compressed, InflateStream::Wrapper::kGzip, size_max);
}
std::string Gzip(std::string_view data) { return Deflate(data, kGzipBits); }
ArchiveResult<std::string> ZlibInflate(std::string_view compressed, std::size_t size_max) {
  return Inflate(compressed, InflateStream::Wrapper::kZlib, size_max);
}
std::string ZlibDeflate(std::string_view data) { return Deflate(data, kZlibBits); }

ArchiveResult<std::vector<ZipEntry>> ReadZip(std::string_view bytes, std::size_t size_max) {
  zip_error_t error;
  zip_error_init(&error);
  // freep = 0: the source reads the caller's bytes in place.
  zip_source_t* source = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  if (source == nullptr) return Error{"zip: " + ZipErrorText(&error)};
  std::unique_ptr<zip_t, ZipCloser> archive(
      zip_open_from_source(source, ZIP_RDONLY | ZIP_CHECKCONS, &error));
  if (!archive) {
    zip_source_free(source);
    return Error{"zip: " + ZipErrorText(&error)};
  }
  zip_error_fini(&error);
  std::vector<ZipEntry> entries;
  std::size_t total = 0;
  const zip_int64_t count = zip_get_num_entries(archive.get(), 0);
  for (zip_int64_t i = 0; i < count; ++i) {
    zip_stat_t stat;
    // ZIP_FL_ENC_RAW: names exactly as stored (providers write GBK without the UTF-8 flag).
    if (zip_stat_index(archive.get(), static_cast<zip_uint64_t>(i), ZIP_FL_ENC_RAW, &stat) != 0) {
      return Error{std::string("zip: ") + zip_strerror(archive.get())};
    }
    const std::string name = stat.name != nullptr ? stat.name : "";
    if (!name.empty() && name.back() == '/') continue;
    if ((stat.valid & ZIP_STAT_ENCRYPTION_METHOD) != 0 && stat.encryption_method != ZIP_EM_NONE) {
      return Error{"zip: encrypted entry " + name};
    }
    if (stat.size > size_max || total + stat.size > size_max) {
      return Error{"zip: entries exceed the size bound"};
    }
    std::unique_ptr<zip_file_t, FileCloser> file(
        zip_fopen_index(archive.get(), static_cast<zip_uint64_t>(i), 0));
    if (!file) return Error{std::string("zip: ") + zip_strerror(archive.get())};
    ZipEntry entry{name, std::string(stat.size, '\0')};
    zip_int64_t read = 0;
    while (static_cast<zip_uint64_t>(read) < stat.size) {
      const zip_int64_t n =
          zip_fread(file.get(), entry.data.data() + read, stat.size - static_cast<zip_uint64_t>(read));
      // libzip checks the CRC when the entry has been read to its end and fails the read if not.
      if (n <= 0) return Error{"zip: cannot read " + name + " (corrupt or bad CRC)"};
      read += n;
    }
    char extra;
    if (zip_fread(file.get(), &extra, 1) != 0) return Error{"zip: " + name + " longer than stated"};
    total += entry.data.size();
    entries.push_back(std::move(entry));
  }
  return entries;
}

struct ZipEntryStream::State {
  std::unique_ptr<zip_t, ZipCloser> archive;
  std::unique_ptr<zip_file_t, FileCloser> file;
  std::string name;
  zip_uint64_t size = 0;  // as the directory states it
  zip_uint64_t read = 0;
};

ZipEntryStream::ZipEntryStream(std::unique_ptr<State> state) : state_(std::move(state)) {}
ZipEntryStream::~ZipEntryStream() = default;

ArchiveResult<std::unique_ptr<ZipEntryStream>> ZipEntryStream::Open(
    int fd, const std::function<bool(std::string_view)>& want, std::size_t size_max,
    std::string* name) {
  auto state = std::make_unique<State>();
  int code = 0;
  // zip_fdopen owns the descriptor it is given (closed with the archive) and reads the archive
  // from the file's start.
  const int own = dup(fd);
  if (own < 0) return Error{"zip: cannot duplicate the file descriptor"};
  state->archive.reset(zip_fdopen(own, ZIP_CHECKCONS, &code));
  if (!state->archive) {
    close(own);
    zip_error_t error;
    zip_error_init_with_code(&error, code);
    return Error{"zip: " + ZipErrorText(&error)};
  }
  std::optional<zip_uint64_t> chosen;
  const zip_int64_t count = zip_get_num_entries(state->archive.get(), 0);
  for (zip_int64_t i = 0; i < count; ++i) {
    zip_stat_t stat;
    if (zip_stat_index(state->archive.get(), static_cast<zip_uint64_t>(i), ZIP_FL_ENC_RAW,
                       &stat) != 0) {
      return Error{std::string("zip: ") + zip_strerror(state->archive.get())};
    }
    const std::string entry = stat.name != nullptr ? stat.name : "";
    if (entry.empty() || entry.back() == '/' || !want(entry)) continue;
    if (chosen) return Error{"zip: two entries of the kind wanted"};
    if ((stat.valid & ZIP_STAT_ENCRYPTION_METHOD) != 0 && stat.encryption_method != ZIP_EM_NONE) {
      return Error{"zip: encrypted entry " + entry};
    }
    if (stat.size > size_max) return Error{"zip: entries exceed the size bound"};
    chosen = static_cast<zip_uint64_t>(i);
    state->name = entry;
    state->size = stat.size;
  }
  if (!chosen) return Error{"zip: no entry of the kind wanted"};
  state->file.reset(zip_fopen_index(state->archive.get(), *chosen, 0));
  if (!state->file) return Error{std::string("zip: ") + zip_strerror(state->archive.get())};
  if (name != nullptr) *name = state->name;
  return std::unique_ptr<ZipEntryStream>(new ZipEntryStream(std::move(state)));
}

ArchiveResult<std::size_t> ZipEntryStream::Read(char* out, std::size_t size) {
  State& s = *state_;
  if (s.read == s.size) {
    // The stated size is read: one more byte would mean the entry lies about its length.
    char extra;
    if (zip_fread(s.file.get(), &extra, 1) != 0) return Error{"zip: " + s.name + " longer than stated"};
    return std::size_t{0};
  }
  const zip_uint64_t want = std::min<zip_uint64_t>(size, s.size - s.read);
  const zip_int64_t n = zip_fread(s.file.get(), out, want);
  // libzip checks the CRC when the entry has been read to its end and fails the read if not.
  if (n <= 0) return Error{"zip: cannot read " + s.name + " (corrupt or bad CRC)"};
  s.read += static_cast<zip_uint64_t>(n);
  return static_cast<std::size_t>(n);
}

ArchiveResult<std::string> WriteZip(const std::vector<ZipEntry>& entries) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* target = zip_source_buffer_create(nullptr, 0, 0, &error);
  if (target == nullptr) return Error{"zip: " + ZipErrorText(&error)};
  // Keep the target alive after zip_close, to read the written bytes from it.
  zip_source_keep(target);
  zip_t* archive = zip_open_from_source(target, ZIP_TRUNCATE, &error);
  if (archive == nullptr) {
    zip_source_free(target);
    return Error{"zip: " + ZipErrorText(&error)};
  }
  zip_error_fini(&error);
  for (const auto& entry : entries) {
    zip_source_t* data = zip_source_buffer(archive, entry.data.data(), entry.data.size(), 0);
    if (data == nullptr || zip_file_add(archive, entry.name.c_str(), data, ZIP_FL_ENC_RAW) < 0) {
      zip_source_free(data);
      std::string text = std::string("zip: ") + zip_strerror(archive);
      zip_discard(archive);
      zip_source_free(target);
      return Error{text};
    }
  }
  if (zip_close(archive) != 0) {
    std::string text = std::string("zip: ") + zip_strerror(archive);
    zip_discard(archive);
    zip_source_free(target);
    return Error{text};
  }
  zip_stat_t stat;
  std::string out;
  if (zip_source_stat(target, &stat) == 0 && zip_source_open(target) == 0) {
    out.resize(stat.size);
    const zip_int64_t n = zip_source_read(target, out.data(), stat.size);
    zip_source_close(target);
    if (n != static_cast<zip_int64_t>(stat.size)) out.clear();
  }
  zip_source_free(target);
  if (out.empty()) return Error{"zip: cannot read back the written archive"};
  return out;
}

}  // namespace paygate::adapters::archive
