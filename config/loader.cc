#include "config/loader.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>
#include <utility>

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <yaml-cpp/yaml.h>

namespace paygate::config {
namespace {

namespace pb = google::protobuf;

std::string Where(const YAML::Mark& mark) {
  if (mark.is_null()) return "";
  return fmt::format(" (line {}, column {})", mark.line + 1, mark.column + 1);
}

std::string_view KindOf(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Scalar:
      return node.Tag() == "!" ? "a quoted string" : "a scalar";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

// Plain (unquoted) scalars are the only ones that may be read as numbers or bools: a quoted "8443"
// is a string, and accepting it would make the file's types depend on the reader's leniency.
bool IsPlainScalar(const YAML::Node& node) { return node.IsScalar() && node.Tag() != "!"; }

std::string UpperSnake(std::string_view camel) {
  std::string out;
  for (size_t i = 0; i < camel.size(); ++i) {
    const char c = camel[i];
    if (std::isupper(static_cast<unsigned char>(c)) && i > 0) out += '_';
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string EnumPrefix(const pb::EnumDescriptor& type) { return UpperSnake(type.name()) + "_"; }

bool IsUnspecified(const pb::EnumValueDescriptor& value) {
  constexpr std::string_view kSuffix = "_UNSPECIFIED";
  const std::string& name = value.name();
  return name.size() >= kSuffix.size() &&
         name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0;
}

// The lower-case short name of an enum value, or its full name when it lacks the expected prefix.
std::string ShortName(const pb::EnumValueDescriptor& value) {
  const std::string prefix = EnumPrefix(*value.type());
  const std::string& name = value.name();
  if (name.rfind(prefix, 0) != 0) return name;
  std::string out = name.substr(prefix.size());
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// Walks a YAML tree against a message descriptor, filling the message through reflection and
// collecting every error instead of stopping at the first.
class Converter {
 public:
  FieldErrors TakeErrors() { return std::move(errors_); }

  void ConvertMessage(const YAML::Node& node, pb::Message* message, const std::string& path) {
    if (!node.IsMap()) {
      Error(path, fmt::format("expected a mapping, got {}{}", KindOf(node), Where(node.Mark())));
      return;
    }
    const pb::Descriptor& descriptor = *message->GetDescriptor();
    std::set<std::string, std::less<>> seen;
    std::map<const pb::OneofDescriptor*, const pb::FieldDescriptor*> oneofs_set;
    for (const auto& entry : node) {
      const YAML::Node& key = entry.first;
      const YAML::Node& value = entry.second;
      if (!key.IsScalar()) {
        Error(path, fmt::format("keys must be scalars, got {}{}", KindOf(key), Where(key.Mark())));
        continue;
      }
      const std::string& name = key.Scalar();
      const std::string field_path = path.empty() ? name : path + "." + name;
      if (!seen.insert(name).second) {
        Error(field_path, fmt::format("duplicate key{}", Where(key.Mark())));
        continue;
      }
      const pb::FieldDescriptor* field = descriptor.FindFieldByName(name);
      if (field == nullptr) {
        Error(field_path,
              fmt::format("unknown field{}{}", Suggestion(descriptor, name), Where(key.Mark())));
        continue;
      }
      // A null value is an absent key: the field keeps its zero value and so its default.
      if (value.IsNull()) continue;
      if (const pb::OneofDescriptor* oneof = field->real_containing_oneof()) {
        auto [it, inserted] = oneofs_set.emplace(oneof, field);
        if (!inserted) {
          Error(field_path, fmt::format("cannot be set together with {} (one of {}){}",
                                        it->second->name(), oneof->name(), Where(key.Mark())));
          continue;
        }
      }
      ConvertField(value, message, *field, field_path);
    }
  }

 private:
  void Error(std::string path, std::string message) {
    errors_.push_back(FieldError{std::move(path), std::move(message)});
  }

  static std::string Suggestion(const pb::Descriptor& descriptor, std::string_view name) {
    const pb::FieldDescriptor* best = nullptr;
    size_t best_distance = 3;  // Farther than two edits is a different word, not a typo.
    for (int i = 0; i < descriptor.field_count(); ++i) {
      const size_t distance = EditDistance(name, descriptor.field(i)->name());
      if (distance < best_distance) {
        best = descriptor.field(i);
        best_distance = distance;
      }
    }
    return best == nullptr ? "" : fmt::format("; did you mean \"{}\"?", best->name());
  }

  void ConvertField(const YAML::Node& node, pb::Message* message, const pb::FieldDescriptor& field,
                    const std::string& path) {
    if (field.is_map()) {
      ConvertMap(node, message, field, path);
    } else if (field.is_repeated()) {
      if (!node.IsSequence()) {
        Error(path, fmt::format("expected a sequence, got {}{}", KindOf(node), Where(node.Mark())));
        return;
      }
      for (size_t i = 0; i < node.size(); ++i) {
        ConvertValue(node[i], message, field, fmt::format("{}[{}]", path, i));
      }
    } else {
      ConvertValue(node, message, field, path);
    }
  }

  void ConvertMap(const YAML::Node& node, pb::Message* message, const pb::FieldDescriptor& field,
                  const std::string& path) {
    if (!node.IsMap()) {
      Error(path, fmt::format("expected a mapping, got {}{}", KindOf(node), Where(node.Mark())));
      return;
    }
    const pb::Reflection& reflection = *message->GetReflection();
    const pb::FieldDescriptor& key_field = *field.message_type()->map_key();
    const pb::FieldDescriptor& value_field = *field.message_type()->map_value();
    std::set<std::string, std::less<>> seen;
    for (const auto& entry : node) {
      const YAML::Node& key = entry.first;
      if (!key.IsScalar()) {
        Error(path, fmt::format("keys must be scalars, got {}{}", KindOf(key), Where(key.Mark())));
        continue;
      }
      const std::string entry_path = path + "." + key.Scalar();
      if (!seen.insert(key.Scalar()).second) {
        Error(entry_path, fmt::format("duplicate key{}", Where(key.Mark())));
        continue;
      }
      // Converted into a scratch entry so a bad key or value leaves no half-filled entry behind.
      std::unique_ptr<pb::Message> scratch(
          reflection.GetMessageFactory()->GetPrototype(field.message_type())->New());
      const size_t errors_before = errors_.size();
      ConvertValue(key, scratch.get(), key_field, entry_path);
      ConvertValue(entry.second, scratch.get(), value_field, entry_path);
      if (errors_.size() == errors_before) {
        reflection.AddMessage(message, &field)->CopyFrom(*scratch);
      }
    }
  }

  // Converts one value into a singular field (set) or a repeated field (appended).
  void ConvertValue(const YAML::Node& node, pb::Message* message, const pb::FieldDescriptor& field,
                    const std::string& path) {
    const pb::Reflection& reflection = *message->GetReflection();
    const bool repeated = field.is_repeated();
    switch (field.cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_MESSAGE: {
        if (!node.IsMap()) {
          Error(path,
                fmt::format("expected a mapping, got {}{}", KindOf(node), Where(node.Mark())));
          return;
        }
        pb::Message* child = repeated ? reflection.AddMessage(message, &field)
                                      : reflection.MutableMessage(message, &field);
        ConvertMessage(node, child, path);
        return;
      }
      case pb::FieldDescriptor::CPPTYPE_INT32:
        if (auto v = ParseSigned(node, path, std::numeric_limits<int32_t>::min(),
                                 std::numeric_limits<int32_t>::max(), "int32")) {
          const auto value = static_cast<int32_t>(*v);
          repeated ? reflection.AddInt32(message, &field, value)
                   : reflection.SetInt32(message, &field, value);
        }
        return;
      case pb::FieldDescriptor::CPPTYPE_INT64:
        if (auto v = ParseSigned(node, path, std::numeric_limits<int64_t>::min(),
                                 std::numeric_limits<int64_t>::max(), "int64")) {
          repeated ? reflection.AddInt64(message, &field, *v)
                   : reflection.SetInt64(message, &field, *v);
        }
        return;
      case pb::FieldDescriptor::CPPTYPE_UINT32:
        if (auto v = ParseUnsigned(node, path, std::numeric_limits<uint32_t>::max(), "uint32")) {
          const auto value = static_cast<uint32_t>(*v);
          repeated ? reflection.AddUInt32(message, &field, value)
                   : reflection.SetUInt32(message, &field, value);
        }
        return;
      case pb::FieldDescriptor::CPPTYPE_UINT64:
        if (auto v = ParseUnsigned(node, path, std::numeric_limits<uint64_t>::max(), "uint64")) {
          repeated ? reflection.AddUInt64(message, &field, *v)
                   : reflection.SetUInt64(message, &field, *v);
        }
        return;
      case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      case pb::FieldDescriptor::CPPTYPE_FLOAT:
        if (auto v = ParseDouble(node, path)) {
          if (field.cpp_type() == pb::FieldDescriptor::CPPTYPE_DOUBLE) {
            repeated ? reflection.AddDouble(message, &field, *v)
                     : reflection.SetDouble(message, &field, *v);
          } else {
            const auto value = static_cast<float>(*v);
            repeated ? reflection.AddFloat(message, &field, value)
                     : reflection.SetFloat(message, &field, value);
          }
        }
        return;
      case pb::FieldDescriptor::CPPTYPE_BOOL:
        if (auto v = ParseBool(node, path)) {
          repeated ? reflection.AddBool(message, &field, *v)
                   : reflection.SetBool(message, &field, *v);
        }
        return;
      case pb::FieldDescriptor::CPPTYPE_ENUM:
        if (const pb::EnumValueDescriptor* v = ParseEnum(node, path, *field.enum_type())) {
          repeated ? reflection.AddEnum(message, &field, v)
                   : reflection.SetEnum(message, &field, v);
        }
        return;
      case pb::FieldDescriptor::CPPTYPE_STRING:
        if (field.type() == pb::FieldDescriptor::TYPE_BYTES) {
          // No bytes field exists; when one does, its YAML form (base64?) must be decided first.
          Error(path, "bytes fields are not supported in YAML");
          return;
        }
        if (!node.IsScalar()) {
          Error(path, fmt::format("expected a string, got {}{}", KindOf(node), Where(node.Mark())));
          return;
        }
        repeated ? reflection.AddString(message, &field, node.Scalar())
                 : reflection.SetString(message, &field, node.Scalar());
        return;
    }
  }

  // Reads a plain integer scalar as sign and magnitude; reports and returns nullopt otherwise.
  std::optional<std::pair<bool, uint64_t>> ParseMagnitude(const YAML::Node& node,
                                                          const std::string& path,
                                                          std::string_view type) {
    if (!IsPlainScalar(node)) {
      Error(path, fmt::format("expected an integer ({}), got {}{}", type, KindOf(node),
                              Where(node.Mark())));
      return std::nullopt;
    }
    std::string_view text = node.Scalar();
    bool negative = false;
    if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
      negative = text.front() == '-';
      text.remove_prefix(1);
    }
    const bool digits_only =
        !text.empty() &&
        std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
    uint64_t magnitude = 0;
    if (digits_only) {
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), magnitude);
      if (ec == std::errc::result_out_of_range) {
        Error(path,
              fmt::format("{} is out of range for {}{}", node.Scalar(), type, Where(node.Mark())));
        return std::nullopt;
      }
      if (ec == std::errc() && end == text.data() + text.size()) {
        return std::make_pair(negative, magnitude);
      }
    }
    Error(path, fmt::format("expected an integer ({}), got \"{}\"{}", type, node.Scalar(),
                            Where(node.Mark())));
    return std::nullopt;
  }

  std::optional<uint64_t> ParseUnsigned(const YAML::Node& node, const std::string& path,
                                        uint64_t max, std::string_view type) {
    const auto parsed = ParseMagnitude(node, path, type);
    if (!parsed) return std::nullopt;
    const auto [negative, magnitude] = *parsed;
    if (negative && magnitude != 0) {
      Error(path, fmt::format("must not be negative, got {}{}", node.Scalar(), Where(node.Mark())));
      return std::nullopt;
    }
    if (magnitude > max) {
      Error(path, fmt::format("{} is out of range for {} (at most {}){}", node.Scalar(), type, max,
                              Where(node.Mark())));
      return std::nullopt;
    }
    return magnitude;
  }

  std::optional<int64_t> ParseSigned(const YAML::Node& node, const std::string& path, int64_t min,
                                     int64_t max, std::string_view type) {
    const auto parsed = ParseMagnitude(node, path, type);
    if (!parsed) return std::nullopt;
    const auto [negative, magnitude] = *parsed;
    // Compare magnitudes in uint64 so that min of int64 itself is representable.
    const uint64_t limit =
        negative ? static_cast<uint64_t>(-(min + 1)) + 1 : static_cast<uint64_t>(max);
    if (magnitude > limit) {
      Error(path, fmt::format("{} is out of range for {} ({}..{}){}", node.Scalar(), type, min, max,
                              Where(node.Mark())));
      return std::nullopt;
    }
    if (!negative) return static_cast<int64_t>(magnitude);
    return magnitude == 0 ? 0 : -static_cast<int64_t>(magnitude - 1) - 1;
  }

  std::optional<double> ParseDouble(const YAML::Node& node, const std::string& path) {
    if (IsPlainScalar(node)) {
      const std::string& text = node.Scalar();
      double value = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec == std::errc() && end == text.data() + text.size()) return value;
    }
    Error(path, fmt::format("expected a number, got {}{}",
                            node.IsScalar() ? fmt::format("\"{}\"", node.Scalar())
                                            : std::string(KindOf(node)),
                            Where(node.Mark())));
    return std::nullopt;
  }

  std::optional<bool> ParseBool(const YAML::Node& node, const std::string& path) {
    // YAML 1.2 core schema spellings only: "yes", "on" and "1" are YAML 1.1 and surprise readers.
    if (IsPlainScalar(node)) {
      const std::string& text = node.Scalar();
      if (text == "true" || text == "True" || text == "TRUE") return true;
      if (text == "false" || text == "False" || text == "FALSE") return false;
    }
    Error(path, fmt::format("expected true or false, got {}{}",
                            IsPlainScalar(node) ? fmt::format("\"{}\"", node.Scalar())
                                                : std::string(KindOf(node)),
                            Where(node.Mark())));
    return std::nullopt;
  }

  const pb::EnumValueDescriptor* ParseEnum(const YAML::Node& node, const std::string& path,
                                           const pb::EnumDescriptor& type) {
    if (node.IsScalar()) {
      const std::string& text = node.Scalar();
      const pb::EnumValueDescriptor* value = type.FindValueByName(text);
      const bool lower = std::none_of(text.begin(), text.end(),
                                      [](unsigned char c) { return std::isupper(c) != 0; });
      if (value == nullptr && lower && !text.empty()) {
        std::string full = EnumPrefix(type);
        for (const char c : text) {
          full += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        }
        value = type.FindValueByName(full);
      }
      if (value != nullptr && !IsUnspecified(*value)) return value;
    }
    std::string accepted;
    for (int i = 0; i < type.value_count(); ++i) {
      if (IsUnspecified(*type.value(i))) continue;
      if (!accepted.empty()) accepted += ", ";
      accepted += ShortName(*type.value(i));
    }
    if (!node.IsScalar()) {
      Error(path, fmt::format("expected a {} (one of: {}), got {}{}", type.name(), accepted,
                              KindOf(node), Where(node.Mark())));
      return nullptr;
    }
    Error(path, fmt::format("\"{}\" is not a {}; accepted: {} (or the full names, e.g. {}){}",
                            node.Scalar(), type.name(), accepted,
                            type.value(type.value_count() - 1)->name(), Where(node.Mark())));
    return nullptr;
  }

  FieldErrors errors_;
};

bool IsSameOrNested(std::string_view outer, std::string_view inner) {
  if (inner.rfind(outer, 0) != 0) return false;
  if (inner.size() == outer.size() || outer.empty()) return true;
  const char next = inner[outer.size()];
  return next == '.' || next == '[';
}

bool Related(std::string_view a, std::string_view b) {
  return IsSameOrNested(a, b) || IsSameOrNested(b, a);
}

}  // namespace

Result<v1::Config, FieldErrors> LoadYaml(std::string_view yaml_text,
                                         const ValidateOptions& options) {
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(std::string(yaml_text));
  } catch (const YAML::ParserException& e) {
    return outcome::failure(
        FieldErrors{FieldError{"", fmt::format("YAML syntax error at line {}, column {}: {}",
                                               e.mark.line + 1, e.mark.column + 1, e.msg)}});
  } catch (const std::exception& e) {
    return outcome::failure(
        FieldErrors{FieldError{"", fmt::format("cannot parse YAML: {}", e.what())}});
  }
  if (documents.size() > 1) {
    // A second document would otherwise be ignored silently, and with it whatever it configures.
    return outcome::failure(FieldErrors{
        FieldError{"", fmt::format("expected one YAML document, found {}", documents.size())}});
  }

  v1::Config config;
  FieldErrors conversion_errors;
  if (!documents.empty() && !documents.front().IsNull()) {
    Converter converter;
    try {
      converter.ConvertMessage(documents.front(), &config, "");
    } catch (const std::exception& e) {
      // yaml-cpp only throws here on internal errors; report rather than escape the module.
      return outcome::failure(
          FieldErrors{FieldError{"", fmt::format("cannot convert YAML: {}", e.what())}});
    }
    conversion_errors = converter.TakeErrors();
  }

  FieldErrors errors = conversion_errors;
  for (FieldError& error : ApplyDefaultsAndValidate(&config, options)) {
    const bool repeats = std::any_of(
        conversion_errors.begin(), conversion_errors.end(),
        [&](const FieldError& conversion) { return Related(conversion.path, error.path); });
    if (!repeats) errors.push_back(std::move(error));
  }
  if (!errors.empty()) return outcome::failure(std::move(errors));
  return outcome::success(std::move(config));
}

Result<v1::Config, FieldErrors> LoadFile(const std::filesystem::path& path,
                                         const ValidateOptions& options) {
  auto file_error = [&](std::string_view what) {
    return outcome::failure(
        FieldErrors{FieldError{"", fmt::format("cannot load {}: {}", path.string(), what)}});
  };
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (ec) return file_error(ec.message());
  if (!std::filesystem::is_regular_file(status)) return file_error("not a regular file");
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) return file_error(ec.message());
  if (size > kConfigFileSizeMax) {
    return file_error(fmt::format("larger than {} bytes", kConfigFileSizeMax));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return file_error("cannot open for reading");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return file_error("read error");
  return LoadYaml(text.str(), options);
}

}  // namespace paygate::config
