//! The live state of the plan's namespace, read with ONE kubectl call: every Deployment,
//! StatefulSet, HorizontalPodAutoscaler (HPAs are matched to workloads by scaleTargetRef, R16) and
//! ResourceQuota (`status.hard`/`status.used`, for the admission check's quota totals).
//! The same call is the rollout poll and the final read, so the raw items are kept for status.

use serde_json::Value;

use crate::kubectl::KubectlError;
use crate::observed::{self, ClusterState};
use crate::plan::WorkloadKind;

use super::Session;

/// The resource types read (fully qualified so that no other group's `deployments` is meant).
pub const TYPES: &str = "deployments.apps,statefulsets.apps,horizontalpodautoscalers.autoscaling,resourcequotas";

/// One read of the namespace.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub state: ClusterState,
    pub items: Vec<Value>,
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Kubectl(#[from] KubectlError),
    #[error("kubectl get {TYPES} -n {namespace} printed something infra-scale cannot read: {detail}")]
    Shape { namespace: String, detail: String },
}

impl Snapshot {
    /// The raw object of a workload (for rollout status).
    pub fn raw(&self, kind: WorkloadKind, name: &str) -> Option<&Value> {
        self.items.iter().find(|i| {
            i.get("kind").and_then(Value::as_str) == Some(kind.as_str())
                && i.pointer("/metadata/name").and_then(Value::as_str) == Some(name)
        })
    }
}

/// `kubectl get deployments.apps,statefulsets.apps,horizontalpodautoscalers.autoscaling,resourcequotas -n NS -o json`.
pub fn args(namespace: &str) -> Vec<String> {
    super::strings(&["get", TYPES, "-n", namespace, "-o", "json"])
}

/// Reads the namespace.
pub fn read(session: &Session, namespace: &str, purpose: &str) -> Result<Snapshot, ReadError> {
    let list = session.get_json(purpose, &args(namespace))?;
    let shape = |detail: String| ReadError::Shape { namespace: namespace.to_string(), detail };
    let state = observed::parse_list(&list).map_err(shape)?;
    let items = match list.get("items") {
        Some(Value::Array(items)) => items.clone(),
        _ => vec![list],
    };
    Ok(Snapshot { state, items })
}
