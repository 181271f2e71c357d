#!/usr/bin/env bash
# Browser tests: an adapter's chat example (melody-tokio's unless CHAT_ADAPTERS says
# otherwise), then melody-tokio's events example (EventSource and WebSocket on one
# device): headless Debian Chromium, driven by playwright-core from node's test
# runner. Installs what is missing (idempotent) and exits non-zero if a test fails.
#
#   browser-tests/run.sh                       # from the repository root
#   CHAT_ADAPTERS="melody-tokio melody-smol melody-async-std" browser-tests/run.sh
#   CHAT_COMPRESSION="off shared dedicated" browser-tests/run.sh   # each chat test per
#                                              # --compression mode (default: off)
#   SCREENSHOT=chat.png browser-tests/run.sh   # keeps a picture, in browser-tests/
#                                              # (with CHAT_ADAPTERS: chat-ADAPTER.png)
#   EVENTS_SCREENSHOT=events.png browser-tests/run.sh
set -euo pipefail
cd "$(dirname "$0")"

. ./setup.sh
browser_test_setup
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
    for mode in ${CHAT_COMPRESSION:-off}; do
        CHAT_COMPRESSION=$mode node --test chat.test.mjs || status=1
    done
done

cargo build --quiet -p melody-tokio --example events
export EVENTS_BIN="$target_dir/debug/examples/events"
node --test events.test.mjs || status=1
exit $status
