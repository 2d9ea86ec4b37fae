#!/usr/bin/env bash
# Runs berth's whole test suite (unit and integration; no doc tests exist). Integration
# tests start their own berthd instances and run real containers, so this needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins
# The docker Python SDK, for the compatibility tests (PyPI).
if [ ! -x target/sdk-venv/bin/python ] || ! target/sdk-venv/bin/python -c 'import docker' 2>/dev/null; then
  python3 -m venv target/sdk-venv
  target/sdk-venv/bin/pip install -q 'docker>=7,<8'
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --release --workspace --lib --bins --tests 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
