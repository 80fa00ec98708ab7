//! The planner: a pure function from a validated request, the observed cluster state (when
//! `--detect` read it) and the creation time to a [`ScalePlan`]. No I/O, no clock, no environment.

use crate::capacity::{self, Case};
use crate::error::{Error, Problems, Result};
use crate::observed::ClusterState;
use crate::plan::{
    Action, ApplyHpa, Assumptions, CONTAINER_RULE, Context, Finding, HpaKind, HpaSpec, Live, Metadata, Observed,
    ObservedHpa, ObservedWorkload, Resources, ScalePlan, ScaleWorkload, Severity, TargetRef, UpdateResources,
};
use crate::quantity::{Quantity, Resource};
use crate::request::{ScaleRequest, WorkloadRequest};

/// A built plan and its capacity (which SUMMARY.md shows; computed once).
#[derive(Debug, Clone)]
pub struct Planned {
    pub plan: ScalePlan,
    pub capacity: capacity::Capacity,
}

/// Builds the plan. With `live`, every requested workload must exist and `from:` is filled in.
pub fn build(req: &ScaleRequest, live: Option<&ClusterState>, created_at: &str) -> Result<Planned> {
    let resolved = resolve(req, live)?;
    let ns = &req.namespace;
    let mut actions = Vec::new();
    let mut findings = Vec::new();

    for r in &resolved {
        let w = r.request;
        if let Some(to) = w.replicas {
            let governing = r.governing_hpa();
            actions.push(Action::ScaleWorkload(ScaleWorkload {
                kind: w.kind,
                name: w.name.clone(),
                namespace: ns.clone(),
                from: live_value(live, r.observed.map(|o| o.replicas)),
                to,
                reason: "requested_scale".into(),
                hpa: governing.as_ref().map(|(name, _)| name.clone()),
                // The request never reaches the server under an HPA: the controller clamps the
                // live current count, so that is what is recorded (unknown without --detect).
                effective: governing
                    .as_ref()
                    .and_then(|(_, spec)| r.observed.map(|o| spec.reconcile_current(o.replicas))),
            }));
        }
        if !w.requests.is_empty() || !w.limits.is_empty() {
            actions.push(Action::UpdateResources(UpdateResources {
                kind: w.kind,
                name: w.name.clone(),
                namespace: ns.clone(),
                container: r.container.clone(),
                from: Some(live_value(
                    live,
                    r.observed_container()
                        .map(|c| Resources { requests: c.requests.clone(), limits: c.limits.clone() }),
                )),
                requests: w.requests.clone(),
                limits: w.limits.clone(),
            }));
        }
        findings.extend(workload_findings(req, r));
        findings.extend(ownership_findings(live, r));
    }
    for r in &resolved {
        if let Some(spec) = &r.request.hpa {
            let existing = r.observed.and_then(|o| o.hpa.as_ref());
            actions.push(Action::ApplyHpa(ApplyHpa {
                kind: HpaKind::HorizontalPodAutoscaler,
                name: r.hpa_name(),
                namespace: ns.clone(),
                target: Some(TargetRef { kind: r.request.kind, name: r.request.name.clone() }),
                hpa: spec.clone(),
                metrics: None,
                from: Some(live_value(
                    live,
                    r.observed.map(|_| match existing {
                        Some(h) => ObservedHpa::Present(h.spec.clone()),
                        None => ObservedHpa::Absent,
                    }),
                )),
            }));
        }
    }

    let any_hpa = resolved.iter().any(|r| r.governing_hpa().is_some());
    let unnamed: Vec<String> = actions
        .iter()
        .filter_map(|a| match a {
            Action::UpdateResources(u) if u.container.is_none() => Some(format!("{}/{}", u.kind, u.name)),
            _ => None,
        })
        .collect();
    let any_unnamed = !unnamed.is_empty();
    if any_unnamed {
        // One note for all of them: the rule is the same, and large plans stay small.
        let shown = if unnamed.len() > 10 {
            format!("{} and {} more", unnamed[..10].join(", "), unnamed.len() - 10)
        } else {
            unnamed.join(", ")
        };
        findings.push(Finding {
            severity: Severity::Info,
            code: "container_chosen_at_execution".into(),
            workload: None,
            message: format!("no container named for {shown}: execution picks {CONTAINER_RULE}"),
        });
    }
    let mut plan = ScalePlan {
        api_version: crate::plan::API_VERSION.into(),
        kind: crate::plan::KIND.into(),
        metadata: Metadata { created_at: created_at.into(), target: req.target.clone() },
        context: Context { kube_context: req.kube_context.clone(), namespace: ns.clone() },
        assumptions: Assumptions {
            autoscaling: if any_hpa { "hpa" } else { "none" }.into(),
            live_state: if live.is_some() { "detected" } else { "unknown" }.into(),
            replicas_threshold: req.replicas_threshold,
            container_rule: any_unnamed.then(|| CONTAINER_RULE.to_string()),
        },
        rollback_hints: rollback_hints(req, &resolved),
        actions,
        risks: Vec::new(),
        notes: Vec::new(),
        observed: live.map(|state| Observed {
            workloads: resolved.iter().filter_map(|r| r.observed.cloned()).collect(),
            quotas: state.quotas.clone(),
        }),
    };
    // Quota headroom needs the whole plan's capacity, so it is checked on the built plan.
    // Capacity depends on the actions and the observed state only, not on the findings.
    let capacity = capacity::compute(&plan);
    findings.extend(quota_findings(&capacity));
    (plan.risks, plan.notes) = findings.into_iter().partition(|f| f.severity >= Severity::Warning);
    Ok(Planned { plan, capacity })
}

/// ResourceQuota rows that do not fit: an error when the planned replicas already exceed the
/// quota, a warning when only the HPA's max (or the rollout surge on top of it) does.
fn quota_findings(cap: &capacity::Capacity) -> Vec<Finding> {
    let mut out = Vec::new();
    for row in cap.quota.iter().filter(|r| r.exceeded()) {
        let Some(case) = Case::ALL.into_iter().find(|c| row.fits[c.index()] == Some(false)) else { continue };
        let severity = if case == Case::Planned { Severity::Error } else { Severity::Warning };
        let shown = |n: i128| match row.measure.resource() {
            Some(r) => r.display(n),
            None => (n / capacity::NANO).to_string(),
        };
        let free = row.free.map(shown).unwrap_or_else(|| "?".into());
        let Some(change) = row.change[case.index()].known().map(shown) else {
            // No known amount: the quota rejects pods that set no value for the key at all.
            out.push(Finding {
                severity,
                code: "quota_exceeded".into(),
                workload: None,
                message: format!(
                    "ResourceQuota {} `{}`: {}",
                    row.quota,
                    row.key,
                    row.problem.as_deref().unwrap_or("the change cannot be computed")
                ),
            });
            continue;
        };
        out.push(Finding {
            severity,
            code: "quota_exceeded".into(),
            workload: None,
            message: format!(
                "ResourceQuota {} `{}`: the change {} (+{change}) does not fit the free {free}; pods beyond the quota fail admission (FailedCreate) while the rollout or the HPA waits for them",
                row.quota,
                row.key,
                case.label()
            ),
        });
    }
    for row in cap.quota.iter().filter(|r| !r.exceeded()) {
        if let Some(problem) = &row.problem
            && row.fits.iter().all(Option::is_none)
            && row.hard.is_some()
        {
            out.push(Finding {
                severity: Severity::Warning,
                code: "quota_unchecked".into(),
                workload: None,
                message: format!("ResourceQuota {} `{}`: {problem}", row.quota, row.key),
            });
        }
    }
    out
}

/// A requested workload with what was observed of it.
struct Resolved<'a> {
    request: &'a WorkloadRequest,
    observed: Option<&'a ObservedWorkload>,
    /// The container whose resources change: named, or chosen from the live state by the rule.
    container: Option<String>,
}

impl Resolved<'_> {
    /// The HPA that will govern the workload after the plan: the planned one, else an existing one.
    fn governing_hpa(&self) -> Option<(String, HpaSpec)> {
        match (&self.request.hpa, self.observed.and_then(|o| o.hpa.as_ref())) {
            (Some(spec), _) => Some((self.hpa_name(), spec.clone())),
            (None, Some(existing)) => Some((existing.name.clone(), existing.spec.clone())),
            (None, None) => None,
        }
    }

    /// An existing HPA that targets the workload keeps its name (never a second HPA for one target).
    fn hpa_name(&self) -> String {
        self.observed.and_then(|o| o.hpa.as_ref()).map(|h| h.name.clone()).unwrap_or_else(|| self.request.name.clone())
    }

    fn observed_container(&self) -> Option<&crate::plan::ObservedContainer> {
        let name = self.container.as_deref()?;
        self.observed?.containers.iter().chain(&self.observed?.init_containers).find(|c| c.name == name)
    }

    fn object(&self) -> String {
        format!("{}/{}", self.request.kind, self.request.name)
    }
}

fn resolve<'a>(req: &'a ScaleRequest, live: Option<&'a ClusterState>) -> Result<Vec<Resolved<'a>>> {
    let mut p = Problems::default();
    let mut out = Vec::new();
    for w in &req.workloads {
        let observed = live.and_then(|s| s.workload(w.kind, &w.name));
        if let Some(state) = live
            && observed.is_none()
        {
            let present: Vec<String> = state.workloads.iter().map(|o| format!("{}/{}", o.kind, o.name)).collect();
            p.push(
                format!("--workload={}:{}", w.kind, w.name),
                format!(
                    "{}/{} does not exist in namespace {} (context {})",
                    w.kind, w.name, req.namespace, req.kube_context
                ),
                if present.is_empty() {
                    "the namespace has no Deployments or StatefulSets; check --namespace and --context".to_string()
                } else {
                    format!("workloads in the namespace: {}", present.join(", "))
                },
            );
            continue;
        }
        let wants_resources = !w.requests.is_empty() || !w.limits.is_empty();
        let container = match (observed, &w.container) {
            (Some(o), Some(c)) => {
                let known: Vec<&str> = o.containers.iter().chain(&o.init_containers).map(|c| c.name.as_str()).collect();
                if !known.contains(&c.as_str()) {
                    p.push(
                        format!("--req={}/{c}", w.name),
                        format!("{}/{} has no container `{c}`", w.kind, w.name),
                        format!("one of: {}", known.join(", ")),
                    );
                }
                Some(c.clone())
            }
            (Some(o), None) if wants_resources => match choose_container(o, &w.name) {
                Some(c) => Some(c),
                None => {
                    let known: Vec<&str> = o.containers.iter().map(|c| c.name.as_str()).collect();
                    p.push(
                        format!("--req={}", w.name),
                        format!(
                            "{}/{} has {} containers and none is named `{}`; infra-scale will not guess",
                            w.kind,
                            w.name,
                            known.len(),
                            w.name
                        ),
                        format!(
                            "name the container: --req={}/CONTAINER:… with CONTAINER one of {}",
                            w.name,
                            known.join(", ")
                        ),
                    );
                    None
                }
            },
            (_, c) => c.clone(),
        };
        out.push(Resolved { request: w, observed, container });
    }
    if p.is_empty() { Ok(out) } else { Err(Error::Invalid(p.0)) }
}

/// [`CONTAINER_RULE`]: the only container, else the one named like the workload.
pub fn choose_container(o: &ObservedWorkload, workload: &str) -> Option<String> {
    match o.containers.as_slice() {
        [only] => Some(only.name.clone()),
        many => many.iter().find(|c| c.name == workload).map(|c| c.name.clone()),
    }
}

fn live_value<T>(live: Option<&ClusterState>, value: Option<T>) -> Live<T> {
    match (live, value) {
        (Some(_), Some(v)) => Live::Known(v),
        _ => Live::Detect,
    }
}

fn finding(severity: Severity, code: &str, workload: &str, message: String) -> Finding {
    Finding { severity, code: code.into(), workload: Some(workload.into()), message }
}

fn workload_findings(req: &ScaleRequest, r: &Resolved) -> Vec<Finding> {
    use Severity::{Error as E, Info as I, Warning as W};
    let w = r.request;
    let obj = r.object();
    let name = w.name.as_str();
    let mut out = Vec::new();
    let threshold = req.replicas_threshold;
    let governing = r.governing_hpa();
    let observed_replicas = r.observed.map(|o| o.replicas);

    if let Some(to) = w.replicas {
        if to > threshold {
            out.push(finding(
                W,
                "replicas_above_threshold",
                name,
                format!("{obj}: {to} replicas is above the threshold of {threshold}"),
            ));
        }
        match &governing {
            Some((hpa, spec)) if to == 0 => out.push(finding(
                E,
                "replicas_zero_under_hpa",
                name,
                format!(
                    "{obj}: 0 replicas requested while HPA {hpa} governs it; scaling to zero disables the HPA \
                     (it stops acting until replicas are raised again), so infra-scale will not set replicas; \
                     remove the HPA first to scale to zero (HPA range {}–{})",
                    spec.min, spec.max
                ),
            )),
            Some((hpa, spec)) if to < spec.min || to > spec.max => out.push(finding(
                W,
                "hpa_clamps_replicas",
                name,
                format!(
                    "{obj}: {to} replicas is outside HPA {hpa}'s range [{}, {}]; infra-scale never sends spec.replicas \
                     under an HPA, so {to} does not reach the server; {}",
                    spec.min,
                    spec.max,
                    hpa_effect(spec, observed_replicas)
                ),
            )),
            Some((hpa, spec)) => out.push(finding(
                I,
                "hpa_owns_replicas",
                name,
                format!(
                    "{obj}: HPA {hpa} owns spec.replicas, so infra-scale does not set it (the HPA would override it \
                     within 15 s); {}{}",
                    hpa_effect(spec, observed_replicas),
                    if to > spec.min {
                        format!("; to guarantee at least {to} replicas, raise the HPA min to {to}")
                    } else {
                        format!(", so never fewer than {}", spec.min)
                    }
                ),
            )),
            None => {}
        }
        if let Some(from) = observed_replicas.filter(|_| governing.is_none()) {
            if from > 0 && to >= from.saturating_mul(2) && to != from {
                out.push(finding(
                    W,
                    "large_jump",
                    name,
                    format!("{obj}: replicas {from} → {to} is a jump of {:.1}× up", f64::from(to) / f64::from(from)),
                ));
            } else if to > 0 && to.saturating_mul(2) <= from {
                out.push(finding(
                    W,
                    "large_jump",
                    name,
                    format!(
                        "{obj}: replicas {from} → {to} is a cut to {:.0}% or less",
                        100.0 * f64::from(to) / f64::from(from)
                    ),
                ));
            } else if to == 0 && from > 0 {
                out.push(finding(W, "scale_to_zero", name, format!("{obj}: replicas {from} → 0 stops every pod")));
            }
        }
        if w.kind == crate::plan::WorkloadKind::StatefulSet
            && let Some(from) = observed_replicas.filter(|&f| f > to)
        {
            out.push(finding(
                I,
                "statefulset_scale_down_keeps_volumes",
                name,
                format!("{obj}: scaling {from} → {to} removes pods from the highest ordinal; their PersistentVolumeClaims are retained (unless whenScaled: Delete) and reattach on scale-up"),
            ));
        }
    }

    if let Some(spec) = &w.hpa {
        if spec.max > threshold {
            out.push(finding(
                W,
                "replicas_above_threshold",
                name,
                format!("{obj}: HPA max {} lets the HPA run more replicas than the threshold of {threshold}", spec.max),
            ));
        }
        if let Some(existing) = r.observed.and_then(|o| o.hpa.as_ref()) {
            if !existing.other_metrics.is_empty() {
                out.push(finding(
                    W,
                    "hpa_metrics_replaced",
                    name,
                    format!(
                        "{obj}: HPA {} also scales on {}; applying infra-scale's HPA replaces its metrics with CPU utilization only",
                        existing.name,
                        existing.other_metrics.join(", ")
                    ),
                ));
            }
            if existing.name != w.name {
                out.push(finding(
                    I,
                    "hpa_existing_name",
                    name,
                    format!(
                        "{obj}: updating the existing HPA {} that targets it (never a second HPA for one workload)",
                        existing.name
                    ),
                ));
            }
        }
        if spec.target_cpu.is_some() {
            out.extend(cpu_request_check(r, &obj, name));
        }
    }

    if !w.requests.is_empty() || !w.limits.is_empty() {
        let before = r.observed_container();
        let mut changes = false;
        for (which, planned, observed) in
            [("request", &w.requests, before.map(|c| &c.requests)), ("limit", &w.limits, before.map(|c| &c.limits))]
        {
            for res in [Resource::Cpu, Resource::Memory] {
                let Some(new) = planned.get(res) else { continue };
                let old = observed.and_then(|o| o.get(res));
                if old != Some(new) {
                    changes = true;
                }
                if let Some(old) = old {
                    if let Some(f) = jump(old, new) {
                        out.push(finding(W, "large_jump", name, format!("{obj}: {res} {which} {old} → {new} is {f}")));
                    }
                    if res == Resource::Memory && which == "limit" && new < old {
                        out.push(finding(
                            W,
                            "memory_limit_decrease",
                            name,
                            format!("{obj}: memory limit {old} → {new} lowers the ceiling; pods using more than {new} are OOM-killed"),
                        ));
                    }
                }
            }
        }
        // Keys the plan leaves alone keep their live values (server-side apply merges per key).
        if let Some(b) = before {
            for res in [Resource::Cpu, Resource::Memory] {
                let req = w.requests.get(res).or(b.requests.get(res));
                let lim = w.limits.get(res).or(b.limits.get(res));
                if let (Some(req), Some(lim)) = (req, lim)
                    && lim < req
                {
                    out.push(finding(
                        E,
                        "limit_below_request",
                        name,
                        format!("{obj}: after the change the {res} request {req} exceeds the live {res} limit {lim}; the API server will reject it; set --lim for {res} too"),
                    ));
                }
            }
        }
        if before.is_none() || changes {
            out.extend(rollout_findings(r, &obj, name));
        } else {
            out.push(finding(
                I,
                "resources_unchanged",
                name,
                format!("{obj}: the requested resources equal the live ones; no rollout"),
            ));
        }
    }
    out
}

/// What the HPA controller does with the current replicas (horizontal.go reconcileAutoscaler):
/// it clamps only the current count into [min, max], then follows its metrics.
fn hpa_effect(spec: &HpaSpec, current: Option<u32>) -> String {
    let (min, max) = (spec.min, spec.max);
    match current {
        None => format!(
            "the HPA controller clamps the current replica count (not detected) into [{min}, {max}] and otherwise follows its metrics"
        ),
        Some(0) if min > 0 => {
            "the current replica count is 0, which disables the HPA: it keeps 0 until replicas are raised".into()
        }
        Some(c) if c < min => format!(
            "the HPA controller raises the current {c} replicas to its min {min}, then follows its metrics within [{min}, {max}]"
        ),
        Some(c) if c > max => format!(
            "the HPA controller lowers the current {c} replicas to its max {max}, then follows its metrics within [{min}, {max}]"
        ),
        Some(c) => {
            format!("the current {c} replicas are within [{min}, {max}]; the HPA moves them only by its metrics")
        }
    }
}

/// How a pod template change reaches the pods: a rolling update, or not at all for a paused
/// Deployment, an `OnDelete` StatefulSet, and only partly under a partition.
fn rollout_findings(r: &Resolved, obj: &str, name: &str) -> Vec<Finding> {
    use Severity::{Info as I, Warning as W};
    let kind = r.request.kind;
    let o = r.observed;
    let ns_target = format!("{}/{}", kind.resource(), r.request.name);
    if o.is_some_and(|o| o.paused) {
        return vec![finding(
            W,
            "rollout_paused",
            name,
            format!(
                "{obj} is paused (spec.paused: true): the template change is stored but no pod is replaced until \
                 `kubectl rollout resume {ns_target}`; execution applies the template and does not wait for a rollout"
            ),
        )];
    }
    match (kind, o.and_then(|o| o.update_strategy.as_deref()), o.and_then(|o| o.partition)) {
        (crate::plan::WorkloadKind::StatefulSet, Some("OnDelete"), _) => vec![finding(
            W,
            "on_delete_update",
            name,
            format!(
                "{obj} uses updateStrategy OnDelete: running pods keep their old resources until each is deleted; \
                 new pods get the new ones; execution applies the template and does not wait for a rollout"
            ),
        )],
        (crate::plan::WorkloadKind::StatefulSet, _, Some(p)) => {
            let replicas = r.request.replicas.or(o.map(|o| o.replicas)).unwrap_or(0);
            let replaced = if p >= replicas {
                "no pod is replaced".to_string()
            } else if p + 1 == replicas {
                format!("only the pod with ordinal {p} is replaced")
            } else {
                format!("only ordinals {p}–{} are replaced, one pod at a time from the highest ordinal", replicas - 1)
            };
            vec![finding(
                W,
                "partitioned_update",
                name,
                format!(
                    "{obj} has updateStrategy.rollingUpdate.partition {p}: pods with ordinal < {p} keep the old resources \
                     ({replaced})"
                ),
            )]
        }
        (crate::plan::WorkloadKind::StatefulSet, _, _) => vec![finding(
            I,
            "rolling_restart",
            name,
            format!("{obj}: the resource change replaces every pod, one pod at a time, from the highest ordinal"),
        )],
        (_, Some("Recreate"), _) => vec![finding(
            I,
            "rolling_restart",
            name,
            format!(
                "{obj}: the resource change replaces every pod; strategy Recreate stops all old pods before new ones start"
            ),
        )],
        _ => vec![finding(
            I,
            "rolling_restart",
            name,
            format!("{obj}: the resource change replaces every pod, by a rolling update"),
        )],
    }
}

/// The fields of the live objects this workload's actions change, with who owns them
/// (managedFields read by `--detect`): `owned_by_gitops` when a sync would revert the change,
/// `takes_over_fields` when one-off kubectl managers lose exactly these fields.
fn ownership_findings(live: Option<&ClusterState>, r: &Resolved) -> Vec<Finding> {
    use crate::ownership::{self, Field, OwnerClass, Section};
    let (Some(state), Some(o)) = (live, r.observed) else { return Vec::new() };
    let w = r.request;
    let name = w.name.as_str();
    let mut objects: Vec<(String, &serde_json::Value, Vec<Field>)> = Vec::new();
    let mut workload_fields = Vec::new();
    if let Some(to) = w.replicas
        && r.governing_hpa().is_none()
        && o.replicas != to
    {
        workload_fields.push(Field::Replicas);
    }
    if let (Some(c), Some(container)) = (r.observed_container(), r.container.as_deref()) {
        let init = o.init_containers.iter().any(|i| i.name == container);
        for (section, planned, before) in
            [(Section::Requests, &w.requests, &c.requests), (Section::Limits, &w.limits, &c.limits)]
        {
            for resource in [Resource::Cpu, Resource::Memory] {
                if let Some(new) = planned.get(resource)
                    && before.get(resource) != Some(new)
                {
                    workload_fields.push(Field::Resource { init, container, section, resource });
                }
            }
        }
    }
    if let Some(obj) = state.object(w.kind.as_str(), &w.name) {
        objects.push((r.object(), obj, workload_fields));
    }
    if let (Some(spec), Some(existing)) = (&w.hpa, o.hpa.as_ref())
        && let Some(obj) = state.object("HorizontalPodAutoscaler", &existing.name)
    {
        let mut fields = Vec::new();
        if spec.min != existing.spec.min {
            fields.push(Field::HpaMin);
        }
        if spec.max != existing.spec.max {
            fields.push(Field::HpaMax);
        }
        if spec.target_cpu.is_some() && spec.target_cpu != existing.spec.target_cpu {
            fields.push(Field::HpaMetrics);
        }
        objects.push((format!("HorizontalPodAutoscaler/{}", existing.name), obj, fields));
    }
    let mut out = Vec::new();
    for (label, obj, fields) in objects {
        if fields.is_empty() {
            continue;
        }
        let a = ownership::assess(obj, &fields, &[]);
        if !a.owned_by_gitops.is_empty() {
            // The names --allow-owner accepts for what was found: the tool word when the tool is
            // known, else the manager name.
            let mut names: Vec<String> = Vec::new();
            for f in &fields {
                for owner in ownership::field_owners(obj, f) {
                    let n = match owner.class {
                        OwnerClass::InfraScale => continue,
                        OwnerClass::OneOff | OwnerClass::Other => owner.manager.clone(),
                        c => c.tool_word().unwrap_or_default().to_string(),
                    };
                    if !names.contains(&n) {
                        names.push(n);
                    }
                }
            }
            for m in ownership::markers(obj) {
                let n = m.tool.tool_word().unwrap_or_default().to_string();
                if !n.is_empty() && !names.contains(&n) && names.iter().any(|x| x.starts_with("kubectl")) {
                    names.push(n);
                }
            }
            let allow: Vec<String> = names.iter().map(|n| format!("--allow-owner={n}")).collect();
            out.push(finding(
                Severity::Warning,
                "owned_by_gitops",
                name,
                format!(
                    "{label}: {}; a GitOps sync, `helm upgrade` or the owning controller puts its own values back and \
                     reverts this change, so make it in the source of truth (chart values, Git) instead; execution \
                     refuses unless {} is given",
                    a.owned_by_gitops.join("; "),
                    allow.join(" ")
                ),
            ));
        }
        if !a.takeovers.is_empty() {
            let mut managers: Vec<&str> = a.takeovers.iter().map(|(_, m)| m.as_str()).collect();
            managers.dedup();
            managers.sort_unstable();
            managers.dedup();
            let fields: Vec<&str> = a.takeovers.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>();
            let mut fields_unique: Vec<&str> = Vec::new();
            for f in fields {
                if !fields_unique.contains(&f) {
                    fields_unique.push(f);
                }
            }
            out.push(finding(
                Severity::Info,
                "takes_over_fields",
                name,
                format!(
                    "{label}: the approved plan takes over exactly these fields from the one-off manager(s) {}: {}; \
                     their other fields keep their owners",
                    managers.join(", "),
                    fields_unique.join(", ")
                ),
            ));
        }
    }
    out
}

/// HPA CPU utilization is a percentage of the CPU request: without requests on every
/// container, the HPA stops acting (`missing request for cpu`).
fn cpu_request_check(r: &Resolved, obj: &str, name: &str) -> Vec<Finding> {
    let planned_cpu = r.request.requests.cpu.is_some();
    let Some(o) = r.observed else {
        if planned_cpu {
            return Vec::new();
        }
        return vec![finding(
            Severity::Warning,
            "hpa_cpu_without_request",
            name,
            format!(
                "{obj}: the HPA targets CPU utilization but the plan sets no CPU request and the live requests were not detected; without a CPU request on every container the HPA does not act (run with --detect to check)"
            ),
        )];
    };
    let target = r.container.as_deref();
    let missing: Vec<&str> = o
        .containers
        .iter()
        .chain(o.init_containers.iter().filter(|c| c.restart_policy.as_deref() == Some("Always")))
        .filter(|c| c.requests.cpu.is_none() && !(planned_cpu && Some(c.name.as_str()) == target))
        .map(|c| c.name.as_str())
        .collect();
    if missing.is_empty() {
        return Vec::new();
    }
    vec![finding(
        Severity::Error,
        "hpa_cpu_without_request",
        name,
        format!(
            "{obj}: the HPA targets CPU utilization but container(s) {} have no CPU request; the HPA cannot compute utilization and will not act",
            missing.join(", ")
        ),
    )]
}

fn jump(old: &Quantity, new: &Quantity) -> Option<String> {
    let (o, n) = (old.nanos(), new.nanos());
    if o == 0 {
        return None;
    }
    if n >= 2 * o {
        Some(format!("{:.1}× up", n as f64 / o as f64))
    } else if 2 * n <= o {
        Some(format!("a cut to {:.0}%", 100.0 * n as f64 / o as f64))
    } else {
        None
    }
}

fn rollback_hints(req: &ScaleRequest, resolved: &[Resolved]) -> Vec<String> {
    let ns = &req.namespace;
    let mut hints = vec![format!(
        "infra-scale apply --execute snapshots every targeted object first and writes restore-plan.yaml; \
         `infra-scale apply --plan=<artifacts>/restore-plan.yaml --execute` returns replicas, resources and HPAs to that snapshot"
    )];
    for r in resolved {
        let w = r.request;
        let Some(o) = r.observed else { continue };
        let target = format!("{}/{}", w.kind.resource(), w.name);
        if w.replicas.is_some() && r.governing_hpa().is_none() {
            hints.push(format!("kubectl -n {ns} scale {target} --replicas={}", o.replicas));
        }
        if let Some(c) = r.observed_container()
            && (!w.requests.is_empty() || !w.limits.is_empty())
        {
            let mut parts = Vec::new();
            if !c.requests.is_empty() {
                parts.push(format!("--requests={}", c.requests.to_kubectl()));
            }
            if !c.limits.is_empty() {
                parts.push(format!("--limits={}", c.limits.to_kubectl()));
            }
            if parts.is_empty() {
                parts.push("(the container had no cpu/memory requests or limits; remove the ones set)".into());
            }
            hints.push(format!("kubectl -n {ns} set resources {target} -c {} {}", c.name, parts.join(" ")));
        }
        if w.hpa.is_some() {
            match &o.hpa {
                None => hints.push(format!("kubectl -n {ns} delete hpa {} (it did not exist before)", r.hpa_name())),
                Some(h) => hints.push(format!(
                    "kubectl -n {ns} patch hpa {} --type=merge -p '{{\"spec\":{{\"minReplicas\":{},\"maxReplicas\":{}}}}}' (previous bounds{})",
                    h.name,
                    h.spec.min,
                    h.spec.max,
                    h.spec.target_cpu.map(|c| format!(", CPU target {c}%")).unwrap_or_default()
                )),
            }
        }
    }
    hints.push(
        "kubectl rollout undo restores only the pod template of the previous revision: it does not restore replicas or an HPA, and rolls back someone else's change when the resources were already equal".into(),
    );
    hints
}
