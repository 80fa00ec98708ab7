#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need, then cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup show active-toolchain >/dev/null   # installs the pinned toolchain from rust-toolchain.toml
command -v kubectl >/dev/null || { echo "error: kubectl is required by the executor tests (apt install kubectl)" >&2; exit 1; }
command -v go >/dev/null || { echo "error: go (1.26) is required to build the real control plane the tests run against (scripts/cluster.sh build)" >&2; exit 1; }
# The real control plane of tests/real_cluster.rs: built once, cached by version outside the tree
# (a no-op when cached); each test binary that needs it starts its own with scripts/cluster.sh up.
scripts/cluster.sh build
cargo test --workspace --locked "$@"
