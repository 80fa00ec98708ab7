//! The objects infra-scale applies with server-side apply, as JSON (kubectl reads JSON on `-f -`):
//! a partial workload naming only the target container (SSA merges `containers` by name, so the
//! other containers and every other field stay as they are) and an autoscaling/v2 HPA. All of
//! them go to kubectl as one multi-document stream on stdin.

use serde_json::{Map, Value, json};

use crate::plan::{HpaSpec, ResourceList, TargetRef, WorkloadKind};
use crate::quantity::Resource;

use super::resolve::Op;

fn quantities(list: &ResourceList) -> Value {
    let mut map = Map::new();
    for r in [Resource::Cpu, Resource::Memory] {
        if let Some(q) = list.get(r) {
            // Always `memory`, never the prototype's `mem` (R1); quantities as strings.
            map.insert(r.name().to_string(), Value::String(q.as_str().to_string()));
        }
    }
    Value::Object(map)
}

/// A partial Deployment/StatefulSet: only `container`'s requests and limits. Every key listed is
/// owned by the field manager afterwards; a key it owned and no longer lists is removed.
pub fn workload_resources(
    namespace: &str,
    kind: WorkloadKind,
    name: &str,
    container: &str,
    init: bool,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Value {
    let mut resources = Map::new();
    if !requests.is_empty() {
        resources.insert("requests".into(), quantities(requests));
    }
    if !limits.is_empty() {
        resources.insert("limits".into(), quantities(limits));
    }
    let list = if init { "initContainers" } else { "containers" };
    json!({
        "apiVersion": "apps/v1",
        "kind": kind.as_str(),
        "metadata": { "name": name, "namespace": namespace },
        "spec": { "template": { "spec": { list: [ { "name": container, "resources": resources } ] } } }
    })
}

/// An autoscaling/v2 HorizontalPodAutoscaler (R10, R12). Without a CPU target the metrics are
/// left to whoever manages them (a new HPA then gets the API server's default, 80 % CPU).
pub fn hpa(namespace: &str, name: &str, target: &TargetRef, spec: &HpaSpec) -> Value {
    let mut s = json!({
        "scaleTargetRef": { "apiVersion": "apps/v1", "kind": target.kind.as_str(), "name": target.name },
        "minReplicas": spec.min,
        "maxReplicas": spec.max,
    });
    if let Some(cpu) = spec.target_cpu {
        s["metrics"] = json!([{
            "type": "Resource",
            "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": cpu } }
        }]);
    }
    json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": { "name": name, "namespace": namespace },
        "spec": s
    })
}

/// The manifest of a server-side-applied op (`None` for deletes and scales, and for a resources
/// op whose container is still unknown).
pub fn for_op(namespace: &str, op: &Op) -> Option<Value> {
    match op {
        Op::Resources { kind, name, container, init, requests, limits } => {
            Some(workload_resources(namespace, *kind, name, container.as_deref()?, *init, requests, limits))
        }
        Op::Hpa { name, target, spec } => Some(hpa(namespace, name, target, spec)),
        Op::DeleteHpa { .. } | Op::Scale { .. } => None,
    }
}

/// Objects as a multi-document stream for `kubectl apply -f -`: one JSON document (valid YAML)
/// per object. kubectl splits the stream before validating, so each object is validated against
/// its own type (a `v1 List` wrapper would itself be validated as an object first).
pub fn stream(items: &[Value]) -> String {
    items.iter().map(|i| format!("---\n{i}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantity::Quantity;

    fn q(s: &str) -> Option<Quantity> {
        Quantity::parse(s).ok()
    }

    #[test]
    fn partial_workload_names_only_the_target_container_and_says_memory() {
        let requests = ResourceList { cpu: q("500m"), memory: q("1Gi") };
        let limits = ResourceList { cpu: q("1"), memory: None };
        let m = workload_resources("ns", WorkloadKind::Deployment, "web", "app", false, &requests, &limits);
        assert_eq!(
            m["spec"]["template"]["spec"]["containers"],
            json!([{"name": "app", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1"}}}])
        );
        assert!(m["spec"].get("replicas").is_none(), "replicas are never applied");
        let side = workload_resources("ns", WorkloadKind::StatefulSet, "db", "proxy", true, &requests, &limits);
        assert!(side["spec"]["template"]["spec"]["initContainers"].is_array());
    }

    #[test]
    fn hpa_is_autoscaling_v2_with_a_utilization_target() {
        let t = TargetRef { kind: WorkloadKind::Deployment, name: "web".into() };
        let m = hpa("ns", "web", &t, &HpaSpec { min: 4, max: 12, target_cpu: Some(65) });
        assert_eq!(m["apiVersion"], "autoscaling/v2");
        assert_eq!(m["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 65);
        let bare = hpa("ns", "web", &t, &HpaSpec { min: 1, max: 3, target_cpu: None });
        assert!(bare["spec"].get("metrics").is_none());
    }
}
