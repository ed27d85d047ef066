#!/usr/bin/env bash
# tests/bench/risk/run.sh [--smoke]: the risk engine benchmark (issue 5, DESIGN.md §8).
# risk_bench decides premium payments and claim payouts with the insurance pack (config/rules/
# insurance.rules) over aggregate state for 100,000 distinct customers, every aggregate lookup and list
# check included, on one thread pinned to one core. The anchor, in the same run and process, evaluates
# the same conditions as hand-written ifs over the same aggregate state and lists; before measuring,
# both must agree on every decision. Prints on stdout one line:
#   BENCH risk customers=100000 decisions_per_s=<ours> p50_us=.. p99_us=.. anchor_decisions_per_s=..
#     anchor_p50_us=.. anchor_p99_us=.. anchor=<anchor decisions/s> ratio=<ours/anchor>
# Targets (issue 5): p99_us < 10 and ratio >= 0.5.
# Full mode: 3 s per measurement. --smoke: 20,000 customers, 0.1 s each; only proves the line appears.
# Env: PAYGATE_BENCH_PRESET (default release; dev in smoke mode), PAYGATE_BENCH_BUILD_DIR (the binary from
# this build dir instead of build/<preset>; implies PAYGATE_BENCH_SKIP_BUILD=1), PAYGATE_BENCH_SKIP_BUILD=1
# (use the existing build), PAYGATE_BENCH_SECONDS (override the measurement time).
set -euo pipefail

# Only the BENCH line goes to stdout (fd 3); everything else goes to stderr.
exec 3>&1 1>&2

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/local/lib.sh
source "$here/../../../deploy/local/lib.sh"
cd "$PAYGATE_ROOT"

smoke=0
[[ ${1:-} == --smoke ]] && smoke=1
if ((smoke)); then
  secs=0.1 customers=20000 events=20000 preset=${PAYGATE_BENCH_PRESET:-dev}
else
  secs=3 customers=100000 events=200000 preset=${PAYGATE_BENCH_PRESET:-release}
fi
secs=${PAYGATE_BENCH_SECONDS:-$secs}

build_dir=${PAYGATE_BENCH_BUILD_DIR:-build/$preset}
if [[ -z ${PAYGATE_BENCH_BUILD_DIR:-} && ${PAYGATE_BENCH_SKIP_BUILD:-0} != 1 ]]; then
  build_preset "$preset" risk_bench
fi
bench_bin=$build_dir/tests/bench/risk/risk_bench
[[ -x $bench_bin ]] || die "no $bench_bin (build target risk_bench)"

# One core: the last one, so the shell and other tools rather use the first.
pin=()
if command -v taskset >/dev/null; then
  pin=(taskset -c "$(($(nproc) - 1))")
fi
out=$("${pin[@]}" "$bench_bin" --rules config/rules/insurance.rules --customers "$customers" --events "$events" \
  --min-time "$secs") || die "risk_bench failed"
line=$(grep '^BENCH risk ' <<<"$out") || die "risk_bench printed no BENCH line: $out"
log "risk_bench: $line"
printf '%s\n' "$line" >&3
