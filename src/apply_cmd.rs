//! `infra-scale apply`: load and re-validate a plan, gate on the approval, preview or execute, report.
//!
//! stdout (the prototype's contract): the `preview: kubectl …` lines (preview only), then the
//! JSON summary, then `succeeded` when everything succeeded. Diagnostics go to stderr.

use std::io::Read;
use std::path::Path;

use crate::artifacts;
use crate::error::{Error, Result};
use crate::execute::journal::Summary;
use crate::execute::resolve::{self, Status};
use crate::execute::run::{self, ExecOptions};
use crate::execute::{self, Session, preview};
use crate::github::gate::{self, Approval, GateRequest};
use crate::github::report::{self, ExecutionReport};
use crate::kubectl::Kubectl;
use crate::plan::{MAX_PLAN_BYTES, ScalePlan};

/// Everything `infra-scale apply` was asked to do, free of clap.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub plan: std::path::PathBuf,
    pub execute: bool,
    pub context: Option<String>,
    pub allow_drift: bool,
    /// Owners (managers or tools) whose fields may be changed although they revert them.
    pub allow_owner: Vec<String>,
    pub timeout: std::time::Duration,
    pub rollback_on_failure: bool,
    pub out: Option<std::path::PathBuf>,
    pub pr: Option<u64>,
    pub force: bool,
    pub without_approval: bool,
}

/// Runs `infra-scale apply`.
pub fn run(options: &ApplyOptions) -> Result<()> {
    // The approval gate runs before any kubectl call that changes anything. In a pull-request
    // context it reads the plan through the API at the approved head: the working directory holds
    // the default branch (pull_request_target), never the plan that runs.
    let approval = match options.execute {
        true => gate::verify(&GateRequest {
            plan_path: &options.plan.to_string_lossy(),
            pr: options.pr,
            force: options.force,
        })?,
        false => None,
    };
    let plan_file = match &approval {
        Some(a) => stage_plan(a)?,
        None => options.plan.clone(),
    };
    let (bytes, plan) = load(&plan_file)?;
    if let Some(a) = &approval
        && crate::github::sha256_hex(&bytes) != a.plan_sha256
    {
        return Err(Error::refused(
            format!("the staged plan {} is not the approved plan (sha256 {})", plan_file.display(), a.plan_sha256),
            "run the execution again; something rewrote RUNNER_TEMP",
        ));
    }
    let context = options.context.clone().unwrap_or_else(|| plan.context.kube_context.clone());
    if context.is_empty() || context.chars().any(char::is_control) {
        return Err(Error::invalid(
            format!("--context={}", context.escape_debug()),
            "is not a kube context name",
            "the name of a context in your kubeconfig (`kubectl config get-contexts -o name`)",
        ));
    }
    let session = Session::new(Kubectl::from_env(Some(&context)));
    if !options.execute {
        return preview_plan(&plan, &session, &context);
    }

    if let Some(a) = &approval
        && let Err(e) = report::started(a)
    {
        crate::runner::warning(&format!("could not mark the pull request's head commit as pending: {e}"));
    }
    if execute::is_echo(&session.kubectl) {
        return pass_through(&plan, &session, &context);
    }
    // In GitHub Actions an execution must be bound to an approved pull request: a workflow that
    // lost its PR context (another trigger, a missing pr-number) must not apply unreviewed plans.
    if approval.is_none() && std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") && !options.without_approval {
        return Err(Error::refused(
            "executing in GitHub Actions without a pull request whose approval can be verified (no --pr, and the event is not a pull_request event); nothing was changed",
            "run on the `execute-plan` label event or pass --pr N; for a deliberate break-glass run behind a protected environment, pass --without-approval",
        ));
    }

    let epoch = artifacts::now_epoch()?;
    let out_dir = artifacts::resolve_dir(options.out.as_deref(), epoch)?;
    let opts = ExecOptions {
        context: context.clone(),
        allow_drift: options.allow_drift,
        allow_owner: options.allow_owner.clone(),
        timeout: options.timeout,
        rollback_on_failure: options.rollback_on_failure,
        out_dir: Some(out_dir),
        created_at: artifacts::rfc3339(epoch),
        preflight: true,
    };
    let execution = run::execute(&plan, &session, &opts);
    crate::output::line(&execution.summary.to_json());
    report_back(approval.as_ref(), &execution.summary);
    match execution.error {
        None => {
            crate::output::line("succeeded");
            Ok(())
        }
        Some(e) => Err(e),
    }
}

/// Writes the approved plan's bytes to a private directory under `RUNNER_TEMP` (the system temp
/// directory outside Actions) and returns its path: the file that is then parsed and executed.
fn stage_plan(approval: &Approval) -> Result<std::path::PathBuf> {
    use std::os::unix::fs::DirBuilderExt as _;
    let base = std::env::var_os("RUNNER_TEMP").filter(|v| !v.is_empty()).map_or_else(std::env::temp_dir, Into::into);
    let dir = base.join(format!("infra-scale-plan-{}-{}", approval.pr_number, std::process::id()));
    let fail = |e: std::io::Error| {
        Error::Failed(anyhow::anyhow!("cannot stage the approved plan under {}: {e}", dir.display()))
    };
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(fail)?;
    }
    std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(fail)?;
    let path = dir.join("plan.yaml");
    std::fs::write(&path, &approval.plan_bytes).map_err(fail)?;
    Ok(path)
}

/// Reads the plan (size-capped before parsing) and parses it strictly.
fn load(path: &Path) -> Result<(Vec<u8>, ScalePlan)> {
    let source = path.display().to_string();
    let help = "the plan.yaml written by `infra-scale plan` (--plan=PATH)";
    let file =
        std::fs::File::open(path).map_err(|e| Error::invalid(&source, format!("cannot read the plan: {e}"), help))?;
    let mut bytes = Vec::new();
    file.take(MAX_PLAN_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::invalid(&source, format!("cannot read the plan: {e}"), help))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        Error::invalid(
            &source,
            format!("the plan is not UTF-8 text ({e})"),
            "a YAML file written by `infra-scale plan`",
        )
    })?;
    // parse_untrusted refuses a text longer than the cap (read up to one byte past it).
    let plan = ScalePlan::parse_untrusted(text, &source)?;
    Ok((bytes, plan))
}

/// Default mode: print every change invocation, the summary and `succeeded`; needs no cluster.
fn preview_plan(plan: &ScalePlan, session: &Session, context: &str) -> Result<()> {
    let steps = resolve::resolve(plan, None)?;
    for inv in preview::invocations(&plan.context.namespace, &steps) {
        crate::output::line(&preview::render(&session.kubectl, &inv));
    }
    let mut summary = Summary::new(false, &plan.context.namespace, context);
    summary.results = steps;
    crate::output::line(&summary.to_json());
    crate::output::line("succeeded");
    Ok(())
}

/// `KUBECTL=echo … --execute`: the prototype's smoke test. The change invocations are handed to
/// the stand-in (which prints them); nothing is read back, there is no cluster to snapshot.
fn pass_through(plan: &ScalePlan, session: &Session, context: &str) -> Result<()> {
    eprintln!(
        "note: KUBECTL is `{}`, a pass-through stand-in: the change invocations are printed, nothing is read or changed",
        session.kubectl.program().display()
    );
    let mut steps = resolve::resolve(plan, None)?;
    for inv in preview::invocations(&plan.context.namespace, &steps) {
        let out = session.run(&inv.purpose, &inv.args, None).map_err(|e| Error::Failed(e.into()))?;
        crate::output::text(&out.stdout);
        for &i in &inv.steps {
            steps[i].status = Status::PassedThrough;
            steps[i].duration_ms = out.elapsed.as_millis() as u64;
        }
    }
    let mut summary = Summary::new(true, &plan.context.namespace, context);
    summary.results = steps;
    summary.kubectl_calls = Some(session.calls());
    crate::output::line(&summary.to_json());
    crate::output::line("succeeded");
    Ok(())
}

/// The outcome on the pull request (when gated) or in the job summary; never fails the run.
fn report_back(approval: Option<&Approval>, summary: &Summary) {
    let markdown = summary.markdown();
    match approval {
        Some(a) => {
            let line = format!(
                "{} in {}: {}",
                if summary.ok { "executed" } else { "execution failed" },
                summary.namespace,
                summary.counts()
            );
            let r = ExecutionReport {
                success: summary.ok,
                changed: summary.changed.unwrap_or(false),
                journal_markdown: markdown,
                summary_line: line,
            };
            if let Err(e) = report::post(a, &r) {
                crate::runner::warning(&format!("could not report the outcome on the pull request: {e}"));
            }
        }
        None => {
            if let Err(e) = crate::runner::append_step_summary(&markdown) {
                crate::runner::warning(&format!("could not write the job summary: {e:#}"));
            }
        }
    }
}
