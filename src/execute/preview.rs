//! The kubectl invocations that change or validate something, in execution order, built from the
//! steps; and their `preview: kubectl …` rendering. The same list is run by `--execute`, so the
//! preview shows the real arguments (HPA manifests go on stdin and are summarised in a comment).

use crate::kubectl::Kubectl;
use crate::plan::WorkloadKind;

use super::FIELD_MANAGER;
use super::manifests::{self, Change};
use super::resolve::{HpaBase, Op, Step};

/// kubectl runs at once within a stage, and the most runs one group of objects is split into: each
/// run is mostly waiting for the API server.
pub const PARALLEL: usize = 4;

/// The stages of execution, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The server-side dry run (`--dry-run=server`) of every change below, nothing persisted:
    /// validation, admission, RBAC, and the patches' `test`s against the live values.
    DryRun,
    /// Restore plans: delete HPAs that did not exist before.
    DeleteHpas,
    /// Create new HPAs (`kubectl create`) and patch existing ones.
    Hpas,
    /// JSON-patch containers' requests and limits, one object per kubectl run.
    Resources,
    /// `scale --current-replicas=C --replicas=N` for the workloads sharing (C, N).
    Scale,
}

/// One kubectl run.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub stage: Stage,
    pub purpose: String,
    /// Arguments after the program (kubectl adds `--context` first, see [`Kubectl::argv`]).
    pub args: Vec<String>,
    pub stdin: Option<Vec<u8>>,
    pub comment: String,
    /// Indices into the step list of the actions this invocation carries out.
    pub steps: Vec<usize>,
}

impl Invocation {
    /// The same invocation as a server-side dry run.
    fn dry_run(&self) -> Invocation {
        let mut args = self.args.clone();
        // Before `-f -` / `-p PATCH` / the object names: after the verb is enough for kubectl.
        let at = args.iter().position(|a| {
            a == "--field-manager=infra-scale" || a.starts_with("--replicas=") || a == "--ignore-not-found"
        });
        args.insert(at.map(|i| i + 1).unwrap_or(args.len()), "--dry-run=server".into());
        Invocation {
            stage: Stage::DryRun,
            purpose: format!("{} (server-side dry run)", self.purpose),
            args,
            stdin: self.stdin.clone(),
            comment: format!("dry run, nothing persisted: {}", self.comment),
            steps: self.steps.clone(),
        }
    }
}

/// `Deployment/web container app: requests cpu=500m,memory=1Gi limits cpu=1,memory=2Gi`.
fn describe(op: &Op) -> String {
    match op {
        Op::Resources { kind, name, container, requests, limits, init, .. } => {
            let container = match container {
                Some(c) if *init => format!("init container {c}"),
                Some(c) => format!("container {c}"),
                None => format!("container <the only one, else `{name}`>"),
            };
            format!("{kind}/{name} {container}: requests {} limits {}", requests.describe(), limits.describe())
        }
        Op::Hpa { name, target, spec, metrics, .. } => {
            let cpu = spec.target_cpu.map(|c| format!(" cpu={c}%")).unwrap_or_default();
            let metrics =
                metrics.as_ref().map(|m| format!(" metrics: the snapshot's {} metric(s)", m.len())).unwrap_or_default();
            format!(
                "HorizontalPodAutoscaler/{name} (autoscaling/v2) for {}/{}: min={} max={}{cpu}{metrics}",
                target.kind, target.name, spec.min, spec.max
            )
        }
        Op::DeleteHpa { name } => format!("HorizontalPodAutoscaler/{name}"),
        Op::Scale { kind, name, .. } => format!("{kind}/{name}"),
    }
}

fn base(namespace: &str) -> Vec<String> {
    vec!["-n".into(), namespace.into()]
}

/// The placeholder of a patch a preview cannot compute (no live read and no observed state).
pub const PATCH_AT_EXECUTION: &str = "<JSON patch computed from the live object at execution>";

fn patch_invocation(
    namespace: &str,
    resource: &str,
    names: &[String],
    patch: Option<&[serde_json::Value]>,
) -> Vec<String> {
    let mut args = base(namespace);
    args.push("patch".into());
    args.extend(names.iter().map(|n| format!("{resource}/{n}")));
    args.extend([
        "--type=json".into(),
        format!("--field-manager={FIELD_MANAGER}"),
        "-p".into(),
        match patch {
            Some(p) => serde_json::Value::Array(p.to_vec()).to_string(),
            None => PATCH_AT_EXECUTION.into(),
        },
    ]);
    args
}

/// The invocations for `steps` (only pending/planned ones), in execution order: every change's
/// server-side dry run first, then HPA deletes, HPA creates and patches, resource patches (one per
/// object), and one scale per distinct (current, desired) pair.
pub fn invocations(namespace: &str, steps: &[Step]) -> Vec<Invocation> {
    let pending: Vec<(usize, &Op)> =
        steps.iter().enumerate().filter(|(_, s)| s.pending()).filter_map(|(i, s)| Some((i, s.op.as_ref()?))).collect();
    let mut out = Vec::new();

    let deletes: Vec<(usize, &Op)> =
        pending.iter().copied().filter(|(_, op)| matches!(op, Op::DeleteHpa { .. })).collect();
    if !deletes.is_empty() {
        let mut args = base(namespace);
        args.extend(["delete".into(), manifests::HPA_RESOURCE.into()]);
        let mut names = Vec::new();
        for (_, op) in &deletes {
            if let Op::DeleteHpa { name } = op {
                args.push(name.clone());
                names.push(format!("HorizontalPodAutoscaler/{name}"));
            }
        }
        args.push("--ignore-not-found".into());
        out.push(Invocation {
            stage: Stage::DeleteHpas,
            purpose: "deleting HPAs that did not exist before".into(),
            args,
            stdin: None,
            comment: format!("did not exist before: {}", names.join(", ")),
            steps: deletes.iter().map(|(i, _)| *i).collect(),
        });
    }

    // HPAs: new ones in one `kubectl create -f -`, existing ones patched one by one.
    let mut creates: Vec<(usize, serde_json::Value, String)> = Vec::new();
    for (i, op) in pending.iter().copied() {
        let Op::Hpa { name, .. } = op else { continue };
        match manifests::change_for(namespace, op) {
            Some(Change::Create(m)) => creates.push((i, m, describe(op))),
            Some(Change::Patch { resource, patch, .. }) => out.push(Invocation {
                stage: Stage::Hpas,
                purpose: format!("patching HorizontalPodAutoscaler/{name}"),
                args: patch_invocation(namespace, &resource, std::slice::from_ref(name), patch.as_deref()),
                stdin: None,
                comment: match op {
                    Op::Hpa { base: HpaBase::Unknown, .. } => {
                        format!("{}; created with `kubectl create` instead if it does not exist", describe(op))
                    }
                    _ => describe(op),
                },
                steps: vec![i],
            }),
            None => {}
        }
    }
    if !creates.is_empty() {
        let mut args = base(namespace);
        args.extend(["create".into(), format!("--field-manager={FIELD_MANAGER}"), "-f".into(), "-".into()]);
        let items: Vec<serde_json::Value> = creates.iter().map(|(_, m, _)| m.clone()).collect();
        out.push(Invocation {
            stage: Stage::Hpas,
            purpose: "creating HPAs".into(),
            args,
            stdin: Some(manifests::stream(&items).into_bytes()),
            comment: creates.iter().map(|(_, _, d)| format!("new {d}")).collect::<Vec<_>>().join("; "),
            steps: creates.iter().map(|(i, _, _)| *i).collect(),
        });
    }

    // Resources: one JSON patch per object, carrying every container change of that object.
    let mut objects: Vec<(WorkloadKind, String, Vec<usize>)> = Vec::new();
    for (i, op) in pending.iter().copied() {
        if let Op::Resources { kind, name, .. } = op {
            match objects.iter_mut().find(|(k, n, _)| k == kind && n == name) {
                Some((_, _, members)) => members.push(i),
                None => objects.push((*kind, name.clone(), vec![i])),
            }
        }
    }
    // Objects whose patches are identical (same kind, same container index, same tested and new
    // values) share kubectl runs, as the scales below do per (current, desired); a group is split
    // into up to PARALLEL runs (kubectl handles the objects of one run one after the other).
    type Entry = (String, Vec<usize>, Vec<String>);
    type PatchGroup = (WorkloadKind, Option<Vec<serde_json::Value>>, Vec<Entry>);
    let mut groups: Vec<PatchGroup> = Vec::new();
    for (kind, name, members) in objects {
        let mut patch: Option<Vec<serde_json::Value>> = Some(Vec::new());
        let mut comments = Vec::new();
        for &i in &members {
            let Some(op) = steps[i].op.as_ref() else { continue };
            comments.push(describe(op));
            match (manifests::change_for(namespace, op), patch.as_mut()) {
                (Some(Change::Patch { patch: Some(p), .. }), Some(all)) => all.extend(p),
                _ => patch = None,
            }
        }
        match groups.iter_mut().find(|g| g.0 == kind && g.1.is_some() && g.1 == patch) {
            Some(g) => g.2.push((name, members, comments)),
            None => groups.push((kind, patch, vec![(name, members, comments)])),
        }
    }
    for (kind, patch, entries) in groups {
        for chunk in entries.chunks(entries.len().div_ceil(PARALLEL)) {
            let names: Vec<String> = chunk.iter().map(|(n, _, _)| n.clone()).collect();
            let objects: Vec<String> = names.iter().map(|n| format!("{kind}/{n}")).collect();
            out.push(Invocation {
                stage: Stage::Resources,
                purpose: format!("patching the resources of {}", objects.join(", ")),
                args: patch_invocation(namespace, kind.qualified_resource(), &names, patch.as_deref()),
                stdin: None,
                comment: chunk.iter().flat_map(|(_, _, c)| c.clone()).collect::<Vec<_>>().join("; "),
                steps: chunk.iter().flat_map(|(_, m, _)| m.clone()).collect(),
            });
        }
    }

    // Replicas: one `kubectl scale` per distinct (current, desired) pair, with the current count
    // as a compare-and-swap precondition (R26); first-seen order.
    type Member = (usize, WorkloadKind, String);
    type Group = ((Option<u32>, u32), Vec<Member>);
    let mut groups: Vec<Group> = Vec::new();
    for (i, op) in &pending {
        if let Op::Scale { kind, name, current, to } = op {
            let key = (*current, *to);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push((*i, *kind, name.clone())),
                None => groups.push((key, vec![(*i, *kind, name.clone())])),
            }
        }
    }
    for ((current, to), all) in groups {
        for members in all.chunks(all.len().div_ceil(PARALLEL)) {
            let mut args = base(namespace);
            args.push("scale".into());
            let current_text = current.map(|c| c.to_string()).unwrap_or_else(|| "<live>".into());
            args.push(format!("--current-replicas={current_text}"));
            args.push(format!("--replicas={to}"));
            args.extend(members.iter().map(|(_, kind, name)| format!("{}/{name}", kind.resource())));
            let objects: Vec<String> = members.iter().map(|(_, kind, name)| format!("{kind}/{name}")).collect();
            let precondition = match current {
                Some(c) => format!("only while the live count is still {c}"),
                None => "<live>: the count read from the cluster just before, the scale fails if it moved (skipped \
                     if a live HPA targets the workload)"
                    .into(),
            };
            out.push(Invocation {
                stage: Stage::Scale,
                purpose: format!("scaling {} to {to} replicas", objects.join(", ")),
                args,
                stdin: None,
                comment: format!("{}: {current_text} → {to} replicas, {precondition}", objects.join(", ")),
                steps: members.iter().map(|(i, _, _)| *i).collect(),
            });
        }
    }

    // Every change is dry-run server-side first, in the same order.
    let mut all: Vec<Invocation> = out.iter().map(Invocation::dry_run).collect();
    all.extend(out);
    all
}

/// Quotes an argument for display when a shell would split or expand it.
fn shell_word(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_=./,:%@+".contains(c));
    if plain { arg.to_string() } else { format!("'{}'", arg.replace('\'', r"'\''")) }
}

/// `preview: kubectl <argv> # <comment>`.
pub fn render(kubectl: &Kubectl, inv: &Invocation) -> String {
    let argv: Vec<String> = kubectl.argv(&inv.args).iter().map(|a| shell_word(a)).collect();
    format!("preview: kubectl {} # {}", argv.join(" "), inv.comment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("--current-replicas=3"), "--current-replicas=3");
        assert_eq!(shell_word("--context=my ctx"), "'--context=my ctx'");
        assert_eq!(shell_word("<live>"), "'<live>'");
    }
}
