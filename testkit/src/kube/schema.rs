//! Known fields of the served types, for the apiserver's unknown-field handling: an apply patch with
//! an undeclared field fails ("field not declared in schema"), other writes fail under
//! `fieldValidation=Strict` ("strict decoding error: unknown field") and otherwise lose the field, as
//! the real decoder drops it. Subtrees infra-scale never writes (affinity, probes, volumes…) are open.

use super::merge::merge_key;
use serde_json::Value;

/// The shape of a field.
pub enum Node {
    /// Anything (not checked).
    Any,
    /// An object with exactly these fields.
    Obj(&'static [(&'static str, Node)]),
    /// A list of elements of this shape.
    List(&'static Node),
}

use Node::{Any, List, Obj};

const OBJECT_META: Node = Obj(&[
    ("name", Any),
    ("generateName", Any),
    ("namespace", Any),
    ("selfLink", Any),
    ("uid", Any),
    ("resourceVersion", Any),
    ("generation", Any),
    ("creationTimestamp", Any),
    ("deletionTimestamp", Any),
    ("deletionGracePeriodSeconds", Any),
    ("labels", Any),
    ("annotations", Any),
    ("ownerReferences", Any),
    ("finalizers", Any),
    ("managedFields", Any),
]);

const RESOURCES: Node = Obj(&[("limits", Any), ("requests", Any), ("claims", Any)]);

const CONTAINER: Node = Obj(&[
    ("name", Any),
    ("image", Any),
    ("command", Any),
    ("args", Any),
    ("workingDir", Any),
    ("ports", Any),
    ("envFrom", Any),
    ("env", Any),
    ("resources", RESOURCES),
    ("resizePolicy", Any),
    ("restartPolicy", Any),
    ("volumeMounts", Any),
    ("volumeDevices", Any),
    ("livenessProbe", Any),
    ("readinessProbe", Any),
    ("startupProbe", Any),
    ("lifecycle", Any),
    ("terminationMessagePath", Any),
    ("terminationMessagePolicy", Any),
    ("imagePullPolicy", Any),
    ("securityContext", Any),
    ("stdin", Any),
    ("stdinOnce", Any),
    ("tty", Any),
]);

const POD_SPEC: Node = Obj(&[
    ("volumes", Any),
    ("initContainers", List(&CONTAINER)),
    ("containers", List(&CONTAINER)),
    ("ephemeralContainers", Any),
    ("restartPolicy", Any),
    ("terminationGracePeriodSeconds", Any),
    ("activeDeadlineSeconds", Any),
    ("dnsPolicy", Any),
    ("nodeSelector", Any),
    ("serviceAccountName", Any),
    ("serviceAccount", Any),
    ("automountServiceAccountToken", Any),
    ("nodeName", Any),
    ("hostNetwork", Any),
    ("hostPID", Any),
    ("hostIPC", Any),
    ("shareProcessNamespace", Any),
    ("securityContext", Any),
    ("imagePullSecrets", Any),
    ("hostname", Any),
    ("subdomain", Any),
    ("affinity", Any),
    ("schedulerName", Any),
    ("tolerations", Any),
    ("hostAliases", Any),
    ("priorityClassName", Any),
    ("priority", Any),
    ("dnsConfig", Any),
    ("readinessGates", Any),
    ("runtimeClassName", Any),
    ("enableServiceLinks", Any),
    ("preemptionPolicy", Any),
    ("overhead", Any),
    ("topologySpreadConstraints", Any),
    ("setHostnameAsFQDN", Any),
    ("os", Any),
    ("hostUsers", Any),
    ("schedulingGates", Any),
    ("resourceClaims", Any),
    ("resources", RESOURCES),
]);

const TEMPLATE: Node = Obj(&[("metadata", OBJECT_META), ("spec", POD_SPEC)]);

const DEPLOYMENT: Node = Obj(&[
    ("apiVersion", Any),
    ("kind", Any),
    ("metadata", OBJECT_META),
    (
        "spec",
        Obj(&[
            ("replicas", Any),
            ("selector", Any),
            ("template", TEMPLATE),
            ("strategy", Any),
            ("minReadySeconds", Any),
            ("revisionHistoryLimit", Any),
            ("paused", Any),
            ("progressDeadlineSeconds", Any),
        ]),
    ),
    ("status", Any),
]);

const STATEFULSET: Node = Obj(&[
    ("apiVersion", Any),
    ("kind", Any),
    ("metadata", OBJECT_META),
    (
        "spec",
        Obj(&[
            ("replicas", Any),
            ("selector", Any),
            ("template", TEMPLATE),
            ("volumeClaimTemplates", Any),
            ("serviceName", Any),
            ("podManagementPolicy", Any),
            ("updateStrategy", Any),
            ("revisionHistoryLimit", Any),
            ("minReadySeconds", Any),
            ("persistentVolumeClaimRetentionPolicy", Any),
            ("ordinals", Any),
        ]),
    ),
    ("status", Any),
]);

const TARGET_REF: Node = Obj(&[("apiVersion", Any), ("kind", Any), ("name", Any)]);

const METRIC_TARGET: Node = Obj(&[("type", Any), ("value", Any), ("averageValue", Any), ("averageUtilization", Any)]);

const SCALING_RULES: Node = Obj(&[
    ("stabilizationWindowSeconds", Any),
    ("selectPolicy", Any),
    ("policies", List(&Obj(&[("type", Any), ("value", Any), ("periodSeconds", Any)]))),
    ("tolerance", Any),
]);

const HPA_V2: Node = Obj(&[
    ("apiVersion", Any),
    ("kind", Any),
    ("metadata", OBJECT_META),
    (
        "spec",
        Obj(&[
            ("scaleTargetRef", TARGET_REF),
            ("minReplicas", Any),
            ("maxReplicas", Any),
            (
                "metrics",
                List(&Obj(&[
                    ("type", Any),
                    ("object", Any),
                    ("pods", Any),
                    ("resource", Obj(&[("name", Any), ("target", METRIC_TARGET)])),
                    ("containerResource", Obj(&[("name", Any), ("target", METRIC_TARGET), ("container", Any)])),
                    ("external", Any),
                ])),
            ),
            ("behavior", Obj(&[("scaleUp", SCALING_RULES), ("scaleDown", SCALING_RULES)])),
        ]),
    ),
    ("status", Any),
]);

const HPA_V1: Node = Obj(&[
    ("apiVersion", Any),
    ("kind", Any),
    ("metadata", OBJECT_META),
    (
        "spec",
        Obj(&[
            ("scaleTargetRef", TARGET_REF),
            ("minReplicas", Any),
            ("maxReplicas", Any),
            ("targetCPUUtilizationPercentage", Any),
        ]),
    ),
    ("status", Any),
]);

/// The schema of a served group/version/kind, when the fake knows it.
pub fn schema(api_version: &str, kind: &str) -> Option<&'static Node> {
    match (api_version, kind) {
        ("apps/v1", "Deployment") => Some(&DEPLOYMENT),
        ("apps/v1", "StatefulSet") => Some(&STATEFULSET),
        ("autoscaling/v2", "HorizontalPodAutoscaler") => Some(&HPA_V2),
        ("autoscaling/v1", "HorizontalPodAutoscaler") => Some(&HPA_V1),
        _ => None,
    }
}

/// Path style of the reports: `spec.containers[0].x` (decoder) or `.spec.containers[name="a"].x` (apply).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Decoder,
    Apply,
}

/// The unknown fields of `value`, as paths in the given style. Patch directives (`$patch`,
/// `$setElementOrder/…`) are not fields.
pub fn unknown_fields(value: &Value, node: &Node, style: Style) -> Vec<String> {
    let mut out = Vec::new();
    walk(value, node, style, "", "", &mut out);
    out
}

fn walk(value: &Value, node: &Node, style: Style, path: &str, field: &str, out: &mut Vec<String>) {
    match (node, value) {
        (Obj(fields), Value::Object(map)) => {
            for (k, v) in map {
                if k.starts_with('$') {
                    continue;
                }
                let child = if path.is_empty() && style == Style::Decoder { k.clone() } else { format!("{path}.{k}") };
                match fields.iter().find(|(name, _)| name == k) {
                    Some((_, n)) => walk(v, n, style, &child, k, out),
                    None => out.push(child),
                }
            }
        }
        (List(item), Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                let key = merge_key(field).and_then(|mk| v.get(mk).map(|id| (mk, id)));
                let child = match (style, key) {
                    (Style::Apply, Some((mk, id))) => format!("{path}[{mk}={id}]"),
                    _ => format!("{path}[{i}]"),
                };
                walk(v, item, style, &child, field, out);
            }
        }
        _ => {}
    }
}

/// Drops the unknown fields, as the decoder does when validation is not strict.
pub fn prune(value: &mut Value, node: &Node) {
    match (node, value) {
        (Obj(fields), Value::Object(map)) => {
            map.retain(|k, _| k.starts_with('$') || fields.iter().any(|(name, _)| name == k));
            for (k, v) in map.iter_mut() {
                if let Some((_, n)) = fields.iter().find(|(name, _)| name == k) {
                    prune(v, n);
                }
            }
        }
        (List(item), Value::Array(items)) => {
            for v in items {
                prune(v, item);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_unknown_fields_in_both_styles() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": [{"name": "web", "resourcez": {}}]}}, "replica": 3}});
        let node = schema("apps/v1", "Deployment").unwrap();
        assert_eq!(
            unknown_fields(&d, node, Style::Decoder),
            vec!["spec.replica", "spec.template.spec.containers[0].resourcez"]
        );
        assert_eq!(
            unknown_fields(&d, node, Style::Apply),
            vec![".spec.replica", ".spec.template.spec.containers[name=\"web\"].resourcez"]
        );
        let hpa = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "spec": {"targetCPUUtilizationPercentage": 65, "maxReplicas": 3}});
        let node = schema("autoscaling/v2", "HorizontalPodAutoscaler").unwrap();
        assert_eq!(unknown_fields(&hpa, node, Style::Decoder), vec!["spec.targetCPUUtilizationPercentage"]);
        let mut pruned = hpa.clone();
        prune(&mut pruned, node);
        assert_eq!(pruned["spec"], json!({"maxReplicas": 3}));
    }
}
