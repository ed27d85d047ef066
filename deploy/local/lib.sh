# shellcheck shell=bash
# Some helpers take optional arguments (free_port, stop_private_pg); calling them without any is intended.
# shellcheck disable=SC2119,SC2120
# Shared helpers for paygate's shell tooling (deploy/local/*.sh, .ci/run, tests/bench/).
# Source it; it defines functions and variables only and changes no shell options of the caller
# beyond what the callers already set (they all run with `set -euo pipefail`).

if [[ -n ${_PAYGATE_LIB_SOURCED:-} ]]; then
  return 0
fi
_PAYGATE_LIB_SOURCED=1

# Repository root, derived from this file's location so callers may run from any directory.
PAYGATE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PAYGATE_ROOT

# The one list of Debian 12 packages that building, testing, running and benchmarking paygate needs.
# .ci/run installs exactly this list; ensure_packages installs whatever of it is missing.
PAYGATE_PACKAGES=(
  build-essential cmake ccache pkg-config git
  libboost-dev libboost-program-options-dev libssl-dev openssl libpq-dev
  postgresql postgresql-contrib
  libprotobuf-dev protobuf-compiler libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev zlib1g-dev libzip-dev
  prometheus-cpp-dev libgtest-dev libgmock-dev googletest libbenchmark-dev
  curl nginx-light wrk procps iproute2 ca-certificates
)

# Messages must never fail the script: stderr may be a pipe whose reader (e.g. `| tee`) died on Ctrl-C,
# and the cleanup that logs must still run to the end.
log() { printf '[paygate] %s\n' "$*" >&2 || true; }
die() {
  printf '[paygate] error: %s\n' "$*" >&2 || true
  exit 1
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# Runs a command as root: directly when we are root, through sudo otherwise.
_as_root() {
  if is_root; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root (or sudo) to run: $*"
  fi
}

_PAYGATE_APT_UPDATED=0
# apt_update runs `apt-get update` at most once per shell, retrying because mirrors hiccup.
apt_update() {
  [[ $_PAYGATE_APT_UPDATED == 1 ]] && return 0
  local try
  for try in 1 2 3; do
    if _as_root env DEBIAN_FRONTEND=noninteractive apt-get update </dev/null; then
      _PAYGATE_APT_UPDATED=1
      return 0
    fi
    log "apt-get update failed (try $try of 3)"
    sleep $((try * 5))
  done
  die "apt-get update failed"
}

# apt_install PKG...: non-interactive install without recommends (keeps fresh machines lean).
apt_install() {
  _as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "$@" </dev/null
}

# ensure_packages [PKG...]: installs those of the given packages (default: PAYGATE_PACKAGES) that are not
# installed yet. Checking with dpkg-query first keeps a second run offline and fast.
# PAYGATE_SKIP_PACKAGES=1 skips the check (machines managed some other way).
ensure_packages() {
  [[ ${PAYGATE_SKIP_PACKAGES:-0} == 1 ]] && return 0
  local pkgs=("$@") missing=() p
  ((${#pkgs[@]})) || pkgs=("${PAYGATE_PACKAGES[@]}")
  for p in "${pkgs[@]}"; do
    if [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) != installed ]]; then
      missing+=("$p")
    fi
  done
  ((${#missing[@]})) || return 0
  log "installing missing packages: ${missing[*]}"
  apt_update
  apt_install "${missing[@]}"
}

# build_preset PRESET [TARGET...]: configures and builds a CMake preset (all targets unless some are named).
# Configuring every time is cheap and needed: tests/CMakeLists.txt globs test folders at configure time.
# PAYGATE_JOBS overrides the parallelism (default: all cores).
build_preset() {
  local preset=${1:?build_preset needs a preset} jobs=${PAYGATE_JOBS:-$(nproc)}
  shift
  local targets=()
  (($#)) && targets=(--target "$@")
  log "configuring and building preset '$preset'${targets[*]:+ (${*})} with -j$jobs"
  # ccache keys on relative paths below the checkout, so a fresh clone elsewhere reuses earlier objects.
  export CCACHE_BASEDIR=$PAYGATE_ROOT CCACHE_NOHASHDIR=1
  (cd "$PAYGATE_ROOT" && cmake --preset "$preset" && cmake --build --preset "$preset" -j"$jobs" "${targets[@]}")
}

# pg_bin: directory holding the PostgreSQL server binaries (newest installed major version), or $PAYGATE_PG_BIN.
pg_bin() {
  if [[ -n ${PAYGATE_PG_BIN:-} ]]; then
    printf '%s\n' "$PAYGATE_PG_BIN"
    return 0
  fi
  local d best=''
  while IFS= read -r d; do
    [[ -x $d/postgres && -x $d/initdb ]] && best=$d
  done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
  [[ -n $best ]] || die "no PostgreSQL server found under /usr/lib/postgresql (package postgresql)"
  printf '%s\n' "$best"
}

# free_disk [DIR]: the space left on DIR's file system (default: the current folder), e.g. "71G".
free_disk() {
  df -h --output=avail "${1:-.}" | tail -n1 | tr -d ' '
}

# port_in_use PORT: true if any local TCP socket (listening or connected) uses PORT.
port_in_use() {
  [[ -n $(ss -Htan "sport = :$1" 2>/dev/null) ]]
}

# free_port [EXCLUDED...]: prints a TCP port nobody uses now, avoiding the given ports. Picks randomly below
# the kernel's ephemeral range (32768+) so outgoing connections cannot take it before we bind it.
free_port() {
  local port try x taken
  for try in $(seq 1 500); do
    port=$((20000 + RANDOM % 12000))
    taken=0
    for x in "$@"; do [[ $x == "$port" ]] && taken=1; done
    ((taken)) && continue
    port_in_use "$port" && continue
    printf '%s\n' "$port"
    return 0
  done
  die "no free TCP port found"
}

# ---------------------------------------------------------------------------------------------------------------
# Private PostgreSQL cluster: one per state dir, owned by the `postgres` account when we are root (initdb and
# postgres refuse to run as root), listening on 127.0.0.1 and a private socket dir (STATE/pg/run) only.

_PAYGATE_PG_OWNED=0     # 1 once this shell started the cluster (stop_private_pg stops only what it started)
_PAYGATE_PG_PID=''      # postmaster pid
_PAYGATE_PG_LAUNCHER='' # our background child (runuser/setsid) to reap
_PAYGATE_PG_ROOT=''

# _as_pg CMD...: runs a command as the cluster owner, from a directory it can enter.
_as_pg() {
  if is_root; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# _pg_make_traversable DIR: lets the postgres account reach DIR by adding o+x (search, not list) to any
# ancestor it cannot enter, e.g. /root (0700). Top-down, because each check needs its parents searchable.
_pg_make_traversable() {
  is_root || return 0
  local dir=$1 prefix='' part
  local -a parts
  IFS=/ read -ra parts <<<"${dir#/}"
  for part in "${parts[@]}"; do
    prefix+="/$part"
    if ! runuser -u postgres -- test -x "$prefix" 2>/dev/null; then
      log "granting search permission (o+x) on $prefix so the postgres account can reach its data"
      chmod o+x "$prefix"
    fi
  done
}

# _pg_pid_alive PID: true if PID is a running postgres process (not a reused pid of something else).
_pg_pid_alive() {
  local pid=$1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == postgres ]] || return 1
  # A zombie answers kill -0 but is dead (seen where PID 1 does not reap orphans).
  ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}

# _pg_socket_dir ROOT: ROOT/run, or a short per-cluster dir in /tmp when ROOT is so deep that the socket path
# would pass the kernel's 107-byte limit for Unix sockets (postgres then refuses to start).
_pg_socket_dir() {
  local root=$1
  if ((${#root} + 20 <= 100)); then
    printf '%s\n' "$root/run"
  else
    printf '%s\n' "/tmp/paygate-sock.$(printf '%s' "$root" | cksum | cut -d' ' -f1)"
  fi
}

# _pg_psql ROOT PORT ARGS...: psql as the cluster superuser over the private socket.
_pg_psql() {
  local root=$1 port=$2
  shift 2
  "$(pg_bin)/psql" -X -q -v ON_ERROR_STOP=1 -h "$(_pg_socket_dir "$root")" -p "$port" -U postgres \
    -d postgres "$@"
}

# _pg_ensure_paygate_db ROOT PORT: creates role and database `paygate` if missing (the role owns the database,
# so migrations can create their schema objects without superuser rights).
_pg_ensure_paygate_db() {
  local root=$1 port=$2
  if [[ $(_pg_psql "$root" "$port" -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'paygate'") != 1 ]]; then
    _pg_psql "$root" "$port" -c 'CREATE ROLE paygate LOGIN'
  fi
  if [[ $(_pg_psql "$root" "$port" -tAc "SELECT 1 FROM pg_database WHERE datname = 'paygate'") != 1 ]]; then
    _pg_psql "$root" "$port" -c 'CREATE DATABASE paygate OWNER paygate'
  fi
}

_pg_export() {
  local root=$1 port=$2
  export PAYGATE_PG_PORT=$port
  PAYGATE_PG_SOCKET_DIR=$(_pg_socket_dir "$root")
  export PAYGATE_PG_SOCKET_DIR
  export PAYGATE_DATABASE_URL="postgresql://paygate@127.0.0.1:$port/paygate"
}

# start_private_pg STATE_DIR: starts (creating on first use) the cluster in STATE_DIR/pg and exports
# PAYGATE_DATABASE_URL. Idempotent: reuses the data dir and port of an earlier run, and a cluster that is
# already running for this data dir.
start_private_pg() {
  local state bin root data run portfile logfile pid port=''
  state=$(realpath -m "${1:?start_private_pg needs a state dir}")
  bin=$(pg_bin)
  root=$state/pg data=$state/pg/data portfile=$state/pg/port logfile=$state/pg/postgres.log
  run=$(_pg_socket_dir "$root")
  _PAYGATE_PG_ROOT=$root

  if is_root; then
    id postgres >/dev/null 2>&1 || die "no 'postgres' account (install package postgresql)"
  fi
  mkdir -p "$root" "$run"
  # In a shared /tmp, refuse a socket dir that someone else made for us.
  [[ -O $run || $(stat -c %U "$run") == postgres ]] || die "$run is owned by $(stat -c %U "$run"), not us"
  chmod 0700 "$run" # trust auth on the socket: keep other local users out of it
  if is_root; then
    chown postgres:postgres "$root" "$run"
    _pg_make_traversable "$root"
  fi

  # First run: initdb into a scratch dir and rename it, so an interrupted initdb never leaves a half cluster.
  if [[ ! -f $data/PG_VERSION ]]; then
    if [[ -d $data ]]; then
      rmdir "$data" 2>/dev/null || die "$data exists but holds no cluster; move it away"
    fi
    rm -rf "$root/data.init"
    log "initdb: $data"
    _as_pg "$bin/initdb" -D "$root/data.init" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
      >"$root/initdb.log" 2>&1 || {
      cat "$root/initdb.log" >&2
      die "initdb failed"
    }
    # Trust on the private socket and IPv4 loopback only (we listen on nothing else).
    printf '%s\n' '# paygate private dev/test cluster: trust on the private socket and 127.0.0.1 only.' \
      'local all all trust' 'host  all all 127.0.0.1/32 trust' >"$root/data.init/pg_hba.conf"
    is_root && chown postgres:postgres "$root/data.init/pg_hba.conf"
    mv "$root/data.init" "$data"
  fi
  local want_major
  want_major=$(basename "$(dirname "$bin")")
  [[ $(<"$data/PG_VERSION") == "$want_major" ]] ||
    die "$data was made by PostgreSQL $(<"$data/PG_VERSION"), server binaries are $want_major ($bin)"

  # A cluster already running for this data dir (e.g. a previous run.sh still up): reuse, do not own it.
  if [[ -f $data/postmaster.pid ]]; then
    pid=$(head -n1 "$data/postmaster.pid")
    if _pg_pid_alive "$pid"; then
      port=$(sed -n 4p "$data/postmaster.pid")
      if "$bin/pg_isready" -q -h "$run" -p "$port"; then
        log "reusing PostgreSQL already running for $data (pid $pid, port $port)"
        _pg_ensure_paygate_db "$root" "$port"
        _pg_export "$root" "$port"
        return 0
      fi
      die "PostgreSQL pid $pid holds $data but does not answer on port $port"
    fi
    # After a crash or kill -9 the pid file outlives its process and postgres would refuse to start.
    log "removing stale postmaster.pid (pid $pid is not running)"
    rm -f "$data/postmaster.pid"
  fi

  # Keep the port stable across runs (bookmarks, psql history); pick a new one only if it got taken.
  [[ -s $portfile ]] && port=$(<"$portfile")
  if [[ ! $port =~ ^[0-9]+$ ]] || port_in_use "$port"; then
    [[ -n $port ]] && log "port $port is taken; picking another"
    port=$(free_port)
    printf '%s\n' "$port" >"$portfile"
  fi

  log "starting PostgreSQL on 127.0.0.1:$port (data $data, log $logfile)"
  # setsid: own session, so a terminal Ctrl-C reaches our trap (which stops the daemon first), not postgres.
  # Durability settings are explicit because paygated refuses to run on an unsafe cluster.
  local -a cmd=("$bin/postgres" -D "$data" -p "$port" -k "$run" -c listen_addresses=127.0.0.1
    -c fsync=on -c synchronous_commit=on -c full_page_writes=on)
  if is_root; then
    (cd / && exec setsid -w runuser -u postgres -- "${cmd[@]}") </dev/null >>"$logfile" 2>&1 &
  else
    (cd / && exec setsid -w "${cmd[@]}") </dev/null >>"$logfile" 2>&1 &
  fi
  _PAYGATE_PG_LAUNCHER=$!
  _PAYGATE_PG_OWNED=1

  local deadline=$((SECONDS + ${PAYGATE_PG_START_TIMEOUT:-120}))
  until "$bin/pg_isready" -q -h "$run" -p "$port"; do
    if ! kill -0 "$_PAYGATE_PG_LAUNCHER" 2>/dev/null || ((SECONDS > deadline)); then
      tail -n 30 "$logfile" >&2 || true
      stop_private_pg
      die "PostgreSQL did not become ready (log: $logfile)"
    fi
    sleep 0.2
  done
  _PAYGATE_PG_PID=$(head -n1 "$data/postmaster.pid")
  _pg_ensure_paygate_db "$root" "$port"
  _pg_export "$root" "$port"
  log "PostgreSQL ready: $PAYGATE_DATABASE_URL"
}

# stop_private_pg [STATE_DIR]: fast shutdown (SIGINT: abort sessions, checkpoint, exit) and wait.
# Without an argument it stops the cluster this shell started, and nothing if it started none; with one it
# stops whatever postmaster runs for that state dir. Idempotent.
stop_private_pg() {
  local pid='' data deadline
  if (($#)); then
    data=$(realpath -m "$1")/pg/data
    [[ -f $data/postmaster.pid ]] && pid=$(head -n1 "$data/postmaster.pid")
  else
    [[ $_PAYGATE_PG_OWNED == 1 ]] || return 0
    pid=$_PAYGATE_PG_PID
    if [[ -z $pid && -f $_PAYGATE_PG_ROOT/data/postmaster.pid ]]; then
      pid=$(head -n1 "$_PAYGATE_PG_ROOT/data/postmaster.pid")
    fi
  fi
  if [[ -n $pid ]] && _pg_pid_alive "$pid"; then
    log "stopping PostgreSQL (pid $pid)"
    kill -INT "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 60))
    while _pg_pid_alive "$pid"; do
      if ((SECONDS > deadline)); then
        log "PostgreSQL did not stop in 60 s; sending SIGQUIT"
        kill -QUIT "$pid" 2>/dev/null || true
        deadline=$((SECONDS + 30))
      fi
      sleep 0.1
    done
  fi
  if (($# == 0)); then
    if [[ -n $_PAYGATE_PG_LAUNCHER ]]; then
      # The launcher is gone or about to be: it only waits for the postmaster.
      kill "$_PAYGATE_PG_LAUNCHER" 2>/dev/null || true
      wait "$_PAYGATE_PG_LAUNCHER" 2>/dev/null || true
    fi
    _PAYGATE_PG_OWNED=0 _PAYGATE_PG_PID='' _PAYGATE_PG_LAUNCHER=''
  fi
  return 0
}
