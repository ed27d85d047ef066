#pragma once

// The result type used across paygate module boundaries (STYLE.md "Errors and async"): fallible functions
// return a value or an error, never throw across a module boundary.
#include <boost/outcome/result.hpp>
#include <boost/outcome/try.hpp>

namespace paygate {

namespace outcome = boost::outcome_v2;

// Result<T> carries a std::error_code from a per-module error category by default. Other error types (for
// example a list of configuration errors) terminate if .value() is called on an error, so callers must check.
template <class T, class E = std::error_code>
using Result = outcome::result<T, E, outcome::policy::default_policy<T, E, void>>;

}  // namespace paygate
