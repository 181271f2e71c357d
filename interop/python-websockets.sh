#!/usr/bin/env bash
# Python `websockets` (compression on) against each adapter's `server` example, in each
# compression mode. Installs websockets from PyPI into a virtualenv of its own.
#
#   interop/python-websockets.sh TESTS ADAPTER...
#
# TESTS is a comma-separated list of `broadcast` and `echo` (echo sends compressed
# frames, so it needs the server's inbound inflate). About 5 s per adapter once the
# server examples are built (Autobahn's step builds them first in CI).
set -euo pipefail
cd "$(dirname "$0")/.."

tests=$1
shift
target=${CARGO_TARGET_DIR:-target}
venv=$target/interop-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import websockets' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'websockets>=14'
fi

status=0
port=9101
for adapter in "$@"; do
    cargo build --quiet --release -p "$adapter" --example server
    for mode in shared dedicated; do
        "$target/release/examples/server" --addr 127.0.0.1:$port --compression $mode \
            --compression-threshold 64 >/dev/null 2>&1 &
        pid=$!
        for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
        for test in ${tests//,/ }; do
            if timeout 90 "$venv/bin/python" interop/websockets_client.py "ws://127.0.0.1:$port" "$test" $mode; then
                echo "python websockets: $adapter $mode $test passed"
            else
                echo "python websockets: $adapter $mode $test FAILED" >&2
                status=1
            fi
        done
        kill $pid 2>/dev/null || true
        wait $pid 2>/dev/null || true
        port=$((port + 1))
    done
done
exit $status
