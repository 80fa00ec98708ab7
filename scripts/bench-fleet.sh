#!/usr/bin/env bash
# Benchmark: a fleet of TARGETS targets (default 100) over CONTEXTS kube contexts (default 5),
# each planned with `infra-scale plan --target=<t> --detect --apply` against one real control
# plane (`scripts/cluster.sh up`, stopped on exit; context ctx-K is namespace ns-K) and the local
# fake GitHub (testkit's fake-github), with the real kubectl.
#
# Three rounds, in this order, on the same cluster and fake:
#   first      every target differs from the cluster: a plan PR per target
#   unchanged  the same run again: nothing to write (goal: <= 4 GitHub requests, 0 writes per target)
#   churn      10 targets (TARGETS/10, at most 10) drifted further (their live replicas changed: the plan changes, the PR is
#              updated) and 10 converged (the cluster now matches the config: the PR is closed)
#
# Prints, per round: GitHub requests (total, writes, per target), kubectl processes per target for
# the live state, and the binary's own wall time per target (median, p90).
#
# Usage: scripts/bench-fleet.sh      (TARGETS=100 CONTEXTS=5 by default)
# Needs: cargo, kubectl, python3, the control plane of scripts/cluster.sh (built once, cached).
# Honours CARGO_TARGET_DIR. PROFILE=dev skips the release build.
set -euo pipefail
TARGETS="${TARGETS:-100}"
CONTEXTS="${CONTEXTS:-5}"
PROFILE="${PROFILE:-release}"
cd "$(dirname "$0")/.."
command -v kubectl >/dev/null || { echo "error: kubectl not found" >&2; exit 2; }
per_context=$(((TARGETS + CONTEXTS - 1) / CONTEXTS))

echo "building infra-scale and fake-github ($PROFILE)…" >&2
cargo build --quiet --locked --profile "$PROFILE" --bin infra-scale
cargo build --quiet --locked --profile "$PROFILE" -p testkit --bin fake-github
target_dir="${CARGO_TARGET_DIR:-target}"
profile_dir="$PROFILE"
[ "$PROFILE" = dev ] && profile_dir=debug
BIN="$(cd "$target_dir/$profile_dir" && pwd)/infra-scale"
FAKE_GITHUB="$target_dir/$profile_dir/fake-github"

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -f "$work/cluster/pids" ] && scripts/cluster.sh down "$work/cluster" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

wait_for() { # FILE PATTERN WHAT
  for _ in $(seq 1 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "error: $3 did not start" >&2; cat "$1" >&2; exit 1
}

# The cluster: context ctx-K is namespace ns-K, holding Deployments app-001 … app-N (3 replicas).
echo "starting the control plane…" >&2
up_start=$(date +%s)
scripts/cluster.sh up "$work/cluster" >"$work/cluster.out" 2>&1 || { cat "$work/cluster.out" >&2; exit 1; }
admin_kubeconfig=$(tail -n 1 "$work/cluster.out" | sed 's/^KUBECONFIG=//')
cp "$admin_kubeconfig" "$work/kubeconfig"
export KUBECONFIG="$work/kubeconfig" KUBECACHEDIR="$work/kube-cache"
for k in $(seq 1 "$CONTEXTS"); do
  kubectl config set-context "ctx-$k" --cluster=infra-scale-test --user=infra-scale-admin --namespace="ns-$k" >/dev/null
  {
    printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: ns-%d}\n' "$k"
    for m in $(seq 1 "$per_context"); do
      app=$(printf 'app-%03d' "$m")
      printf -- '---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: %s, namespace: ns-%d}\nspec:\n  replicas: 3\n' "$app" "$k"
      printf '  selector: {matchLabels: {app: %s}}\n  template:\n    metadata: {labels: {app: %s}}\n' "$app" "$app"
      printf '    spec: {containers: [{name: app, image: app, resources: {requests: {cpu: 10m, memory: 16Mi}}}]}\n'
    done
  } | kubectl --context=infra-scale-test create -f - >/dev/null
done
for k in $(seq 1 "$CONTEXTS"); do
  kubectl --context=infra-scale-test -n "ns-$k" wait --for=condition=Available deployment --all --timeout=300s >/dev/null
done
echo "control plane up, $TARGETS Deployments available, in $(($(date +%s) - up_start)) s" >&2

# GitHub.
mkfifo "$work/gh.stdin"
"$FAKE_GITHUB" --log "$work/gh.log" --until-stdin-closes <"$work/gh.stdin" >"$work/gh.out" 2>&1 &
pids+=($!)
exec 9>"$work/gh.stdin"
wait_for "$work/gh.out" '^GITHUB_TOKEN=' fake-github
while IFS='=' read -r k v; do export "$k=$v"; done <"$work/gh.out"

# A kubectl on PATH that counts its processes, then runs the real one.
real_kubectl=$(command -v kubectl)
mkdir -p "$work/bin"
printf '#!/bin/sh\necho x >>"%s"\nexec "%s" "$@"\n' "$work/kubectl.count" "$real_kubectl" >"$work/bin/kubectl"
chmod +x "$work/bin/kubectl"
export PATH="$work/bin:$PATH"

# The config: target tNNN wants app-MMM of ctx-K at 6 replicas.
names=()
{
  echo "targets:"
  for i in $(seq 1 "$TARGETS"); do
    k=$(((i - 1) % CONTEXTS + 1)) m=$(((i - 1) / CONTEXTS + 1))
    t=$(printf 't%03d' "$i") app=$(printf 'app-%03d' "$m")
    names+=("$t")
    printf '  %s:\n    kubeContext: ctx-%d\n    namespace: ns-%d\n    workloads: [{kind: Deployment, name: %s, replicas: 6}]\n' "$t" "$k" "$k" "$app"
  done
} >"$work/infra-scale.yaml"
target_of() { # tNNN -> "ctx-K app-MMM"
  local i=$((10#${1#t}))
  printf 'ctx-%d app-%03d\n' $(((i - 1) % CONTEXTS + 1)) $(((i - 1) / CONTEXTS + 1))
}

now_ms() { date +%s%3N; }
round() { # NAME
  local name="$1" t start end times=() failed=0
  : >"$work/gh.log"; : >"$work/kubectl.count"
  for t in "${names[@]}"; do
    start=$(now_ms)
    if ! (cd "$work" && "$BIN" plan --config infra-scale.yaml --target="$t" --detect --apply >"$work/out-$t" 2>"$work/err-$t"); then
      failed=$((failed + 1))
      [ "$failed" -le 3 ] && { echo "error: $name: target $t failed:" >&2; tail -n 5 "$work/err-$t" >&2; }
    fi
    end=$(now_ms)
    times+=($((end - start)))
  done
  python3 - "$name" "$work/gh.log" "$work/kubectl.count" "$TARGETS" "$failed" "${times[@]}" <<'PY'
import json, sys
name, log, count, n, failed, *times = sys.argv[1:]
n, failed = int(n), int(failed)
reqs = [json.loads(l) for l in open(log) if l.strip()]
reqs = [r for r in reqs if "method" in r]
writes = [r for r in reqs if r["method"] not in ("GET", "HEAD")]
kubectl = sum(1 for _ in open(count))
t = sorted(int(x) for x in times)
med = t[len(t) // 2] if len(t) % 2 else (t[len(t) // 2 - 1] + t[len(t) // 2]) / 2
p90 = t[min(len(t) - 1, int(len(t) * 0.9))]
kinds = {}
for r in writes:
    key = f'{r["method"]} {r["path"].split("/")[4] if r["path"].count("/") >= 4 else r["path"]}'
    kinds[key] = kinds.get(key, 0) + 1
print(f"{name:9}  github requests {len(reqs):5} ({len(reqs) / n:.2f}/target), writes {len(writes):4} "
      f"({len(writes) / n:.2f}/target)  kubectl {kubectl / n:.2f}/target  time/target median {med} ms, p90 {p90} ms"
      + (f"  FAILED targets: {failed}" if failed else ""))
if writes:
    print("           writes by kind: " + ", ".join(f"{k} x{v}" for k, v in sorted(kinds.items())))
PY
}

echo "fleet: $TARGETS targets over $CONTEXTS kube contexts; kubectl $(kubectl version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": "\([^"]*\)".*/\1/p' | head -n 1)"
round first
round unchanged
# Churn (CHURN = 10 for 100 targets): the first CHURN targets converge (live replicas = desired 6),
# the next CHURN drift further (live 2).
churn=$((TARGETS / 10)); [ "$churn" -gt 10 ] && churn=10; [ "$churn" -lt 1 ] && churn=1
for i in $(seq 1 $((2 * churn))); do
  t=$(printf 't%03d' "$i"); read -r ctx app < <(target_of "$t")
  replicas=6; [ "$i" -gt "$churn" ] && replicas=2
  "$real_kubectl" --context "$ctx" scale "deployment/$app" --replicas="$replicas" >/dev/null
done
round churn
for t in t001 "$(printf 't%03d' $((churn + 1)))"; do echo "$t after churn: $(tr '\n' ' ' <"$work/out-$t")"; done
