#!/usr/bin/env bash
# Idle pipe connections at scale (issue 21): N seeded users logged in on one stand-alone
# `rosetta bridge pipe` in front of a SQLite `rosetta all` (every bridge of its own off), RSS
# of both at the checkpoints, then pushes to random idle users timed on their sockets.
#
#   bench/soak100k.sh [BIN_DIR]        # default target/release; settings below by environment
#
# What it changes on the machine, for its own processes only: the descriptor limit of this
# shell and its children (`ulimit -n`, root may raise the hard limit up to fs.nr_open), so the
# node, the bridge and the soak each may hold N descriptors. The users are seeded straight
# into the node's database with cheap argon2id verifiers (`rosetta-bench seed`, bench-only):
# registering 100,000 users over gRPC at the service's own cost would take hours.
set -euo pipefail

BIN=${1:-target/release}
N=${N:-100000}
CHECKPOINTS=${CHECKPOINTS:-10000,50000}
PUSHES=${PUSHES:-200}
PUSH_RATE=${PUSH_RATE:-20}
HOLD=${HOLD:-30s}
CONCURRENCY=${CONCURRENCY:-64}
# 127.0.0.1 … 127.0.0.<SOURCES>: about 28,000 ephemeral ports each.
SOURCES=${SOURCES:-16}
NOFILE=${NOFILE:-1000000}
DIR=${DIR:-/tmp/scale-soak}
GRPC_PORT=${GRPC_PORT:-51191}
PIPE_PORT=${PIPE_PORT:-18281}
PREFIX=${PREFIX:-soak}
OUT=${OUT:-$DIR/report.json}

ulimit -n "$NOFILE"
echo "descriptor limit of the run: soft $(ulimit -Sn), hard $(ulimit -Hn)" >&2

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# Waits (at most 60 s) until something accepts on 127.0.0.1:$1.
wait_port() {
  local deadline=$((SECONDS + 60))
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    if ((SECONDS > deadline)); then echo "nothing listens on port $1 after 60 s" >&2; exit 1; fi
    sleep 0.2
  done
}

rm -rf "$DIR" && mkdir -p "$DIR/all" "$DIR/bridge"
"$BIN/rosetta-bench" --quiet seed --database "sqlite://$DIR/all/rosetta.db?mode=rwc" \
  --prefix "$PREFIX" --count "$N" >&2

export ROSETTA_METRICS_LISTEN= ROSETTA_WEB_LISTEN= ROSETTA_ACCOUNT__SOURCE_LOGIN_PER_MINUTE=0 \
  ROSETTA_ACCOUNT__SOURCE_REGISTER_PER_MINUTE=0 ROSETTA_ACCOUNT__SOURCE_CODE_PER_MINUTE=0 \
  ROSETTA_ACCOUNT__HASH_QUEUE=1024
ROSETTA_BRIDGES__PIPE__ENABLED=false ROSETTA_BRIDGES__DPC__ENABLED=false \
  ROSETTA_BRIDGES__IMPS__ENABLED=false ROSETTA_BRIDGES__OURCHAT__ENABLED=false \
  ROSETTA_BRIDGES__CLOUDCHAT__ENABLED=false \
  ROSETTA_DATA_DIR="$DIR/all" ROSETTA_GRPC_LISTEN="127.0.0.1:$GRPC_PORT" \
  "$BIN/rosetta" all >"$DIR/all.log" 2>&1 &
node=$!
pids+=("$node")
wait_port "$GRPC_PORT"

# The bridge's caps: every connection of the run on one listener, up to N from one address.
ROSETTA_BRIDGE_KEY_FILE="$DIR/all/bridge.key" ROSETTA_DATA_DIR="$DIR/bridge" \
  ROSETTA_BRIDGES__PIPE__LISTEN="127.0.0.1:$PIPE_PORT" \
  ROSETTA_BRIDGES__PIPE__LIMITS__MAX_CONNECTIONS=$((N + 1000)) \
  ROSETTA_BRIDGES__PIPE__LIMITS__MAX_PER_ADDRESS="$N" \
  "$BIN/rosetta" bridge pipe --grpc "http://127.0.0.1:$GRPC_PORT" >"$DIR/bridge.log" 2>&1 &
bridge=$!
pids+=("$bridge")
wait_port "$PIPE_PORT"

"$BIN/rosetta-bench" --grpc "http://127.0.0.1:$GRPC_PORT" --quiet --json soak --bridge pipe \
  --addr "127.0.0.1:$PIPE_PORT" --connections "$N" --sources "$SOURCES" --seeded "$PREFIX" \
  --server-pid "$bridge" --node-pid "$node" --checkpoints "$CHECKPOINTS" \
  --pushes "$PUSHES" --push-rate "$PUSH_RATE" --hold "$HOLD" --concurrency "$CONCURRENCY" \
  | tee "$OUT"
