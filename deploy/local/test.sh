#!/usr/bin/env bash
# test.sh: build and run paygate's test suite, then the benchmark smoke.
#   packages -> configure + build preset (PAYGATE_PRESET, default dev) -> tests/bench/run.sh --smoke
#   -> ctest. Exits non-zero if either failed (ctest's status first).
# No external database is needed: test fixtures start their own private PostgreSQL clusters.
# PAYGATE_BENCH_SMOKE=0 skips the benchmark smoke (quicker local loops); CI always runs it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/local/lib.sh
source "$here/lib.sh"
cd "$PAYGATE_ROOT" # ctest --preset reads CMakePresets.json from the current directory

preset=${PAYGATE_PRESET:-dev}
# Integration tests each start a PostgreSQL cluster and a server: more than 2 at once overloads 2 cores
# and turns timeouts into flaky failures.
test_jobs=${PAYGATE_TEST_JOBS:-2}
((test_jobs > 2)) && test_jobs=2

ensure_packages
build_preset "$preset"
# What the build left on disk, and what is still free: a full disk fails a build with an unrelated error.
log "build folder: $(du -sh "build/$preset" | cut -f1); free: $(free_disk)"

# The benchmark smoke runs before ctest so that ctest's summary stays the last thing printed; it reuses
# the build just made instead of building the release preset.
bench_rc=0
if [[ ${PAYGATE_BENCH_SMOKE:-1} != 0 ]]; then
  log "benchmark smoke (tests/bench/run.sh --smoke, preset $preset)"
  PAYGATE_BENCH_PRESET=${PAYGATE_BENCH_PRESET:-$preset} PAYGATE_BENCH_SKIP_BUILD=1 \
    tests/bench/run.sh --smoke || bench_rc=$?
  ((bench_rc == 0)) || log "benchmark smoke FAILED (status $bench_rc)"
fi

# --no-tests=error: a suite that silently lost all its tests must not pass.
test_rc=0
ctest --preset "$preset" --output-on-failure --no-tests=error -j"$test_jobs" || test_rc=$?

((test_rc != 0)) && exit "$test_rc"
exit "$bench_rc"
