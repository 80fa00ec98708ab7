//! Reporting an execution back on the pull request: the journal in the planner's sticky comment
//! (with a record of the executed digest on success), labels swapped (`needs-approval` and
//! `execute-plan` → `executed` or `execute-failed`), a commit status on the executed head SHA
//! (what the gate reads to refuse a replay), and the step summary. Every step is attempted; the
//! first failure is returned at the end.
//!
//! The head is re-read before the labels are swapped: when a new plan was pushed while this one
//! ran, the labels belong to the new plan and are left alone.

use serde_json::{Value, json};

use super::client::{Client, Method, Permission, Request, enc};
use super::env::{Env, Settings};
use super::gate::Approval;
use super::{
    LABEL_EXECUTE_FAILED, LABEL_EXECUTE_PLAN, LABEL_EXECUTED, LABEL_NEEDS_APPROVAL, Repo, STATUS_CONTEXT, sticky,
};
use crate::error::{Error, Result};

/// The outcome of an execution, as the executor tells it.
#[derive(Debug, Clone)]
pub struct ExecutionReport {
    pub success: bool,
    /// Whether the cluster was changed.
    pub changed: bool,
    /// Per action: before, after, status (Markdown).
    pub journal_markdown: String,
    /// One line, e.g. "6 actions applied, 2 rollouts complete".
    pub summary_line: String,
}

/// Reports with settings from the process environment.
pub fn post(approval: &Approval, report: &ExecutionReport) -> Result<()> {
    post_with(&Env::from_process(), approval, report)
}

/// Marks the head commit `pending` while execution runs (optional; [`post`] sets the final state).
pub fn started(approval: &Approval) -> Result<()> {
    started_with(&Env::from_process(), approval)
}

pub fn started_with(env: &Env, approval: &Approval) -> Result<()> {
    let (client, repo, settings) = connect(env, approval)?;
    set_status(&client, &repo, &settings, approval, "pending", "executing the approved plan")
}

fn connect(env: &Env, approval: &Approval) -> Result<(Client, Repo, Settings)> {
    let settings = Settings::from_env(env)?;
    let repo = Repo::parse(&approval.repo)
        .ok_or_else(|| Error::Failed(anyhow::anyhow!("`{}` is not a repository name", approval.repo)))?;
    let config = settings.client_config().ok_or_else(|| {
        Error::Failed(anyhow::anyhow!(
            "cannot report back on #{}: missing {}",
            approval.pr_number,
            settings.missing.join(", ")
        ))
    })?;
    Ok((Client::new(config), repo, settings))
}

/// Reports with settings from `env`.
pub fn post_with(env: &Env, approval: &Approval, report: &ExecutionReport) -> Result<()> {
    let (client, repo, settings) = connect(env, approval)?;
    let n = approval.pr_number;
    let outcome = if report.success { "succeeded" } else { "failed" };
    let mut section = format!(
        "### Execution {outcome} {}\n\n{}\n\nPlan sha256 `{}` at `{}`, approved by `{}`{}{}.\n\n",
        if report.success { "✅" } else { "❌" },
        report.summary_line.trim(),
        approval.plan_sha256,
        approval.head_sha,
        approval.labeller,
        if report.changed { "; the cluster was changed" } else { "; the cluster was not changed" },
        settings.run_url.as_deref().map(|u| format!(" ([run]({u}))")).unwrap_or_default(),
    );
    section.push_str(report.journal_markdown.trim_end());
    section.push('\n');

    let mut errors: Vec<String> = Vec::new();
    let note = |errors: &mut Vec<String>, r: Result<()>| {
        if let Err(e) = r {
            errors.push(e.to_string());
        }
    };

    if let Some(path) = &settings.step_summary {
        note(
            &mut errors,
            crate::runner::append_step_summary_to(path, &format!("## infra-scale: #{n}\n\n{section}"))
                .map_err(Error::Failed),
        );
    }
    note(&mut errors, update_comment(&client, &repo, &settings, approval, report, &section));
    let current_head = client
        .json(&Request::get(
            format!("{}/pulls/{n}", repo.api_path()),
            format!("re-read pull request #{n}"),
            Permission::PullRequestsRead,
        ))
        .map(|pr| pr.pointer("/head/sha").and_then(Value::as_str).unwrap_or_default().to_string());
    let moved = match current_head {
        Ok(head) if head == approval.head_sha => None,
        Ok(head) => Some(head),
        Err(e) => {
            errors.push(format!("{e} (labels left unchanged)"));
            Some(String::new())
        }
    };
    if let Some(head) = moved.as_deref().filter(|h| !h.is_empty()) {
        errors.push(format!(
            "the head of #{n} moved to {head} during execution: labels left for the new plan (the executed head {} got the status)",
            approval.head_sha
        ));
    }
    let state = if report.success { "success" } else { "failure" };
    note(&mut errors, set_status(&client, &repo, &settings, approval, state, &report.summary_line));
    if moved.is_some() {
        return finish(n, &errors);
    }
    let (add, opposite) =
        if report.success { (LABEL_EXECUTED, LABEL_EXECUTE_FAILED) } else { (LABEL_EXECUTE_FAILED, LABEL_EXECUTED) };
    for label in [LABEL_EXECUTE_PLAN, LABEL_NEEDS_APPROVAL, opposite] {
        note(&mut errors, super::publish::remove_label(&client, &repo, n, label));
    }
    note(
        &mut errors,
        client
            .send(
                &Request::new(
                    Method::Post,
                    format!("{}/issues/{n}/labels", repo.api_path()),
                    format!("add the label `{add}` to #{n}"),
                    Permission::IssuesWrite,
                )
                .body(json!({"labels": [add]}))
                .repeatable(),
            )
            .map(|_| ())
            .map_err(Error::from),
    );
    finish(n, &errors)
}

fn finish(n: u64, errors: &[String]) -> Result<()> {
    match errors.first() {
        None => Ok(()),
        Some(_) => Err(Error::Failed(anyhow::anyhow!(
            "reporting the execution back on #{n} failed:\n{}",
            errors.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n")
        ))),
    }
}

fn update_comment(
    client: &Client,
    repo: &Repo,
    settings: &Settings,
    approval: &Approval,
    report: &ExecutionReport,
    section: &str,
) -> Result<()> {
    let comments = super::publish::list_comments(client, repo, approval.pr_number)?;
    let login = match &settings.bot_login {
        Some(l) => l.clone(),
        None => approval.bot_login.clone(),
    };
    let Some(current) = comments.iter().find(|c| sticky::is_ours(c, &login)) else {
        return Err(Error::Failed(anyhow::anyhow!(
            "pull request #{} has no plan comment by {login} to report in (the step summary has the journal)",
            approval.pr_number
        )));
    };
    let id = current.get("id").and_then(Value::as_u64).unwrap_or_default();
    let path = format!("{}/issues/comments/{id}", repo.api_path());
    let body = current.get("body").and_then(Value::as_str).unwrap_or_default();
    let record = report.success.then(|| sticky::executed_line(&approval.plan_sha256, &approval.head_sha));
    let updated = sticky::with_execution(body, section, record.as_deref());
    client.send(
        &Request::new(
            Method::Patch,
            path,
            format!("report the execution on #{}", approval.pr_number),
            Permission::IssuesWrite,
        )
        .body(json!({"body": updated})),
    )?;
    Ok(())
}

fn set_status(
    client: &Client,
    repo: &Repo,
    settings: &Settings,
    approval: &Approval,
    state: &str,
    description: &str,
) -> Result<()> {
    // GitHub keeps at most 140 characters of a status description.
    let mut description: String = description.trim().chars().take(140).collect();
    if description.is_empty() {
        description = state.to_string();
    }
    let mut body = json!({"state": state, "context": STATUS_CONTEXT, "description": description});
    if let Some(url) = &settings.run_url {
        body["target_url"] = Value::String(url.clone());
    }
    client.send(
        &Request::new(
            Method::Post,
            format!("{}/statuses/{}", repo.api_path(), enc(&approval.head_sha)),
            format!("set the `{STATUS_CONTEXT}` status on {}", approval.head_sha),
            Permission::StatusesWrite,
        )
        .body(body)
        .repeatable(),
    )?;
    Ok(())
}
