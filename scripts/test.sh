#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need, then cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup show active-toolchain >/dev/null   # installs the pinned toolchain from rust-toolchain.toml
command -v kubectl >/dev/null || { echo "error: kubectl is required by the executor tests (apt install kubectl)" >&2; exit 1; }
cargo test --workspace --locked "$@"
