#!/usr/bin/env bash
# Rebuilds the action's prebuilt binary, dist/x86_64-unknown-linux-musl/infra-scale (static, LTO,
# stripped; profile.release in Cargo.toml), and dist/SHA256SUMS from the committed source (HEAD).
# The build is reproducible: the same commit gives the same bytes on any x86_64 Linux machine with
# the toolchain of rust-toolchain.toml and the same C compiler (see README, "Reproducing dist/").
#
#   scripts/build-dist.sh                          # writes dist/; then scripts/check-dist.sh
#   scripts/build-dist.sh --out DIR [--work DIR]   # writes DIR/ instead (scripts/reproduce-dist.sh)
#
# Run it once per landing that changes src/, Cargo.toml or Cargo.lock: every committed binary
# stays in the repository's history.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
out=dist
work=$repo/target
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --work) work=${2:?--work needs a directory}; shift 2 ;;
    *) echo "build-dist: unknown argument '$1' (accepted: --out DIR, --work DIR)" >&2; exit 2 ;;
  esac
done
target=x86_64-unknown-linux-musl
rustup target add "$target" >/dev/null # idempotent; rust-toolchain.toml pins the toolchain

# Build exactly the committed source (HEAD), not whatever the working tree holds.
commit=$(git rev-parse HEAD)
if ! git diff --quiet HEAD -- Cargo.toml Cargo.lock src; then
  echo "note: uncommitted changes under src/ or Cargo.* are NOT in the binary (building $commit)" >&2
fi
mkdir -p "$work"
work=$(cd "$work" && pwd)
src="$work/dist-src"
rm -rf "$src" && mkdir -p "$src"
git archive --format=tar HEAD | tar -x -C "$src"

# No paths of this machine and no registry host names in the binary: panic locations of
# dependencies would otherwise embed the cargo home, the registry's folder name, the checkout
# path and the target directory (files that build scripts generate). The prefixes differ between
# machines and checkouts, so remapping them is also what makes the bytes reproducible.
# (When several prefixes match, rustc applies the last one given.)
cargo_home=${CARGO_HOME:-$HOME/.cargo}
export CARGO_TARGET_DIR="$work/dist-build"
remap="--remap-path-prefix=$CARGO_TARGET_DIR=/target --remap-path-prefix=$src=/infra-scale"
remap+=" --remap-path-prefix=$cargo_home=/cargo"
for registry in "$cargo_home"/registry/src/*/; do
  [ -d "$registry" ] && remap+=" --remap-path-prefix=${registry%/}=/deps"
done
export RUSTFLAGS="$remap -C target-feature=+crt-static"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
export CARGO_INCREMENTAL=0
# ring's C code: the musl target builds with the host gcc when musl-gcc is absent.
command -v musl-gcc >/dev/null || export CC_x86_64_unknown_linux_musl=${CC_x86_64_unknown_linux_musl:-gcc}

(cd "$src" && cargo build --release --locked --target "$target" --bin infra-scale)
mkdir -p "$out/$target"
bin="$out/$target/infra-scale"
install -m 0755 "$CARGO_TARGET_DIR/$target/release/infra-scale" "$bin"
(cd "$out" && sha256sum "$target/infra-scale" >SHA256SUMS)
echo "built $bin from $commit ($(stat -c %s "$bin") bytes)"
cat "$out/SHA256SUMS"
