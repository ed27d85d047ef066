#include "config/redact.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

namespace paygate::config {
namespace {

namespace pb = google::protobuf;

constexpr std::string_view kRedacted = "\"***\"";

bool IsSensitive(const pb::FieldDescriptor& field) {
  return field.options().GetExtension(v1::sensitive);
}

// A YAML double-quoted scalar: always quoted, so that values such as "on", "1.2" or "~" read back
// as the strings they are.
std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

// One scalar value of a singular field (index < 0) or of a repeated field's element.
std::string Scalar(const pb::Message& message, const pb::FieldDescriptor& field, int index) {
  const pb::Reflection& r = *message.GetReflection();
  const bool rep = index >= 0;
  switch (field.cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32:
      return fmt::format(
          "{}", rep ? r.GetRepeatedInt32(message, &field, index) : r.GetInt32(message, &field));
    case pb::FieldDescriptor::CPPTYPE_INT64:
      return fmt::format(
          "{}", rep ? r.GetRepeatedInt64(message, &field, index) : r.GetInt64(message, &field));
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      return fmt::format(
          "{}", rep ? r.GetRepeatedUInt32(message, &field, index) : r.GetUInt32(message, &field));
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      return fmt::format(
          "{}", rep ? r.GetRepeatedUInt64(message, &field, index) : r.GetUInt64(message, &field));
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      return fmt::format(
          "{}", rep ? r.GetRepeatedDouble(message, &field, index) : r.GetDouble(message, &field));
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      return fmt::format(
          "{}", rep ? r.GetRepeatedFloat(message, &field, index) : r.GetFloat(message, &field));
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      return (rep ? r.GetRepeatedBool(message, &field, index) : r.GetBool(message, &field))
                 ? "true"
                 : "false";
    case pb::FieldDescriptor::CPPTYPE_ENUM: {
      const int number =
          rep ? r.GetRepeatedEnumValue(message, &field, index) : r.GetEnumValue(message, &field);
      const pb::EnumValueDescriptor* value = field.enum_type()->FindValueByNumber(number);
      return value != nullptr ? value->name() : fmt::format("{}", number);
    }
    case pb::FieldDescriptor::CPPTYPE_STRING:
      return Quote(rep ? r.GetRepeatedString(message, &field, index)
                       : r.GetString(message, &field));
    case pb::FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return "";
}

void Dump(const pb::Message& message, int indent, std::string* out);

// The fields of a message as an indented block; empty when no field is set (callers print {}).
std::string Block(const pb::Message& message, int indent) {
  std::string body;
  Dump(message, indent, &body);
  return body;
}

void DumpMap(const pb::Message& message, const pb::FieldDescriptor& field, int indent,
             std::string* out) {
  const pb::Reflection& r = *message.GetReflection();
  const pb::FieldDescriptor& key_field = *field.message_type()->map_key();
  const pb::FieldDescriptor& value_field = *field.message_type()->map_value();
  std::vector<std::pair<std::string, std::string>> entries;
  for (int i = 0; i < r.FieldSize(message, &field); ++i) {
    const pb::Message& entry = r.GetRepeatedMessage(message, &field, i);
    std::string key = Scalar(entry, key_field, -1);
    if (value_field.cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      const pb::Message& value = entry.GetReflection()->GetMessage(entry, &value_field);
      std::string body = Block(value, indent + 2);
      entries.emplace_back(std::move(key), body.empty() ? " {}\n" : "\n" + body);
    } else {
      entries.emplace_back(std::move(key), " " + Scalar(entry, value_field, -1) + "\n");
    }
  }
  std::sort(entries.begin(), entries.end());
  for (const auto& [key, value] : entries) {
    out->append(static_cast<size_t>(indent), ' ');
    // Keys of string maps are quoted by Scalar already; others are numbers or bools.
    *out += key;
    *out += ':';
    *out += value;
  }
}

void Dump(const pb::Message& message, int indent, std::string* out) {
  const pb::Reflection& r = *message.GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  r.ListFields(message, &fields);
  const std::string pad(static_cast<size_t>(indent), ' ');
  for (const pb::FieldDescriptor* field : fields) {
    *out += pad;
    *out += field->name();
    *out += ':';
    if (IsSensitive(*field)) {
      // The whole field, whatever its type, so neither a value nor the shape of one leaks.
      *out += ' ';
      *out += kRedacted;
      *out += '\n';
    } else if (field->is_map()) {
      *out += '\n';
      DumpMap(message, *field, indent + 2, out);
    } else if (field->is_repeated() && field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      *out += '\n';
      for (int i = 0; i < r.FieldSize(message, field); ++i) {
        std::string item = Block(r.GetRepeatedMessage(message, field, i), indent + 4);
        *out += pad;
        if (item.empty()) {
          *out += "  - {}\n";
        } else {
          // The first key goes on the "- " line, the rest stay aligned under it.
          *out += "  - ";
          *out += item.substr(static_cast<size_t>(indent) + 4);
        }
      }
    } else if (field->is_repeated()) {
      *out += " [";
      for (int i = 0; i < r.FieldSize(message, field); ++i) {
        if (i > 0) *out += ", ";
        *out += Scalar(message, *field, i);
      }
      *out += "]\n";
    } else if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      std::string body = Block(r.GetMessage(message, field), indent + 2);
      *out += body.empty() ? " {}\n" : "\n" + body;
    } else {
      *out += ' ';
      *out += Scalar(message, *field, -1);
      *out += '\n';
    }
  }
}

}  // namespace

std::string RedactedMessageText(const google::protobuf::Message& message) {
  std::string out;
  Dump(message, 0, &out);
  return out;
}

std::string RedactedText(const v1::Config& config) { return RedactedMessageText(config); }

}  // namespace paygate::config
