#!/usr/bin/env bash
# Benchmark: executing a 50-workload plan (scale + resources + HPA for each workload, 150 actions)
# against the fake Kubernetes API server (testkit's `fake-kube`), with the real kubectl.
#
#   infra-scale  `infra-scale apply --execute`: preflight, one snapshot read, one server-side dry
#                run, one server-side apply of every object, scales grouped by (current, desired),
#                one rollout poll per poll interval. The process count does not grow with workloads.
#   prototype    one kubectl process per action, as scripts/infra.apply.mjs ran them:
#                `scale`, `set resources`, `autoscale` for each workload (150 processes).
#
# Same machine, same run, same kubectl, a fresh fake cluster and discovery cache for every
# repetition (not timed). Prints each repetition, the medians, the ratio and both process counts.
#
# Usage: scripts/bench-execute.sh            (REPS=3 WORKLOADS=50 by default)
#        REPS=5 KUBECTL=/path/to/kubectl scripts/bench-execute.sh
# Needs: cargo, kubectl. Honours CARGO_TARGET_DIR. PROFILE=dev skips the (slow) release build.
set -euo pipefail

REPS="${REPS:-3}"
WORKLOADS="${WORKLOADS:-50}"
PROFILE="${PROFILE:-release}"
KUBECTL_BIN="${KUBECTL:-kubectl}"
NS=assistant
CONTEXT=production

cd "$(dirname "$0")/.."
command -v "$KUBECTL_BIN" >/dev/null || { echo "error: kubectl ($KUBECTL_BIN) not found; set KUBECTL" >&2; exit 2; }

echo "building infra-scale and fake-kube ($PROFILE)…" >&2
cargo build --quiet --profile "$PROFILE" --bin infra-scale
cargo build --quiet --profile "$PROFILE" -p testkit --bin fake-kube
target_dir="${CARGO_TARGET_DIR:-target}"
profile_dir="$PROFILE"
[ "$PROFILE" = dev ] && profile_dir=debug
BIN="$target_dir/$profile_dir/infra-scale"
FAKE="$target_dir/$profile_dir/fake-kube"

work="$(mktemp -d)"
fake_pid=""
stop_fake() {
  if [ -n "$fake_pid" ]; then
    kill "$fake_pid" 2>/dev/null || true
    wait "$fake_pid" 2>/dev/null || true
    fake_pid=""
  fi
}
trap 'stop_fake; rm -rf "$work"' EXIT

names() { for i in $(seq 1 "$WORKLOADS"); do printf 'app-%03d\n' "$i"; done; }

# The plan: for every workload, the prototype's three actions.
plan="$work/plan.yaml"
{
  printf 'apiVersion: infra.scale/v1\nkind: ScalePlan\nmetadata:\n  createdAt: 2025-10-11T00:00:00Z\n  target: bench\n'
  printf 'context:\n  kubeContext: %s\n  namespace: %s\nassumptions:\n  autoscaling: hpa\nactions:\n' "$CONTEXT" "$NS"
  for n in $(names); do
    cat <<EOF
  - {action: scale_workload, kind: Deployment, name: $n, namespace: $NS, from: "\${detect}", to: 6, reason: requested_scale}
  - action: update_resources
    kind: Deployment
    name: $n
    namespace: $NS
    container: $n
    requests: {cpu: 500m, memory: 1Gi}
    limits: {cpu: "1", memory: 2Gi}
  - {action: apply_hpa, kind: HorizontalPodAutoscaler, name: $n, namespace: $NS, hpa: {min: 4, max: 12, targetCPU: 65}}
EOF
  done
  printf 'rollbackHints: []\nrisks: []\nnotes: []\n'
} > "$plan"

# Starts a fresh fake cluster with WORKLOADS deployments; sets KUBECONFIG and KUBECACHEDIR.
start_fake() {
  local dir="$1"
  mkdir -p "$dir"
  "$FAKE" --kubeconfig "$dir/kubeconfig" --context "$CONTEXT" --workloads "$WORKLOADS" > "$dir/fake.out" 2>&1 &
  fake_pid=$!
  for _ in $(seq 1 200); do grep -q '^kubeconfig=' "$dir/fake.out" 2>/dev/null && break; sleep 0.05; done
  grep -q '^kubeconfig=' "$dir/fake.out" || { echo "error: fake-kube did not start" >&2; cat "$dir/fake.out" >&2; exit 1; }
  export KUBECONFIG="$dir/kubeconfig" KUBECACHEDIR="$dir/cache"
}

now_ms() { date +%s%3N; }

# Checks that the change landed (not timed): the last workload's HPA exists with max 12.
check_applied() {
  local last
  last="$(names | tail -n 1)"
  "$KUBECTL_BIN" --context "$CONTEXT" -n "$NS" get hpa "$last" -o 'jsonpath={.spec.maxReplicas}' | grep -qx 12 \
    || { echo "error: the change did not land ($1)" >&2; exit 1; }
}

run_infra_scale() {
  local dir="$1" out
  start_fake "$dir"
  local t0 t1
  t0="$(now_ms)"
  out="$(KUBECTL="$KUBECTL_BIN" "$BIN" apply --plan="$plan" --execute --out="$dir/artifacts" 2>"$dir/stderr")" \
    || { echo "error: infra-scale failed:" >&2; cat "$dir/stderr" >&2; exit 1; }
  t1="$(now_ms)"
  check_applied infra-scale
  stop_fake
  ms=$((t1 - t0))
  calls="$(printf '%s\n' "$out" | sed -n 's/^  "kubectl_calls": \([0-9]*\),*$/\1/p')"
}

run_prototype() {
  local dir="$1" n count=0
  start_fake "$dir"
  local k=("$KUBECTL_BIN" --context "$CONTEXT" -n "$NS")
  local t0 t1
  t0="$(now_ms)"
  for n in $(names); do
    "${k[@]}" scale "deployment/$n" --replicas=6 >/dev/null
    "${k[@]}" set resources "deployment/$n" --requests=cpu=500m,memory=1Gi --limits=cpu=1,memory=2Gi >/dev/null
    "${k[@]}" autoscale deployment "$n" --min=4 --max=12 --cpu-percent=65 >/dev/null 2>&1
    count=$((count + 3))
  done
  t1="$(now_ms)"
  check_applied prototype
  stop_fake
  ms=$((t1 - t0))
  calls="$count"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2] + a[NR/2+1]) / 2)}'; }

echo "kubectl: $("$KUBECTL_BIN" version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": "\([^"]*\)".*/\1/p' | head -n 1)"
echo "plan: $WORKLOADS workloads, $((WORKLOADS * 3)) actions; $REPS repetitions (alternating)"
is_times=() proto_times=()
for r in $(seq 1 "$REPS"); do
  run_infra_scale "$work/is-$r"; is_times+=("$ms"); is_calls="$calls"
  run_prototype "$work/proto-$r"; proto_times+=("$ms"); proto_calls="$calls"
  printf 'rep %d: infra-scale %6d ms (%s kubectl processes)   prototype %6d ms (%s kubectl processes)\n' \
    "$r" "${is_times[-1]}" "$is_calls" "${proto_times[-1]}" "$proto_calls"
done
is_median="$(printf '%s\n' "${is_times[@]}" | median)"
proto_median="$(printf '%s\n' "${proto_times[@]}" | median)"
ratio="$(awk -v a="$proto_median" -v b="$is_median" 'BEGIN {printf "%.1f", a / b}')"
echo "median: infra-scale ${is_median} ms, prototype ${proto_median} ms"
echo "kubectl processes: infra-scale ${is_calls}, prototype ${proto_calls}"
echo "ratio: ${ratio}x faster"
