#!/usr/bin/env bash
# permessage-deflate in one sitting: the `chat-1k` set (a JSON chat room, 200-2,000 byte
# messages, 1k subscribers that offer the extension) against melody-tokio's `server`
# example with --compression off, shared and dedicated, the modes taking turns in each
# of ROUNDS rounds (default 3); prints the RESULT lines and a table of medians.
# CHAT_MESSAGES messages per run (default 400: 400k deliveries; dedicated compresses
# each delivery, about 20 s of server CPU per run on this VM).
#
#   benchmarks/compression.sh            # about a minute per round on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."

target=${CARGO_TARGET_DIR:-target}
cargo build --quiet --release -p benchmarks --bin loadgen
cargo build --quiet --release -p melody-tokio --example server
server=$target/compression-bench-server
cp "$target/release/examples/server" "$server"

results=$(mktemp)
for round in $(seq "${ROUNDS:-3}"); do
    for mode in off shared dedicated; do
        CHAT_MESSAGES=${CHAT_MESSAGES:-400} SETS=chat-1k benchmarks/run.sh "$mode" -- "$server" --threads 1 --shards 1 \
            --compression "$mode" | tee -a "$results"
    done
done
python3 - "$results" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, _set, rest = line.split(" ", 2)
    result = json.loads(rest.removeprefix("RESULT "))
    rows.setdefault(name, []).append(result)
def med(name, key):
    return statistics.median(r[key] for r in rows[name])
print("\n| figure | off | shared | dedicated |\n| --- | ---: | ---: | ---: |")
figures = [
    ("wire bytes per delivery (mean payload %.0f B)" % med("off", "mean_payload_bytes"), "wire_bytes_per_delivery", "%.0f B"),
    ("server CPU per delivery", "server_cpu_per_delivery_us", "%.3f µs"),
    ("deliveries compressed", "compressed", "%d"),
    ("deliveries lost", "lost", "%d"),
    ("RSS per session, connected", "rss_per_session_connected", "%.0f B"),
    ("RSS per session, idle after the run", "rss_per_session_idle_after", "%.0f B"),
]
for label, key, fmt in figures:
    print(f"| {label} | " + " | ".join(fmt % med(n, key) for n in ("off", "shared", "dedicated")) + " |")
cpu = {n: med(n, "server_cpu_per_delivery_us") for n in rows}
print(f"\nshared ÷ off CPU per delivery: {cpu['shared'] / cpu['off']:.2f}×; dedicated ÷ off: {cpu['dedicated'] / cpu['off']:.2f}×")
print("rounds per mode:", {n: len(r) for n, r in rows.items()})
PY
rm -f "$results"
