// Claim payouts end to end (issue 7, "Done when"): the built paygated and paygatectl run as child
// processes against a private PostgreSQL, with paygate-sandbox in place of the provider. The test
// speaks only HTTPS (the API as the claims system and an approver, the simulator's control API),
// signals and SQL reads.
//
// PAYGATE_PAYOUTS_E2E_COUNT payouts (default 1000) each meet one fault, drawn from a seeded
// generator (PAYGATE_PAYOUTS_E2E_SEED repeats a run; the seed is printed on failure):
//   - the provider executes the payout and never answers (timeout after executing);
//   - the provider never receives it (timeout before executing), or answers 500 without executing;
//   - its callback is delivered three times, or lost (only the janitor's inquiry learns the outcome);
//   - paygated is killed with SIGKILL while the provider holds the call (executed or not), then
//     restarted. One kill takes every payout of a batch held at that moment.
// About one in ten needs an approver, so its provider call is made by the approval instead.
//
// What it proves, from the simulator's own record (payouts/count by "<payout id>_", the prefix of
// every attempt of one payout): no payout's money left more than once; every payout ends in
// exactly one terminal status, or in the manual queue with a reason; the ledger matches the record
// exactly: every reservation is posted (the provider executed that attempt) or voided (it did
// not), the posted sum is what the provider executed, and the clearing account holds the premiums
// collected minus exactly that. A create retried after the crash with its Idempotency-Key finds
// the payout the crash interrupted.
//
// Time is compressed by configuration: a 1 s inquiry schedule, a 100 ms janitor, a 2 s provider
// timeout (the kill batches run under a daemon with a long one, so the kill, not the timeout, ends
// their calls).
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include "adapters/sandbox/sandbox.pb.h"
#include "gateway/api/v1/payments.pb.h"
#include "gateway/api/v1/payouts.pb.h"
#include "tests/e2e/collections/harness.h"
#include "tests/e2e/collections/providers.h"
#include "tests/integration/edge/edge_fixture.h"
#include "tests/testing/pg_cluster.h"
#include "tests/testing/ports.h"

namespace paygate::testing::e2e {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace sbx = adapters::sandbox::v1;
using verb = edge::http::verb;

// The daemon gives up on the provider after kTimeoutMs; a timeout fault holds the call longer.
constexpr int kTimeoutMs = 2000;
constexpr int kTimeoutHoldMs = 2600;
// The kill batches' daemon waits far longer than the kill takes to arrive.
constexpr int kKillPhaseTimeoutMs = 60000;
constexpr int kKillHoldMs = 60000;
// ...and inquires late: an inquiry closes a reference the simulator holds unexecuted (PROTOCOL.md:
// "query closes the unknown"), which would settle the call before the kill. After each restart
// the test makes the inquiries due at once, as a clock jump would.
constexpr int kKillPhaseFirstInquiryS = 600;
// Payouts from this amount need an approver (payouts.approval_threshold_minor).
constexpr std::int64_t kApprovalThreshold = 50000;
// Premiums collected first: they fund every payout of the run (the clearing account can never go
// negative, so an unfunded payout would fail before any provider call and prove nothing).
constexpr int kPremiums = 12;
constexpr std::int64_t kPremiumAmount = 1000000;

enum class Fault { kTimeoutAfter, kTimeoutBefore, kServerError, kDuplicateCallback, kLostCallback, kKill };
constexpr int kFaultKinds = 6;

const char* Name(Fault f) {
  switch (f) {
    case Fault::kTimeoutAfter: return "timeout_after";
    case Fault::kTimeoutBefore: return "timeout_before";
    case Fault::kServerError: return "5xx";
    case Fault::kDuplicateCallback: return "duplicate_callback";
    case Fault::kLostCallback: return "lost_callback";
    case Fault::kKill: return "kill";
  }
  return "?";
}

struct Planned {
  int index = 0;
  Fault fault = Fault::kTimeoutAfter;
  // kKill: whether the provider executed the call it holds when paygated dies.
  bool executed_before_kill = false;
  bool approval = false;
  // Unique per payout, so fault rules and callbacks match it by amount before its id exists.
  std::int64_t amount = 0;
  std::string key;
  std::string id;
};

template <class Message>
Message FromJson(const std::string& json) {
  Message message;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const auto parsed = google::protobuf::util::JsonStringToMessage(json, &message, options);
  EXPECT_TRUE(parsed.ok()) << parsed.message() << " in: " << json;
  return message;
}

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

// Runs fn(i) for i in [0, n) on `workers` threads.
void Parallel(std::size_t n, std::size_t workers, const std::function<void(std::size_t)>& fn) {
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> threads;
  for (std::size_t w = 0; w < std::min(n, workers); ++w) {
    threads.emplace_back([&] {
      for (std::size_t i = next++; i < n; i = next++) fn(i);
    });
  }
  for (auto& t : threads) t.join();
}

class PayoutsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / fmt::format("paygate-payouts-e2e-{}", ::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    pki_ = MakeDevPki(dir_ / "pki");
    url_ = SharedPgCluster().CreateDatabase("e2e_payouts");
    ASSERT_FALSE(url_.empty());
    WriteFile0600(dir_ / "master.key", std::string(64, 'd'));
    WriteFile0600(dir_ / "m1.secret", "payouts-e2e-merchant-secret-0123456789abcdef");
    WriteFile0600(dir_ / "control.token", token_);
    StartSandbox();
    api_port_ = FreeLoopbackPort();
    admin_port_ = FreeLoopbackPort();
    kill_config_ = WriteConfig("kill-phase.yaml", kKillPhaseTimeoutMs, kKillPhaseFirstInquiryS);
    config_ = WriteConfig("paygated.yaml", kTimeoutMs, 1);
    auto migrate = std::make_unique<ChildProcess>(
        std::vector<std::string>{BinaryDir() + "/gateway/paygatectl", "migrate", "--config",
                                 config_.string()},
        std::vector<std::string>{"PAYGATE_DATABASE_URL=" + url_}, dir_ / "migrate.log");
    ASSERT_EQ(migrate->Wait(60s), 0) << migrate->Output();
    sql_ = std::make_unique<Sql>(url_);
  }

  void TearDown() override {
    if (daemon_) {
      daemon_->Signal(SIGTERM);
      daemon_->Wait(15s);
    }
    daemon_.reset();
    sandbox_.reset();
    sql_.reset();
    if (HasFailure()) {
      std::cerr << "logs kept in " << dir_ << "\n";
    } else {
      fs::remove_all(dir_);
    }
  }

  void StartSandbox() {
    // Executed payouts (and the premiums) succeed by themselves 200 ms later, with a callback
    // retried quickly, so a callback the dead daemon missed gives up within a second.
    const fs::path log = dir_ / "paygate-sandbox.log";
    sandbox_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{
            BinaryDir() + "/adapters/sandbox/paygate-sandbox", "--cert",
            (pki_ / "server.crt").string(), "--key", (pki_ / "server.key").string(),
            "--callback-ca", (pki_ / "ca.crt").string(), "--merchant",
            "m1=" + (dir_ / "m1.secret").string(), "--control-token-file",
            (dir_ / "control.token").string(), "--listen", "127.0.0.1", "--port", "0",
            "--auto-complete-ms", "200", "--auto-status", "succeeded", "--callback-attempts", "3",
            "--callback-retry-ms", "150"},
        std::vector<std::string>{}, log);
    std::string line;
    const bool started = WaitUntil(
        [&] {
          std::ifstream in(log);
          while (std::getline(in, line)) {
            if (line.find(" listening on ") != std::string::npos) return true;
          }
          return sandbox_->Wait(0ms) != -1;
        },
        15s);
    ASSERT_TRUE(started && line.find(" listening on ") != std::string::npos) << sandbox_->Output();
    sandbox_port_ = static_cast<std::uint16_t>(std::stoi(line.substr(line.rfind(':') + 1)));
  }

  fs::path WriteConfig(const std::string& name, int provider_timeout_ms, int first_inquiry_s) {
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
  health_check_interval_ms: 200
server:
  drain_timeout_ms: 3000
payments:
  currencies: [CNY]
  provider_timeout_ms: {timeout}
  callback_base_url: https://localhost:{api}
  routes:
    - {{method: sandbox, provider: sandbox, merchant_account: m1}}
payouts:
  routes:
    - {{method: sandbox_transfer, provider: sandbox, merchant_account: m1}}
  approval_threshold_minor: {threshold}
  attempts_max: 3
  inquiry_schedule_s: [{first}, 1, 2, 2, 3]
providers:
  - provider: sandbox
    merchant_account: m1
    sandbox: {{base_url: "https://localhost:{sandbox}", ca_file: {pki}/ca.crt, secret_key_id: sandbox.m1}}
janitor:
  interval_ms: 100
principals:
  - {{name: sales-platform, client_cert_common_name: sales-platform, roles: [sales]}}
  - {{name: claims-system, client_cert_common_name: claims-system, roles: [claims]}}
  - {{name: approver, client_cert_common_name: approver, roles: [approver]}}
  - {{name: operator, client_cert_common_name: operator, roles: [operator]}}
keys:
  master_key: {{id: e2e-master, file: {dir}/master.key}}
  entries:
    - {{id: sandbox.m1, file: {dir}/m1.secret}}
)",
        fmt::arg("api", api_port_), fmt::arg("admin", admin_port_), fmt::arg("pki", pki_.string()),
        fmt::arg("timeout", provider_timeout_ms), fmt::arg("threshold", kApprovalThreshold),
        fmt::arg("sandbox", sandbox_port_), fmt::arg("dir", dir_.string()),
        fmt::arg("first", first_inquiry_s));
    const fs::path path = dir_ / name;
    std::ofstream(path) << yaml;
    return path;
  }

  void StartDaemon(const fs::path& config) {
    daemon_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{BinaryDir() + "/gateway/paygated", "--config", config.string()},
        std::vector<std::string>{"PAYGATE_DATABASE_URL=" + url_}, dir_ / "paygated.log");
    ClientOptions probe;
    probe.ca = pki_ / "ca.crt";
    const bool ready = WaitUntil(
        [&] { return Call(admin_port_, probe, verb::get, "/readyz", "", {}).status == 200; }, 60s);
    ASSERT_TRUE(ready) << daemon_->Output();
  }

  void KillDaemon() {
    daemon_->Signal(SIGKILL);
    EXPECT_EQ(daemon_->Wait(10s), 128 + SIGKILL);
    daemon_.reset();
  }

  ClientOptions As(const std::string& principal) const {
    ClientOptions options;
    options.ca = pki_ / "ca.crt";
    options.cert = pki_ / (principal + ".crt");
    options.key = pki_ / (principal + ".key");
    return options;
  }

  Exchange Post(const std::string& principal, const std::string& target, const std::string& key,
                const std::string& body) {
    return Call(api_port_, As(principal), verb::post, target, body, {{"Idempotency-Key", key}});
  }

  Exchange Control(const std::string& path, const std::string& body) {
    ClientOptions options;
    options.ca = pki_ / "ca.crt";
    Exchange reply = Call(sandbox_port_, options, verb::post, "/control/v1/" + path, body,
                          {{"Authorization", "Bearer " + token_}});
    EXPECT_EQ(reply.status, 200u) << path << " " << body << ": " << reply.body << reply.error;
    return reply;
  }

  void AddFault(const std::string& kind, const std::string& operation, std::int64_t amount,
                std::uint32_t count, std::uint32_t delay_ms, std::uint32_t copies = 0) {
    Control("faults", fmt::format(R"({{"kind":"FAULT_KIND_{}","operation":"{}","amount_minor":"{}",)"
                                  R"("count":{},"delay_ms":{},"copies":{}}})",
                                  kind, operation, amount, count, delay_ms, copies));
  }

  sbx::Stats Stats() { return FromJson<sbx::Stats>(Control("stats", "{}").body); }

  static std::string PayoutBody(const Planned& p) {
    // The same beneficiary for all: the fraud rules are off here (their payout flags are the
    // integration tests' subject), and the account number must never show up anywhere else.
    return fmt::format(
        R"({{"claim_number":"CLM-E2E-{0}","policy_number":"POL-E2E-{0}","claimant_id":"claimant-{0}",)"
        R"("beneficiary":{{"name":"Zhang San","account_type":"bank_card","account":"6222020200112233445",)"
        R"("bank":"ICBC","id_number":"110101199003071234"}},"amount_minor":"{1}","currency":"CNY",)"
        R"("method":"sandbox_transfer","reason":"claim settlement"}})",
        p.index, p.amount);
  }

  // Sets up p's fault at the simulator, then creates it as the claims system (and approves it
  // when it needs an approver: the approval makes the provider call). Returns whether the calls
  // were answered; p.id is set once the create answered.
  bool Submit(Planned& p) {
    switch (p.fault) {
      case Fault::kTimeoutAfter:
        AddFault("TIMEOUT_AFTER", "create_payout", p.amount, 1, kTimeoutHoldMs);
        break;
      case Fault::kTimeoutBefore:
        AddFault("TIMEOUT_BEFORE", "create_payout", p.amount, 1, kTimeoutHoldMs);
        break;
      case Fault::kServerError: AddFault("HTTP_5XX", "create_payout", p.amount, 1, 0); break;
      case Fault::kDuplicateCallback:
        AddFault("DUPLICATE_CALLBACK", "", p.amount, 0, 0, 3);
        break;
      case Fault::kLostCallback: AddFault("LOST_CALLBACK", "", p.amount, 0, 0); break;
      case Fault::kKill:
        AddFault(p.executed_before_kill ? "TIMEOUT_AFTER" : "TIMEOUT_BEFORE", "create_payout",
                 p.amount, 1, kKillHoldMs);
        break;
    }
    const Exchange created = Post("claims-system", "/v1/payouts", p.key, PayoutBody(p));
    if (created.status == 0) return false;
    EXPECT_EQ(created.status, 201u) << p.key << ": " << created.body;
    const auto payout = FromJson<api::v1::Payout>(created.body);
    p.id = payout.id();
    if (!p.approval) return true;
    EXPECT_EQ(payout.status(), "awaiting_approval") << created.body;
    const Exchange approved = Post("approver", "/v1/payouts/" + p.id + "/approve",
                                   "approve-" + p.key, R"({"note":"claim checked"})");
    if (approved.status == 0) return false;
    EXPECT_EQ(approved.status, 200u) << p.key << ": " << approved.body;
    return true;
  }

  // Premiums through the sandbox (auto-completed): what the payouts are paid from.
  void CollectPremiums() {
    std::vector<std::string> ids;
    for (int j = 0; j < kPremiums; ++j) {
      const std::int64_t amount = kPremiumAmount + j;
      const Exchange created = Post(
          "sales-platform", "/v1/payments", fmt::format("premium-{}", j),
          fmt::format(R"({{"policy_number":"POL-FUND-{0}","payer_id":"payer-{0}","amount_minor":"{1}",)"
                      R"("currency":"CNY","method":"sandbox","description":"premium"}})",
                      j, amount));
      ASSERT_EQ(created.status, 201u) << created.body << created.error;
      ids.push_back(FromJson<api::v1::Payment>(created.body).id());
    }
    const bool paid = WaitUntil(
        [&] {
          return sql_->Count("SELECT count(*) FROM payment_orders WHERE status = 'succeeded'") ==
                 kPremiums;
        },
        60s);
    ASSERT_TRUE(paid) << "premiums did not succeed";
  }

  fs::path dir_;
  fs::path pki_;
  std::string url_;
  std::string token_ = "payouts-e2e-control-token";
  std::uint16_t sandbox_port_ = 0;
  std::uint16_t api_port_ = 0;
  std::uint16_t admin_port_ = 0;
  fs::path config_;
  fs::path kill_config_;
  std::unique_ptr<ChildProcess> sandbox_;
  std::unique_ptr<ChildProcess> daemon_;
  std::unique_ptr<Sql> sql_;
};

TEST_F(PayoutsE2eTest, RandomFaultsNeverPayTwiceAndTheLedgerMatchesTheProvidersRecord) {
  const unsigned seed = static_cast<unsigned>(
      EnvInt("PAYGATE_PAYOUTS_E2E_SEED", static_cast<int>(std::random_device{}() & 0x7fffffff)));
  const int count = EnvInt("PAYGATE_PAYOUTS_E2E_COUNT", 1000);
  const std::size_t workers = static_cast<std::size_t>(EnvInt("PAYGATE_PAYOUTS_E2E_WORKERS", 24));
  const std::size_t kill_batch = static_cast<std::size_t>(EnvInt("PAYGATE_PAYOUTS_E2E_KILL_BATCH", 40));
  SCOPED_TRACE(fmt::format("seed {} (PAYGATE_PAYOUTS_E2E_SEED={} repeats this run), {} payouts",
                           seed, seed, count));
  std::cerr << "payouts e2e: seed " << seed << ", " << count << " payouts\n";
  std::mt19937 rng(seed);

  std::vector<Planned> plan(static_cast<std::size_t>(count));
  std::map<Fault, int> per_fault;
  for (int i = 0; i < count; ++i) {
    Planned& p = plan[static_cast<std::size_t>(i)];
    p.index = i;
    p.fault = static_cast<Fault>(rng() % kFaultKinds);
    p.executed_before_kill = rng() % 2 == 0;
    p.approval = rng() % 10 == 0;
    p.amount = (p.approval ? kApprovalThreshold : 1000) + i;
    p.key = fmt::format("payout-e2e-{}", i);
    ++per_fault[p.fault];
  }
  for (const auto& [fault, n] : per_fault) std::cerr << "  " << Name(fault) << ": " << n << "\n";

  // Phase 1: premiums, under the daemon of the kill batches (its provider timeout is long).
  ASSERT_NO_FATAL_FAILURE(StartDaemon(kill_config_));
  ASSERT_NO_FATAL_FAILURE(CollectPremiums());
  const std::int64_t premiums = sql_->Count(
      "SELECT coalesce(sum(amount_minor), 0) FROM payment_orders WHERE status = 'succeeded'");

  // Phase 2: the kill batches. Every payout of a batch is sent at once; once the simulator holds
  // every one of their calls, paygated dies with SIGKILL and starts again.
  std::vector<Planned*> killed;
  for (Planned& p : plan) {
    if (p.fault == Fault::kKill) killed.push_back(&p);
  }
  const auto started = std::chrono::steady_clock::now();
  auto last_kill = started;
  for (std::size_t from = 0; from < killed.size(); from += kill_batch) {
    const std::size_t n = std::min(kill_batch, killed.size() - from);
    // The previous batch is settled first, so the janitor's inquiries about it make no calls
    // while this one is counted in.
    const bool quiet = WaitUntil(
        [&] {
          return sql_->Count("SELECT count(*) FROM payout_attempts WHERE status IN ('sending', "
                             "'pending', 'unknown')") == 0;
        },
        60s);
    EXPECT_TRUE(quiet) << "the previous kill batch did not settle";
    const std::uint64_t received = Stats().calls_received();
    std::string keys;
    std::vector<std::thread> clients;
    for (std::size_t k = 0; k < n; ++k) {
      // Submit sets the fault rule, then creates (and approves): the call hangs until the kill.
      clients.emplace_back([this, p = killed[from + k]] { Submit(*p); });
      keys += fmt::format("{}'{}'", k == 0 ? "" : ", ", killed[from + k]->key);
    }
    // Every call of the batch has its attempt committed and is held by the simulator (one
    // create_payout each; an approval's create makes no provider call, its approval does). An
    // executed one may already be paid by its callback, which arrives while the call is held.
    const std::string sending = fmt::format(
        "SELECT count(*) FROM payout_attempts a JOIN payouts p ON p.id = a.payout_id WHERE "
        "p.client_reference IN ({})",
        keys);
    const bool held = WaitUntil(
        [&] {
          return Stats().calls_received() >= received + n &&
                 sql_->Count(sending) == static_cast<std::int64_t>(n);
        },
        60s);
    EXPECT_TRUE(held) << "the batch's calls did not all reach the simulator: "
                      << Stats().calls_received() - received << " of " << n;
    KillDaemon();
    last_kill = std::chrono::steady_clock::now();
    for (auto& c : clients) c.join();
    const bool last = from + n >= killed.size();
    ASSERT_NO_FATAL_FAILURE(StartDaemon(last ? config_ : kill_config_));
    sql_->Exec("UPDATE janitor_tasks SET due_at = now() WHERE NOT manual AND due_at > now()");
    // The client never got its answer; the payout the crash interrupted is found by its key.
    for (std::size_t k = 0; k < n; ++k) {
      Planned& p = *killed[from + k];
      const auto rows = sql_->Query(
          fmt::format("SELECT id FROM payouts WHERE client_reference = '{}'", p.key));
      ASSERT_EQ(rows.size(), 1u) << p.key;
      p.id = rows[0][0];
    }
  }
  if (killed.empty()) {
    KillDaemon();
    ASSERT_NO_FATAL_FAILURE(StartDaemon(config_));
  }

  // Phase 3: every other payout, concurrently, under the short provider timeout.
  std::vector<Planned*> rest;
  for (Planned& p : plan) {
    if (p.fault != Fault::kKill) rest.push_back(&p);
  }
  Parallel(rest.size(), workers, [&](std::size_t i) {
    Planned& p = *rest[i];
    EXPECT_TRUE(Submit(p)) << p.key << " got no answer";
  });
  for (const Planned& p : plan) ASSERT_FALSE(p.id.empty()) << p.key << " has no payout";

  // Phase 4: the janitor settles what is unknown (inquiries, stored callbacks) until nothing is
  // open: every payout terminal or in the manual queue.
  const bool settled = WaitUntil(
      [&] {
        return sql_->Count("SELECT count(*) FROM payouts WHERE status NOT IN "
                           "('succeeded', 'failed', 'cancelled', 'manual_review')") == 0;
      },
      std::chrono::seconds(120 + count / 10));
  EXPECT_TRUE(settled) << sql_->Value(
      "SELECT string_agg(status || ':' || n, ', ') FROM (SELECT status, count(*) n FROM payouts "
      "GROUP BY status) s");
  ASSERT_EQ(daemon_->Wait(0ms), -1) << "paygated exited: " << daemon_->Output();
  std::cerr << "payouts e2e: settled "
            << std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                started)
                   .count()
            << " s after the first payout\n";

  // The simulator's record, per payout (every attempt's reference starts "<payout id>_"), against
  // what paygate says through its API.
  std::mutex mu;
  std::int64_t executed_total = 0;
  std::int64_t paid_total = 0;
  std::map<std::string, int> statuses;
  Parallel(plan.size(), 8, [&](std::size_t i) {
    const Planned& p = plan[i];
    const auto record = FromJson<sbx::PayoutCount>(
        Control("payouts/count",
                fmt::format(R"({{"merchant_account":"m1","reference_prefix":"{}_"}})", p.id))
            .body);
    const Exchange got = Call(api_port_, As("claims-system"), verb::get, "/v1/payouts/" + p.id,
                              "", {});
    EXPECT_EQ(got.status, 200u) << got.body << got.error;
    const auto payout = FromJson<api::v1::Payout>(got.body);
    const std::string what = fmt::format("{} ({}, {}{})", p.id, Name(p.fault),
                                         p.executed_before_kill ? "executed, " : "",
                                         p.approval ? "approved" : "no approval");
    EXPECT_LE(record.executions(), 1u) << what << " executed more than once";
    const bool terminal = payout.status() == "succeeded" || payout.status() == "failed" ||
                          payout.status() == "cancelled";
    EXPECT_TRUE(terminal || (payout.status() == "manual_review" && !payout.manual_reason().empty()))
        << what << " is " << payout.status() << " (" << payout.manual_reason() << ")";
    // Paid exactly when the provider executed it (the simulator pays every executed payout).
    EXPECT_EQ(payout.status() == "succeeded", record.executions() == 1)
        << what << " is " << payout.status() << " but the provider executed it "
        << record.executions() << " times";
    if (payout.status() == "succeeded") {
      EXPECT_EQ(payout.paid_minor(), p.amount) << what;
      EXPECT_EQ(record.succeeded_amount_minor(), p.amount) << what;
    }
    // An attempt that ended unsent was provably never executed: at most one attempt is open or
    // paid, and a new one only follows a closed one.
    int open_or_paid = 0;
    for (const auto& a : payout.attempts()) {
      EXPECT_EQ(a.provider_reference().rfind(p.id + "_", 0), 0u) << what;
      if (a.status() != "declined" && a.status() != "not_sent") ++open_or_paid;
    }
    EXPECT_LE(open_or_paid, 1) << what;
    std::lock_guard lock(mu);
    executed_total += record.succeeded_amount_minor();
    if (payout.status() == "succeeded") paid_total += payout.paid_minor();
    ++statuses[payout.status()];
  });
  for (const auto& [status, n] : statuses) std::cerr << "  " << status << ": " << n << "\n";

  // Nothing outside the run's payouts executed, and nothing is still pending at the provider.
  const auto all = FromJson<sbx::PayoutCount>(
      Control("payouts/count", R"({"merchant_account":"m1"})").body);
  EXPECT_EQ(all.executions(), all.succeeded()) << "executed payouts not (yet) paid";
  EXPECT_EQ(all.succeeded_amount_minor(), executed_total);
  EXPECT_EQ(paid_total, executed_total);

  // The ledger against the provider's record. Every reservation is released exactly once:
  // posted where the provider executed the attempt, voided where it provably did not.
  const auto refs = FromJson<sbx::PayoutList>(
      Control("payouts/list", R"({"merchant_account":"m1"})").body);
  std::set<std::string> executed_refs;
  for (const auto& r : refs.payouts()) {
    if (r.executions() > 0) executed_refs.insert(r.reference());
  }
  std::set<std::string> posted_refs;
  for (const auto& row : sql_->Query("SELECT substr(id, length('payout_paid:') + 1) FROM "
                                     "ledger_transfers WHERE id LIKE 'payout_paid:%'")) {
    posted_refs.insert(row[0]);
  }
  EXPECT_EQ(posted_refs, executed_refs) << "posted reservations differ from executed attempts";
  EXPECT_EQ(sql_->Count("SELECT count(*) FROM ledger_transfers r WHERE r.id LIKE "
                        "'payout_reserve:%' AND (SELECT count(*) FROM ledger_transfers s WHERE "
                        "s.pending_id = r.id) <> 1"),
            sql_->Count("SELECT count(*) FROM payouts WHERE status = 'manual_review'"))
      << "a reservation neither posted nor voided (or released twice) outside the manual queue";
  EXPECT_EQ(sql_->Count("SELECT coalesce(sum(r.amount), 0) FROM ledger_transfers p JOIN "
                        "ledger_transfers r ON r.id = p.pending_id WHERE p.id LIKE "
                        "'payout_paid:%'"),
            executed_total);
  // The clearing account: premiums in, exactly the executed payouts out, nothing reserved but
  // what waits in the manual queue.
  const auto clearing = sql_->Query(
      "SELECT debits_posted, credits_posted, credits_pending FROM ledger_accounts WHERE currency "
      "= 'CNY' AND name = 'provider_clearing:sandbox:m1'");
  ASSERT_EQ(clearing.size(), 1u);
  EXPECT_EQ(std::stoll(clearing[0][0]), premiums);
  EXPECT_EQ(std::stoll(clearing[0][1]), executed_total);
  EXPECT_EQ(std::stoll(clearing[0][2]),
            sql_->Count("SELECT coalesce(sum(amount_minor), 0) FROM payouts WHERE status = "
                        "'manual_review'"));
  const auto payable = sql_->Query(
      "SELECT credits_posted - debits_posted FROM ledger_accounts WHERE currency = 'CNY' AND name "
      "= 'claims_payable'");
  ASSERT_EQ(payable.size(), 1u);
  EXPECT_EQ(std::stoll(payable[0][0]),
            sql_->Count("SELECT coalesce(sum(amount_minor), 0) FROM payouts WHERE status = "
                        "'manual_review'"))
      << "owed and unsettled must be exactly the manual queue";

  // A create retried with its Idempotency-Key after the crash (once the dead daemon's claim on
  // the key has lapsed) answers the payout the crash interrupted, and sends nothing again.
  if (!killed.empty()) {
    const auto lapse = last_kill + 61s;
    if (std::chrono::steady_clock::now() < lapse) std::this_thread::sleep_until(lapse);
    const std::uint64_t calls = Stats().calls_received();
    for (std::size_t k = 0; k < std::min<std::size_t>(killed.size(), 20); ++k) {
      const Planned& p = *killed[k];
      const Exchange again = Post("claims-system", "/v1/payouts", p.key, PayoutBody(p));
      EXPECT_EQ(again.status, 201u) << again.body << again.error;
      EXPECT_EQ(FromJson<api::v1::Payout>(again.body).id(), p.id);
    }
    EXPECT_EQ(Stats().calls_received(), calls);
  }

  // The beneficiary's account number is nowhere in the daemon's log.
  EXPECT_EQ(daemon_->Output().find("6222020200112233445"), std::string::npos);
}

}  // namespace
}  // namespace paygate::testing::e2e
