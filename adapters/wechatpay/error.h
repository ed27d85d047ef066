#pragma once

// The error of WeChat Pay's pure codec functions.
#include <string>
#include <utility>

#include "config/result.h"

namespace paygate::adapters::wechatpay {

// Why a WeChat Pay codec step failed, for logs (never key material or payloads). A distinct type:
// Result<std::string, std::string> could not tell its value from its error.
struct Error {
  std::string message;
};
template <class T>
using WxResult = outcome::result<T, Error, outcome::policy::terminate>;
inline Error Fail(std::string message) { return Error{std::move(message)}; }

}  // namespace paygate::adapters::wechatpay
