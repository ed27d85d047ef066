// Keys end to end (issue 7 "Keys"): paygated and paygatectl as black boxes against a private
// PostgreSQL cluster. The daemon refuses key files others can read, loads the keyring and the data
// key of personal data (creating it on first start), and picks up a version added by
// `paygatectl keys rotate` on SIGHUP; `keys list` shows ids and versions, never key bytes;
// `keys rewrap` walks the registered encrypted columns.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/e2e/collections/harness.h"
#include "tests/integration/edge/edge_fixture.h"
#include "tests/testing/pg_cluster.h"
#include "tests/testing/ports.h"

namespace paygate::testing::e2e {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

constexpr std::string_view kWebhookSecret = "whsec-keys-e2e-never-printed-0123456789";
constexpr std::string_view kMasterHex =
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

std::string BinaryDir() {
  const char* dir = std::getenv("PAYGATE_BINARY_DIR");
  return dir != nullptr ? dir : ".";
}

class KeysE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / fmt::format("paygate-keys-e2e-{}", ::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    pki_ = MakeDevPki(dir_ / "pki");
    WriteFile0600(dir_ / "master.key", fmt::format("{}\n", kMasterHex));
    WriteFile0600(dir_ / "webhook-v1", std::string(kWebhookSecret));
    static int databases = 0;
    url_ = SharedPgCluster().CreateDatabase("e2e_keys" + std::to_string(++databases));
    ASSERT_FALSE(url_.empty());
    config_ = WriteConfig("paygated.yaml");
    auto migrate = Ctl({"migrate"}, "migrate.log");
    ASSERT_EQ(migrate->Wait(60s), 0) << migrate->Output();
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path WriteConfig(const std::string& name) {
    const std::string pki = pki_.string();
    const std::string yaml = fmt::format(
        R"(api:
  address: 127.0.0.1
  port: {api}
  tls: {{cert_file: {pki}/server.crt, key_file: {pki}/server.key, client_ca_file: {pki}/ca.crt}}
admin:
  address: 127.0.0.1
  port: {admin}
  tls: {{cert_file: {pki}/server.crt, key_file: {pki}/server.key, client_cert: none}}
database:
  url: "postgresql://nobody@127.0.0.1:1/none"
server:
  drain_timeout_ms: 1000
principals:
  - {{name: sales-platform, client_cert_common_name: sales-platform, roles: [sales]}}
keys:
  master_key: {{id: e2e-master, version: 1, file: {dir}/master.key}}
  pii_data_key: pii
  entries:
    - {{id: webhook.sales, file: {dir}/webhook-v1}}
)",
        fmt::arg("api", FreeLoopbackPort()), fmt::arg("admin", FreeLoopbackPort()), fmt::arg("pki", pki),
        fmt::arg("dir", dir_.string()));
    const fs::path path = dir_ / name;
    std::ofstream(path) << yaml;
    return path;
  }

  std::unique_ptr<ChildProcess> Ctl(std::vector<std::string> args, const std::string& log) {
    args.insert(args.begin(), BinaryDir() + "/gateway/paygatectl");
    args.push_back("--config");
    args.push_back(config_.string());
    return std::make_unique<ChildProcess>(
        std::move(args), std::vector<std::string>{"PAYGATE_DATABASE_URL=" + url_}, dir_ / log);
  }

  std::unique_ptr<ChildProcess> Daemon(const std::string& log) {
    return std::make_unique<ChildProcess>(
        std::vector<std::string>{BinaryDir() + "/gateway/paygated", "--config", config_.string()},
        std::vector<std::string>{"PAYGATE_DATABASE_URL=" + url_}, dir_ / log);
  }

  // Runs paygatectl to completion; its output, and the exit status in `exit`.
  std::string CtlOutput(std::vector<std::string> args, const std::string& log, int& exit) {
    auto ctl = Ctl(std::move(args), log);
    exit = ctl->Wait(60s);
    return ctl->Output();
  }

  fs::path dir_;
  fs::path pki_;
  fs::path config_;
  std::string url_;
};

// The daemon creates the personal-data key at v1 on first start; `keys rotate` adds v2 in the
// database, which the running daemon takes on SIGHUP (new writes use it); `keys list` shows both
// versions and the keyring's ids, never a key's bytes; `keys rewrap` walks what is registered.
TEST_F(KeysE2eTest, DaemonLoadsDataKeyAndTakesARotationOnSighup) {
  int exit = -1;
  auto daemon = Daemon("paygated.log");
  ASSERT_TRUE(WaitUntil([&] { return daemon->Output().find(" ready: ") != std::string::npos; },
                        60s))
      << daemon->Output();
  EXPECT_THAT(daemon->Output(), HasSubstr("data key pii at v1"));
  Sql sql(url_);
  EXPECT_EQ(sql.Count("SELECT count(*) FROM key_data_keys WHERE name = 'pii'"), 1);

  std::string out = CtlOutput({"keys", "rotate", "pii"}, "rotate.log", exit);
  EXPECT_EQ(exit, 0) << out;
  EXPECT_THAT(out, HasSubstr("data key pii now at v2"));
  EXPECT_EQ(sql.Count("SELECT count(*) FROM key_data_keys WHERE name = 'pii'"), 2);

  daemon->Signal(SIGHUP);
  EXPECT_TRUE(WaitUntil(
      [&] { return daemon->Output().find("data key pii now at v2") != std::string::npos; }, 30s))
      << daemon->Output();

  out = CtlOutput({"keys", "list"}, "list.log", exit);
  EXPECT_EQ(exit, 0) << out;
  EXPECT_THAT(out, HasSubstr("master key e2e-master v1"));
  EXPECT_THAT(out, HasSubstr("keyring webhook.sales v1 file"));
  EXPECT_THAT(out, HasSubstr("data key pii v1 wrapped by e2e-master v1"));
  EXPECT_THAT(out, HasSubstr("data key pii v2 wrapped by e2e-master v1"));

  // Nothing is registered yet (payouts register their columns): a full rewrap has nothing to do,
  // and a column that is not registered is an error, not a silent success.
  out = CtlOutput({"keys", "rewrap"}, "rewrap.log", exit);
  EXPECT_EQ(exit, 0) << out;
  out = CtlOutput({"keys", "rewrap", "--column", "payouts.nothing"}, "rewrap-bad.log", exit);
  EXPECT_EQ(exit, 1) << out;
  EXPECT_THAT(out, HasSubstr("payouts.nothing"));

  daemon->Signal(SIGTERM);
  EXPECT_EQ(daemon->Wait(30s), 0) << daemon->Output();
  // The key bytes appear in no output: the daemon's log, list, rotate.
  for (const std::string log : {"paygated.log", "list.log", "rotate.log"}) {
    std::ifstream in(dir_ / log);
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    EXPECT_THAT(text, Not(HasSubstr(std::string(kWebhookSecret)))) << log;
    EXPECT_THAT(text, Not(HasSubstr(std::string(kMasterHex)))) << log;
  }
}

// A master key or keyring file that group or others can read stops the daemon before anything
// starts, naming the key and file, never printing the bytes.
TEST_F(KeysE2eTest, DaemonRefusesKeyFilesOthersCanRead) {
  ::chmod((dir_ / "webhook-v1").c_str(), 0640);
  auto daemon = Daemon("open-entry.log");
  EXPECT_EQ(daemon->Wait(60s), 1) << daemon->Output();
  EXPECT_THAT(daemon->Output(), HasSubstr("keys.entries[0] (webhook.sales v1"));
  EXPECT_THAT(daemon->Output(), HasSubstr("chmod 600"));
  EXPECT_THAT(daemon->Output(), Not(HasSubstr(std::string(kWebhookSecret))));
  ::chmod((dir_ / "webhook-v1").c_str(), 0600);

  ::chmod((dir_ / "master.key").c_str(), 0644);
  daemon = Daemon("open-master.log");
  EXPECT_EQ(daemon->Wait(60s), 1) << daemon->Output();
  EXPECT_THAT(daemon->Output(), HasSubstr("keys.master_key (e2e-master v1"));
  EXPECT_THAT(daemon->Output(), Not(HasSubstr(std::string(kMasterHex))));
  // paygatectl refuses the same master key for what needs it.
  int exit = -1;
  const std::string out = CtlOutput({"keys", "rotate", "pii"}, "rotate-open.log", exit);
  EXPECT_EQ(exit, 1) << out;
  EXPECT_THAT(out, HasSubstr("keys.master_key"));
}

}  // namespace
}  // namespace paygate::testing::e2e
