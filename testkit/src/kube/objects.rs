//! Object shapes: fixture builders, the apiserver's defaulting, rollout status as the controllers would
//! report it, and autoscaling/v1 ⇄ v2 conversion of HorizontalPodAutoscalers.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// One container of a workload fixture: name, image, requests and limits (quantity strings as written).
#[derive(Clone, Debug, Default)]
pub struct Container {
    pub name: String,
    pub image: String,
    pub requests: BTreeMap<String, String>,
    pub limits: BTreeMap<String, String>,
    /// Goes to `initContainers` instead of `containers`.
    pub init: bool,
    /// `restartPolicy` of an init container (`Always` makes it a native sidecar).
    pub restart_policy: Option<String>,
}

impl Container {
    /// A container named `name` with image `registry.local/<name>:1.0` and no resources.
    pub fn new(name: &str) -> Container {
        Container { name: name.to_string(), image: format!("registry.local/{name}:1.0"), ..Container::default() }
    }

    /// Sets the image.
    pub fn image(mut self, image: &str) -> Container {
        self.image = image.to_string();
        self
    }

    /// Adds a request, e.g. `.request("cpu", "250m")`.
    pub fn request(mut self, resource: &str, quantity: &str) -> Container {
        self.requests.insert(resource.to_string(), quantity.to_string());
        self
    }

    /// Adds a limit, e.g. `.limit("memory", "512Mi")`.
    pub fn limit(mut self, resource: &str, quantity: &str) -> Container {
        self.limits.insert(resource.to_string(), quantity.to_string());
        self
    }

    /// Makes it an init container.
    pub fn init(mut self) -> Container {
        self.init = true;
        self
    }

    /// Makes it a native sidecar: an init container with `restartPolicy: Always`.
    pub fn sidecar(mut self) -> Container {
        self.init = true;
        self.restart_policy = Some("Always".to_string());
        self
    }

    fn to_json(&self) -> Value {
        let mut c = json!({"name": self.name, "image": self.image});
        let mut resources = Map::new();
        if !self.requests.is_empty() {
            resources.insert("requests".to_string(), json!(self.requests));
        }
        if !self.limits.is_empty() {
            resources.insert("limits".to_string(), json!(self.limits));
        }
        c["resources"] = Value::Object(resources);
        if let Some(p) = &self.restart_policy {
            c["restartPolicy"] = json!(p);
        }
        c
    }
}

/// RFC 3339 UTC timestamp of now, second precision.
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// A Deployment or StatefulSet fixture (without server-managed metadata, which the store adds).
pub fn workload(kind: &str, namespace: &str, name: &str, replicas: i64, containers: &[Container]) -> Value {
    let app: Vec<Value> = containers.iter().filter(|c| !c.init).map(Container::to_json).collect();
    let init: Vec<Value> = containers.iter().filter(|c| c.init).map(Container::to_json).collect();
    let mut pod_spec = json!({ "containers": app });
    if !init.is_empty() {
        pod_spec["initContainers"] = Value::Array(init);
    }
    let mut obj = json!({
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}
        }
    });
    if kind == "StatefulSet" {
        obj["spec"]["serviceName"] = json!(name);
    }
    obj
}

/// An autoscaling/v2 HorizontalPodAutoscaler fixture with an optional CPU utilization target.
pub fn hpa(
    namespace: &str,
    name: &str,
    target_kind: &str,
    target_name: &str,
    min: i64,
    max: i64,
    cpu_percent: Option<i64>,
) -> Value {
    let mut obj = json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": target_kind, "name": target_name},
            "minReplicas": min,
            "maxReplicas": max
        }
    });
    if let Some(p) = cpu_percent {
        obj["spec"]["metrics"] = json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": p}}}]);
    }
    obj
}

/// A ResourceQuota fixture with `spec.hard`, `status.hard` and `status.used`.
pub fn resource_quota(namespace: &str, name: &str, hard: &[(&str, &str)], used: &[(&str, &str)]) -> Value {
    let hard: Map<String, Value> = hard.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let used: Map<String, Value> = used.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    json!({
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"hard": hard},
        "status": {"hard": hard, "used": used}
    })
}

fn set_default(map: &mut Value, key: &str, value: Value) {
    if let Value::Object(m) = map
        && !m.contains_key(key)
    {
        m.insert(key.to_string(), value);
    }
}

/// Fills the defaults the apiserver adds on every write (a subset of `SetDefaults_*`), so that what
/// kubectl reads back looks like a real object, and a no-op check that compares with the applied
/// manifest has to cope with them.
pub fn apply_defaults(storage: &str, obj: &mut Value) {
    match storage {
        "apps/deployments" | "apps/statefulsets" => {
            let spec = &mut obj["spec"];
            set_default(spec, "replicas", json!(1));
            set_default(spec, "revisionHistoryLimit", json!(10));
            if storage == "apps/deployments" {
                set_default(spec, "progressDeadlineSeconds", json!(600));
                set_default(
                    spec,
                    "strategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
                );
            } else {
                set_default(spec, "podManagementPolicy", json!("OrderedReady"));
                set_default(
                    spec,
                    "updateStrategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
                );
                set_default(
                    spec,
                    "persistentVolumeClaimRetentionPolicy",
                    json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
                );
            }
            if !spec["template"].is_object() {
                return;
            }
            let pod = &mut spec["template"]["spec"];
            if !pod.is_object() {
                return;
            }
            set_default(pod, "restartPolicy", json!("Always"));
            set_default(pod, "terminationGracePeriodSeconds", json!(30));
            set_default(pod, "dnsPolicy", json!("ClusterFirst"));
            set_default(pod, "securityContext", json!({}));
            set_default(pod, "schedulerName", json!("default-scheduler"));
            for list in ["containers", "initContainers"] {
                if let Some(Value::Array(cs)) = pod.get_mut(list) {
                    for c in cs {
                        let latest = c["image"].as_str().is_some_and(|i| !i.contains(':') || i.ends_with(":latest"));
                        set_default(c, "imagePullPolicy", json!(if latest { "Always" } else { "IfNotPresent" }));
                        set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
                        set_default(c, "terminationMessagePolicy", json!("File"));
                        set_default(c, "resources", json!({}));
                    }
                }
            }
        }
        "autoscaling/horizontalpodautoscalers" => {
            let spec = &mut obj["spec"];
            set_default(spec, "minReplicas", json!(1));
            let no_metrics = spec.get("metrics").and_then(Value::as_array).is_none_or(Vec::is_empty);
            if no_metrics {
                spec["metrics"] = json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]);
            }
            // SetDefaults_HorizontalPodAutoscalerBehavior: only when a behavior is given.
            if spec["behavior"].is_object() {
                let b = &mut spec["behavior"];
                set_default(b, "scaleUp", json!({}));
                set_default(b, "scaleDown", json!({}));
                let up = &mut b["scaleUp"];
                set_default(up, "stabilizationWindowSeconds", json!(0));
                set_default(up, "selectPolicy", json!("Max"));
                set_default(
                    up,
                    "policies",
                    json!([{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]),
                );
                let down = &mut b["scaleDown"];
                set_default(down, "stabilizationWindowSeconds", json!(300));
                set_default(down, "selectPolicy", json!("Max"));
                set_default(down, "policies", json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]));
            }
        }
        _ => {}
    }
}

/// How a workload's rollout progresses after a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rollout {
    /// Status converges in the same write (default).
    Immediate,
    /// Status shows the rollout in progress, then converges after this many milliseconds (a watch
    /// sees a MODIFIED event).
    DelayedMs(u64),
    /// New pods never become available: `rollout status` waits until its timeout.
    Stuck,
    /// The Deployment reports `ProgressDeadlineExceeded`: `rollout status` fails at once.
    DeadlineExceeded,
    /// Like `Stuck`, and the Deployment carries a `ReplicaFailure` condition (reason `FailedCreate`)
    /// with this message, as when quota or LimitRange admission rejects the new pods.
    ReplicaFailure(String),
}

/// Short stable hash for revision names.
pub fn short_hash(v: &Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in v.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:010x}", h & 0xff_ffff_ffff)
}

/// Writes `status` for a Deployment or StatefulSet: converged when `settled`, otherwise as an
/// in-progress (or failed) rollout.
pub fn set_workload_status(storage: &str, obj: &mut Value, mode: &Rollout, settled: bool) {
    let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1);
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    let now = now_rfc3339();
    let converged = settled || *mode == Rollout::Immediate;
    if storage == "apps/statefulsets" {
        let update_revision = format!("{name}-{}", short_hash(&obj["spec"]["template"]));
        let previous = obj["status"]["currentRevision"].as_str().unwrap_or(&update_revision).to_string();
        let status = if converged {
            json!({
                "observedGeneration": generation, "replicas": replicas, "readyReplicas": replicas,
                "currentReplicas": replicas, "updatedReplicas": replicas, "availableReplicas": replicas,
                "currentRevision": update_revision, "updateRevision": update_revision, "collisionCount": 0
            })
        } else {
            let ready = (replicas - 1).max(0);
            json!({
                "observedGeneration": generation, "replicas": replicas, "readyReplicas": ready,
                "currentReplicas": ready, "updatedReplicas": i64::from(replicas > 0), "availableReplicas": ready,
                "currentRevision": previous, "updateRevision": update_revision, "collisionCount": 0
            })
        };
        obj["status"] = status;
        return;
    }
    let available_cond = |status: &str, reason: &str, message: &str| {
        json!({"type": "Available", "status": status, "reason": reason, "message": message,
               "lastUpdateTime": now, "lastTransitionTime": now})
    };
    let status = if converged {
        json!({
            "observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
            "readyReplicas": replicas, "availableReplicas": replicas,
            "conditions": [
                available_cond("True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                 "message": format!("ReplicaSet \"{name}-{}\" has successfully progressed.", &short_hash(&obj["spec"]["template"])[..8]),
                 "lastUpdateTime": now, "lastTransitionTime": now}
            ]
        })
    } else {
        let (progress_status, progress_reason, progress_message) = if *mode == Rollout::DeadlineExceeded {
            ("False", "ProgressDeadlineExceeded", format!("ReplicaSet \"{name}\" has timed out progressing."))
        } else {
            ("True", "ReplicaSetUpdated", format!("ReplicaSet \"{name}\" is progressing."))
        };
        let updated = i64::from(replicas > 0);
        let mut status = json!({
            "observedGeneration": generation, "replicas": replicas + updated, "updatedReplicas": updated,
            "readyReplicas": replicas, "availableReplicas": replicas, "unavailableReplicas": updated,
            "conditions": [
                available_cond("True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
                {"type": "Progressing", "status": progress_status, "reason": progress_reason,
                 "message": progress_message, "lastUpdateTime": now, "lastTransitionTime": now}
            ]
        });
        if let Rollout::ReplicaFailure(message) = mode
            && let Some(conditions) = status["conditions"].as_array_mut()
        {
            conditions.push(json!({"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                                   "message": message, "lastUpdateTime": now, "lastTransitionTime": now}));
        }
        status
    };
    obj["status"] = status;
}

/// HPA status as the controller would report it right after a sync.
pub fn set_hpa_status(obj: &mut Value, current_replicas: i64) {
    let now = now_rfc3339();
    obj["status"] = json!({
        "currentReplicas": current_replicas,
        "desiredReplicas": current_replicas,
        "currentMetrics": null,
        "conditions": [
            {"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale", "lastTransitionTime": now,
             "message": "recommended size matches current size"},
            {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound", "lastTransitionTime": now,
             "message": "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)"},
            {"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange", "lastTransitionTime": now,
             "message": "the desired count is within the acceptable range"}
        ]
    });
}

/// autoscaling/v2 (storage) → autoscaling/v1.
pub fn hpa_v2_to_v1(v2: &Value) -> Value {
    let mut v1 = json!({
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": v2["metadata"].clone(),
        "spec": {
            "scaleTargetRef": v2["spec"]["scaleTargetRef"].clone(),
            "minReplicas": v2["spec"]["minReplicas"].clone(),
            "maxReplicas": v2["spec"]["maxReplicas"].clone()
        },
        "status": {
            "currentReplicas": v2["status"]["currentReplicas"].as_i64().unwrap_or(0),
            "desiredReplicas": v2["status"]["desiredReplicas"].as_i64().unwrap_or(0)
        }
    });
    if let Some(metrics) = v2["spec"]["metrics"].as_array() {
        for m in metrics {
            if m["type"] == "Resource"
                && m["resource"]["name"] == "cpu"
                && m["resource"]["target"]["type"] == "Utilization"
            {
                v1["spec"]["targetCPUUtilizationPercentage"] = m["resource"]["target"]["averageUtilization"].clone();
            }
        }
    }
    v1
}

/// autoscaling/v1 → autoscaling/v2 (storage).
pub fn hpa_v1_to_v2(v1: &Value) -> Value {
    let mut v2 = json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": v1["metadata"].clone(),
        "spec": {
            "scaleTargetRef": v1["spec"]["scaleTargetRef"].clone(),
            "maxReplicas": v1["spec"]["maxReplicas"].clone()
        }
    });
    if let Some(min) = v1["spec"]["minReplicas"].as_i64() {
        v2["spec"]["minReplicas"] = json!(min);
    }
    if let Some(p) = v1["spec"]["targetCPUUtilizationPercentage"].as_i64() {
        v2["spec"]["metrics"] = json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": p}}}]);
    }
    v2
}

/// The `Scale` (autoscaling/v1) view of a Deployment or StatefulSet.
pub fn scale_of(obj: &Value) -> Value {
    let labels = obj["spec"]["selector"]["matchLabels"].as_object().cloned().unwrap_or_default();
    let selector: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": obj["metadata"]["name"],
            "namespace": obj["metadata"]["namespace"],
            "uid": obj["metadata"]["uid"],
            "resourceVersion": obj["metadata"]["resourceVersion"],
            "creationTimestamp": obj["metadata"]["creationTimestamp"]
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector.join(",")}
    })
}
