#pragma once

// Whether this build runs under AddressSanitizer (the `asan` preset). Its shadow memory and its
// quarantine of freed blocks grow the resident set by far more than the code under test does, so
// tests that bound a process's memory skip that one bound there; everything else they check still
// runs.
namespace paygate::testing {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kUnderAddressSanitizer = true;
#else
inline constexpr bool kUnderAddressSanitizer = false;
#endif

}  // namespace paygate::testing
