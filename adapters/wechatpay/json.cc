#include "adapters/wechatpay/json.h"

#include <google/protobuf/util/json_util.h>

namespace paygate::adapters::wechatpay {

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string out;
  // Printing a message we built cannot fail.
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

bool FromJson(std::string_view json, google::protobuf::Message* message) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  return google::protobuf::util::JsonStringToMessage(
             google::protobuf::StringPiece(json.data(), json.size()), message, options)
      .ok();
}

bool FromJsonStrict(std::string_view json, google::protobuf::Message* message) {
  return google::protobuf::util::JsonStringToMessage(
             google::protobuf::StringPiece(json.data(), json.size()), message)
      .ok();
}

}  // namespace paygate::adapters::wechatpay
