#!/usr/bin/env bash
# Runs every cargo-fuzz target of melody-core for a bounded time, one after the other,
# on one core; exits non-zero as soon as one finds a crash (the input is saved under
# artifacts/<target>/).
#
#   melody-core/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]   (default: 45, all)
#
# Installs the nightly toolchain and cargo-fuzz when they are missing. Each run starts
# from the committed seed corpus (corpus/<target>/, read only) and keeps what it finds
# in target/corpus/<target>/, which later runs on the same machine reuse.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-45}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(handshake session frames inflate)
fi

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "==> installing the nightly toolchain (cargo-fuzz needs it)"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# The fuzz crate is its own workspace with its own target dir: never the main one.
unset CARGO_TARGET_DIR

for target in "${targets[@]}"; do
    args=(-max_total_time="$seconds" -timeout=30 -print_final_stats=1)
    if [ -f "$target.dict" ]; then
        args+=(-dict="$target.dict")
    fi
    mkdir -p "target/corpus/$target" "corpus/$target"
    echo "==> fuzzing $target for ${seconds}s"
    cargo +nightly fuzz run "$target" "target/corpus/$target" "corpus/$target" -- "${args[@]}"
done
echo "==> no crash in ${#targets[@]} target(s), ${seconds}s each"
