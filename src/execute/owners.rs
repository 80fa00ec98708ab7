//! Who owns the fields a change is about to set, read from the snapshot's managedFields (issue 9,
//! item 2). A JSON patch never conflicts, so this is where a GitOps or Helm owner is found: the
//! change is refused unless the user accepts that owner (`--allow-owner`), because its next sync
//! would revert it. Fields held by one-off human managers (`kubectl create`, `edit`, `patch`,
//! client-side `apply`) are taken over, exactly those that change, and said so.

use crate::ownership::{self, Field, Section};
use crate::quantity::Resource;

use super::resolve::{HpaBase, Op, Step};
use super::snapshot::Snapshot;

/// What the owners of the pending changes mean for execution.
#[derive(Debug, Default)]
pub struct Owners {
    /// `Deployment/web: spec…requests.cpu, spec…limits.memory from kubectl-client-side-apply`, one
    /// per object and manager whose fields are taken over.
    pub takeovers: Vec<String>,
    /// One sentence per owner that would revert the change (empty: go ahead).
    pub refusals: Vec<String>,
}

/// The fields `op` changes.
fn fields(op: &Op) -> Vec<Field<'_>> {
    match op {
        Op::Resources { container: Some(container), init, requests, limits, slot: Some(slot), .. } => {
            let mut out = Vec::new();
            for (section, old, new) in
                [(Section::Requests, &slot.requests, requests), (Section::Limits, &slot.limits, limits)]
            {
                for r in [Resource::Cpu, Resource::Memory] {
                    if old.get(r) != new.get(r) {
                        out.push(Field::Resource { init: *init, container, section, resource: r });
                    }
                }
            }
            out
        }
        Op::Resources { .. } => Vec::new(),
        Op::Scale { .. } => vec![Field::Replicas],
        Op::Hpa { base: HpaBase::Live { min, max, metrics: live }, spec, metrics, .. } => {
            let mut out = Vec::new();
            if *min != spec.min {
                out.push(Field::HpaMin);
            }
            if *max != spec.max {
                out.push(Field::HpaMax);
            }
            let metrics_change = match (metrics, spec.target_cpu) {
                (Some(m), _) => m != live,
                (None, Some(cpu)) => super::manifests::metrics_with_cpu(live, cpu) != *live,
                (None, None) => false,
            };
            if metrics_change {
                out.push(Field::HpaMetrics);
            }
            out
        }
        // A new HPA has no owner yet; restore plans delete only HPAs infra-scale created.
        Op::Hpa { .. } | Op::DeleteHpa { .. } => Vec::new(),
    }
}

/// Assesses every pending step against the snapshot's objects (read with managedFields).
pub fn assess(snapshot: &Snapshot, steps: &[Step], allowed: &[String]) -> Owners {
    let mut out = Owners::default();
    let mut taken: Vec<((String, String), Vec<String>)> = Vec::new();
    for step in steps.iter().filter(|s| s.pending()) {
        let Some(op) = &step.op else { continue };
        let object = match op {
            Op::Resources { kind, name, .. } | Op::Scale { kind, name, .. } => snapshot.raw(*kind, name),
            Op::Hpa { name, .. } | Op::DeleteHpa { name } => snapshot.raw_hpa(name),
        };
        let fields = fields(op);
        let Some(object) = object.filter(|_| !fields.is_empty()) else { continue };
        let a = ownership::assess(object, &fields, allowed);
        for (field, manager) in a.takeovers {
            let key = (step.object.clone(), manager);
            match taken.iter_mut().find(|(k, _)| *k == key) {
                Some((_, fields)) if !fields.contains(&field) => fields.push(field),
                Some(_) => {}
                None => taken.push((key, vec![field])),
            }
        }
        for reason in a.owned_by_gitops {
            let line = format!("{}: {reason}", step.object);
            if !out.refusals.contains(&line) {
                out.refusals.push(line);
            }
        }
    }
    out.takeovers = taken
        .into_iter()
        .map(|((object, manager), fields)| format!("{object}: {} from {manager}", fields.join(", ")))
        .collect();
    out
}
