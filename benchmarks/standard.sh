#!/usr/bin/env bash
# The standard set, against every adapter's `server` example and the baseline, one
# server process per run, then the tables into BENCHMARKS.md (between the
# "standard" markers) and the plot into benchmarks/standard.svg.
#
#   benchmarks/standard.sh                 # all sets, about 10 minutes
#   SETS="broadcast-1k echo" benchmarks/standard.sh
#   SERVERS="melody-tokio baseline" benchmarks/standard.sh
#   ROUNDS=3 benchmarks/standard.sh        # medians of three rounds
#   KEEP_RESULTS=1 SETS=echo benchmarks/standard.sh   # add to the last results
#   REFERENCE=DIR benchmarks/standard.sh   # also an outside reference server, built from
#                                          # the Cargo project in DIR, run with
#                                          # REFERENCE_FLAGS (default: --threads 0)
#
# `baseline` (benchmarks/src/bin/baseline.rs) is the strong baseline every ratio is
# quoted against; `naive-baseline` (the tokio-tungstenite examples' way) can be added
# to SERVERS as a second row. A reference server run in the same sitting shows the
# baseline is at least as strong as it.
#
# Not a test: figures move with the machine's load. Read the ratios, measured here in
# one sitting, not the absolute numbers.
set -euo pipefail
cd "$(dirname "$0")/.."

sets=${SETS:-"broadcast-100 broadcast-1k broadcast-10k burst echo rate idle idle-19k"}
servers=${SERVERS:-"melody-tokio melody-smol melody-async-std baseline"}
[ -n "${REFERENCE:-}" ] && servers="$servers reference"
bin=target/bench-bin
results=target/bench-results.txt
mkdir -p "$bin"

# The load generator and report as usual; every server with the `measure` profile.
cargo build --release -p benchmarks --quiet
cargo build --profile measure -p benchmarks --bin baseline --bin naive_baseline --quiet
cp target/measure/baseline "$bin/baseline"
cp target/measure/naive_baseline "$bin/naive-baseline"
if [ -n "${REFERENCE:-}" ]; then
    cargo build --release --quiet --manifest-path "$REFERENCE/Cargo.toml" --target-dir target/reference
    reference_bin=$(find target/reference/release -maxdepth 1 -type f -executable | head -n 1)
    cp "$reference_bin" "$bin/reference"
fi
for server in $servers; do
    if [[ "$server" == melody-* ]]; then
        # The adapters' examples share the name `server`: build and copy one at a time.
        cargo build --profile measure -p "$server" --example server --quiet
        cp target/measure/examples/server "$bin/$server"
    fi
done

# ROUNDS repeats every set; the servers take turns within a round, and the report
# keeps the median, so that one noisy run does not decide a ratio.
rounds=${ROUNDS:-1}
[ -n "${KEEP_RESULTS:-}" ] || : >"$results"
port=6600
for round in $(seq "$rounds"); do
  for server in $servers; do
    flags=()
    [[ "$server" == melody-* ]] && flags=(--threads 1 --shards 1)
    # shellcheck disable=SC2206 # flags are words
    [ "$server" = reference ] && flags=(${REFERENCE_FLAGS:---threads 0})
    for set in $sets; do
        port=$((port + 1)) # a fresh port per run: no TIME_WAIT from the last one
        stats_port=
        [[ "$server" == melody-* ]] && stats_port=$((port + 1000))
        PORT=$port STATS_PORT=$stats_port SETS=$set benchmarks/run.sh "$server" -- "$bin/$server" "${flags[@]}" |
            tee -a "$results"
    done
  done
done

note="Measured $(date -u +%Y-%m-%d) with \`benchmarks/standard.sh\`, load average $(cut -d' ' -f1 /proc/loadavg) at the end; each server on core 0, the load generator on core 1, one server process per run."
target/release/report --results "$results" --markdown BENCHMARKS.md --svg benchmarks/standard.svg --note "$note"
