#!/usr/bin/env bash
# Checks the committed prebuilt binary of the action (dist/): every file listed in SHA256SUMS
# verifies, nothing unlisted, no Git LFS pointer, executable in git, at most 5 MB, statically
# linked (no ELF interpreter), and `--version` equals the version in Cargo.toml.
# Rebuild with scripts/build-dist.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
max_bytes=$((5 * 1024 * 1024))
fail=0
bad() { echo "check-dist: $*" >&2; fail=1; }

[ -f dist/SHA256SUMS ] || { echo "check-dist: dist/SHA256SUMS is missing (scripts/build-dist.sh)" >&2; exit 1; }
(cd dist && sha256sum --check --strict SHA256SUMS) || bad "checksums do not match dist/SHA256SUMS"

listed=$(sed -E 's/^[0-9a-f]{64}  //' dist/SHA256SUMS | sort)
present=$(cd dist && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | sort)
[ "$listed" = "$present" ] || bad "files in dist/ differ from SHA256SUMS: listed [$listed], present [$present]"

version=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)
[ -n "$version" ] || bad "no [package] version in Cargo.toml"

for rel in $listed; do
  file="dist/$rel"
  [ -f "$file" ] || continue
  size=$(stat -c %s "$file")
  [ "$size" -le "$max_bytes" ] || bad "$file is $size bytes (limit $max_bytes)"
  if head -c 40 "$file" | grep -q '^version https://git-lfs'; then bad "$file is a Git LFS pointer, not the binary"; fi
  if git rev-parse --git-dir >/dev/null 2>&1 && git ls-files --error-unmatch "$file" >/dev/null 2>&1; then
    mode=$(git ls-files -s -- "$file" | cut -d' ' -f1)
    [ "$mode" = 100755 ] || bad "$file is committed with mode $mode (want 100755: git update-index --chmod=+x)"
  fi
  # ELF64 little-endian, no PT_INTERP program header: runs without a dynamic loader.
  python3 - "$file" <<'PY' || bad "$file is not a static ELF executable"
import struct, sys
data = open(sys.argv[1], "rb").read()
if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
    sys.exit("not an ELF64 little-endian file")
phoff, = struct.unpack_from("<Q", data, 0x20)
phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
types = [struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)]
if 3 in types:  # PT_INTERP
    sys.exit("has an ELF interpreter (dynamically linked)")
PY
  case "$rel" in
    x86_64-unknown-linux-*)
      if [ "$(uname -s)/$(uname -m)" = Linux/x86_64 ]; then
        got=$("$file" --version 2>&1 || true)
        [ "$got" = "infra-scale $version" ] || bad "$file --version printed '$got', want 'infra-scale $version' (rebuild: scripts/build-dist.sh)"
      fi
      ;;
  esac
  echo "check-dist: $rel: $size bytes"
done
[ "$fail" -eq 0 ] || exit 1
echo "check-dist: OK (version $version)"
