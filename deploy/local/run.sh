#!/usr/bin/env bash
# run.sh: build paygate and run it locally with everything it needs, on a fresh Debian 12 (as root) or on a
# machine that already has the packages:
#   packages -> dev build -> dev PKI -> private PostgreSQL (unless PAYGATE_DATABASE_URL is set) -> migrate
#   -> the sandbox provider (paygate-sandbox) -> paygated in the foreground of this script (logs on stderr)
#   until Ctrl-C.
# State (PKI, database cluster, its port) lives in PAYGATE_STATE_DIR (default <repo>/.paygate) and is reused
# by the next run. Ctrl-C or SIGTERM stops paygated (graceful drain) and then PostgreSQL.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/local/lib.sh
source "$here/lib.sh"
cd "$PAYGATE_ROOT" # the daemon's working dir: config paths are relative to the repo root

state=$(realpath -m "${PAYGATE_STATE_DIR:-$PAYGATE_ROOT/.paygate}")
config=config/examples/local.yaml
bindir=build/dev/gateway
sandbox_bin=build/dev/adapters/sandbox/paygate-sandbox
wechatpay_bin=build/dev/adapters/wechatpay/paygate-wechatpay-sim
daemon_pid=''
sandbox_pid=''
wechatpay_pid=''

_alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# stop_daemon: SIGTERM (graceful drain), then wait; SIGKILL only if it outlives any sane drain bound.
# Sets daemon_status.
daemon_status=0
stop_daemon() {
  [[ -n $daemon_pid ]] || return 0
  if _alive "$daemon_pid"; then
    log "stopping paygated (pid $daemon_pid): SIGTERM, draining"
    kill -TERM "$daemon_pid" 2>/dev/null || true
    local deadline=$((SECONDS + ${PAYGATE_STOP_TIMEOUT_S:-330})) # > the largest drain_timeout_ms (300 s)
    while _alive "$daemon_pid"; do
      if ((SECONDS > deadline)); then
        log "paygated still running after drain bound; SIGKILL"
        kill -KILL "$daemon_pid" 2>/dev/null || true
      fi
      sleep 0.2
    done
  fi
  wait "$daemon_pid" 2>/dev/null && daemon_status=0 || daemon_status=$?
  daemon_pid=''
}

interrupted=0
# shellcheck disable=SC2317 # invoked by trap
cleanup() {
  local rc=$?
  trap - EXIT
  # A second Ctrl-C must not abandon paygated or PostgreSQL half-way; each stop is bounded.
  trap 'log "still stopping, please wait"' INT TERM
  local had_daemon=${daemon_pid:+1}
  stop_daemon
  local sim
  for sim in "$sandbox_pid" "$wechatpay_pid"; do
    [[ -n $sim ]] || continue
    kill -TERM "$sim" 2>/dev/null || true
    wait "$sim" 2>/dev/null || true
  done
  stop_private_pg
  if ((interrupted)); then
    # A requested stop that drains cleanly is a success: report paygated's own status.
    rc=130
    [[ -n $had_daemon ]] && rc=$daemon_status
    log "stopped"
  fi
  exit "$rc"
}
# shellcheck disable=SC2317 # invoked by trap
on_signal() {
  interrupted=1
  exit 130 # runs cleanup via the EXIT trap
}
trap cleanup EXIT
trap on_signal INT TERM
# `run.sh | tee log` + Ctrl-C kills tee too; the default SIGPIPE would then kill us mid-cleanup and leave
# paygated and PostgreSQL running. A handler (not '' ignore, which children would inherit) makes writes fail
# with EPIPE instead, which log() tolerates.
trap ':' PIPE

ensure_packages
# PAYGATE_SKIP_BUILD=1: run what build/dev holds (e.g. while an IDE or another shell owns the build).
[[ ${PAYGATE_SKIP_BUILD:-0} == 1 ]] || build_preset dev
[[ -x $bindir/paygated && -x $bindir/paygatectl ]] || die "build produced no $bindir/paygated or paygatectl"
[[ -x $sandbox_bin ]] || die "build produced no $sandbox_bin"
[[ -x $wechatpay_bin ]] || die "build produced no $wechatpay_bin"
[[ -f $config ]] || die "missing $config"

"$here/dev-pki.sh" "$state/pki"
pki=$state/pki
# The sandbox merchant's HMAC key and the simulator's control token: random, created once, owner-only.
mkdir -p "$state/sandbox"
for f in m1.secret control.token; do
  [[ -s $state/sandbox/$f ]] || (umask 077 && openssl rand -hex 32 >"$state/sandbox/$f")
done
# The WeChat Pay simulator's merchant: the published Java SDK test key (its certificate is what the
# simulator checks request signatures with), and an APIv3 key both sides share: random, created once.
vectors=tests/vectors/providers/wechatpay/java
mkdir -p "$state/wechatpay"
(umask 077 && cp "$vectors/merchant_private_key.pem" "$state/wechatpay/merchant.key" &&
  cp "$vectors/wechat_pay_private_key.pem" "$state/wechatpay/platform.key")
[[ -s $state/wechatpay/apiv3.key ]] || (umask 077 && openssl rand -hex 16 >"$state/wechatpay/apiv3.key")
# The keys local.yaml's keyring names (keys.entries), besides the provider secrets above: the fraud
# rules' key for hashing personal data (risk-hash) and the master key that wraps the data keys in
# PostgreSQL (64 hex digits). Random, created once, owner-only: paygated refuses key files that
# group or others can read, so the modes are re-asserted for files left by an older run.
mkdir -p "$state/keys"
[[ -s $state/keys/risk-hash.key ]] || (umask 077 && head -c 32 /dev/urandom >"$state/keys/risk-hash.key")
[[ -s $state/keys/master.key ]] || (umask 077 && openssl rand -hex 32 >"$state/keys/master.key")
chmod 600 "$state/keys/risk-hash.key" "$state/keys/master.key" "$state/sandbox/m1.secret" \
  "$state/wechatpay/merchant.key" "$state/wechatpay/apiv3.key"
# local.yaml names .paygate/...; with another state dir, run on a copy that points at the right files.
if [[ $state != "$PAYGATE_ROOT/.paygate" ]]; then
  esc=${state//\\/\\\\}
  esc=${esc//&/\\&}
  esc=${esc//|/\\|}
  sed "s|\.paygate/|$esc/|g" "$config" >"$state/local.yaml"
  config=$state/local.yaml
  log "using $config (state paths rewritten to $state)"
else
  pki=.paygate/pki # shorter paths in the examples printed below
fi

# yaml_get SECTION KEY: a top-level section's direct scalar (enough for local.yaml's listener address/port).
yaml_get() {
  awk -v sec="$1" -v key="$2" '
    /^[^[:space:]#][^:]*:/ { top = $0; sub(/:.*/, "", top) }
    top == sec && $1 == key ":" { v = $2; gsub(/["\047]/, "", v); print v; exit }' "$config"
}
# url_host ADDR: where to reach a listener bound to ADDR from this machine.
url_host() {
  case $1 in
  '' | 0.0.0.0 | '::' | '[::]') echo 127.0.0.1 ;;
  *:*) echo "[$1]" ;;
  *) echo "$1" ;;
  esac
}
api_port=$(yaml_get api port)
admin_port=$(yaml_get admin port)
api_url="https://$(url_host "$(yaml_get api address)"):${api_port:-8443}"
admin_url="https://$(url_host "$(yaml_get admin address)"):${admin_port:-9443}"
sandbox_port=7443   # local.yaml's providers[0].sandbox.base_url
wechatpay_port=7444 # local.yaml's providers[1].wechatpay.base_url
for p in "${api_port:-8443}" "${admin_port:-9443}" "$sandbox_port" "$wechatpay_port"; do
  if [[ -n $(ss -Htln "sport = :$p") ]]; then
    die "port $p is already in use (another paygated running? see: ss -ltnp 'sport = :$p')"
  fi
done

if [[ -n ${PAYGATE_DATABASE_URL:-} ]]; then
  log "using the database from PAYGATE_DATABASE_URL (no private PostgreSQL started)"
  db_note='your PAYGATE_DATABASE_URL'
  ctl_env='' # already in the caller's environment
else
  start_private_pg "$state"
  db_note=$PAYGATE_DATABASE_URL
  ctl_env="PAYGATE_DATABASE_URL=$PAYGATE_DATABASE_URL "
fi

"$bindir/paygated" --check-config "$config" >&2 || die "$config does not validate (errors above)"
log "migrating the schema"
"$bindir/paygatectl" migrate --config "$config"

# The sandbox provider: payments complete by themselves (succeeded, with a signed callback to paygated)
# PAYGATE_SANDBOX_AUTO_MS after creation; its control API (token in $state/sandbox/control.token) can
# fail them or inject faults instead (adapters/sandbox/PROTOCOL.md).
log "starting paygate-sandbox on 127.0.0.1:$sandbox_port"
setsid -w "$sandbox_bin" --cert "$pki/server.crt" --key "$pki/server.key" --callback-ca "$pki/ca.crt" \
  --merchant "m1=$state/sandbox/m1.secret" --control-token-file "$state/sandbox/control.token" \
  --listen 127.0.0.1 --port "$sandbox_port" --auto-complete-ms "${PAYGATE_SANDBOX_AUTO_MS:-5000}" \
  </dev/null >&2 &
sandbox_pid=$!
deadline=$((SECONDS + 20))
until [[ -n $(ss -Htln "sport = :$sandbox_port") ]]; do
  _alive "$sandbox_pid" || die "paygate-sandbox exited before listening on port $sandbox_port"
  ((SECONDS < deadline)) || die "paygate-sandbox did not listen on port $sandbox_port within 20 s"
  sleep 0.2
done

# The WeChat Pay simulator: WeChat's API v3 wire format, signed with WeChat's published test keys;
# payments succeed by themselves PAYGATE_SANDBOX_AUTO_MS after creation, with an encrypted, signed
# TRANSACTION.SUCCESS callback.
log "starting paygate-wechatpay-sim on 127.0.0.1:$wechatpay_port"
setsid -w "$wechatpay_bin" --cert "$pki/server.crt" --key "$pki/server.key" --callback-ca "$pki/ca.crt" \
  --platform-key "$state/wechatpay/platform.key" --platform-cert "$vectors/wechat_pay_certificate.pem" \
  --merchant "1234567891=$state/wechatpay/apiv3.key=$vectors/merchant_certificate.pem" \
  --control-token-file "$state/sandbox/control.token" --listen 127.0.0.1 --port "$wechatpay_port" \
  --auto-complete-ms "${PAYGATE_SANDBOX_AUTO_MS:-5000}" </dev/null >&2 &
wechatpay_pid=$!
deadline=$((SECONDS + 20))
until [[ -n $(ss -Htln "sport = :$wechatpay_port") ]]; do
  _alive "$wechatpay_pid" || die "paygate-wechatpay-sim exited before listening on port $wechatpay_port"
  ((SECONDS < deadline)) || die "paygate-wechatpay-sim did not listen on port $wechatpay_port within 20 s"
  sleep 0.2
done

log "starting paygated --config $config"
# setsid: the terminal's Ctrl-C reaches only this script, whose trap stops paygated first, then PostgreSQL.
setsid -w "$bindir/paygated" --config "$config" </dev/null &
daemon_pid=$!

deadline=$((SECONDS + ${PAYGATE_START_TIMEOUT_S:-60}))
until curl -fs -o /dev/null --max-time 2 --cacert "$pki/ca.crt" "$admin_url/healthz"; do
  if ! _alive "$daemon_pid"; then
    stop_daemon
    die "paygated exited with status $daemon_status before answering $admin_url/healthz"
  fi
  ((SECONDS < deadline)) || die "paygated did not answer $admin_url/healthz within ${PAYGATE_START_TIMEOUT_S:-60} s"
  sleep 0.3
done

cat <<EOF

paygated is running (pid $daemon_pid; its log follows on this terminal).
  API       $api_url   (mutual TLS: client certificates for each principal in $pki/)
  admin     $admin_url   (/healthz /readyz /metrics)
  sandbox   https://127.0.0.1:$sandbox_port   (payments succeed ${PAYGATE_SANDBOX_AUTO_MS:-5000} ms after creation)
  wechatpay https://127.0.0.1:$wechatpay_port   (WeChat Pay API v3 simulator; method "wechat_native", same timing)
  database  $db_note
Try (as the sales platform, with its client certificate):
  s="curl -s --cacert $pki/ca.crt --cert $pki/sales-platform.crt --key $pki/sales-platform.key"
  \$s $api_url/v1/whoami
  \$s -H 'Idempotency-Key: demo-1' -H 'Content-Type: application/json' \\
     -d '{"policy_number":"POL-2026-0001","amount_minor":12345,"currency":"CNY","method":"sandbox"}' \\
     $api_url/v1/payments                  # status "pending", with a next_action QR code URL
  \$s $api_url/v1/payments/PAYMENT_ID     # "succeeded" a few seconds later (the sandbox's callback)
  \$s -H 'Idempotency-Key: demo-2' -H 'Content-Type: application/json' \\
     -d '{"policy_number":"POL-2026-0002","amount_minor":12800,"currency":"CNY","method":"wechat_native"}' \\
     $api_url/v1/payments                  # the same through WeChat Pay's protocol: a weixin:// QR code
Pay out a claim (premiums fund payouts: after a payment above succeeded), as the claims system, then an approver:
  c="curl -s --cacert $pki/ca.crt --cert $pki/claims-system.crt --key $pki/claims-system.key"
  a="curl -s --cacert $pki/ca.crt --cert $pki/approver.crt --key $pki/approver.key"
  \$c -H 'Idempotency-Key: claim-1' -H 'Content-Type: application/json' \\
     -d '{"claim_number":"CLM-2026-0001","policy_number":"POL-2026-0001","claimant_id":"claimant-1","beneficiary":{"name":"Zhang San","account_type":"bank_card","account":"6222020200112233445","bank":"ICBC"},"amount_minor":5000,"currency":"CNY","method":"sandbox_transfer","reason":"outpatient claim"}' \\
     $api_url/v1/payouts                   # "awaiting_approval", the beneficiary masked
  \$a -H 'Idempotency-Key: approve-1' -H 'Content-Type: application/json' -d '{"note":"checked"}' \\
     $api_url/v1/payouts/PAYOUT_ID/approve   # "processing", then "succeeded" (the sandbox's callback)
  ${ctl_env}$bindir/paygatectl ledger trial-balance --currency CNY --config $config
  ${ctl_env}$bindir/paygatectl keys list --config $config   # key ids and versions, never bytes
  ${ctl_env}$bindir/paygatectl keys rotate pii --config $config; kill -HUP $daemon_pid   # new data key version
  curl --cacert $pki/ca.crt $admin_url/metrics
Reload TLS certificates, the keyring and data keys: kill -HUP $daemon_pid.  Ctrl-C stops paygated (graceful drain), then PostgreSQL.

EOF

# Wait for the daemon; a signal interrupts this wait and runs on_signal.
wait "$daemon_pid" && daemon_status=0 || daemon_status=$?
daemon_pid=''
log "paygated exited on its own with status $daemon_status"
exit "$daemon_status"
