// The configuration rules for API keys and rate limits (config/validate.cc), and that the YAML
// loader reads them.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/loader.h"
#include "config/validate.h"

namespace paygate::config {
namespace {

using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

v1::Config Valid() {
  v1::Config config;
  for (v1::Listener* listener : {config.mutable_api(), config.mutable_admin()}) {
    listener->set_address("127.0.0.1");
    listener->mutable_tls()->set_cert_file("server.crt");
    listener->mutable_tls()->set_key_file("server.key");
    listener->mutable_tls()->set_client_ca_file("ca.crt");
  }
  config.mutable_api()->set_port(8443);
  config.mutable_admin()->set_port(9443);
  config.mutable_database()->set_url("postgresql://paygate@127.0.0.1/paygate");
  // API key secrets are keyring entries, referred to by id.
  config.mutable_keys()->mutable_master_key()->set_id("m");
  config.mutable_keys()->mutable_master_key()->set_file("master.key");
  for (const char* id : {"api.batch", "api.f"}) {
    v1::KeyringEntry* entry = config.mutable_keys()->add_entries();
    entry->set_id(id);
    entry->set_file(std::string("/etc/paygate/keys/") + id);
  }
  return config;
}

ValidateOptions NoEnv() {
  ValidateOptions options;
  options.env = [](std::string_view) { return std::nullopt; };
  return options;
}

std::vector<std::string> Paths(const FieldErrors& errors) {
  std::vector<std::string> paths;
  for (const auto& e : errors) paths.push_back(e.path);
  return paths;
}

v1::Principal* AddPrincipal(v1::Config* config, const std::string& name, const std::string& cn) {
  v1::Principal* p = config->add_principals();
  p->set_name(name);
  p->set_client_cert_common_name(cn);
  p->add_roles(v1::ROLE_SALES);
  return p;
}

// Proves a principal may authenticate by API key alone, and that the burst defaults to the rate.
TEST(AuthConfigTest, KeyOnlyPrincipalAndDefaults) {
  v1::Config config = Valid();
  v1::Principal* p = AddPrincipal(&config, "batch", "");
  v1::ApiKey* key = p->add_api_keys();
  key->set_key_id("batch-2026.1");
  key->set_secret_key_id("api.batch");
  key->mutable_rate_limit()->set_requests_per_second(5);
  p->mutable_rate_limit()->set_requests_per_second(50);
  p->mutable_rate_limit()->set_burst(100);
  EXPECT_THAT(ApplyDefaultsAndValidate(&config, NoEnv()), IsEmpty());
  EXPECT_EQ(config.principals(0).api_keys(0).rate_limit().burst(), 5u);
  EXPECT_EQ(config.principals(0).rate_limit().burst(), 100u);
}

// Proves each rule is enforced with its field path: a principal needs a certificate name or a
// key; key ids are well-formed and unique across principals; a secret key id is required and
// names a keyring entry; a rate
// limit needs a rate and stays within bounds.
TEST(AuthConfigTest, Rules) {
  v1::Config config = Valid();
  AddPrincipal(&config, "nothing", "");  // [0] neither certificate nor key
  v1::Principal* a = AddPrincipal(&config, "a", "a");
  a->add_api_keys()->set_key_id("shared");      // [1].api_keys[0]: no secret_key_id
  a->add_api_keys()->set_secret_key_id("api.f");  // [1].api_keys[1]: no key_id
  v1::ApiKey* bad_id = a->add_api_keys();         // [1].api_keys[2]: bad id, unknown secret
  bad_id->set_key_id("has space");
  bad_id->set_secret_key_id("api.missing");
  v1::Principal* b = AddPrincipal(&config, "b", "b");
  v1::ApiKey* dup = b->add_api_keys();  // [2].api_keys[0]: duplicate of a's
  dup->set_key_id("shared");
  dup->set_secret_key_id("api.f");
  dup->mutable_rate_limit()->set_burst(3);                    // no rate
  b->mutable_rate_limit()->set_requests_per_second(2000000);  // above the range
  const FieldErrors errors = ApplyDefaultsAndValidate(&config, NoEnv());
  EXPECT_THAT(Paths(errors),
              UnorderedElementsAre(
                  "principals[0].client_cert_common_name",
                  "principals[1].api_keys[0].secret_key_id", "principals[1].api_keys[1].key_id",
                  "principals[1].api_keys[2].key_id", "principals[1].api_keys[2].secret_key_id",
                  "principals[2].api_keys[0].key_id",
                  "principals[2].api_keys[0].rate_limit.requests_per_second",
                  "principals[2].rate_limit.requests_per_second"));
}

// Proves the YAML loader maps api_keys and rate_limit onto the schema.
TEST(AuthConfigTest, YamlLoads) {
  const std::string yaml = R"(
api: {address: 127.0.0.1, port: 8443, tls: {cert_file: c, key_file: k, client_ca_file: ca}}
admin: {address: 127.0.0.1, port: 9443, tls: {cert_file: c, key_file: k, client_cert: none}}
database: {url: "postgresql://paygate@127.0.0.1/paygate"}
principals:
  - name: batch
    roles: [sales]
    rate_limit: {requests_per_second: 10, burst: 20}
    api_keys:
      - {key_id: k1, secret_key_id: api.k1, rate_limit: {requests_per_second: 3}}
keys:
  master_key: {id: m, file: /run/secrets/master.key}
  entries: [{id: api.k1, file: /run/secrets/k1}]
)";
  auto loaded = LoadYaml(yaml, NoEnv());
  ASSERT_TRUE(loaded) << FormatErrors(loaded.error());
  const v1::Principal& p = loaded.value().principals(0);
  EXPECT_EQ(p.rate_limit().requests_per_second(), 10u);
  EXPECT_EQ(p.rate_limit().burst(), 20u);
  ASSERT_EQ(p.api_keys_size(), 1);
  EXPECT_EQ(p.api_keys(0).key_id(), "k1");
  EXPECT_EQ(p.api_keys(0).secret_key_id(), "api.k1");
  EXPECT_EQ(p.api_keys(0).rate_limit().burst(), 3u);
}

}  // namespace
}  // namespace paygate::config
