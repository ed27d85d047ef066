#pragma once

// Access to tests/vectors/providers/wechatpay from unit tests: raw files and fields of the vector
// JSON files (read through protobuf's Struct, the project's JSON reader).
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

namespace paygate::adapters::wechatpay::testing {

inline std::string VectorPath(const std::string& relative) {
  const char* root = std::getenv("PAYGATE_SOURCE_DIR");
  if (root == nullptr) throw std::runtime_error("PAYGATE_SOURCE_DIR is not set");
  return std::string(root) + "/tests/vectors/providers/wechatpay/" + relative;
}

inline std::string ReadVector(const std::string& relative) {
  std::ifstream in(VectorPath(relative), std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + relative);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline google::protobuf::Struct ReadJsonVector(const std::string& relative) {
  google::protobuf::Struct out;
  const std::string text = ReadVector(relative);
  if (!google::protobuf::util::JsonStringToMessage(text, &out).ok()) {
    throw std::runtime_error("bad JSON in " + relative);
  }
  return out;
}

// s["a"]["b"]... for objects; a numeric-string step indexes a list.
inline const google::protobuf::Value& At(const google::protobuf::Struct& s,
                                         std::initializer_list<std::string> path) {
  const google::protobuf::Value* value = nullptr;
  const google::protobuf::Struct* object = &s;
  for (const std::string& step : path) {
    if (object != nullptr) {
      auto it = object->fields().find(step);
      if (it == object->fields().end()) throw std::runtime_error("no field " + step);
      value = &it->second;
    } else {
      value = &value->list_value().values(std::stoi(step));
    }
    object = value->has_struct_value() ? &value->struct_value() : nullptr;
  }
  return *value;
}

inline std::string Str(const google::protobuf::Struct& s, std::initializer_list<std::string> path) {
  return At(s, path).string_value();
}

}  // namespace paygate::adapters::wechatpay::testing
