//! The kubectl invocations that change or validate something, in execution order, built from the
//! steps; and their `preview: kubectl …` rendering. The same list is run by `--execute`, so the
//! preview shows the real arguments (manifests go on stdin and are summarised in a comment).

use crate::kubectl::Kubectl;
use crate::plan::{ResourceList, WorkloadKind};

use super::FIELD_MANAGER;
use super::manifests;
use super::resolve::{Op, Step};

/// The stages of execution, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `apply --server-side --dry-run=server` of every object: validation and admission, nothing persisted.
    DryRun,
    /// Restore plans: delete HPAs that did not exist before.
    DeleteHpas,
    /// `apply --server-side` of every object.
    Apply,
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

fn describe_list(list: &ResourceList) -> String {
    if list.is_empty() { "none".into() } else { list.to_kubectl() }
}

/// `Deployment/web container app: requests cpu=500m,memory=1Gi limits cpu=1,memory=2Gi`.
fn describe(op: &Op) -> String {
    match op {
        Op::Resources { kind, name, container, requests, limits, init } => {
            let container = match container {
                Some(c) if *init => format!("init container {c}"),
                Some(c) => format!("container {c}"),
                None => format!("container <the only one, else `{name}`>"),
            };
            format!("{kind}/{name} {container}: requests {} limits {}", describe_list(requests), describe_list(limits))
        }
        Op::Hpa { name, target, spec } => {
            let cpu = spec.target_cpu.map(|c| format!(" cpu={c}%")).unwrap_or_default();
            format!(
                "HorizontalPodAutoscaler/{name} (autoscaling/v2) for {}/{}: min={} max={}{cpu}",
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

fn apply_args(namespace: &str, dry_run: bool) -> Vec<String> {
    let mut args = base(namespace);
    args.extend(["apply".into(), "--server-side".into(), format!("--field-manager={FIELD_MANAGER}")]);
    if dry_run {
        args.push("--dry-run=server".into());
    }
    args.extend(["-f".into(), "-".into()]);
    args
}

/// The invocations for `steps` (only pending/planned ones), in execution order:
/// dry run, HPA deletes, apply, then one scale per distinct (current, desired) pair.
pub fn invocations(namespace: &str, steps: &[Step]) -> Vec<Invocation> {
    let pending: Vec<(usize, &Op)> =
        steps.iter().enumerate().filter(|(_, s)| s.pending()).filter_map(|(i, s)| Some((i, s.op.as_ref()?))).collect();
    let mut out = Vec::new();

    let applied: Vec<(usize, &Op)> =
        pending.iter().copied().filter(|(_, op)| matches!(op, Op::Resources { .. } | Op::Hpa { .. })).collect();
    let stdin = || -> Option<Vec<u8>> {
        let items: Option<Vec<_>> = applied.iter().map(|(_, op)| manifests::for_op(namespace, op)).collect();
        // A preview of a plan without container names cannot build the manifest yet; it is not sent.
        items.map(|items| manifests::stream(&items).into_bytes())
    };
    if !applied.is_empty() {
        let objects: Vec<String> = applied.iter().map(|(i, _)| steps[*i].object.clone()).collect();
        let mut objects_dedup = objects.clone();
        objects_dedup.dedup();
        out.push(Invocation {
            stage: Stage::DryRun,
            purpose: "validating the whole change server-side (dry run)".into(),
            args: apply_args(namespace, true),
            stdin: stdin(),
            comment: format!(
                "server-side dry run of every change below, nothing persisted: {}",
                objects_dedup.join(", ")
            ),
            steps: applied.iter().map(|(i, _)| *i).collect(),
        });
    }

    let deletes: Vec<(usize, &Op)> =
        pending.iter().copied().filter(|(_, op)| matches!(op, Op::DeleteHpa { .. })).collect();
    if !deletes.is_empty() {
        let mut args = base(namespace);
        args.extend(["delete".into(), "horizontalpodautoscalers.autoscaling".into()]);
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

    if !applied.is_empty() {
        out.push(Invocation {
            stage: Stage::Apply,
            purpose: "applying resources and HPAs (server-side apply)".into(),
            args: apply_args(namespace, false),
            stdin: stdin(),
            comment: applied.iter().map(|(_, op)| describe(op)).collect::<Vec<_>>().join("; "),
            steps: applied.iter().map(|(i, _)| *i).collect(),
        });
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
    for ((current, to), members) in groups {
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
    out
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
