#!/usr/bin/env bash
# Runs the standard benchmark set against one server, pinned to core 0 with the load
# generator on core 1, and prints one RESULT line per run (JSON after "RESULT ").
#
#   benchmarks/run.sh NAME -- SERVER COMMAND...   (the server must take --addr HOST:PORT)
#
# e.g. benchmarks/run.sh melody-tokio -- target/release/examples/server --threads 1 --shards 1
#      benchmarks/run.sh baseline -- target/release/baseline
# SETS selects runs (default "broadcast echo idle"; all: broadcast-100 broadcast-1k
# broadcast-10k burst chat-1k echo rate idle idle-19k sse-broadcast-1k); every run is bounded in
# time. sse-broadcast-1k alternates rounds of broadcast to 1k WebSocket and to 1k
# event-stream subscribers (PAIRS of each, default 3) and reports both CPU figures and
# their ratio. chat-1k is a JSON chat room (200-2,000 byte messages) whose 1k
# subscribers offer permessage-deflate: run it against servers started with each
# --compression mode (benchmarks/compression.sh does, in one sitting). Each line starts with NAME SET, as benchmarks/src/bin/report reads them.
set -euo pipefail
cd "$(dirname "$0")/.."

name=$1; shift
[ "$1" = "--" ] && shift
port=${PORT:-6100}
sets=${SETS:-"broadcast echo idle"}
loadgen=${CARGO_TARGET_DIR:-target}/release/loadgen
ulimit -n 20000 2>/dev/null || true

# STATS_PORT: the server also answers GET /stats there (melody's `server` examples), and
# the runs that can use it (burst) set the server's drop count beside their losses.
stats=()
[ -n "${STATS_PORT:-}" ] && stats=(--stats-addr 127.0.0.1:$STATS_PORT)
taskset -c 0 "$@" --addr 127.0.0.1:$port "${stats[@]}" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 0.1
done

run() { echo "$name $set $(taskset -c 1 $loadgen "$@" --server-pid $server --time-limit 120 | grep '^RESULT')"; }
for set in $sets; do
    case $set in
        broadcast-100) run broadcast --url ws://127.0.0.1:$port/ws --subscribers 100 --window 64 --messages 20000 ;;
        broadcast|broadcast-1k) run broadcast --url ws://127.0.0.1:$port/ws --subscribers 1000 --window 64 --messages 2000 ;;
        broadcast-10k) run broadcast --url ws://127.0.0.1:$port/ws --subscribers 10000 --window 64 --messages 200 ;;
        burst)     run broadcast --url ws://127.0.0.1:$port/ws --subscribers 100 --window 4000 --messages 4000 \
                       ${STATS_PORT:+--stats 127.0.0.1:$STATS_PORT} ;;
        chat-1k)   run chat --url ws://127.0.0.1:$port/ws --subscribers 1000 --window 64 --messages ${CHAT_MESSAGES:-2000} ;;
        echo)      run echo --url ws://127.0.0.1:$port/echo --connections 50 --messages 100000 ;;
        rate)      run rate --url ws://127.0.0.1:$port/ws --subscribers 1000 --rate 10 --messages 50 ;;
        idle)      run idle --url ws://127.0.0.1:$port/ws --connections 10000 --hold 5 ;;
        idle-19k)  run idle --url ws://127.0.0.1:$port/ws --connections 19000 --hold 60 ;;
        sse-broadcast-1k) run sse-broadcast --url ws://127.0.0.1:$port/ws --subscribers 1000 --window 64 \
                       --messages 2000 --pairs ${PAIRS:-3} ;;
        *) echo "unknown set $set" >&2; exit 2 ;;
    esac
done
