#!/usr/bin/env bash
# A throwaway redis-server for the tests and CI, on a free loopback port.
#
#   eval "$(melody-redis/redis-for-tests.sh start)"   # exports MELODY_REDIS_URL and MELODY_REDIS_PID
#   melody-redis/redis-for-tests.sh stop              # stops the server MELODY_REDIS_PID names
#
# `start` needs `redis-server` and `redis-cli` (Debian: apt-get install -y redis-server).
# Nothing is saved to disk.
set -euo pipefail

start_on() { # PORT DIR: starts a server; succeeds once it answers PING
    local port=$1 dir=$2
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$dir" --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null
    for _ in $(seq 1 50); do
        if [ -s "$dir/redis.pid" ] && redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

case "${1:-}" in
start)
    dir=$(mktemp -d)
    for _ in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 40000))
        # Skip a port something already listens on.
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            continue
        fi
        if start_on "$port" "$dir"; then
            echo "export MELODY_REDIS_URL=redis://127.0.0.1:$port/ MELODY_REDIS_PID=$(cat "$dir/redis.pid")"
            exit 0
        fi
    done
    echo "redis-server did not start; its log: $dir/redis.log" >&2
    exit 1
    ;;
stop)
    if [ -n "${MELODY_REDIS_PID:-}" ]; then
        kill "$MELODY_REDIS_PID" 2>/dev/null || true
    fi
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
