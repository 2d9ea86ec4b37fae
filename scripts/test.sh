#!/usr/bin/env bash
# Runs berth's whole test suite (unit and integration; no doc tests exist). Integration
# tests start their own berthd instances and run real containers, so this needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --release --workspace --lib --bins --tests 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
