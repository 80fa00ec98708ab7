//! What infra-scale sends: JSON patches (RFC 6902) of the fields it changes, and the manifests of
//! HPAs it creates.
//!
//! A JSON patch is an Update operation under field manager `infra-scale`: the API server gives
//! infra-scale exactly the fields whose value changed and leaves every other field with its owner.
//! Nothing is migrated or pruned. That is why a server-side apply is not used: kubectl's `apply
//! --server-side` moves every field of a client-side-apply manager to the new manager and re-sends
//! the partial manifest, which prunes what infra-scale never set. Keys the plan does not change are
//! not sent (they keep their owners), and every change is preceded by a `test` of the value it
//! replaces, so a change made between the snapshot and the patch fails the patch instead of being
//! overwritten.

use serde_json::{Map, Value, json};

use crate::plan::{HpaSpec, ResourceList, TargetRef};
use crate::quantity::Resource;

use super::resolve::{HpaBase, Op, Slot};

/// `{"cpu": "500m", "memory": "1Gi"}` of a list, quantities as the strings they were written as.
pub fn quantities(list: &ResourceList) -> Map<String, Value> {
    let mut map = Map::new();
    for r in [Resource::Cpu, Resource::Memory] {
        if let Some(q) = list.get(r) {
            // Always `memory`, never the prototype's `mem` (R1); quantities as strings.
            map.insert(r.name().to_string(), Value::String(q.as_str().to_string()));
        }
    }
    map
}

fn test(path: &str, value: Value) -> Value {
    json!({ "op": "test", "path": path, "value": value })
}

/// The patch of one container's requests and limits from `slot` (the live values) to `requests`
/// and `limits` (the whole lists it will have): keys equal in value are not sent, changed keys are
/// tested and replaced, new keys added, keys absent from the target lists removed (restores).
pub fn resources_patch(
    init: bool,
    container: &str,
    slot: &Slot,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Vec<Value> {
    let list = if init { "initContainers" } else { "containers" };
    let base = format!("/spec/template/spec/{list}/{}", slot.index);
    let mut ops = vec![test(&format!("{base}/name"), json!(container))];
    for (section, old, new) in [("requests", &slot.requests, requests), ("limits", &slot.limits, limits)] {
        let path = format!("{base}/resources/{section}");
        if old.is_empty() && !new.is_empty() {
            ops.push(json!({ "op": "add", "path": path, "value": Value::Object(quantities(new)) }));
            continue;
        }
        if !old.is_empty() && new.is_empty() {
            ops.push(test(&path, Value::Object(quantities(old))));
            ops.push(json!({ "op": "remove", "path": path }));
            continue;
        }
        for r in [Resource::Cpu, Resource::Memory] {
            let key = format!("{path}/{}", r.name());
            match (old.get(r), new.get(r)) {
                (Some(o), Some(n)) if o == n => {}
                (Some(o), Some(n)) => {
                    ops.push(test(&key, json!(o.as_str())));
                    ops.push(json!({ "op": "replace", "path": key, "value": n.as_str() }));
                }
                (None, Some(n)) => ops.push(json!({ "op": "add", "path": key, "value": n.as_str() })),
                (Some(o), None) => {
                    ops.push(test(&key, json!(o.as_str())));
                    ops.push(json!({ "op": "remove", "path": key }));
                }
                (None, None) => {}
            }
        }
    }
    ops
}

/// The CPU-utilization metric of an HPA.
fn cpu_metric(cpu: u32) -> Value {
    json!({
        "type": "Resource",
        "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": cpu } }
    })
}

/// `metrics` with its CPU resource metric set to `cpu` % utilization (appended when there is
/// none); every other metric is kept as it is, in place.
pub fn metrics_with_cpu(metrics: &[Value], cpu: u32) -> Vec<Value> {
    let is_cpu = |m: &Value| {
        m.get("type").and_then(Value::as_str) == Some("Resource")
            && m.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
    };
    let mut out: Vec<Value> = metrics.iter().map(|m| if is_cpu(m) { cpu_metric(cpu) } else { m.clone() }).collect();
    if !metrics.iter().any(is_cpu) {
        out.push(cpu_metric(cpu));
    }
    out
}

/// The patch of an existing HPA: min/max and the metrics list, each only when it changes; the
/// scale target is tested (the patch fails if the HPA was re-pointed meanwhile).
pub fn hpa_patch(
    target: &TargetRef,
    spec: &HpaSpec,
    metrics: Option<&[Value]>,
    live: (u32, u32, &[Value]),
) -> Vec<Value> {
    let (min, max, live_metrics) = live;
    let mut ops = vec![
        test("/spec/scaleTargetRef/kind", json!(target.kind.as_str())),
        test("/spec/scaleTargetRef/name", json!(target.name)),
    ];
    for (path, old, new) in [("/spec/minReplicas", min, spec.min), ("/spec/maxReplicas", max, spec.max)] {
        if old != new {
            ops.push(test(path, json!(old)));
            ops.push(json!({ "op": "replace", "path": path, "value": new }));
        }
    }
    let wanted = match (metrics, spec.target_cpu) {
        (Some(m), _) => Some(m.to_vec()),
        (None, Some(cpu)) => Some(metrics_with_cpu(live_metrics, cpu)),
        (None, None) => None,
    };
    if let Some(wanted) = wanted
        && wanted != live_metrics
    {
        if live_metrics.is_empty() {
            ops.push(json!({ "op": "add", "path": "/spec/metrics", "value": wanted }));
        } else {
            ops.push(test("/spec/metrics", json!(live_metrics)));
            ops.push(json!({ "op": "replace", "path": "/spec/metrics", "value": wanted }));
        }
    }
    ops
}

/// A new autoscaling/v2 HorizontalPodAutoscaler (R10, R12). Without a CPU target or metrics list
/// the API server sets its default (80 % CPU).
pub fn hpa(namespace: &str, name: &str, target: &TargetRef, spec: &HpaSpec, metrics: Option<&[Value]>) -> Value {
    let mut s = json!({
        "scaleTargetRef": { "apiVersion": "apps/v1", "kind": target.kind.as_str(), "name": target.name },
        "minReplicas": spec.min,
        "maxReplicas": spec.max,
    });
    if let Some(m) = metrics {
        s["metrics"] = json!(m);
    } else if let Some(cpu) = spec.target_cpu {
        s["metrics"] = json!([cpu_metric(cpu)]);
    }
    json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": { "name": name, "namespace": namespace },
        "spec": s
    })
}

/// How an op is sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// `kubectl patch RESOURCE/NAME --type=json -p PATCH` (`None`: a preview without a live read,
    /// the patch is computed at execution).
    Patch { resource: String, name: String, patch: Option<Vec<Value>> },
    /// `kubectl create -f -` of a new object.
    Create(Value),
}

/// The change that carries out a resources or HPA op (`None` for deletes and scales).
pub fn change_for(namespace: &str, op: &Op) -> Option<Change> {
    match op {
        Op::Resources { kind, name, container, init, requests, limits, slot } => Some(Change::Patch {
            resource: kind.qualified_resource().to_string(),
            name: name.clone(),
            patch: slot
                .as_ref()
                .zip(container.as_deref())
                .map(|(slot, c)| resources_patch(*init, c, slot, requests, limits)),
        }),
        Op::Hpa { name, target, spec, metrics, base } => match base {
            HpaBase::Absent => Some(Change::Create(hpa(namespace, name, target, spec, metrics.as_deref()))),
            HpaBase::Live { min, max, metrics: live } => Some(Change::Patch {
                resource: HPA_RESOURCE.into(),
                name: name.clone(),
                patch: Some(hpa_patch(target, spec, metrics.as_deref(), (*min, *max, live))),
            }),
            HpaBase::Unknown => Some(Change::Patch { resource: HPA_RESOURCE.into(), name: name.clone(), patch: None }),
        },
        Op::DeleteHpa { .. } | Op::Scale { .. } => None,
    }
}

/// The fully qualified HPA resource (no other group's `horizontalpodautoscalers` is meant).
pub const HPA_RESOURCE: &str = "horizontalpodautoscalers.autoscaling";

/// Objects as a multi-document stream for `kubectl create -f -`: one JSON document (valid YAML)
/// per object, each validated against its own type.
pub fn stream(items: &[Value]) -> String {
    items.iter().map(|i| format!("---\n{i}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::WorkloadKind;
    use crate::quantity::Quantity;

    fn q(s: &str) -> Option<Quantity> {
        Quantity::parse(s).ok()
    }

    #[test]
    fn a_resources_patch_tests_and_sends_only_the_keys_that_change() {
        let slot = Slot {
            index: 1,
            requests: ResourceList { cpu: q("250m"), memory: q("256Mi") },
            limits: ResourceList::default(),
        };
        let requests = ResourceList { cpu: q("500m"), memory: q("256Mi") };
        let limits = ResourceList { cpu: None, memory: q("1Gi") };
        let ops = resources_patch(false, "app", &slot, &requests, &limits);
        assert_eq!(
            Value::Array(ops),
            json!([
                {"op": "test", "path": "/spec/template/spec/containers/1/name", "value": "app"},
                {"op": "test", "path": "/spec/template/spec/containers/1/resources/requests/cpu", "value": "250m"},
                {"op": "replace", "path": "/spec/template/spec/containers/1/resources/requests/cpu", "value": "500m"},
                {"op": "add", "path": "/spec/template/spec/containers/1/resources/limits", "value": {"memory": "1Gi"}},
            ])
        );
        // The restore: back to the snapshot, the added limits removed; numerically equal keys untouched.
        let after = Slot { index: 1, requests: requests.clone(), limits: limits.clone() };
        let back = resources_patch(
            false,
            "app",
            &after,
            &ResourceList { cpu: q("0.25"), memory: q("256Mi") },
            &ResourceList::default(),
        );
        assert_eq!(back[2]["value"], "0.25");
        assert_eq!(back.last().map(|o| o["op"].clone()), Some(json!("remove")));
        assert!(!back.iter().any(|o| o["path"].as_str().is_some_and(|p| p.ends_with("requests/memory"))));
        let init = resources_patch(true, "proxy", &slot, &requests, &limits);
        assert_eq!(init[0]["path"], "/spec/template/spec/initContainers/1/name");
    }

    #[test]
    fn a_cpu_change_keeps_the_other_metrics_of_the_atomic_list() {
        let memory = json!({"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 75}}});
        let pods = json!({"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "10"}}});
        let live = vec![memory.clone(), cpu_metric(80), pods.clone()];
        assert_eq!(metrics_with_cpu(&live, 65), vec![memory.clone(), cpu_metric(65), pods.clone()]);
        assert_eq!(metrics_with_cpu(std::slice::from_ref(&memory), 65), vec![memory.clone(), cpu_metric(65)]);

        let t = TargetRef { kind: WorkloadKind::Deployment, name: "web".into() };
        let ops = hpa_patch(&t, &HpaSpec { min: 2, max: 10, target_cpu: Some(65) }, None, (2, 5, &live));
        let paths: Vec<&str> = ops.iter().filter(|o| o["op"] != "test").filter_map(|o| o["path"].as_str()).collect();
        assert_eq!(paths, ["/spec/maxReplicas", "/spec/metrics"], "min is unchanged and not sent");
        // No CPU target: the metrics are not sent at all.
        let bounds = hpa_patch(&t, &HpaSpec { min: 3, max: 5, target_cpu: None }, None, (2, 5, &live));
        assert!(!bounds.iter().any(|o| o["path"] == "/spec/metrics"));
        // A restore sets the exact list back.
        let exact = hpa_patch(
            &t,
            &HpaSpec { min: 2, max: 5, target_cpu: None },
            Some(std::slice::from_ref(&memory)),
            (2, 5, &live),
        );
        assert_eq!(exact.last().map(|o| o["value"].clone()), Some(json!([memory])));
    }

    #[test]
    fn a_new_hpa_is_autoscaling_v2() {
        let t = TargetRef { kind: WorkloadKind::Deployment, name: "web".into() };
        let m = hpa("ns", "web", &t, &HpaSpec { min: 4, max: 12, target_cpu: Some(65) }, None);
        assert_eq!(m["apiVersion"], "autoscaling/v2");
        assert_eq!(m["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 65);
        let bare = hpa("ns", "web", &t, &HpaSpec { min: 1, max: 3, target_cpu: None }, None);
        assert!(bare["spec"].get("metrics").is_none());
    }
}
