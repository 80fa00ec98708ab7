#!/usr/bin/env bash
# Proves that the committed binary is the build of the committed source: rebuilds HEAD with
# scripts/build-dist.sh in a scratch directory (never touching dist/) and compares the result
# with dist/SHA256SUMS. Exits 1, naming both checksums, when they differ.
#
#   scripts/reproduce-dist.sh            # .ci/run runs this on every commit under test
#
# To check the binary of a pinned commit: clone the repository, `git checkout <sha>`, run this.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
scratch=$(mktemp -d "${TMPDIR:-/tmp}/infra-scale-dist.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

committed=$(git show HEAD:dist/SHA256SUMS 2>/dev/null | awk -v f="$target/infra-scale" '$2 == f { print $1 }')
[ -n "$committed" ] || { echo "reproduce-dist: HEAD has no checksum for $target/infra-scale in dist/SHA256SUMS" >&2; exit 1; }

start=$(date +%s)
scripts/build-dist.sh --out "$scratch/dist" --work "$scratch/work" >"$scratch/build.log" 2>&1 || {
  tail -n 30 "$scratch/build.log" >&2
  echo "reproduce-dist: scripts/build-dist.sh failed (the end of its log is above)" >&2
  exit 1
}
rebuilt=$(awk -v f="$target/infra-scale" '$2 == f { print $1 }' "$scratch/dist/SHA256SUMS")
seconds=$(($(date +%s) - start))
commit=$(git rev-parse HEAD)
if [ "$rebuilt" != "$committed" ]; then
  echo "reproduce-dist: the rebuild of $commit differs from the committed binary" >&2
  echo "  committed (dist/SHA256SUMS): $committed" >&2
  echo "  rebuilt from source:         $rebuilt" >&2
  echo "  rebuild dist/ with scripts/build-dist.sh and commit it with the source change" >&2
  exit 1
fi
echo "reproduce-dist: $commit rebuilds to the committed binary $rebuilt (${seconds}s)"
