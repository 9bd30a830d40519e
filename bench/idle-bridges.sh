#!/usr/bin/env bash
# Memory per idle logged-in connection on each bridge (issue 21's "≤ 4 KiB on every bridge"):
# for each bridge, a SQLite `rosetta all` with its own bridges off, one stand-alone
# `rosetta bridge B` in front of it with the bridge key (one event stream per bridge process),
# and `rosetta-bench soak` holding N seeded users logged in on it. Prints the bridge process's
# RSS per connection over all N and over the second half (the marginal cost).
#
#   bench/idle-bridges.sh [BIN_DIR]     # default target/release
#   N=1000 BRIDGES="pipe imps" HEAPTRACK=1 bench/idle-bridges.sh   # settings by environment
#
# The users are seeded straight into the node's database with cheap argon2id verifiers
# (`rosetta-bench seed`, bench-only), so logins do not wait on the server's argon2 cost.
# HEAPTRACK=1 runs each bridge under heaptrack (its file is kept in DIR; RSS then includes
# heaptrack's own, so read the per-connection figures from a run without it). heaptrack follows
# malloc only: build that `rosetta` with `--no-default-features` (no jemalloc).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

BIN=${1:-target/release}
N=${N:-1000}
BRIDGES=${BRIDGES:-pipe imps ourchat cloudchat dpc}
DIR=${DIR:-/tmp/idle-bridges}
GRPC_PORT=${GRPC_PORT:-51391}
HOLD=${HOLD:-10s}
SOURCES=${SOURCES:-8}
CONCURRENCY=${CONCURRENCY:-32}

# Started processes, stopped newest first (the bridge ends its sessions against a live node):
# each entry is "pid to signal:pid to wait for" (they differ under heaptrack, whose wrapper
# writes its file after the bridge it runs has ended).
pids=()
cleanup() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]%%:*}" 2>/dev/null || true
    wait "${pids[i]##*:}" 2>/dev/null || true
  done
  pids=()
}
trap cleanup EXIT


declare -A ports=([pipe]=8263 [imps]=1200 [ourchat]=7777 [cloudchat]=14514 [dpc]=9998)
bench_node_env

printf "%-10s %12s %12s %16s %22s %6s\n" bridge "RSS before" "RSS after" "KiB/conn, all" \
  "KiB/conn, 2nd half" alive
for bridge in $BRIDGES; do
  rm -rf "$DIR/$bridge" && mkdir -p "$DIR/$bridge/all" "$DIR/$bridge/bridge"
  "$BIN/rosetta-bench" --quiet seed --database "sqlite://$DIR/$bridge/all/rosetta.db?mode=rwc" \
    --prefix idle --count "$N" >&2
  ROSETTA_BRIDGES__PIPE__ENABLED=false ROSETTA_BRIDGES__DPC__ENABLED=false \
    ROSETTA_BRIDGES__IMPS__ENABLED=false ROSETTA_BRIDGES__OURCHAT__ENABLED=false \
    ROSETTA_BRIDGES__CLOUDCHAT__ENABLED=false \
    ROSETTA_DATA_DIR="$DIR/$bridge/all" ROSETTA_GRPC_LISTEN="127.0.0.1:$GRPC_PORT" \
    "$BIN/rosetta" all >"$DIR/$bridge/all.log" 2>&1 &
  pids+=("$!:$!")
  wait_port 127.0.0.1 "$GRPC_PORT"
  wrap=()
  if [[ -n ${HEAPTRACK:-} ]]; then wrap=(heaptrack -o "$DIR/$bridge/heaptrack"); fi
  ROSETTA_BRIDGE_KEY_FILE="$DIR/$bridge/all/bridge.key" ROSETTA_DATA_DIR="$DIR/$bridge/bridge" \
    "${wrap[@]}" "$BIN/rosetta" bridge "$bridge" --grpc "http://127.0.0.1:$GRPC_PORT" \
    >"$DIR/$bridge/bridge.log" 2>&1 &
  started=$!
  wait_port 127.0.0.1 "${ports[$bridge]}"
  # heaptrack runs the bridge as its child: the RSS read is the bridge's own process.
  bridge_pid=$(pgrep -n -f "^$BIN/rosetta bridge $bridge")
  pids+=("$bridge_pid:$started")
  echo "$bridge: bridge process $bridge_pid" >&2
  "$BIN/rosetta-bench" --grpc "http://127.0.0.1:$GRPC_PORT" --quiet --json soak \
    --bridge "$bridge" --connections "$N" --sources "$SOURCES" --seeded idle \
    --server-pid "$bridge_pid" --concurrency "$CONCURRENCY" --hold "$HOLD" \
    >"$DIR/$bridge/soak.json" 2>"$DIR/$bridge/soak.err" || {
    echo "$bridge: the soak failed:" >&2
    cat "$DIR/$bridge/soak.err" >&2
  }
  jq -r --arg b "$bridge" --arg n "$N" '
    (.counters | map({(.name): .value}) | add) as $c
    | [$b, $c["server RSS before"], $c["server RSS at \($n)"], $c["server KiB per connection, all"],
       $c["server KiB per connection, 2nd half"], $c["alive after hold"]]
    | "\(.[0])\t\(.[1])\t\(.[2])\t\(.[3] * 100 | round / 100)\t\(.[4] * 100 | round / 100)\t\(.[5])"' \
    "$DIR/$bridge/soak.json" |
    awk -F'\t' '{ printf "%-10s %12s %12s %16s %22s %6s\n", $1, $2, $3, $4, $5, $6 }'
  cleanup
done
