// risk_bench: the risk engine benchmark (tests/bench/risk/run.sh, issue 5, DESIGN.md §8).
//
// Setup: the insurance pack (config/rules/insurance.rules) with populated lists, and aggregate
// state for
// --customers distinct customers (each with its own device, policy, card and payout account; IPs
// shared by five customers each), built by observing a history of premium payments, account changes
// and claims. Workload: --events decisions, three in four premium payments and one in four claim
// payouts, of random customers, with every attribute set. Decisions are not observed during
// measurement, so every pass sees the same state.
//
// Ours: Evaluate() on the compiled pack, including every aggregate lookup and list check.
// Anchor: the same conditions as hand-written ifs (AnchorDecide below), reading the same aggregate
// state (AggregateState::Read) and the same lists, in the same run. Before measuring, every
// workload event is decided both ways and the outcomes and scores must agree, so the anchor
// provably evaluates the same conditions.
//
// Throughput comes from Google Benchmark (items per second, one thread); p50/p99 from a separate
// pass timing each decision with the steady clock. Prints on stdout one line:
//   BENCH risk customers=N decisions_per_s=.. p50_us=.. p99_us=.. anchor_decisions_per_s=..
//     anchor_p50_us=.. anchor_p99_us=.. anchor=<anchor decisions/s> ratio=<ours/anchor>
// Usage: risk_bench --rules FILE [--customers N] [--events N] [--min-time S]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <benchmark/benchmark.h>

#include "gateway/risk/aggregates.h"
#include "gateway/risk/evaluator.h"
#include "gateway/risk/event.h"
#include "gateway/risk/lists.h"
#include "gateway/risk/ruleset.h"

namespace {

namespace risk = paygate::risk;
using risk::Attr;
using risk::Event;
using risk::EventType;
using risk::Outcome;
using risk::Value;

constexpr std::int64_t kNow = 1'790'000'000;
constexpr std::int64_t kMinute = 60;
constexpr std::int64_t kHour = 3600;
constexpr std::int64_t kDay = 86400;

struct Options {
  std::string rules;
  int customers = 100'000;
  int events = 200'000;
  double min_time = 2.0;
};

// Per-customer text: the events keep views of it.
struct Customer {
  std::string id, device, ip, policy, card, email, name, address, account, bin;
};

// --- the anchor: the pack's premium and claim rules as plain ifs
// -------------------------------------------
struct Anchor {
  // Aggregates and lists resolved once, as hand-written code would hold them.
  const risk::TypedList* blocked_instruments = nullptr;
  const risk::TypedList* blocked_accounts = nullptr;
  const risk::TypedList* blocked_devices = nullptr;
  const risk::TypedList* risky_ips = nullptr;
  const risk::TypedList* prepaid_bins = nullptr;
  const risk::TypedList* sanctioned_names = nullptr;
  const risk::TypedList* sanctioned_ids = nullptr;
  const risk::TypedList* high_risk_countries = nullptr;
  const risk::AggregateState* attempts_per_device_1h = nullptr;
  const risk::AggregateState* small_attempts_per_ip_1h = nullptr;
  const risk::AggregateState* cards_per_policy_24h = nullptr;
  const risk::AggregateState* policies_per_device_7d = nullptr;
  const risk::AggregateState* holders_per_ip_7d = nullptr;
  const risk::AggregateState* names_per_device_30d = nullptr;
  const risk::AggregateState* holders_per_instrument_90d = nullptr;
  const risk::AggregateState* email_first_seen = nullptr;
  const risk::AggregateState* claimants_per_account_365d = nullptr;
  const risk::AggregateState* account_first_seen = nullptr;
  const risk::AggregateState* last_account_change = nullptr;
  const risk::AggregateState* claims_per_holder_90d = nullptr;
  const risk::AggregateState* claims_per_address_365d = nullptr;
  const risk::AggregateState* claimants_per_device_180d = nullptr;
  const risk::AggregateState* near_limit_claims_180d = nullptr;
  const risk::AggregateState* invoice_uses_365d = nullptr;
  std::int64_t h_prepaid = 0;
  std::int64_t h_relations[5] = {};

  static std::uint64_t Key(const Event& e, Attr a) { return *risk::AggregateKey(e, a); }
  static std::int64_t Read(const risk::AggregateState* s, const Event& e, Attr by) {
    return s->Read(Key(e, by), e.time()).a;
  }

  struct Result {
    Outcome outcome;
    std::int32_t score;
  };

  Result Decide(const Event& e) const {
    bool hard = false, block = false, review = false;
    std::int32_t score = 0;
    const std::int64_t now = e.time();
    const auto& v = [&](Attr a) -> const Value& { return e.Get(a); };
    if (e.type() == EventType::kPremiumPayment) {
      const std::int64_t amount = v(Attr::kPaymentAmount).a;
      if (blocked_instruments->Contains(v(Attr::kPayerInstrumentHash), now) ||
          blocked_devices->Contains(v(Attr::kDeviceId), now)) {
        block = true;
      }
      if (Read(attempts_per_device_1h, e, Attr::kDeviceId) >= 5 ||
          Read(small_attempts_per_ip_1h, e, Attr::kDeviceIp) >= 10) {
        block = true;
      }
      if (Read(cards_per_policy_24h, e, Attr::kPolicyId) >= 3) review = true;
      if (Read(policies_per_device_7d, e, Attr::kDeviceId) >= 3 ||
          Read(holders_per_ip_7d, e, Attr::kDeviceIp) >= 3) {
        review = true;
      }
      if (Read(names_per_device_30d, e, Attr::kDeviceId) >= 3) review = true;
      if (!v(Attr::kPayerIsPolicyholder).a) {
        const std::int64_t rel = v(Attr::kPayerRelationship).a;
        if (std::find(std::begin(h_relations), std::end(h_relations), rel) == std::end(h_relations))
          review = true;
      }
      if (Read(holders_per_instrument_90d, e, Attr::kPayerInstrumentHash) >= 3) review = true;
      if (amount > v(Attr::kPolicyPremiumDue).a * 110 / 100) review = true;
      if (amount > 2'000'000 && now - v(Attr::kCustomerCreatedAt).a < 72 * kHour) review = true;
      if ((v(Attr::kPayerCardFunding).a == h_prepaid ||
           prepaid_bins->Contains(v(Attr::kPayerCardBin), now)) &&
          amount > 100'000) {
        review = true;
      }
      if (v(Attr::kDeviceIsAnonymousIp).a || risky_ips->Contains(v(Attr::kDeviceIp), now) ||
          (v(Attr::kDeviceIpCountry).a != v(Attr::kPayerCardCountry).a &&
           v(Attr::kDeviceIpCountry).a != v(Attr::kCustomerResidenceCountry).a)) {
        score += 20;
      }
      if ((v(Attr::kCustomerEmailIsDisposable).a ||
           now - email_first_seen->Read(Key(e, Attr::kCustomerEmailHash), now).a < kHour) &&
          amount >= 500'000) {
        score += 15;
      }
    } else {  // claim payout
      const std::int64_t amount = v(Attr::kClaimAmount).a;
      const std::int64_t loss = v(Attr::kClaimLossDate).a;
      if (loss - v(Attr::kPolicyStartDate).a < 30 * kDay) score += 30;
      if (loss - v(Attr::kPolicyLastCoverageChangeAt).a < 30 * kDay ||
          loss - v(Attr::kPolicyReinstatedAt).a < 30 * kDay) {
        review = true;
      }
      if (!v(Attr::kBeneficiaryMatchesPolicyholder).a && !v(Attr::kBeneficiaryIsVerified).a)
        review = true;
      const std::int64_t claimants =
          Read(claimants_per_account_365d, e, Attr::kBeneficiaryAccountHash);
      if (claimants >= 2) review = true;
      if (claimants >= 3) block = true;
      const Value last_change = last_account_change->Read(Key(e, Attr::kClaimantId), now);
      if (last_change.present && now - last_change.a < 72 * kHour && amount > 50'000) review = true;
      if (now - account_first_seen->Read(Key(e, Attr::kBeneficiaryAccountHash), now).a < kDay)
        score += 20;
      if (Read(claims_per_holder_90d, e, Attr::kPolicyHolderId) >= 2 ||
          Read(claims_per_address_365d, e, Attr::kCustomerAddressHash) >= 3 ||
          Read(claimants_per_device_180d, e, Attr::kDeviceId) >= 2) {
        review = true;
      }
      if (amount % 10'000 == 0 && amount >= 100'000) score += 10;
      const std::int64_t limit = v(Attr::kPolicyAutoApprovalLimit).a;
      if (amount >= limit * 90 / 100 && amount < limit &&
          Read(near_limit_claims_180d, e, Attr::kClaimantId) >= 2) {
        review = true;
      }
      if (sanctioned_names->Contains(v(Attr::kBeneficiaryNameHash), now) ||
          sanctioned_ids->Contains(v(Attr::kBeneficiaryIdNumberHash), now)) {
        hard = true;
      }
      if (high_risk_countries->Contains(v(Attr::kBeneficiaryBankCountry), now) ||
          v(Attr::kBeneficiaryBankCountry).a != v(Attr::kPolicyCountry).a) {
        review = true;
      }
      if (v(Attr::kClaimReportedAt).a - loss > 30 * kDay) score += 10;
      if (Read(invoice_uses_365d, e, Attr::kClaimInvoiceHash) >= 1) block = true;
      if (blocked_accounts->Contains(v(Attr::kBeneficiaryAccountHash), now)) block = true;
    }
    Outcome o = Outcome::kAllow;
    if (hard) {
      o = Outcome::kHardBlock;
    } else if (block) {
      o = Outcome::kBlock;
    } else if (review) {
      o = Outcome::kReview;
    } else if (score >= 80) {
      o = Outcome::kBlock;
    } else if (score >= 40) {
      o = Outcome::kReview;
    }
    return {o, score};
  }
};

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "risk_bench: %s\n", why.c_str());
  std::exit(1);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--rules") {
      o.rules = next();
    } else if (a == "--customers") {
      o.customers = std::stoi(next());
    } else if (a == "--events") {
      o.events = std::stoi(next());
    } else if (a == "--min-time") {
      o.min_time = std::stod(next());
    } else {
      Die("unknown argument " + a);
    }
  }
  if (o.rules.empty())
    Die("usage: risk_bench --rules FILE [--customers N] [--events N] [--min-time S]");
  return o;
}

struct Latency {
  double p50_us;
  double p99_us;
};

template <class F>
Latency Percentiles(const std::vector<Event>& events, F&& decide) {
  std::vector<std::int64_t> ns;
  ns.reserve(events.size());
  for (const auto& e : events) {
    const auto t0 = std::chrono::steady_clock::now();
    decide(e);
    const auto t1 = std::chrono::steady_clock::now();
    ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
  }
  std::sort(ns.begin(), ns.end());
  return {ns[ns.size() / 2] / 1000.0, ns[std::min(ns.size() - 1, ns.size() * 99 / 100)] / 1000.0};
}

// Captures items_per_second of each benchmark while the console report goes to stderr.
class Capture : public benchmark::ConsoleReporter {
 public:
  Capture() : ConsoleReporter(OO_Tabular) {}
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& r : runs) {
      const auto it = r.counters.find("items_per_second");
      // Names carry the options ("engine/min_time:2.000"): key by the part before the first '/'.
      const std::string name = r.benchmark_name();
      if (it != r.counters.end()) rate[name.substr(0, name.find('/'))] = it->second.value;
    }
  }
  std::map<std::string, double> rate;
};

}  // namespace

int main(int argc, char** argv) {
  const Options opt = ParseArgs(argc, argv);
  std::ifstream in(opt.rules);
  if (!in) Die("cannot read " + opt.rules);
  std::stringstream src;
  src << in.rdbuf();
  auto compiled = risk::Compile(src.str(), opt.rules);
  if (!compiled) Die(compiled.assume_error().ToString());
  const auto pack = compiled.assume_value();

  risk::ListSetBuilder lb(1);
  std::vector<std::string> blocked_cards;
  for (int i = 0; i < 1000; ++i) {
    blocked_cards.push_back("card-blocked-" + std::to_string(i));
    if (!lb.Add("blocked_instruments", risk::ListKind::kAccountHash, blocked_cards.back()) ||
        !lb.Add("blocked_accounts", risk::ListKind::kAccountHash,
                "acct-blocked-" + std::to_string(i)) ||
        !lb.Add("blocked_devices", risk::ListKind::kDeviceId, "dev-blocked-" + std::to_string(i)) ||
        !lb.Add("sanctioned_names", risk::ListKind::kName,
                "name-sanctioned-" + std::to_string(i)) ||
        !lb.Add("sanctioned_ids", risk::ListKind::kIdNumber,
                "id-sanctioned-" + std::to_string(i)) ||
        !lb.Add("risky_ips", risk::ListKind::kIp,
                "100." + std::to_string(64 + i % 64) + "." + std::to_string(i / 64) + ".0/24") ||
        !lb.Add(
            "prepaid_bins", risk::ListKind::kBin,
            std::to_string(53000000 + i * 100) + "-" + std::to_string(53000000 + i * 100 + 49))) {
      Die("list setup failed");
    }
  }
  for (const char* c : {"KP", "IR", "SY", "CU"}) {
    if (!lb.Add("high_risk_countries", risk::ListKind::kCountry, c)) Die("list setup failed");
  }
  const auto lists = std::move(lb).Build();

  // Customers and their history.
  std::mt19937_64 rng(42);
  std::vector<Customer> cs(opt.customers);
  for (int i = 0; i < opt.customers; ++i) {
    const std::string n = std::to_string(i);
    cs[i] = {"cust-" + n,
             "dev-" + n,
             "10." + std::to_string((i / 5) / 65536 % 256) + "." +
                 std::to_string((i / 5) / 256 % 256) + "." + std::to_string((i / 5) % 256),
             "pol-" + n,
             "card-" + n,
             "em-" + n,
             "name-" + n,
             "addr-" + n,
             "acct-" + n,
             std::to_string(40000000 + (i % 5000) * 1000)};
  }
  std::vector<std::string> invoices;
  invoices.reserve(static_cast<std::size_t>(opt.customers) * 2 + opt.events);
  auto set_common = [&](Event& e, const Customer& c) {
    e.SetText(Attr::kDeviceId, c.device);
    e.SetText(Attr::kDeviceIp, c.ip);
    e.SetText(Attr::kDeviceIpCountry, "CN");
    e.SetBool(Attr::kDeviceIsAnonymousIp, false);
    e.SetText(Attr::kCustomerId, c.id);
    e.SetTime(Attr::kCustomerCreatedAt, kNow - 400 * kDay);
    e.SetText(Attr::kCustomerResidenceCountry, "CN");
    e.SetText(Attr::kCustomerNameHash, c.name);
    e.SetText(Attr::kCustomerEmailHash, c.email);
    e.SetBool(Attr::kCustomerEmailIsDisposable, false);
    e.SetText(Attr::kCustomerAddressHash, c.address);
    e.SetText(Attr::kPolicyId, c.policy);
    e.SetText(Attr::kPolicyHolderId, c.id);
    e.SetText(Attr::kPolicyCountry, "CN");
    e.SetTime(Attr::kPolicyStartDate, kNow - 200 * kDay);
    e.SetMoney(Attr::kPolicyPremiumDue, 100000, "CNY");
    e.SetMoney(Attr::kPolicyPremiumPaid, 100000, "CNY");
    e.SetTime(Attr::kPolicyLastCoverageChangeAt, kNow - 300 * kDay);
    e.SetTime(Attr::kPolicyReinstatedAt, kNow - 300 * kDay);
    e.SetMoney(Attr::kPolicyAutoApprovalLimit, 1000000, "CNY");
  };
  auto premium = [&](std::int64_t t, const Customer& c, std::uint64_t r) {
    Event e(EventType::kPremiumPayment, t);
    set_common(e, c);
    e.SetMoney(Attr::kPaymentAmount,
               r % 10 == 0 ? 600000 : 100000 + static_cast<std::int64_t>(r % 50) * 100, "CNY");
    // One payment in a hundred comes from a listed instrument.
    e.SetText(Attr::kPayerInstrumentHash,
              r % 100 == 0 ? blocked_cards[r / 100 % blocked_cards.size()] : c.card);
    e.SetText(Attr::kPayerCardBin, c.bin);
    e.SetText(Attr::kPayerCardCountry, r % 7 == 0 ? "HK" : "CN");
    e.SetText(Attr::kPayerCardFunding, r % 11 == 0 ? "prepaid" : "debit");
    e.SetText(Attr::kPayerNameHash, c.name);
    e.SetBool(Attr::kPayerIsPolicyholder, r % 13 != 0);
    e.SetText(Attr::kPayerRelationship, r % 26 == 0 ? "friend" : "spouse");
    return e;
  };
  auto payee = [&](Event& e, const Customer& c) {
    e.SetText(Attr::kClaimantId, c.id);
    e.SetText(Attr::kBeneficiaryAccountHash, c.account);
    e.SetText(Attr::kBeneficiaryNameHash, c.name);
    e.SetText(Attr::kBeneficiaryIdNumberHash, c.id);
    e.SetText(Attr::kBeneficiaryBankCountry, "CN");
    e.SetBool(Attr::kBeneficiaryMatchesPolicyholder, true);
    e.SetBool(Attr::kBeneficiaryIsVerified, true);
  };
  auto claim = [&](std::int64_t t, const Customer& c, std::uint64_t r) {
    Event e(EventType::kClaimPayout, t);
    set_common(e, c);
    payee(e, c);
    invoices.push_back("inv-" + std::to_string(invoices.size()));
    e.SetText(Attr::kClaimId, invoices.back());
    e.SetText(Attr::kClaimInvoiceHash, invoices.back());
    e.SetMoney(Attr::kClaimAmount,
               r % 5 == 0 ? 500000 : 123456 + static_cast<std::int64_t>(r % 1000), "CNY");
    e.SetTime(Attr::kClaimLossDate, t - 10 * kDay);
    e.SetTime(Attr::kClaimReportedAt, t - static_cast<std::int64_t>(r % 40) * kDay / 4);
    return e;
  };

  risk::AggregateStore store(pack, nullptr);
  for (int i = 0; i < opt.customers; ++i) {
    const Customer& c = cs[i];
    Event change(EventType::kPayoutAccountChanged,
                 kNow - static_cast<std::int64_t>(rng() % (90 * kDay)));
    set_common(change, c);
    payee(change, c);
    store.Observe(change);
    for (int k = 0; k < 2; ++k) {
      store.Observe(premium(kNow - static_cast<std::int64_t>(rng() % (30 * kDay)), c, rng()));
    }
    if (rng() % 10 < 3)
      store.Observe(
          claim(kNow - 20 * kDay - static_cast<std::int64_t>(rng() % (150 * kDay)), c, rng()));
  }

  std::vector<Event> workload;
  workload.reserve(opt.events);
  for (int i = 0; i < opt.events; ++i) {
    const Customer& c = cs[rng() % cs.size()];
    const std::int64_t t = kNow + i / 10;
    workload.push_back(rng() % 4 == 0 ? claim(t, c, rng()) : premium(t, c, rng()));
  }

  Anchor anchor;
  auto agg = [&](const char* name) {
    const int i = pack->AggregateIndex(name);
    if (i < 0) Die(std::string("the pack has no aggregate ") + name);
    return &store.state(i);
  };
  auto list = [&](const char* name) {
    const risk::TypedList* l = lists->Find(name);
    if (l == nullptr) Die(std::string("no list ") + name);
    return l;
  };
  anchor.blocked_instruments = list("blocked_instruments");
  anchor.blocked_accounts = list("blocked_accounts");
  anchor.blocked_devices = list("blocked_devices");
  anchor.risky_ips = list("risky_ips");
  anchor.prepaid_bins = list("prepaid_bins");
  anchor.sanctioned_names = list("sanctioned_names");
  anchor.sanctioned_ids = list("sanctioned_ids");
  anchor.high_risk_countries = list("high_risk_countries");
  anchor.attempts_per_device_1h = agg("attempts_per_device_1h");
  anchor.small_attempts_per_ip_1h = agg("small_attempts_per_ip_1h");
  anchor.cards_per_policy_24h = agg("cards_per_policy_24h");
  anchor.policies_per_device_7d = agg("policies_per_device_7d");
  anchor.holders_per_ip_7d = agg("holders_per_ip_7d");
  anchor.names_per_device_30d = agg("names_per_device_30d");
  anchor.holders_per_instrument_90d = agg("holders_per_instrument_90d");
  anchor.email_first_seen = agg("email_first_seen");
  anchor.claimants_per_account_365d = agg("claimants_per_account_365d");
  anchor.account_first_seen = agg("account_first_seen");
  anchor.last_account_change = agg("last_account_change");
  anchor.claims_per_holder_90d = agg("claims_per_holder_90d");
  anchor.claims_per_address_365d = agg("claims_per_address_365d");
  anchor.claimants_per_device_180d = agg("claimants_per_device_180d");
  anchor.near_limit_claims_180d = agg("near_limit_claims_180d");
  anchor.invoice_uses_365d = agg("invoice_uses_365d");
  anchor.h_prepaid = static_cast<std::int64_t>(risk::HashString("prepaid"));
  const char* relations[] = {"spouse", "parent", "child", "employer", "guardian"};
  for (int i = 0; i < 5; ++i)
    anchor.h_relations[i] = static_cast<std::int64_t>(risk::HashString(relations[i]));

  // Both must decide every workload event the same way, or the comparison means nothing.
  risk::EvalScratch scratch;
  auto decision = std::make_unique<risk::Decision>();
  std::map<Outcome, int> outcomes;
  int timeouts = 0;
  for (std::size_t i = 0; i < workload.size(); ++i) {
    risk::Evaluate(store, *lists, workload[i], scratch, *decision);
    // The budget is wall time: on a shared machine a preempted decision can run out of it. Count
    // those and decide again; the comparison is about the conditions.
    for (int retry = 0; decision->timed_out && retry < 5; ++retry) {
      ++timeouts;
      risk::Evaluate(store, *lists, workload[i], scratch, *decision);
    }
    const auto a = anchor.Decide(workload[i]);
    if (decision->outcome != a.outcome || decision->score != a.score || decision->timed_out) {
      std::string fired;
      for (std::size_t k = 0; k < decision->fired_count; ++k)
        fired += pack->rules[decision->fired[k].rule].id + " ";
      Die("fired: " + fired + "; " + "engine and anchor disagree on event " + std::to_string(i) +
          ": engine " + std::string(risk::OutcomeName(decision->outcome)) + "/" +
          std::to_string(decision->score) + ", anchor " +
          std::string(risk::OutcomeName(a.outcome)) + "/" + std::to_string(a.score));
    }
    ++outcomes[a.outcome];
  }
  std::fprintf(
      stderr,
      "risk_bench: %d customers, %zu events agree: allow=%d review=%d block=%d hard_block=%d "
      "(decided again after a timeout: %d)\n",
      opt.customers, workload.size(), outcomes[Outcome::kAllow], outcomes[Outcome::kReview],
      outcomes[Outcome::kBlock], outcomes[Outcome::kHardBlock], timeouts);

  std::size_t next_engine = 0;
  std::size_t next_anchor = 0;
  benchmark::RegisterBenchmark("engine", [&](benchmark::State& state) {
    for (auto _ : state) {
      risk::Evaluate(store, *lists, workload[next_engine], scratch, *decision);
      benchmark::DoNotOptimize(decision->outcome);
      if (++next_engine == workload.size()) next_engine = 0;
    }
    state.SetItemsProcessed(state.iterations());
  })->MinTime(opt.min_time);
  benchmark::RegisterBenchmark("anchor", [&](benchmark::State& state) {
    for (auto _ : state) {
      auto r = anchor.Decide(workload[next_anchor]);
      benchmark::DoNotOptimize(r);
      if (++next_anchor == workload.size()) next_anchor = 0;
    }
    state.SetItemsProcessed(state.iterations());
  })->MinTime(opt.min_time);
  int bargc = 1;
  char* bargv[] = {argv[0], nullptr};
  benchmark::Initialize(&bargc, bargv);
  Capture capture;
  capture.SetOutputStream(&std::cerr);
  capture.SetErrorStream(&std::cerr);
  benchmark::RunSpecifiedBenchmarks(&capture);
  const double ours = capture.rate["engine"];
  const double theirs = capture.rate["anchor"];
  if (ours <= 0 || theirs <= 0) Die("benchmark produced no rates");

  const Latency lo = Percentiles(workload, [&](const Event& e) {
    risk::Evaluate(store, *lists, e, scratch, *decision);
    benchmark::DoNotOptimize(decision->outcome);
  });
  const Latency la = Percentiles(workload, [&](const Event& e) {
    auto r = anchor.Decide(e);
    benchmark::DoNotOptimize(r);
  });
  std::printf(
      "BENCH risk customers=%d decisions_per_s=%.0f p50_us=%.2f p99_us=%.2f "
      "anchor_decisions_per_s=%.0f "
      "anchor_p50_us=%.2f anchor_p99_us=%.2f anchor=%.0f ratio=%.3f\n",
      opt.customers, ours, lo.p50_us, lo.p99_us, theirs, la.p50_us, la.p99_us, theirs,
      ours / theirs);
  return 0;
}
