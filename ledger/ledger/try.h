#pragma once

// Early-return helpers for Result<T> (config/result.h). Boost 1.74's BOOST_OUTCOME_TRY only
// declares new variables; these also assign to existing ones: LEDGER_TRY(auto x, Foo()) or
// LEDGER_TRY(s.field, Foo()). The CO_ forms are for coroutines (co_return).
#include <utility>

#define LEDGER_TRY_CONCAT_INNER(a, b) a##b
#define LEDGER_TRY_CONCAT(a, b) LEDGER_TRY_CONCAT_INNER(a, b)
#define LEDGER_TRY_TMP LEDGER_TRY_CONCAT(ledger_try_tmp_, __LINE__)

#define LEDGER_TRY_IMPL(tmp, ret, lhs, ...) \
  auto tmp = (__VA_ARGS__);                 \
  if (!tmp) ret tmp.error();                \
  lhs = std::move(tmp).value()

#define LEDGER_TRY(lhs, ...) LEDGER_TRY_IMPL(LEDGER_TRY_TMP, return, lhs, __VA_ARGS__)
#define LEDGER_CO_TRY(lhs, ...) LEDGER_TRY_IMPL(LEDGER_TRY_TMP, co_return, lhs, __VA_ARGS__)

// For a Result<void> or a value that is not needed.
#define LEDGER_CO_TRYV(...)                            \
  do {                                                 \
    auto ledger_try_v = (__VA_ARGS__);                 \
    if (!ledger_try_v) co_return ledger_try_v.error(); \
  } while (0)
