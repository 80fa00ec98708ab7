#!/usr/bin/env bash
# Benchmark: executing a plan for WORKLOADS workloads (default 50) with the real kubectl against
# the real control plane of scripts/cluster.sh (kube-apiserver v1.34.4 with its controllers, kwok
# pods that become Ready; started here and stopped at exit), infra-scale against one kubectl
# process per action, in the same run.
#
# Namespace `bench`: every fifth workload a StatefulSet, every other Deployment with a second
# container (`sidecar`), all at 3 replicas. Each run changes every workload's container `app`
# requests (cpu/memory) and the replicas (3 <-> 4) of w-001, w-006, w-011, ... and of every other
# StatefulSet (15 of 50), in alternating directions (change, restore, change, ...), so every run
# really changes something and both tools run both directions; which tool goes first alternates.
#   infra-scale  one plan of every change, `infra-scale apply --plan=... --execute`, which waits
#                for the rollouts; its kubectl processes are the `kubectl_calls` of its summary
#   per-action   `kubectl set resources KIND/NAME -c app --requests=...` and `kubectl scale` per
#                action, then `kubectl rollout status KIND/NAME` per workload (processes counted)
# REPS (default 5) rounds; prints each run, the medians, the ratio and both process counts.
#
# Usage: scripts/bench-execute.sh            (REPS=5 WORKLOADS=50 by default)
#        REPS=7 KUBECTL=/path/to/kubectl scripts/bench-execute.sh
# Needs: cargo, kubectl, Go for the first build of the control plane. Honours CARGO_TARGET_DIR.
# PROFILE=dev skips the (slow) release build.
set -euo pipefail

case "${1:-}" in
  "" | --real-cluster) ;;
  *) echo "error: unknown argument '$1' (accepted: none; --real-cluster is the default and only target)" >&2; exit 2 ;;
esac
REPS="${REPS:-5}"
WORKLOADS="${WORKLOADS:-50}"
PROFILE="${PROFILE:-release}"
KUBECTL_BIN="${KUBECTL:-kubectl}"

cd "$(dirname "$0")/.."
command -v "$KUBECTL_BIN" >/dev/null || { echo "error: kubectl ($KUBECTL_BIN) not found; set KUBECTL" >&2; exit 2; }

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2] + a[NR/2+1]) / 2)}'; }
now_ms() { date +%s%3N; }

echo "building infra-scale ($PROFILE)…" >&2
cargo build --quiet --locked --profile "$PROFILE" --bin infra-scale
target_dir="${CARGO_TARGET_DIR:-target}"
profile_dir="$PROFILE"
[ "$PROFILE" = dev ] && profile_dir=debug
BIN="$(cd "$target_dir/$profile_dir" && pwd)/infra-scale"
NS=bench
work="$(mktemp -d)"
trap 'scripts/cluster.sh down "$work/cluster" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
echo "starting the control plane (scripts/cluster.sh up)…" >&2
t0="$(now_ms)"
kubeconfig_line="$(scripts/cluster.sh up "$work/cluster" | tail -n 1)"
up_ms=$(($(now_ms) - t0))
export "${kubeconfig_line?}" KUBECACHEDIR="$work/kube-cache"
k=("$KUBECTL_BIN" -n "$NS")

# Workload i: kind, name, whether its replicas change.
kind_of() { if [ $(($1 % 5)) = 0 ]; then echo statefulset; else echo deployment; fi; }
name_of() { printf 'w-%03d' "$1"; }
scales() { [ $(($1 % 5)) = 1 ] || [ $(($1 % 10)) = 0 ]; }
# State 0: cpu 100m, memory 128Mi, 3 replicas; state 1: 150m, 160Mi, 4 replicas where it scales.
cpu=(100m 150m) mem=(128Mi 160Mi) reps=(3 4)

{
  printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n' "$NS"
  for i in $(seq 1 "$WORKLOADS"); do
    n="$(name_of "$i")" kind=Deployment extra=""
    [ "$(kind_of "$i")" = statefulset ] && kind=StatefulSet extra="  serviceName: $n"$'\n'
    printf -- '---\napiVersion: apps/v1\nkind: %s\nmetadata: {name: %s, namespace: %s}\nspec:\n  replicas: 3\n%s' "$kind" "$n" "$NS" "$extra"
    printf '  selector: {matchLabels: {app: %s}}\n  template:\n    metadata: {labels: {app: %s}}\n    spec:\n      containers:\n' "$n" "$n"
    printf '      - {name: app, image: app, resources: {requests: {cpu: %s, memory: %s}, limits: {memory: 512Mi}}}\n' "${cpu[0]}" "${mem[0]}"
    if [ "$kind" = Deployment ] && [ $((i % 2)) = 0 ]; then
      printf '      - {name: sidecar, image: sidecar, resources: {requests: {cpu: 10m, memory: 32Mi}}}\n'
    fi
  done
} >"$work/workloads.yaml"
"$KUBECTL_BIN" create -f "$work/workloads.yaml" >/dev/null
for i in $(seq 1 "$WORKLOADS"); do
  "${k[@]}" rollout status "$(kind_of "$i")/$(name_of "$i")" --timeout=5m >/dev/null
done

for s in 0 1; do
  {
    printf 'apiVersion: infra.scale/v1\nkind: ScalePlan\nmetadata:\n  createdAt: 2025-10-11T00:00:00Z\n  target: bench\n'
    printf 'context:\n  kubeContext: infra-scale-test\n  namespace: %s\nassumptions:\n  autoscaling: hpa\nactions:\n' "$NS"
    for i in $(seq 1 "$WORKLOADS"); do
      n="$(name_of "$i")" kind=Deployment
      [ "$(kind_of "$i")" = statefulset ] && kind=StatefulSet
      if scales "$i"; then
        printf '  - {action: scale_workload, kind: %s, name: %s, namespace: %s, from: "${detect}", to: %s, reason: requested_scale}\n' "$kind" "$n" "$NS" "${reps[$s]}"
      fi
      printf '  - {action: update_resources, kind: %s, name: %s, namespace: %s, container: app, requests: {cpu: %s, memory: %s}}\n' "$kind" "$n" "$NS" "${cpu[$s]}" "${mem[$s]}"
    done
    printf 'rollbackHints: []\nrisks: []\nnotes: []\n'
  } >"$work/plan-$s.yaml"
done
actions=$(grep -c '^  - {action' "$work/plan-1.yaml")

# check STATE WHO (not timed): every workload is at STATE and has rolled out completely.
check() {
  local want="${cpu[$1]} ${mem[$1]}" i got
  got="$("${k[@]}" get deployments,statefulsets -o json | python3 -c '
import json, sys
for o in json.load(sys.stdin)["items"]:
  s, st = o["spec"], o.get("status", {})
  c = [c for c in s["template"]["spec"]["containers"] if c["name"] == "app"][0]["resources"]["requests"]
  done = st.get("observedGeneration") == o["metadata"]["generation"] and st.get("updatedReplicas") == s["replicas"] == st.get("readyReplicas")
  print(o["metadata"]["name"], c["cpu"], c["memory"], s["replicas"], "done" if done else "rolling")')"
  for i in $(seq 1 "$WORKLOADS"); do
    local r=3; scales "$i" && r="${reps[$1]}"
    grep -qx "$(name_of "$i") $want $r done" <<<"$got" \
      || { echo "error: $2 did not leave $(name_of "$i") at $want, $r replicas, rolled out:" >&2; grep "^$(name_of "$i") " <<<"$got" >&2; exit 1; }
  done
}

run_infra_scale() { # STATE RUN
  local out t0 t1
  t0="$(now_ms)"
  out="$(KUBECTL="$KUBECTL_BIN" "$BIN" apply --plan="$work/plan-$1.yaml" --execute --out="$work/is-$2" 2>"$work/is-$2.stderr")" \
    || { echo "error: infra-scale failed:" >&2; cat "$work/is-$2.stderr" >&2; printf '%s\n' "$out" >&2; exit 1; }
  t1="$(now_ms)"
  ms=$((t1 - t0))
  calls="$(printf '%s\n' "$out" | sed -n 's/^  "kubectl_calls": \([0-9]*\),*$/\1/p')"
  [ -n "$calls" ] || { echo "error: no kubectl_calls in infra-scale's summary:" >&2; printf '%s\n' "$out" >&2; exit 1; }
  check "$1" infra-scale
}

run_per_action() { # STATE
  local i n kind count=0 t0 t1
  t0="$(now_ms)"
  for i in $(seq 1 "$WORKLOADS"); do
    n="$(name_of "$i")" kind="$(kind_of "$i")"
    "${k[@]}" set resources "$kind/$n" -c app --requests="cpu=${cpu[$1]},memory=${mem[$1]}" >/dev/null
    count=$((count + 1))
    if scales "$i"; then
      "${k[@]}" scale "$kind/$n" --replicas="${reps[$1]}" >/dev/null
      count=$((count + 1))
    fi
  done
  for i in $(seq 1 "$WORKLOADS"); do
    "${k[@]}" rollout status "$(kind_of "$i")/$(name_of "$i")" --timeout=10m >/dev/null
    count=$((count + 1))
  done
  t1="$(now_ms)"
  ms=$((t1 - t0))
  calls="$count"
  check "$1" per-action
}

server="$("$KUBECTL_BIN" version -o json 2>/dev/null | python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["clientVersion"]["gitVersion"], v["serverVersion"]["gitVersion"])')"
echo "real control plane: kube-apiserver ${server#* }, kubectl ${server%% *}; up in ${up_ms} ms"
echo "plan: $WORKLOADS workloads ($((WORKLOADS / 5)) StatefulSets), $actions actions (resources of every workload, replicas of $((actions - WORKLOADS))); $REPS rounds"
is_times=() pa_times=() is_calls_all=() state=0 run=0
for r in $(seq 1 "$REPS"); do
  line="round $r:"
  for who in $([ $((r % 2)) = 1 ] && echo "is pa" || echo "pa is"); do
    state=$((1 - state)) run=$((run + 1))
    if [ "$who" = is ]; then
      run_infra_scale "$state" "$run"; is_times+=("$ms"); is_calls_all+=("$calls")
      line="$line $(printf 'infra-scale %6d ms (%s kubectl processes)' "$ms" "$calls")"
    else
      run_per_action "$state"; pa_times+=("$ms"); pa_calls="$calls"
      line="$line $(printf 'per-action %6d ms (%s kubectl processes)' "$ms" "$calls")"
    fi
    line="$line$([ "$state" = 1 ] && echo ' [change]' || echo ' [restore]')  "
  done
  echo "$line"
done
is_median="$(printf '%s\n' "${is_times[@]}" | median)"
pa_median="$(printf '%s\n' "${pa_times[@]}" | median)"
is_calls_median="$(printf '%s\n' "${is_calls_all[@]}" | median)"
echo "median: infra-scale ${is_median} ms, per-action ${pa_median} ms"
echo "kubectl processes: infra-scale ${is_calls_median} (median; per run: ${is_calls_all[*]}), per-action ${pa_calls}"
echo "ratio: $(awk -v a="$pa_median" -v b="$is_median" 'BEGIN {printf "%.1f", a / b}')x faster, $(awk -v a="$pa_calls" -v b="$is_calls_median" 'BEGIN {printf "%.1f", a / b}')x fewer kubectl processes"
