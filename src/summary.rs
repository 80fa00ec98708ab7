//! SUMMARY.md: what a reviewer reads in the pull request, rendered from a [`ScalePlan`] alone
//! (the planner, the executor and the GitHub publisher all have just the plan).
//!
//! Sections: title and an "at a glance" line; per workload the replicas, requests, limits and HPA
//! before → after; capacity per workload and in total (planned, HPA min, HPA max, HPA max +
//! surge); ResourceQuota headroom; risks and notes by severity; rollback; the preview command.
//!
//! Pure and deterministic. Every value that comes from the plan (an untrusted file in execution
//! mode) is escaped: Markdown specials are backslash-escaped, `|` cannot break a table, line
//! breaks and control or bidirectional-override characters cannot restructure the page, and
//! only backtick-free values become code spans. Written into one `String` in linear time.

use std::fmt::Write as _;

use crate::capacity::{self, Amount, Capacity, Case, Counted, Figure, QuotaMeasure, WorkloadCapacity, WorkloadView};
use crate::plan::{CONTAINER_RULE, Finding, HpaSpec, ResourceList, ScalePlan, Severity};
use crate::quantity::{Resource, format_bytes, format_decimal};

const NANO: i128 = capacity::NANO;
const NOT_DETECTED: &str = "unknown (not detected)";
const UNCHANGED: &str = "— (unchanged)";

/// Renders the full SUMMARY.md; ends with a newline.
pub fn render(plan: &ScalePlan) -> String {
    render_with(plan, &capacity::compute(plan))
}

/// [`render`] with the plan's capacity already computed (`capacity::compute(plan)`).
pub fn render_with(plan: &ScalePlan, capacity: &Capacity) -> String {
    let views = capacity::workloads(plan);
    let mut out = String::with_capacity(4096 + 1024 * views.len());
    title(&mut out, plan, &views, capacity);
    changes(&mut out, plan, &views, capacity);
    capacity_section(&mut out, capacity);
    quota_section(&mut out, plan, capacity);
    findings_section(&mut out, plan);
    rollback_section(&mut out, plan);
    preview_section(&mut out, plan);
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn title(out: &mut String, plan: &ScalePlan, views: &[WorkloadView<'_>], capacity: &Capacity) {
    out.push_str("# infra-scale plan ");
    code(out, &plan.metadata.target);
    out.push_str(": namespace ");
    code(out, &plan.context.namespace);
    out.push_str(", context ");
    code(out, &plan.context.kube_context);
    out.push_str("\n\n");

    let count = |severity| plan.risks.iter().chain(&plan.notes).filter(|f| f.severity == severity).count();
    let (errors, warnings, infos) = (count(Severity::Error), count(Severity::Warning), count(Severity::Info));
    out.push_str("**At a glance:** ");
    plural(out, views.len(), "workload", "workloads");
    out.push_str(", ");
    plural(out, plan.actions.len(), "action", "actions");
    out.push_str(" · ");
    if errors > 0 {
        out.push_str("**");
        plural(out, errors, "error", "errors");
        out.push_str("**");
    } else {
        out.push_str("0 errors");
    }
    out.push_str(", ");
    plural(out, warnings, "warning", "warnings");
    out.push_str(", ");
    plural(out, infos, "note", "notes");
    out.push_str(" · live state ");
    out.push_str(if detected(plan) { "detected" } else { "not detected" });
    let peak = capacity.total(Case::HpaMaxSurge);
    out.push_str(" · rollout peak at HPA max: ");
    match peak.pods {
        Some(pods) => plural(out, pods as usize, "pod", "pods"),
        None => out.push_str("unknown pods"),
    }
    out.push_str(", ");
    out.push_str(&amount(Resource::Cpu, peak.amounts[Figure::RequestsCpu.index()]));
    out.push_str(" CPU and ");
    out.push_str(&amount(Resource::Memory, peak.amounts[Figure::RequestsMemory.index()]));
    out.push_str(" memory requested · quota: ");
    let exceeded = capacity.quota.iter().filter(|r| r.exceeded()).count();
    match &plan.observed {
        None => out.push_str("not checked"),
        Some(o) if o.quotas.is_empty() => out.push_str("no ResourceQuota"),
        Some(_) if exceeded > 0 => {
            out.push_str("**");
            plural(out, exceeded, "key does not fit", "keys do not fit");
            out.push_str("**");
        }
        Some(_) if capacity.quota.iter().any(|r| r.fits.contains(&None)) => out.push_str("partly checked"),
        Some(_) => out.push_str("fits"),
    }
    out.push_str("\n\n");
    out.push_str("Created ");
    text(out, &plan.metadata.created_at);
    out.push_str(" · ");
    code(out, &plan.api_version);
    out.push(' ');
    text(out, &plan.kind);
    if !detected(plan) {
        out.push_str(" · before values are unknown: the plan was made without `--detect`");
    }
    out.push_str("\n\n");
}

fn detected(plan: &ScalePlan) -> bool {
    plan.assumptions.live_state == "detected" || plan.observed.is_some()
}

fn changes(out: &mut String, plan: &ScalePlan, views: &[WorkloadView<'_>], capacity: &Capacity) {
    out.push_str("## Changes\n\n");
    if views.is_empty() {
        out.push_str("No workload changes.\n\n");
    }
    for (view, cap) in views.iter().zip(&capacity.workloads) {
        workload_changes(out, plan, view, cap);
    }
    for action in &plan.actions {
        if let crate::plan::Action::DeleteHpa(a) = action {
            out.push_str("- HorizontalPodAutoscaler ");
            code(out, &a.name);
            out.push_str(" is deleted (it did not exist before execution).\n");
        }
    }
    if plan.actions.iter().any(|a| matches!(a, crate::plan::Action::DeleteHpa(_))) {
        out.push('\n');
    }
}

fn workload_changes(out: &mut String, plan: &ScalePlan, view: &WorkloadView<'_>, cap: &WorkloadCapacity) {
    out.push_str("### ");
    out.push_str(view.kind.as_str());
    out.push(' ');
    code(out, view.name);
    out.push_str("\n\n| | Before | After |\n|---|---|---|\n");

    // Replicas.
    out.push_str("| Replicas | ");
    match view.replicas_before() {
        Some(n) => push_num(out, n),
        None => out.push_str(NOT_DETECTED),
    }
    out.push_str(" | ");
    match view.scale {
        Some(s) => {
            let hpa = view.hpa_after();
            match (&s.hpa, hpa) {
                (Some(name), Some(h)) => {
                    // The request is never sent under an HPA: its controller clamps the current count.
                    match view.replicas_before().map(|n| h.reconcile_current(n)) {
                        Some(kept) if Some(kept) != view.replicas_before() => {
                            let _ = write!(out, "**{kept}** (requested {} is not sent; HPA ", s.to);
                            code(out, name);
                            let _ = write!(out, " clamps the current count into [{}, {}])", h.min, h.max);
                        }
                        Some(kept) => {
                            push_num(out, kept);
                            if kept == s.to {
                                out.push_str(" (HPA ");
                            } else {
                                let _ = write!(out, " (requested {} is not sent; HPA ", s.to);
                            }
                            code(out, name);
                            let _ = write!(out, " owns replicas, range [{}, {}])", h.min, h.max);
                        }
                        None => {
                            out.push_str("set by HPA ");
                            code(out, name);
                            let _ = write!(out, " in [{}, {}] (requested {} is not sent)", h.min, h.max, s.to);
                        }
                    }
                }
                (Some(name), None) => {
                    push_num(out, s.effective.unwrap_or(s.to));
                    out.push_str(" (HPA ");
                    code(out, name);
                    out.push_str(" owns replicas)");
                }
                (None, _) => {
                    push_num(out, s.to);
                    if view.replicas_before() == Some(s.to) {
                        out.push_str(" (no change)");
                    }
                }
            }
        }
        None => out.push_str(UNCHANGED),
    }
    out.push_str(" |\n");

    // Requests and limits of the changed container.
    let before = view.container_before();
    for (label, pick) in [("Requests", 0usize), ("Limits", 1usize)] {
        out.push_str("| ");
        out.push_str(label);
        out.push_str(" | ");
        let before_list = before.as_ref().map(|(r, l)| if pick == 0 { r } else { l });
        if view.resources.is_none() && view.restore.is_none() {
            out.push_str("— | ");
            out.push_str(UNCHANGED);
            out.push_str(" |\n");
            continue;
        }
        match before_list {
            Some(list) => resource_list(out, list),
            None => out.push_str(NOT_DETECTED),
        }
        out.push_str(" | ");
        if let Some(restore) = view.restore {
            let list = if pick == 0 { &restore.requests } else { &restore.limits };
            resource_list(out, list);
            out.push_str(" (restored exactly)");
        } else if let Some(action) = view.resources {
            let planned = if pick == 0 { &action.requests } else { &action.limits };
            let mut first = true;
            for r in [Resource::Cpu, Resource::Memory] {
                if !first {
                    out.push_str(", ");
                }
                first = false;
                out.push_str(r.name());
                out.push(' ');
                match (planned.get(r), before_list.and_then(|l| l.get(r))) {
                    (Some(q), Some(old)) if old == q => {
                        text(out, q.as_str());
                        out.push_str(" (no change)");
                    }
                    (Some(q), _) => text(out, q.as_str()),
                    (None, Some(old)) => {
                        text(out, old.as_str());
                        out.push_str(" (unchanged)");
                    }
                    (None, None) if before_list.is_some() => out.push_str("none (unchanged)"),
                    (None, None) => out.push_str("unchanged"),
                }
            }
        }
        out.push_str(" |\n");
    }

    // HPA.
    out.push_str("| HPA | ");
    match view.hpa_before() {
        Some(Some(spec)) => {
            hpa_text(out, spec);
            if let Some(h) = view.observed.and_then(|o| o.hpa.as_ref()) {
                if h.name != view.name {
                    out.push_str(" (");
                    code(out, &h.name);
                    out.push(')');
                }
                if !h.other_metrics.is_empty() {
                    out.push_str(", also ");
                    for (i, m) in h.other_metrics.iter().enumerate() {
                        if i > 0 {
                            out.push_str(", ");
                        }
                        text(out, m);
                    }
                }
            }
        }
        Some(None) => out.push_str("none"),
        None => out.push_str(NOT_DETECTED),
    }
    out.push_str(" | ");
    match (view.hpa, view.hpa_deleted) {
        (Some(a), _) => {
            hpa_text(out, &a.hpa);
            if a.name != view.name {
                out.push_str(" (");
                code(out, &a.name);
                out.push(')');
            }
        }
        (None, true) => out.push_str("deleted"),
        (None, false) => out.push_str(UNCHANGED),
    }
    out.push_str(" |\n\n");

    container_line(out, plan, view);
    if let (Some(threshold), Some(basis), Some(target)) =
        (cap.hpa_cpu_threshold, cap.hpa_cpu_basis, cap.hpa.as_ref().and_then(|h| h.target_cpu))
    {
        let _ = write!(
            out,
            "HPA scale-out point: {} CPU per pod on average ({target}% of the {}'s {} CPU request); \
             higher requests mean fewer replicas for the same load.\n\n",
            cpu(threshold),
            if cap.counted == Counted::ChangedContainerOnly { "changed container" } else { "pod" },
            cpu(basis),
        );
    }
}

fn container_line(out: &mut String, plan: &ScalePlan, view: &WorkloadView<'_>) {
    if let Some(restore) = view.restore {
        out.push_str("Container: ");
        code(out, &restore.container);
        out.push_str(".\n\n");
        return;
    }
    let Some(action) = view.resources else { return };
    out.push_str("Container: ");
    match &action.container {
        Some(name) => {
            code(out, name);
            out.push_str(" only");
        }
        None => {
            out.push_str("not named; execution picks ");
            text(out, plan.assumptions.container_rule.as_deref().unwrap_or(CONTAINER_RULE));
            if let Ok(c) = view.target_container() {
                out.push_str(" (with the detected template: ");
                code(out, &c.name);
                out.push(')');
            }
        }
    }
    if let (Some(obs), Ok(target)) = (view.observed, view.target_container()) {
        let others: Vec<_> =
            obs.containers.iter().chain(&obs.init_containers).filter(|c| c.name != target.name).collect();
        if !others.is_empty() {
            out.push_str("; unchanged: ");
            for (i, c) in others.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                code(out, &c.name);
                if obs.init_containers.iter().any(|ic| std::ptr::eq(ic, *c)) {
                    out.push_str(if c.restart_policy.as_deref() == Some("Always") {
                        " (native sidecar)"
                    } else {
                        " (init)"
                    });
                }
            }
        }
    }
    out.push_str(".\n\n");
}

fn capacity_section(out: &mut String, capacity: &Capacity) {
    out.push_str("## Capacity\n\n");
    if !capacity.workloads.is_empty() {
        out.push_str(
            "| Workload | Requests per pod | Limits per pod | Planned | HPA min | HPA max | HPA max + surge |\n\
             |---|---|---|---|---|---|---|\n",
        );
        for w in &capacity.workloads {
            out.push_str("| ");
            out.push_str(w.kind.as_str());
            out.push(' ');
            code(out, &w.name);
            out.push_str(" | ");
            figure_pair(out, w.per_pod[Figure::RequestsCpu.index()], w.per_pod[Figure::RequestsMemory.index()]);
            out.push_str(" | ");
            figure_pair(out, w.per_pod[Figure::LimitsCpu.index()], w.per_pod[Figure::LimitsMemory.index()]);
            for case in Case::ALL {
                out.push_str(" | ");
                match w.pods[case.index()] {
                    Some(n) => push_num(out, n),
                    None => out.push_str("unknown"),
                }
                if case == Case::HpaMaxSurge {
                    let max = w.pods[Case::HpaMax.index()];
                    match (max, w.pods[case.index()]) {
                        (Some(m), Some(p)) => {
                            let _ = write!(out, " (+{}, ", p.saturating_sub(m));
                        }
                        _ => out.push_str(" ("),
                    }
                    text(out, &w.surge.describe());
                    out.push(')');
                }
            }
            out.push_str(" |\n");
        }
        out.push('\n');
    }

    out.push_str(
        "| Total | Pods | CPU requests | Memory requests | CPU limits | Memory limits |\n|---|---|---|---|---|---|\n",
    );
    if capacity.current.pods.is_some() {
        total_row(out, "Now (detected)", capacity.current.pods, &capacity.current.amounts);
    }
    for row in &capacity.totals {
        let label = match row.case {
            Case::Planned => "At planned replicas",
            Case::HpaMin => "At HPA min",
            Case::HpaMax => "At HPA max",
            Case::HpaMaxSurge => "At HPA max + surge (rollout peak)",
        };
        total_row(out, label, row.pods, &row.amounts);
    }
    out.push('\n');

    if capacity.workloads.iter().any(|w| w.counted == Counted::ChangedContainerOnly) {
        out.push_str(
            "- Per-pod figures count only the container the plan changes: the live pod template was not \
             detected, so other containers and sidecars are not included (plan with `--detect`).\n",
        );
    }
    let no_hpa: Vec<&WorkloadCapacity> = capacity.workloads.iter().filter(|w| w.hpa.is_none()).collect();
    if !no_hpa.is_empty() && no_hpa.len() < capacity.workloads.len() {
        out.push_str("- Without an HPA, ");
        name_list(out, &no_hpa);
        out.push_str(" keep their planned replicas in the HPA rows.\n");
    }
    for reason in &capacity.unknown {
        out.push_str("- ");
        text(out, reason);
        out.push('\n');
    }
    out.push_str("- Not included: pod overhead (RuntimeClass) and LimitRange defaults.\n\n");
}

fn name_list(out: &mut String, workloads: &[&WorkloadCapacity]) {
    const SHOWN: usize = 10;
    for (i, w) in workloads.iter().take(SHOWN).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(w.kind.as_str());
        out.push(' ');
        code(out, &w.name);
    }
    if workloads.len() > SHOWN {
        let _ = write!(out, " and {} more", workloads.len() - SHOWN);
    }
}

fn total_row(out: &mut String, label: &str, pods: Option<u64>, amounts: &[Amount; 4]) {
    out.push_str("| ");
    out.push_str(label);
    out.push_str(" | ");
    match pods {
        Some(n) => push_num(out, n),
        None => out.push_str("unknown"),
    }
    for f in Figure::ALL {
        out.push_str(" | ");
        out.push_str(&amount(f.resource(), amounts[f.index()]));
    }
    out.push_str(" |\n");
}

fn quota_section(out: &mut String, plan: &ScalePlan, capacity: &Capacity) {
    out.push_str("## Quota headroom\n\n");
    let Some(observed) = &plan.observed else {
        out.push_str(
            "Not checked: the live state was not detected. Plan with `--detect` to compare the change with the \
             namespace's ResourceQuotas.\n\n",
        );
        return;
    };
    if observed.quotas.is_empty() {
        out.push_str("No ResourceQuota in namespace ");
        code(out, &plan.context.namespace);
        out.push_str(": no quota limits the change (node capacity still does).\n\n");
        return;
    }
    if capacity.quota.is_empty() {
        out.push_str("The namespace's ResourceQuotas limit none of pods, CPU or memory.\n\n");
        return;
    }
    out.push_str(
        "Change = new total − the workloads' current total; it fits when it is at most the free amount \
         (hard − used).\n\n\
         | ResourceQuota | Key | Free (hard − used) | Change at planned | Change at HPA max | Change at HPA max + surge |\n\
         |---|---|---|---|---|---|\n",
    );
    for row in &capacity.quota {
        out.push_str("| ");
        code(out, &row.quota);
        out.push_str(" | ");
        code(out, &row.key);
        out.push_str(" | ");
        match (row.free, row.hard, row.used) {
            (Some(free), Some(hard), Some(used)) => {
                out.push_str(&quota_value(row.measure, free));
                out.push_str(" (");
                out.push_str(&quota_value(row.measure, hard));
                out.push_str(" − ");
                out.push_str(&quota_value(row.measure, used));
                out.push(')');
            }
            _ => out.push_str("unreadable"),
        }
        for case in [Case::Planned, Case::HpaMax, Case::HpaMaxSurge] {
            out.push_str(" | ");
            let change = row.change[case.index()];
            let fits = row.fits[case.index()];
            let shown = match change {
                Amount::Known(v) => signed(row.measure, v),
                Amount::NoLimit => "no limit".into(),
                Amount::Unknown => "unknown".into(),
            };
            match fits {
                Some(false) => {
                    out.push_str("**");
                    out.push_str(&shown);
                    match (change, row.free) {
                        (Amount::Known(v), Some(free)) if v > free => {
                            out.push_str(": over by ");
                            out.push_str(&quota_value(row.measure, v.saturating_sub(free)));
                        }
                        (Amount::NoLimit, _) => {}
                        _ => out.push_str(": rejected"),
                    }
                    out.push_str("**");
                }
                Some(true) => {
                    out.push_str(&shown);
                    out.push_str(" (fits)");
                }
                None => out.push_str(&shown),
            }
        }
        out.push_str(" |\n");
    }
    out.push('\n');

    let exceeded: Vec<_> = capacity.quota.iter().filter(|r| r.exceeded()).collect();
    for row in &exceeded {
        out.push_str("- **Does not fit:** ");
        code(out, &row.quota);
        out.push(' ');
        code(out, &row.key);
        match &row.problem {
            Some(problem) => {
                out.push_str(": ");
                inline(out, problem);
                out.push_str(".\n");
            }
            None => {
                let first =
                    Case::ALL.into_iter().find(|c| row.fits[c.index()] == Some(false)).unwrap_or(Case::HpaMaxSurge);
                out.push(' ');
                out.push_str(first.label());
                out.push_str(
                    ". Pods beyond the quota fail admission (`FailedCreate`): the HPA or the rollout asks for them \
                     but they never start.\n",
                );
            }
        }
    }
    for row in capacity.quota.iter().filter(|r| r.problem.is_some() && !r.exceeded()) {
        out.push_str("- ");
        code(out, &row.quota);
        out.push(' ');
        code(out, &row.key);
        out.push_str(": ");
        inline(out, row.problem.as_deref().unwrap_or_default());
        out.push_str(".\n");
    }
    if exceeded.is_empty() && capacity.quota.iter().all(|r| !r.fits.contains(&None)) {
        out.push_str("- Every checked quota key fits, including at HPA max + surge.\n");
    }
    out.push_str(
        "- Terminating pods count against the quota until their grace period ends, so a rollout can briefly \
         need more than the surge row shows.\n\n",
    );
}

fn findings_section(out: &mut String, plan: &ScalePlan) {
    out.push_str("## Risks and notes\n\n");
    let all: Vec<&Finding> = plan.risks.iter().chain(&plan.notes).collect();
    if all.is_empty() {
        out.push_str("None.\n\n");
        return;
    }
    for (severity, heading) in [(Severity::Error, "Errors"), (Severity::Warning, "Warnings"), (Severity::Info, "Info")]
    {
        let group: Vec<&&Finding> = all.iter().filter(|f| f.severity == severity).collect();
        if group.is_empty() {
            continue;
        }
        let _ = write!(out, "### {heading} ({})\n\n", group.len());
        for f in group {
            out.push_str("- ");
            code(out, &f.code);
            if let Some(w) = f.workload.as_deref().filter(|w| !f.message.contains(*w)) {
                out.push_str(" (");
                code(out, w);
                out.push(')');
            }
            out.push_str(": ");
            inline(out, &f.message);
            out.push('\n');
        }
        out.push('\n');
    }
}

fn rollback_section(out: &mut String, plan: &ScalePlan) {
    out.push_str("## Rollback\n\n");
    for hint in &plan.rollback_hints {
        out.push_str("- ");
        rollback_hint(out, hint);
        out.push('\n');
    }
    if !plan.rollback_hints.is_empty() {
        out.push('\n');
    }
    let mut paragraph = false;
    if !plan.rollback_hints.iter().any(|h| h.contains("restore")) {
        out.push_str(
            "Execution snapshots the live state of every object it changes before changing anything and writes a \
             restore plan from that snapshot; applying the restore plan puts back replicas, container resources and \
             HPAs (deleting an HPA that did not exist).",
        );
        paragraph = true;
    }
    if !plan.rollback_hints.iter().any(|h| h.contains("rollout undo")) {
        if paragraph {
            out.push(' ');
        }
        out.push_str("`kubectl rollout undo` alone restores only the pod template, never replicas or an HPA.");
        paragraph = true;
    }
    if paragraph {
        out.push_str("\n\n");
    }
}

/// A hint: `kubectl -n …` commands as code (with a trailing `(explanation)` as text), anything
/// else (prose) as text with its own code spans.
fn rollback_hint(out: &mut String, hint: &str) {
    if hint.starts_with("kubectl -") && !hint.contains('`') {
        let (command, rest) = match hint.rfind(" (") {
            Some(i) if hint.ends_with(')') => hint.split_at(i),
            _ => (hint, ""),
        };
        code(out, command);
        text(out, rest);
    } else {
        inline(out, hint);
    }
}

fn preview_section(out: &mut String, plan: &ScalePlan) {
    out.push_str("## Preview execution\n\n");
    let target = &plan.metadata.target;
    if !target.is_empty() && target.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
        let _ = write!(
            out,
            "```sh\ninfra-scale apply --plan=ops/plans/infra-scale/{target}/plan.yaml --dry-run\n```\n\n\
             The dry run prints each kubectl call execution would make, without touching the cluster.\n"
        );
    } else {
        out.push_str("The plan's target ");
        text(out, target);
        out.push_str(" is not a valid name, so no preview command is shown.\n");
    }
}

// ---- formatting helpers ----

fn plural(out: &mut String, n: usize, one: &str, many: &str) {
    let _ = write!(out, "{n} {}", if n == 1 { one } else { many });
}

fn push_num(out: &mut String, n: impl std::fmt::Display) {
    let _ = write!(out, "{n}");
}

/// CPU in millicores below one core (`500m`, `422.5m`), in cores otherwise (`13.5`).
fn cpu(nanos: i128) -> String {
    if nanos > 0 && nanos < NANO { format!("{}m", format_decimal(nanos * 1000)) } else { format_decimal(nanos) }
}

fn value(resource: Resource, nanos: i128) -> String {
    match resource {
        Resource::Cpu => cpu(nanos),
        Resource::Memory => format_bytes(nanos / NANO),
    }
}

fn amount(resource: Resource, a: Amount) -> String {
    match a {
        Amount::Known(v) => value(resource, v),
        Amount::NoLimit => "no limit".into(),
        Amount::Unknown => "unknown".into(),
    }
}

fn quota_value(measure: QuotaMeasure, nanos: i128) -> String {
    let magnitude = nanos.checked_abs().unwrap_or(i128::MAX);
    let shown = match measure.resource() {
        Some(r) => value(r, magnitude),
        None => format_decimal(magnitude),
    };
    if nanos < 0 { format!("-{shown}") } else { shown }
}

fn signed(measure: QuotaMeasure, nanos: i128) -> String {
    if nanos >= 0 { format!("+{}", quota_value(measure, nanos)) } else { quota_value(measure, nanos) }
}

fn figure_pair(out: &mut String, cpu_amount: Amount, memory_amount: Amount) {
    out.push_str("cpu ");
    out.push_str(&amount(Resource::Cpu, cpu_amount));
    out.push_str(", memory ");
    out.push_str(&amount(Resource::Memory, memory_amount));
}

/// `cpu 500m, memory 1Gi`, or `none`.
fn resource_list(out: &mut String, list: &ResourceList) {
    if list.is_empty() {
        out.push_str("none");
        return;
    }
    let mut first = true;
    for r in [Resource::Cpu, Resource::Memory] {
        if let Some(q) = list.get(r) {
            if !first {
                out.push_str(", ");
            }
            first = false;
            out.push_str(r.name());
            out.push(' ');
            text(out, q.as_str());
        }
    }
}

fn hpa_text(out: &mut String, spec: &HpaSpec) {
    let _ = write!(out, "min {}, max {}", spec.min, spec.max);
    if let Some(cpu) = spec.target_cpu {
        let _ = write!(out, ", CPU {cpu}%");
    }
}

/// Characters that could reorder what a reviewer sees (bidirectional overrides, invisible marks).
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// Plain text: Markdown specials escaped, line breaks flattened, invisible characters shown.
fn text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '$' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c if is_invisible(c) => {
                let _ = write!(out, "U+{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// A value as a code span when it can be one safely; as escaped text otherwise.
fn code(out: &mut String, s: &str) {
    let safe = !s.is_empty()
        && !s.starts_with(' ')
        && !s.ends_with(' ')
        && !s.chars().any(|c| c == '`' || c == '|' || c.is_control() || is_invisible(c));
    if safe {
        out.push('`');
        out.push_str(s);
        out.push('`');
    } else {
        text(out, s);
    }
}

/// Text whose paired backticks become code spans (messages and hints use them); everything
/// else is escaped. Only used outside tables.
fn inline(out: &mut String, s: &str) {
    if !s.matches('`').count().is_multiple_of(2) {
        text(out, s);
        return;
    }
    for (i, part) in s.split('`').enumerate() {
        if i % 2 == 1 {
            code(out, part);
        } else {
            text(out, part);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::tests::{PROD, detected, plan};
    use crate::plan::{Finding, Severity};

    fn section<'a>(md: &'a str, heading: &str) -> &'a str {
        let start = md.find(heading).unwrap_or_else(|| panic!("no {heading} in\n{md}"));
        let rest = &md[start..];
        let end = rest[heading.len()..].find("\n## ").map_or(rest.len(), |i| i + heading.len() + 1);
        &rest[..end]
    }

    #[test]
    fn prod_summary_has_every_section_and_the_reference_totals() {
        let md = render(&plan(PROD));
        assert!(md.starts_with("# infra-scale plan `prod`: namespace `assistant`, context `production`\n\n"), "{md}");
        assert!(md.ends_with(".\n") && !md.ends_with("\n\n"), "{md}");
        for heading in ["## Changes", "## Capacity", "## Quota headroom", "## Risks and notes", "## Rollback"] {
            assert!(md.contains(heading), "{heading}");
        }
        let web = section(&md, "### Deployment `web`");
        assert!(
            web.contains(
                "| Replicas | unknown (not detected) | set by HPA `web` in [4, 12] (requested 6 is not sent) |"
            ),
            "{web}"
        );
        assert!(web.contains("| Requests | unknown (not detected) | cpu 500m, memory 1Gi |"), "{web}");
        assert!(web.contains("| Limits | unknown (not detected) | cpu 1, memory 2Gi |"), "{web}");
        assert!(web.contains("| HPA | unknown (not detected) | min 4, max 12, CPU 65% |"), "{web}");
        assert!(web.contains("Container: not named; execution picks the workload's only container"), "{web}");
        assert!(
            web.contains(
                "scale-out point: 325m CPU per pod on average (65% of the changed container's 500m CPU request)"
            ),
            "{web}"
        );
        let cap = section(&md, "## Capacity");
        assert!(
            cap.contains("| Deployment `web` | cpu 500m, memory 1Gi | cpu 1, memory 2Gi | unknown | 4 | 12 | 15 (+3, maxSurge 25% (default)) |"),
            "{cap}"
        );
        // reference §6 (its planned 10 pods counted the requested 6 + 4, which never reach the
        // server under the HPAs: the planned count is unknown until --detect reads the current one)
        assert!(cap.contains("| At planned replicas | unknown | unknown | unknown | unknown | unknown |"), "{cap}");
        assert!(cap.contains("| At HPA min | 8 | 3.6 | 8Gi | 8 | 16Gi |"), "{cap}");
        assert!(cap.contains("| At HPA max | 24 | 10.8 | 24Gi | 24 | 48Gi |"), "{cap}");
        assert!(cap.contains("| At HPA max + surge (rollout peak) | 30 | 13.5 | 30Gi | 30 | 60Gi |"), "{cap}");
        assert!(!cap.contains("Now (detected)"), "{cap}");
        assert!(cap.contains("count only the container the plan changes"), "{cap}");
        assert!(
            md.contains("rollout peak at HPA max: 30 pods, 13.5 CPU and 30Gi memory requested · quota: not checked")
        );
        assert!(section(&md, "## Quota headroom").contains("Not checked"));
        assert!(md.contains("```sh\ninfra-scale apply --plan=ops/plans/infra-scale/prod/plan.yaml --dry-run\n```\n"));
        assert!(section(&md, "## Risks and notes").contains("None."));
    }

    #[test]
    fn detected_summary_shows_before_after_and_quota() {
        let md = render(&plan(&detected()));
        let web = section(&md, "### Deployment `web`");
        // The current 3 is raised to the HPA min; the requested 6 never reaches the server.
        assert!(
            web.contains(
                "| Replicas | 3 | **4** (requested 6 is not sent; HPA `web` clamps the current count into [4, 12]) |"
            ),
            "{web}"
        );
        assert!(web.contains("| Requests | cpu 250m, memory 512Mi | cpu 500m, memory 1Gi |"), "{web}");
        assert!(web.contains("| HPA | none | min 4, max 12, CPU 65% |"), "{web}");
        assert!(
            web.contains("scale-out point: 422.5m CPU per pod on average (65% of the pod's 650m CPU request)"),
            "{web}"
        );
        assert!(
            web.contains("(with the detected template: `web`); unchanged: `log-shipper`, `mesh` (native sidecar)."),
            "{web}"
        );
        let api = section(&md, "### Deployment `api`");
        assert!(api.contains("| Replicas | 4 | 4 (HPA `api` owns replicas, range [4, 12]) |"), "{api}");
        assert!(
            api.contains("| Requests | cpu 400m, memory 1Gi | cpu 400m (no change), memory 1Gi (no change) |"),
            "{api}"
        );
        assert!(api.contains("| HPA | min 2, max 8, CPU 80% | min 4, max 12, CPU 65% |"), "{api}");
        assert!(api.contains("unchanged: `migrate` (init)."), "{api}");
        let cap = section(&md, "## Capacity");
        assert!(cap.contains("| Now (detected) | 7 | 9.2 |"), "{cap}");
        assert!(cap.contains("13 (+1, maxSurge 1)"), "{cap}");
        let quota = section(&md, "## Quota headroom");
        assert!(
            quota.contains("| `compute` | `pods` | 33 (40 − 7) | +1 (fits) | +17 (fits) | +21 (fits) |"),
            "{quota}"
        );
        assert!(
            quota.contains("| `compute` | `requests.cpu` | 8.8 (12 − 3.2) | +1.4 (fits) | **+22.6: over by 13.8** | **+29.25: over by 20.45** |"),
            "{quota}"
        );
        assert!(quota.contains("- **Does not fit:** `compute` `requests.cpu` at HPA max."), "{quota}");
        assert!(md.contains("quota: **2 keys do not fit**"), "{md}");
    }

    #[test]
    fn findings_are_grouped_by_severity_with_codes() {
        let mut p = plan(PROD);
        let f = |severity, code: &str, message: &str| Finding {
            severity,
            code: code.into(),
            workload: Some("web".into()),
            message: message.into(),
        };
        p.notes.push(f(Severity::Info, "rolling_restart", "Deployment/web: replaces every pod"));
        p.risks.push(f(Severity::Warning, "replicas_above_threshold", "HPA max 12 is above 10"));
        p.risks.push(f(Severity::Error, "limit_below_request", "Deployment/web: limit `1` < request"));
        let md = render(&p);
        let risks = section(&md, "## Risks and notes");
        let (e, w, i) = (risks.find("### Errors (1)"), risks.find("### Warnings (1)"), risks.find("### Info (1)"));
        assert!(e < w && w < i && e.is_some(), "{risks}");
        assert!(risks.contains(r"- `limit_below_request`: Deployment/web: limit `1` \< request"), "{risks}");
        assert!(risks.contains("- `replicas_above_threshold` (`web`): HPA max 12 is above 10"), "{risks}");
        assert!(md.contains("**1 error**, 1 warning, 1 note"), "{md}");
    }

    #[test]
    fn values_from_the_plan_are_escaped() {
        let mut p = plan(PROD);
        p.context.kube_context = "arn|ctx`<img src=x>`\n# heading".into();
        p.risks.push(Finding {
            severity: Severity::Warning,
            code: "odd|code".into(),
            workload: None,
            message: "a | b *bold* [link](http://x) <script> \u{202E}evil\n## injected".into(),
        });
        p.rollback_hints = vec![
            "kubectl -n assistant scale deployment/web --replicas=3".into(),
            "`a|b` c_d".into(),
            "kubectl -n assistant delete hpa web (it did not exist before)".into(),
            "kubectl rollout undo restores only the pod template".into(),
        ];
        let md = render(&p);
        let first = md.lines().next().unwrap_or_default();
        assert_eq!(
            first,
            r"# infra-scale plan `prod`: namespace `assistant`, context arn\|ctx\`\<img src=x\>\` \# heading"
        );
        assert!(
            md.contains(r"- odd\|code: a \| b \*bold\* \[link\](http://x) \<script\> U+202Eevil \#\# injected"),
            "{md}"
        );
        assert!(!md.contains("\n## injected") && !md.contains('\u{202E}'));
        assert!(md.contains("- `kubectl -n assistant scale deployment/web --replicas=3`\n"), "{md}");
        assert!(md.contains(r"- a\|b c\_d"), "{md}");
        assert!(md.contains("- `kubectl -n assistant delete hpa web` (it did not exist before)\n"), "{md}");
        assert!(md.contains("- kubectl rollout undo restores only the pod template\n"), "{md}");
        // Every table row still has the same number of cells as its header.
        for table in md.split("\n\n").filter(|b| b.starts_with('|')) {
            let cells = |line: &str| line.replace(r"\|", "").matches('|').count();
            let mut lines = table.lines();
            let header = cells(lines.next().unwrap_or_default());
            assert!(lines.all(|l| cells(l) == header), "{table}");
        }
    }

    #[test]
    fn missing_limits_under_a_limits_quota_are_flagged() {
        let yaml = detected().replace(
            "{name: log-shipper, requests: {cpu: 50m, memory: 64Mi}, limits: {cpu: 100m, memory: 128Mi}}",
            "{name: log-shipper, requests: {cpu: 50m, memory: 64Mi}}",
        );
        let md = render(&plan(&yaml));
        let quota = section(&md, "## Quota headroom");
        assert!(
            quota.contains("| `compute` | `limits.cpu` | 13 (20 − 7) | **no limit** | **no limit** | **no limit** |"),
            "{quota}"
        );
        assert!(
            quota.contains(
                "- **Does not fit:** `compute` `limits.cpu`: the quota rejects pods with a container that sets no cpu \
                 limit, unless a LimitRange default fills it in: Deployment web container `log-shipper`.\n"
            ),
            "{quota}"
        );
        assert!(section(&md, "## Capacity").contains("| cpu 650m, memory 1.19Gi | cpu no limit, memory no limit |"));
    }

    #[test]
    fn quota_section_without_quotas_and_restore_plans() {
        let mut p = plan(&detected());
        if let Some(o) = p.observed.as_mut() {
            o.quotas.clear();
        }
        let md = render(&p);
        assert!(md.contains("No ResourceQuota in namespace `assistant`"), "{md}");
        assert!(md.contains("quota: no ResourceQuota"), "{md}");

        // A restore plan: resources set back exactly and an HPA deleted.
        let restore = indoc::indoc! {r#"
            apiVersion: infra.scale/v1
            kind: ScalePlan
            metadata: {createdAt: 2025-10-11T00:00:00Z, target: prod}
            context: {kubeContext: production, namespace: assistant}
            assumptions: {autoscaling: none, liveState: detected}
            actions:
              - {action: delete_hpa, kind: HorizontalPodAutoscaler, name: web, namespace: assistant}
              - {action: restore_resources, kind: Deployment, name: web, namespace: assistant, container: web, requests: {cpu: 250m}}
              - {action: scale_workload, kind: Deployment, name: web, namespace: assistant, from: 6, to: 3, reason: restore}
            rollbackHints: []
            risks: []
            notes: []
        "#};
        let md = render(&plan(restore));
        let web = section(&md, "### Deployment `web`");
        assert!(web.contains("| Replicas | 6 | 3 |"), "{web}");
        assert!(web.contains("| Requests | unknown (not detected) | cpu 250m (restored exactly) |"), "{web}");
        assert!(web.contains("| Limits | unknown (not detected) | none (restored exactly) |"), "{web}");
        assert!(md.contains("- HorizontalPodAutoscaler `web` is deleted"), "{md}");
        assert!(
            section(&md, "## Capacity")
                .contains("| Deployment `web` | cpu 250m, memory 0 | cpu no limit, memory no limit | 3 | 3 | 3 | 4 "),
            "{md}"
        );
    }

    #[test]
    fn absurd_values_saturate_instead_of_panicking() {
        // An untrusted plan may carry the largest values the types accept.
        let yaml = detected()
            .replace("to: 6", "to: 4294967295")
            .replace("effective: 6", "effective: 4294967295")
            .replace("max: 12", "max: 4294967295")
            .replace("cpu: 500m, memory: 1Gi}", "cpu: 9e18, memory: 7Ei}")
            .replace("maxSurge: \"1\"", "maxSurge: \"4294967295%\"");
        let md = render(&plan(&yaml));
        assert!(md.contains("## Quota headroom"), "{md}");
        assert!(md.contains("over by"), "{md}");
        // Eight such workloads overflow an i128 of nano-cores unless sums saturate.
        let mut many = crate::capacity::tests::many_workloads(8);
        for action in &mut many.actions {
            match action {
                crate::plan::Action::ScaleWorkload(s) => {
                    s.to = u32::MAX;
                    s.effective = Some(u32::MAX);
                }
                crate::plan::Action::UpdateResources(u) => {
                    u.requests.cpu = crate::quantity::Quantity::parse("9e18").ok()
                }
                crate::plan::Action::ApplyHpa(h) => h.hpa.max = u32::MAX,
                _ => {}
            }
        }
        let c = crate::capacity::compute(&many);
        assert_eq!(c.total(Case::HpaMax).amounts[0], Amount::Known(i128::MAX));
        assert!(render(&many).contains("| At HPA max | 34359738360 |"));
    }

    #[test]
    fn render_is_deterministic_and_linear() {
        let many = crate::capacity::tests::many_workloads(2000);
        let start = std::time::Instant::now();
        let a = render(&many);
        let elapsed = start.elapsed();
        assert_eq!(a, render(&many));
        assert!(a.matches("### Deployment").count() == 2000);
        // Debug builds are ~10× slower than release; the release budget is 50 ms.
        assert!(elapsed.as_millis() < 500, "2,000 workloads took {elapsed:?}");
    }
}
