#!/usr/bin/env bash
# tests/bench/ledger/run.sh [--smoke]: the ledger benchmark (issue 3, DESIGN.md §8).
# paygate's ledger (PostgresLedger with its group-commit batcher, driven by ledger_bench: N callers each
# posting one "premium paid" transfer at a time, all crediting premiums_received) against the anchor,
# pgbench running anchor.sql (one payment's writes per transaction: insert the transfer, update the
# merchant's and the hot account's balance), at concurrency 8 and 64, in the same run against the same
# private PostgreSQL cluster with full durability (fsync=on, synchronous_commit=on). Prints on stdout one
# line per concurrency:
#   BENCH ledger concurrency=<n> tps=<ours> p50_ms=<ours> p99_ms=<ours> batch_avg=<transfers per batch>
#     anchor=<pgbench tps> anchor_p50_ms=<...> anchor_p99_ms=<...> ratio=<ours/anchor>
# Latencies are per transfer, from the call to its durable result (pgbench: per transaction).
# Full mode: 20 s per measurement after 2 s of warm-up. --smoke: 2 s each; only proves the lines appear.
# Env: PAYGATE_BENCH_PRESET (default release; dev in smoke mode), PAYGATE_BENCH_SKIP_BUILD=1 (use the
# existing build), PAYGATE_BENCH_SECONDS (override the measurement time), PAYGATE_BENCH_CONCURRENCY
# (default "8 64"), PAYGATE_BENCH_KEEP=1 (keep the temp dir with the cluster's log).
set -euo pipefail

# Only the BENCH lines go to stdout (fd 3); everything else, ours and every tool's, goes to stderr.
exec 3>&1 1>&2

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/local/lib.sh
source "$here/../../../deploy/local/lib.sh"
cd "$PAYGATE_ROOT"

smoke=0
[[ ${1:-} == --smoke ]] && smoke=1
if ((smoke)); then
  secs=2 warmup=0.5 preset=${PAYGATE_BENCH_PRESET:-dev}
else
  secs=20 warmup=2 preset=${PAYGATE_BENCH_PRESET:-release}
fi
secs=${PAYGATE_BENCH_SECONDS:-$secs}
read -ra concurrencies <<<"${PAYGATE_BENCH_CONCURRENCY:-8 64}"
merchants=1000
bench_bin=build/$preset/tests/bench/ledger/ledger_bench
pgbench=$(pg_bin)/pgbench
psql_bin=$(pg_bin)/psql
[[ -x $pgbench ]] || die "ledger bench needs pgbench (package postgresql)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/paygate-bench-ledger.XXXXXX")
chmod 0755 "$tmp" # the postgres account must reach its data dir inside
ok=0

# shellcheck disable=SC2317 # invoked by trap
cleanup() {
  local rc=$?
  trap - EXIT
  trap '' INT TERM # finish cleaning up even on a second Ctrl-C
  stop_private_pg
  if ((!ok)) && [[ -s $tmp/state/pg/postgres.log ]]; then
    log "--- tail of $tmp/state/pg/postgres.log"
    tail -n 20 "$tmp/state/pg/postgres.log" >&2
  fi
  if [[ ${PAYGATE_BENCH_KEEP:-0} == 1 ]]; then
    log "kept $tmp"
  else
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build --------------------------------------------------------------------------------------------------
if [[ ${PAYGATE_BENCH_SKIP_BUILD:-0} != 1 ]]; then
  build_preset "$preset" ledger_bench
fi
[[ -x $bench_bin ]] || die "no $bench_bin (build preset $preset, target ledger_bench)"

# --- database -----------------------------------------------------------------------------------------------
start_private_pg "$tmp/state"
# pg_as ROLE ARGS...: psql over the private socket.
pg_as() {
  local role=$1
  shift
  "$psql_bin" -X -q -v ON_ERROR_STOP=1 -h "$PAYGATE_PG_SOCKET_DIR" -p "$PAYGATE_PG_PORT" -U "$role" "$@"
}
# The targets only mean something with full durability: refuse to measure without it.
for setting in fsync synchronous_commit full_page_writes; do
  [[ $(pg_as postgres -d postgres -tAc "SHOW $setting") == on ]] || die "$setting is not on in the bench cluster"
done
pg_as postgres -d postgres -c 'CREATE DATABASE anchor OWNER paygate'
pg_as paygate -d anchor -v merchants="$merchants" -f "$here/anchor_schema.sql"
anchor_url="postgresql://paygate@127.0.0.1:$PAYGATE_PG_PORT/anchor"
"$bench_bin" --url "$PAYGATE_DATABASE_URL" --setup --merchants "$merchants" --concurrency 1 \
  --seconds 0.2 --warmup-seconds 0 --tag setup >/dev/null

# --- load ---------------------------------------------------------------------------------------------------
# run_anchor N: prints "<tps> <p50 ms> <p99 ms>" of one pgbench run at N clients (latencies from its
# per-transaction log).
run_anchor() {
  local n=$1 out logdir
  logdir=$tmp/pgbench-$n
  mkdir -p "$logdir"
  out=$(cd "$logdir" && "$pgbench" -n -M prepared -c "$n" -j 2 -T "$secs" -D merchants="$merchants" \
    -f "$here/anchor.sql" --log --log-prefix="$logdir/tx" "$anchor_url" 2>&1) || {
    printf '%s\n' "$out" >&2
    die "pgbench failed at concurrency $n"
  }
  printf '%s\n' "$out" | sed 's/^/  pgbench| /' >&2
  local tps
  tps=$(awk '/^tps = / { print $3; exit }' <<<"$out")
  [[ $tps =~ ^[0-9.]+$ ]] || die "could not parse pgbench output"
  if grep -Eq '^number of failed transactions: [1-9]' <<<"$out"; then die "pgbench transactions failed"; fi
  # Log lines: client_id transaction_no time_us script_no time_epoch time_us_part.
  cat "$logdir"/tx.* | awk '{ print $3 }' | sort -n | awk -v tps="$tps" '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print "empty pgbench log" > "/dev/stderr"; exit 1 }
      i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
      i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
      printf "%s %.3f %.3f\n", tps, v[i50] / 1000, v[i99] / 1000
    }' || die "could not read the pgbench log"
}

# run_ledger N: prints ledger_bench's result line (key=value fields) at N callers.
run_ledger() {
  local n=$1 out
  out=$("$bench_bin" --url "$PAYGATE_DATABASE_URL" --merchants "$merchants" --concurrency "$n" \
    --seconds "$secs" --warmup-seconds "$warmup" --tag "c$n") || die "ledger_bench failed at concurrency $n"
  log "ledger_bench c=$n: $out"
  printf '%s\n' "$out"
}

field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

lines=()
for n in "${concurrencies[@]}"; do
  log "concurrency $n: anchor (pgbench) ${secs}s"
  # Separate assignments: a failing run must stop the script (set -e ignores it inside an argument).
  res=$(run_anchor "$n")
  read -r anchor_tps anchor_p50 anchor_p99 <<<"$res"
  log "concurrency $n: ledger ${warmup}s + ${secs}s"
  ours=$(run_ledger "$n")
  lines+=("$(awk -v n="$n" -v t="$(field tps "$ours")" -v p50="$(field p50_ms "$ours")" \
    -v p99="$(field p99_ms "$ours")" -v b="$(field batch_avg "$ours")" -v a="$anchor_tps" \
    -v a50="$anchor_p50" -v a99="$anchor_p99" 'BEGIN {
      printf "BENCH ledger concurrency=%d tps=%.1f p50_ms=%.3f p99_ms=%.3f batch_avg=%.1f anchor=%.1f", n, t, p50, p99, b, a
      printf " anchor_p50_ms=%.3f anchor_p99_ms=%.3f ratio=%.3f\n", a50, a99, t / a }')")
done
ok=1
printf '%s\n' "${lines[@]}" >&3
