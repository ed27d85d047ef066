#pragma once

// paygatectl risk ... (issue 5): list administration from the command line (the same audited
// changes as the API, by principal "paygatectl:<user>") and backtests of a candidate ruleset
// against stored history. They open the database the way paygated does.
#include <cstdint>
#include <optional>
#include <string>

#include "config/paygate_config.pb.h"

namespace paygate::gateway {

struct RiskListArgs {
  std::string list;
  std::string value;
  std::string kind;        // add: for a list the ruleset does not declare
  bool hashed = false;     // value is already the stored form
  std::string expires_at;  // add: UTC, empty: never
  std::string note;
};

// `paygatectl risk list add|remove|show`. Exit 0 on success, 1 on errors, 2 on refused input.
int RunRiskListAdd(const config::v1::Config& config, const RiskListArgs& args);
int RunRiskListRemove(const config::v1::Config& config, const RiskListArgs& args);
int RunRiskListShow(const config::v1::Config& config, const std::string& list);

// `paygatectl risk backtest RULESET --from TIME --to TIME`: replays the events stored in
// [from, to) (after replaying the history their aggregates need) through RULESET with today's
// lists, and prints how the outcomes would change against the stored live decisions: the outcome
// transitions, then per rule how often it fired before and after. Exit 0, 1 on errors, 2 when
// RULESET does not compile (its positioned errors are printed).
int RunRiskBacktest(const config::v1::Config& config, const std::string& ruleset_file,
                    const std::string& from, const std::string& to);

}  // namespace paygate::gateway
