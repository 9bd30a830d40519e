#!/usr/bin/env bash
# The latency plots BENCHMARKS.md embeds for scenarios 2–5, each run against its own fresh
# `rosetta all` on SQLite (scenario 1's plot comes from bench/conversation.sh … --plot):
#
#   bench/plots.sh [BIN_DIR] [OUT_DIR]
#
# BIN_DIR holds `rosetta` and `rosetta-bench` (default: target/release); the SVGs go to OUT_DIR
# (default: bench/plots), each run's report to stdout, the servers' logs to $TMPDIR.
set -euo pipefail
bin="${1:-target/release}"
out="${2:-bench/plots}"
mkdir -p "$out"

# The load comes from one address: the per-source login and registration limits are off, and
# the pipe bridge writes without its 100 ms gap (which would measure the gap, not the bridge).
export ROSETTA_ACCOUNT__SOURCE_LOGIN_PER_MINUTE=0 ROSETTA_ACCOUNT__SOURCE_REGISTER_PER_MINUTE=0 \
  ROSETTA_ACCOUNT__SOURCE_CODE_PER_MINUTE=0 ROSETTA_BRIDGES__PIPE__WRITE_GAP_MS=0 \
  ROSETTA_WEB_LISTEN="" ROSETTA_METRICS_LISTEN="" RUST_LOG="${RUST_LOG:-warn}"

server=""
data=""
stop() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  [ -n "$data" ] && rm -rf "$data"
  server=""
  data=""
}
trap stop EXIT

fresh() { # name: a new `rosetta all` on an empty data directory, up when gRPC accepts
  stop
  data="$(mktemp -d)"
  "$bin/rosetta" all --data-dir "$data" >"${TMPDIR:-/tmp}/plots-$1.log" 2>&1 &
  server=$!
  for _ in $(seq 1 300); do
    (exec 3<>/dev/tcp/127.0.0.1/50051) 2>/dev/null && return 0
    sleep 0.1
  done
  echo "rosetta all never opened 50051 (see ${TMPDIR:-/tmp}/plots-$1.log)" >&2
  return 1
}

run() { # name, rosetta-bench arguments…
  local name="$1"
  shift
  echo "=== $name: rosetta-bench $*"
  "$bin/rosetta-bench" --quiet --plot "$out/$name.svg" "$@"
}

fresh bridge-pipe
run bridge-pipe-sqlite bridge-conversation --bridge pipe --users 20 --messages 3000

fresh soak-pipe
run soak-pipe-sqlite soak --bridge pipe --connections 1000 --server-pid "$server" --hold 10s

fresh login-storm
run login-storm-sqlite login-storm

fresh login-flood
run login-flood-sqlite login-flood --server-pid "$server" --logins 1000 --users 16
