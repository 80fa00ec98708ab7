#!/usr/bin/env bash
# Rebuilds the action's prebuilt binary: dist/x86_64-unknown-linux-musl/infra-scale (static, LTO,
# stripped; profile.release in Cargo.toml) and dist/SHA256SUMS. Run it on a version bump only:
# every committed binary stays in the repository's history.
#
#   scripts/build-dist.sh          # then: scripts/check-dist.sh && git add dist/
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
rustup target add "$target" >/dev/null # idempotent; rust-toolchain.toml pins the toolchain

# Build exactly the committed source (HEAD), not whatever the working tree holds.
commit=$(git rev-parse HEAD)
if ! git diff --quiet HEAD -- Cargo.toml Cargo.lock src; then
  echo "note: uncommitted changes under src/ or Cargo.* are NOT in the binary (building $commit)" >&2
fi
src="$PWD/target/dist-src"
rm -rf "$src" && mkdir -p "$src"
git archive --format=tar HEAD | tar -x -C "$src"

# No paths of this machine and no registry host names in the binary: panic locations of
# dependencies would otherwise embed the cargo home, the registry's folder name and the checkout
# path. (When several prefixes match, rustc applies the last one given.)
cargo_home=${CARGO_HOME:-$HOME/.cargo}
export CARGO_TARGET_DIR="$PWD/target/dist-build"
remap="--remap-path-prefix=$src=/infra-scale --remap-path-prefix=$cargo_home=/cargo"
for registry in "$cargo_home"/registry/src/*/; do
  [ -d "$registry" ] && remap+=" --remap-path-prefix=${registry%/}=/deps"
done
export RUSTFLAGS="$remap -C target-feature=+crt-static"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
# ring's C code: the musl target builds with the host gcc when musl-gcc is absent.
command -v musl-gcc >/dev/null || export CC_x86_64_unknown_linux_musl=${CC_x86_64_unknown_linux_musl:-gcc}

(cd "$src" && cargo build --release --locked --target "$target" --bin infra-scale)
out="dist/$target/infra-scale"
mkdir -p "dist/$target"
install -m 0755 "$CARGO_TARGET_DIR/$target/release/infra-scale" "$out"
(cd dist && sha256sum "$target/infra-scale" >SHA256SUMS)
echo "built $out from $commit ($(stat -c %s "$out") bytes)"
cat dist/SHA256SUMS
