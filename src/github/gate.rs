//! The approval gate: before any kubectl call that changes anything, re-read the pull request
//! through the API and refuse, with a distinct message per reason, unless what is about to run
//! is exactly what was reviewed and approved.
//!
//! Checks, in order: the PR is open; its head repository is the base repository (no forks); its
//! branch is a plan branch targeting the default branch; it still has `execute-plan`; its head
//! SHA equals the event's; the plan file at that SHA is the plan given to `apply`, and has the
//! digest in the planner's own sticky comment; no commit by anyone else touched the plan after
//! the planner's; the branch changes no file but the plan and its SUMMARY.md (the execution
//! workflow runs that checkout with the cluster's credentials); the label was added after the head commit, by a person with write, maintain or
//! admin permission (triage can label but must not execute); the digest was not already executed
//! successfully (unless `--force`).

use serde_json::Value;

use super::client::{ACCEPT_RAW, ApiError, Client, Permission, Request, enc, enc_path};
use super::env::{Env, Settings};
use super::{LABEL_EXECUTE_PLAN, Repo, sticky};
use crate::error::{Error, Result};

/// What the executor knows when it asks the gate.
#[derive(Debug, Clone)]
pub struct GateRequest<'a> {
    /// The exact bytes of the plan file `apply` is about to execute.
    pub plan_bytes: &'a [u8],
    /// `--pr N`; otherwise the pull request comes from `GITHUB_EVENT_PATH`.
    pub pr: Option<u64>,
    /// `--force`: execute a digest that already succeeded.
    pub force: bool,
}

/// Proof that the plan was approved, passed on to [`super::report::post`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// `owner/name`.
    pub repo: String,
    pub pr_number: u64,
    pub head_sha: String,
    pub plan_sha256: String,
    /// Who added `execute-plan`.
    pub labeller: String,
    /// The plan's target (from the branch name).
    pub target: String,
    /// The planner's sticky comment.
    pub comment_id: u64,
    /// The identity the planner acts as.
    pub bot_login: String,
    pub pr_url: String,
}

/// Verifies with settings from the process environment.
pub fn verify(req: &GateRequest) -> Result<Option<Approval>> {
    verify_with(&Env::from_process(), req)
}

/// The pull-request fields of a `pull_request` / `pull_request_target` event payload.
#[derive(Debug, Default)]
struct PrEvent {
    number: Option<u64>,
    head_sha: Option<String>,
    label: Option<String>,
}

fn read_event(settings: &Settings) -> Result<Option<PrEvent>> {
    let Some(path) = &settings.event_path else { return Ok(None) };
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Failed(anyhow::anyhow!("cannot read the event payload GITHUB_EVENT_PATH={}: {e}", path.display()))
    })?;
    let event: Value = serde_json::from_str(&text).map_err(|e| {
        Error::Failed(anyhow::anyhow!("the event payload GITHUB_EVENT_PATH={} is not JSON: {e}", path.display()))
    })?;
    let Some(pr) = event.get("pull_request").filter(|p| p.is_object()) else { return Ok(None) };
    Ok(Some(PrEvent {
        number: pr.get("number").and_then(Value::as_u64).or_else(|| event.get("number").and_then(Value::as_u64)),
        head_sha: pr.pointer("/head/sha").and_then(Value::as_str).map(str::to_string),
        label: event.pointer("/label/name").and_then(Value::as_str).map(str::to_string),
    }))
}

fn refuse(reason: String, help: &str) -> Error {
    Error::refused(reason, help)
}

/// Verifies with settings from `env`. `Ok(None)`: no pull-request context (no `--pr`, and the
/// event is not a pull-request event). Every refusal is [`Error::Refused`] (exit 3).
pub fn verify_with(env: &Env, req: &GateRequest) -> Result<Option<Approval>> {
    let settings = Settings::from_env(env)?;
    let event = read_event(&settings)?;
    let number = match (req.pr, event.as_ref().and_then(|e| e.number)) {
        (Some(flag), Some(from_event)) if flag != from_event => {
            return Err(refuse(
                format!("--pr {flag} does not match the pull request of the triggering event (#{from_event})"),
                "drop --pr, or run the workflow for that pull request",
            ));
        }
        (Some(n), _) | (None, Some(n)) => n,
        (None, None) => return Ok(None),
    };
    if let Some(label) = event.as_ref().and_then(|e| e.label.as_deref())
        && label != LABEL_EXECUTE_PLAN
    {
        return Err(refuse(
            format!("the triggering event added the label `{label}` to #{number}, not `{LABEL_EXECUTE_PLAN}`"),
            "run execution only on the `execute-plan` label (`if: github.event.label.name == 'execute-plan'`)",
        ));
    }
    let (Some(repo), Some(config)) = (settings.repo.clone(), settings.client_config()) else {
        return Err(refuse(
            format!("cannot verify the approval of pull request #{number}: missing {}", settings.missing.join(", ")),
            "give the execution job GITHUB_TOKEN with contents: read and pull-requests: read (plus issues: write and statuses: write to report back)",
        ));
    };
    let client = Client::new(config);
    let gate = Gate { client: &client, settings: &settings, repo: &repo, number };
    gate.check(req, event.and_then(|e| e.head_sha)).map(Some)
}

struct Gate<'a> {
    client: &'a Client,
    settings: &'a Settings,
    repo: &'a Repo,
    number: u64,
}

impl Gate<'_> {
    fn path(&self, rest: &str) -> String {
        format!("{}{rest}", self.repo.api_path())
    }

    fn check(&self, req: &GateRequest, event_head: Option<String>) -> Result<Approval> {
        let n = self.number;
        let full_name = self.repo.full_name();
        let pr = self.client.json(&Request::get(
            self.path(&format!("/pulls/{n}")),
            format!("read pull request #{n}"),
            Permission::PullRequestsRead,
        ))?;
        let s = |p: &str| pr.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();

        // Open, same repository, plan branch, default base.
        if s("/state") != "open" {
            let state = if pr.get("merged").and_then(Value::as_bool) == Some(true) { "merged" } else { "closed" };
            return Err(refuse(
                format!("pull request #{n} is {state}, not open"),
                "only an open plan pull request can be executed; run planning again",
            ));
        }
        let head_repo = s("/head/repo/full_name");
        if !head_repo.eq_ignore_ascii_case(&s("/base/repo/full_name")) || !head_repo.eq_ignore_ascii_case(&full_name) {
            let from = if head_repo.is_empty() { "a deleted repository".to_string() } else { head_repo };
            return Err(refuse(
                format!(
                    "pull request #{n} comes from {from}, not from {full_name}: plans from forks are never executed"
                ),
                "plans are executed only from branches the planner pushed to this repository",
            ));
        }
        let head_ref = s("/head/ref");
        let Some(target) = head_ref.strip_prefix(super::BRANCH_PREFIX).filter(|t| super::check_target(t).is_ok())
        else {
            return Err(refuse(
                format!(
                    "pull request #{n} is from branch `{head_ref}`, not an infra-scale plan branch ({}<target>)",
                    super::BRANCH_PREFIX
                ),
                "execute only pull requests opened by `infra-scale plan --apply`",
            ));
        };
        let default_branch = s("/base/repo/default_branch");
        if !default_branch.is_empty() && s("/base/ref") != default_branch {
            return Err(refuse(
                format!("pull request #{n} targets `{}`, not the default branch `{default_branch}`", s("/base/ref")),
                "plan pull requests target the default branch; run planning again",
            ));
        }

        // The label is still there, and nothing was pushed since the event.
        let labels: Vec<String> = pr
            .get("labels")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(|x| x.get("name")?.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        if !labels.iter().any(|l| l == LABEL_EXECUTE_PLAN) {
            return Err(refuse(
                format!("pull request #{n} no longer has the label `{LABEL_EXECUTE_PLAN}`"),
                "the approval was withdrawn (by a person, or by a newer plan); review the pull request and add the label again",
            ));
        }
        let head_sha = s("/head/sha");
        if let Some(expected) = event_head
            && expected != head_sha
        {
            return Err(refuse(
                format!(
                    "pull request #{n}'s head moved from {} (when the label was added) to {}",
                    short(&expected),
                    short(&head_sha)
                ),
                "new commits withdraw the approval: review the new head and add `execute-plan` again",
            ));
        }

        // The plan at the head is the plan given to apply, and the one the planner published.
        let plan_path = super::plan_path(target);
        let at_head = match self.client.send(
            &Request::get(
                self.path(&format!("/contents/{}?ref={}", enc_path(&plan_path), enc(&head_sha))),
                format!("read {plan_path} at {}", short(&head_sha)),
                Permission::ContentsRead,
            )
            .accept(ACCEPT_RAW),
        ) {
            Ok(resp) => resp.body,
            Err(e) if e.is_not_found() => {
                return Err(refuse(
                    format!("there is no {plan_path} at the head of #{n} ({})", short(&head_sha)),
                    "run planning again",
                ));
            }
            Err(e) => return Err(e.into()),
        };
        let head_digest = super::sha256_hex(at_head.as_bytes());
        let local_digest = super::sha256_hex(req.plan_bytes);
        if local_digest != head_digest {
            return Err(refuse(
                format!(
                    "the plan given to apply (sha256 {}) is not the plan at the head of #{n} (sha256 {}, {plan_path})",
                    short(&local_digest),
                    short(&head_digest)
                ),
                "execute the plan file from the pull request's head commit",
            ));
        }
        let bot = sticky::bot_login(self.client, self.settings)?;
        let comments = super::publish::list_comments(self.client, self.repo, n)?;
        let Some(comment) = comments.iter().find(|c| sticky::is_ours(c, &bot)) else {
            return Err(refuse(
                format!("pull request #{n} has no plan comment written by the planner ({bot})"),
                "run planning again; if the planner uses another identity, set INFRA_SCALE_BOT_LOGIN to its login",
            ));
        };
        let comment_body = comment.get("body").and_then(Value::as_str).unwrap_or_default();
        let comment_id = comment.get("id").and_then(Value::as_u64).unwrap_or_default();
        let published = sticky::digest_of(comment_body).unwrap_or_default();
        if published != head_digest {
            return Err(refuse(
                format!(
                    "the plan at the head of #{n} has sha256 {}, but the planner's comment published {}",
                    short(&head_digest),
                    if published.is_empty() { "no digest".into() } else { short(&published) }
                ),
                "the plan was changed after it was published: run planning again and review the new plan",
            ));
        }

        // No commit by anyone else touched the plan after the planner's.
        let commits = self.client.get_pages(
            &Request::get(
                self.path(&format!("/pulls/{n}/commits?per_page=100")),
                format!("read the commits of #{n}"),
                Permission::PullRequestsRead,
            ),
            3,
        )?;
        let author = |c: &Value| c.pointer("/author/login").and_then(Value::as_str).unwrap_or_default().to_string();
        let Some(last_bot) = commits.iter().rposition(|c| author(c).eq_ignore_ascii_case(&bot)) else {
            return Err(refuse(
                format!("pull request #{n} has no commit by the planner ({bot})"),
                "run planning again",
            ));
        };
        for c in &commits[last_bot + 1..] {
            let sha = c.get("sha").and_then(Value::as_str).unwrap_or_default();
            if self.touches(sha, &plan_path)? {
                let who = author(c);
                let who = if who.is_empty() { "an unknown author".to_string() } else { who };
                return Err(refuse(
                    format!("commit {} by {who} changed {plan_path} after the planner's commit", short(sha)),
                    "only the planner may change a plan: run planning again to replace the branch",
                ));
            }
        }
        // The branch may change nothing but the plan and its summary: the execution workflow and
        // the action run from this checkout, with the cluster's credentials.
        let files = self.client.get_pages(
            &Request::get(
                self.path(&format!("/pulls/{n}/files?per_page=100")),
                format!("read the files changed by #{n}"),
                Permission::PullRequestsRead,
            ),
            30,
        )?;
        let allowed = [plan_path.clone(), super::summary_path(target)];
        let others: Vec<&str> = files
            .iter()
            .filter_map(|f| f.get("filename").and_then(Value::as_str))
            .filter(|name| !allowed.iter().any(|a| a == name))
            .collect();
        if !others.is_empty() {
            let shown = if others.len() > 5 {
                format!("{} and {} more", others[..5].join(", "), others.len() - 5)
            } else {
                others.join(", ")
            };
            return Err(refuse(
                format!(
                    "pull request #{n} changes files other than the plan: {shown}; execution runs this checkout with the cluster's credentials, so a plan branch may change only {} and {}",
                    allowed[0], allowed[1]
                ),
                "move other changes to their own pull request, then run planning again to reset the plan branch",
            ));
        }
        let head_date = commits
            .last()
            .and_then(|c| c.pointer("/commit/committer/date"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();

        // Who added the label, when, and may they execute?
        let events = self.client.get_pages(
            &Request::get(
                self.path(&format!("/issues/{n}/events?per_page=100")),
                format!("read who labelled #{n}"),
                Permission::PullRequestsRead,
            ),
            10,
        )?;
        let Some(labelled) = events.iter().rev().find(|e| {
            e.get("event").and_then(Value::as_str) == Some("labeled")
                && e.pointer("/label/name").and_then(Value::as_str) == Some(LABEL_EXECUTE_PLAN)
        }) else {
            return Err(refuse(format!("cannot find who added `{LABEL_EXECUTE_PLAN}` to #{n}"), "add the label again"));
        };
        let labeller = labelled.pointer("/actor/login").and_then(Value::as_str).unwrap_or_default().to_string();
        let labelled_at = labelled.get("created_at").and_then(Value::as_str).unwrap_or_default();
        if !head_date.is_empty() && !labelled_at.is_empty() && labelled_at < head_date.as_str() {
            return Err(refuse(
                format!(
                    "`{LABEL_EXECUTE_PLAN}` was added to #{n} at {labelled_at}, before its head commit ({head_date})"
                ),
                "the approval predates the current plan commit: review it and add the label again",
            ));
        }
        if labeller.is_empty() || labeller.eq_ignore_ascii_case(&bot) {
            return Err(refuse(
                format!(
                    "`{LABEL_EXECUTE_PLAN}` on #{n} was added by the planner's own identity ({bot}), not by a person"
                ),
                "a person with write, maintain or admin permission must add the label",
            ));
        }
        let permission = self.client.json(&Request::get(
            self.path(&format!("/collaborators/{}/permission", enc(&labeller))),
            format!("read {labeller}'s permission"),
            Permission::Metadata,
        ))?;
        let role = permission.get("role_name").and_then(Value::as_str).unwrap_or_default();
        let legacy = permission.get("permission").and_then(Value::as_str).unwrap_or_default();
        if !may_execute(role, legacy) {
            let role = if role.is_empty() { legacy } else { role };
            return Err(refuse(
                format!(
                    "{labeller}, who added `{LABEL_EXECUTE_PLAN}` to #{n}, has the `{role}` role; executing needs write, maintain or admin"
                ),
                "ask someone with write access to review the plan and add the label",
            ));
        }

        // Not already executed (the planner's comment records each success).
        if sticky::executed_digests(comment_body).contains(&head_digest) && !req.force {
            return Err(refuse(
                format!("plan sha256 {} on #{n} was already executed successfully", short(&head_digest)),
                "pass --force to execute the same plan again",
            ));
        }

        Ok(Approval {
            repo: full_name,
            pr_number: n,
            head_sha,
            plan_sha256: head_digest,
            labeller,
            target: target.to_string(),
            comment_id,
            bot_login: bot,
            pr_url: s("/html_url"),
        })
    }

    /// Whether a commit changed `path`.
    fn touches(&self, sha: &str, path: &str) -> Result<bool, ApiError> {
        let commit = self.client.json(&Request::get(
            self.path(&format!("/commits/{}", enc(sha))),
            format!("read the files changed by commit {}", short(sha)),
            Permission::ContentsRead,
        ))?;
        Ok(commit.get("files").and_then(Value::as_array).is_some_and(|files| {
            files.iter().any(|f| {
                f.get("filename").and_then(Value::as_str) == Some(path)
                    || f.get("previous_filename").and_then(Value::as_str) == Some(path)
            })
        }))
    }
}

/// Write, maintain and admin may execute; triage and read may not. A custom role (any other
/// `role_name`) counts by the legacy `permission` it folds into (admin/write vs read).
pub fn may_execute(role_name: &str, legacy_permission: &str) -> bool {
    match role_name {
        "admin" | "maintain" | "write" => true,
        "triage" | "read" | "none" => false,
        "" => matches!(legacy_permission, "admin" | "write"),
        _custom => matches!(legacy_permission, "admin" | "write"),
    }
}

fn short(sha: &str) -> String {
    sha.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_that_may_execute() {
        assert!(may_execute("admin", "admin"));
        assert!(may_execute("maintain", "write"));
        assert!(may_execute("write", "write"));
        assert!(!may_execute("triage", "read"));
        assert!(!may_execute("read", "read"));
        assert!(may_execute("deployer", "write"));
        assert!(!may_execute("auditor", "read"));
    }
}
