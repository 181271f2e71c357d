#!/usr/bin/env bash
# Browser test of melody-redis's cluster_chat example: two nodes, one Redis, a page on
# each (headless Debian Chromium via playwright-core). Uses MELODY_REDIS_URL if set,
# else starts its own redis-server on a free loopback port and stops it at the end.
#
#   browser-tests/cluster.sh                     # from the repository root
#   SCREENSHOT=cluster.png browser-tests/cluster.sh
set -euo pipefail
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ -z "${MELODY_REDIS_URL:-}" ] && ! command -v redis-server >/dev/null 2>&1; then
    missing+=(redis-server)
fi
if [ ${#missing[@]} -gt 0 ]; then
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi
if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
fi

if [ -z "${MELODY_REDIS_URL:-}" ]; then
    eval "$(../melody-redis/redis-for-tests.sh start)"
    trap '../melody-redis/redis-for-tests.sh stop' EXIT
fi

target_dir=$(cargo metadata --format-version 1 --no-deps |
    node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).target_directory))')
cargo build --quiet -p melody-redis --example cluster_chat
export CLUSTER_CHAT_BIN="$target_dir/debug/examples/cluster_chat" MELODY_REDIS_URL
export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
node --test cluster_chat.test.mjs
