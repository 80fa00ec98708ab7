//! The in-memory store: objects by (storage, namespace, name), field ownership, the watch event
//! history, injected faults, and `commit`, the write pipeline every change goes through (decode
//! checks, defaults, validation, ownership, generation/revision, status, resourceVersion, events).

use super::api_error::{ApiError, conflict_error};
use super::discovery::{self, ResourceType};
use super::fields::Ownership;
use super::http::RecordedRequest;
use super::objects::{self, Rollout};
use super::schema;
use super::validation;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// (storage, namespace, name); namespace is empty for cluster-scoped objects.
pub type Key = (String, String, String);

/// A watch event in the store's history.
#[derive(Clone, Debug)]
pub struct Event {
    pub rv: u64,
    pub key: Key,
    pub kind: &'static str,
    pub object: Value,
}

/// One injected failure answered instead of the real operation.
#[derive(Clone, Debug)]
pub struct Failure {
    pub storage: String,
    pub name: String,
    pub status: u16,
    pub message: String,
}

/// Injected faults.
#[derive(Default, Debug)]
pub struct Faults {
    pub fail_next_patch: Vec<Failure>,
    pub fail_on_dry_run: Vec<Failure>,
    pub conflict_on_apply: BTreeMap<(String, String), String>,
    pub rollout: BTreeMap<(String, String), Rollout>,
    pub denied: BTreeSet<(String, String)>,
    /// Emulate the HPA controller: keep every HPA target's replicas within [min, max].
    pub hpa_controller: bool,
    /// One-shot failures of any request: (method, path part, status, message).
    pub fail_next_request: Vec<(String, String, u16, String)>,
}

/// Everything behind the lock.
pub struct State {
    /// The minor version `GET /version` reports (1.<minor>.0).
    pub server_minor: u32,
    /// Time spent before answering each request.
    pub latency: Duration,
    pub objects: BTreeMap<Key, Value>,
    pub ownership: BTreeMap<Key, Ownership>,
    pub rv: u64,
    pub events: Vec<Event>,
    pub log: Vec<RecordedRequest>,
    pub faults: Faults,
    pub next_uid: u64,
    /// Rollouts that converge at the given instant.
    pub pending: Vec<(Key, Instant)>,
}

/// State shared by the server thread, the handler threads and the `FakeKube` handle.
pub struct Shared {
    pub state: Mutex<State>,
    pub changed: Condvar,
    pub shutdown: AtomicBool,
    pub address: String,
    pub token: String,
}

impl State {
    /// An empty store for a server reporting v1.32.0, without latency.
    pub fn new() -> State {
        State {
            server_minor: 32,
            latency: Duration::ZERO,
            objects: BTreeMap::new(),
            ownership: BTreeMap::new(),
            rv: 0,
            events: Vec::new(),
            log: Vec::new(),
            faults: Faults::default(),
            next_uid: 0,
            pending: Vec::new(),
        }
    }
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The stored object as served by type `t` (HPAs are stored as autoscaling/v2).
pub fn present(t: &ResourceType, stored: &Value) -> Value {
    if t.storage == "autoscaling/horizontalpodautoscalers" && t.version == "v1" {
        return objects::hpa_v2_to_v1(stored);
    }
    let mut o = stored.clone();
    o["apiVersion"] = json!(t.api_version());
    o["kind"] = json!(t.kind);
    o
}

/// An object as sent by a client for type `t`, converted to the storage version.
pub fn to_storage(t: &ResourceType, sent: &Value) -> Value {
    if t.storage == "autoscaling/horizontalpodautoscalers" && t.version == "v1" {
        return objects::hpa_v1_to_v2(sent);
    }
    sent.clone()
}

pub fn key(t: &ResourceType, ns: &str, name: &str) -> Key {
    (t.storage.to_string(), if t.namespaced { ns.to_string() } else { String::new() }, name.to_string())
}

/// What kind of write produced a new object version (for managedFields and ownership).
pub struct WriteOp<'a> {
    pub manager: String,
    pub subresource: Option<&'a str>,
    /// The applied configuration, for `Apply` operations.
    pub applied: Option<&'a Value>,
    pub force: bool,
    pub dry_run: bool,
}

/// Validates, defaults and stores a new version of an object (or only computes it, for dry runs).
/// Returns the stored object and whether it was created.
pub fn commit(
    state: &mut State,
    t: &ResourceType,
    k: &Key,
    new: Value,
    op: &WriteOp<'_>,
) -> Result<(Value, bool), ApiError> {
    let storage = t.storage;
    let name = k.2.as_str();
    let old = state.objects.get(k).cloned();
    let mut new = new;
    new["apiVersion"] =
        json!(discovery::TYPES.iter().find(|x| x.storage == storage).map_or(t.api_version(), |x| x.api_version()));
    new["kind"] = json!(t.kind);
    validation::canonicalize(storage, &mut new).map_err(|e| {
        ApiError::new(400, format!("{} in version \"{}\" cannot be handled as a {}: {e}", t.kind, t.version, t.kind))
    })?;
    if let Some(node) = schema::schema(new["apiVersion"].as_str().unwrap_or(""), t.kind) {
        schema::prune(&mut new, node);
    }
    objects::apply_defaults(storage, &mut new);
    if old.is_none() {
        let mut errs = validation::validate_name(storage, name);
        errs.extend(validation::validate(storage, &new));
        if !errs.is_empty() {
            return Err(ApiError::invalid(t, name, &errs));
        }
    } else {
        let errs = validation::validate(storage, &new);
        if !errs.is_empty() {
            return Err(ApiError::invalid(t, name, &errs));
        }
    }
    // Field ownership and managedFields (fixtures are written without a manager: nobody owns them).
    let mut ownership = state.ownership.get(k).cloned().unwrap_or_default();
    let before = old.clone().unwrap_or(Value::Null);
    let api_version = t.api_version();
    if !op.manager.is_empty() {
        match op.applied {
            Some(config) => {
                let conflicts = ownership.apply(&op.manager, &api_version, config, &before, &mut new, op.force);
                if !conflicts.is_empty() {
                    return Err(conflict_error(t, name, &conflicts));
                }
            }
            None => ownership.update(&op.manager, &api_version, op.subresource, &before, &new),
        }
    }
    let managed = ownership.render();
    match new["metadata"].as_object_mut() {
        Some(m) if managed.as_array().is_some_and(|a| !a.is_empty()) => {
            m.insert("managedFields".to_string(), managed);
        }
        Some(m) => {
            m.remove("managedFields");
        }
        None => {}
    }
    let mode =
        state.faults.rollout.get(&(storage.to_string(), name.to_string())).cloned().unwrap_or(Rollout::Immediate);
    let created = old.is_none();
    if let Some(old) = &old {
        // Server-managed fields come from the stored object, whatever the client sent.
        for f in ["uid", "creationTimestamp", "generation", "resourceVersion"] {
            new["metadata"][f] = old["metadata"][f].clone();
        }
        if op.subresource != Some("status") {
            new["status"] = old["status"].clone();
        }
        if new == *old {
            return Ok((old.clone(), false));
        }
        if new["spec"] != old["spec"] {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            new["metadata"]["generation"] = json!(generation);
        }
        // The revision annotation comes from the deployment controller, so a dry run does not show it.
        if storage == "apps/deployments" && !op.dry_run && new["spec"]["template"] != old["spec"]["template"] {
            let rev = old["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                .as_str()
                .and_then(|r| r.parse::<i64>().ok())
                .unwrap_or(1);
            new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!((rev + 1).to_string());
        }
    } else {
        state.next_uid += 1;
        let uid = format!("00000000-0000-4000-8000-{:012x}", state.next_uid);
        let meta = &mut new["metadata"];
        meta["uid"] = json!(uid);
        meta["creationTimestamp"] = json!(objects::now_rfc3339());
        meta["generation"] = json!(1);
        if storage == "apps/deployments" {
            meta["annotations"]["deployment.kubernetes.io/revision"] = json!("1");
        }
        if storage == "namespaces" {
            new["spec"] = json!({"finalizers": ["kubernetes"]});
            new["status"] = json!({"phase": "Active"});
            new["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
        }
    }
    match storage {
        "apps/deployments" | "apps/statefulsets" => {
            // A dry run shows the object as stored, before any controller has acted on it.
            let spec_changed = old.as_ref().is_none_or(|o| o["spec"] != new["spec"]);
            if spec_changed && !op.dry_run {
                objects::set_workload_status(storage, &mut new, &mode, false);
            }
        }
        "autoscaling/horizontalpodautoscalers" if created && !op.dry_run => {
            let target = &new["spec"]["scaleTargetRef"];
            let target_storage = discovery::by_kind(target["kind"].as_str().unwrap_or("")).map(|t| t.storage);
            let replicas = target_storage
                .and_then(|s| {
                    state.objects.get(&(s.to_string(), k.1.clone(), target["name"].as_str().unwrap_or("").to_string()))
                })
                .and_then(|o| o["spec"]["replicas"].as_i64())
                .unwrap_or(0);
            objects::set_hpa_status(&mut new, replicas);
        }
        _ => {}
    }
    if op.dry_run {
        if created {
            new["metadata"].as_object_mut().map(|m| m.remove("resourceVersion"));
        }
        return Ok((new, created));
    }
    state.rv += 1;
    new["metadata"]["resourceVersion"] = json!(state.rv.to_string());
    state.objects.insert(k.clone(), new.clone());
    state.ownership.insert(k.clone(), ownership);
    let rv = state.rv;
    state.events.push(Event {
        rv,
        key: k.clone(),
        kind: if created { "ADDED" } else { "MODIFIED" },
        object: new.clone(),
    });
    if let Rollout::DelayedMs(ms) = mode
        && matches!(storage, "apps/deployments" | "apps/statefulsets")
        && old.as_ref().is_none_or(|o| o["spec"] != new["spec"])
    {
        state.pending.push((k.clone(), Instant::now() + Duration::from_millis(ms)));
    }
    Ok((new, created))
}

/// Records a converged rollout for a workload whose delayed settle time has come.
pub fn settle_due(shared: &Shared) {
    let mut state = shared.lock();
    let now = Instant::now();
    let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut state.pending).into_iter().partition(|(_, at)| *at <= now);
    state.pending = later;
    if due.is_empty() {
        return;
    }
    for (k, _) in due {
        let Some(mut obj) = state.objects.get(&k).cloned() else { continue };
        objects::set_workload_status(&k.0, &mut obj, &Rollout::Immediate, true);
        state.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(state.rv.to_string());
        state.objects.insert(k.clone(), obj.clone());
        let rv = state.rv;
        state.events.push(Event { rv, key: k, kind: "MODIFIED", object: obj });
    }
    drop(state);
    shared.changed.notify_all();
}

/// The HPA controller, when enabled: every HPA target with replicas outside [minReplicas,
/// maxReplicas] is scaled into the range through its scale subresource (manager
/// `kube-controller-manager`), and the HPA status follows. A target at 0 replicas is left alone:
/// autoscaling is disabled then.
pub fn reconcile_hpas(state: &mut State) {
    if !state.faults.hpa_controller {
        return;
    }
    let hpa_type = discovery::find("autoscaling", "v2", "horizontalpodautoscalers").expect("served");
    let hpas: Vec<(Key, Value)> =
        state.objects.iter().filter(|(k, _)| k.0 == hpa_type.storage).map(|(k, v)| (k.clone(), v.clone())).collect();
    for (hk, hpa) in hpas {
        let target = &hpa["spec"]["scaleTargetRef"];
        let Some(tt) = discovery::by_kind(target["kind"].as_str().unwrap_or("")) else { continue };
        let tk: Key = (tt.storage.to_string(), hk.1.clone(), target["name"].as_str().unwrap_or("").to_string());
        let Some(obj) = state.objects.get(&tk).cloned() else { continue };
        let current = obj["spec"]["replicas"].as_i64().unwrap_or(1);
        if current == 0 {
            continue;
        }
        let min = hpa["spec"]["minReplicas"].as_i64().unwrap_or(1);
        let max = hpa["spec"]["maxReplicas"].as_i64().unwrap_or(current).max(min);
        let desired = current.clamp(min, max);
        let controller = |sub: &'static str| WriteOp {
            manager: "kube-controller-manager".to_string(),
            subresource: Some(sub),
            applied: None,
            force: false,
            dry_run: false,
        };
        if desired != current {
            let mut scaled = obj.clone();
            scaled["spec"]["replicas"] = json!(desired);
            let _ = commit(state, tt, &tk, scaled, &controller("scale"));
        }
        let mut new_hpa = hpa.clone();
        if new_hpa["status"]["desiredReplicas"] != json!(desired)
            || new_hpa["status"]["currentReplicas"] != json!(desired)
        {
            objects::set_hpa_status(&mut new_hpa, desired);
            if desired != current {
                new_hpa["status"]["lastScaleTime"] = json!(objects::now_rfc3339());
            }
            let _ = commit(state, hpa_type, &hk, new_hpa, &controller("status"));
        }
    }
}

pub fn strip_server_fields(obj: &mut Value) {
    if let Some(m) = obj["metadata"].as_object_mut() {
        for f in ["uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"] {
            m.remove(f);
        }
    }
}
