//! The restore plan: a ScalePlan that returns every object execution is about to touch to the
//! snapshot taken before it (R22–R25), written before the first change. Order (R25): HPAs first
//! (re-applied with their old bounds, or deleted when they did not exist) so that they stop
//! acting, then each container's resources exactly as they were (`restore_resources`), then
//! replicas, with a compare-and-swap on the count read when the restore runs.
//!
//! An HPA is restored with its whole `spec.metrics` list as it was (other metrics included, and
//! no CPU metric when it had none); its `behavior` is never changed, so it needs no restore.

use crate::observed::ClusterState;
use crate::plan::{
    Action, ApplyHpa, Assumptions, Context, DeleteHpa, Finding, HpaKind, Live, Metadata, RestoreResources, ScalePlan,
    ScaleWorkload, Severity, TargetRef, WorkloadKind,
};

use super::resolve::{Op, Step, live_container};

/// The restore plan for the pending `steps`, or `None` when nothing will change.
pub fn build(
    plan: &ScalePlan,
    kube_context: &str,
    before: &ClusterState,
    steps: &[Step],
    created_at: &str,
) -> Option<ScalePlan> {
    let ns = &plan.context.namespace;
    let ops: Vec<&Op> = steps.iter().filter(|s| s.pending()).filter_map(|s| s.op.as_ref()).collect();
    let mut hpas = Vec::new();
    let mut resources = Vec::new();
    let mut scales: Vec<(WorkloadKind, String)> = Vec::new();
    let risks = Vec::new();

    for op in &ops {
        match op {
            Op::Hpa { name, .. } | Op::DeleteHpa { name } => {
                match before.hpas.iter().find(|h| h.object.name == *name) {
                    Some(h) => {
                        let kind = WorkloadKind::parse(&h.target_kind).ok();
                        let Some(kind) = kind else { continue };
                        // The exact metrics list when the server returned one (autoscaling/v2);
                        // then the CPU target is part of it.
                        let exact = !h.metrics.is_empty();
                        let mut spec = h.object.spec.clone();
                        if exact {
                            spec.target_cpu = None;
                        }
                        hpas.push(Action::ApplyHpa(ApplyHpa {
                            kind: HpaKind::HorizontalPodAutoscaler,
                            name: name.clone(),
                            namespace: ns.clone(),
                            target: Some(TargetRef { kind, name: h.target_name.clone() }),
                            hpa: spec,
                            metrics: exact.then(|| h.metrics.clone()),
                            from: None,
                        }));
                    }
                    None => {
                        hpas.push(Action::DeleteHpa(DeleteHpa {
                            kind: HpaKind::HorizontalPodAutoscaler,
                            name: name.clone(),
                            namespace: ns.clone(),
                        }));
                        // The HPA infra-scale created may have moved replicas; put them back too,
                        // unless another HPA governed the workload before.
                        if let Op::Hpa { target, .. } = op {
                            let governed_before = before
                                .hpas
                                .iter()
                                .any(|h| h.target_kind == target.kind.as_str() && h.target_name == target.name);
                            let w = (target.kind, target.name.clone());
                            if !governed_before && !scales.contains(&w) {
                                scales.push(w);
                            }
                        }
                    }
                }
            }
            Op::Resources { kind, name, container: Some(container), .. } => {
                let Some(c) = before.workload(*kind, name).and_then(|w| live_container(w, container)) else { continue };
                resources.push(Action::RestoreResources(RestoreResources {
                    kind: *kind,
                    name: name.clone(),
                    namespace: ns.clone(),
                    container: container.clone(),
                    requests: c.requests.clone(),
                    limits: c.limits.clone(),
                }));
            }
            Op::Resources { container: None, .. } => {}
            Op::Scale { kind, name, .. } => {
                let w = (*kind, name.clone());
                if !scales.contains(&w) {
                    scales.push(w);
                }
            }
        }
    }
    let mut actions = hpas;
    actions.extend(resources);
    for (kind, name) in scales {
        let Some(w) = before.workload(kind, &name) else { continue };
        actions.push(Action::ScaleWorkload(ScaleWorkload {
            kind,
            name,
            namespace: ns.clone(),
            from: Live::Detect,
            to: w.replicas,
            reason: "restore_snapshot".into(),
            hpa: None,
            effective: None,
        }));
    }
    if actions.is_empty() {
        return None;
    }
    let any_hpa = actions.iter().any(|a| matches!(a, Action::ApplyHpa(_)));
    Some(ScalePlan {
        api_version: crate::plan::API_VERSION.into(),
        kind: crate::plan::KIND.into(),
        metadata: Metadata { created_at: created_at.into(), target: plan.metadata.target.clone() },
        context: Context { kube_context: kube_context.into(), namespace: ns.clone() },
        assumptions: Assumptions {
            autoscaling: if any_hpa { "hpa".into() } else { "none".into() },
            live_state: "detected".into(),
            replicas_threshold: plan.assumptions.replicas_threshold,
            container_rule: None,
        },
        actions,
        rollback_hints: vec!["infra-scale apply --plan=<this file> --execute".into()],
        risks,
        notes: vec![Finding {
            severity: Severity::Info,
            code: "restore_plan".into(),
            workload: None,
            message: format!(
                "written by infra-scale apply before changing namespace {ns}: returns every object it was about to \
                 change to the snapshot taken at {created_at} (HPAs first, then container resources exactly as they \
                 were, then replicas)"
            ),
        }],
        observed: None,
    })
}
