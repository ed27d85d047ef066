#pragma once

// Reading the Alipay vectors (tests/vectors/providers/alipay) from the source tree, and the keys
// the tests sign with. Throws on a missing file: a vector that cannot be read is a failed test.
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include <google/protobuf/util/json_util.h>

#include "adapters/alipay/signing.h"
#include "adapters/common/crypto.h"
#include "tests/unit/alipay/vectors.pb.h"

namespace paygate::adapters::alipay::testing {

inline std::string VectorPath(const std::string& relative) {
  const char* root = std::getenv("PAYGATE_SOURCE_DIR");
  if (root == nullptr) throw std::runtime_error("PAYGATE_SOURCE_DIR is not set");
  return std::string(root) + "/tests/vectors/providers/alipay/" + relative;
}

inline std::string ReadVector(const std::string& relative) {
  std::ifstream in(VectorPath(relative), std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + relative);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

template <class Message>
Message LoadJson(const std::string& relative) {
  Message message;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const std::string text = ReadVector(relative);
  if (!google::protobuf::util::JsonStringToMessage(text, &message, options).ok()) {
    throw std::runtime_error("cannot parse " + relative);
  }
  return message;
}

inline paygate::tests::alipay::NodeVectors NodeVectors() {
  return LoadJson<paygate::tests::alipay::NodeVectors>("nodejs/vectors.json");
}
inline paygate::tests::alipay::JavaVectors JavaVectors() {
  return LoadJson<paygate::tests::alipay::JavaVectors>("java-all/vectors.json");
}

inline crypto::PrivateKey PrivateKeyFile(const std::string& relative) {
  auto key = crypto::PrivateKey::FromPem(ReadVector(relative));
  if (!key) throw std::runtime_error(relative + ": " + key.error().message);
  return key.value();
}
inline crypto::PublicKey PublicKeyFile(const std::string& relative) {
  auto key = crypto::PublicKey::FromPem(ReadVector(relative));
  if (!key) throw std::runtime_error(relative + ": " + key.error().message);
  return key.value();
}
inline crypto::Certificate CertFile(const std::string& relative) {
  auto cert = crypto::Certificate::Parse(ReadVector(relative));
  if (!cert) throw std::runtime_error(relative + ": " + cert.error().message);
  return cert.value();
}

// A map's entries as parameters (order is irrelevant: every sign content sorts them).
template <class Map>
Params ToParams(const Map& map) {
  Params params;
  for (const auto& [key, value] : map) params.emplace_back(key, value);
  return params;
}

// The merchant app of the derived vectors (nodejs test app key) and, standing in for Alipay's own
// key (no Alipay private key is public), the stable-environment app key of the nodejs SDK.
inline crypto::PrivateKey AppKey() { return PrivateKeyFile("nodejs/app-private-key.pem"); }
inline crypto::PublicKey AppPublicKey() { return PublicKeyFile("nodejs/app-public-key.pem"); }
inline crypto::PrivateKey FakeAlipayKey() {
  return PrivateKeyFile("nodejs/app_2014060600164699_rsa2_private_key_no_wrapper.pem");
}
inline crypto::PublicKey FakeAlipayPublicKey() {
  return PublicKeyFile("nodejs/app_2014060600164699_rsa2_public_key_no_wrapper.pem");
}

}  // namespace paygate::adapters::alipay::testing
