//! Capacity after a plan: per-pod requests and limits, pod counts at the planned replicas, at HPA
//! min, at HPA max and at the rolling-update peak, namespace totals, and ResourceQuota headroom.
//!
//! Pure: computed from a [`ScalePlan`] alone (its actions and, when `--detect` ran, its observed
//! state). A figure that cannot be known is [`Amount::Unknown`] with the reason in
//! [`Capacity::unknown`]; nothing is guessed.
//!
//! Kubernetes rules followed (see the reference notes R6, R9, R21, R30, R31):
//! - per-pod figures are `max(Σ app containers + Σ native sidecars, max_i(init_i + sidecars started
//!   before it))`, as the quota evaluator's `PodRequests`/`PodLimits` compute them;
//! - a container with a limit and no request gets the limit as its request at Pod creation;
//! - a Deployment rollout may run `maxSurge` extra pods (default 25 %, rounded up); a StatefulSet
//!   replaces one pod at a time without surge;
//! - an HPA's CPU utilization is relative to the sum of app-container and native-sidecar CPU
//!   requests, so its scale-out threshold per pod is `target% × that sum`;
//! - quota headroom is `status.hard − status.used` against the change (new total − the workloads'
//!   current total).

use std::collections::{BTreeSet, HashMap};

use crate::plan::{
    Action, ApplyHpa, HpaSpec, ObservedContainer, ObservedHpa, ObservedWorkload, ResourceList, RestoreResources,
    ScalePlan, ScaleWorkload, UpdateResources, WorkloadKind,
};
use crate::quantity::{Quantity, Resource};

/// Nano-units per base unit (1 core, 1 byte, 1 pod).
pub const NANO: i128 = 1_000_000_000;

/// The four per-pod figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Figure {
    RequestsCpu,
    RequestsMemory,
    LimitsCpu,
    LimitsMemory,
}

impl Figure {
    pub const ALL: [Figure; 4] = [Figure::RequestsCpu, Figure::RequestsMemory, Figure::LimitsCpu, Figure::LimitsMemory];

    pub fn resource(self) -> Resource {
        match self {
            Figure::RequestsCpu | Figure::LimitsCpu => Resource::Cpu,
            Figure::RequestsMemory | Figure::LimitsMemory => Resource::Memory,
        }
    }

    pub fn is_limit(self) -> bool {
        matches!(self, Figure::LimitsCpu | Figure::LimitsMemory)
    }

    /// The ResourceQuota key of this figure (`requests.cpu`, `limits.memory`, …).
    pub fn key(self) -> &'static str {
        match self {
            Figure::RequestsCpu => "requests.cpu",
            Figure::RequestsMemory => "requests.memory",
            Figure::LimitsCpu => "limits.cpu",
            Figure::LimitsMemory => "limits.memory",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// A capacity figure in nano-units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    Known(i128),
    /// A limit that some container does not set: the pod has no upper bound.
    NoLimit,
    /// Not computable from the plan (the reason is in [`Capacity::unknown`]).
    Unknown,
}

impl Amount {
    pub fn known(self) -> Option<i128> {
        match self {
            Amount::Known(v) => Some(v),
            _ => None,
        }
    }

    fn combine(self, other: Amount, f: impl Fn(i128, i128) -> i128) -> Amount {
        match (self, other) {
            (Amount::NoLimit, _) | (_, Amount::NoLimit) => Amount::NoLimit,
            (Amount::Known(a), Amount::Known(b)) => Amount::Known(f(a, b)),
            _ => Amount::Unknown,
        }
    }

    fn max(self, other: Amount) -> Amount {
        self.combine(other, i128::max)
    }

    /// `count` pods of this size; zero pods need nothing whatever their size.
    pub fn times(self, count: u32) -> Amount {
        match self {
            _ if count == 0 => Amount::Known(0),
            Amount::Known(v) => Amount::Known(v.saturating_mul(i128::from(count))),
            other => other,
        }
    }
}

/// Saturating: figures from an untrusted plan never overflow.
impl std::ops::Add for Amount {
    type Output = Amount;

    fn add(self, other: Amount) -> Amount {
        self.combine(other, i128::saturating_add)
    }
}

/// The points at which capacity is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Case {
    /// The planned replicas (the HPA's clamp of them when an HPA governs the workload).
    Planned,
    HpaMin,
    HpaMax,
    /// HPA max plus the rolling-update surge: the peak during a rollout at HPA max.
    HpaMaxSurge,
}

impl Case {
    pub const ALL: [Case; 4] = [Case::Planned, Case::HpaMin, Case::HpaMax, Case::HpaMaxSurge];

    pub fn label(self) -> &'static str {
        match self {
            Case::Planned => "at planned replicas",
            Case::HpaMin => "at HPA min",
            Case::HpaMax => "at HPA max",
            Case::HpaMaxSurge => "at HPA max + surge",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Which containers the per-pod figures count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Every container of the observed pod template (app containers, init containers, sidecars).
    AllContainers,
    /// Only the container the plan changes: the rest of the pod was not detected.
    ChangedContainerOnly,
    /// Nothing is known about the pod's containers.
    Nothing,
}

/// The rolling-update surge of a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Surge {
    /// A Deployment's `maxSurge` percentage (rounded up); `observed` is false for the default 25 %.
    Percent { percent: u32, observed: bool },
    /// A Deployment's `maxSurge` pod count.
    Pods(u32),
    /// A StatefulSet replaces one pod at a time and never runs extra pods.
    None,
    /// A Deployment with strategy Recreate stops every old pod before new ones start.
    Recreate,
    /// The observed `maxSurge` could not be read.
    Unreadable(String),
}

impl Surge {
    /// Extra pods during a rollout at `replicas`.
    pub fn extra(&self, replicas: u32) -> Option<u32> {
        match self {
            // intstr.GetScaledValueFromIntOrPercent(maxSurge, replicas, roundUp=true)
            Surge::Percent { percent, .. } => {
                let extra = (u64::from(*percent) * u64::from(replicas)).div_ceil(100);
                Some(u32::try_from(extra).unwrap_or(u32::MAX))
            }
            Surge::Pods(n) => Some(*n),
            Surge::None | Surge::Recreate => Some(0),
            Surge::Unreadable(_) => None,
        }
    }

    /// `maxSurge 25% (default)`, `maxSurge 2`, `StatefulSet: no surge`.
    pub fn describe(&self) -> String {
        match self {
            Surge::Percent { percent, observed: false } => format!("maxSurge {percent}% (default)"),
            Surge::Percent { percent, observed: true } => format!("maxSurge {percent}%"),
            Surge::Pods(n) => format!("maxSurge {n}"),
            Surge::None => "StatefulSet: no surge".into(),
            Surge::Recreate => "strategy Recreate: no surge".into(),
            Surge::Unreadable(text) => format!("maxSurge {text} unreadable"),
        }
    }
}

/// Capacity of one workload after the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadCapacity {
    pub kind: WorkloadKind,
    pub name: String,
    pub counted: Counted,
    /// Per-pod figures after the plan, indexed by [`Figure::index`].
    pub per_pod: [Amount; 4],
    /// Per-pod figures now (observed), indexed by [`Figure::index`].
    pub per_pod_before: [Amount; 4],
    /// The observed replica count.
    pub replicas_before: Option<u32>,
    /// Pods at each [`Case`], indexed by [`Case::index`].
    pub pods: [Option<u32>; 4],
    /// The HPA after the plan, if one governs the workload.
    pub hpa: Option<HpaSpec>,
    pub surge: Surge,
    /// The CPU a pod may use on average before the HPA scales out (R21), in nano-cores.
    pub hpa_cpu_threshold: Option<i128>,
    /// The pod CPU request the HPA's utilization is relative to, in nano-cores.
    pub hpa_cpu_basis: Option<i128>,
    /// Containers that set no value for a figure after the plan (a quota on that key rejects the pod).
    pub unset: Vec<(Figure, String)>,
}

/// Totals across workloads at one case.
#[derive(Debug, Clone, PartialEq)]
pub struct TotalRow {
    pub case: Case,
    pub pods: Option<u64>,
    /// Indexed by [`Figure::index`].
    pub amounts: [Amount; 4],
}

/// What a ResourceQuota key measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaMeasure {
    Figure(Figure),
    Pods,
}

impl QuotaMeasure {
    /// The keys infra-scale checks, in display order.
    pub fn for_key(key: &str) -> Option<Self> {
        Some(match key {
            "pods" => QuotaMeasure::Pods,
            "requests.cpu" | "cpu" => QuotaMeasure::Figure(Figure::RequestsCpu),
            "requests.memory" | "memory" => QuotaMeasure::Figure(Figure::RequestsMemory),
            "limits.cpu" => QuotaMeasure::Figure(Figure::LimitsCpu),
            "limits.memory" => QuotaMeasure::Figure(Figure::LimitsMemory),
            _ => return None,
        })
    }

    /// The resource whose units values are shown in (`None` for pods).
    pub fn resource(self) -> Option<Resource> {
        match self {
            QuotaMeasure::Figure(f) => Some(f.resource()),
            QuotaMeasure::Pods => None,
        }
    }
}

const QUOTA_KEYS: [&str; 7] =
    ["pods", "requests.cpu", "cpu", "requests.memory", "memory", "limits.cpu", "limits.memory"];

/// One ResourceQuota key against the plan's change.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaRow {
    pub quota: String,
    pub key: String,
    pub measure: QuotaMeasure,
    /// `status.hard`, `status.used` and hard − used, in nano-units; `None` when unreadable.
    pub hard: Option<i128>,
    pub used: Option<i128>,
    pub free: Option<i128>,
    /// The change each [`Case`] brings (new total − current total of the plan's workloads).
    pub change: [Amount; 4],
    /// Whether the change fits in `free`, per case; `None` when unknown.
    pub fits: [Option<bool>; 4],
    /// Why the row could not be checked, or why pods are rejected whatever the headroom.
    pub problem: Option<String>,
}

impl QuotaRow {
    /// True when some case is known not to fit.
    pub fn exceeded(&self) -> bool {
        self.fits.contains(&Some(false))
    }
}

/// Capacity of a whole plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Capacity {
    pub workloads: Vec<WorkloadCapacity>,
    /// One row per [`Case`], in [`Case::ALL`] order.
    pub totals: Vec<TotalRow>,
    /// The workloads' total now (observed replicas × observed per-pod figures).
    pub current: TotalRow,
    pub quota: Vec<QuotaRow>,
    /// Why a figure could not be computed.
    pub unknown: Vec<String>,
}

impl Capacity {
    pub fn total(&self, case: Case) -> &TotalRow {
        &self.totals[case.index()]
    }
}

/// A workload with the plan actions and observed state that concern it.
#[derive(Debug, Clone, Copy)]
pub struct WorkloadView<'a> {
    pub kind: WorkloadKind,
    pub name: &'a str,
    pub scale: Option<&'a ScaleWorkload>,
    pub resources: Option<&'a UpdateResources>,
    pub hpa: Option<&'a ApplyHpa>,
    /// Restore plans: a container set back to exactly the snapshot's values.
    pub restore: Option<&'a RestoreResources>,
    pub observed: Option<&'a ObservedWorkload>,
    /// Whether a `delete_hpa` action removes the workload's observed HPA.
    pub hpa_deleted: bool,
}

impl<'a> WorkloadView<'a> {
    /// The HPA before the plan: `Some(None)` when known absent, `None` when not detected.
    pub fn hpa_before(&self) -> Option<Option<&'a HpaSpec>> {
        if let Some(obs) = self.observed {
            return Some(obs.hpa.as_ref().map(|h| &h.spec));
        }
        match self.hpa.and_then(|a| a.from.as_ref()).and_then(|f| f.known()) {
            Some(ObservedHpa::Absent) => Some(None),
            Some(ObservedHpa::Present(spec)) => Some(Some(spec)),
            None => None,
        }
    }

    /// The HPA after the plan: the planned one, else the observed one unless deleted.
    pub fn hpa_after(&self) -> Option<&'a HpaSpec> {
        if let Some(a) = self.hpa {
            return Some(&a.hpa);
        }
        if self.hpa_deleted {
            return None;
        }
        self.hpa_before().flatten()
    }

    /// The observed replica count.
    pub fn replicas_before(&self) -> Option<u32> {
        self.scale.and_then(|s| s.from.known().copied()).or(self.observed.map(|o| o.replicas))
    }

    /// The container the plan changes, resolved against the observed template.
    pub fn target_container(&self) -> Result<&'a ObservedContainer, String> {
        let (Some(action), Some(obs)) = (self.resources, self.observed) else {
            return Err("the pod template was not detected".into());
        };
        match &action.container {
            Some(name) => obs
                .containers
                .iter()
                .chain(&obs.init_containers)
                .find(|c| &c.name == name)
                .ok_or_else(|| format!("container `{name}` is not in the detected pod template")),
            None if obs.containers.len() == 1 => Ok(&obs.containers[0]),
            None => obs.containers.iter().find(|c| c.name == self.name).ok_or_else(|| {
                format!(
                    "the pod has {} containers and none is named `{}`: execution will refuse to choose",
                    obs.containers.len(),
                    self.name
                )
            }),
        }
    }

    /// The changed container's resources before the plan, when known.
    pub fn container_before(&self) -> Option<(ResourceList, ResourceList)> {
        if let Some(Some(r)) = self.resources.and_then(|a| a.from.as_ref()).map(|f| f.known()) {
            return Some((r.requests.clone(), r.limits.clone()));
        }
        self.target_container().ok().map(|c| (c.requests.clone(), c.limits.clone()))
    }
}

/// The plan's workloads in first-seen order, with their actions and observed state (linear time).
pub fn workloads(plan: &ScalePlan) -> Vec<WorkloadView<'_>> {
    let mut views: Vec<WorkloadView<'_>> = Vec::new();
    let mut index: HashMap<(WorkloadKind, &str), usize> = HashMap::new();
    let mut deleted: BTreeSet<&str> = BTreeSet::new();
    for action in &plan.actions {
        let (kind, name) = match action {
            Action::ScaleWorkload(a) => (a.kind, a.name.as_str()),
            Action::UpdateResources(a) => (a.kind, a.name.as_str()),
            Action::RestoreResources(a) => (a.kind, a.name.as_str()),
            Action::ApplyHpa(a) => match &a.target {
                Some(t) => (t.kind, t.name.as_str()),
                None => (WorkloadKind::Deployment, a.name.as_str()),
            },
            Action::DeleteHpa(a) => {
                deleted.insert(a.name.as_str());
                continue;
            }
        };
        let i = *index.entry((kind, name)).or_insert_with(|| {
            views.push(WorkloadView {
                kind,
                name,
                scale: None,
                resources: None,
                hpa: None,
                restore: None,
                observed: None,
                hpa_deleted: false,
            });
            views.len() - 1
        });
        let view = &mut views[i];
        match action {
            Action::ScaleWorkload(a) => view.scale = view.scale.or(Some(a)),
            Action::UpdateResources(a) => view.resources = view.resources.or(Some(a)),
            Action::ApplyHpa(a) => view.hpa = view.hpa.or(Some(a)),
            Action::RestoreResources(a) => view.restore = view.restore.or(Some(a)),
            Action::DeleteHpa(_) => {}
        }
    }
    if let Some(observed) = &plan.observed {
        for obs in &observed.workloads {
            if let Some(&i) = index.get(&(obs.kind, obs.name.as_str())) {
                let view = &mut views[i];
                view.observed = view.observed.or(Some(obs));
                view.hpa_deleted = obs.hpa.as_ref().is_some_and(|h| deleted.contains(h.name.as_str()));
            }
        }
    }
    views
}

/// A container's values by resource (index 0 cpu, 1 memory), in nano-units.
#[derive(Debug, Clone)]
struct Ctr<'a> {
    name: &'a str,
    requests: [Option<i128>; 2],
    limits: [Option<i128>; 2],
    /// Whether an absent value is known to be absent (observed) rather than unknown.
    complete: bool,
    /// `Some(true)` native sidecar, `Some(false)` regular init container, `None` app container.
    init: Option<bool>,
}

fn res_index(r: Resource) -> usize {
    match r {
        Resource::Cpu => 0,
        Resource::Memory => 1,
    }
}

fn values(list: &ResourceList) -> [Option<i128>; 2] {
    [list.cpu.as_ref().map(Quantity::nanos), list.memory.as_ref().map(Quantity::nanos)]
}

impl<'a> Ctr<'a> {
    fn observed(c: &'a ObservedContainer, init: bool) -> Self {
        Ctr {
            name: &c.name,
            requests: values(&c.requests),
            limits: values(&c.limits),
            complete: true,
            init: init.then(|| c.restart_policy.as_deref() == Some("Always")),
        }
    }

    fn apply(&mut self, action: &UpdateResources) {
        for (i, planned) in values(&action.requests).into_iter().enumerate() {
            if planned.is_some() {
                self.requests[i] = planned;
            }
        }
        for (i, planned) in values(&action.limits).into_iter().enumerate() {
            if planned.is_some() {
                self.limits[i] = planned;
            }
        }
    }

    /// Restore plans set the container's values exactly: keys not listed are removed.
    fn restore(&mut self, action: &RestoreResources) {
        self.requests = values(&action.requests);
        self.limits = values(&action.limits);
    }

    fn amount(&self, figure: Figure) -> Amount {
        let r = res_index(figure.resource());
        if figure.is_limit() {
            return match self.limits[r] {
                Some(v) => Amount::Known(v),
                None if self.complete => Amount::NoLimit,
                None => Amount::Unknown,
            };
        }
        match (self.requests[r], self.limits[r]) {
            (Some(v), _) => Amount::Known(v),
            // Pod defaulting: a limit without a request sets the request to the limit.
            (None, Some(limit)) if self.complete => Amount::Known(limit),
            (None, None) if self.complete => Amount::Known(0),
            _ => Amount::Unknown,
        }
    }

    fn unset(&self, figure: Figure) -> bool {
        let r = res_index(figure.resource());
        self.complete && self.limits[r].is_none() && (figure.is_limit() || self.requests[r].is_none())
    }
}

/// The quota evaluator's per-pod figure (k8s component-helpers `PodRequests`/`PodLimits`).
fn pod_amount(ctrs: &[Ctr<'_>], figure: Figure) -> Amount {
    if ctrs.is_empty() {
        return Amount::Unknown;
    }
    let mut total = Amount::Known(0);
    for c in ctrs.iter().filter(|c| c.init.is_none()) {
        total = total + c.amount(figure);
    }
    let mut sidecars = Amount::Known(0);
    let mut init_peak = Amount::Known(0);
    for c in ctrs.iter().filter(|c| c.init.is_some()) {
        let own = c.amount(figure);
        let running = if c.init == Some(true) {
            total = total + own;
            sidecars = sidecars + own;
            sidecars
        } else {
            own + sidecars
        };
        init_peak = init_peak.max(running);
    }
    total.max(init_peak)
}

/// The pod CPU request an HPA's utilization is relative to: app containers plus native sidecars
/// (HPA `calculatePodRequests`); `Err` names a container without a CPU request.
fn hpa_cpu_basis(ctrs: &[Ctr<'_>]) -> Result<Option<i128>, String> {
    let mut sum = 0;
    for c in ctrs.iter().filter(|c| c.init != Some(false)) {
        match c.amount(Figure::RequestsCpu) {
            Amount::Known(0) => return Err(c.name.to_string()),
            Amount::Known(v) => sum += v,
            _ => return Ok(None),
        }
    }
    Ok(Some(sum))
}

/// Parses a `maxSurge` as written on a Deployment (`25%` or a pod count).
fn parse_surge(text: &str) -> Surge {
    let parsed = match text.strip_suffix('%') {
        Some(p) => p.parse().ok().map(|percent| Surge::Percent { percent, observed: true }),
        None => text.parse().ok().map(Surge::Pods),
    };
    parsed.unwrap_or_else(|| Surge::Unreadable(text.to_string()))
}

/// Computes the capacity of a plan.
pub fn compute(plan: &ScalePlan) -> Capacity {
    let mut unknown = Vec::new();
    let workloads: Vec<WorkloadCapacity> =
        workloads(plan).iter().map(|view| workload_capacity(view, &mut unknown)).collect();
    let totals = Case::ALL.iter().map(|&case| total(&workloads, case)).collect();
    let mut current = TotalRow { case: Case::Planned, pods: Some(0), amounts: [Amount::Known(0); 4] };
    for w in &workloads {
        current.pods = current.pods.zip(w.replicas_before).map(|(a, b)| a + u64::from(b));
        for f in Figure::ALL {
            let this = match w.replicas_before {
                Some(n) => w.per_pod_before[f.index()].times(n),
                None => Amount::Unknown,
            };
            current.amounts[f.index()] = current.amounts[f.index()] + this;
        }
    }
    let mut capacity = Capacity { workloads, totals, current, quota: Vec::new(), unknown };
    capacity.quota = quota_rows(plan, &capacity);
    capacity
}

fn workload_capacity(view: &WorkloadView<'_>, unknown: &mut Vec<String>) -> WorkloadCapacity {
    let label = format!("{} {}", view.kind, view.name);
    let (counted, after, before) = containers(view, &label, unknown);
    let per_pod = Figure::ALL.map(|f| pod_amount(&after, f));
    let per_pod_before = Figure::ALL.map(|f| pod_amount(&before, f));
    for f in Figure::ALL {
        if per_pod[f.index()] == Amount::Unknown && counted != Counted::Nothing {
            unknown.push(format!(
                "{label}: the pod's {} is unknown: the plan does not set it and the live value was not detected",
                f.key()
            ));
        }
    }
    let unset = Figure::ALL
        .iter()
        .flat_map(|&f| after.iter().filter(move |c| c.unset(f)).map(move |c| (f, c.name.to_string())))
        .collect();

    let hpa = view.hpa_after().cloned();
    let replicas_before = view.replicas_before();
    // Under an HPA infra-scale never sends spec.replicas: the controller clamps the live current
    // count into [min, max] (0 stays 0: it disables the HPA), so that is the planned count, never
    // a clamp of the requested one.
    let planned = match (view.scale, &hpa) {
        (_, Some(h)) => replicas_before.map(|n| h.reconcile_current(n)),
        (Some(s), None) => Some(s.to),
        (None, None) => replicas_before,
    };
    if planned.is_none() {
        unknown.push(match (view.scale, &hpa) {
            (Some(_), Some(_)) => format!(
                "{label}: the replica count after the plan is unknown: the HPA clamps the current count, which was not detected (the requested count is not sent under an HPA)"
            ),
            _ => format!(
                "{label}: the replica count after the plan is unknown: the plan does not scale it and it was not detected"
            ),
        });
    }
    let surge = match view.kind {
        WorkloadKind::StatefulSet => Surge::None,
        WorkloadKind::Deployment if view.observed.and_then(|o| o.update_strategy.as_deref()) == Some("Recreate") => {
            Surge::Recreate
        }
        WorkloadKind::Deployment => match view.observed.and_then(|o| o.max_surge.as_deref()) {
            Some(text) => parse_surge(text),
            None => Surge::Percent { percent: 25, observed: false },
        },
    };
    if let Surge::Unreadable(text) = &surge {
        unknown.push(format!("{label}: maxSurge `{text}` is neither a percentage nor a pod count"));
    }
    // replicas 0 disables an HPA (R19): it then keeps the workload at 0.
    let (min, max) = match (&hpa, planned) {
        (Some(_), Some(0)) => (Some(0), Some(0)),
        (Some(h), _) => (Some(h.min), Some(h.max)),
        (None, p) => (p, p),
    };
    let peak = max.and_then(|m| surge.extra(m).map(|extra| m.saturating_add(extra)));
    let (hpa_cpu_basis, hpa_cpu_threshold) = match hpa.as_ref().and_then(|h| h.target_cpu) {
        Some(target) if counted != Counted::Nothing => match self::hpa_cpu_basis(&after) {
            Ok(basis) => (basis, basis.map(|b| b.saturating_mul(i128::from(target)) / 100)),
            Err(container) => {
                unknown.push(format!(
                    "{label}: container `{container}` has no CPU request, so the HPA cannot compute CPU utilization"
                ));
                (None, None)
            }
        },
        _ => (None, None),
    };
    WorkloadCapacity {
        kind: view.kind,
        name: view.name.to_string(),
        counted,
        per_pod,
        per_pod_before,
        replicas_before,
        pods: [planned, min, max, peak],
        hpa,
        surge,
        hpa_cpu_threshold,
        hpa_cpu_basis,
        unset,
    }
}

/// The pod's containers after and before the plan.
fn containers<'a>(
    view: &WorkloadView<'a>,
    label: &str,
    unknown: &mut Vec<String>,
) -> (Counted, Vec<Ctr<'a>>, Vec<Ctr<'a>>) {
    if let Some(obs) = view.observed {
        let before: Vec<Ctr<'a>> = obs
            .containers
            .iter()
            .map(|c| Ctr::observed(c, false))
            .chain(obs.init_containers.iter().map(|c| Ctr::observed(c, true)))
            .collect();
        let mut after = before.clone();
        if let Some(action) = view.resources {
            match view.target_container() {
                Ok(target) => {
                    if let Some(c) = after.iter_mut().find(|c| c.name == target.name) {
                        c.apply(action);
                    }
                }
                Err(why) => {
                    unknown.push(format!("{label}: the pod's figures after the plan are unknown: {why}"));
                    return (Counted::Nothing, Vec::new(), before);
                }
            }
        }
        if let Some(restore) = view.restore {
            match after.iter_mut().find(|c| c.name == restore.container) {
                Some(c) => c.restore(restore),
                None => {
                    unknown.push(format!(
                        "{label}: the pod's figures after the plan are unknown: container `{}` is not in the detected pod template",
                        restore.container
                    ));
                    return (Counted::Nothing, Vec::new(), before);
                }
            }
        }
        return (Counted::AllContainers, after, before);
    }
    if let Some(action) = view.resources {
        let name = action.container.as_deref().unwrap_or(view.name);
        let from = action.from.as_ref().and_then(|f| f.known());
        let before = Ctr {
            name,
            requests: from.map(|r| values(&r.requests)).unwrap_or_default(),
            limits: from.map(|r| values(&r.limits)).unwrap_or_default(),
            complete: from.is_some(),
            init: None,
        };
        let mut after = before.clone();
        after.apply(action);
        let before = if from.is_some() { vec![before] } else { Vec::new() };
        return (Counted::ChangedContainerOnly, vec![after], before);
    }
    if let Some(restore) = view.restore {
        let mut after =
            Ctr { name: &restore.container, requests: [None; 2], limits: [None; 2], complete: true, init: None };
        after.restore(restore);
        return (Counted::ChangedContainerOnly, vec![after], Vec::new());
    }
    unknown.push(format!(
        "{label}: the pod's requests and limits are unknown: the plan does not set them and the live state was not detected"
    ));
    (Counted::Nothing, Vec::new(), Vec::new())
}

fn total(workloads: &[WorkloadCapacity], case: Case) -> TotalRow {
    let mut row = TotalRow { case, pods: Some(0), amounts: [Amount::Known(0); 4] };
    for w in workloads {
        let pods = w.pods[case.index()];
        row.pods = row.pods.zip(pods).map(|(a, b)| a + u64::from(b));
        for f in Figure::ALL {
            let this = pods.map_or(Amount::Unknown, |n| w.per_pod[f.index()].times(n));
            row.amounts[f.index()] = row.amounts[f.index()] + this;
        }
    }
    row
}

fn parse_quota_value(text: Option<&String>) -> Option<i128> {
    text.and_then(|t| Quantity::parse(t).ok()).map(|q| q.nanos())
}

fn quota_rows(plan: &ScalePlan, capacity: &Capacity) -> Vec<QuotaRow> {
    let Some(observed) = &plan.observed else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    for quota in &observed.quotas {
        for key in QUOTA_KEYS {
            let Some(hard_text) = quota.hard.get(key) else {
                continue;
            };
            let Some(measure) = QuotaMeasure::for_key(key) else {
                continue;
            };
            let hard = parse_quota_value(Some(hard_text));
            // status.used omits a key only before the quota controller's first sync.
            let used = match quota.used.get(key) {
                Some(text) => parse_quota_value(Some(text)),
                None => Some(0),
            };
            let free = hard.zip(used).map(|(h, u)| h.saturating_sub(u));
            let mut problem = None;
            if hard.is_none() || used.is_none() {
                problem = Some(format!(
                    "hard `{}` / used `{}` is not a quantity",
                    hard_text,
                    quota.used.get(key).map_or("", String::as_str)
                ));
            }
            let change = Case::ALL.map(|case| match measure {
                QuotaMeasure::Pods => {
                    let after = capacity.total(case).pods;
                    match (after, capacity.current.pods) {
                        (Some(a), Some(b)) => Amount::Known((i128::from(a) - i128::from(b)) * NANO),
                        _ => Amount::Unknown,
                    }
                }
                QuotaMeasure::Figure(f) => {
                    let after = capacity.total(case).amounts[f.index()];
                    match (after, capacity.current.amounts[f.index()]) {
                        (Amount::Known(a), Amount::Known(b)) => Amount::Known(a.saturating_sub(b)),
                        (Amount::NoLimit, _) => Amount::NoLimit,
                        _ => Amount::Unknown,
                    }
                }
            });
            if let QuotaMeasure::Figure(f) = measure {
                let missing: Vec<String> = capacity
                    .workloads
                    .iter()
                    .flat_map(|w| {
                        w.unset
                            .iter()
                            .filter(move |(uf, _)| *uf == f)
                            .map(move |(_, c)| format!("{} {} container `{c}`", w.kind, w.name))
                    })
                    .collect();
                if !missing.is_empty() {
                    let what = if f.is_limit() { "limit" } else { "request" };
                    problem = Some(format!(
                        "the quota rejects pods with a container that sets no {} {what}, unless a LimitRange \
                         default fills it in: {}",
                        f.resource(),
                        missing.join(", ")
                    ));
                }
            }
            let rejected = problem.is_some() && hard.is_some() && used.is_some();
            let fits = change.map(|c| match (c, free) {
                _ if rejected => Some(false),
                (Amount::Known(c), Some(free)) => Some(c <= 0 || c <= free),
                (Amount::NoLimit, Some(_)) => Some(false),
                _ => None,
            });
            rows.push(QuotaRow {
                quota: quota.name.clone(),
                key: key.to_string(),
                measure,
                hard,
                used,
                free,
                change,
                fits,
                problem,
            });
        }
    }
    rows
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const GI: i128 = 1 << 30;

    /// The prototype's prod invocation as the planner writes it without `--detect`.
    pub(crate) const PROD: &str = indoc::indoc! {r#"
        apiVersion: infra.scale/v1
        kind: ScalePlan
        metadata:
          createdAt: 2025-10-11T00:00:00Z
          target: prod
        context:
          kubeContext: production
          namespace: assistant
        assumptions:
          autoscaling: hpa
          liveState: unknown
        actions:
          - action: scale_workload
            kind: Deployment
            name: web
            namespace: assistant
            from: "${detect}"
            to: 6
            reason: requested_scale
            hpa: web
            effective: 6
          - action: update_resources
            kind: Deployment
            name: web
            namespace: assistant
            from: "${detect}"
            requests: {cpu: 500m, memory: 1Gi}
            limits: {cpu: "1", memory: 2Gi}
          - action: scale_workload
            kind: Deployment
            name: api
            namespace: assistant
            from: "${detect}"
            to: 4
            reason: requested_scale
            hpa: api
            effective: 4
          - action: update_resources
            kind: Deployment
            name: api
            namespace: assistant
            from: "${detect}"
            requests: {cpu: 400m, memory: 1Gi}
            limits: {cpu: "1", memory: 2Gi}
          - action: apply_hpa
            kind: HorizontalPodAutoscaler
            name: web
            namespace: assistant
            hpa: {min: 4, max: 12, targetCPU: 65}
          - action: apply_hpa
            kind: HorizontalPodAutoscaler
            name: api
            namespace: assistant
            hpa: {min: 4, max: 12, targetCPU: 65}
        rollbackHints: []
        risks: []
        notes: []
    "#};

    pub(crate) fn plan(yaml: &str) -> ScalePlan {
        match serde_yaml::from_str(yaml) {
            Ok(p) => p,
            Err(e) => panic!("test plan does not parse: {e}"),
        }
    }

    /// A prod-like plan with `n` Deployments, each scaled, resized and given an HPA.
    pub(crate) fn many_workloads(n: usize) -> ScalePlan {
        let mut p = plan(PROD);
        let template = std::mem::take(&mut p.actions);
        for i in 0..n {
            let name = format!("w{i}");
            for a in [&template[0], &template[1], &template[4]] {
                let mut a = a.clone();
                match &mut a {
                    Action::ScaleWorkload(s) => {
                        s.name = name.clone();
                        s.hpa = Some(name.clone());
                    }
                    Action::UpdateResources(u) => u.name = name.clone(),
                    Action::ApplyHpa(h) => h.name = name.clone(),
                    _ => {}
                }
                p.actions.push(a);
            }
        }
        p
    }

    fn cores(millis: i128) -> Amount {
        Amount::Known(millis * 1_000_000)
    }

    fn gib(n: i128) -> Amount {
        Amount::Known(n * GI * NANO)
    }

    fn row(c: &Capacity, case: Case) -> (Option<u64>, [Amount; 4]) {
        let r = c.total(case);
        (r.pods, r.amounts)
    }

    #[test]
    fn prod_request_matches_the_reference_table() {
        // reference §6: web planned 6 / HPA max 12, api planned 4 / HPA max 12, surge ceil(25%).
        // The planned count is unknown without --detect: under an HPA the request is not sent,
        // the controller clamps the current count (issue 9 item 6).
        let c = compute(&plan(PROD));
        let web = &c.workloads[0];
        assert_eq!((web.name.as_str(), web.counted), ("web", Counted::ChangedContainerOnly));
        assert_eq!(web.per_pod, [cores(500), gib(1), cores(1000), gib(2)]);
        assert_eq!(web.pods, [None, Some(4), Some(12), Some(15)]);
        assert_eq!(Figure::ALL.map(|f| web.per_pod[f.index()].times(6)), [cores(3000), gib(6), cores(6000), gib(12)]);
        assert_eq!(
            Figure::ALL.map(|f| web.per_pod[f.index()].times(12)),
            [cores(6000), gib(12), cores(12000), gib(24)]
        );
        let api = &c.workloads[1];
        assert_eq!(api.pods, [None, Some(4), Some(12), Some(15)]);
        assert_eq!(Figure::ALL.map(|f| api.per_pod[f.index()].times(4)), [cores(1600), gib(4), cores(4000), gib(8)]);
        assert_eq!(
            Figure::ALL.map(|f| api.per_pod[f.index()].times(12)),
            [cores(4800), gib(12), cores(12000), gib(24)]
        );

        assert_eq!(row(&c, Case::Planned), (None, [Amount::Unknown; 4]));
        assert_eq!(row(&c, Case::HpaMin), (Some(8), [cores(3600), gib(8), cores(8000), gib(16)]));
        assert_eq!(row(&c, Case::HpaMax), (Some(24), [cores(10800), gib(24), cores(24000), gib(48)]));
        assert_eq!(row(&c, Case::HpaMaxSurge), (Some(30), [cores(13500), gib(30), cores(30000), gib(60)]));
        // R21: 65 % of a 500m request is 325m per pod.
        assert_eq!(web.hpa_cpu_threshold, Some(325_000_000));
        assert!(c.quota.is_empty());
        assert_eq!(c.current.pods, None);
    }

    /// Regression (issue 9 item 6): the planned count under an HPA was the requested count clamped
    /// into [min, max], but the request never reaches the server; the HPA controller clamps the
    /// current count (horizontal.go reconcileAutoscaler), whatever `effective` says.
    #[test]
    fn hpa_clamps_the_current_count_not_the_request() {
        let with_from = |from: u32, to: u32| {
            PROD.replacen("from: \"${detect}\"\n    to: 6", &format!("from: {from}\n    to: {to}"), 1)
        };
        let pods = |yaml: &str| compute(&plan(yaml)).workloads[0].pods;
        // Requested 20, current 6: the HPA keeps 6 (within [4, 12]), never 12.
        assert_eq!(pods(&with_from(6, 20)), [Some(6), Some(4), Some(12), Some(15)]);
        // Current 20 is lowered to max 12; current 2 is raised to min 4; requested 2 or 20 changes nothing.
        assert_eq!(pods(&with_from(20, 2))[Case::Planned.index()], Some(12));
        assert_eq!(pods(&with_from(2, 20))[Case::Planned.index()], Some(4));
        // A stale `effective` in the plan is not trusted.
        assert_eq!(pods(&with_from(2, 20).replace("effective: 6", "effective: 12"))[Case::Planned.index()], Some(4));
        // Current 0 disables the HPA: it stays 0.
        assert_eq!(pods(&with_from(0, 6)), [Some(0); 4]);
        // Not detected: unknown, and said so.
        let c = compute(&plan(PROD));
        assert_eq!(c.workloads[0].pods[Case::Planned.index()], None);
        assert!(
            c.unknown.iter().any(|u| u.contains("the HPA clamps the current count, which was not detected")),
            "{:?}",
            c.unknown
        );
    }

    #[test]
    fn surge_rounds_up_and_statefulsets_have_none() {
        let pct = Surge::Percent { percent: 25, observed: false };
        assert_eq!((pct.extra(6), pct.extra(12), pct.extra(1), pct.extra(0)), (Some(2), Some(3), Some(1), Some(0)));
        assert_eq!(parse_surge("3"), Surge::Pods(3));
        assert_eq!(parse_surge("50%"), Surge::Percent { percent: 50, observed: true });
        assert!(matches!(parse_surge("lots"), Surge::Unreadable(_)));
        let yaml = PROD.replace("kind: Deployment\n    name: api", "kind: StatefulSet\n    name: api");
        let c = compute(&plan(&yaml));
        assert_eq!(c.workloads[1].kind, WorkloadKind::StatefulSet);
        // The api HPA still targets the implicit Deployment `api`, so it is its own workload.
        let sts = &c.workloads[1];
        assert_eq!(sts.surge, Surge::None);
        // A Recreate Deployment never runs old and new pods together.
        let detected = detected().replace("  maxSurge: \"1\"\n", "  updateStrategy: Recreate\n");
        let web = &compute(&plan(&detected)).workloads[0];
        assert_eq!(web.surge, Surge::Recreate);
        assert_eq!(web.pods[Case::HpaMaxSurge.index()], web.pods[Case::HpaMax.index()]);
        assert_eq!(sts.pods, [Some(4), Some(4), Some(4), Some(4)]);
    }

    #[test]
    fn a_plan_without_resources_or_detection_says_unknown() {
        let yaml = indoc::indoc! {r#"
            apiVersion: infra.scale/v1
            kind: ScalePlan
            metadata: {createdAt: 2025-10-11T00:00:00Z, target: prod}
            context: {kubeContext: production, namespace: assistant}
            assumptions: {autoscaling: none}
            actions:
              - {action: scale_workload, kind: Deployment, name: web, namespace: assistant, from: "${detect}", to: 3, reason: requested_scale}
            rollbackHints: []
            risks: []
            notes: []
        "#};
        let c = compute(&plan(yaml));
        assert_eq!(c.workloads[0].per_pod, [Amount::Unknown; 4]);
        assert_eq!(c.workloads[0].pods, [Some(3), Some(3), Some(3), Some(4)]);
        assert_eq!(c.total(Case::Planned).amounts, [Amount::Unknown; 4]);
        assert_eq!(c.total(Case::Planned).pods, Some(3));
        assert_eq!(c.unknown.len(), 1, "{:?}", c.unknown);
        assert!(c.unknown[0].contains("Deployment web"), "{:?}", c.unknown);
    }

    /// The prod plan after `--detect`: web has a sidecar container and a native sidecar, api a
    /// regular init container; a quota covers the namespace.
    pub(crate) fn detected() -> String {
        PROD.replace("liveState: unknown", "liveState: detected")
            .replace("from: \"${detect}\"\n    to: 6", "from: 3\n    to: 6")
            .replace("from: \"${detect}\"\n    to: 4", "from: 4\n    to: 4")
            + indoc::indoc! {r#"
            observed:
              workloads:
                - kind: Deployment
                  name: web
                  uid: u1
                  resourceVersion: "10"
                  generation: 2
                  replicas: 3
                  maxSurge: "1"
                  containers:
                    - {name: web, requests: {cpu: 250m, memory: 512Mi}, limits: {cpu: 500m, memory: 1Gi}}
                    - {name: log-shipper, requests: {cpu: 50m, memory: 64Mi}, limits: {cpu: 100m, memory: 128Mi}}
                  initContainers:
                    - {name: mesh, restartPolicy: Always, requests: {cpu: 100m, memory: 128Mi}, limits: {cpu: 200m, memory: 256Mi}}
                - kind: Deployment
                  name: api
                  uid: u2
                  resourceVersion: "11"
                  generation: 5
                  replicas: 4
                  containers:
                    - {name: api, requests: {cpu: 400m, memory: 1Gi}, limits: {cpu: "1", memory: 2Gi}}
                  initContainers:
                    - {name: migrate, requests: {cpu: "2", memory: 256Mi}, limits: {cpu: "2", memory: 256Mi}}
                  hpa: {name: api, resourceVersion: "7", min: 2, max: 8, targetCPU: 80}
              quotas:
                - name: compute
                  hard: {requests.cpu: "12", requests.memory: 64Gi, limits.cpu: "20", pods: "40", count/configmaps: "9"}
                  used: {requests.cpu: 3200m, requests.memory: 6Gi, limits.cpu: "7", pods: "7"}
        "#}
    }

    #[test]
    fn observed_sidecars_and_init_containers_count_per_pod() {
        let c = compute(&plan(&detected()));
        let web = &c.workloads[0];
        assert_eq!(web.counted, Counted::AllContainers);
        // web after: 500m + 50m (log-shipper) + 100m (native sidecar) requested.
        assert_eq!(
            web.per_pod,
            [cores(650), Amount::Known((GI + (64 + 128) * (1 << 20)) * NANO), cores(1300), {
                Amount::Known((2 * GI + (128 + 256) * (1 << 20)) * NANO)
            }]
        );
        assert_eq!(web.per_pod_before[0], cores(400));
        assert_eq!(web.replicas_before, Some(3));
        // The current 3 raised to the HPA min 4 (the requested 6 is not sent); maxSurge 1 observed: 12 + 1.
        assert_eq!(web.pods, [Some(4), Some(4), Some(12), Some(13)]);
        // The HPA counts app containers and native sidecars: 65 % of 650m.
        assert_eq!(web.hpa_cpu_basis, Some(650_000_000));
        assert_eq!(web.hpa_cpu_threshold, Some(422_500_000));
        // api: the regular init container (2 CPU) is the peak, so the pod requests 2 CPU.
        let api = &c.workloads[1];
        assert_eq!(api.per_pod[Figure::RequestsCpu.index()], cores(2000));
        assert_eq!(api.per_pod[Figure::RequestsMemory.index()], gib(1));
        assert_eq!(api.hpa_cpu_basis, Some(400_000_000), "init containers do not count for the HPA");
        // Current: web 3 × 400m + api 4 × 2 CPU = 9.2 CPU; 7 pods.
        assert_eq!(c.current.pods, Some(7));
        assert_eq!(c.current.amounts[0], cores(9200));
        assert!(c.unknown.is_empty(), "{:?}", c.unknown);
    }

    #[test]
    fn quota_rows_compare_the_change_with_the_headroom() {
        let c = compute(&plan(&detected()));
        let keys: Vec<&str> = c.quota.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["pods", "requests.cpu", "requests.memory", "limits.cpu"], "count/* is not checked");
        let pods = &c.quota[0];
        assert_eq!(pods.free, Some(33 * NANO));
        // planned 4 (current 3 raised to min 4) + 4 = 8 (now 7): +1; HPA max + surge: web 12 + 1
        // (maxSurge 1), api 12 + 3: +21.
        assert_eq!(pods.change[Case::Planned.index()], Amount::Known(NANO));
        assert_eq!(pods.change[Case::HpaMaxSurge.index()], Amount::Known(21 * NANO));
        assert!(!pods.exceeded());
        let cpu = &c.quota[1];
        assert_eq!(cpu.free, Some(8_800_000_000));
        // planned: 4 × 650m + 4 × 2 = 10.6 CPU, now 9.2: +1.4, fits in 8.8.
        assert_eq!(cpu.change[Case::Planned.index()], cores(1400));
        assert_eq!(cpu.fits[Case::Planned.index()], Some(true));
        // HPA max + surge: 13 × 650m + 15 × 2 = 38.45 CPU: +29.25, does not fit.
        assert_eq!(cpu.change[Case::HpaMaxSurge.index()], cores(29250));
        assert_eq!(cpu.fits[Case::HpaMaxSurge.index()], Some(false));
        assert!(cpu.exceeded());
        assert!(cpu.problem.is_none());
    }

    #[test]
    fn a_container_without_a_limit_is_rejected_by_a_limits_quota() {
        let yaml = detected().replace(
            "{name: log-shipper, requests: {cpu: 50m, memory: 64Mi}, limits: {cpu: 100m, memory: 128Mi}}",
            "{name: log-shipper, requests: {cpu: 50m, memory: 64Mi}}",
        );
        let c = compute(&plan(&yaml));
        assert_eq!(c.workloads[0].per_pod[Figure::LimitsCpu.index()], Amount::NoLimit);
        assert_eq!(c.total(Case::Planned).amounts[Figure::LimitsCpu.index()], Amount::NoLimit);
        let limits = c.quota.iter().find(|r| r.key == "limits.cpu").map(|r| (r.fits, r.problem.clone()));
        let Some((fits, Some(problem))) = limits else { panic!("no limits.cpu problem: {:?}", c.quota) };
        assert_eq!(fits, [Some(false); 4]);
        assert!(problem.contains("Deployment web container `log-shipper`"), "{problem}");
        // Requests default to nothing missing: the container has requests.
        assert!(c.quota.iter().find(|r| r.key == "requests.cpu").is_some_and(|r| r.problem.is_none()));
    }

    #[test]
    fn a_limit_without_a_request_becomes_the_request() {
        let yaml = detected().replace(
            "{name: log-shipper, requests: {cpu: 50m, memory: 64Mi}, limits: {cpu: 100m, memory: 128Mi}}",
            "{name: log-shipper, limits: {cpu: 100m, memory: 128Mi}}",
        );
        let c = compute(&plan(&yaml));
        assert_eq!(c.workloads[0].per_pod[Figure::RequestsCpu.index()], cores(700));
    }

    #[test]
    fn unreadable_quota_values_leave_the_row_unchecked() {
        let yaml = detected().replace("requests.cpu: \"12\"", "requests.cpu: twelve");
        let c = compute(&plan(&yaml));
        let row = c.quota.iter().find(|r| r.key == "requests.cpu").map(|r| (r.fits, r.problem.is_some()));
        assert_eq!(row, Some(([None; 4], true)));
    }

    #[test]
    fn ambiguous_container_is_unknown_not_guessed() {
        let yaml = detected().replace("name: web, requests: {cpu: 250m", "name: app, requests: {cpu: 250m");
        let c = compute(&plan(&yaml));
        assert_eq!(c.workloads[0].counted, Counted::Nothing);
        assert_eq!(c.workloads[0].per_pod, [Amount::Unknown; 4]);
        assert!(c.unknown.iter().any(|u| u.contains("none is named `web`")), "{:?}", c.unknown);
        assert_eq!(c.quota[1].fits[0], None);
    }
}
