//! `infra-scale plan`: request → (detect) → plan → plan.yaml + SUMMARY.md → (publish) → outputs.
//!
//! stdout carries only the contract lines (`artifacts_dir=`, `plan_yaml=`, `summary_md=`,
//! `outputs_uri=` with `--apply`, then `succeeded`, `awaiting_approval` or `converged`);
//! diagnostics go to stderr.
//!
//! Converged: with `--detect`, a plan none of whose actions would send anything to the live
//! cluster (the executor's own no-op rule, [`crate::execute::resolve::resolve`]). With `--apply`
//! it is not published: `outputs_uri=` is empty, the status is `converged`, and an open plan pull
//! request for the target is closed (see [`crate::github::publish::converge`]).

use std::path::Path;

use crate::error::{Error, Result};
use crate::plan::{ScalePlan, Severity};
use crate::request::{FailOn, PlanOptions};
use crate::{artifacts, kubectl, observed, orchestrator, planner, request, runner, summary};

/// Runs `infra-scale plan`.
pub fn run(options: &PlanOptions) -> Result<()> {
    let req = request::build(options)?;
    let epoch = artifacts::now_epoch()?;
    let live = if options.detect {
        let kubectl = kubectl::Kubectl::from_env(Some(&req.kube_context));
        // Named, so that a failing matrix job says which target and cluster failed.
        Some(observed::detect(&kubectl, &req.namespace).map_err(|e| {
            Error::Failed(anyhow::anyhow!("target {} (kube context {}): {e:#}", req.target, req.kube_context))
        })?)
    } else {
        None
    };
    let planned = planner::build(&req, live.as_ref(), &artifacts::rfc3339(epoch))?;
    let converged = is_converged(&planned.plan, live.as_ref());
    // Claimed only now: bad input or a failed detection leaves no empty directory behind.
    let dir = artifacts::claim_dir(options.out.as_deref(), epoch, &req.target)?;
    // The task record (the prototype orchestrator's agents_tasks row) starts once there is a
    // plan: bad input, a failed detection or an unreadable kubectl answer record and send nothing.
    let task = orchestrator::start("infra.scale");
    let mut run = Run::default();
    let result = write_and_publish(options, &req, &planned, converged, &dir, &mut run);
    let status = match &result {
        Ok(status) => status.to_string(),
        Err(e) if e.exit_code() == 3 => "refused".to_string(),
        Err(_) => "failed".to_string(),
    };
    run.lines.push(status.clone());
    let approval_state = if status == "awaiting_approval" { "pending" } else { "" };
    let outcome = orchestrator::TaskOutcome {
        status,
        outputs_uri: run.outputs_uri,
        approval_state: approval_state.into(),
        log_excerpt: run.lines.join("\n"),
    };
    task.finish(&outcome, &dir);
    let status = result?;
    crate::output::line(status);
    Ok(())
}

/// What a run printed, for the task record.
#[derive(Default)]
struct Run {
    lines: Vec<String>,
    outputs_uri: String,
}

impl Run {
    fn print(&mut self, key: &str, value: &str) {
        let line = format!("{key}={value}");
        crate::output::line(&line);
        self.lines.push(line);
    }
}

/// Writes the plan's files, applies `--fail-on`, publishes; returns the final status word.
fn write_and_publish(
    options: &PlanOptions,
    req: &request::ScaleRequest,
    planned: &planner::Planned,
    converged: bool,
    dir: &Path,
    run: &mut Run,
) -> Result<&'static str> {
    let plan = &planned.plan;
    let plan_yaml = plan.to_yaml();
    let summary_md = summary::render_with(plan, &planned.capacity);

    let plan_path = dir.join("plan.yaml");
    let summary_path = dir.join("SUMMARY.md");
    artifacts::write_atomic(&plan_path, plan_yaml.as_bytes())?;
    artifacts::write_atomic(&summary_path, summary_md.as_bytes())?;

    let mut outputs = vec![
        ("artifacts_dir", dir.display().to_string()),
        ("plan_yaml", plan_path.display().to_string()),
        ("summary_md", summary_path.display().to_string()),
    ];
    for (key, value) in &outputs {
        run.print(key, value);
    }
    // A plan that fails the policy is written (for inspection) but never published.
    if let Some(level) = req.fail_on {
        fail_on_check(plan, level, &plan_path)?;
    }
    let mut status = "succeeded";
    if converged {
        eprintln!(
            "target {}: converged (the live state already matches the config; the plan changes nothing)",
            req.target
        );
    }
    if options.publish && converged {
        crate::github::publish::converge(&req.target, options.require_pr)?;
        run.print("outputs_uri", "");
        outputs.push(("outputs_uri", String::new()));
        outputs.push(("pr_number", String::new()));
        outputs.push(("plan_sha256", crate::github::sha256_hex(plan_yaml.as_bytes())));
        status = "converged";
        runner::append_step_summary(&summary_md).map_err(Error::Failed)?;
    } else if options.publish {
        let outcome = crate::github::publish::publish(&crate::github::publish::PublishInput {
            target: req.target.clone(),
            plan_yaml,
            summary_md: summary_md.clone(),
            reviewers: options.reviewers.clone(),
            require_pr: options.require_pr,
        })?;
        run.print("outputs_uri", &outcome.outputs_uri);
        run.outputs_uri = outcome.outputs_uri.clone();
        outputs.push(("outputs_uri", outcome.outputs_uri));
        outputs.push(("pr_number", outcome.pr_number.map(|n| n.to_string()).unwrap_or_default()));
        outputs.push(("plan_sha256", outcome.plan_sha256));
        status = "awaiting_approval";
        runner::append_step_summary(&summary_md).map_err(Error::Failed)?;
    }
    outputs.push(("status", status.to_string()));
    let pairs: Vec<(&str, &str)> = outputs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    runner::set_outputs(&pairs).map_err(Error::Failed)?;
    Ok(status)
}

/// The live state was read and executing the plan would send nothing: every action is a no-op
/// (or skipped, like replicas under an HPA that is itself unchanged). A plan the executor would
/// refuse against this state is not converged: it is published so that someone looks at it.
fn is_converged(plan: &ScalePlan, live: Option<&observed::ClusterState>) -> bool {
    let Some(live) = live else { return false };
    match crate::execute::resolve::resolve(plan, Some(live)) {
        Ok(steps) => steps.iter().all(|s| !s.pending()),
        Err(_) => false,
    }
}

/// `--fail-on`: refuse (exit 3) when the plan carries a finding at or above the level.
fn fail_on_check(plan: &ScalePlan, level: FailOn, plan_path: &Path) -> Result<()> {
    let min = match level {
        FailOn::Warning => Severity::Warning,
        FailOn::Error => Severity::Error,
    };
    let hits: Vec<String> = plan
        .risks
        .iter()
        .chain(&plan.notes)
        .filter(|f| f.severity >= min)
        .map(|f| format!("  {} [{}] {}", f.severity, f.code, f.message))
        .collect();
    if hits.is_empty() {
        return Ok(());
    }
    Err(Error::refused(
        format!(
            "--fail-on={}: the plan has {} finding(s) at that level or above:\n{}",
            min,
            hits.len(),
            hits.join("\n")
        ),
        format!("review {} and change the request, or lower --fail-on", plan_path.display()),
    ))
}
