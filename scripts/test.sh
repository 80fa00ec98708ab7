#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need, then cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup show active-toolchain >/dev/null   # installs the pinned toolchain from rust-toolchain.toml
command -v kubectl >/dev/null || { echo "error: kubectl is required by the executor tests (apt install kubectl)" >&2; exit 1; }
if [ "${INFRA_SCALE_REAL_CLUSTER:-}" = 1 ]; then
  # Opt-in: tests/real_cluster.rs against a real control plane (scripts/cluster.sh; needs Go).
  scripts/cluster.sh build
fi
cargo test --workspace --locked "$@"
