#!/usr/bin/env bash
# Reliability runs against one server: slow consumers among fast ones, connection
# churn, silent connections evicted by keepalive, and hostile clients trying to grow
# the server's memory (the `attacks` sets). Each run starts a fresh server
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
# churn-short-warmup, and "attacks" for the five attack-* runs: attack-none,
# attack-slow-echo, attack-pong-fragments, attack-huge-headers, attack-oversize);
# every run is bounded in time (an attack run: ATTACK_SECONDS, default 10).
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
sets=${sets//attacks/attack-none attack-slow-echo attack-pong-fragments attack-huge-headers attack-oversize}
attack_seconds=${ATTACK_SECONDS:-10}
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
# Attacks: a 64 MiB memory budget, so that peak RSS can be read against it; a 16 MiB
# message limit for the attacks the issue found at that limit.
budget=(--memory-budget 67108864)
big=(--max-message-size 16777216)
attack() {
    local kind=$1; shift
    run attack --url ws://127.0.0.1:$port/echo --kind "$kind" --seconds "$attack_seconds" \
        --time-limit $((attack_seconds + 60)) "$@"
}

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
        # Hostile clients on /echo while one normal client measures its echo latency
        # (a 64-byte echo every 20 ms): peak RSS and what /stats says the server held
        # against its budget. `attack-none` is the reference, with no attacker.
        attack-none) start "${budget[@]}"
               attack none --attackers 0 ;;
        # 200 clients send 64 KiB messages and never read (small receive buffer and
        # segment size): their echoes pile up in the server.
        attack-slow-echo) start "${budget[@]}"
               attack slow-echo --attackers 200 --size 65536 ;;
        # 50 clients keep a message just under the 16 MiB limit incomplete, a pong
        # between fragments and then every 100 ms.
        attack-pong-fragments) start "${budget[@]}" "${big[@]}"
               attack pong-fragments --attackers 50 --limit 16777216 ;;
        # 200 clients send one header announcing 16 MiB, then nothing.
        attack-huge-headers) start "${budget[@]}" "${big[@]}"
               attack huge-headers --attackers 200 --limit 16777216 ;;
        # 20 clients each write a whole 16 MiB + 1 message before reading: each must
        # read close 1009.
        attack-oversize) start "${budget[@]}" "${big[@]}"
               attack oversize --attackers 20 --limit 16777216 ;;
        *) echo "unknown set $set" >&2; exit 2 ;;
    esac
done
