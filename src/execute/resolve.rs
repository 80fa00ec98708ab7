//! From a plan and, when executing, the live snapshot to one [`Step`] per action: the container
//! it targets, whether an HPA governs the workload, whether it is a no-op, and the operation that
//! carries it out. Pure: no I/O. The steps double as the journal (status, before, after, timing).

use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::observed::{ClusterState, LiveHpa};
use crate::plan::{
    Action, CONTAINER_RULE, HpaSpec, ObservedContainer, ObservedWorkload, ResourceList, Resources, ScalePlan,
    TargetRef, WorkloadKind,
};
use crate::quantity::Resource;

/// What happened (or will happen) to one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Preview: execution would carry it out.
    Planned,
    /// `KUBECTL=echo`: handed to the stand-in program, nothing was read or changed.
    PassedThrough,
    /// Execution: to be carried out (never left in a finished journal).
    Pending,
    Applied,
    /// The live state already equals the desired state: nothing sent.
    Noop,
    /// Deliberately not carried out (see `reason`).
    Skipped,
    Failed,
}

/// The kubectl operation that carries out one action.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// A JSON patch of one container's requests and limits (`container` is `None` only in previews
    /// of plans that name no container and recorded no observed state).
    Resources {
        kind: WorkloadKind,
        name: String,
        container: Option<String>,
        /// The container is an init container (a native sidecar).
        init: bool,
        requests: ResourceList,
        limits: ResourceList,
        /// Where the container is and what it has now (`None` in previews without observed state).
        slot: Option<Box<Slot>>,
    },
    /// Creates an autoscaling/v2 HPA, or JSON-patches the fields of an existing one that change.
    Hpa {
        name: String,
        target: TargetRef,
        spec: HpaSpec,
        /// The exact `spec.metrics` list to set (restore plans), instead of `spec.target_cpu`.
        metrics: Option<Vec<Value>>,
        base: HpaBase,
    },
    DeleteHpa {
        name: String,
    },
    /// `kubectl scale --current-replicas=current --replicas=to` (`current` unknown only in previews).
    Scale {
        kind: WorkloadKind,
        name: String,
        current: Option<u32>,
        to: u32,
    },
}

/// A container's position in the pod template and its resources there, read from the live object
/// (or the plan's observed state, for previews): the JSON patch names the index, tests the name
/// and the old values, and sends only the keys that change.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub index: usize,
    pub requests: ResourceList,
    pub limits: ResourceList,
}

/// What an HPA op starts from.
#[derive(Debug, Clone, PartialEq)]
pub enum HpaBase {
    /// No HPA of that name: it is created.
    Absent,
    /// The live HPA: only the fields that change are patched.
    Live { min: u32, max: u32, metrics: Vec<Value> },
    /// A preview without a live read.
    Unknown,
}

/// One action: what to do, and its journal entry.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    #[serde(skip)]
    pub index: usize,
    pub action: &'static str,
    pub object: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub before: Option<Value>,
    pub desired: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    pub duration_ms: u64,
    #[serde(skip)]
    pub op: Option<Op>,
}

impl Step {
    /// Whether execution will send something for this step.
    pub fn pending(&self) -> bool {
        matches!(self.status, Status::Pending | Status::Planned) && self.op.is_some()
    }
}

/// `{"replicas": n}`.
pub fn replicas_value(n: u32) -> Value {
    json!({ "replicas": n })
}

/// `{"requests": {...}, "limits": {...}}` of a container.
pub fn resources_value(requests: &ResourceList, limits: &ResourceList) -> Value {
    json!({ "requests": requests, "limits": limits })
}

/// An HPA's bounds, or `"absent"`.
pub fn hpa_value(hpa: Option<&LiveHpa>) -> Value {
    match hpa {
        None => json!("absent"),
        Some(h) => {
            let mut v = json!({ "min": h.object.spec.min, "max": h.object.spec.max });
            if let Some(cpu) = h.object.spec.target_cpu {
                v["targetCPU"] = json!(cpu);
            }
            if !h.object.other_metrics.is_empty() {
                v["otherMetrics"] = json!(h.object.other_metrics);
            }
            v["target"] = json!(format!("{}/{}", h.target_kind, h.target_name));
            v
        }
    }
}

fn hpa_spec_value(spec: &HpaSpec, target: &TargetRef) -> Value {
    let mut v = json!({ "min": spec.min, "max": spec.max });
    if let Some(cpu) = spec.target_cpu {
        v["targetCPU"] = json!(cpu);
    }
    v["target"] = json!(format!("{}/{}", target.kind, target.name));
    v
}

/// The container an action changes: the one it names, else by [`CONTAINER_RULE`].
/// Returns the name and whether it is an init container (a native sidecar).
pub fn choose_container(w: &ObservedWorkload, named: Option<&str>) -> std::result::Result<(String, bool), String> {
    let object = format!("{}/{}", w.kind, w.name);
    let names = |list: &[ObservedContainer]| list.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
    match named {
        Some(c) => {
            if w.containers.iter().any(|x| x.name == c) {
                Ok((c.to_string(), false))
            } else if w.init_containers.iter().any(|x| x.name == c) {
                Ok((c.to_string(), true))
            } else {
                Err(format!("{object} has no container `{c}` (containers: {})", names(&w.containers)))
            }
        }
        None if w.containers.len() == 1 => Ok((w.containers[0].name.clone(), false)),
        None if w.containers.iter().any(|c| c.name == w.name) => Ok((w.name.clone(), false)),
        None => Err(format!(
            "{object} has containers {} and the plan names none; the rule is: {CONTAINER_RULE}",
            names(&w.containers)
        )),
    }
}

/// Where container `name` sits (app containers first, then init containers).
pub fn slot(w: &ObservedWorkload, name: &str, init: bool) -> Option<Slot> {
    let list = if init { &w.init_containers } else { &w.containers };
    let index = list.iter().position(|c| c.name == name)?;
    let c = &list[index];
    Some(Slot { index, requests: c.requests.clone(), limits: c.limits.clone() })
}

/// The live container `name` of a workload (app containers first, then init containers).
pub fn live_container<'a>(w: &'a ObservedWorkload, name: &str) -> Option<&'a ObservedContainer> {
    w.containers.iter().chain(&w.init_containers).find(|c| c.name == name)
}

/// The HPA that will govern a workload's replicas once the plan ran: one the plan applies, or a
/// live one (matched by scaleTargetRef) the plan does not delete; without a snapshot, what the
/// plan recorded. Returns the HPA's name and how it was found.
fn governing_hpa(plan: &ScalePlan, live: Option<&ClusterState>, kind: WorkloadKind, name: &str) -> Option<String> {
    let target = TargetRef { kind, name: name.to_string() };
    if let Some(h) = plan.actions.iter().find_map(|a| match a {
        Action::ApplyHpa(h) if h.target() == target => Some(h),
        _ => None,
    }) {
        return Some(format!("HorizontalPodAutoscaler/{} (applied by this plan)", h.name));
    }
    let deleted = |hpa: &str| plan.actions.iter().any(|a| matches!(a, Action::DeleteHpa(d) if d.name == hpa));
    match live {
        Some(live) => live
            .hpas
            .iter()
            .find(|h| h.target_kind == kind.as_str() && h.target_name == name && !deleted(&h.object.name))
            .map(|h| format!("HorizontalPodAutoscaler/{}", h.object.name)),
        None => {
            let recorded = plan.actions.iter().find_map(|a| match a {
                Action::ScaleWorkload(s) if s.kind == kind && s.name == name => s.hpa.clone(),
                _ => None,
            });
            let observed = plan
                .observed
                .as_ref()
                .and_then(|o| o.workloads.iter().find(|w| w.kind == kind && w.name == name))
                .and_then(|w| w.hpa.as_ref())
                .map(|h| h.name.clone());
            recorded.or(observed).filter(|h| !deleted(h)).map(|h| format!("HorizontalPodAutoscaler/{h}"))
        }
    }
}

/// Why replicas are not set under an HPA: the plan's own finding for the workload when it has
/// one, otherwise the rule.
fn hpa_reason(plan: &ScalePlan, name: &str, hpa: &str) -> String {
    const CODES: &[&str] = &["replicas_zero_under_hpa", "hpa_clamps_replicas", "hpa_owns_replicas"];
    plan.risks
        .iter()
        .chain(&plan.notes)
        .find(|f| f.workload.as_deref() == Some(name) && CODES.contains(&f.code.as_str()))
        .map(|f| f.message.clone())
        .unwrap_or_else(|| {
            format!(
                "{hpa} governs spec.replicas; infra-scale does not set replicas under an HPA (the HPA would \
                 override them within 15 s); change the HPA's min/max instead"
            )
        })
}

/// Overlays the keys `changes` sets on `base` (R5: `set resources` and infra-scale only ever add
/// or change keys; the result is what the container will have).
fn overlay(base: &ResourceList, changes: &ResourceList) -> ResourceList {
    let mut out = base.clone();
    for r in [Resource::Cpu, Resource::Memory] {
        if let Some(q) = changes.get(r) {
            out.set(r, q.clone());
        }
    }
    out
}

/// Limits below requests after the change: the API server would reject the workload.
fn limit_problems(object: &str, container: &str, requests: &ResourceList, limits: &ResourceList) -> Vec<String> {
    let mut out = Vec::new();
    for r in [Resource::Cpu, Resource::Memory] {
        if let (Some(req), Some(lim)) = (requests.get(r), limits.get(r))
            && lim < req
        {
            out.push(format!(
                "{object} container {container}: after this change the {r} request {req} would exceed the {r} \
                 limit {lim} (values the plan does not set are kept from the live object); the API server rejects it"
            ));
        }
    }
    out
}

/// The steps of `plan`, against `live` when executing (`None` for previews).
pub fn resolve(plan: &ScalePlan, live: Option<&ClusterState>) -> Result<Vec<Step>> {
    let ns = &plan.context.namespace;
    let mut problems = Vec::new();
    if let Some(live) = live {
        for (kind, name) in plan.workloads() {
            if live.workload(kind, &name).is_none() {
                problems.push(format!("{kind}/{name} does not exist in namespace {ns}"));
            }
        }
        if !problems.is_empty() {
            return Err(refusal(problems));
        }
    }
    let observed_workload = |kind: WorkloadKind, name: &str| -> Option<&ObservedWorkload> {
        match live {
            Some(l) => l.workload(kind, name),
            None => plan.observed.as_ref()?.workloads.iter().find(|w| w.kind == kind && w.name == name),
        }
    };
    let initial = if live.is_some() { Status::Pending } else { Status::Planned };
    let mut steps = Vec::new();
    for (index, action) in plan.actions.iter().enumerate() {
        let mut step = Step {
            index,
            action: action.name(),
            object: action.object(),
            status: initial,
            container: None,
            reason: None,
            before: None,
            desired: Value::Null,
            after: None,
            duration_ms: 0,
            op: None,
        };
        match action {
            Action::ScaleWorkload(a) => {
                step.desired = replicas_value(a.to);
                let current = match live {
                    Some(l) => l.workload(a.kind, &a.name).map(|w| w.replicas),
                    None => a.from.known().copied().or_else(|| observed_workload(a.kind, &a.name).map(|w| w.replicas)),
                };
                step.before = current.map(replicas_value);
                if let Some(hpa) = governing_hpa(plan, live, a.kind, &a.name) {
                    step.status = Status::Skipped;
                    step.reason = Some(hpa_reason(plan, &a.name, &hpa));
                } else if live.is_some() && current == Some(a.to) {
                    step.status = Status::Noop;
                } else {
                    step.op = Some(Op::Scale { kind: a.kind, name: a.name.clone(), current, to: a.to });
                }
            }
            Action::UpdateResources(a) => {
                let workload = observed_workload(a.kind, &a.name);
                let chosen = match workload {
                    Some(w) => match choose_container(w, a.container.as_deref()) {
                        Ok(c) => Some(c),
                        Err(e) if live.is_some() => {
                            problems.push(e);
                            continue;
                        }
                        Err(_) => None,
                    },
                    None => a.container.clone().map(|c| (c, false)),
                };
                let current = chosen.as_ref().zip(workload).and_then(|((c, _), w)| live_container(w, c));
                let (requests, limits) = match (live, current) {
                    (Some(_), Some(c)) => (overlay(&c.requests, &a.requests), overlay(&c.limits, &a.limits)),
                    _ => (a.requests.clone(), a.limits.clone()),
                };
                step.container = chosen.as_ref().map(|(c, _)| c.clone());
                step.before = match (live, current) {
                    (Some(_), Some(c)) => Some(resources_value(&c.requests, &c.limits)),
                    _ => a.from.as_ref().and_then(|f| f.known()).map(|r| resources_value(&r.requests, &r.limits)),
                };
                step.desired = resources_value(&requests, &limits);
                if let (Some(_), Some(c)) = (live, current) {
                    let found = limit_problems(&step.object, &c.name, &requests, &limits);
                    if !found.is_empty() {
                        problems.extend(found);
                        continue;
                    }
                    if c.requests == requests && c.limits == limits {
                        step.status = Status::Noop;
                    }
                }
                if step.status != Status::Noop {
                    let slot = chosen.as_ref().zip(workload).and_then(|((c, init), w)| slot(w, c, *init)).map(Box::new);
                    step.op = Some(Op::Resources {
                        kind: a.kind,
                        name: a.name.clone(),
                        container: chosen.as_ref().map(|(c, _)| c.clone()),
                        init: chosen.as_ref().is_some_and(|(_, init)| *init),
                        requests,
                        limits,
                        slot,
                    });
                }
            }
            Action::RestoreResources(a) => {
                step.container = Some(a.container.clone());
                step.desired = resources_value(&a.requests, &a.limits);
                let workload = observed_workload(a.kind, &a.name);
                let mut init = false;
                if let (Some(_), Some(w)) = (live, workload) {
                    match choose_container(w, Some(&a.container)) {
                        Ok((_, i)) => init = i,
                        Err(e) => {
                            problems.push(e);
                            continue;
                        }
                    }
                    if let Some(c) = live_container(w, &a.container) {
                        step.before = Some(resources_value(&c.requests, &c.limits));
                        if c.requests == a.requests && c.limits == a.limits {
                            step.status = Status::Noop;
                        }
                    }
                }
                if step.status != Status::Noop {
                    let slot = workload.and_then(|w| slot(w, &a.container, init)).map(Box::new);
                    step.op = Some(Op::Resources {
                        kind: a.kind,
                        name: a.name.clone(),
                        container: Some(a.container.clone()),
                        init,
                        requests: a.requests.clone(),
                        limits: a.limits.clone(),
                        slot,
                    });
                }
            }
            Action::ApplyHpa(a) => {
                let target = a.target();
                step.desired = hpa_spec_value(&a.hpa, &target);
                if let Some(m) = &a.metrics {
                    step.desired["metrics"] = json!(m);
                }
                let mut base = HpaBase::Unknown;
                if let Some(live) = live {
                    let existing = live.hpas.iter().find(|h| h.object.name == a.name);
                    step.before = Some(hpa_value(existing));
                    if let Some(h) = existing
                        && (h.target_kind != target.kind.as_str() || h.target_name != target.name)
                    {
                        problems.push(format!(
                            "HorizontalPodAutoscaler/{} exists and scales {}/{}, not {}/{}",
                            a.name, h.target_kind, h.target_name, target.kind, target.name
                        ));
                        continue;
                    }
                    let deleted =
                        |n: &str| plan.actions.iter().any(|x| matches!(x, Action::DeleteHpa(d) if d.name == n));
                    if let Some(other) = live.hpas.iter().find(|h| {
                        h.object.name != a.name
                            && h.target_kind == target.kind.as_str()
                            && h.target_name == target.name
                            && !deleted(&h.object.name)
                    }) {
                        // R16: two HPAs on one target fight (AmbiguousSelector, ScalingActive=False).
                        problems.push(format!(
                            "HorizontalPodAutoscaler/{} already scales {}/{}; the plan would add a second HPA `{}` \
                             for the same workload (the HPA controller then stops scaling it)",
                            other.object.name, target.kind, target.name, a.name
                        ));
                        continue;
                    }
                    base = HpaBase::Absent;
                    if let Some(h) = existing {
                        let s = &h.object.spec;
                        // Other metrics are kept (the list is patched whole with the CPU entry
                        // replaced), so they do not make an unchanged CPU target a change.
                        let same_metrics = match (&a.metrics, a.hpa.target_cpu) {
                            (Some(m), _) => h.metrics == *m,
                            (None, None) => true,
                            (None, Some(cpu)) => s.target_cpu == Some(cpu),
                        };
                        if s.min == a.hpa.min && s.max == a.hpa.max && same_metrics {
                            step.status = Status::Noop;
                        }
                        base = HpaBase::Live { min: s.min, max: s.max, metrics: h.metrics.clone() };
                    }
                } else {
                    step.before = a.from.as_ref().and_then(|f| f.known()).map(|f| match f {
                        crate::plan::ObservedHpa::Absent => json!("absent"),
                        crate::plan::ObservedHpa::Present(spec) => hpa_spec_value(spec, &target),
                    });
                    if matches!(a.from.as_ref().and_then(|f| f.known()), Some(crate::plan::ObservedHpa::Absent)) {
                        base = HpaBase::Absent;
                    }
                }
                if step.status != Status::Noop {
                    step.op = Some(Op::Hpa {
                        name: a.name.clone(),
                        target,
                        spec: a.hpa.clone(),
                        metrics: a.metrics.clone(),
                        base,
                    });
                }
            }
            Action::DeleteHpa(a) => {
                step.desired = json!("absent");
                if let Some(live) = live {
                    let existing = live.hpas.iter().find(|h| h.object.name == a.name);
                    step.before = Some(hpa_value(existing));
                    if existing.is_none() {
                        step.status = Status::Noop;
                    }
                }
                if step.status != Status::Noop {
                    step.op = Some(Op::DeleteHpa { name: a.name.clone() });
                }
            }
        }
        steps.push(step);
    }
    if !problems.is_empty() {
        return Err(refusal(problems));
    }
    Ok(steps)
}

fn refusal(problems: Vec<String>) -> Error {
    let reason = if problems.len() == 1 {
        problems.into_iter().next().unwrap_or_default()
    } else {
        format!("the plan does not fit the live cluster:\n  - {}", problems.join("\n  - "))
    };
    Error::refused(
        reason,
        "nothing was changed; re-plan against the live state (`infra-scale plan --detect ...`) or fix the cluster first",
    )
}

/// The live values an operation's target has now, comparable with [`Step::desired`]
/// (`None` when the object is gone).
pub fn current_value(op: &Op, live: &ClusterState) -> Option<Value> {
    match op {
        Op::Scale { kind, name, .. } => live.workload(*kind, name).map(|w| replicas_value(w.replicas)),
        Op::Resources { kind, name, container, .. } => {
            let w = live.workload(*kind, name)?;
            let c = live_container(w, container.as_deref()?)?;
            Some(resources_value(&c.requests, &c.limits))
        }
        Op::Hpa { name, .. } | Op::DeleteHpa { name } => {
            Some(hpa_value(live.hpas.iter().find(|h| h.object.name == *name)))
        }
    }
}

/// Whether the live target of `op` equals what the op sets (numerically for quantities).
pub fn reached(op: &Op, live: &ClusterState) -> bool {
    match op {
        Op::Scale { kind, name, to, .. } => live.workload(*kind, name).is_some_and(|w| w.replicas == *to),
        Op::Resources { kind, name, container, requests, limits, .. } => live
            .workload(*kind, name)
            .and_then(|w| live_container(w, container.as_deref()?))
            .is_some_and(|c| c.requests == *requests && c.limits == *limits),
        Op::Hpa { name, target, spec, metrics, .. } => live.hpas.iter().any(|h| {
            h.object.name == *name
                && h.target_kind == target.kind.as_str()
                && h.target_name == target.name
                && h.object.spec.min == spec.min
                && h.object.spec.max == spec.max
                && (spec.target_cpu.is_none() || h.object.spec.target_cpu == spec.target_cpu)
                && metrics.as_ref().is_none_or(|m| h.metrics == *m)
        }),
        Op::DeleteHpa { name } => !live.hpas.iter().any(|h| h.object.name == *name),
    }
}

/// The snapshot resources of a container, for restore plans.
pub fn snapshot_resources(live: &ClusterState, kind: WorkloadKind, name: &str, container: &str) -> Option<Resources> {
    let c = live_container(live.workload(kind, name)?, container)?;
    Some(Resources { requests: c.requests.clone(), limits: c.limits.clone() })
}

/// Whether the target of `op` differs between two reads of the cluster (numerically for
/// quantities): used to tell exactly what a failed execution changed.
pub fn differs(op: &Op, a: &ClusterState, b: &ClusterState) -> bool {
    match op {
        Op::Scale { kind, name, .. } => {
            a.workload(*kind, name).map(|w| w.replicas) != b.workload(*kind, name).map(|w| w.replicas)
        }
        Op::Resources { kind, name, container, .. } => {
            let Some(container) = container.as_deref() else { return false };
            let get = |s: &ClusterState| {
                s.workload(*kind, name)
                    .and_then(|w| live_container(w, container))
                    .map(|c| (c.requests.clone(), c.limits.clone()))
            };
            get(a) != get(b)
        }
        Op::Hpa { name, .. } | Op::DeleteHpa { name } => {
            let get = |s: &ClusterState| {
                s.hpas
                    .iter()
                    .find(|h| h.object.name == *name)
                    .map(|h| (h.target_kind.clone(), h.target_name.clone(), h.object.spec.clone(), h.metrics.clone()))
            };
            get(a) != get(b)
        }
    }
}
