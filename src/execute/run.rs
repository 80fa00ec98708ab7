//! The execution of one plan against the cluster, stage by stage (see the module above), ending
//! in a [`Summary`] and, on failure, the error whose exit code tells "refused or failed, nothing
//! changed" (3 or 1) apart from "failed after changing the cluster" (4, with the list of changes,
//! whether the restore ran, and the command that runs the restore plan).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::kubectl::{KubectlError, Output};
use crate::observed::ClusterState;
use crate::plan::ScalePlan;

use super::journal::Summary;
use super::preview::{self, Stage};
use super::resolve::{self, Status, Step};
use super::{Session, admission, apply, drift, owners, permissions, restore, snapshot, wait};

/// How to execute.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// The kube context in use (the plan's, or `--context`).
    pub context: String,
    pub allow_drift: bool,
    /// Owners whose fields may be changed although their next sync reverts them (`--allow-owner`).
    pub allow_owner: Vec<String>,
    pub timeout: Duration,
    pub rollback_on_failure: bool,
    /// Where results.json and restore-plan.yaml go (`None`: write nothing, for the automatic restore).
    pub out_dir: Option<PathBuf>,
    /// RFC 3339 time stamped on the restore plan.
    pub created_at: String,
    /// Check kubectl, the context and the namespace first (skipped by the automatic restore,
    /// which runs right after a successful preflight).
    pub preflight: bool,
}

/// The outcome of an execution: its summary, and the error when it did not succeed.
#[derive(Debug)]
pub struct Execution {
    pub summary: Summary,
    pub error: Option<Error>,
}

const RESTORE_FILE: &str = "restore-plan.yaml";
const RESULTS_FILE: &str = "results.json";

/// Executes `plan` with `session`.
pub fn execute(plan: &ScalePlan, session: &Session, opts: &ExecOptions) -> Execution {
    let started = Instant::now();
    let ns = plan.context.namespace.clone();
    let mut summary = Summary::new(true, &ns, &opts.context);
    let mut run = Run { plan, session, opts, ns, steps: Vec::new(), restore_path: None };
    let error = run.stages(&mut summary).err();
    // Steps never reached (a refusal or failure before the change) say why they did not run.
    for s in &mut run.steps {
        if s.status == Status::Pending {
            s.status = Status::Skipped;
            s.reason = Some("not run: execution stopped before changing anything".into());
        }
    }
    summary.results = run.steps;
    summary.ok = error.is_none();
    summary.error = error.as_ref().map(|e| e.to_string());
    summary.kubectl_calls = Some(session.calls());
    summary.duration_ms = Some(started.elapsed().as_millis() as u64);
    if let Some(dir) = &opts.out_dir {
        let path = dir.join(RESULTS_FILE);
        summary.results_file = Some(path.display().to_string());
        if let Err(e) = crate::artifacts::write_atomic(&path, summary.to_json().as_bytes()) {
            crate::runner::warning(&format!("could not write {}: {e:#}", path.display()));
            summary.results_file = None;
        }
    }
    Execution { summary, error }
}

struct Run<'a> {
    plan: &'a ScalePlan,
    session: &'a Session,
    opts: &'a ExecOptions,
    ns: String,
    steps: Vec<Step>,
    restore_path: Option<PathBuf>,
}

impl Run<'_> {
    fn stages(&mut self, summary: &mut Summary) -> Result<(), Error> {
        if self.opts.preflight {
            self.preflight()?;
        }
        let before =
            snapshot::read_with(self.session, &self.ns, "reading the live state before any change (snapshot)", true)
                .map_err(|e| Error::Failed(anyhow::anyhow!("{e}; nothing was changed")))?;
        self.steps = resolve::resolve(self.plan, Some(&before.state))?;

        let drift = drift::check(self.plan, &before.state, &self.steps);
        summary.drift = drift.clone();
        if !drift.is_empty() {
            if !self.opts.allow_drift {
                return Err(Error::refused(
                    format!("the cluster changed since the plan was made:\n  - {}", drift.join("\n  - ")),
                    "nothing was changed; make a new plan from the live state (`infra-scale plan --detect ...`), \
                     or pass --allow-drift to apply this plan to the cluster as it is now",
                ));
            }
            for d in &drift {
                crate::runner::warning(&format!("drift accepted (--allow-drift): {d}"));
            }
        }

        // Owners: a field a GitOps tool, Helm or a controller keeps would be reverted by it.
        let owners = owners::assess(&before, &self.steps, &self.opts.allow_owner);
        if !owners.refusals.is_empty() {
            return Err(Error::refused(
                format!(
                    "fields this plan changes are owned by a controller that would revert the change:\n  - {}",
                    owners.refusals.join("\n  - ")
                ),
                "nothing was changed; change these values where their owner keeps them (the chart's values, the Git \
                 repository, the operator's resource), or pass --allow-owner=NAME to change them here anyway (the \
                 owner's next sync reverts them)",
            ));
        }
        for t in &owners.takeovers {
            eprintln!("note: taking over {t} (a one-off edit; its other fields keep their owners)");
        }

        let invocations = preview::invocations(&self.ns, &self.steps);
        if invocations.is_empty() {
            // Every action is a no-op or skipped: nothing to send, nothing to restore.
            for s in &mut self.steps {
                s.after = s.before.clone();
            }
            summary.changed = Some(false);
            return Ok(());
        }

        if self.opts.preflight {
            self.permissions()?;
        }

        // 3. Server-side dry run of every change: a rejection changes nothing.
        let dry: Vec<&preview::Invocation> = invocations.iter().filter(|i| i.stage == Stage::DryRun).collect();
        let rejected: Vec<KubectlError> =
            run_parallel(self.session, &dry).into_iter().filter_map(Result::err).collect();
        if !rejected.is_empty() {
            return Err(apply::dry_run_error(rejected));
        }

        // Pod admission and quota totals for the planned pods (a dry run of the workloads admits no pods).
        admission::check(self.session, &self.ns, self.plan, &before, &self.steps)?;

        // The restore plan exists before the first change.
        let restore_plan =
            restore::build(self.plan, &self.opts.context, &before.state, &self.steps, &self.opts.created_at);
        if let (Some(dir), Some(rp)) = (&self.opts.out_dir, &restore_plan) {
            let path = dir.join(RESTORE_FILE);
            crate::artifacts::write_atomic(&path, rp.to_yaml().as_bytes()).map_err(|e| {
                Error::Failed(e.context("writing the restore plan before changing anything; nothing was changed"))
            })?;
            summary.restore_plan = Some(path.display().to_string());
            self.restore_path = Some(path);
        }

        // 4. Change, stage by stage (HPAs, then resources, then replicas); the runs of one stage
        // go in parallel; a failed stage stops the later ones.
        let mut failure: Option<String> = None;
        for stage in [Stage::DeleteHpas, Stage::Hpas, Stage::Resources, Stage::Scale] {
            let batch: Vec<&preview::Invocation> = invocations.iter().filter(|i| i.stage == stage).collect();
            if failure.is_some() {
                for inv in &batch {
                    for &i in &inv.steps {
                        self.steps[i].status = Status::Skipped;
                        self.steps[i].reason = Some("not run: an earlier step failed".into());
                    }
                }
                continue;
            }
            for (inv, result) in batch.iter().zip(run_parallel(self.session, &batch)) {
                let ms = result.as_ref().map(|o| o.elapsed.as_millis() as u64).unwrap_or(0);
                for &i in &inv.steps {
                    self.steps[i].duration_ms = ms;
                    self.steps[i].status = if result.is_ok() { Status::Applied } else { Status::Failed };
                }
                if let Err(e) = result {
                    let line = apply::change_error(&e);
                    failure = Some(match failure.take() {
                        Some(f) => format!("{f}\n{line}"),
                        None => line,
                    });
                }
            }
        }

        // 5. Wait for every workload whose template or replicas changed, for what its controller
        // will do (a paused Deployment or an OnDelete StatefulSet does not roll its pods).
        let (targets, notes) = wait::targets(&self.ns, &before, &self.steps);
        for (index, object, note) in notes {
            eprintln!("note: {object}: {note}");
            summary.notes.insert(index, note);
        }
        let mut after: Option<ClusterState> = None;
        if failure.is_none() && !targets.is_empty() {
            match wait::wait(self.session, &self.ns, &targets, self.opts.timeout) {
                Ok((snap, _)) => after = Some(snap.state),
                Err(w) => {
                    failure = Some(format!(
                        "{} within --timeout={}s:\n    {}",
                        if w.failed { "a rollout failed" } else { "rollouts did not complete" },
                        self.opts.timeout.as_secs(),
                        w.pending.join("\n    ")
                    ));
                }
            }
        }
        // The final read: the journal's `after`, and exactly what changed.
        let after = match after {
            Some(a) => Some(a),
            None => snapshot::read(self.session, &self.ns, "reading the state after the change").ok().map(|s| s.state),
        };
        self.journal(&before.state, after.as_ref());
        let changed = self.changes(&before.state, after.as_ref());
        summary.changed = Some(!changed.is_empty());

        let Some(failure) = failure else { return Ok(()) };
        if changed.is_empty() {
            return Err(Error::Failed(anyhow::anyhow!(
                "{failure}\nnothing was changed (the live state equals the snapshot)"
            )));
        }
        let mut message = format!(
            "execution failed after changing the cluster: {failure}\nchanged in namespace {} (against the snapshot \
             taken before execution):\n  - {}",
            self.ns,
            changed.join("\n  - ")
        );
        let restore_cmd = self
            .restore_path
            .as_ref()
            .map(|p| format!("infra-scale apply --plan={} --execute", p.display()))
            .unwrap_or_else(|| "(no restore plan was written)".into());
        match (self.opts.rollback_on_failure, restore_plan) {
            (true, Some(rp)) => {
                let nested = ExecOptions {
                    allow_drift: true,
                    rollback_on_failure: false,
                    out_dir: None,
                    preflight: false,
                    ..self.opts.clone()
                };
                eprintln!("execution failed; restoring the snapshot (--rollback-on-failure)");
                let restored = execute(&rp, self.session, &nested);
                let now = snapshot::read(self.session, &self.ns, "reading the state after the restore").ok();
                let still = self.changes(&before.state, now.as_ref().map(|s| &s.state));
                match (&restored.error, still.is_empty()) {
                    (None, true) => message.push_str(
                        "\nrestore: ran automatically (--rollback-on-failure) and succeeded; the cluster is back to \
                         the snapshot",
                    ),
                    (err, _) => {
                        message.push_str(&format!(
                            "\nrestore: ran automatically (--rollback-on-failure) and did NOT complete{}",
                            err.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
                        ));
                        if !still.is_empty() {
                            message.push_str(&format!("\nstill changed:\n  - {}", still.join("\n  - ")));
                        }
                        message.push_str(&format!("\nto retry the restore: {restore_cmd}"));
                    }
                }
                summary.rollback = Some(Box::new(restored.summary));
            }
            (true, None) | (false, _) => {
                message.push_str(&format!(
                    "\nrestore: not run{}\nto restore the snapshot: {restore_cmd}",
                    if self.opts.rollback_on_failure {
                        ""
                    } else {
                        " (pass --rollback-on-failure to restore automatically)"
                    }
                ));
            }
        }
        Err(Error::FailedAfterChange(message))
    }

    /// kubectl runs, the context exists (listing the available ones if not), the namespace exists.
    fn preflight(&self) -> Result<(), Error> {
        let args = super::strings(&["config", "get-contexts", "-o", "name"]);
        let out = self.session.run("listing the kubeconfig's contexts", &args, None).map_err(|e| match e {
            KubectlError::NotFound { .. } => Error::Failed(anyhow::anyhow!("{e}; nothing was changed")),
            other => Error::Failed(anyhow::anyhow!("{other}; nothing was changed")),
        })?;
        let contexts: Vec<&str> = out.stdout.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        if !contexts.contains(&self.opts.context.as_str()) {
            let available = if contexts.is_empty() {
                "the kubeconfig has no contexts (is KUBECONFIG set?)".to_string()
            } else {
                format!("available contexts: {}", contexts.join(", "))
            };
            return Err(Error::refused(
                format!("kube context `{}` is not in the kubeconfig; {available}", self.opts.context),
                "nothing was changed; pass --context=NAME to use another context, or fix the plan's context.kubeContext",
            ));
        }
        let args = super::strings(&["get", "namespace", &self.ns, "-o", "name"]);
        match self.session.run(&format!("checking that namespace {} exists", self.ns), &args, None) {
            Ok(_) => Ok(()),
            Err(KubectlError::Failed { stderr, .. }) if stderr.contains("NotFound") => Err(Error::refused(
                format!("namespace `{}` does not exist in context `{}`", self.ns, self.opts.context),
                "nothing was changed; check the plan's context.namespace and the context (--context)",
            )),
            // A namespace-scoped identity may not read namespaces; the snapshot read decides.
            Err(KubectlError::Failed { stderr, .. }) if stderr.contains("Forbidden") => Ok(()),
            Err(e) => Err(Error::Failed(anyhow::anyhow!("{e}; nothing was changed"))),
        }
    }

    /// One `kubectl auth can-i --list`: every verb the change needs is granted, or nothing is sent.
    /// When the server cannot list the rules completely (a webhook authorizer), the dry runs decide.
    fn permissions(&self) -> Result<(), Error> {
        let needs = permissions::needs(&self.steps);
        if needs.is_empty() {
            return Ok(());
        }
        let args = super::strings(&["auth", "can-i", "--list", "-n", &self.ns]);
        let out = match self.session.run("listing the credentials' permissions (auth can-i --list)", &args, None) {
            Ok(out) => out,
            Err(e) => {
                crate::runner::warning(&format!(
                    "could not list the credentials' permissions ({e}); the server-side dry runs check them instead"
                ));
                return Ok(());
            }
        };
        let rules = permissions::parse(&out.stdout).map_err(|e| {
            Error::Failed(anyhow::anyhow!(
                "kubectl auth can-i --list -n {} printed a table infra-scale cannot read: {e}; nothing was changed",
                self.ns
            ))
        })?;
        let missing = permissions::missing(&rules, &needs);
        if missing.is_empty() {
            return Ok(());
        }
        let gaps: Vec<String> = missing.iter().map(|n| n.to_string()).collect();
        if out.stderr.contains("incomplete") {
            crate::runner::warning(&format!(
                "the permission list is incomplete (the server said: {}); not listed: {}; the server-side dry runs \
                 check them",
                out.stderr.trim(),
                gaps.join(", ")
            ));
            return Ok(());
        }
        Err(Error::refused(
            format!(
                "the credentials of context `{}` may not make this change in namespace {}; missing: {}",
                self.opts.context,
                self.ns,
                gaps.join(", ")
            ),
            "nothing was changed; grant these verbs on these resources (a Role in the namespace) to the identity of \
             this kubeconfig, or use credentials that have them",
        ))
    }

    /// Fills `after` and settles each step's status against the final read.
    fn journal(&mut self, before: &ClusterState, after: Option<&ClusterState>) {
        for s in &mut self.steps {
            match (&s.op, after) {
                (Some(op), Some(now)) => {
                    s.after = resolve::current_value(op, now);
                    match s.status {
                        // One kubectl run carries several objects; those it did change are applied.
                        Status::Failed if resolve::reached(op, now) && resolve::differs(op, before, now) => {
                            s.status = Status::Applied
                        }
                        _ => {}
                    }
                }
                (None, _) => s.after = s.before.clone(),
                (Some(_), None) => {}
            }
        }
    }

    /// One line per object whose live state now differs from the snapshot; without a final read,
    /// every object a kubectl run may have touched.
    fn changes(&self, before: &ClusterState, now: Option<&ClusterState>) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.steps {
            let Some(op) = &s.op else { continue };
            match now {
                Some(now) if resolve::differs(op, before, now) => {
                    let line = apply::describe_change(op, before, now);
                    if !out.contains(&line) {
                        out.push(line);
                    }
                }
                Some(_) => {}
                None if matches!(s.status, Status::Applied | Status::Failed) => {
                    out.push(format!("{} (may have changed: the state could not be read back)", s.object));
                }
                None => {}
            }
        }
        out
    }
}

/// Runs `invocations` at most [`preview::PARALLEL`] at a time; the results in the same order.
fn run_parallel(session: &Session, invocations: &[&preview::Invocation]) -> Vec<Result<Output, KubectlError>> {
    let mut out = Vec::with_capacity(invocations.len());
    for chunk in invocations.chunks(preview::PARALLEL) {
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|inv| (inv, scope.spawn(move || session.run(&inv.purpose, &inv.args, inv.stdin.as_deref()))))
                .collect();
            for (inv, h) in handles {
                out.push(h.join().unwrap_or_else(|_| {
                    Err(KubectlError::Io {
                        purpose: inv.purpose.clone(),
                        detail: "the thread running kubectl panicked".into(),
                    })
                }));
            }
        });
    }
    out
}

/// The restore plan's path inside an output directory.
pub fn restore_path(dir: &Path) -> PathBuf {
    dir.join(RESTORE_FILE)
}
