#!/usr/bin/env bash
# Lints action.yml and .github/workflows/*.yml with zizmor (offline), actionlint and the GitHub
# workflow/action JSON schemas (check-jsonschema's vendored copies). Zero findings or it fails.
# Installs its pinned tools on first use, into gitignored folders only: .venv/
# (ci/requirements-lint.txt) and ci/bin/ (actionlint, built from its Go module).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
stamp="$venv/.lint-requirements.sha256"
want=$(sha256sum ci/requirements-lint.txt | cut -d' ' -f1)
if [ ! -x "$venv/bin/zizmor" ] || [ ! -x "$venv/bin/check-jsonschema" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "lint-actions: installing zizmor and check-jsonschema into $venv"
  command -v python3 >/dev/null || { echo "error: python3 is required (apt-get install python3 python3-venv)" >&2; exit 1; }
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r ci/requirements-lint.txt
  echo "$want" >"$stamp"
fi
# actionlint, built from its Go module at a pinned version (checksums verified by the Go toolchain).
actionlint_version=v1.7.12
actionlint=ci/bin/actionlint
if [ ! -x "$actionlint" ] || [ "$("$actionlint" -version 2>/dev/null | head -n1)" != "$actionlint_version" ]; then
  echo "lint-actions: building actionlint $actionlint_version into ci/bin"
  command -v go >/dev/null || { echo "error: go is required to build actionlint" >&2; exit 1; }
  GOBIN="$PWD/ci/bin" GOFLAGS=-trimpath go install "github.com/rhysd/actionlint/cmd/actionlint@$actionlint_version"
fi

workflows=(.github/workflows/*.yml)
status=0
echo "== zizmor --offline"
# GH_TOKEN/GITHUB_TOKEN would switch zizmor to online audits; this check is offline by design.
env -u GH_TOKEN -u GITHUB_TOKEN -u ZIZMOR_GITHUB_TOKEN "$venv/bin/zizmor" --offline --no-progress action.yml "${workflows[@]}" || status=1
echo "== actionlint"
"$actionlint" "${workflows[@]}" || status=1
echo "== check-jsonschema"
"$venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows "${workflows[@]}" || status=1
"$venv/bin/check-jsonschema" --builtin-schema vendor.github-actions action.yml || status=1
echo "== no \${{ }} inside run: bodies"
"$venv/bin/python" - action.yml "${workflows[@]}" <<'PY' || status=1
import sys
from ruamel.yaml import YAML

bad = 0
for path in sys.argv[1:]:
    doc = YAML(typ="safe").load(open(path, encoding="utf-8"))
    if "runs" in doc:
        steps = [("runs", s) for s in doc["runs"].get("steps", [])]
    else:
        steps = [(job, s) for job, j in doc.get("jobs", {}).items() for s in j.get("steps", [])]
    for where, step in steps:
        run = step.get("run")
        if run is not None and "${{" in run:
            print(f"{path}: {where}: step {step.get('name') or step.get('id') or '?'}: `${{{{ }}}}` in a run: body")
            bad += 1
        if run is not None and "shell" not in step and "runs" in doc:
            print(f"{path}: step {step.get('name') or step.get('id') or '?'}: composite run step without shell:")
            bad += 1
print(f"run bodies: {len(sys.argv) - 1} file(s), {bad} finding(s)")
sys.exit(1 if bad else 0)
PY
if [ "$status" -ne 0 ]; then echo "lint-actions: FAILED" >&2; exit 1; fi
echo "lint-actions: OK"
