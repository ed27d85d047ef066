#include "ledger/db/params.h"

#include <string>

namespace paygate::db {

Params& Params::Push(Oid type, std::string_view value, bool binary) {
  if (!binary && value.find('\0') != std::string_view::npos) valid_ = false;
  types_.push_back(type);
  values_.emplace_back(std::string(value));
  binary_.push_back(binary);
  return *this;
}

Params& Params::Add(std::int64_t value) { return Push(kInt8Oid, std::to_string(value), false); }

Params& Params::Add(std::int32_t value) { return Push(kInt4Oid, std::to_string(value), false); }

Params& Params::Add(std::string_view value) { return Push(kTextOid, value, false); }

Params& Params::AddUntyped(std::string_view text) { return Push(0, text, false); }

Params& Params::AddNull() {
  types_.push_back(0);
  values_.emplace_back(std::nullopt);
  binary_.push_back(false);
  return *this;
}

Params& Params::AddBytea(std::span<const std::byte> bytes) {
  return AddBytea(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

Params& Params::AddBytea(std::string_view bytes) { return Push(kByteaOid, bytes, true); }

Params::Raw Params::ToRaw() const {
  Raw raw;
  raw.values.reserve(values_.size());
  raw.lengths.reserve(values_.size());
  raw.formats.reserve(values_.size());
  for (std::size_t i = 0; i < values_.size(); ++i) {
    const auto& value = values_[i];
    raw.values.push_back(value ? value->c_str() : nullptr);
    raw.lengths.push_back(value ? static_cast<int>(value->size()) : 0);
    raw.formats.push_back(binary_[i] ? 1 : 0);
  }
  return raw;
}

std::string ArrayLiteral(const std::vector<std::string>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i != 0) out += ',';
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::string ArrayLiteral(const std::vector<std::int64_t>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i != 0) out += ',';
    out += std::to_string(values[i]);
  }
  out += '}';
  return out;
}

}  // namespace paygate::db
