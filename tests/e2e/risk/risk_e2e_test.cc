// The fraud rules end to end (issue 5 "Done when"): the built paygated (with the insurance rule
// pack of config/rules/) and paygate-sandbox run as child processes against a private PostgreSQL;
// the test speaks only HTTPS (the API as the sales platform and as risk staff, the simulator's
// stats), signals, and SQL reads.
//
// It proves: a payment from a listed instrument is refused (422, risk_blocked, the rule's code)
// and the provider sees no request; a `review` outcome holds the payment, unsent, until a second
// principal with role risk approves it (neither the sales platform nor the submitter can), after
// which it goes to the provider; a broken ruleset pushed over the API or by SIGHUP is rejected with
// its positioned errors while the running one keeps deciding; a ruleset that does not compile
// stops the daemon at start-up.
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include "adapters/sandbox/sandbox.pb.h"
#include "gateway/api/v1/payments.pb.h"
#include "gateway/api/v1/risk.pb.h"
#include "tests/e2e/collections/harness.h"
#include "tests/integration/edge/edge_fixture.h"
#include "tests/integration/sandbox/sandbox_fixture.h"
#include "tests/testing/pg_cluster.h"
#include "tests/testing/ports.h"

namespace paygate::testing::e2e {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
namespace fs = std::filesystem;
namespace sb = adapters::sandbox::v1;
using verb = edge::http::verb;

constexpr const char* kControlToken = "risk-e2e-control-token";
constexpr const char* kMerchantSecret = "risk-e2e-merchant-secret-0123456789abcdef";
constexpr const char* kHashKey = "risk-e2e-hash-key-0123456789abcdef-0123456789";

std::string BinaryDir() {
  const char* dir = std::getenv("PAYGATE_BINARY_DIR");
  return dir != nullptr ? dir : ".";
}
std::string SourceDir() {
  const char* dir = std::getenv("PAYGATE_SOURCE_DIR");
  return dir != nullptr ? dir : ".";
}

template <class Message>
Message FromJson(const std::string& json) {
  Message message;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const auto parsed = google::protobuf::util::JsonStringToMessage(json, &message, options);
  EXPECT_TRUE(parsed.ok()) << parsed.message() << " in: " << json;
  return message;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Environment {
  fs::path dir;
  fs::path pki;
  fs::path config;
  fs::path rules;
  std::string url;
  std::uint16_t api_port = 0;
  std::uint16_t admin_port = 0;
  std::unique_ptr<SimulatorProcess> simulator;
  std::unique_ptr<ChildProcess> daemon;
  std::unique_ptr<Sql> sql;
};

class RiskE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    env_ = new Environment;
    Environment& e = *env_;
    e.dir = fs::temp_directory_path() / fmt::format("paygate-risk-e2e-{}", ::getpid());
    fs::create_directories(e.dir);
    e.pki = MakeDevPki(e.dir / "pki");
    WriteFile0600(e.dir / "m1.secret", kMerchantSecret);
    WriteFile0600(e.dir / "control.token", kControlToken);
    WriteFile0600(e.dir / "risk.key", kHashKey);
    WriteFile0600(e.dir / "master.key", std::string(64, '9'));
    e.rules = e.dir / "insurance.rules";
    fs::copy_file(fs::path(SourceDir()) / "config/rules/insurance.rules", e.rules);
    e.url = SharedPgCluster().CreateDatabase("e2e_risk");
    ASSERT_FALSE(e.url.empty());
    e.simulator = std::make_unique<SimulatorProcess>(std::vector<std::string>{
        "--cert", (e.pki / "server.crt").string(), "--key", (e.pki / "server.key").string(),
        "--callback-ca", (e.pki / "ca.crt").string(), "--merchant",
        "m1=" + (e.dir / "m1.secret").string(), "--control-token-file",
        (e.dir / "control.token").string(), "--listen", "127.0.0.1", "--port", "0"});
    e.api_port = FreeLoopbackPort();
    e.admin_port = FreeLoopbackPort();
    e.config = WriteConfig(e.dir / "paygated.yaml", e.rules);
    auto migrate = RunCtl({"migrate"}, "migrate.log");
    ASSERT_EQ(migrate->Wait(60s), 0) << migrate->Output();
    e.sql = std::make_unique<Sql>(e.url);
    env_->daemon = StartDaemon(e.config, "paygated.log");
    ClientOptions probe;
    probe.ca = env_->pki / "ca.crt";
    const bool ready = WaitUntil(
        [&] { return Call(env_->admin_port, probe, verb::get, "/readyz", "", {}).status == 200; },
        30s);
    ASSERT_TRUE(ready) << env_->daemon->Output();
  }

  static void TearDownTestSuite() {
    if (env_ == nullptr) return;
    if (env_->daemon) {
      env_->daemon->Signal(SIGTERM);
      env_->daemon->Wait(15s);
    }
    const bool keep = ::testing::UnitTest::GetInstance()->failed_test_count() > 0;
    if (keep) std::cerr << "logs kept in " << env_->dir << "\n";
    env_->daemon.reset();
    env_->simulator.reset();
    env_->sql.reset();
    if (!keep) fs::remove_all(env_->dir);
    delete env_;
    env_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(env_ != nullptr && env_->daemon && env_->sql) << "the environment did not start";
  }
  void TearDown() override {
    if (env_ == nullptr || !env_->daemon) return;
    EXPECT_EQ(env_->daemon->Wait(0ms), -1) << "paygated exited; its log:\n"
                                           << env_->daemon->Output();
  }

  static fs::path WriteConfig(const fs::path& path, const fs::path& rules) {
    const std::string pki = env_->pki.string();
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
payments:
  currencies: [CNY]
  callback_base_url: https://localhost:{api}
  routes:
    - {{method: sandbox, provider: sandbox, merchant_account: m1}}
providers:
  - provider: sandbox
    merchant_account: m1
    sandbox: {{base_url: "{sandbox}", ca_file: {pki}/ca.crt, secret_key_id: sandbox.m1}}
risk:
  enabled: true
  rules_file: {rules}
  hash_key_id: risk-hash
  tail_interval_ms: 100
principals:
  - {{name: sales-platform, client_cert_common_name: sales-platform, roles: [sales]}}
  - {{name: risk-team, client_cert_common_name: risk-team, roles: [risk]}}
  - {{name: approver, client_cert_common_name: approver, roles: [sales, risk]}}
keys:
  master_key: {{id: e2e-master, file: {master}}}
  entries:
    - {{id: sandbox.m1, file: {secret}}}
    - {{id: risk-hash, file: {key}}}
)",
        fmt::arg("api", env_->api_port), fmt::arg("admin", env_->admin_port),
        fmt::arg("pki", pki), fmt::arg("sandbox", env_->simulator->base_url()),
        fmt::arg("secret", (env_->dir / "m1.secret").string()), fmt::arg("rules", rules.string()),
        fmt::arg("key", (env_->dir / "risk.key").string()),
        fmt::arg("master", (env_->dir / "master.key").string()));
    std::ofstream(path) << yaml;
    return path;
  }

  static std::unique_ptr<ChildProcess> RunCtl(std::vector<std::string> args,
                                              const std::string& log) {
    args.insert(args.begin(), BinaryDir() + "/gateway/paygatectl");
    args.push_back("--config");
    args.push_back(env_->config.string());
    return std::make_unique<ChildProcess>(
        std::move(args), std::vector<std::string>{"PAYGATE_DATABASE_URL=" + env_->url},
        env_->dir / log);
  }

  static std::unique_ptr<ChildProcess> StartDaemon(const fs::path& config, const std::string& log) {
    return std::make_unique<ChildProcess>(
        std::vector<std::string>{BinaryDir() + "/gateway/paygated", "--config", config.string()},
        std::vector<std::string>{"PAYGATE_DATABASE_URL=" + env_->url}, env_->dir / log);
  }

  static ClientOptions As(const std::string& principal) {
    ClientOptions options;
    options.ca = env_->pki / "ca.crt";
    options.cert = env_->pki / (principal + ".crt");
    options.key = env_->pki / (principal + ".key");
    return options;
  }

  static Exchange Post(const std::string& principal, const std::string& target,
                       const std::string& body, const std::string& content_type =
                                                    "application/json") {
    static int key = 0;
    return Call(env_->api_port, As(principal), verb::post, target, body,
                {{"Idempotency-Key", fmt::format("risk-e2e-{}-{}", ::getpid(), ++key)},
                 {"Content-Type", content_type}});
  }

  static Exchange Get(const std::string& principal, const std::string& target) {
    return Call(env_->api_port, As(principal), verb::get, target, "", {});
  }

  static std::string PaymentBody(const std::string& policy, std::int64_t amount,
                                 const std::string& risk) {
    return fmt::format(
        R"({{"policy_number":"{}","payer_id":"payer-{}","amount_minor":"{}","currency":"CNY",)"
        R"("method":"sandbox","risk":{{{}}}}})",
        policy, policy, amount, risk);
  }

  static sb::Stats SimulatorStats() {
    ClientOptions options;
    options.ca = env_->pki / "ca.crt";
    const Exchange reply =
        Call(env_->simulator->port(), options, verb::post, "/control/v1/stats", "{}",
             {{"Authorization", std::string("Bearer ") + kControlToken}});
    EXPECT_EQ(reply.status, 200u) << reply.body;
    return FromJson<sb::Stats>(reply.body);
  }

  static void BlockInstrument(const std::string& instrument) {
    const Exchange added = Post("risk-team", "/v1/risk/lists/blocked_instruments/items",
                                fmt::format(R"({{"value":"{}","note":"chargeback"}})", instrument));
    ASSERT_EQ(added.status, 201u) << added.body;
    const auto item = FromJson<api::v1::RiskListItem>(added.body);
    EXPECT_TRUE(item.item().starts_with("h1:")) << item.item();
  }

  static Environment* env_;
};

Environment* RiskE2eTest::env_ = nullptr;

TEST_F(RiskE2eTest, APaymentFromAListedInstrumentIsRefusedAndTheProviderSeesNoRequest) {
  // Before the listing the instrument pays normally (the provider is called once).
  const sb::Stats at_start = SimulatorStats();
  const Exchange before = Post("sales-platform", "/v1/payments",
                               PaymentBody("POL-B1", 12345, R"("instrument":"6222 0200 1111 0001")"));
  ASSERT_EQ(before.status, 201u) << before.body;
  EXPECT_EQ(FromJson<api::v1::Payment>(before.body).status(), "pending");
  EXPECT_EQ(SimulatorStats().payments(), at_start.payments() + 1);

  BlockInstrument("6222020011110001");
  const sb::Stats listed = SimulatorStats();
  const Exchange refused = Post("sales-platform", "/v1/payments",
                                PaymentBody("POL-B2", 12345, R"("instrument":"6222-0200-1111-0001")"));
  EXPECT_EQ(refused.status, 422u) << refused.body;
  EXPECT_THAT(refused.body, HasSubstr("\"risk_blocked\""));
  EXPECT_THAT(refused.body, HasSubstr("PREM-00"));
  const sb::Stats after = SimulatorStats();
  EXPECT_EQ(after.calls_received(), listed.calls_received());
  EXPECT_EQ(after.payments(), listed.payments());
  // Stored failed with the reason, decided once, no attempt, nothing for the janitor to ask.
  Sql& sql = *env_->sql;
  EXPECT_EQ(sql.Value("SELECT status || ' ' || failure_code FROM payment_orders WHERE "
                      "policy_number = 'POL-B2'"),
            "failed risk_blocked");
  EXPECT_EQ(sql.Count("SELECT count(*) FROM payment_attempts a JOIN payment_orders o ON "
                      "o.id = a.order_id WHERE o.policy_number = 'POL-B2'"),
            0);
  EXPECT_EQ(sql.Count("SELECT count(*) FROM risk_decisions d JOIN payment_orders o ON "
                      "o.id = d.object_id WHERE o.policy_number = 'POL-B2' AND d.outcome = 'block' "
                      "AND d.reason_codes = '{PREM-00}'"),
            1);
  EXPECT_EQ(sql.Count("SELECT count(*) FROM risk_list_items WHERE item LIKE '%6222%'"), 0);
}

TEST_F(RiskE2eTest, AReviewWaitsUntilASecondPrincipalActs) {
  const sb::Stats at_start = SimulatorStats();
  // Paid by an unrelated third party: PREM-05 holds it for review. The submitter here holds both
  // roles, so only the second-principal rule can stop it approving its own payment.
  const Exchange held = Post("approver", "/v1/payments",
                             PaymentBody("POL-R1", 23456,
                                         R"("payer_is_policyholder":false,)"
                                         R"("payer_relationship":"neighbour")"));
  ASSERT_EQ(held.status, 201u) << held.body;
  const auto payment = FromJson<api::v1::Payment>(held.body);
  EXPECT_EQ(payment.status(), "requires_review");
  EXPECT_EQ(SimulatorStats().payments(), at_start.payments());

  const Exchange queue = Get("risk-team", "/v1/reviews");
  ASSERT_EQ(queue.status, 200u) << queue.body;
  std::string review_id;
  const auto reviews = FromJson<api::v1::ListReviewsResponse>(queue.body);
  for (const auto& r : reviews.reviews()) {
    if (r.object_id() == payment.id()) {
      review_id = r.id();
      EXPECT_EQ(r.status(), "open");
      EXPECT_EQ(r.submitted_by(), "approver");
      EXPECT_EQ(r.amount_minor(), 23456);
      ASSERT_FALSE(r.rules().empty());
      EXPECT_EQ(r.rules(0).rule_id(), "PREM-05");
    }
  }
  ASSERT_FALSE(review_id.empty()) << queue.body;

  // Not the sales platform (no role risk), not the submitter; the payment stays held and unsent.
  const Exchange by_sales = Post("sales-platform", "/v1/reviews/" + review_id + "/approve", "");
  EXPECT_EQ(by_sales.status, 403u) << by_sales.body;
  const Exchange by_submitter = Post("approver", "/v1/reviews/" + review_id + "/approve", "");
  EXPECT_EQ(by_submitter.status, 403u) << by_submitter.body;
  EXPECT_THAT(by_submitter.body, HasSubstr("review_by_submitter"));
  const Exchange still = Get("approver", "/v1/payments/" + payment.id());
  EXPECT_EQ(FromJson<api::v1::Payment>(still.body).status(), "requires_review");
  EXPECT_EQ(SimulatorStats().payments(), at_start.payments());

  // A second principal with role risk approves: sent to the provider like a normal create.
  const Exchange approved =
      Post("risk-team", "/v1/reviews/" + review_id + "/approve", R"({"note":"called the payer"})");
  ASSERT_EQ(approved.status, 200u) << approved.body;
  const auto resolution = FromJson<api::v1::ResolveReviewResponse>(approved.body);
  EXPECT_EQ(resolution.review().status(), "approved");
  EXPECT_EQ(resolution.review().resolved_by(), "risk-team");
  EXPECT_EQ(resolution.payment().status(), "pending");
  EXPECT_EQ(resolution.payment().next_action().type(), "qr_code_url");
  EXPECT_EQ(SimulatorStats().payments(), at_start.payments() + 1);
  const Exchange again = Post("risk-team", "/v1/reviews/" + review_id + "/decline", "");
  EXPECT_EQ(again.status, 409u) << again.body;

  // Declined: the payment fails without ever reaching the provider.
  const Exchange held2 = Post("sales-platform", "/v1/payments",
                              PaymentBody("POL-R2", 34567,
                                          R"("payer_is_policyholder":false,)"
                                          R"("payer_relationship":"stranger")"));
  ASSERT_EQ(held2.status, 201u) << held2.body;
  const auto payment2 = FromJson<api::v1::Payment>(held2.body);
  const std::string review2 = env_->sql->Value(
      "SELECT id FROM risk_reviews WHERE object_id = '" + payment2.id() + "'");
  const Exchange declined = Post("risk-team", "/v1/reviews/" + review2 + "/decline", "");
  ASSERT_EQ(declined.status, 200u) << declined.body;
  const auto declined_payment = FromJson<api::v1::ResolveReviewResponse>(declined.body).payment();
  EXPECT_EQ(declined_payment.status(), "failed");
  EXPECT_EQ(declined_payment.failure().code(), "risk_declined");
  EXPECT_EQ(SimulatorStats().payments(), at_start.payments() + 1);
}

TEST_F(RiskE2eTest, ABrokenRulesetIsRejectedWhileTheOldOneKeepsWorking) {
  BlockInstrument("RISK-E2E-TOKEN-77");
  const Exchange status = Get("risk-team", "/v1/risk/rulesets");
  ASSERT_EQ(status.status, 200u) << status.body;
  const std::string version = FromJson<api::v1::RulesetStatus>(status.body).live().version();

  // Over the API: 400 with the positioned errors; nothing changes.
  const Exchange broken = Post("risk-team", "/v1/risk/rulesets",
                               "ruleset broken\nthresholds review 40 block 80\n"
                               "rule X-1 on premium_payment block \"x\"\n  when payment.amount > 5\n",
                               "text/plain");
  EXPECT_EQ(broken.status, 400u) << broken.body;
  EXPECT_THAT(broken.body, HasSubstr("ruleset_invalid"));
  EXPECT_THAT(broken.body, HasSubstr("api:4:"));
  const Exchange sales_push = Post("sales-platform", "/v1/risk/rulesets", "ruleset x\n", "text/plain");
  EXPECT_EQ(sales_push.status, 403u);
  EXPECT_EQ(FromJson<api::v1::RulesetStatus>(Get("risk-team", "/v1/risk/rulesets").body)
                .live()
                .version(),
            version);
  const Exchange still_blocked = Post("sales-platform", "/v1/payments",
                                      PaymentBody("POL-K1", 1000, R"("instrument":"risk-e2e-token-77")"));
  EXPECT_EQ(still_blocked.status, 422u) << still_blocked.body;
  EXPECT_THAT(still_blocked.body, HasSubstr("PREM-00"));

  // By SIGHUP: a rules file that does not compile is refused and the running ruleset stays.
  const std::string good = ReadFile(env_->rules);
  std::ofstream(env_->rules) << good << "\nrule BAD on premium_payment block \"x\" when nosuch > 1\n";
  env_->daemon->Signal(SIGHUP);
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(FromJson<api::v1::RulesetStatus>(Get("risk-team", "/v1/risk/rulesets").body)
                .live()
                .version(),
            version);
  EXPECT_EQ(Post("sales-platform", "/v1/payments",
                 PaymentBody("POL-K2", 1000, R"("instrument":"risk-e2e-token-77")"))
                .status,
            422u);

  // A good file on SIGHUP replaces it: its new rule decides the next payment.
  std::ofstream(env_->rules) << good
                             << "\nrule E2E-1 on premium_payment block \"test amount\"\n"
                                "  when payment.amount == CNY 7.77\n";
  env_->daemon->Signal(SIGHUP);
  ASSERT_TRUE(WaitUntil(
      [&] {
        return FromJson<api::v1::RulesetStatus>(Get("risk-team", "/v1/risk/rulesets").body)
                   .live()
                   .version() != version;
      },
      5s));
  const Exchange by_new_rule =
      Post("sales-platform", "/v1/payments", PaymentBody("POL-K3", 777, R"("device_id":"d-1")"));
  EXPECT_EQ(by_new_rule.status, 422u) << by_new_rule.body;
  EXPECT_THAT(by_new_rule.body, HasSubstr("E2E-1"));
  EXPECT_EQ(env_->sql->Count("SELECT count(*) FROM risk_rulesets WHERE origin = 'file'"), 1);
}

// paygatectl changes lists through the same audited path (the running daemon picks the change up)
// and backtests a candidate ruleset against the stored decisions.
TEST_F(RiskE2eTest, TheCliChangesListsAndBacktestsACandidate) {
  auto add = RunCtl({"risk", "list", "add", "blocked_instruments", "CLI-TOKEN-1", "--note", "cli"},
                    "ctl-add.log");
  ASSERT_EQ(add->Wait(30s), 0) << add->Output();
  EXPECT_THAT(add->Output(), HasSubstr("@blocked_instruments h1:"));
  EXPECT_EQ(env_->sql->Count("SELECT count(*) FROM risk_list_audit WHERE principal LIKE "
                             "'paygatectl:%' AND action = 'add_item'"),
            1);
  ASSERT_TRUE(WaitUntil(
      [&] {
        return Post("sales-platform", "/v1/payments",
                    PaymentBody("POL-C1", 1000, R"("instrument":"cli-token-1")"))
                   .status == 422;
      },
      5s));
  auto show = RunCtl({"risk", "list", "show", "blocked_instruments"}, "ctl-show.log");
  ASSERT_EQ(show->Wait(30s), 0) << show->Output();
  EXPECT_THAT(show->Output(), HasSubstr("added_by=paygatectl:"));
  EXPECT_THAT(show->Output(), ::testing::Not(HasSubstr("CLI-TOKEN-1")));

  const fs::path candidate = env_->dir / "candidate.rules";
  std::ofstream(candidate) << "ruleset candidate\nrule ALL-1 on premium_payment block \"all\"\n"
                              "  when payment.amount > CNY 0.00\n";
  auto backtest = RunCtl({"risk", "backtest", candidate.string(), "--from",
                          "2000-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z"},
                         "ctl-backtest.log");
  ASSERT_EQ(backtest->Wait(60s), 0) << backtest->Output();
  const std::int64_t allowed =
      env_->sql->Count("SELECT count(*) FROM risk_decisions WHERE outcome = 'allow'");
  ASSERT_GT(allowed, 0);
  EXPECT_THAT(backtest->Output(), HasSubstr("ALLOW -> BLOCK"));
  EXPECT_THAT(backtest->Output(), HasSubstr("ALL-1"));
  EXPECT_THAT(backtest->Output(), HasSubstr("PREM-00"));
}

TEST_F(RiskE2eTest, TheDaemonRefusesToStartOnARulesetThatDoesNotCompile) {
  const fs::path rules = env_->dir / "broken.rules";
  std::ofstream(rules) << "ruleset broken\n\nrule Z-1 on premium_payment block \"z\"\n"
                          "  when payment.amount > nosuch.thing\n";
  const fs::path config = env_->dir / "broken.yaml";
  const std::uint16_t saved_api = env_->api_port;
  const std::uint16_t saved_admin = env_->admin_port;
  env_->api_port = FreeLoopbackPort();
  env_->admin_port = FreeLoopbackPort();
  WriteConfig(config, rules);
  env_->api_port = saved_api;
  env_->admin_port = saved_admin;
  auto daemon = StartDaemon(config, "broken.log");
  const int exit = daemon->Wait(20s);
  EXPECT_NE(exit, -1) << "paygated started on a broken ruleset";
  EXPECT_NE(exit, 0);
  EXPECT_THAT(daemon->Output(), HasSubstr(rules.string() + ":4:"));
}

}  // namespace
}  // namespace paygate::testing::e2e
