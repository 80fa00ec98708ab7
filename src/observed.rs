//! Reading the live state of a namespace from `kubectl get … -o json` output: Deployments,
//! StatefulSets, HPAs (autoscaling/v2 or v1 shapes) and ResourceQuotas, into the plan's
//! `observed` types. Malformed output is an error naming the object and the field. The raw
//! objects (with `metadata.managedFields`) are kept for the ownership checks.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::kubectl::Kubectl;
use crate::plan::{
    HpaSpec, ObservedContainer, ObservedHpaObject, ObservedQuota, ObservedWorkload, ResourceList, WorkloadKind,
};
use crate::quantity::{Quantity, Resource};

/// Everything read from one namespace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterState {
    pub workloads: Vec<ObservedWorkload>,
    pub hpas: Vec<LiveHpa>,
    pub quotas: Vec<ObservedQuota>,
    /// Every object as read, keyed `Kind/name`; read with `--show-managed-fields` (`--detect`,
    /// the execution snapshot) they carry `metadata.managedFields`.
    pub objects: BTreeMap<String, Value>,
}

/// An HPA and the workload it scales.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveHpa {
    pub target_kind: String,
    pub target_name: String,
    pub object: ObservedHpaObject,
    /// `spec.metrics` exactly as the server returned it (autoscaling/v2; empty for a v1 shape):
    /// an atomic list, replaced whole by a change and restored whole.
    pub metrics: Vec<Value>,
}

impl ClusterState {
    pub fn workload(&self, kind: WorkloadKind, name: &str) -> Option<&ObservedWorkload> {
        self.workloads.iter().find(|w| w.kind == kind && w.name == name)
    }

    /// The raw object `Kind/name` as kubectl printed it.
    pub fn object(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects.get(&format!("{kind}/{name}"))
    }
}

/// The resource types read in one kubectl call.
pub const GET_TYPES: &str = "deployments.apps,statefulsets.apps,horizontalpodautoscalers.autoscaling,resourcequotas";

/// Reads the namespace with one kubectl call. `--show-managed-fields`: kubectl strips
/// managedFields from `-o json` by default, and the ownership findings need them.
pub fn detect(kubectl: &Kubectl, namespace: &str) -> anyhow::Result<ClusterState> {
    let args: Vec<String> = ["get", GET_TYPES, "-n", namespace, "--show-managed-fields", "-o", "json"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let list = kubectl.get_json(&format!("reading the live state of namespace {namespace}"), &args)?;
    parse_list(&list).map_err(|e| anyhow::anyhow!("kubectl get {GET_TYPES} -n {namespace}: {e}"))
}

/// Parses a `kind: List` (or a single object) as printed by `kubectl get -o json`.
pub fn parse_list(list: &Value) -> Result<ClusterState, String> {
    let items: Vec<&Value> = match list.get("items") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(_) => return Err("`items` is not a list".into()),
        None if list.get("kind").is_some() => vec![list],
        None => return Err("the output is neither a List nor an object".into()),
    };
    let mut state = ClusterState::default();
    for item in items {
        let kind = str_at(item, &["kind"]).ok_or("an item has no `kind`")?;
        let name = str_at(item, &["metadata", "name"]).ok_or_else(|| format!("a {kind} has no metadata.name"))?;
        let at = format!("{kind}/{name}");
        match kind {
            "Deployment" | "StatefulSet" => {
                state.workloads.push(parse_workload(item, kind, name, &at)?);
                state.objects.insert(at, item.clone());
            }
            "HorizontalPodAutoscaler" => {
                state.hpas.push(parse_hpa(item, name, &at)?);
                state.objects.insert(at, item.clone());
            }
            "ResourceQuota" => {
                state.quotas.push(parse_quota(item, name));
                state.objects.insert(at, item.clone());
            }
            _ => {}
        }
    }
    // Attach each workload's HPA (matched by scaleTargetRef, not by name).
    for w in &mut state.workloads {
        w.hpa = state
            .hpas
            .iter()
            .find(|h| h.target_kind == w.kind.as_str() && h.target_name == w.name)
            .map(|h| h.object.clone());
    }
    Ok(state)
}

fn parse_workload(item: &Value, kind: &str, name: &str, at: &str) -> Result<ObservedWorkload, String> {
    let kind = if kind == "Deployment" { WorkloadKind::Deployment } else { WorkloadKind::StatefulSet };
    let spec = item.get("spec").ok_or_else(|| format!("{at} has no spec"))?;
    // spec.replicas defaults to 1 when absent (apps/v1 defaulting).
    let replicas = match spec.get("replicas") {
        None | Some(Value::Null) => 1,
        Some(v) => {
            v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| format!("{at}: spec.replicas is {v}"))?
        }
    };
    let pod = spec.pointer("/template/spec").ok_or_else(|| format!("{at} has no spec.template.spec"))?;
    let containers = parse_containers(pod.get("containers"), at, "containers")?;
    if containers.is_empty() {
        return Err(format!("{at} has no containers"));
    }
    let init_containers = parse_containers(pod.get("initContainers"), at, "initContainers")?;
    let max_surge = match spec.pointer("/strategy/rollingUpdate/maxSurge") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    // Deployment `strategy.type` / StatefulSet `updateStrategy.type`; kept only when it is not
    // the default RollingUpdate (Recreate, OnDelete).
    let strategy_ptr = if kind == WorkloadKind::Deployment { "/strategy/type" } else { "/updateStrategy/type" };
    let update_strategy =
        spec.pointer(strategy_ptr).and_then(Value::as_str).filter(|t| *t != "RollingUpdate").map(str::to_string);
    let partition = match spec.pointer("/updateStrategy/rollingUpdate/partition") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format!("{at}: spec.updateStrategy.rollingUpdate.partition is {v}"))?,
        ),
    }
    .filter(|&p| p > 0 && kind == WorkloadKind::StatefulSet);
    Ok(ObservedWorkload {
        kind,
        paused: spec.get("paused").and_then(Value::as_bool).unwrap_or(false) && kind == WorkloadKind::Deployment,
        update_strategy,
        partition,
        name: name.to_string(),
        uid: str_at(item, &["metadata", "uid"]).unwrap_or_default().to_string(),
        resource_version: str_at(item, &["metadata", "resourceVersion"]).unwrap_or_default().to_string(),
        generation: item.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0),
        replicas,
        max_surge,
        containers,
        init_containers,
        hpa: None,
    })
}

fn parse_containers(list: Option<&Value>, at: &str, field: &str) -> Result<Vec<ObservedContainer>, String> {
    let Some(list) = list else { return Ok(Vec::new()) };
    let list = list.as_array().ok_or_else(|| format!("{at}: {field} is not a list"))?;
    list.iter()
        .map(|c| {
            let name = c.get("name").and_then(Value::as_str).ok_or_else(|| format!("{at}: a container has no name"))?;
            let cat = format!("{at} container {name}");
            Ok(ObservedContainer {
                name: name.to_string(),
                requests: parse_resource_list(c.pointer("/resources/requests"), &cat, "requests")?,
                limits: parse_resource_list(c.pointer("/resources/limits"), &cat, "limits")?,
                restart_policy: c.get("restartPolicy").and_then(Value::as_str).map(str::to_string),
            })
        })
        .collect()
}

/// cpu and memory of a resources map; other resources (ephemeral-storage, GPUs) are left out.
fn parse_resource_list(map: Option<&Value>, at: &str, which: &str) -> Result<ResourceList, String> {
    let mut out = ResourceList::default();
    let Some(Value::Object(map)) = map else { return Ok(out) };
    for (key, value) in map {
        let Some(r) = Resource::parse(key).filter(|_| key != "mem") else { continue };
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => return Err(format!("{at}: {which}.{key} is {other}")),
        };
        let q = Quantity::parse(&text).map_err(|e| format!("{at}: {which}.{key} `{text}` {e}"))?;
        out.set(r, q);
    }
    Ok(out)
}

fn parse_hpa(item: &Value, name: &str, at: &str) -> Result<LiveHpa, String> {
    let spec = item.get("spec").ok_or_else(|| format!("{at} has no spec"))?;
    let target_kind = str_at(spec, &["scaleTargetRef", "kind"]).unwrap_or_default().to_string();
    let target_name = str_at(spec, &["scaleTargetRef", "name"]).unwrap_or_default().to_string();
    let as_u32 = |v: Option<&Value>, default: Option<u32>, field: &str| -> Result<u32, String> {
        match v {
            None | Some(Value::Null) => default.ok_or_else(|| format!("{at}: spec.{field} is missing")),
            Some(v) => {
                v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| format!("{at}: spec.{field} is {v}"))
            }
        }
    };
    // minReplicas defaults to 1 (autoscaling/v2 defaulting).
    let min = as_u32(spec.get("minReplicas"), Some(1), "minReplicas")?;
    let max = as_u32(spec.get("maxReplicas"), None, "maxReplicas")?;
    let mut target_cpu = None;
    let mut other_metrics = Vec::new();
    if let Some(v1) = spec.get("targetCPUUtilizationPercentage") {
        target_cpu = Some(as_u32(Some(v1), None, "targetCPUUtilizationPercentage")?);
    }
    if let Some(Value::Array(metrics)) = spec.get("metrics") {
        for m in metrics {
            let ty = m.get("type").and_then(Value::as_str).unwrap_or("?");
            let res = m.pointer("/resource/name").and_then(Value::as_str);
            let target_type = m.pointer("/resource/target/type").and_then(Value::as_str);
            match (ty, res, target_type) {
                ("Resource", Some("cpu"), Some("Utilization")) => {
                    target_cpu = Some(as_u32(m.pointer("/resource/target/averageUtilization"), None, "metrics[cpu]")?);
                }
                (ty, Some(res), _) => other_metrics.push(format!("{ty}/{res}")),
                (ty, None, _) => other_metrics.push(ty.to_string()),
            }
        }
    }
    let raw_metrics = match spec.get("metrics") {
        Some(Value::Array(m)) => m.clone(),
        _ => Vec::new(),
    };
    Ok(LiveHpa {
        target_kind,
        target_name,
        metrics: raw_metrics,
        object: ObservedHpaObject {
            name: name.to_string(),
            resource_version: str_at(item, &["metadata", "resourceVersion"]).unwrap_or_default().to_string(),
            spec: HpaSpec { min, max, target_cpu },
            other_metrics,
        },
    })
}

fn parse_quota(item: &Value, name: &str) -> ObservedQuota {
    let map = |ptr: &str| -> BTreeMap<String, String> {
        item.pointer(ptr)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| {
                        let v = match v {
                            Value::String(s) => s.clone(),
                            Value::Number(n) => n.to_string(),
                            _ => return None,
                        };
                        Some((k.clone(), v))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    // status.hard is what the quota controller enforces; fall back to spec.hard before it syncs.
    let mut hard = map("/status/hard");
    if hard.is_empty() {
        hard = map("/spec/hard");
    }
    ObservedQuota { name: name.to_string(), hard, used: map("/status/used") }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for key in path {
        cur = cur.get(key)?;
    }
    cur.as_str()
}
