#!/usr/bin/env bash
# The long reliability runs of issue 10 (figures recorded in RELIABILITY.md):
# the 50-trial kill loop, the 10,000-upload load test and the partition test.
# Usage: reliability/run_long.sh [release|dev] [test-name-filter]
# Output is also written to reliability/out/long-<profile>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-release}"
filter="${2:-}"
mkdir -p reliability/out
flags=()
[ "$profile" = release ] && flags+=(--release)
cargo test "${flags[@]}" -p cairn-aggregator --test reliability_long -- \
    --ignored --nocapture --test-threads 1 $filter 2>&1 | tee "reliability/out/long-$profile.log"
