#!/usr/bin/env bash
# tests/bench/keys/run.sh [--smoke]: the field-encryption benchmark (issue 7, DESIGN.md §8).
# keys_bench measures keys::FieldCipher::Encrypt and Decrypt per second on one pinned core, for
# 64- and 1024-byte fields (a fresh nonce, the row identity as associated data, the blob header).
# The anchor, in the same run on the same core, is `openssl speed -evp aes-256-gcm -bytes <size>`:
# raw AES-256-GCM on a reused context, in operations per second (bytes/s / size). Prints on stdout
# one line per size:
#   BENCH keys size=<bytes> encrypt_per_s=.. decrypt_per_s=.. anchor=<openssl ops/s>
#     encrypt_ratio=.. decrypt_ratio=.. ratio=<min(encrypt, decrypt)/anchor>
# Target (issue 7): ratio >= 0.5 at 64 bytes.
# Full mode: 3 s per measurement. --smoke: 0.2 s ours, 1 s openssl (its minimum); numbers mean nothing.
# Env: PAYGATE_BENCH_PRESET (default release; dev in smoke mode), PAYGATE_BENCH_BUILD_DIR (the binary from
# this build dir instead of build/<preset>; implies PAYGATE_BENCH_SKIP_BUILD=1), PAYGATE_BENCH_SKIP_BUILD=1
# (use the existing build), PAYGATE_BENCH_SECONDS (override our measurement time).
set -euo pipefail

# Only the BENCH lines go to stdout (fd 3); everything else goes to stderr.
exec 3>&1 1>&2

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/local/lib.sh
source "$here/../../../deploy/local/lib.sh"
cd "$PAYGATE_ROOT"

smoke=0
[[ ${1:-} == --smoke ]] && smoke=1
if ((smoke)); then
  secs=0.2 openssl_secs=1 preset=${PAYGATE_BENCH_PRESET:-dev}
else
  secs=3 openssl_secs=3 preset=${PAYGATE_BENCH_PRESET:-release}
fi
secs=${PAYGATE_BENCH_SECONDS:-$secs}

build_dir=${PAYGATE_BENCH_BUILD_DIR:-build/$preset}
if [[ -z ${PAYGATE_BENCH_BUILD_DIR:-} && ${PAYGATE_BENCH_SKIP_BUILD:-0} != 1 ]]; then
  build_preset "$preset" keys_bench
fi
bench_bin=$build_dir/tests/bench/keys/keys_bench
[[ -x $bench_bin ]] || die "no $bench_bin (build target keys_bench)"
command -v openssl >/dev/null || die "openssl (the anchor) is not installed"

# One core: the last one, so the shell and other tools rather use the first.
pin=()
if command -v taskset >/dev/null; then
  pin=(taskset -c "$(($(nproc) - 1))")
fi

for size in 64 1024; do
  ours=$("${pin[@]}" "$bench_bin" --size "$size" --seconds "$secs") || die "keys_bench failed"
  # Machine-readable output: "+F:<n>:AES-256-GCM:<bytes per second>" for the one size.
  speed=$("${pin[@]}" openssl speed -mr -seconds "$openssl_secs" -evp aes-256-gcm -bytes "$size" 2>/dev/null) ||
    die "openssl speed failed"
  bytes_per_s=$(awk -F: '/^\+F:/ { print $4; exit }' <<<"$speed")
  [[ -n $bytes_per_s ]] || die "could not parse openssl speed output: $speed"
  line=$(awk -v ours="$ours" -v bps="$bytes_per_s" -v size="$size" 'BEGIN {
    n = split(ours, kv, " ")
    for (i = 1; i <= n; i++) { split(kv[i], p, "="); v[p[1]] = p[2] }
    anchor = bps / size
    er = v["encrypt_per_s"] / anchor
    dr = v["decrypt_per_s"] / anchor
    r = er < dr ? er : dr
    printf "BENCH keys size=%d encrypt_per_s=%.0f decrypt_per_s=%.0f anchor=%.0f encrypt_ratio=%.3f decrypt_ratio=%.3f ratio=%.3f\n",
      size, v["encrypt_per_s"], v["decrypt_per_s"], anchor, er, dr, r
  }')
  log "keys_bench: $line"
  printf '%s\n' "$line" >&3
done
