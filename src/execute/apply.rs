//! Reading kubectl's failures during the changing stages, and describing exactly what changed
//! between two reads of the cluster (for the exit-4 message).

use crate::error::Error;
use crate::kubectl::KubectlError;
use crate::observed::ClusterState;

use super::resolve::{Op, live_container};

/// Whether kubectl's failure is the API server answering no (rather than kubectl failing to ask).
pub fn server_said_no(e: &KubectlError) -> bool {
    match e {
        KubectlError::Failed { stderr, .. } => {
            stderr.contains("Error from server")
                || stderr.contains("is invalid")
                || stderr.contains("The request is invalid")
                || stderr.contains("is forbidden")
        }
        _ => false,
    }
}

/// What kubectl prints when a JSON patch's `test` fails: the value it replaces is no longer the
/// one read in the snapshot (the server answers 422 without naming the field).
fn test_failed(e: &KubectlError) -> bool {
    matches!(e, KubectlError::Failed { stderr, .. }
        if stderr.contains("The request is invalid: the server rejected our request due to an error in our request"))
}

fn forbidden(e: &KubectlError) -> bool {
    matches!(e, KubectlError::Failed { stderr, .. } if stderr.contains("is forbidden"))
}

/// The error for a failed server-side dry run: nothing was changed either way. The API server
/// rejecting the change (validation, admission, RBAC, a value that moved since the snapshot) is a
/// refusal (exit 3); kubectl not reaching it is a failure (exit 1).
pub fn dry_run_error(rejected: Vec<KubectlError>) -> Error {
    let text = rejected.iter().map(|e| indent(&e.to_string())).collect::<Vec<_>>().join("\n");
    if let Some(e) = rejected.iter().find(|e| !server_said_no(e)) {
        return Error::Failed(anyhow::anyhow!("{e}; nothing was changed"));
    }
    let help = if rejected.iter().any(test_failed) {
        "nothing was changed; a value this plan replaces changed after the snapshot was read (the patch tests \
         every value it replaces): re-run, or make a new plan from the live state"
    } else if rejected.iter().any(forbidden) {
        "nothing was changed; the credentials lack the permission the API server names above (verb, resource, \
         namespace): grant it to the identity of this kubeconfig, or use one that has it"
    } else {
        "nothing was changed; the API server's message above names the object and the field — fix the plan \
         (or the namespace's quota/admission policy) and re-run"
    };
    Error::refused(format!("the API server rejected the change in a server-side dry run:\n{text}"), help)
}

/// One line for a change that failed after the dry run passed.
pub fn change_error(e: &KubectlError) -> String {
    if test_failed(e) {
        format!("{e} (a value this plan replaces changed after the dry run; the object was left as it was)")
    } else {
        e.to_string()
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

/// `Deployment/web container app: requests cpu=250m → cpu=500m,memory=1Gi; limits none → cpu=1`.
pub fn describe_change(op: &Op, before: &ClusterState, now: &ClusterState) -> String {
    match op {
        Op::Scale { kind, name, .. } => {
            let get =
                |s: &ClusterState| s.workload(*kind, name).map(|w| w.replicas.to_string()).unwrap_or("gone".into());
            format!("{kind}/{name} replicas {} → {}", get(before), get(now))
        }
        Op::Resources { kind, name, container, .. } => {
            let c = container.as_deref().unwrap_or("?");
            let get = |s: &ClusterState| {
                s.workload(*kind, name)
                    .and_then(|w| live_container(w, c))
                    .map(|x| (x.requests.describe(), x.limits.describe()))
            };
            match (get(before), get(now)) {
                (Some((rb, lb)), Some((rn, ln))) => {
                    let mut parts = Vec::new();
                    if rb != rn {
                        parts.push(format!("requests {rb} → {rn}"));
                    }
                    if lb != ln {
                        parts.push(format!("limits {lb} → {ln}"));
                    }
                    format!("{kind}/{name} container {c}: {}", parts.join("; "))
                }
                _ => format!("{kind}/{name} container {c}: changed"),
            }
        }
        Op::Hpa { name, .. } | Op::DeleteHpa { name } => {
            let get = |s: &ClusterState| {
                s.hpas
                    .iter()
                    .find(|h| h.object.name == *name)
                    .map(|h| {
                        let cpu = h.object.spec.target_cpu.map(|c| format!(" cpu={c}%")).unwrap_or_default();
                        format!("min={} max={}{cpu}", h.object.spec.min, h.object.spec.max)
                    })
                    .unwrap_or_else(|| "absent".into())
            };
            format!("HorizontalPodAutoscaler/{name}: {} → {}", get(before), get(now))
        }
    }
}
