#!/usr/bin/env bash
# A real Kubernetes control plane on loopback for tests and benchmarks, built only from Go modules
# pinned in testkit/cluster/{k8s,etcd,kwok} (go.mod + go.sum):
#   etcd 3.6, kube-apiserver, kube-controller-manager (all default controllers), kube-scheduler
#   (k8s.io/kubernetes v1.34.4, version-stamped) and kwok (one simulated Node with room for 2,000
#   pods, 1,000 CPUs and 4 TiB; pods become Ready).
# No metrics-server runs: the HPA controller still clamps replicas to [min, max], its metric
# branch reports FailedGetResourceMetric / ScalingActive=False.
#
#   scripts/cluster.sh build      build the binaries if missing (cached by version, outside the tree)
#   scripts/cluster.sh up DIR     start everything; last line of output: KUBECONFIG=DIR/kubeconfig
#   scripts/cluster.sh down DIR   stop exactly the processes `up DIR` started
# With INFRA_SCALE_CLUSTER_OWNER_PID set, `up` leaves a watcher that runs `down` once that process
# has exited and removes DIR (the Rust tests use this: one control plane per test binary).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
K8S_VERSION=v1.34.4
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.7.0
BUILD_DATE=2026-02-10T00:00:00Z
GIT_COMMIT=0000000000000000000000000000000000000000

sums=$(cat "$ROOT"/testkit/cluster/*/go.sum "$ROOT"/testkit/cluster/*/go.mod | sha256sum | cut -c1-12)
KEY="k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION-$sums"
BIN="${XDG_CACHE_HOME:-$HOME/.cache}/infra-scale/control-plane/$KEY"

die() { echo "cluster.sh: $*" >&2; exit 1; }

built() {
  local b
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler kwok; do [ -x "$BIN/$b" ] || return 1; done
}

build() {
  built && return 0
  # One build at a time (test binaries or CI jobs starting together wait for the first one).
  mkdir -p "$(dirname "$BIN")"
  exec 8>"$BIN.lock"
  flock 8
  built && { exec 8>&-; return 0; }
  rm -rf "$BIN".tmp.* # left by an interrupted build (builds hold the lock, so none is running)
  command -v go >/dev/null || die "go is required to build the control plane"
  # GOFLAGS from the environment or go env (e.g. -buildvcs=false) are kept, -mod=readonly added.
  GOFLAGS="$(go env GOFLAGS) -mod=readonly"
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS
  local tmp="$BIN.tmp.$$" start=$SECONDS
  mkdir -p "$tmp"
  local ldf="-s -w" p minor=${K8S_VERSION#v1.}
  minor=${minor%%.*}
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf="$ldf -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldf="$ldf -X $p.gitTreeState=clean -X $p.gitCommit=$GIT_COMMIT -X $p.buildDate=$BUILD_DATE"
  done
  echo "cluster.sh: building the control plane into $BIN (a cold build takes a while)" >&2
  (cd "$ROOT/testkit/cluster/k8s" && go build -trimpath -tags=selinux,notest,grpcnotrace \
    -ldflags="$ldf" -o "$tmp/" k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler) ||
    die "building kube-apiserver/kube-controller-manager/kube-scheduler failed"
  (cd "$ROOT/testkit/cluster/etcd" && go build -trimpath -ldflags='-s -w' -o "$tmp/etcd" \
    go.etcd.io/etcd/server/v3) || die "building etcd failed"
  (cd "$ROOT/testkit/cluster/kwok" && go build -trimpath -ldflags='-s -w' -o "$tmp/kwok" \
    sigs.k8s.io/kwok/cmd/kwok) || die "building kwok failed"
  "$tmp/kube-apiserver" --version | grep -qx "Kubernetes $K8S_VERSION" || die "kube-apiserver is not stamped $K8S_VERSION"
  rm -rf "$BIN" && mv "$tmp" "$BIN"
  exec 8>&-
  echo "cluster.sh: built in $((SECONDS - start))s" >&2
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# fail COMPONENT: name it, show the end of its log, stop what was started.
fail() {
  echo "cluster.sh: $1 failed to start; end of $DIR/logs/$1.log:" >&2
  tail -n 30 "$DIR/logs/$1.log" >&2 || true
  down >/dev/null 2>&1 || true
  exit 1
}

start() { # start NAME ARGS...: run in the background, record the PID
  local name=$1; shift
  "$BIN/$name" "$@" >"$DIR/logs/$name.log" 2>&1 &
  echo "$! $name" >>"$DIR/pids"
}

alive() { kill -0 "$(awk -v n="$1" '$2==n{print $1}' "$DIR/pids")" 2>/dev/null; }

wait_for() { # wait_for COMPONENT SECONDS CMD...
  local name=$1 limit=$2 i; shift 2
  for ((i = 0; i < limit * 5; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    alive "$name" || fail "$name"
    sleep 0.2
  done
  echo "cluster.sh: timed out after ${limit}s waiting for $name" >&2
  fail "$name"
}

kc() { kubectl --kubeconfig="$DIR/kubeconfig" "$@"; }

certs() {
  local pki=$DIR/pki
  mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
      -subj /CN=infra-scale-test-ca -keyout ca.key -out ca.crt
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=kube-apiserver \
      -keyout apiserver.key -out apiserver.csr
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile apiserver.ext -out apiserver.crt
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj "/O=system:masters/CN=infra-scale-admin" -keyout admin.key -out admin.csr
    printf 'extendedKeyUsage=clientAuth\n' >admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile admin.ext -out admin.crt
    openssl genrsa -out sa.key 2048
    openssl rsa -in sa.key -pubout -out sa.pub
  ) >"$DIR/logs/certs.log" 2>&1 || { echo "cluster.sh: certificate generation failed:" >&2; tail "$DIR/logs/certs.log" >&2; exit 1; }
}

up() {
  command -v kubectl >/dev/null || die "kubectl is required"
  command -v openssl >/dev/null || die "openssl is required"
  build
  mkdir -p "$DIR/logs"
  [ -s "$DIR/pids" ] && die "$DIR already has a running control plane (cluster.sh down $DIR)"
  : >"$DIR/pids"
  if [ -n "${INFRA_SCALE_CLUSTER_OWNER_PID:-}" ]; then
    # Tests: stop everything and remove DIR when the owning process exits, however it exits
    # (also when `up` itself fails or is killed half-way).
    local owner=$INFRA_SCALE_CLUSTER_OWNER_PID
    (
      trap '' HUP
      while kill -0 "$owner" 2>/dev/null; do sleep 0.5; done
      bash "$ROOT/scripts/cluster.sh" down "$DIR"
      rm -rf "$DIR"
    ) </dev/null >/dev/null 2>&1 &
  fi
  local shm=/dev/shm
  [ -d "$shm" ] && [ -w "$shm" ] || shm=${TMPDIR:-/tmp}
  local data
  data=$(mktemp -d "$shm/infra-scale-etcd.XXXXXX")
  echo "$data" >"$DIR/data-dir"
  certs
  local E P A C S
  E=$(free_port) P=$(free_port) A=$(free_port) C=$(free_port) S=$(free_port)
  cat >"$DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: infra-scale-test
  cluster:
    server: https://127.0.0.1:$A
    certificate-authority: $DIR/pki/ca.crt
users:
- name: infra-scale-admin
  user:
    client-certificate: $DIR/pki/admin.crt
    client-key: $DIR/pki/admin.key
contexts:
- name: infra-scale-test
  context: {cluster: infra-scale-test, user: infra-scale-admin, namespace: default}
current-context: infra-scale-test
EOF
  start etcd --name=node0 --data-dir="$data" \
    --listen-client-urls=http://127.0.0.1:$E --advertise-client-urls=http://127.0.0.1:$E \
    --listen-peer-urls=http://127.0.0.1:$P --initial-advertise-peer-urls=http://127.0.0.1:$P \
    --initial-cluster=node0=http://127.0.0.1:$P --unsafe-no-fsync --log-level=warn
  wait_for etcd 30 curl -fsS "http://127.0.0.1:$E/health"
  start kube-apiserver --etcd-servers=http://127.0.0.1:$E \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$A" \
    --cert-dir="$DIR/pki" --tls-cert-file="$DIR/pki/apiserver.crt" \
    --tls-private-key-file="$DIR/pki/apiserver.key" --client-ca-file="$DIR/pki/ca.crt" \
    --service-account-issuer="https://127.0.0.1:$A" --service-account-key-file="$DIR/pki/sa.pub" \
    --service-account-signing-key-file="$DIR/pki/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 --authorization-mode=Node,RBAC --allow-privileged=true \
    --endpoint-reconciler-type=none --enable-priority-and-fairness=false \
    --max-requests-inflight=0 --max-mutating-requests-inflight=0
  wait_for kube-apiserver 60 kc get --raw /readyz
  start kube-controller-manager --kubeconfig="$DIR/kubeconfig" --leader-elect=false \
    --use-service-account-credentials=false --controllers='*' \
    --service-account-private-key-file="$DIR/pki/sa.key" --root-ca-file="$DIR/pki/ca.crt" \
    --bind-address=127.0.0.1 --secure-port="$C" \
    --node-monitor-period=25s --node-monitor-grace-period=3m20s \
    --horizontal-pod-autoscaler-sync-period=2s \
    --kube-api-qps=5000 --kube-api-burst=10000
  start kube-scheduler --kubeconfig="$DIR/kubeconfig" --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port="$S" --kube-api-qps=5000 --kube-api-burst=10000
  start kwok --kubeconfig="$DIR/kubeconfig" --manage-all-nodes=true \
    --node-lease-duration-seconds=200 --cidr=10.0.0.1/24
  kc apply -f - >"$DIR/logs/node.log" 2>&1 <<'EOF' || fail node
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {kubernetes.io/os: linux, kubernetes.io/arch: amd64, kubernetes.io/hostname: kwok-node-0, type: kwok}
status:
  allocatable: {cpu: "1000", memory: 4Ti, pods: "2000"}
  capacity: {cpu: "1000", memory: 4Ti, pods: "2000"}
EOF
  wait_for kwok 60 kc wait --for=condition=Ready node/kwok-node-0 --timeout=1s
  wait_for kube-controller-manager 60 kc -n default get serviceaccount default
  alive kube-scheduler || fail kube-scheduler
  echo "KUBECONFIG=$DIR/kubeconfig"
}

down() {
  [ -f "$DIR/pids" ] || return 0
  local pid name
  # Reverse start order: kwok, scheduler, KCM, apiserver, etcd.
  tac "$DIR/pids" | while read -r pid name; do
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -f "$DIR/pids"
  if [ -f "$DIR/data-dir" ]; then rm -rf "$(cat "$DIR/data-dir")" "$DIR/data-dir"; fi
}

cmd=${1:-}
case "$cmd" in
  build) build ;;
  up | down)
    [ $# -eq 2 ] || die "usage: cluster.sh $cmd DIR"
    mkdir -p "$2"
    DIR=$(cd "$2" && pwd)
    "$cmd"
    ;;
  *) die "usage: cluster.sh build | up DIR | down DIR" ;;
esac
