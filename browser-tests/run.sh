#!/usr/bin/env bash
# Browser test of an adapter's chat example (melody-tokio's unless CHAT_ADAPTERS says
# otherwise): headless Debian Chromium, driven by playwright-core from node's test
# runner. Installs what is missing (idempotent) and exits non-zero if a test fails.
#
#   browser-tests/run.sh                       # from the repository root
#   CHAT_ADAPTERS="melody-tokio melody-smol melody-async-std" browser-tests/run.sh
#   SCREENSHOT=chat.png browser-tests/run.sh   # keeps a picture, in browser-tests/
#                                              # (with CHAT_ADAPTERS: chat-ADAPTER.png)
set -euo pipefail
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian's chromium and node; never a browser download by a tool.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

# playwright-core (the driver only: it ships no browser and downloads none).
if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
fi

target_dir=$(cargo metadata --format-version 1 --no-deps |
    node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).target_directory))')
export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
screenshot="${SCREENSHOT:-}"

# Every adapter's example is named `chat`: build and test one at a time, so that
# target/debug/examples/chat is the one just built.
status=0
for adapter in ${CHAT_ADAPTERS:-melody-tokio}; do
    cargo build --quiet -p "$adapter" --example chat
    export CHAT_BIN="$target_dir/debug/examples/chat" CHAT_ADAPTER="$adapter"
    if [ -n "$screenshot" ] && [ -n "${CHAT_ADAPTERS:-}" ]; then
        export SCREENSHOT="${screenshot%.png}-$adapter.png"
    fi
    node --test chat.test.mjs || status=1
done
exit $status
