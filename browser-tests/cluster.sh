#!/usr/bin/env bash
# Browser test of melody-redis's cluster_chat example: two nodes, one Redis, a page on
# each (headless Debian Chromium via playwright-core). Uses MELODY_REDIS_URL if set,
# else starts its own redis-server on a free loopback port and stops it at the end.
#
#   browser-tests/cluster.sh                     # from the repository root
#   SCREENSHOT=cluster.png browser-tests/cluster.sh
set -euo pipefail
cd "$(dirname "$0")"

# redis-server only when no Redis is given (the package's binary has its name).
. ./setup.sh
if [ -z "${MELODY_REDIS_URL:-}" ]; then
    browser_test_setup redis-server
else
    browser_test_setup
fi

if [ -z "${MELODY_REDIS_URL:-}" ]; then
    eval "$(../melody-redis/redis-for-tests.sh start)"
    trap '../melody-redis/redis-for-tests.sh stop' EXIT
fi

cargo build --quiet -p melody-redis --example cluster_chat
export CLUSTER_CHAT_BIN="$target_dir/debug/examples/cluster_chat" MELODY_REDIS_URL
node --test cluster_chat.test.mjs
