#!/usr/bin/env bash
# Idle pipe connections at scale (issue 21): N seeded users logged in on stand-alone
# `rosetta bridge pipe` processes in front of one SQLite `rosetta all` (its own bridges off);
# the RSS of the bridges and of the node at the checkpoints, then pushes to random idle users
# timed on their sockets while all N are held.
#
#   bench/soak100k.sh [BIN_DIR]        # default target/release; settings below by environment
#
# Why several processes: every process here has a hard descriptor limit of 20,000 and the
# container lacks CAP_SYS_RESOURCE, so nothing can raise it (not even root: `ulimit -n` and
# `prlimit` fail with EPERM). A bridge also caps its listener at a quarter of its descriptor
# limit (5,000), so the run starts ceil(N / PER_BRIDGE) bridge processes, each on its own
# loopback address (127.0.1.k, same port), and one soak process per bridge holding that
# bridge's connections from 127.0.0.1 … 127.0.0.<SOURCES>. The soak processes start one after
# another and hold until told to stop, so the totals grow 5,000 at a time.
#
# The users are seeded straight into the node's database with cheap argon2id verifiers
# (`rosetta-bench seed`, bench-only): registering 100,000 users over gRPC at the service's own
# cost would take hours. The server's own hashing is unchanged.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

BIN=${1:-target/release}
N=${N:-100000}
PER_BRIDGE=${PER_BRIDGE:-5000}
CHECKPOINTS=${CHECKPOINTS:-10000,50000}
PUSHES=${PUSHES:-200}
PUSH_RATE=${PUSH_RATE:-20}
CONCURRENCY=${CONCURRENCY:-64}
SOURCES=${SOURCES:-16}
DIR=${DIR:-/tmp/scale-soak}
GRPC_PORT=${GRPC_PORT:-51191}
PIPE_PORT=${PIPE_PORT:-18281}
PREFIX=${PREFIX:-soak}
# Longest a soak process holds if this script dies without telling it to stop.
MAX_HOLD=${MAX_HOLD:-2h}
# The node's database: empty for SQLite in $DIR/all, or a PostgreSQL URL of an empty
# database that the run may fill (e.g. postgres://postgres@127.0.0.1:5432/scale_soak).
DATABASE_URL=${DATABASE_URL:-}

BRIDGES=$(((N + PER_BRIDGE - 1) / PER_BRIDGE))
((BRIDGES <= 250)) || { echo "at most 250 bridges (127.0.1.1 … 127.0.1.250)" >&2; exit 1; }
echo "descriptor limit per process: soft $(ulimit -Sn), hard $(ulimit -Hn); $BRIDGES bridges" >&2

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT



# One line: connections held, the bridges' RSS summed, the node's RSS (KiB).
reading() {
  local total=0 pid
  for pid in "${bridge_pids[@]}"; do total=$((total + $(rss "$pid"))); done
  echo "$1 $total $(rss "$node")"
}

rm -rf "$DIR" && mkdir -p "$DIR/all"
if [[ -n $DATABASE_URL ]]; then export ROSETTA_DATABASE_URL=$DATABASE_URL; fi
"$BIN/rosetta-bench" --quiet seed --database "${DATABASE_URL:-sqlite://$DIR/all/rosetta.db?mode=rwc}" \
  --prefix "$PREFIX" --count "$N" >&2

bench_node_env
ROSETTA_BRIDGES__PIPE__ENABLED=false ROSETTA_BRIDGES__DPC__ENABLED=false \
  ROSETTA_BRIDGES__IMPS__ENABLED=false ROSETTA_BRIDGES__OURCHAT__ENABLED=false \
  ROSETTA_BRIDGES__CLOUDCHAT__ENABLED=false \
  ROSETTA_DATA_DIR="$DIR/all" ROSETTA_GRPC_LISTEN="127.0.0.1:$GRPC_PORT" \
  "$BIN/rosetta" all >"$DIR/all.log" 2>&1 &
node=$!
pids+=("$node")
wait_port 127.0.0.1 "$GRPC_PORT"

bridge_pids=()
for ((k = 1; k <= BRIDGES; k++)); do
  mkdir -p "$DIR/bridge-$k"
  ROSETTA_BRIDGE_KEY_FILE="$DIR/all/bridge.key" ROSETTA_DATA_DIR="$DIR/bridge-$k" \
    ROSETTA_BRIDGES__PIPE__LISTEN="127.0.1.$k:$PIPE_PORT" \
    ROSETTA_BRIDGES__PIPE__LIMITS__MAX_CONNECTIONS="$PER_BRIDGE" \
    ROSETTA_BRIDGES__PIPE__LIMITS__MAX_PER_ADDRESS="$PER_BRIDGE" \
    "$BIN/rosetta" bridge pipe --grpc "http://127.0.0.1:$GRPC_PORT" >"$DIR/bridge-$k.log" 2>&1 &
  bridge_pids+=($!)
  pids+=($!)
done
for ((k = 1; k <= BRIDGES; k++)); do wait_port "127.0.1.$k" "$PIPE_PORT"; done
sleep 2
readings=("$(reading 0)")

held=0
soaks=()
for ((k = 1; k <= BRIDGES; k++)); do
  first=$(((k - 1) * PER_BRIDGE))
  count=$((N - first < PER_BRIDGE ? N - first : PER_BRIDGE))
  # The last soak pushes the probes when told to end its hold (after the last reading, with
  # all N held), then ends; the others hold until it is done.
  pushes=0 until="$DIR/stop"
  if ((k == BRIDGES)); then pushes=$PUSHES until="$DIR/stop-last"; fi
  "$BIN/rosetta-bench" --grpc "http://127.0.0.1:$GRPC_PORT" --quiet --json soak --bridge pipe \
    --addr "127.0.1.$k:$PIPE_PORT" --connections "$count" --sources "$SOURCES" \
    --seeded "$PREFIX" --first "$first" --server-pid "${bridge_pids[k - 1]}" \
    --node-pid "$node" --pushes "$pushes" --push-rate "$PUSH_RATE" \
    --concurrency "$CONCURRENCY" --ready-file "$DIR/ready-$k" --hold-until-file "$until" \
    --hold "$MAX_HOLD" >"$DIR/soak-$k.json" 2>"$DIR/soak-$k.err" &
  soaks+=($!)
  pids+=($!)
  until [[ -f "$DIR/ready-$k" ]]; do
    kill -0 "${soaks[k - 1]}" 2>/dev/null || { echo "soak $k ended early:" >&2; cat "$DIR/soak-$k.err" >&2; exit 1; }
    sleep 0.5
  done
  held=$((held + $(cat "$DIR/ready-$k")))
  echo "held $held" >&2
  if [[ ",$CHECKPOINTS,$N," == *",$((first + count)),"* ]]; then
    sleep 2
    readings+=("$(reading "$held")")
  fi
done

touch "$DIR/stop-last"
wait "${soaks[BRIDGES - 1]}" || echo "the last soak reported failures" >&2
touch "$DIR/stop"
for pid in "${soaks[@]:0:BRIDGES-1}"; do wait "$pid" || echo "soak $pid reported failures" >&2; done

echo
echo "connections  bridges RSS KiB  node RSS KiB  bridges KiB/conn since previous  node KiB/conn since previous"
prev=""
for line in "${readings[@]}"; do
  read -r n b a <<<"$line"
  if [[ -n $prev ]]; then
    read -r pn pb pa <<<"$prev"
    awk -v n="$n" -v b="$b" -v a="$a" -v pn="$pn" -v pb="$pb" -v pa="$pa" \
      'BEGIN { printf "%11d  %15d  %12d  %32.2f  %28.2f\n", n, b, a, (b-pb)/(n-pn), (a-pa)/(n-pn) }'
  else
    printf "%11d  %15d  %12d\n" "$n" "$b" "$a"
  fi
  prev=$line
done
echo
jq -s '{logged_in: (map(.counters[] | select(.name == "logged in") | .value) | add),
        login_errors: (map(.counters[] | select(.name == "login errors") | .value) | add),
        alive_after_hold: (map(.counters[] | select(.name == "alive after hold") | .value) | add),
        push: (map(.latencies[] | select(.name == "push to an idle user")) | first),
        failures: (map(.failures[]))}' "$DIR"/soak-*.json
