//! Pod admission before the first change. A server-side dry run of a Deployment or StatefulSet
//! update admits the workload, not its pods: LimitRange, PodSecurity, ResourceQuota and
//! RuntimeClass admission run only when the controllers create pods, after the change. So, once
//! the dry runs passed and before the restore plan is written:
//! - every workload whose container resources change becomes one Pod (its live pod template with
//!   the planned requests and limits, `generateName`, no `nodeName`), all of them sent in ONE
//!   `kubectl create --dry-run=server -f -`: the server applies LimitRange defaults, min, max and
//!   maxLimitRequestRatio, PodSecurity `enforce`, per-pod quota rules (a quota on `limits.cpu`
//!   rejects a pod without a CPU limit) and RuntimeClass overhead. A rejection is a refusal naming
//!   the workload and quoting the server. Credentials that may not create pods get one warning.
//! - ResourceQuota totals are computed here, from the same snapshot (`status.hard`, `status.used`):
//!   the change's extra usage (new per-pod figures × replicas after the change, plus the surge pods
//!   a Deployment's rolling update creates at once, minus the workload's current usage) must fit in
//!   `hard − used` for requests/limits of CPU and memory and for `pods`. The per-pod figures are
//!   [`crate::capacity`]'s (init containers, native sidecars, limit-as-request defaulting).
//!   A quota's own "exceeded quota" rejection of the single dry-run pod is left to these totals:
//!   the pod is counted on top of the pods it replaces, the totals are not. Restore plans only
//!   warn about totals (see [`check`]).

use serde_json::{Value, json};

use crate::capacity::{self, Amount, NANO, QuotaMeasure};
use crate::error::Error;
use crate::kubectl::KubectlError;
use crate::plan::{Action, Observed, ScalePlan, WorkloadKind};
use crate::quantity::{Quantity, Resource};

use super::resolve::{Op, Step};
use super::snapshot::Snapshot;
use super::{Session, manifests};

const HELP: &str = "nothing was changed; fix the plan's values or the namespace's policy (LimitRange, ResourceQuota, \
                    PodSecurity labels) and re-run";

/// One workload the plan changes, as admission sees it.
#[derive(Debug, Clone)]
struct Change<'a> {
    kind: WorkloadKind,
    name: &'a str,
    /// The pending resources ops of the workload.
    resources: Vec<&'a Op>,
    /// The replica count a pending scale sets.
    scale_to: Option<u32>,
}

fn changes(steps: &[Step]) -> Vec<Change<'_>> {
    let mut out: Vec<Change<'_>> = Vec::new();
    for s in steps.iter().filter(|s| s.pending()) {
        let (kind, name) = match &s.op {
            Some(Op::Resources { kind, name, .. } | Op::Scale { kind, name, .. }) => (*kind, name.as_str()),
            _ => continue,
        };
        let i = match out.iter().position(|c| c.kind == kind && c.name == name) {
            Some(i) => i,
            None => {
                out.push(Change { kind, name, resources: Vec::new(), scale_to: None });
                out.len() - 1
            }
        };
        match &s.op {
            Some(op @ Op::Resources { .. }) => out[i].resources.push(op),
            Some(Op::Scale { to, .. }) => out[i].scale_to = Some(*to),
            _ => {}
        }
    }
    out
}

/// Checks pod admission and quota totals for the pending steps; `Err` is a refusal (exit 3).
pub fn check(
    session: &Session,
    namespace: &str,
    plan: &ScalePlan,
    before: &Snapshot,
    steps: &[Step],
) -> Result<(), Error> {
    let changes = changes(steps);
    let mut problems = quota_problems(plan, before, &changes);
    // A restore plan goes back to values that ran before; refusing it on totals would keep the
    // failed change in place (its stuck surge pods fill the quota), so a misfit is only a warning.
    if plan.actions.iter().any(|a| matches!(a, Action::RestoreResources(_))) {
        for p in problems.drain(..) {
            crate::runner::warning(&format!("the restore may not fit the namespace's quota: {p}"));
        }
    }
    problems.extend(pod_problems(session, namespace, before, &changes)?);
    if problems.is_empty() {
        return Ok(());
    }
    let reason = if problems.len() == 1 {
        problems.remove(0)
    } else {
        format!("the planned pods would not be admitted:\n  - {}", problems.join("\n  - "))
    };
    Err(Error::refused(reason, HELP))
}

/// The Pod the controller would create from `raw`'s template once `ops` ran.
pub fn pod(namespace: &str, name: &str, raw: &Value, ops: &[&Op]) -> Value {
    let template = raw.pointer("/spec/template").cloned().unwrap_or(Value::Null);
    let mut spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
    if let Some(obj) = spec.as_object_mut() {
        obj.remove("nodeName");
        // The StatefulSet controller adds one volume per volumeClaimTemplate (claim NAME-STS-ORDINAL);
        // without them the containers' volumeMounts name volumes that do not exist.
        let claims = raw.pointer("/spec/volumeClaimTemplates").and_then(Value::as_array);
        let sts = raw.pointer("/metadata/name").and_then(Value::as_str).unwrap_or(name);
        for claim in claims.into_iter().flatten() {
            let Some(volume) = claim.pointer("/metadata/name").and_then(Value::as_str) else { continue };
            let volumes = obj.entry("volumes").or_insert_with(|| json!([]));
            if let Value::Array(list) = volumes
                && !list.iter().any(|v| v.get("name").and_then(Value::as_str) == Some(volume))
            {
                list.push(json!({"name": volume, "persistentVolumeClaim": {"claimName": format!("{volume}-{sts}-0")}}));
            }
        }
    }
    for op in ops {
        let Op::Resources { container: Some(container), init, requests, limits, .. } = op else { continue };
        let list = if *init { "initContainers" } else { "containers" };
        let Some(c) = spec
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .and_then(|cs| cs.iter_mut().find(|c| c.get("name").and_then(Value::as_str) == Some(container.as_str())))
        else {
            continue;
        };
        let resources = c.as_object_mut().map(|c| c.entry("resources").or_insert_with(|| json!({})));
        if let Some(Value::Object(resources)) = resources {
            for (key, list) in [("requests", requests), ("limits", limits)] {
                let entry = resources.entry(key).or_insert_with(|| json!({}));
                if let Value::Object(map) = entry {
                    map.extend(manifests::quantities(list));
                }
            }
        }
    }
    let mut metadata = json!({ "generateName": format!("{name}-"), "namespace": namespace });
    for key in ["labels", "annotations"] {
        if let Some(v) = template.pointer(&format!("/metadata/{key}")) {
            metadata[key] = v.clone();
        }
    }
    json!({ "apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec })
}

/// `kubectl create --dry-run=server -f - -o name`.
pub fn args(namespace: &str) -> Vec<String> {
    super::strings(&["create", "--dry-run=server", "--validate=false", "-n", namespace, "-f", "-", "-o", "name"])
}

/// Whether a kubectl error line is the API server's answer: `Error from server (Reason): …`, or
/// kubectl's form of an Invalid status, `The Pod "web-x" is invalid: …`.
fn server_answer(line: &str) -> bool {
    line.starts_with("Error from server") || (line.starts_with("The ") && line.contains(" is invalid:"))
}

/// kubectl's errors, one per failed document: `(whether the API server answered, the pod name
/// if quoted, the message)`.
fn rejections(stderr: &str) -> Vec<(bool, Option<String>, String)> {
    let mut entries: Vec<String> = Vec::new();
    for line in stderr.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("Warning:") || trimmed.starts_with("WARNING:") {
            continue;
        }
        if server_answer(trimmed) || trimmed.starts_with("error:") || entries.is_empty() {
            entries.push(trimmed.to_string());
        } else if let Some(last) = entries.last_mut() {
            last.push('\n');
            last.push_str(trimmed);
        }
    }
    entries
        .into_iter()
        .map(|e| {
            let server = server_answer(&e);
            let message = match e.find("error when creating \"STDIN\": ") {
                Some(i) => e[i + "error when creating \"STDIN\": ".len()..].to_string(),
                None => e.clone(),
            };
            let name = ["pods \"", "Pod \""].iter().find_map(|p| {
                let start = message.find(p)? + p.len();
                let len = message[start..].find('"')?;
                Some(message[start..start + len].to_string())
            });
            (server, name, message)
        })
        .collect()
}

/// Whether `pod` was generated from `generateName` `prefix-` (the server appends 5 characters to
/// at most 58 of them).
fn generated_from(pod: &str, workload: &str) -> bool {
    let prefix: String = format!("{workload}-").chars().take(58).collect();
    pod.strip_prefix(prefix.as_str()).is_some_and(|rest| rest.len() == 5)
}

fn pod_problems(
    session: &Session,
    namespace: &str,
    before: &Snapshot,
    changes: &[Change<'_>],
) -> Result<Vec<String>, Error> {
    let mut docs = Vec::new();
    let mut sent: Vec<&Change<'_>> = Vec::new();
    for c in changes.iter().filter(|c| !c.resources.is_empty()) {
        if let Some(raw) = before.raw(c.kind, c.name) {
            docs.push(pod(namespace, c.name, raw, &c.resources));
            sent.push(c);
        }
    }
    if docs.is_empty() {
        return Ok(Vec::new());
    }
    let stream = super::manifests::stream(&docs);
    let purpose = "checking that the planned pods are admitted (server-side dry run of one pod per changed workload)";
    let stderr = match session.run(purpose, &args(namespace), Some(stream.as_bytes())) {
        Ok(_) => return Ok(Vec::new()),
        Err(KubectlError::Failed { stderr, .. }) => stderr,
        Err(e) => return Err(Error::Failed(anyhow::anyhow!("{e}; nothing was changed"))),
    };
    if stderr.contains("cannot create resource \"pods\"") {
        crate::runner::warning(
            "pod admission (LimitRange, PodSecurity, per-pod quota rules) could not be checked before the change: \
             these credentials may not create pods, not even in a dry run",
        );
        return Ok(Vec::new());
    }
    // A webhook declaring side effects refuses every dry run (`admission webhook "x" does not
    // support dry run`): it cannot be asked, so it is not a refusal of the plan.
    if stderr.contains("does not support dry run") {
        crate::runner::warning(&format!(
            "pod admission could not be fully checked before the change: an admission webhook refuses dry runs: {}",
            stderr.lines().find(|l| l.contains("does not support dry run")).unwrap_or_default().trim()
        ));
        return Ok(Vec::new());
    }
    let rejected = rejections(&stderr);
    if rejected.is_empty() || rejected.iter().any(|(server, _, _)| !server) {
        // kubectl itself failed (no server answer to quote): nothing is known about admission.
        return Err(Error::Failed(anyhow::anyhow!("kubectl failed while {purpose}: {stderr}; nothing was changed")));
    }
    let mut out = Vec::new();
    for (_, pod, message) in rejected {
        // A quota's total is judged by `quota_problems`, which counts the pods a rollout replaces.
        if message.contains("exceeded quota:") {
            continue;
        }
        let owners: Vec<String> = sent
            .iter()
            .filter(|c| pod.as_deref().is_some_and(|p| generated_from(p, c.name)))
            .map(|c| format!("{}/{}", c.kind, c.name))
            .collect();
        let who = match owners.len() {
            1 => owners[0].clone(),
            0 => format!(
                "one of {}",
                sent.iter().map(|c| format!("{}/{}", c.kind, c.name)).collect::<Vec<_>>().join(", ")
            ),
            _ => owners.join(" or "),
        };
        out.push(format!("{who}: the API server would not admit its pods with the planned resources: {message}"));
    }
    Ok(out)
}

/// The per-workload extra usage of a quota measure, in nano-units, with a description.
fn extra(measure: QuotaMeasure, w: &capacity::WorkloadCapacity, before_replicas: u32, after_pods: u32) -> Option<i128> {
    match measure {
        QuotaMeasure::Pods => Some((i128::from(after_pods) - i128::from(before_replicas)) * NANO),
        QuotaMeasure::Figure(f) => {
            let after = w.per_pod[f.index()].times(after_pods);
            let before = w.per_pod_before[f.index()].times(before_replicas);
            match (after, before) {
                (Amount::Known(a), Amount::Known(b)) => Some(a - b),
                _ => None,
            }
        }
    }
}

/// A quota figure the way the server writes it: CPU in millicores below a whole core (`400m`).
fn show(measure: QuotaMeasure, nanos: i128) -> String {
    match measure.resource() {
        Some(Resource::Cpu) if nanos % NANO != 0 && nanos % 1_000_000 == 0 => format!("{}m", nanos / 1_000_000),
        Some(r) => r.display(nanos),
        None => format!("{}", nanos / NANO),
    }
}

fn quota_problems(plan: &ScalePlan, before: &Snapshot, changes: &[Change<'_>]) -> Vec<String> {
    let live = &before.state;
    if live.quotas.is_empty() || changes.is_empty() {
        return Vec::new();
    }
    // The capacity module's per-pod figures, against the live state rather than the plan's.
    let mut against_live = plan.clone();
    against_live.observed = Some(Observed { workloads: live.workloads.clone(), quotas: Vec::new() });
    let computed = capacity::compute(&against_live);
    // (change, replicas now, replicas after, surge pods, capacity figures)
    let mut rows = Vec::new();
    for c in changes {
        let (Some(w), Some(obs)) =
            (computed.workloads.iter().find(|w| w.kind == c.kind && w.name == c.name), live.workload(c.kind, c.name))
        else {
            continue;
        };
        let after = c.scale_to.unwrap_or(obs.replicas);
        let raw = before.raw(c.kind, c.name);
        let rolling = raw.is_some_and(|r| {
            r.pointer("/spec/strategy/type").and_then(Value::as_str).unwrap_or("RollingUpdate") == "RollingUpdate"
                && r.pointer("/spec/paused").and_then(Value::as_bool) != Some(true)
        });
        // A template change of a Deployment creates up to maxSurge pods above the replicas at once.
        let surge = match c.kind {
            WorkloadKind::Deployment if !c.resources.is_empty() && rolling => w.surge.extra(after).unwrap_or(0),
            _ => 0,
        };
        rows.push((c, obs.replicas, after, surge, w));
    }
    let mut out = Vec::new();
    for quota in &live.quotas {
        let scoped = before
            .state
            .object("ResourceQuota", &quota.name)
            .is_some_and(|i| i.pointer("/spec/scopes").is_some() || i.pointer("/spec/scopeSelector").is_some());
        if scoped {
            // A scoped quota counts only some pods; its per-pod rule is checked by the dry-run pod.
            continue;
        }
        for (key, hard_text) in &quota.hard {
            let Some(measure) = QuotaMeasure::for_key(key) else { continue };
            let parse = |t: Option<&String>| t.and_then(|t| Quantity::parse(t).ok()).map(|q| q.nanos());
            let (Some(hard), Some(used)) = (parse(Some(hard_text)), parse(quota.used.get(key)).or(Some(0))) else {
                continue;
            };
            let mut need = 0i128;
            let mut parts = Vec::new();
            for (c, now, after, surge, w) in &rows {
                let Some(e) = extra(measure, w, *now, after + surge) else { continue };
                if e == 0 {
                    continue;
                }
                need += e;
                let surge_text = if *surge > 0 {
                    format!(" incl. {surge} surge pod{} ({})", if *surge == 1 { "" } else { "s" }, w.surge.describe())
                } else {
                    String::new()
                };
                let sign = if e > 0 { "+" } else { "-" };
                parts.push(format!(
                    "{}/{} {sign}{} ({now} → {} pods{surge_text})",
                    c.kind,
                    c.name,
                    show(measure, e.abs()),
                    after + surge
                ));
            }
            let free = hard - used;
            if need > 0 && need > free {
                out.push(format!(
                    "ResourceQuota/{} {key}: used {} of hard {} ({} free); the change needs {} more: {}",
                    quota.name,
                    show(measure, used),
                    show(measure, hard),
                    show(measure, free.max(0)),
                    show(measure, need),
                    parts.join(", ")
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ResourceList;

    #[test]
    fn rejections_quote_the_server_and_name_the_pod() {
        let stderr = "Warning: would violate PodSecurity \"restricted:latest\"\n\
            Error from server (Forbidden): error when creating \"STDIN\": pods \"web-97nln\" is forbidden: maximum cpu usage per Container is 500m, but limit is 1\n\
            Error from server (Invalid): error when creating \"STDIN\": Pod \"big-6ck4s\" is invalid: spec.containers[0].resources.requests: Invalid value";
        let r = rejections(stderr);
        assert_eq!(r.len(), 2);
        assert!(r[0].0 && r[1].0);
        assert_eq!(r[0].1.as_deref(), Some("web-97nln"));
        assert!(r[0].2.starts_with("pods \"web-97nln\" is forbidden: maximum cpu usage"), "{}", r[0].2);
        assert_eq!(r[1].1.as_deref(), Some("big-6ck4s"));
        let invalid = rejections("The Pod \"db-vpnfp\" is invalid: \n* spec.a: Required value\n* spec.b: Invalid");
        assert_eq!(invalid.len(), 1);
        assert!(invalid[0].0, "an Invalid status is the server's answer");
        assert_eq!(invalid[0].1.as_deref(), Some("db-vpnfp"));
        assert!(invalid[0].2.ends_with("* spec.b: Invalid"), "{}", invalid[0].2);
        let client = rejections("error: error validating \"STDIN\": failed to download openapi");
        assert!(!client[0].0, "kubectl's own error is not the server's answer");
    }

    #[test]
    fn generated_names_map_to_exactly_one_workload() {
        assert!(generated_from("web-97nln", "web"));
        assert!(!generated_from("web-api-97nln", "web"));
        assert!(generated_from("web-api-97nln", "web-api"));
    }

    #[test]
    fn the_pod_carries_the_planned_resources_and_no_node() {
        let raw = json!({"spec": {"template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [
                {"name": "app", "resources": {"requests": {"cpu": "100m", "memory": "1Gi"}}},
                {"name": "side", "resources": {"requests": {"cpu": "5m"}}}]}}}});
        let op = Op::Resources {
            kind: WorkloadKind::Deployment,
            name: "web".into(),
            container: Some("app".into()),
            init: false,
            requests: ResourceList { cpu: Quantity::parse("300m").ok(), memory: Quantity::parse("1Gi").ok() },
            limits: ResourceList { cpu: Quantity::parse("1").ok(), memory: None },
            slot: None,
        };
        let p = pod("ns", "web", &raw, &[&op]);
        assert_eq!(p["metadata"], json!({"generateName": "web-", "namespace": "ns", "labels": {"app": "web"}}));
        assert!(p["spec"].get("nodeName").is_none());
        assert_eq!(
            p["spec"]["containers"][0]["resources"],
            json!({"requests": {"cpu": "300m", "memory": "1Gi"}, "limits": {"cpu": "1"}})
        );
        assert_eq!(p["spec"]["containers"][1]["resources"], json!({"requests": {"cpu": "5m"}}));
    }
}
