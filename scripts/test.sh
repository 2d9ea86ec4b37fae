#!/bin/sh
# Runs berth's whole test suite (unit and integration). Integration tests start their
# own berthd instances and run real containers, so this needs root.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins
cargo test --release --workspace
