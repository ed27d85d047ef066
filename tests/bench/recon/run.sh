#!/usr/bin/env bash
# tests/bench/recon/run.sh [--smoke]: the reconciliation benchmark (issue 8, DESIGN.md §8).
# paygate's import of a generated WeChat Pay trade bill of 1,000,000 payment lines against 1,000,000 of
# our attempts (streamed parse, COPY of the lines with their match results, exceptions, ledger postings,
# balance reconciliation, all in one transaction) against the anchor, in the same run on the same private
# PostgreSQL: COPY of the same rows into a bare table plus one SQL hash join on the reference. Prints
#   BENCH recon lines=<n> seconds=<ours> anchor_seconds=<anchor> anchor=<anchor> ratio=<anchor/ours>
#     peak_rss_mb=<our process's peak RSS>
# Targets: ratio >= 1 (no slower than the bare database doing only the join), peak memory < 1 GiB.
# --smoke: 2,000 lines; only proves the line appears. Env: PAYGATE_BENCH_PRESET (default release; dev in
# smoke mode), PAYGATE_BENCH_SKIP_BUILD=1, PAYGATE_BENCH_LINES, PAYGATE_BENCH_KEEP=1.
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
  lines=2000 preset=${PAYGATE_BENCH_PRESET:-dev}
else
  lines=1000000 preset=${PAYGATE_BENCH_PRESET:-release}
fi
lines=${PAYGATE_BENCH_LINES:-$lines}
bench_bin=build/$preset/tests/bench/recon/recon_bench

tmp=$(mktemp -d "${TMPDIR:-/tmp}/paygate-bench-recon.XXXXXX")
chmod 0755 "$tmp"
ok=0
# shellcheck disable=SC2317 # invoked by trap
cleanup() {
  local rc=$?
  trap - EXIT
  trap '' INT TERM
  stop_private_pg
  if ((!ok)) && [[ -s $tmp/state/pg/postgres.log ]]; then
    log "--- tail of $tmp/state/pg/postgres.log"
    tail -n 20 "$tmp/state/pg/postgres.log" >&2
  fi
  if [[ ${PAYGATE_BENCH_KEEP:-0} == 1 ]]; then log "kept $tmp"; else rm -rf "$tmp"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ ${PAYGATE_BENCH_SKIP_BUILD:-0} != 1 ]]; then
  build_preset "$preset" recon_bench
fi
[[ -x $bench_bin ]] || die "no $bench_bin (build preset $preset, target recon_bench)"

log "generating a bill of $lines lines"
mkdir -p "$tmp/files"
"$bench_bin" --generate "$tmp/files" --lines "$lines"
start_private_pg "$tmp/state"
log "setting up $lines orders and attempts"
"$bench_bin" --url "$PAYGATE_DATABASE_URL" --setup --lines "$lines"
# The setup wrote as much WAL as the measured part will: checkpoint now (as the superuser the
# private cluster has), so the timed runs start from the same clean state and neither pays for it.
_pg_psql "$tmp/state/pg" "$PAYGATE_PG_PORT" -c CHECKPOINT
log "measuring"
out=$("$bench_bin" --url "$PAYGATE_DATABASE_URL" --run "$tmp/files" --lines "$lines") || die "recon_bench failed"
log "recon_bench: $out"
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$out"; }
ok=1
printf 'BENCH recon lines=%s seconds=%s anchor_seconds=%s anchor=%s ratio=%s peak_rss_mb=%s\n' \
  "$(field lines)" "$(field seconds)" "$(field anchor_seconds)" "$(field anchor_seconds)" \
  "$(field ratio)" "$(field peak_rss_mb)" >&3
