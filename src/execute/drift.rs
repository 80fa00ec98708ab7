//! Drift: differences between what the plan observed (its `observed` section and the `from:`
//! values `--detect` filled in) and the live snapshot. A plan reviewed against one state must not
//! silently be applied to another; execution refuses unless `--allow-drift`.
//!
//! Compared: the workload's uid (delete and re-create), replicas when no HPA governs the workload,
//! the target container's requests and limits (numerically), and the HPA's bounds.

use crate::observed::ClusterState;
use crate::plan::{Action, HpaSpec, ObservedHpa, ResourceList, ScalePlan};

use super::resolve::{Step, live_container};

fn list(l: &ResourceList) -> String {
    if l.is_empty() { "none".into() } else { l.to_kubectl() }
}

fn bounds(s: &HpaSpec) -> String {
    let cpu = s.target_cpu.map(|c| format!(" cpu={c}%")).unwrap_or_default();
    format!("min={} max={}{cpu}", s.min, s.max)
}

/// Every drift found, one sentence each (empty when the cluster is as the plan saw it).
pub fn check(plan: &ScalePlan, live: &ClusterState, steps: &[Step]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    let container_of = |kind, name: &str| {
        steps.iter().zip(&plan.actions).find_map(|(s, a)| match a {
            Action::UpdateResources(u) if u.kind == kind && u.name == name => s.container.clone(),
            _ => None,
        })
    };
    let governed = |kind: crate::plan::WorkloadKind, name: &str| {
        live.hpas.iter().any(|h| h.target_kind == kind.as_str() && h.target_name == name)
    };

    if let Some(observed) = &plan.observed {
        for o in &observed.workloads {
            let object = format!("{}/{}", o.kind, o.name);
            let Some(w) = live.workload(o.kind, &o.name) else {
                push(format!("{object} no longer exists"));
                continue;
            };
            if !o.uid.is_empty() && o.uid != w.uid {
                push(format!(
                    "{object} was deleted and re-created since the plan was made (uid {} → {})",
                    o.uid, w.uid
                ));
            }
            if !governed(o.kind, &o.name) && o.replicas != w.replicas {
                push(format!("{object} replicas: planned from {}, live {}", o.replicas, w.replicas));
            }
            if let Some(c) = container_of(o.kind, &o.name) {
                let before = o.containers.iter().chain(&o.init_containers).find(|x| x.name == c);
                if let (Some(before), Some(now)) = (before, live_container(w, &c))
                    && (before.requests != now.requests || before.limits != now.limits)
                {
                    push(format!(
                        "{object} container {c}: planned from requests {} limits {}, live requests {} limits {}",
                        list(&before.requests),
                        list(&before.limits),
                        list(&now.requests),
                        list(&now.limits)
                    ));
                }
            }
            let now = live.hpas.iter().find(|h| h.target_kind == o.kind.as_str() && h.target_name == o.name);
            match (&o.hpa, now) {
                (None, Some(h)) => push(format!("{object}: HorizontalPodAutoscaler/{} now governs it", h.object.name)),
                (Some(h), None) => push(format!("{object}: HorizontalPodAutoscaler/{} no longer exists", h.name)),
                (Some(a), Some(b)) if a.spec != b.object.spec || a.name != b.object.name => push(format!(
                    "{object}: HorizontalPodAutoscaler/{} planned from {}, live HorizontalPodAutoscaler/{} {}",
                    a.name,
                    bounds(&a.spec),
                    b.object.name,
                    bounds(&b.object.spec)
                )),
                _ => {}
            }
        }
    }

    for (step, action) in steps.iter().zip(&plan.actions) {
        match action {
            Action::ScaleWorkload(a) => {
                if let (Some(from), Some(w)) = (a.from.known(), live.workload(a.kind, &a.name))
                    && !governed(a.kind, &a.name)
                    && *from != w.replicas
                {
                    push(format!("{}/{} replicas: planned from {from}, live {}", a.kind, a.name, w.replicas));
                }
            }
            Action::UpdateResources(a) => {
                let from = a.from.as_ref().and_then(|f| f.known());
                let now = step
                    .container
                    .as_deref()
                    .and_then(|c| live.workload(a.kind, &a.name).and_then(|w| live_container(w, c)));
                if let (Some(from), Some(now)) = (from, now)
                    && (from.requests != now.requests || from.limits != now.limits)
                {
                    push(format!(
                        "{}/{} container {}: planned from requests {} limits {}, live requests {} limits {}",
                        a.kind,
                        a.name,
                        now.name,
                        list(&from.requests),
                        list(&from.limits),
                        list(&now.requests),
                        list(&now.limits)
                    ));
                }
            }
            Action::ApplyHpa(a) => {
                let Some(from) = a.from.as_ref().and_then(|f| f.known()) else { continue };
                let now = live.hpas.iter().find(|h| h.object.name == a.name);
                match (from, now) {
                    (ObservedHpa::Absent, Some(h)) => push(format!(
                        "HorizontalPodAutoscaler/{}: planned as absent, live {}",
                        a.name,
                        bounds(&h.object.spec)
                    )),
                    (ObservedHpa::Present(s), None) => {
                        push(format!("HorizontalPodAutoscaler/{}: planned from {}, now absent", a.name, bounds(s)))
                    }
                    (ObservedHpa::Present(s), Some(h)) if *s != h.object.spec => push(format!(
                        "HorizontalPodAutoscaler/{}: planned from {}, live {}",
                        a.name,
                        bounds(s),
                        bounds(&h.object.spec)
                    )),
                    _ => {}
                }
            }
            Action::DeleteHpa(_) | Action::RestoreResources(_) => {}
        }
    }
    out
}
