#pragma once

// Shared helpers of the risk engine's unit tests: compiling inline rulesets, and a harness that
// decides events against one ruleset, one list snapshot and one aggregate store the way the gateway
// will (evaluate, then observe).
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "gateway/risk/aggregates.h"
#include "gateway/risk/decision.h"
#include "gateway/risk/evaluator.h"
#include "gateway/risk/lists.h"
#include "gateway/risk/ruleset.h"

namespace paygate::risk::testing {

inline std::shared_ptr<const CompiledRuleset> MustCompile(std::string_view source) {
  auto r = Compile(source, "test.rules");
  if (!r) {
    ADD_FAILURE() << r.assume_error().ToString();
    return nullptr;
  }
  return r.assume_value();
}

// The compile errors of `source`, one per line ("" when it compiles).
inline std::string ErrorsOf(std::string_view source) {
  auto r = Compile(source, "test.rules");
  return r ? std::string() : r.assume_error().ToString();
}

inline std::string ReadSourceFile(const std::string& relative) {
  const char* root = std::getenv("PAYGATE_SOURCE_DIR");
  const std::string path = std::string(root != nullptr ? root : ".") + "/" + relative;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline constexpr std::int64_t kT0 = 1'790'000'000;  // an arbitrary instant in 2026 (Unix seconds)
inline constexpr std::int64_t kMinute = 60;
inline constexpr std::int64_t kHour = 3600;
inline constexpr std::int64_t kDay = 86400;

// A budget clock that advances one nanosecond per reading: evaluation times are positive and
// deterministic, and a test never times out because the machine was busy.
inline std::int64_t TickingClock() {
  static std::atomic<std::int64_t> ns{0};
  return ns.fetch_add(1, std::memory_order_relaxed) + 1;
}

class Harness {
 public:
  explicit Harness(std::shared_ptr<const CompiledRuleset> ruleset)
      : store_(std::move(ruleset), nullptr), lists_(ListSetBuilder(0).Build()) {}

  void SetLists(std::shared_ptr<const ListSet> lists) { lists_ = std::move(lists); }
  AggregateStore& store() { return store_; }

  // Decides without counting the event.
  const Decision& Decide(const Event& event) {
    Evaluate(store_, *lists_, event, scratch_, decision_, &TickingClock);
    return decision_;
  }
  // Decides, then counts the event (the request path).
  const Decision& DecideAndObserve(const Event& event) {
    Decide(event);
    store_.Observe(event);
    return decision_;
  }
  void Observe(const Event& event) { store_.Observe(event); }

 private:
  AggregateStore store_;
  std::shared_ptr<const ListSet> lists_;
  EvalScratch scratch_;
  Decision decision_;
};

}  // namespace paygate::risk::testing
