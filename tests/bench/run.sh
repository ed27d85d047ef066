#!/usr/bin/env bash
# tests/bench/run.sh [--smoke] [NAME...]: runs benchmarks against their same-run anchors (DESIGN.md §8).
# A benchmark is a folder tests/bench/NAME/ with an executable run.sh that prints one or more lines
#   BENCH NAME <metric>=<value> ... anchor=<value> ratio=<ours/anchor>
# on stdout (everything else goes to stderr). Without NAME, every such folder runs.
# --smoke: short runs that only prove each benchmark still works (CI); the numbers mean nothing.
# Exits non-zero if any benchmark fails or prints no well-formed BENCH line.
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
smoke=()
names=()
for arg in "$@"; do
  case $arg in
  --smoke) smoke=(--smoke) ;;
  -h | --help)
    sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  -*)
    echo "unknown option: $arg (usage: run.sh [--smoke] [NAME...])" >&2
    exit 2
    ;;
  *) names+=("$arg") ;;
  esac
done
if ((${#names[@]} == 0)); then
  for d in "$bench_dir"/*/; do
    [[ -x $d/run.sh ]] && names+=("$(basename "$d")")
  done
fi
((${#names[@]})) || {
  echo "no benchmarks under $bench_dir" >&2
  exit 1
}

failed=0
for name in "${names[@]}"; do
  script=$bench_dir/$name/run.sh
  if [[ ! -x $script ]]; then
    echo "no such benchmark: $name ($script)" >&2
    failed=1
    continue
  fi
  rc=0
  out=$("$script" "${smoke[@]}") || rc=$?
  # One line, our name, key=value fields including anchor= and ratio=.
  if ((rc != 0)); then
    echo "benchmark $name failed (status $rc)" >&2
    failed=1
  elif [[ -z $out ]] ||
    grep -Evq "^BENCH $name( [a-z0-9_]+=[^ ]+)* anchor=[0-9.]+( [a-z0-9_]+=[^ ]+)* ratio=[0-9.]+( |$)" <<<"$out"; then
    # Every stdout line must be a well-formed BENCH line (one per measured configuration).
    echo "benchmark $name printed a line that is not a well-formed BENCH line; got: $out" >&2
    failed=1
  else
    printf '%s\n' "$out"
  fi
done
exit "$failed"
