#include "ledger/recon/binary_copy.h"

#include <cstring>

namespace paygate::recon {
namespace {

// "PGCOPY\n\377\r\n\0": 11 bytes, then a flags word and the header extension's length.
constexpr std::string_view kSignature{"PGCOPY\n\377\r\n\0", 11};
constexpr std::size_t kHeaderBytes = 11 + 4 + 4;
constexpr std::int64_t kMicros = 1000000;

std::uint32_t LoadBe32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) | (std::uint32_t{u[2]} << 8) |
         std::uint32_t{u[3]};
}

std::uint64_t LoadBe64(const char* p) {
  return (std::uint64_t{LoadBe32(p)} << 32) | LoadBe32(p + 4);
}

}  // namespace

void BinaryCopyWriter::Be32(std::uint32_t v) {
  const char bytes[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                         static_cast<char>(v >> 8), static_cast<char>(v)};
  out_.append(bytes, 4);
}

void BinaryCopyWriter::Be64(std::uint64_t v) {
  Be32(static_cast<std::uint32_t>(v >> 32));
  Be32(static_cast<std::uint32_t>(v));
}

void BinaryCopyWriter::Header() {
  out_.append(kSignature);
  Be32(0);  // flags: no OIDs
  Be32(0);  // no header extension
}

void BinaryCopyWriter::Trailer() {
  out_.push_back('\xff');
  out_.push_back('\xff');
}

void BinaryCopyWriter::Row(std::int16_t fields) {
  const auto v = static_cast<std::uint16_t>(fields);
  out_.push_back(static_cast<char>(v >> 8));
  out_.push_back(static_cast<char>(v));
}

void BinaryCopyWriter::Text(std::string_view value) {
  Be32(static_cast<std::uint32_t>(value.size()));
  out_.append(value);
}

void BinaryCopyWriter::Int4(std::int32_t value) {
  Be32(4);
  Be32(static_cast<std::uint32_t>(value));
}

void BinaryCopyWriter::Int8(std::int64_t value) {
  Be32(8);
  Be64(static_cast<std::uint64_t>(value));
}

void BinaryCopyWriter::Bool(bool value) {
  Be32(1);
  out_.push_back(value ? '\1' : '\0');
}

void BinaryCopyWriter::TimestampUnix(std::int64_t unix_seconds) {
  Int8((unix_seconds - kPgEpochUnix) * kMicros);
}

void BinaryCopyWriter::Null() { Be32(0xffffffffu); }

BinaryCopyReader::Status BinaryCopyReader::Next(std::string_view m,
                                                std::vector<BinaryField>& fields) {
  fields.clear();
  if (!header_seen_) {
    if (m.size() < kHeaderBytes || m.substr(0, kSignature.size()) != kSignature) {
      return Status::kMalformed;
    }
    const std::uint32_t extension = LoadBe32(m.data() + 15);
    if (m.size() - kHeaderBytes < extension) return Status::kMalformed;
    m.remove_prefix(kHeaderBytes + extension);
    header_seen_ = true;
  }
  if (m.size() < 2) return Status::kMalformed;
  const auto count = static_cast<std::int16_t>((static_cast<unsigned char>(m[0]) << 8) |
                                               static_cast<unsigned char>(m[1]));
  m.remove_prefix(2);
  if (count == -1) return m.empty() ? Status::kEnd : Status::kMalformed;
  if (count < 0) return Status::kMalformed;
  for (std::int16_t i = 0; i < count; ++i) {
    if (m.size() < 4) return Status::kMalformed;
    const std::uint32_t length = LoadBe32(m.data());
    m.remove_prefix(4);
    if (length == 0xffffffffu) {
      fields.emplace_back(std::nullopt);
      continue;
    }
    if (m.size() < length) return Status::kMalformed;
    fields.emplace_back(m.substr(0, length));
    m.remove_prefix(length);
  }
  // One row per message: anything after it means we misread the stream.
  return m.empty() ? Status::kRow : Status::kMalformed;
}

std::optional<std::int64_t> BinaryCopyReader::Int8(const BinaryField& f) {
  if (!f || f->size() != 8) return std::nullopt;
  return static_cast<std::int64_t>(LoadBe64(f->data()));
}

std::optional<std::int32_t> BinaryCopyReader::Int4(const BinaryField& f) {
  if (!f || f->size() != 4) return std::nullopt;
  return static_cast<std::int32_t>(LoadBe32(f->data()));
}

std::optional<bool> BinaryCopyReader::Bool(const BinaryField& f) {
  if (!f || f->size() != 1) return std::nullopt;
  return (*f)[0] != 0;
}

std::optional<std::int64_t> BinaryCopyReader::TimestampUnix(const BinaryField& f) {
  auto micros = Int8(f);
  if (!micros) return std::nullopt;
  // Floor division: a time before 2000 is negative and must round towards the earlier second.
  std::int64_t seconds = *micros / kMicros;
  if (*micros % kMicros < 0) --seconds;
  return seconds + kPgEpochUnix;
}

}  // namespace paygate::recon
