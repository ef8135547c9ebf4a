#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets/*) for SECONDS (default 600) each and
# copies the corpus it found into reliability/corpus/<target>/, where the stable-Rust
# test `aggregator/tests/reliability_corpus.rs` replays it in CI.
# Needs `cargo install cargo-fuzz`. On a stable toolchain RUSTC_BOOTSTRAP=1 lets
# cargo-fuzz pass its nightly-only flags (-Zsanitizer=address, …).
# Usage: reliability/fuzz.sh [SECONDS] [target…]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-600}"; shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(decode_message decode_stored_report)
mkdir -p reliability/out
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t" "reliability/corpus/$t"
    # Start from the kept regression corpus.
    cp -n reliability/corpus/"$t"/* "fuzz/corpus/$t/" 2>/dev/null || true
    (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1) 2>&1 | tee "reliability/out/fuzz-$t.log"
    # Keep a minimised corpus as regression inputs.
    rm -rf "fuzz/corpus/$t.min" && mkdir -p "fuzz/corpus/$t.min"
    (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz cmin "$t" "corpus/$t" 2>&1 | tail -3) || true
    cp -n fuzz/corpus/"$t"/* "reliability/corpus/$t/" 2>/dev/null || true
    if [ -n "$(ls -A fuzz/artifacts/"$t" 2>/dev/null)" ]; then
        echo "CRASHES in $t (see fuzz/artifacts/$t)"
    else
        echo "$t: no crash"
    fi
done
