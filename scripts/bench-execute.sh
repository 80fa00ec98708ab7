#!/usr/bin/env bash
# Benchmark: executing a 50-workload plan (scale + resources + HPA for each workload, 150 actions)
# against one real control plane (`scripts/cluster.sh up`, stopped on exit; a fresh namespace per
# repetition), with the real kubectl. Rollouts really happen (kwok makes the pods Ready), and
# infra-scale waits for them while the prototype never waited: the comparison includes that wait.
#
#   infra-scale  `infra-scale apply --execute`: preflight, one snapshot read, one server-side dry
#                run, one server-side apply of every object, scales grouped by (current, desired),
#                one rollout poll per poll interval. The process count does not grow with workloads.
#   prototype    one kubectl process per action, as scripts/infra.apply.mjs ran them:
#                `scale`, `set resources`, `autoscale` for each workload (150 processes).
#
# Same machine, same run, same kubectl, a fresh namespace and discovery cache for every
# repetition (not timed). Requests are small (cpu 50m) so that every pod fits the kwok node. Prints each repetition, the medians, the ratio and both process counts.
#
# Usage: scripts/bench-execute.sh            (REPS=3 WORKLOADS=50 by default)
#        REPS=5 KUBECTL=/path/to/kubectl scripts/bench-execute.sh
# Needs: cargo, kubectl, the control plane of scripts/cluster.sh. Honours CARGO_TARGET_DIR. PROFILE=dev skips the (slow) release build.
set -euo pipefail

REPS="${REPS:-3}"
WORKLOADS="${WORKLOADS:-50}"
PROFILE="${PROFILE:-release}"
KUBECTL_BIN="${KUBECTL:-kubectl}"
CONTEXT=production

cd "$(dirname "$0")/.."
command -v "$KUBECTL_BIN" >/dev/null || { echo "error: kubectl ($KUBECTL_BIN) not found; set KUBECTL" >&2; exit 2; }

echo "building infra-scale ($PROFILE)…" >&2
cargo build --quiet --profile "$PROFILE" --bin infra-scale
target_dir="${CARGO_TARGET_DIR:-target}"
profile_dir="$PROFILE"
[ "$PROFILE" = dev ] && profile_dir=debug
BIN="$target_dir/$profile_dir/infra-scale"

work="$(mktemp -d)"
cleanup() {
  [ -f "$work/cluster/pids" ] && scripts/cluster.sh down "$work/cluster" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
echo "starting the control plane…" >&2
scripts/cluster.sh up "$work/cluster" >"$work/cluster.out" 2>&1 || { cat "$work/cluster.out" >&2; exit 1; }
ADMIN="$(tail -n 1 "$work/cluster.out" | sed 's/^KUBECONFIG=//')"
admin() { "$KUBECTL_BIN" --kubeconfig="$ADMIN" "$@"; }

names() { for i in $(seq 1 "$WORKLOADS"); do printf 'app-%03d\n' "$i"; done; }

# The plan for namespace $NS: for every workload, the prototype's three actions.
write_plan() {
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
    requests: {cpu: 50m, memory: 64Mi}
    limits: {cpu: 100m, memory: 128Mi}
  - {action: apply_hpa, kind: HorizontalPodAutoscaler, name: $n, namespace: $NS, hpa: {min: 4, max: 12, targetCPU: 65}}
EOF
  done
  printf 'rollbackHints: []\nrisks: []\nnotes: []\n'
}

# A fresh namespace (named after the repetition's directory) with WORKLOADS Deployments of 3
# rolled-out replicas; sets NS, plan, KUBECONFIG (context production → that namespace), KUBECACHEDIR.
start_fake() {
  local dir="$1" n
  mkdir -p "$dir"
  NS="bench-$(basename "$dir")"
  {
    printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n' "$NS"
    for n in $(names); do
      printf -- '---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: %s, namespace: %s}\nspec:\n  replicas: 3\n' "$n" "$NS"
      printf '  selector: {matchLabels: {app: %s}}\n  template:\n    metadata: {labels: {app: %s}}\n' "$n" "$n"
      printf '    spec: {containers: [{name: %s, image: %s, resources: {requests: {cpu: 10m, memory: 16Mi}}}]}\n' "$n" "$n"
    done
  } | admin create -f - >/dev/null
  admin -n "$NS" wait --for=condition=Available deployment --all --timeout=300s >/dev/null
  cp "$ADMIN" "$dir/kubeconfig"
  export KUBECONFIG="$dir/kubeconfig" KUBECACHEDIR="$dir/cache"
  "$KUBECTL_BIN" config rename-context infra-scale-test "$CONTEXT" >/dev/null
  "$KUBECTL_BIN" config set-context "$CONTEXT" --namespace="$NS" >/dev/null
  plan="$dir/plan.yaml"
  write_plan >"$plan"
}

# Deletes the repetition's namespace and waits until its pods are gone (not timed).
stop_fake() {
  admin delete namespace "$NS" --timeout=300s >/dev/null
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
    "${k[@]}" set resources "deployment/$n" --requests=cpu=50m,memory=64Mi --limits=cpu=100m,memory=128Mi >/dev/null
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
