#!/usr/bin/env bash
# CPU per message through a legacy bridge: the node's CPU plus (on PostgreSQL) its database
# backends', over `rosetta-bench bridge-conversation --no-baseline`, with the cost of the run's
# set-up (registrations and logins: argon2) taken out by a second run of 20 messages.
#
#   bench/legacy-cpu.sh sqlite|postgres [BIN_DIR] [BRIDGE] [MESSAGES]
#
# BIN_DIR holds `rosetta` and `rosetta-bench` (default target/release); BRIDGE defaults to
# pipe, MESSAGES to 60000. PostgreSQL (127.0.0.1:5432, user postgres) must be running for the
# postgres set-up; each run gets a fresh database (and a fresh SQLite directory).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

setup="${1:?usage: bench/legacy-cpu.sh sqlite|postgres [BIN_DIR] [BRIDGE] [MESSAGES]}"
bin="${2:-target/release}"
bridge="${3:-pipe}"
messages="${4:-60000}"
case "$bridge" in
  pipe) bridge_port=8263 ;;
  imps) bridge_port=1200 ;;
  ourchat) bridge_port=7777 ;;
  cloudchat) bridge_port=14514 ;;
  dpc) bridge_port=9998 ;;
  *) echo "unknown bridge $bridge" >&2; exit 2 ;;
esac
bench_node_env
export ROSETTA_BRIDGES__PIPE__WRITE_GAP_MS=0 RUST_LOG="${RUST_LOG:-warn}"

# CPU ticks (utime + stime) of a process.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# CPU ticks of every PostgreSQL process now (the node's backends among them).
pg_ticks() {
  local sum=0 pid
  for pid in $(pgrep -x postgres || true); do sum=$((sum + $(ticks "$pid"))); done
  echo "$sum"
}

# One run of `count` messages on a fresh node; prints "node_ticks db_ticks".
run() {
  local count=$1 tmp url="" db="" node before_db after_node after_db
  tmp=$(mktemp -d)
  local args=(all --data-dir "$tmp")
  if [ "$setup" = postgres ]; then
    db="rosetta_cpu_$$_$count"
    psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $db" postgres
    url="postgres://postgres@127.0.0.1:5432/$db"
    args+=(--database-url "$url")
  fi
  "$bin/rosetta" "${args[@]}" >"$tmp/node.log" 2>&1 &
  node=$!
  wait_port 127.0.0.1 50051
  wait_port 127.0.0.1 "$bridge_port"
  before_db=$(pg_ticks)
  "$bin/rosetta-bench" --quiet bridge-conversation --bridge "$bridge" --users 20 \
    --messages "$count" --no-baseline >"$tmp/bench.out" 2>&1 || {
    cat "$tmp/bench.out" >&2
    exit 1
  }
  after_node=$(ticks "$node")
  after_db=$(pg_ticks)
  grep -E "send rate|lost|duplicated" "$tmp/bench.out" >&2
  kill "$node"
  wait "$node" 2>/dev/null || true
  [ -n "$db" ] && psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $db" postgres
  rm -rf "$tmp"
  echo "$after_node $((after_db - before_db))"
}

read -r base_node base_db < <(run 20)
read -r full_node full_db < <(run "$messages")
hz=$(getconf CLK_TCK)
awk -v n="$messages" -v hz="$hz" -v bn="$base_node" -v bd="$base_db" -v fn="$full_node" \
  -v fd="$full_db" -v setup="$setup" -v bridge="$bridge" 'BEGIN {
  node = (fn - bn) * 1000 / hz / (n - 20); db = (fd - bd) * 1000 / hz / (n - 20);
  printf "%s via %s: %.3f CPU-ms per message (node %.3f, database backends %.3f)\n",
    bridge, setup, node + db, node, db }'
