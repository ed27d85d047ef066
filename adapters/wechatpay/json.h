#pragma once

// Protobuf JSON mapping with WeChat Pay's conventions: proto field names on the wire, unknown
// fields ignored when reading WeChat's bodies (it adds fields without notice).
#include <string>
#include <string_view>

#include <google/protobuf/message.h>

namespace paygate::adapters::wechatpay {

std::string ToJson(const google::protobuf::Message& message);
// Lenient: unknown fields are ignored.
bool FromJson(std::string_view json, google::protobuf::Message* message);
// Strict: an unknown field is an error (the simulator reading requests).
bool FromJsonStrict(std::string_view json, google::protobuf::Message* message);

}  // namespace paygate::adapters::wechatpay
