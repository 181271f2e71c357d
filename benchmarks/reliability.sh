#!/usr/bin/env bash
# Reliability runs against one server: slow consumers among fast ones, connection
# churn, and silent connections evicted by keepalive. Each run starts a fresh server
# (pinned to core 0, the load generator on core 1) with the flags it needs and
# `--stats-addr`, whose `GET /stats` gives the server's own counters; each prints one
# RESULT line (JSON after "RESULT ").
#
#   benchmarks/reliability.sh NAME -- SERVER COMMAND...
#
# The server must take --addr HOST:PORT, --stats-addr HOST:PORT and the Config flags
# (every adapter's `server` example does), e.g.
#   benchmarks/reliability.sh melody-tokio -- target/release/examples/server --threads 1 --shards 1
# SETS selects runs (default "fast900 slow churn silent"; also slow0 and
# churn-short-warmup); every run is bounded in time.
# SERVER_LOG names a file for the servers' output (default: discarded); LOADGEN the
# load generator (default target/release/loadgen); PORT the server's port (6500; its
# stats on PORT + 1).
set -euo pipefail
cd "$(dirname "$0")/.."

name=$1; shift
[ "$1" = "--" ] && shift
command=("$@")
port=${PORT:-6500}
stats_port=${STATS_PORT:-$((port + 1))}
sets=${SETS:-"fast900 slow churn silent"}
loadgen=${LOADGEN:-target/release/loadgen}
server_log=${SERVER_LOG:-/dev/null}
ulimit -n 20000 2>/dev/null || true

server=
stop() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
        server=
    fi
}
trap stop EXIT

# A fresh server with these extra flags, so that each run starts from a new process.
start() {
    stop
    taskset -c 0 "${command[@]}" --addr 127.0.0.1:$port --stats-addr 127.0.0.1:$stats_port "$@" \
        >>"$server_log" 2>&1 &
    server=$!
    # Both ports: the stats listener opens before the WebSocket one.
    for _ in $(seq 50); do
        (exec 3<>/dev/tcp/127.0.0.1/$stats_port) 2>/dev/null &&
            (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && return
        sleep 0.1
    done
    echo "$name: the server did not start" >&2
    exit 1
}

run() {
    local mode=$1; shift
    echo "$name $set $(taskset -c 1 $loadgen "$mode" --server-pid "$server" \
        --stats 127.0.0.1:$stats_port "$@" | grep '^RESULT')"
}

# Slow consumers never read, so the server must not cut them off before the run
# (writes that make no progress, pongs that never come): the drain afterwards is what
# proves the drop count exact.
patient=(--write-wait-ms 120000 --ping-period-ms 110000 --pong-wait-ms 120000)
# Churn and silence: keepalive periods short enough that timers run out, and silent
# peers are evicted, within a bounded run.
brisk=(--ping-period-ms 5000 --pong-wait-ms 10000)

for set in $sets; do
    case $set in
        # 1000 subscribers, 2000 broadcasts of 256 bytes at 50 a second; in `slow`, 100
        # of them never read, with a small receive buffer and segment size so that the
        # server's kernel buffers only ~200 KB for each before its outbox fills.
        # `fast900` is the same 900 fast subscribers alone (the latency reference);
        # `slow0`, 1000 fast ones.
        fast900) start "${patient[@]}"
               run slow --url ws://127.0.0.1:$port/ws --subscribers 900 --slow 0 \
                   --rate 50 --size 256 --messages 2000 --time-limit 120 ;;
        slow0) start "${patient[@]}"
               run slow --url ws://127.0.0.1:$port/ws --subscribers 1000 --slow 0 \
                   --rate 50 --size 256 --messages 2000 --time-limit 120 ;;
        slow)  start "${patient[@]}"
               run slow --url ws://127.0.0.1:$port/ws --subscribers 1000 --slow 100 \
                   --rate 50 --size 256 --messages 2000 --slow-rcvbuf 4096 --slow-mss 536 \
                   --time-limit 120 ;;
        # The warm-up is as long as the run: the timer entries of released sessions
        # stay until their period (10 s here) has passed, so the heap's high-water
        # mark depends on the churn rate, and the first run at a rate sets it.
        churn) start "${brisk[@]}"
               run churn --url ws://127.0.0.1:$port/echo --cycles 100000 --warmup 100000 \
                   --concurrency 32 --source-addrs 16 --time-limit 300 ;;
        churn-short-warmup)
               start "${brisk[@]}"
               run churn --url ws://127.0.0.1:$port/echo --cycles 100000 --warmup 1000 \
                   --concurrency 32 --source-addrs 16 --time-limit 300 ;;
        silent) start "${brisk[@]}"
               run silent --url ws://127.0.0.1:$port/ws --connections 10000 \
                   --evict-limit 60 --time-limit 120 ;;
        *) echo "unknown set $set" >&2; exit 2 ;;
    esac
done
