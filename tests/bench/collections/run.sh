#!/usr/bin/env bash
# tests/bench/collections/run.sh [--smoke]: the collections benchmark (issue 4, DESIGN.md §8).
# Premium payments created through the whole request path of paygated (mutual TLS, authentication,
# idempotency, the database and the sandbox adapter; paygate-sandbox only creates, it never completes)
# by collections_load: 64 keep-alive connections as the sales platform, one request at a time each,
# every request with its own Idempotency-Key. The anchor is pgbench's built-in TPC-B-like script
# (`pgbench -i -s 10`, then `-n -c 64 -j 2`) on the same private PostgreSQL cluster with full durability,
# in the same run. Prints on stdout two lines:
#   BENCH collections concurrency=64 rps=<created/s> p50_ms=.. p99_ms=.. gateway_p50_us=.. gateway_p99_us=..
#     db_commits_per_payment=<paygated's commits / payments, approximate> anchor=<pgbench tps> ratio=<rps/anchor>
#   BENCH collections rate=<offered/s, half the peak> rps=<created/s> p50_ms=.. p99_ms=.. gateway_p50_us=..
#     gateway_p99_us=.. p99_budget_ms=25 anchor=<pgbench tps> ratio=<rps/anchor>
# The first is closed-loop (the peak rate); the second open-loop at half of it, latency measured from
# when each request was due. Latencies are client-side, per request; gateway_* is paygated's own time
# per request without the provider's (its Paygate-Gateway-Time-Us response header).
# Targets (issue 4): ratio >= 1.5 on the first line; p99_ms < 25 on the second.
# Full mode: 20 s per measurement after 2 s of warm-up. --smoke: 3 s each; only proves the lines appear.
# Env: PAYGATE_BENCH_PRESET (default release; dev in smoke mode), PAYGATE_BENCH_BUILD_DIR (binaries from
# this build dir instead of build/<preset>; implies PAYGATE_BENCH_SKIP_BUILD=1), PAYGATE_BENCH_SKIP_BUILD=1
# (use the existing build), PAYGATE_BENCH_SECONDS (override the measurement time),
# PAYGATE_BENCH_CONCURRENCY (default 64), PAYGATE_BENCH_POOL_SIZE (paygated's database.pool_size_max;
# default: its own default), PAYGATE_BENCH_KEEP=1 (keep the temp dir with logs and configs).
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
  secs=3 warmup=0.5 scale=10 preset=${PAYGATE_BENCH_PRESET:-dev}
else
  secs=20 warmup=2 scale=10 preset=${PAYGATE_BENCH_PRESET:-release}
fi
secs=${PAYGATE_BENCH_SECONDS:-$secs}
concurrency=${PAYGATE_BENCH_CONCURRENCY:-64}
p99_budget_ms=25
build_dir=build/$preset
skip_build=${PAYGATE_BENCH_SKIP_BUILD:-0}
if [[ -n ${PAYGATE_BENCH_BUILD_DIR:-} ]]; then
  build_dir=$PAYGATE_BENCH_BUILD_DIR skip_build=1
fi
paygated=$build_dir/gateway/paygated
paygatectl=$build_dir/gateway/paygatectl
sandbox=$build_dir/adapters/sandbox/paygate-sandbox
driver=$build_dir/tests/bench/collections/collections_load
pgbench=$(pg_bin)/pgbench
psql_bin=$(pg_bin)/psql
[[ -x $pgbench ]] || die "collections bench needs pgbench (package postgresql)"
for tool in curl openssl ss; do
  command -v "$tool" >/dev/null || die "collections bench needs $tool (deploy/local/lib.sh: ensure_packages)"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/paygate-bench-collections.XXXXXX")
chmod 0755 "$tmp" # the postgres account must reach its data dir inside
daemon_pid='' sandbox_pid='' ok=0

_alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# stop_pid PID: SIGTERM (paygated drains), wait up to 30 s, then SIGKILL; reaps our child.
stop_pid() {
  local pid=$1 deadline=$((SECONDS + 30))
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  while _alive "$pid"; do
    ((SECONDS > deadline)) && kill -KILL "$pid" 2>/dev/null
    sleep 0.1
  done
  wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317 # invoked by trap
cleanup() {
  local rc=$?
  trap - EXIT
  trap '' INT TERM # finish cleaning up even on a second Ctrl-C
  stop_pid "$daemon_pid"
  stop_pid "$sandbox_pid"
  stop_private_pg
  if ((!ok)); then
    local f
    for f in "$tmp"/paygated.log "$tmp"/sandbox.log "$tmp"/state/pg/postgres.log; do
      [[ -s $f ]] && {
        log "--- tail of $f"
        tail -n 20 "$f" >&2
      }
    done
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
if [[ $skip_build != 1 ]]; then
  build_preset "$preset" paygated paygatectl paygate-sandbox collections_load
fi
for bin in "$paygated" "$paygatectl" "$sandbox" "$driver"; do
  [[ -x $bin ]] || die "no $bin (build preset $preset: paygated paygatectl paygate-sandbox collections_load)"
done

# --- PKI, database, secrets, config -------------------------------------------------------------------------
pki=$tmp/pki
"$PAYGATE_ROOT/deploy/local/dev-pki.sh" "$pki"
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

mkdir -p "$tmp/sandbox"
(umask 077 && openssl rand -hex 32 >"$tmp/sandbox/m1.secret")

api_port=$(free_port)
admin_port=$(free_port "$api_port")
sandbox_port=$(free_port "$api_port" "$admin_port")

# local.yaml's shape with bench ports and absolute paths, client certificates required (the sales
# platform always presents one), a keep-alive bound no run reaches, and no access log.
config=$tmp/paygated.yaml
cat >"$config" <<EOF
# Generated by tests/bench/collections/run.sh.
api:
  address: 127.0.0.1
  port: $api_port
  tls:
    cert_file: $pki/server.crt
    key_file: $pki/server.key
    client_ca_file: $pki/ca.crt
    client_cert: required
  limits:
    keepalive_requests_max: 1000000
admin:
  address: 127.0.0.1
  port: $admin_port
  tls:
    cert_file: $pki/server.crt
    key_file: $pki/server.key
    client_cert: none
database:
  url: $PAYGATE_DATABASE_URL
${PAYGATE_BENCH_POOL_SIZE:+  pool_size_max: $PAYGATE_BENCH_POOL_SIZE}
payments:
  currencies: [CNY]
  amount_max_minor: 100000000
  order_ttl_s: 1800
  callback_base_url: https://127.0.0.1:$api_port
  routes:
    - {method: sandbox, provider: sandbox, merchant_account: m1}
providers:
  - provider: sandbox
    merchant_account: m1
    sandbox:
      base_url: https://127.0.0.1:$sandbox_port
      ca_file: $pki/ca.crt
      secret_key_id: sandbox.m1
logging:
  level: warn
  access_log: false
principals:
  - {name: sales-platform, client_cert_common_name: sales-platform, roles: [sales]}
keys:
  master_key: {id: bench-master, file: $tmp/sandbox/master.key}
  entries:
    - {id: sandbox.m1, file: $tmp/sandbox/m1.secret}
EOF
(umask 077 && openssl rand -hex 32 >"$tmp/sandbox/master.key")

"$paygated" --check-config "$config" || die "generated $config does not validate"
"$paygatectl" migrate --config "$config"

# The anchor's tables live in their own database of the same cluster.
pg_as postgres -d postgres -c 'CREATE DATABASE anchor OWNER paygate'
anchor_url="postgresql://paygate@127.0.0.1:$PAYGATE_PG_PORT/anchor"
log "pgbench -i -s $scale"
"$pgbench" -i -q -s "$scale" "$anchor_url" 2>&1 | sed 's/^/  pgbench| /' >&2

# --- start the sandbox provider and paygated ----------------------------------------------------------------
# Creation only: --auto-complete-ms 0 means no payment completes and no callback comes back during the run.
"$sandbox" --cert "$pki/server.crt" --key "$pki/server.key" --callback-ca "$pki/ca.crt" \
  --merchant "m1=$tmp/sandbox/m1.secret" --listen 127.0.0.1 --port "$sandbox_port" --auto-complete-ms 0 \
  </dev/null >"$tmp/sandbox.log" 2>&1 &
sandbox_pid=$!
deadline=$((SECONDS + 20))
until [[ -n $(ss -Htln "sport = :$sandbox_port") ]]; do
  _alive "$sandbox_pid" || die "paygate-sandbox exited before listening on port $sandbox_port"
  ((SECONDS < deadline)) || die "paygate-sandbox did not listen on port $sandbox_port within 20 s"
  sleep 0.2
done

"$paygated" --config "$config" </dev/null >"$tmp/paygated.log" 2>&1 &
daemon_pid=$!
deadline=$((SECONDS + 60))
until curl -fs -o /dev/null --max-time 2 --cacert "$pki/ca.crt" "https://127.0.0.1:$admin_port/readyz"; do
  _alive "$daemon_pid" || die "paygated exited before it was ready"
  ((SECONDS < deadline)) || die "paygated was not ready within 60 s"
  sleep 0.2
done

# --- load ---------------------------------------------------------------------------------------------------
# run_anchor: prints pgbench's tps at $concurrency clients.
run_anchor() {
  local out tps
  out=$("$pgbench" -n -c "$concurrency" -j 2 -T "$secs" "$anchor_url" 2>&1) || {
    printf '%s\n' "$out" >&2
    die "pgbench failed"
  }
  printf '%s\n' "$out" | sed 's/^/  pgbench| /' >&2
  if grep -Eq '^number of failed transactions: [1-9]' <<<"$out"; then die "pgbench transactions failed"; fi
  tps=$(awk '/^tps = / { print $3; exit }' <<<"$out")
  [[ $tps =~ ^[0-9.]+$ ]] || die "could not parse pgbench output"
  printf '%s\n' "$tps"
}

# run_driver TAG [--rate R]: prints collections_load's result line (key=value fields).
run_driver() {
  local tag=$1 out
  shift
  out=$("$driver" --port "$api_port" --ca "$pki/ca.crt" --cert "$pki/sales-platform.crt" \
    --key "$pki/sales-platform.key" --concurrency "$concurrency" --seconds "$secs" \
    --warmup-seconds "$warmup" --tag "$tag" "$@") || die "collections_load failed ($tag)"
  _alive "$daemon_pid" || die "paygated died"
  log "collections_load $tag: $out"
  printf '%s\n' "$out"
}

field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

log "anchor: pgbench TPC-B-like -c $concurrency ${secs}s"
anchor=$(run_anchor)
# commits: transactions committed in paygated's database so far (statistics lag by up to a second,
# noise next to a run's thousands); per created payment it shows how much batching happens.
commits() { pg_as postgres -d postgres -tAc "SELECT xact_commit FROM pg_stat_database WHERE datname = 'paygate'"; }
log "peak: closed loop, $concurrency connections, ${warmup}s + ${secs}s"
commits_before=$(commits)
peak=$(run_driver "peak-$$")
sleep 1 # let the statistics catch up
commits_after=$(commits)
peak_rps=$(field rps "$peak")
half=$(awk -v r="$peak_rps" 'BEGIN { printf "%.1f", r / 2 }')
log "half of the peak: open loop at $half/s, ${warmup}s + ${secs}s"
at_half=$(run_driver "half-$$" --rate "$half")

line1=$(awk -v n="$concurrency" -v r="$peak_rps" -v p50="$(field p50_ms "$peak")" \
  -v p99="$(field p99_ms "$peak")" -v g50="$(field gateway_p50_us "$peak")" \
  -v g99="$(field gateway_p99_us "$peak")" -v a="$anchor" -v s="$secs" -v w="$warmup" \
  -v c=$((commits_after - commits_before)) 'BEGIN {
    printf "BENCH collections concurrency=%d rps=%.1f p50_ms=%.3f p99_ms=%.3f", n, r, p50, p99
    printf " gateway_p50_us=%d gateway_p99_us=%d", g50, g99
    printf " db_commits_per_payment=%.2f anchor=%.1f ratio=%.3f\n", c / (r * (s + w)), a, r / a }')
line2=$(awk -v rate="$half" -v r="$(field rps "$at_half")" -v p50="$(field p50_ms "$at_half")" \
  -v p99="$(field p99_ms "$at_half")" -v g50="$(field gateway_p50_us "$at_half")" \
  -v g99="$(field gateway_p99_us "$at_half")" -v b="$p99_budget_ms" -v a="$anchor" 'BEGIN {
    printf "BENCH collections rate=%.1f rps=%.1f p50_ms=%.3f p99_ms=%.3f", rate, r, p50, p99
    printf " gateway_p50_us=%d gateway_p99_us=%d p99_budget_ms=%d anchor=%.1f ratio=%.3f\n", g50, g99, b, a, r / a }')
ok=1
printf '%s\n%s\n' "$line1" "$line2" >&3
