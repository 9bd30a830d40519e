#!/usr/bin/env bash
# Scenario 1 (gRPC conversation) on one set-up, from start to tear-down:
#
#   bench/conversation.sh SETUP [BIN_DIR] [-- extra rosetta-bench conversation flags]
#
# SETUP is `sqlite` (one `rosetta all`), `postgres` (one `rosetta all` on a fresh PostgreSQL
# database) or `split` (account, social, messaging and files as four processes on one fresh
# PostgreSQL database with NATS). BIN_DIR holds `rosetta` and `rosetta-bench`
# (default: target/release). The report goes to stdout; the servers' logs to $TMPDIR.
# PostgreSQL (127.0.0.1:5432, user postgres) and NATS (127.0.0.1:4222) must be running for the
# last two. `-- … --plot out.svg` also writes the latency distributions as a chart. With
# PERF_OUT=file, `perf record -g` samples the serving process (the messaging
# role when split) for the whole run.
set -euo pipefail
setup="${1:?usage: bench/conversation.sh sqlite|postgres|split [BIN_DIR] [-- flags]}"
shift
bin="target/release"
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  bin="$1"
  shift
fi
[ "${1:-}" = "--" ] && shift
flags=("$@")
[ ${#flags[@]} -eq 0 ] && flags=(--users 20 --messages 40000 --duration 20s)

tmp="$(mktemp -d)"
pids=()
db=""
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "$db" ] && psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $db" postgres || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# The load comes from one address: the per-source login and registration limits are off.
export ROSETTA_ACCOUNT__SOURCE_LOGIN_PER_MINUTE=0 ROSETTA_ACCOUNT__SOURCE_REGISTER_PER_MINUTE=0 \
  ROSETTA_ACCOUNT__SOURCE_CODE_PER_MINUTE=0 RUST_LOG="${RUST_LOG:-warn}"

start() { # name, args…
  local name="$1"
  shift
  "$bin/rosetta" "$@" >"${TMPDIR:-/tmp}/bench-$name.log" 2>&1 &
  pids+=("$!")
}

wait_port() {
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "port $1 never opened" >&2
  return 1
}

fresh_db() { # sets db and url
  db="rosetta_bench_$$"
  psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $db" postgres
  url="postgres://postgres@127.0.0.1:5432/$db"
}

case "$setup" in
  sqlite)
    start all all --data-dir "$tmp"
    wait_port 50051
    target=()
    ;;
  postgres)
    fresh_db
    start all all --data-dir "$tmp" --database-url "$url"
    wait_port 50051
    target=()
    ;;
  split)
    fresh_db
    export ROSETTA_NATS_URL="${ROSETTA_NATS_URL:-nats://127.0.0.1:4222}"
    port=50061
    # The account role creates the schema and the token keys the others read.
    for role in account social messaging files; do
      # Each process its own metrics port (the default 127.0.0.1:9090 fits one process).
      export ROSETTA_METRICS_LISTEN="127.0.0.1:$((port + 10000))"
      start "$role" "$role" --data-dir "$tmp" --database-url "$url" --grpc-listen "127.0.0.1:$port"
      wait_port "$port"
      port=$((port + 1))
    done
    target=(--grpc-account http://127.0.0.1:50061 --grpc-social http://127.0.0.1:50062
      --grpc-messaging http://127.0.0.1:50063)
    ;;
  *)
    echo "unknown set-up $setup" >&2
    exit 2
    ;;
esac

perf_pid=""
if [ -n "${PERF_OUT:-}" ]; then
  serving="${pids[0]}"
  [ "$setup" = split ] && serving="${pids[2]}"
  perf record -q -F 499 -g -o "$PERF_OUT" -p "$serving" 2>/dev/null &
  perf_pid=$!
fi
"$bin/rosetta-bench" --quiet "${target[@]}" conversation "${flags[@]}"
if [ -n "$perf_pid" ]; then
  kill -INT "$perf_pid"
  wait "$perf_pid" || true
fi
