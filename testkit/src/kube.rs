//! A fake Kubernetes API server that the real `kubectl` talks to, for tests and benchmarks.
//!
//! It speaks the real HTTP protocol on `127.0.0.1:<free port>` (plain HTTP, bearer token), keeps
//! objects in memory, and stops when the [`FakeKube`] handle is dropped (watch streams included).
//!
//! # What it serves
//! - `GET /version` (v1.32.0 unless [`FakeKube::set_server_minor`]), legacy discovery (`/api`, `/apis`, `/api/v1`, `/apis/apps/v1`,
//!   `/apis/autoscaling/v2`, `/apis/autoscaling/v1`, `/apis/policy/v1`, `/apis/authorization.k8s.io/v1`)
//!   with verbs and the `scale`/`status` subresources; `/openapi/v3` plus one document per group/version
//!   whose PATCH operations carry `x-kubernetes-group-version-kind` and the `fieldValidation` parameter.
//! - Namespaces; Deployments and StatefulSets (apps/v1); HorizontalPodAutoscalers (autoscaling/v2,
//!   and v1 by conversion, stored once); ResourceQuotas, LimitRanges (v1); PodDisruptionBudgets
//!   (policy/v1); SelfSubjectAccessReviews (`kubectl auth can-i`, allowed unless [`FakeKube::deny`]).
//! - Verbs: GET, LIST (`fieldSelector` on `metadata.name`/`metadata.namespace`, simple equality
//!   `labelSelector`), WATCH (chunked newline-delimited events, BOOKMARKs when allowed), POST (409
//!   `AlreadyExists` on a second create; the protobuf HPA that `kubectl autoscale` sends is decoded),
//!   PUT (409 on a stale `resourceVersion`), PATCH with `merge-patch+json`, `strategic-merge-patch+json`
//!   (lists merged by their Kubernetes merge key: containers by name…), `json-patch+json` and
//!   `apply-patch+yaml` (server-side apply: create-or-update, 201 then 200), DELETE, and `/scale`
//!   (GET, PUT with `resourceVersion` precondition, PATCH). `dryRun=All` validates and answers as if
//!   applied, and persists nothing.
//! - Server-side apply tracks field ownership per manager (`metadata.managedFields`): a field that the
//!   applying manager stops applying is removed when it was its sole owner, and changing a field owned
//!   by another manager is a 409 conflict unless `force=true`. Fixtures are written without an owner;
//!   [`FakeKube::set_field_owner`] makes a manager (e.g. `kubectl-client-side-apply`) own every field.
//! - Writes canonicalize quantities (`0.5` → `500m`, `1.5Gi` → `1536Mi`) and fill the apiserver's
//!   defaults (strategy, imagePullPolicy, HPA `minReplicas: 1`, HPA behavior defaults when a behavior
//!   is given…), bump `resourceVersion` on every write, `metadata.generation` on a spec change, and
//!   `deployment.kubernetes.io/revision` on a pod-template change. A write that changes nothing is a
//!   no-op (same resourceVersion). Rollout status converges in the same write unless a fault says
//!   otherwise ([`FakeKube::delayed_rollout`], [`FakeKube::stuck_rollout`], [`FakeKube::failed_rollout`]).
//! - Validation with the apiserver's 422 `Invalid` message shapes: container resource names (`mem`:
//!   "must be a standard resource type or fully qualified" and "must be a standard resource for
//!   containers"), negative quantities, requests above limits ("must be less than or equal to cpu
//!   limit of 1"), replicas < 0, missing selector/containers/image, names (DNS-1123), HPA
//!   minReplicas < 1, maxReplicas < 1 or < minReplicas, averageUtilization < 1, behavior bounds.
//!   Malformed quantities are a 400 decode error. Unknown objects are 404 `NotFound`.
//!
//! Faults and knobs: [`FakeKube::fail_next_patch`], [`FakeKube::fail_next_request`] (any verb, e.g. a
//! 500 on a GET), [`FakeKube::fail_on_dry_run`] (admission-style rejection), [`FakeKube::conflict_on_apply`],
//! rollout modes (delayed, stuck, `ProgressDeadlineExceeded`, `ReplicaFailure`), [`FakeKube::deny`]
//! (`auth can-i`), [`FakeKube::run_hpa_controller`] (clamps HPA targets into [min, max]),
//! [`FakeKube::set_latency`] (for benchmarks).
//!
//! `kubectl get` without `-o` gets a server-side Table with the usual columns (Deployments: ready,
//! up-to-date, available, age; HPAs: reference, targets, min/max pods, replicas…).
//!
//! Not modelled: pods, ReplicaSets (`kubectl rollout undo` does not work), metrics, quota admission,
//! protobuf responses, `/openapi/v2`, Tables for watches (`kubectl get -w`).
//!
//! # kubectl versions
//! Tested with the real kubectl 1.27, 1.29, 1.32 and 1.33 (`tests/kube_kubectl.rs`). kubectl 1.29 …
//! 1.33 work with the default `--validate=strict`: they find the `fieldValidation` parameter in the
//! OpenAPI v3 documents, send `fieldValidation=Strict` and leave validation to the server. kubectl 1.27
//! and 1.28 validate against `/openapi/v2` (protobuf), which the fake answers 404: run their `apply`,
//! `create` and `replace` with `--validate=false` (they then send `fieldValidation=Ignore`).
//! `/usr/bin/kubectl` from the Google Cloud SDK is a dispatcher that first asks `GET /version` and then
//! runs its bundled v1.32. kubectl never sends the kubeconfig's bearer token to an `http://` server;
//! kubectl ≥1.30 sends `Kubectl-Command` and `Kubectl-Session` headers, recorded per request (see
//! [`FakeKube::kubectl_sessions`] to count kubectl processes).
//!
//! Unknown fields: a server-side apply with a field the type does not declare fails with a 500
//! `failed to create typed patch object (…): .spec.x: field not declared in schema` (what real servers
//! answer); other writes fail with 400 `strict decoding error: unknown field "spec.x"` under
//! `fieldValidation=Strict`, and otherwise lose the field with a `Warning` header (`kubectl patch`
//! sends no `fieldValidation`, so the server default `Warn` applies).
//!
//! # Use
//! ```no_run
//! use testkit::kube::{Container, FakeKube};
//! let kube = FakeKube::start();
//! kube.add_deployment("assistant", "web", 3, &[Container::new("web").request("cpu", "250m").limit("memory", "512Mi")]);
//! let dir = std::env::temp_dir();
//! let kubeconfig = kube.write_kubeconfig(&dir, "prod");
//! // KUBECONFIG=<kubeconfig> KUBECACHEDIR=<fresh dir> kubectl -n assistant scale deployment/web --replicas=6
//! let web = kube.deployment("assistant", "web").expect("stored");
//! # let _ = (kubeconfig, web);
//! ```
//! Always give kubectl a fresh `KUBECACHEDIR` (or `--cache-dir`): a discovery cache from another
//! fake, on another port, would otherwise be reused.

mod api_error;
mod discovery;
mod fields;
mod handlers;
mod http;
mod merge;
mod objects;
mod protobuf;
pub mod quantity;
mod schema;
mod selector;
mod store;
mod table;
mod validation;

pub use http::RecordedRequest;
pub use objects::{Container, Rollout};

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use store::{Failure, Key, Shared, State, WriteOp};

/// The bearer token written into kubeconfigs; tests can assert that it never appears in output.
pub const TOKEN: &str = "fake-kube-token-6c1e0d";

/// A running fake API server. Dropping it stops the server and every watch stream.
pub struct FakeKube {
    shared: Arc<Shared>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    handlers: Arc<Mutex<Vec<JoinHandle<()>>>>,
    url: String,
}

impl FakeKube {
    /// Starts a server on `127.0.0.1:0` in a background thread, with the namespace `default`.
    ///
    /// # Panics
    /// When no local port can be bound.
    pub fn start() -> FakeKube {
        let server =
            Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1:0 for the fake API server"));
        let addr = server.server_addr().to_ip().expect("the fake API server listens on an IP address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new()),
            changed: Condvar::new(),
            shutdown: AtomicBool::new(false),
            address: addr.to_string(),
            token: TOKEN.to_string(),
        });
        let handlers: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let thread = {
            let (shared, server, handlers) = (shared.clone(), server.clone(), handlers.clone());
            std::thread::Builder::new()
                .name("fake-kube".into())
                .spawn(move || {
                    while !shared.shutdown.load(Ordering::SeqCst) {
                        match server.recv_timeout(Duration::from_millis(25)) {
                            Ok(Some(request)) => {
                                let shared = shared.clone();
                                let handle = std::thread::spawn(move || http::serve(&shared, request));
                                let mut hs = handlers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                                hs.retain(|h| !h.is_finished());
                                hs.push(handle);
                            }
                            Ok(None) => {}
                            Err(_) => break,
                        }
                        store::settle_due(&shared);
                    }
                })
                .expect("spawn the fake API server thread")
        };
        let kube = FakeKube { shared, server, thread: Some(thread), handlers, url: format!("http://{addr}") };
        kube.add_namespace("default");
        kube
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bearer token the kubeconfigs carry ([`TOKEN`]).
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// The text of a kubeconfig with one context per name (cluster = this server, namespace
    /// `default`, a token user), `current` selected.
    pub fn kubeconfig(&self, contexts: &[&str], current: &str) -> String {
        let entries: Vec<(&str, &FakeKube)> = contexts.iter().map(|c| (*c, self)).collect();
        FakeKube::kubeconfig_for(&entries, current)
    }

    /// The text of a kubeconfig whose contexts point at different fake servers (e.g. `prod` and
    /// `staging`), each with its own cluster and user entry, `current` selected.
    pub fn kubeconfig_for(contexts: &[(&str, &FakeKube)], current: &str) -> String {
        let (mut clusters, mut ctxs, mut users) = (String::new(), String::new(), String::new());
        for (name, kube) in contexts {
            clusters.push_str(&format!("- name: {name}-cluster\n  cluster:\n    server: {}\n", kube.url));
            ctxs.push_str(&format!(
                "- name: {name}\n  context:\n    cluster: {name}-cluster\n    namespace: default\n    user: {name}-user\n"
            ));
            users.push_str(&format!("- name: {name}-user\n  user:\n    token: {}\n", kube.shared.token));
        }
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n{clusters}contexts:\n{ctxs}current-context: {current}\nusers:\n{users}preferences: {{}}\n"
        )
    }

    /// Writes `<dir>/kubeconfig` with one context named `context` (current) and returns its path.
    ///
    /// # Panics
    /// When the file cannot be written.
    pub fn write_kubeconfig(&self, dir: &Path, context: &str) -> PathBuf {
        self.write_kubeconfig_contexts(dir, &[context])
    }

    /// Writes `<dir>/kubeconfig` with several contexts (all on this server; the first is current).
    ///
    /// # Panics
    /// When the file cannot be written or `contexts` is empty.
    pub fn write_kubeconfig_contexts(&self, dir: &Path, contexts: &[&str]) -> PathBuf {
        let current = contexts.first().expect("at least one context");
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig(contexts, current)).expect("write the kubeconfig");
        path
    }

    fn type_of(kind: &str) -> &'static discovery::ResourceType {
        discovery::by_kind(kind).unwrap_or_else(|| panic!("the fake API server does not serve kind {kind:?}"))
    }

    /// Stores a fixture object as given (validated and defaulted like a create; no field owner).
    /// The namespace is created first when missing.
    ///
    /// # Panics
    /// When the kind is not served or the object is invalid.
    pub fn add_object(&self, obj: Value) -> Value {
        let kind = obj["kind"].as_str().unwrap_or("").to_string();
        let api_version = obj["apiVersion"].as_str().unwrap_or("").to_string();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version.as_str()));
        let t = discovery::TYPES
            .iter()
            .find(|t| t.kind == kind && t.group == group && t.version == version)
            .unwrap_or_else(|| panic!("the fake API server does not serve {api_version} {kind}"));
        let ns = if t.namespaced {
            obj["metadata"]["namespace"].as_str().unwrap_or("default").to_string()
        } else {
            String::new()
        };
        if t.namespaced {
            self.add_namespace(&ns);
        }
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let k: Key = (t.storage.to_string(), ns, name);
        let mut state = self.shared.lock();
        let op = WriteOp { manager: String::new(), subresource: None, applied: None, force: false, dry_run: false };
        let (mut stored, _) =
            store::commit(&mut state, t, &k, obj, &op).unwrap_or_else(|e| panic!("invalid fixture: {}", e.message));
        if matches!(t.storage, "apps/deployments" | "apps/statefulsets") {
            objects::set_workload_status(t.storage, &mut stored, &Rollout::Immediate, true);
            state.objects.insert(k, stored.clone());
        }
        store::reconcile_hpas(&mut state);
        drop(state);
        self.shared.changed.notify_all();
        stored
    }

    /// Creates a namespace (no-op when it exists).
    pub fn add_namespace(&self, namespace: &str) {
        let exists =
            self.shared.lock().objects.contains_key(&("namespaces".to_string(), String::new(), namespace.to_string()));
        if !exists {
            self.add_object(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}));
        }
    }

    /// Adds a Deployment (labels and selector `app: <name>`, settled status, revision 1).
    pub fn add_deployment(&self, namespace: &str, name: &str, replicas: i64, containers: &[Container]) -> Value {
        self.add_object(objects::workload("Deployment", namespace, name, replicas, containers))
    }

    /// Adds a StatefulSet (RollingUpdate strategy, settled status).
    pub fn add_statefulset(&self, namespace: &str, name: &str, replicas: i64, containers: &[Container]) -> Value {
        self.add_object(objects::workload("StatefulSet", namespace, name, replicas, containers))
    }

    /// Adds an autoscaling/v2 HPA targeting `target_kind/target_name`, with a CPU utilization metric
    /// when `cpu_percent` is given (otherwise the server default of 80 % is filled in).
    #[allow(clippy::too_many_arguments)]
    pub fn add_hpa(
        &self,
        namespace: &str,
        name: &str,
        target_kind: &str,
        target_name: &str,
        min: i64,
        max: i64,
        cpu_percent: Option<i64>,
    ) -> Value {
        self.add_object(objects::hpa(namespace, name, target_kind, target_name, min, max, cpu_percent))
    }

    /// Adds a ResourceQuota with `hard` limits and `used` amounts, e.g. `&[("requests.cpu", "10")]`.
    pub fn add_resource_quota(
        &self,
        namespace: &str,
        name: &str,
        hard: &[(&str, &str)],
        used: &[(&str, &str)],
    ) -> Value {
        self.add_object(objects::resource_quota(namespace, name, hard, used))
    }

    /// The stored object of a kind (`Deployment`, `hpa`, `statefulsets`…) as its preferred version
    /// serves it, or None. Cluster-scoped kinds ignore `namespace`.
    pub fn object(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let t = Self::type_of(kind);
        let ns = if t.namespaced { namespace.to_string() } else { String::new() };
        self.shared.lock().objects.get(&(t.storage.to_string(), ns, name.to_string())).map(|o| store::present(t, o))
    }

    /// The stored Deployment.
    pub fn deployment(&self, namespace: &str, name: &str) -> Option<Value> {
        self.object("Deployment", namespace, name)
    }

    /// The stored StatefulSet.
    pub fn statefulset(&self, namespace: &str, name: &str) -> Option<Value> {
        self.object("StatefulSet", namespace, name)
    }

    /// The stored HPA (autoscaling/v2).
    pub fn hpa(&self, namespace: &str, name: &str) -> Option<Value> {
        self.object("HorizontalPodAutoscaler", namespace, name)
    }

    /// The stored ResourceQuota.
    pub fn resource_quota(&self, namespace: &str, name: &str) -> Option<Value> {
        self.object("ResourceQuota", namespace, name)
    }

    /// Names of the stored objects of a kind in a namespace, sorted.
    pub fn names(&self, kind: &str, namespace: &str) -> Vec<String> {
        let t = Self::type_of(kind);
        let state = self.shared.lock();
        state
            .objects
            .keys()
            .filter(|k| k.0 == t.storage && (!t.namespaced || k.1 == namespace))
            .map(|k| k.2.clone())
            .collect()
    }

    /// The current (global) resourceVersion; it grows on every write.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().rv
    }

    /// Makes `manager` own every field of the object (operation Update), as if it had created it with
    /// client-side `kubectl apply` or Helm: a server-side apply by another manager that changes one of
    /// them then gets a 409 conflict unless forced.
    ///
    /// # Panics
    /// When the object does not exist.
    pub fn set_field_owner(&self, kind: &str, namespace: &str, name: &str, manager: &str) {
        let t = Self::type_of(kind);
        let ns = if t.namespaced { namespace.to_string() } else { String::new() };
        let k: Key = (t.storage.to_string(), ns, name.to_string());
        let mut state = self.shared.lock();
        let mut obj = state.objects.get(&k).cloned().unwrap_or_else(|| panic!("no {kind} {namespace}/{name}"));
        let mut ownership = state.ownership.get(&k).cloned().unwrap_or_default();
        ownership.own_all(manager, &t.api_version(), &obj);
        obj["metadata"]["managedFields"] = ownership.render();
        state.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(state.rv.to_string());
        state.objects.insert(k.clone(), obj);
        state.ownership.insert(k, ownership);
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().log.clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.lock().log.clear();
    }

    /// Number of requests received so far.
    pub fn request_count(&self) -> usize {
        self.shared.lock().log.len()
    }

    /// Number of writes received (POST, PUT, PATCH, DELETE without `dryRun`), whatever their answer.
    pub fn write_count(&self) -> usize {
        self.shared.lock().log.iter().filter(|r| r.is_write()).count()
    }

    /// Number of distinct kubectl processes seen (distinct `Kubectl-Session` headers; kubectl ≥1.30).
    pub fn kubectl_sessions(&self) -> usize {
        let state = self.shared.lock();
        let sessions: std::collections::BTreeSet<&str> =
            state.log.iter().filter_map(|r| r.kubectl_session.as_deref()).collect();
        sessions.len()
    }

    /// Number of requests with this method whose path contains `path_part`.
    pub fn count_requests(&self, method: &str, path_part: &str) -> usize {
        self.shared.lock().log.iter().filter(|r| r.method == method && r.path.contains(path_part)).count()
    }

    /// The next PATCH or PUT (not a dry run) to this object, subresources included, is answered with
    /// `status` and `message` in a Status (e.g. 500, 422, 403) and changes nothing.
    pub fn fail_next_patch(&self, kind: &str, name: &str, status: u16, message: &str) {
        let t = Self::type_of(kind);
        let f =
            Failure { storage: t.storage.to_string(), name: name.to_string(), status, message: message.to_string() };
        self.shared.lock().faults.fail_next_patch.push(f);
    }

    /// Every dry-run write (`dryRun=All`) to this object is answered with `status` and `message`, as an
    /// admission webhook or quota rejection would be (e.g. 403 `exceeded quota`).
    pub fn fail_on_dry_run(&self, kind: &str, name: &str, status: u16, message: &str) {
        let t = Self::type_of(kind);
        let f =
            Failure { storage: t.storage.to_string(), name: name.to_string(), status, message: message.to_string() };
        self.shared.lock().faults.fail_on_dry_run.push(f);
    }

    /// Server-side apply without `force=true` to this object gets a 409 conflict with manager
    /// `kubectl-client-side-apply` (dry runs included), whatever the field ownership says.
    pub fn conflict_on_apply(&self, kind: &str, name: &str) {
        let t = Self::type_of(kind);
        let key = (t.storage.to_string(), name.to_string());
        self.shared.lock().faults.conflict_on_apply.insert(key, "kubectl-client-side-apply".to_string());
    }

    fn set_rollout(&self, kind: &str, name: &str, mode: Rollout) {
        let t = Self::type_of(kind);
        self.shared.lock().faults.rollout.insert((t.storage.to_string(), name.to_string()), mode);
    }

    /// From now on, a change to this workload leaves its rollout in progress for ever:
    /// `kubectl rollout status --timeout=…` times out.
    pub fn stuck_rollout(&self, kind: &str, name: &str) {
        self.set_rollout(kind, name, Rollout::Stuck);
    }

    /// From now on, a change to this Deployment reports `ProgressDeadlineExceeded`: `kubectl rollout
    /// status` fails at once.
    pub fn failed_rollout(&self, kind: &str, name: &str) {
        self.set_rollout(kind, name, Rollout::DeadlineExceeded);
    }

    /// From now on, a change to this workload shows an in-progress rollout that converges after
    /// `delay` (watchers see a MODIFIED event).
    pub fn delayed_rollout(&self, kind: &str, name: &str, delay: Duration) {
        self.set_rollout(kind, name, Rollout::DelayedMs(delay.as_millis() as u64));
    }

    /// Back to converging immediately; a rollout in progress converges now.
    pub fn resume_rollout(&self, kind: &str, name: &str) {
        let t = Self::type_of(kind);
        let mut state = self.shared.lock();
        state.faults.rollout.remove(&(t.storage.to_string(), name.to_string()));
        let keys: Vec<Key> = state.objects.keys().filter(|k| k.0 == t.storage && k.2 == name).cloned().collect();
        for k in keys {
            state.pending.push((k, std::time::Instant::now()));
        }
    }

    /// From now on, a change to this Deployment stalls with a `ReplicaFailure` condition (reason
    /// `FailedCreate`, this message), as when quota admission rejects the new pods: the write itself
    /// succeeds and `kubectl rollout status` waits until its timeout.
    pub fn replica_failure(&self, kind: &str, name: &str, message: &str) {
        self.set_rollout(kind, name, Rollout::ReplicaFailure(message.to_string()));
    }

    /// Emulates the HPA controller from now on: after every write, each HPA's target is scaled into
    /// [minReplicas, maxReplicas] (manager `kube-controller-manager`, subresource `scale`) and the HPA
    /// status follows; a target at 0 replicas is left alone (autoscaling disabled). Off by default.
    pub fn run_hpa_controller(&self) {
        let mut state = self.shared.lock();
        state.faults.hpa_controller = true;
        store::reconcile_hpas(&mut state);
        drop(state);
        self.shared.changed.notify_all();
    }

    /// The version `GET /version` reports from now on: 1.`minor`.0 (default 1.32). The Google Cloud SDK
    /// dispatcher (`/usr/bin/kubectl`) then runs its bundled kubectl of that minor when it has one.
    pub fn set_server_minor(&self, minor: u32) {
        self.shared.lock().server_minor = minor;
    }

    /// Every request waits `latency` before it is answered (a remote API server's round trip), for
    /// benchmarks.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    /// The next request with this method (`GET`, `PATCH`…) whose path contains `path_part` is answered
    /// with `status` and `message` in a Status, before anything else happens. Queue several for several.
    pub fn fail_next_request(&self, method: &str, path_part: &str, status: u16, message: &str) {
        let f = (method.to_ascii_uppercase(), path_part.to_string(), status, message.to_string());
        self.shared.lock().faults.fail_next_request.push(f);
    }

    /// `kubectl auth can-i <verb> <resource>` answers "no" (`*` matches any verb or resource).
    pub fn deny(&self, verb: &str, resource: &str) {
        self.shared.lock().faults.denied.insert((verb.to_string(), resource.to_string()));
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.server.unblock();
        self.shared.changed.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let handlers = std::mem::take(&mut *self.handlers.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for h in handlers {
            let _ = h.join();
        }
    }
}
