#!/usr/bin/env bash
# Autobahn|TestSuite cases 1-7 and 9 against an adapter's `server` example, driven by
# kosoku (from PyPI, in a virtualenv of its own). Fails unless every case passes.
#
#   autobahn/run.sh [ADAPTER...]     # default: melody-tokio
set -euo pipefail
cd "$(dirname "$0")/.."

adapters=("$@")
[ ${#adapters[@]} -gt 0 ] || adapters=(melody-tokio)

venv=target/autobahn-venv
if [ ! -x "$venv/bin/kosoku" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check kosoku==0.1.0
fi

status=0
port=9001
for adapter in "${adapters[@]}"; do
    cargo build --quiet --release -p "$adapter" --example server
    server=target/release/examples/server
    # Autobahn's 9.x cases send messages of up to 16 MiB.
    "$server" --addr 127.0.0.1:$port --max-message-size 16777216 --buffer-size 1024 >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
    out=target/autobahn-reports/$adapter
    log=$(mktemp)
    set +e
    timeout 600 "$venv/bin/kosoku" "ws://127.0.0.1:$port/echo" \
        -i '1.*' -i '2.*' -i '3.*' -i '4.*' -i '5.*' -i '6.*' -i '7.*' -i '9.*' \
        -p 4 -o "$out" >"$log" 2>&1
    code=$?
    set -e
    kill $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    tail -n 5 "$log"
    if [ $code -ne 0 ] || ! grep -q '^300 cases passed$' "$log"; then
        echo "autobahn: $adapter FAILED (kosoku exit $code); report in $out" >&2
        status=1
    else
        echo "autobahn: $adapter 300/300"
    fi
    rm -f "$log"
    port=$((port + 1))
done
exit $status
