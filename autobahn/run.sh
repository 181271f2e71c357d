#!/usr/bin/env bash
# Autobahn|TestSuite cases 1-7 and 9 against an adapter's `server` example, driven by
# kosoku (from PyPI, in a virtualenv of its own). Fails unless every case passes.
#
#   autobahn/run.sh [ADAPTER...]     # default: melody-tokio
#
# AUTOBAHN_COMPRESSION=off|shared|dedicated is the server's `--compression` (off);
# AUTOBAHN_CASES the case globs ("1.* 2.* 3.* 4.* 5.* 6.* 7.* 9.*") and AUTOBAHN_EXPECT
# how many cases they are (300). The permessage-deflate groups are 12.* and 13.*
# (they send compressed frames, so they need the server's inbound inflate).
# AUTOBAHN_FLAGS adds server flags (e.g. "--compression-threshold 0").
# AUTOBAHN_SUMMARY=1 prints passed/run per case group (always printed on failure).
# AUTOBAHN_RUNNER_ERRORS=allowed passes a run whose only failures are exceptions in
# kosoku's own case code (see autobahn/summary.py): its 12.*/13.* code raises on a message
# the server sends uncompressed, which RFC 7692 allows.
set -euo pipefail
cd "$(dirname "$0")/.."

adapters=("$@")
compression=${AUTOBAHN_COMPRESSION:-off}
read -r -a globs <<<"${AUTOBAHN_CASES:-1.* 2.* 3.* 4.* 5.* 6.* 7.* 9.*}"
expect=${AUTOBAHN_EXPECT:-300}
includes=()
for glob in "${globs[@]}"; do includes+=(-i "$glob"); done
target=${CARGO_TARGET_DIR:-target}
[ ${#adapters[@]} -gt 0 ] || adapters=(melody-tokio)

venv=$target/autobahn-venv
if [ ! -x "$venv/bin/kosoku" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check kosoku==0.1.0
fi

status=0
port=9001
for adapter in "${adapters[@]}"; do
    cargo build --quiet --release -p "$adapter" --example server
    server=$target/release/examples/server
    # Autobahn's 9.x cases send messages of up to 16 MiB, and read their echoes: the
    # outbox takes two of them (the 1 MiB default would drop each one, counted).
    "$server" --addr 127.0.0.1:$port --max-message-size 16777216 --buffer-size 1024 \
        --buffer-bytes 33554432 --compression "$compression" ${AUTOBAHN_FLAGS:-} >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
    out=$target/autobahn-reports/$adapter-$compression
    rm -rf "$out"
    log=$(mktemp)
    set +e
    timeout 600 "$venv/bin/kosoku" "ws://127.0.0.1:$port/echo" \
        "${includes[@]}" -p 4 -o "$out" >"$log" 2>&1
    code=$?
    set -e
    kill $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    tail -n 5 "$log"
    if [ "${AUTOBAHN_RUNNER_ERRORS:-}" = allowed ] && [ $code -ne 124 ] &&
        [ "$(ls "$out"/*_case_*.json 2>/dev/null | wc -l)" -eq "$expect" ]; then
        if python3 autobahn/summary.py "$out" --server-failures-fail; then
            echo "autobahn: $adapter (compression $compression) no server failure in $expect cases"
        else
            echo "autobahn: $adapter (compression $compression) FAILED; report in $out" >&2
            status=1
        fi
    elif [ $code -ne 0 ] || ! grep -q "^$expect cases passed\$" "$log"; then
        echo "autobahn: $adapter (compression $compression) FAILED (kosoku exit $code); report in $out" >&2
        status=1
        python3 autobahn/summary.py "$out"
    else
        echo "autobahn: $adapter (compression $compression) $expect/$expect"
        [ "${AUTOBAHN_SUMMARY:-0}" = 1 ] && python3 autobahn/summary.py "$out"
    fi
    rm -f "$log"
    port=$((port + 1))
done
exit $status
