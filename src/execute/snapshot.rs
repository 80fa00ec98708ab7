//! The live state of the plan's namespace, read with ONE kubectl call: every Deployment,
//! StatefulSet, HorizontalPodAutoscaler (HPAs are matched to workloads by scaleTargetRef, R16) and
//! ResourceQuota (`status.hard`/`status.used`, for the admission check's quota totals).
//! The same call is the rollout poll and the final read; the raw objects (`ClusterState::objects`)
//! give rollout status and field owners.

use serde_json::Value;

use crate::kubectl::KubectlError;
use crate::observed::{self, ClusterState};
use crate::plan::WorkloadKind;

use super::Session;

/// The resource types read: the same as `plan --detect` reads.
pub const TYPES: &str = observed::GET_TYPES;

/// One read of the namespace.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub state: ClusterState,
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
    /// The raw object of a workload (for rollout status and field owners).
    pub fn raw(&self, kind: WorkloadKind, name: &str) -> Option<&Value> {
        self.state.object(kind.as_str(), name)
    }

    /// The raw object of an HPA.
    pub fn raw_hpa(&self, name: &str) -> Option<&Value> {
        self.state.object("HorizontalPodAutoscaler", name)
    }
}

/// `kubectl get deployments.apps,statefulsets.apps,horizontalpodautoscalers.autoscaling,resourcequotas -n NS -o json`,
/// with `--show-managed-fields` when the owners of the fields are needed (the snapshot before a
/// change; not the rollout polls).
pub fn args(namespace: &str, owners: bool) -> Vec<String> {
    let mut args = super::strings(&["get", TYPES, "-n", namespace, "-o", "json"]);
    if owners {
        args.push("--show-managed-fields".into());
    }
    args
}

/// Reads the namespace (with managedFields when `owners`).
pub fn read_with(session: &Session, namespace: &str, purpose: &str, owners: bool) -> Result<Snapshot, ReadError> {
    let list = session.get_json(purpose, &args(namespace, owners))?;
    let shape = |detail: String| ReadError::Shape { namespace: namespace.to_string(), detail };
    let state = observed::parse_list(&list).map_err(shape)?;
    Ok(Snapshot { state })
}

/// Reads the namespace without managedFields.
pub fn read(session: &Session, namespace: &str, purpose: &str) -> Result<Snapshot, ReadError> {
    read_with(session, namespace, purpose, false)
}
