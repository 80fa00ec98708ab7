//! Drift: differences between what the plan observed (its `observed` section and the `from:`
//! values `--detect` filled in) and the live snapshot. A plan reviewed against one state must not
//! silently be applied to another; execution refuses unless `--allow-drift`.
//!
//! Compared: the workload's uid (delete and re-create), replicas when no HPA governs the workload,
//! the target container's requests and limits (numerically), and the HPA's bounds.
//!
//! Only what execution is about to change is checked: a workload none of whose steps sends
//! anything is not (re-running an executed plan finds its own changes, all no-ops, and exits 0),
//! and within a changed workload a field whose own step is a no-op is not either.

use crate::observed::ClusterState;
use crate::plan::{Action, HpaSpec, ObservedHpa, ScalePlan, WorkloadKind};

use super::resolve::{Op, Step, live_container};

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
    let governed = |kind: WorkloadKind, name: &str| {
        live.hpas.iter().any(|h| h.target_kind == kind.as_str() && h.target_name == name)
    };
    // Workloads execution will send something for.
    let touched = |kind: WorkloadKind, name: &str| {
        steps.iter().filter(|s| s.pending()).any(|s| match &s.op {
            Some(Op::Resources { kind: k, name: n, .. } | Op::Scale { kind: k, name: n, .. }) => {
                *k == kind && n == name
            }
            Some(Op::Hpa { target, .. }) => target.kind == kind && target.name == name,
            _ => false,
        })
    };
    // A field whose own step (this action on this workload) sends nothing.
    let settled = |kind: WorkloadKind, name: &str, action: &str| {
        steps.iter().zip(&plan.actions).any(|(s, a)| {
            let target = match a {
                Action::ScaleWorkload(x) => (x.kind, x.name.as_str()),
                Action::UpdateResources(x) => (x.kind, x.name.as_str()),
                Action::ApplyHpa(x) => match &x.target {
                    Some(t) => (t.kind, t.name.as_str()),
                    None => (WorkloadKind::Deployment, x.name.as_str()),
                },
                _ => return false,
            };
            a.name() == action && target == (kind, name) && !s.pending()
        })
    };

    if let Some(observed) = &plan.observed {
        for o in &observed.workloads {
            let object = format!("{}/{}", o.kind, o.name);
            let Some(w) = live.workload(o.kind, &o.name) else {
                push(format!("{object} no longer exists"));
                continue;
            };
            if !touched(o.kind, &o.name) {
                continue;
            }
            if !o.uid.is_empty() && o.uid != w.uid {
                push(format!(
                    "{object} was deleted and re-created since the plan was made (uid {} → {})",
                    o.uid, w.uid
                ));
            }
            if !governed(o.kind, &o.name) && !settled(o.kind, &o.name, "scale_workload") && o.replicas != w.replicas {
                push(format!("{object} replicas: planned from {}, live {}", o.replicas, w.replicas));
            }
            if let Some(c) = container_of(o.kind, &o.name).filter(|_| !settled(o.kind, &o.name, "update_resources")) {
                let before = o.containers.iter().chain(&o.init_containers).find(|x| x.name == c);
                if let (Some(before), Some(now)) = (before, live_container(w, &c))
                    && (before.requests != now.requests || before.limits != now.limits)
                {
                    push(format!(
                        "{object} container {c}: planned from requests {} limits {}, live requests {} limits {}",
                        before.requests.describe(),
                        before.limits.describe(),
                        now.requests.describe(),
                        now.limits.describe()
                    ));
                }
            }
            let now = live.hpas.iter().find(|h| h.target_kind == o.kind.as_str() && h.target_name == o.name);
            if settled(o.kind, &o.name, "apply_hpa") {
                continue;
            }
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
        if !step.pending() {
            continue;
        }
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
                        from.requests.describe(),
                        from.limits.describe(),
                        now.requests.describe(),
                        now.limits.describe()
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
