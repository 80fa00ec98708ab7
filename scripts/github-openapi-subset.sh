#!/usr/bin/env bash
# Regenerates tests/fixtures/github/openapi-subset.json from GitHub's official OpenAPI description
# (the @octokit/openapi npm package). The package (about 400 MB) is installed in a scratch directory
# outside the repository, never committed.
#
# Usage: scripts/github-openapi-subset.sh [scratch-dir]   (default: a fresh temporary directory)
set -euo pipefail
cd "$(dirname "$0")/.."
version="${OCTOKIT_OPENAPI_VERSION:-23.0.2}"
dir="${1:-$(mktemp -d)}"
mkdir -p "$dir"
if [ ! -f "$dir/node_modules/@octokit/openapi/package.json" ] ||
   [ "$(node -p "require('$dir/node_modules/@octokit/openapi/package.json').version")" != "$version" ]; then
  npm install --prefix "$dir" --no-audit --no-fund --no-save "@octokit/openapi@$version" >&2
fi
node scripts/github-openapi-subset.mjs "$dir/node_modules/@octokit/openapi/generated/api.github.com.json" \
  > tests/fixtures/github/openapi-subset.json
echo "wrote tests/fixtures/github/openapi-subset.json from @octokit/openapi $version" >&2
