//! Reading kubectl's failures during the changing stages, and describing exactly what changed
//! between two reads of the cluster (for the exit-4 message).

use crate::error::Error;
use crate::kubectl::KubectlError;
use crate::observed::ClusterState;
use crate::plan::ResourceList;

use super::resolve::{Op, live_container};

/// Whether kubectl's failure is the API server answering no (rather than kubectl failing to ask).
pub fn server_said_no(e: &KubectlError) -> bool {
    match e {
        KubectlError::Failed { stderr, .. } => {
            stderr.contains("Error from server") || stderr.contains("conflict") || stderr.contains("is invalid")
        }
        _ => false,
    }
}

/// The error for a failed server-side dry run: nothing was changed either way. The API server
/// rejecting the change (validation, admission, quota, a field-ownership conflict) is a refusal
/// (exit 3); kubectl not reaching it is a failure (exit 1).
pub fn dry_run_error(e: KubectlError) -> Error {
    if !server_said_no(&e) {
        return Error::Failed(anyhow::anyhow!("{e}; nothing was changed"));
    }
    let conflict = matches!(&e, KubectlError::Failed { stderr, .. } if stderr.contains("conflict"));
    let help = if conflict {
        "nothing was changed; another field manager (named above) owns these fields and would revert the change \
         on its next sync: change them through that owner (GitOps, Helm, the chart's values)"
    } else {
        "nothing was changed; the API server's message above names the object and the field — fix the plan \
         (or the namespace's quota/admission policy) and re-run"
    };
    Error::refused(
        format!("the API server rejected the change in a server-side dry run:\n{}", indent(&e.to_string())),
        help,
    )
}

/// Field managers of one-off human edits (`kubectl create`, `edit`, `patch`, client-side `apply`,
/// ...): no controller re-applies their values, so the approved plan may take over the fields it
/// changes from them (issue 9, item 1). Anything else (Helm, Argo CD, Flux, operators) is an owner.
///
/// Not `kubectl-client-side-apply`: on an object carrying `last-applied-configuration`, kubectl's
/// server-side apply migrates all of that manager's fields to infra-scale, and the restore plan's
/// partial manifest then prunes them (kube-apiserver v1.34.4: `spec.selector: Required value`,
/// `spec.template.spec.containers[0].image: Required value`). Such objects stay refused until the
/// executor avoids the migration.
pub fn one_off_manager(manager: &str) -> bool {
    manager != "kubectl-client-side-apply" && (manager == "kubectl" || manager.starts_with("kubectl-"))
}

/// The managers a server-side apply conflict names (`conflicts with "NAME"`), deduplicated.
pub fn conflicting_managers(e: &KubectlError) -> Vec<String> {
    let KubectlError::Failed { stderr, .. } = e else { return Vec::new() };
    let mut out: Vec<String> = Vec::new();
    for part in stderr.split("conflicts with \"").skip(1) {
        if let Some(name) = part.split('"').next()
            && !out.iter().any(|m| m == name)
        {
            out.push(name.to_string());
        }
    }
    out
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

fn list(l: &ResourceList) -> String {
    if l.is_empty() { "none".into() } else { l.to_kubectl() }
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
                s.workload(*kind, name).and_then(|w| live_container(w, c)).map(|x| (list(&x.requests), list(&x.limits)))
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
