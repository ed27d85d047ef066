// End-to-end tests of the built paygated and paygatectl binaries, driven only through their command
// line, their HTTPS listeners and signals, against a private PostgreSQL cluster.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/integration/edge/edge_fixture.h"
#include "tests/testing/pg_cluster.h"
#include "tests/testing/ports.h"

namespace paygate::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

std::string BinaryDir() {
  const char* dir = std::getenv("PAYGATE_BINARY_DIR");
  return dir != nullptr ? dir : ".";
}
std::string SourceDir() {
  const char* dir = std::getenv("PAYGATE_SOURCE_DIR");
  return dir != nullptr ? dir : ".";
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A child process with its stdout and stderr in one file.
class Process {
 public:
  Process(std::vector<std::string> argv, std::vector<std::string> env, fs::path output)
      : output_(std::move(output)) {
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(output_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~Process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      Wait(5s);
    }
  }
  void Signal(int sig) { ::kill(pid_, sig); }
  // The exit status, or -1 if the process is still running after `bound`.
  int Wait(std::chrono::milliseconds bound) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (pid_ > 0) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = 0;
        exit_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) return -1;
      std::this_thread::sleep_for(20ms);
    }
    return exit_;
  }
  std::string Output() const { return ReadFile(output_); }

 private:
  pid_t pid_ = -1;
  int exit_ = -1;
  fs::path output_;
};

class DaemonTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / fmt::format("paygate-e2e-{}", ::getpid()));
    fs::create_directories(*dir_);
    MakeDevPki(*dir_ / "pki");
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }

  // A configuration like config/examples/local.yaml, on free ports, with the test PKI.
  fs::path WriteConfig() {
    api_port_ = FreeLoopbackPort();
    admin_port_ = FreeLoopbackPort();
    const fs::path pki = *dir_ / "pki";
    const std::string yaml = fmt::format(R"(
api:
  address: 127.0.0.1
  port: {api}
  tls: {{cert_file: {pki}/server.crt, key_file: {pki}/server.key, client_ca_file: {pki}/ca.crt}}
admin:
  address: 127.0.0.1
  port: {admin}
  tls: {{cert_file: {pki}/server.crt, key_file: {pki}/server.key, client_cert: none}}
database:
  url: "postgresql://nobody@127.0.0.1:1/none"
  health_check_interval_ms: 200
  connect_timeout_ms: 1000
server:
  drain_timeout_ms: 3000
principals:
  - {{name: sales-platform, client_cert_common_name: sales-platform, roles: [sales]}}
  - {{name: finance, client_cert_common_name: finance, roles: [finance]}}
)",
                                         fmt::arg("api", api_port_), fmt::arg("admin", admin_port_),
                                         fmt::arg("pki", pki.string()));
    const fs::path path = *dir_ / "paygated.yaml";
    std::ofstream(path) << yaml;
    return path;
  }

  std::unique_ptr<Process> Run(const std::string& binary, std::vector<std::string> args,
                               const std::string& database_url, const std::string& log_name) {
    args.insert(args.begin(), BinaryDir() + "/gateway/" + binary);
    return std::make_unique<Process>(
        std::move(args), std::vector<std::string>{"PAYGATE_DATABASE_URL=" + database_url},
        *dir_ / log_name);
  }

  // Polls GET `target` on the admin listener until it answers `status` or `bound` passes.
  bool AdminAnswers(std::string_view target, edge::http::status status,
                    std::chrono::milliseconds bound) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (std::chrono::steady_clock::now() < deadline) {
      ClientOptions options;
      options.ca = *dir_ / "pki" / "ca.crt";
      TlsClient client(admin_port_, options);
      if (!client.Connect()) {
        try {
          if (client.Get(target).result() == status) return true;
        } catch (const std::exception&) {
        }
      }
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  ClientOptions As(const std::string& principal) const {
    ClientOptions options;
    options.ca = *dir_ / "pki" / "ca.crt";
    options.cert = *dir_ / "pki" / (principal + ".crt");
    options.key = *dir_ / "pki" / (principal + ".key");
    return options;
  }
  ClientOptions Sales() const { return As("sales-platform"); }

  static fs::path* dir_;
  std::uint16_t api_port_ = 0;
  std::uint16_t admin_port_ = 0;
};

fs::path* DaemonTest::dir_ = nullptr;

// --version prints the version; --check-config accepts every shipped example and rejects a bad file
// listing all of its errors with their field paths.
TEST_F(DaemonTest, VersionAndCheckConfig) {
  auto version = Run("paygated", {"--version"}, "", "version.log");
  EXPECT_EQ(version->Wait(10s), 0);
  EXPECT_THAT(version->Output(), HasSubstr("paygated 0."));

  for (const auto& entry : fs::directory_iterator(SourceDir() + "/config/examples")) {
    auto check = Run("paygated", {"--check-config", entry.path().string()}, "", "check.log");
    EXPECT_EQ(check->Wait(10s), 0) << entry.path() << "\n" << check->Output();
  }

  const fs::path bad = *dir_ / "bad.yaml";
  std::ofstream(bad) << "api:\n  port: seventy\n  limitz: {}\nadmin: {address: 127.0.0.1}\n";
  auto check = Run("paygated", {"--check-config", bad.string()}, "", "bad.log");
  EXPECT_EQ(check->Wait(10s), 1);
  const std::string out = check->Output();
  EXPECT_THAT(out, HasSubstr("api.port"));
  EXPECT_THAT(out, HasSubstr("api.limitz"));
  EXPECT_THAT(out, HasSubstr("admin.port"));
}

// The daemon refuses to start on an unmigrated schema and says how to fix it.
TEST_F(DaemonTest, RefusesUnmigratedSchema) {
  auto& cluster = SharedPgCluster();
  const std::string url = cluster.CreateDatabase("e2e_unmigrated");
  auto daemon = Run("paygated", {"--config", WriteConfig().string()}, url, "unmigrated.log");
  EXPECT_EQ(daemon->Wait(30s), 1);
  EXPECT_THAT(daemon->Output(), HasSubstr("paygatectl migrate"));
}

// The daemon refuses to start when the server runs with fsync off, naming the setting.
TEST_F(DaemonTest, RefusesUnsafeDurability) {
  auto unsafe = PgCluster::Start({.extra_settings = {{"fsync", "off"}}});
  ASSERT_NE(unsafe, nullptr);
  const std::string url = unsafe->CreateDatabase("e2e_unsafe");
  auto daemon = Run("paygated", {"--config", WriteConfig().string()}, url, "unsafe.log");
  EXPECT_EQ(daemon->Wait(30s), 1);
  EXPECT_THAT(daemon->Output(), HasSubstr("fsync"));
}

// `paygatectl ledger verify` passes on a sound book and exits 3 naming the account when a balance
// was changed through SQL behind the journal's back; trial-balance prints the accounts and totals.
TEST_F(DaemonTest, LedgerVerifyCatchesTamperingThroughSql) {
  auto& cluster = SharedPgCluster();
  const std::string url = cluster.CreateDatabase("e2e_ledger");
  const fs::path config = WriteConfig();
  auto migrate = Run("paygatectl", {"migrate", "--config", config.string()}, url, "lmigrate.log");
  ASSERT_EQ(migrate->Wait(60s), 0) << migrate->Output();
  cluster.Exec(
      "INSERT INTO ledger_accounts (id, type, currency, code, name) VALUES "
      "(1, 'asset', 'CNY', 1, 'provider_clearing:sandbox:m1'), "
      "(2, 'liability', 'CNY', 2, 'premiums_received')",
      "e2e_ledger");

  auto sound =
      Run("paygatectl", {"ledger", "verify", "--config", config.string()}, url, "verify1.log");
  EXPECT_EQ(sound->Wait(60s), 0) << sound->Output();
  EXPECT_THAT(sound->Output(), HasSubstr("2 accounts and 0 batches checked: sound"));

  cluster.Exec(
      "SET session_replication_role = replica; "
      "UPDATE ledger_accounts SET credits_posted = 500 WHERE id = 2; "
      "SET session_replication_role = origin",
      "e2e_ledger");
  auto tampered =
      Run("paygatectl", {"ledger", "verify", "--config", config.string()}, url, "verify2.log");
  EXPECT_EQ(tampered->Wait(60s), 3) << tampered->Output();
  EXPECT_THAT(tampered->Output(), HasSubstr("DIFFERENCE"));
  EXPECT_THAT(tampered->Output(), HasSubstr("account 2"));

  auto trial = Run("paygatectl",
                   {"ledger", "trial-balance", "--currency", "CNY", "--config", config.string()},
                   url, "trial.log");
  EXPECT_EQ(trial->Wait(60s), 0) << trial->Output();
  EXPECT_THAT(trial->Output(), HasSubstr("premiums_received"));
  EXPECT_THAT(trial->Output(), HasSubstr("total CNY"));

  auto close = Run("paygatectl", {"ledger", "close-account", "1", "--config", config.string()},
                   url, "close.log");
  EXPECT_EQ(close->Wait(60s), 0) << close->Output();
  EXPECT_THAT(close->Output(), HasSubstr("account 1 closed"));
  EXPECT_THAT(cluster.Exec("DO $$ BEGIN IF NOT (SELECT closed FROM ledger_accounts WHERE id = 1) "
                           "THEN RAISE EXCEPTION 'still open'; END IF; END $$",
                           "e2e_ledger"),
              ::testing::IsEmpty());
  auto missing = Run("paygatectl",
                     {"ledger", "reopen-account", "999", "--config", config.string()}, url,
                     "reopen.log");
  EXPECT_EQ(missing->Wait(60s), 1) << missing->Output();

  auto bad_time = Run("paygatectl",
                      {"ledger", "trial-balance", "--currency", "CNY", "--at", "yesterday",
                       "--config", config.string()},
                      url, "trial-bad.log");
  EXPECT_EQ(bad_time->Wait(60s), 2);
  EXPECT_THAT(bad_time->Output(), HasSubstr("--at must be UTC"));
}

// `paygatectl provider verify-callback` verifies and decodes a WeChat Pay callback captured as
// files (the DERIVED vector, signed and encrypted with the Java SDK's test keys) with a configured
// account's keys, at the instant it was sent; one changed byte of the body, a stale instant or a
// changed signature each make it exit 1 with the reason. `recon parse` prints a real bill's records
// and totals, and refuses a file that is not the provider's format.
TEST_F(DaemonTest, ProviderCallbackAndBillDiagnostics) {
  const std::string vectors = SourceDir() + "/tests/vectors/providers/wechatpay/";
  const fs::path keys = *dir_ / "wx";
  fs::create_directories(keys);
  auto write_0600 = [&](const std::string& name, const std::string& content) {
    const fs::path path = keys / name;
    std::ofstream(path) << content;
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
    return path.string();
  };
  auto read = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string key_file = write_0600("apiclient.key", read(vectors + "java/merchant_private_key.pem"));
  const std::string apiv3_file = write_0600("apiv3.key", "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb");
  const std::string master_file = write_0600("master.key", std::string(64, '7'));
  const fs::path config = WriteConfig();
  std::ofstream(config, std::ios::app) << fmt::format(R"(providers:
  - provider: wechatpay
    merchant_account: wx-main
    wechatpay:
      mchid: "1234567891"
      appid: wxd678efh567hg6787
      merchant_serial_no: 5F1C72E2A8931B72A2E13AF8DEE92471EB397115
      merchant_private_key_id: wx.apiclient
      apiv3_key_id: wx.apiv3
      platform_certificate_files: [{}]
keys:
  master_key: {{id: e2e-master, file: {}}}
  entries:
    - {{id: wx.apiclient, file: {}}}
    - {{id: wx.apiv3, file: {}}}
)", vectors + "java/wechat_pay_certificate.pem", master_file, key_file, apiv3_file);
  const std::string signature =
      "aB6IHSFwJu1aFH7Op9FESpgMokLKy/cwGng+U2NhDdJZQSm67Dz/cKo6YOSoRUEcV5MJVv2AS0cWOihVzGTB4bDoxZf3kP+Ze0yZ";
  const std::string full_signature = [&] {
    const std::string json = read(vectors + "derived/vectors.json");
    const std::size_t at = json.find("\"Wechatpay-Signature\": \"");
    const std::size_t start = at + std::string("\"Wechatpay-Signature\": \"").size();
    return json.substr(start, json.find('"', start) - start);
  }();
  ASSERT_EQ(full_signature.rfind(signature, 0), 0u);
  auto headers_with = [&](const std::string& sig) {
    const fs::path path = keys / "headers.txt";
    std::ofstream(path) << "POST /v1/callbacks/wechatpay/wx-main HTTP/1.1\r\n"
                        << "Content-Type: application/json\r\n"
                        << "Wechatpay-Timestamp: 1795737606\r\n"
                        << "Wechatpay-Nonce: 5K8264ILTKCH16CQ2502SI8ZNMTM67VS\r\n"
                        << "Wechatpay-Serial: 440024045C4A427599D09BB4E3DE0279F2E813FD\r\n"
                        << "Wechatpay-Signature: " << sig << "\r\n"
                        << "Wechatpay-Signature-Type: WECHATPAY2-SHA256-RSA2048\r\n";
    return path.string();
  };
  const std::string body = vectors + "derived/notify_transaction_success_body.json";
  auto verify = [&](const std::string& headers, const std::string& body_file, const std::string& at,
                    const std::string& log) {
    return Run("paygatectl",
               {"provider", "verify-callback", "--provider", "wechatpay", "--config",
                config.string(), "--headers", headers, "--body", body_file, "--at", at},
               "", log);
  };
  auto good = verify(headers_with(full_signature), body, "1795737606", "verify-good.log");
  EXPECT_EQ(good->Wait(30s), 0) << good->Output();
  EXPECT_THAT(good->Output(), HasSubstr(R"("kind":"payment")"));
  EXPECT_THAT(good->Output(), HasSubstr(R"("reference":"POL2026112700000001")"));
  EXPECT_THAT(good->Output(), HasSubstr(R"("outcome":"succeeded")"));
  EXPECT_THAT(good->Output(), HasSubstr(R"("provider_transaction_id":"4200001234202611270000000001")"));
  EXPECT_THAT(good->Output(), HasSubstr(R"("amount_minor":"12800")"));

  auto stale = verify(headers_with(full_signature), body, "1795738606", "verify-stale.log");
  EXPECT_EQ(stale->Wait(30s), 1) << stale->Output();
  EXPECT_THAT(stale->Output(), HasSubstr("verification failed"));

  std::string tampered_body = read(body);
  tampered_body[tampered_body.size() / 2] ^= 0x01;
  const fs::path tampered = keys / "tampered.json";
  std::ofstream(tampered) << tampered_body;
  auto changed = verify(headers_with(full_signature), tampered.string(), "1795737606",
                        "verify-body.log");
  EXPECT_EQ(changed->Wait(30s), 1) << changed->Output();

  std::string other_signature = full_signature;
  other_signature[10] = other_signature[10] == 'A' ? 'B' : 'A';
  auto forged = verify(headers_with(other_signature), body, "1795737606", "verify-sig.log");
  EXPECT_EQ(forged->Wait(30s), 1) << forged->Output();

  auto bill = Run("paygatectl",
                  {"recon", "parse", "--provider", "wechatpay", vectors + "php/tradebill_ALL_sample.csv"},
                  "", "recon.log");
  EXPECT_EQ(bill->Wait(30s), 0) << bill->Output();
  EXPECT_THAT(bill->Output(), HasSubstr(R"("merchant_reference":"autotest_20190219015157_13391")"));
  EXPECT_THAT(bill->Output(), HasSubstr(R"({"records":"45","payment_count":"31","payment_amount_minor":"47")"));
  auto wrong = Run("paygatectl",
                   {"recon", "parse", "--provider", "alipay", vectors + "php/tradebill_ALL_sample.csv"},
                   "", "recon-wrong.log");
  EXPECT_EQ(wrong->Wait(30s), 1) << wrong->Output();
}

// The whole life of a daemon: migrate, start, authenticated API call, metrics, /readyz following
// the database down and up again without a restart, old TLS refused, SIGHUP reload, SIGTERM drain
// to exit 0.
TEST_F(DaemonTest, LifecycleAgainstRealDatabase) {
  auto cluster = PgCluster::Start();
  ASSERT_NE(cluster, nullptr);
  const std::string url = cluster->CreateDatabase("e2e_life");
  const fs::path config = WriteConfig();
  auto migrate = Run("paygatectl", {"migrate", "--config", config.string()}, url, "migrate.log");
  ASSERT_EQ(migrate->Wait(60s), 0) << migrate->Output();
  EXPECT_THAT(migrate->Output(), HasSubstr("migrations applied"));

  // The daemon creates its chart of accounts (premiums_received, ...) at start-up; account 2 is
  // one more, for the balance and statement reads below.
  cluster->Exec(
      "INSERT INTO ledger_accounts (id, type, currency, code, name) VALUES "
      "(2, 'asset', 'CNY', 2, 'e2e_probe')",
      "e2e_life");
  auto daemon = Run("paygated", {"--config", config.string()}, url, "daemon.log");
  ASSERT_TRUE(AdminAnswers("/healthz", edge::http::status::ok, 30s)) << daemon->Output();
  EXPECT_TRUE(AdminAnswers("/readyz", edge::http::status::ok, 5s));

  TlsClient sales(api_port_, Sales());
  ASSERT_FALSE(sales.Connect());
  const edge::Response whoami = sales.Get("/v1/whoami");
  EXPECT_EQ(whoami.result(), edge::http::status::ok);
  EXPECT_THAT(whoami.body(), HasSubstr("sales-platform"));

  {
    ClientOptions options;
    options.ca = *dir_ / "pki" / "ca.crt";
    TlsClient scraper(admin_port_, options);
    ASSERT_FALSE(scraper.Connect());
    const std::string metrics = scraper.Get("/metrics").body();
    EXPECT_THAT(metrics, HasSubstr("paygate_http_requests_total{listener=\"api\""));
    EXPECT_THAT(metrics, HasSubstr("paygate_http_request_duration_seconds_bucket"));
    EXPECT_THAT(metrics, HasSubstr("paygate_http_open_connections"));
    EXPECT_THAT(metrics, HasSubstr("paygate_tls_handshake_failures_total"));
    EXPECT_THAT(metrics, HasSubstr("paygate_db_pool_connections{state=\"idle\"}"));
    EXPECT_THAT(metrics, HasSubstr("paygate_db_up 1"));
  }

  // Finance reads the ledger over the API; other roles may not; bad parameters are named.
  {
    TlsClient finance(api_port_, As("finance"));
    ASSERT_FALSE(finance.Connect());
    const edge::Response trial = finance.Get("/v1/ledger/trial-balance?currency=CNY");
    EXPECT_EQ(trial.result(), edge::http::status::ok) << trial.body();
    EXPECT_THAT(trial.body(), HasSubstr(R"("name":"premiums_received")"));
    EXPECT_THAT(trial.body(), HasSubstr(R"("total":{"debits_pending":"0")"));
    const edge::Response bad = finance.Get("/v1/ledger/trial-balance?currency=cny");
    EXPECT_EQ(bad.result(), edge::http::status::bad_request);
    EXPECT_THAT(bad.body(), HasSubstr(R"("param":"currency")"));
    EXPECT_EQ(finance.Get("/v1/ledger/accounts/999/balance").result(),
              edge::http::status::not_found);
    const edge::Response at =
        finance.Get("/v1/ledger/accounts/2/balance?at=2026-01-01T00%3A00%3A00Z");
    EXPECT_EQ(at.result(), edge::http::status::ok) << at.body();
    EXPECT_THAT(at.body(), HasSubstr(R"("at":"2026-01-01T00:00:00.000000Z")"));
    EXPECT_EQ(finance.Get("/v1/ledger/accounts/2/statement?limit=10").result(),
              edge::http::status::ok);
    EXPECT_EQ(finance.Get("/v1/ledger/accounts/2/statement?limit=0").result(),
              edge::http::status::bad_request);
    EXPECT_EQ(sales.Get("/v1/ledger/trial-balance?currency=CNY").result(),
              edge::http::status::forbidden);

    // Closing an account is finance's; the account then refuses postings (checked in SQL).
    auto post = [](TlsClient& client, std::string target) {
      edge::Request request{edge::http::verb::post, target, 11};
      request.set(edge::http::field::host, "localhost");
      request.prepare_payload();
      edge::Response response;
      EXPECT_FALSE(client.Send(request, &response));
      return response;
    };
    EXPECT_EQ(post(sales, "/v1/ledger/accounts/2/close").result(), edge::http::status::forbidden);
    EXPECT_EQ(post(finance, "/v1/ledger/accounts/999/close").result(),
              edge::http::status::not_found);
    const edge::Response closed = post(finance, "/v1/ledger/accounts/2/close");
    EXPECT_EQ(closed.result(), edge::http::status::ok) << closed.body();
    EXPECT_THAT(closed.body(), HasSubstr(R"("closed":true)"));
    EXPECT_THAT(cluster->Exec("DO $$ BEGIN IF NOT (SELECT closed FROM ledger_accounts WHERE id = 2) "
                              "THEN RAISE EXCEPTION 'still open'; END IF; END $$",
                              "e2e_life"),
                ::testing::IsEmpty());
    const edge::Response reopened = post(finance, "/v1/ledger/accounts/2/reopen");
    EXPECT_EQ(reopened.result(), edge::http::status::ok) << reopened.body();
    EXPECT_THAT(cluster->Exec("DO $$ BEGIN IF (SELECT closed FROM ledger_accounts WHERE id = 2) "
                              "THEN RAISE EXCEPTION 'still closed'; END IF; END $$",
                              "e2e_life"),
                ::testing::IsEmpty());
  }

  // openssl s_client offering only TLS 1.1 is refused.
  const std::string s_client = fmt::format(
      "openssl s_client -connect 127.0.0.1:{} -tls1_1 -cipher DEFAULT:@SECLEVEL=0 </dev/null "
      ">/dev/null 2>&1",
      api_port_);
  EXPECT_NE(std::system(s_client.c_str()), 0);

  ASSERT_TRUE(cluster->Stop());
  EXPECT_TRUE(AdminAnswers("/readyz", edge::http::status::service_unavailable, 15s));
  ASSERT_TRUE(cluster->Restart());
  EXPECT_TRUE(AdminAnswers("/readyz", edge::http::status::ok, 15s)) << daemon->Output();

  daemon->Signal(SIGHUP);
  std::this_thread::sleep_for(300ms);
  EXPECT_THAT(daemon->Output(), HasSubstr("certificate and key reloaded"));
  EXPECT_EQ(sales.Get("/v1/whoami").result(), edge::http::status::ok);

  daemon->Signal(SIGTERM);
  EXPECT_EQ(daemon->Wait(15s), 0) << daemon->Output();
  EXPECT_THAT(daemon->Output(), HasSubstr("drained; exiting"));
}

}  // namespace
}  // namespace paygate::testing
