//! The approval gate: before any kubectl call that changes anything, re-read the pull request
//! through the API and refuse, with a distinct message per reason (exit 3), unless what is about
//! to run is exactly what a second person approved.
//!
//! The event must be `pull_request_target` (or no event, with `--pr`): a `pull_request` run's
//! workflow came from the pull request itself. Checks, in order: the PR is open; its head
//! repository is the base repository (no forks); its branch is a plan branch targeting the
//! default branch; it still has `execute-plan`; its head SHA equals the event's; the plan is read
//! at that SHA through the API (the bytes that will run, never the working directory); it is
//! byte-identical to the plan in the newest commit the planner made (a commit GitHub verified,
//! committed by the planner identity, matched by numeric id); no commit by anyone else touched the
//! plan after it; the branch changes only the plan and its SUMMARY.md; an `APPROVED` review of
//! exactly the head SHA by someone with write access who is not the planner, pushed nothing to
//! the branch, and has not since requested changes or been dismissed; the label was added by the
//! event's sender, after the head commit, with write access; the head SHA does not already carry
//! a successful execution status (unless `--force`). Every list is read completely or the gate
//! refuses (the PR's `commits` and `changed_files` counts are compared with what was read).
//!
//! Requests for a valid execution (the head is the planner's commit): the PR, the plan at the
//! head, commits, files, reviews, issue events, the approver's permission, the labeller's (not
//! when the approver labels), the head's statuses, plus `GET /user` when `INFRA_SCALE_BOT_LOGIN`
//! is unset: 8 to 10.

use std::collections::BTreeSet;

use serde_json::Value;

use super::client::{ACCEPT_RAW, ApiError, Client, Permission, Request, enc, enc_path};
use super::env::{ACTIONS_BOT_LOGIN, Env, Settings};
use super::{LABEL_EXECUTE_PLAN, Repo, STATUS_CONTEXT, sticky};
use crate::error::{Error, Result};

/// github-actions[bot]'s user id (the same on every github.com repository).
pub const ACTIONS_BOT_ID: u64 = 41_898_282;
/// GitHub lists at most 250 commits of a pull request.
const MAX_PR_COMMITS: u64 = 250;
/// GitHub lists at most 3000 changed files of a pull request.
const MAX_PR_FILES: u64 = 3000;

/// What the executor knows when it asks the gate.
#[derive(Debug, Clone)]
pub struct GateRequest<'a> {
    /// `--plan`: in a pull-request context, the plan's path in the repository.
    pub plan_path: &'a str,
    /// `--pr N`; otherwise the pull request comes from `GITHUB_EVENT_PATH`.
    pub pr: Option<u64>,
    /// `--force`: execute a head that already carries a successful execution.
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
    /// The plan's bytes at the head, read through the API: exactly what will be executed.
    pub plan_bytes: Vec<u8>,
    /// Who added `execute-plan`.
    pub labeller: String,
    /// Whose `APPROVED` review of the head counts.
    pub approver: String,
    /// The plan's target (from the branch name).
    pub target: String,
    /// The identity the planner acts as.
    pub bot_login: String,
    pub pr_url: String,
}

/// Verifies with settings from the process environment.
pub fn verify(req: &GateRequest) -> Result<Option<Approval>> {
    verify_with(&Env::from_process(), req)
}

/// The pull-request fields of a `pull_request_target` event payload.
#[derive(Debug, Default)]
struct PrEvent {
    number: Option<u64>,
    head_sha: Option<String>,
    label: Option<String>,
    sender: Option<String>,
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
        sender: event.pointer("/sender/login").and_then(Value::as_str).map(str::to_string),
    }))
}

fn refuse(reason: String, help: &str) -> Error {
    Error::refused(reason, help)
}

/// Verifies with settings from `env`. `Ok(None)`: no pull-request context (no `--pr`, and the
/// event is not a pull-request event). Every refusal is [`Error::Refused`] (exit 3).
pub fn verify_with(env: &Env, req: &GateRequest) -> Result<Option<Approval>> {
    let settings = Settings::from_env(env)?;
    if settings.event_name.as_deref() == Some("pull_request") {
        return Err(refuse(
            "refusing to execute on a `pull_request` event: its workflow file comes from the pull request, so anyone who can push to the branch controls the job that holds the cluster's credentials".into(),
            "migrate the execution workflow to `on: pull_request_target: types: [labeled]` (README, \"Migrating from the pull_request workflow\"): its workflow, action and binary come from the default branch",
        ));
    }
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
            format!(
                "the triggering event added the label `{}` to #{number}, not `{LABEL_EXECUTE_PLAN}`",
                label.escape_debug()
            ),
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
    let result = gate.check(req, event.unwrap_or_default());
    let (reads, writes) = client.counts();
    if std::env::var_os("INFRA_SCALE_DEBUG_REQUESTS").is_some() {
        eprintln!("note: the approval gate sent {reads} GitHub API request(s) ({writes} writes)");
    }
    result.map(Some)
}

/// The planner identity: a login, and the numeric id commits are matched by.
struct Planner {
    login: String,
    id: Option<u64>,
}

impl Planner {
    /// True when a user object (`{login, id}`) is the planner: by id when known, else by login.
    fn is(&self, user: &Value) -> bool {
        match self.id {
            Some(id) => user.get("id").and_then(Value::as_u64) == Some(id),
            None => login(user).eq_ignore_ascii_case(&self.login),
        }
    }
}

fn login(user: &Value) -> String {
    user.get("login").and_then(Value::as_str).unwrap_or_default().to_string()
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

    fn planner(&self) -> Result<Planner> {
        let login = sticky::bot_login(self.client, self.settings)?;
        let id = match self.settings.planner_id {
            Some(id) => Some(id),
            None if login.eq_ignore_ascii_case(ACTIONS_BOT_LOGIN) => Some(ACTIONS_BOT_ID),
            None if login.ends_with("[bot]") => {
                return Err(refuse(
                    format!(
                        "the planner is the GitHub App `{login}`, but INFRA_SCALE_PLANNER_ID does not give its numeric user id"
                    ),
                    "set the repository variable INFRA_SCALE_PLANNER_ID to the `id` of GET /users/<app-slug>[bot] (logins alone are not trusted)",
                ));
            }
            None => None,
        };
        Ok(Planner { login, id })
    }

    /// A whole list, or a refusal naming it.
    fn list(&self, rest: &str, what: &str, permission: Permission, max_pages: usize) -> Result<Vec<Value>> {
        let (items, complete) = self.client.get_pages_bounded(
            &Request::get(self.path(rest), format!("read the {what} of #{}", self.number), permission),
            max_pages,
        )?;
        if !complete {
            return Err(refuse(
                format!(
                    "pull request #{} has more {what} than the gate reads ({} pages of 100); a partial list could hide an entry",
                    self.number, max_pages
                ),
                "open a fresh plan pull request (run planning again after closing this one)",
            ));
        }
        Ok(items)
    }

    /// The plan file's bytes at a commit; `None` when it is not there.
    fn plan_at(&self, plan_path: &str, sha: &str) -> Result<Option<Vec<u8>>> {
        match self.client.send(
            &Request::get(
                self.path(&format!("/contents/{}?ref={}", enc_path(plan_path), enc(sha))),
                format!("read {plan_path} at {}", short(sha)),
                Permission::ContentsRead,
            )
            .accept(ACCEPT_RAW),
        ) {
            Ok(resp) => Ok(Some(resp.body.into_bytes())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn permission_of(&self, user: &str) -> Result<(bool, String)> {
        let permission = self.client.json(&Request::get(
            self.path(&format!("/collaborators/{}/permission", enc(user))),
            format!("read {user}'s permission"),
            Permission::Metadata,
        ))?;
        let role = permission.get("role_name").and_then(Value::as_str).unwrap_or_default();
        let legacy = permission.get("permission").and_then(Value::as_str).unwrap_or_default();
        Ok((may_execute(role, legacy), if role.is_empty() { legacy.to_string() } else { role.to_string() }))
    }

    fn check(&self, req: &GateRequest, event: PrEvent) -> Result<Approval> {
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
                    "pull request #{n} is from branch `{}`, not an infra-scale plan branch ({}<target>)",
                    head_ref.escape_debug(),
                    super::BRANCH_PREFIX
                ),
                "execute only pull requests opened by `infra-scale plan --apply`",
            ));
        };
        let default_branch = s("/base/repo/default_branch");
        if !default_branch.is_empty() && s("/base/ref") != default_branch {
            return Err(refuse(
                format!(
                    "pull request #{n} targets `{}`, not the default branch `{default_branch}`",
                    s("/base/ref").escape_debug()
                ),
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
        if let Some(expected) = &event.head_sha
            && *expected != head_sha
        {
            return Err(refuse(
                format!(
                    "pull request #{n}'s head moved from {} (when the label was added) to {}",
                    short(expected),
                    short(&head_sha)
                ),
                "new commits withdraw the approval: review the new head and add `execute-plan` again",
            ));
        }

        // The plan is the branch's plan file, read at the head through the API.
        let plan_path = super::plan_path(target);
        let given = req.plan_path.trim_start_matches("./");
        if given != plan_path {
            return Err(refuse(
                format!(
                    "apply --plan={} does not name the plan of #{n}: in a pull-request context --plan is the plan's path in the repository, {plan_path}",
                    req.plan_path.escape_debug()
                ),
                "pass --plan=ops/plans/infra-scale/<target>/plan.yaml; the plan is read through the API at the approved head, never from the working directory",
            ));
        }
        let Some(at_head) = self.plan_at(&plan_path, &head_sha)? else {
            return Err(refuse(
                format!("there is no {plan_path} at the head of #{n} ({})", short(&head_sha)),
                "run planning again",
            ));
        };
        let head_digest = super::sha256_hex(&at_head);

        // Every commit, and the newest one the planner made (verified, committed by the planner).
        let planner = self.planner()?;
        let bot = planner.login.clone();
        let expected_commits = pr.get("commits").and_then(Value::as_u64).unwrap_or_default();
        if expected_commits > MAX_PR_COMMITS {
            return Err(refuse(
                format!(
                    "pull request #{n} has {expected_commits} commits, more than the {MAX_PR_COMMITS} GitHub lists"
                ),
                "run planning again: the planner rebuilds the branch as one commit",
            ));
        }
        let commits =
            self.list(&format!("/pulls/{n}/commits?per_page=100"), "commits", Permission::PullRequestsRead, 3)?;
        if commits.len() as u64 != expected_commits {
            return Err(refuse(
                format!(
                    "pull request #{n} has {expected_commits} commits, but the commit list read {}; refusing to judge a partial list",
                    commits.len()
                ),
                "add the label again; if it persists, run planning again",
            ));
        }
        let verified = |c: &Value| c.pointer("/commit/verification/verified").and_then(Value::as_bool) == Some(true);
        let committer = |c: &Value| c.get("committer").cloned().unwrap_or(Value::Null);
        let sha_of = |c: &Value| c.get("sha").and_then(Value::as_str).unwrap_or_default().to_string();
        let is_planners = |c: &Value| verified(c) && planner.is(&committer(c));
        let Some(last_bot) = commits.iter().rposition(is_planners) else {
            if let Some(c) = commits
                .iter()
                .rev()
                .find(|c| planner.is(&committer(c)) || planner.is(c.get("author").unwrap_or(&Value::Null)))
            {
                return Err(refuse(
                    format!(
                        "commit {} on #{n} names the planner ({bot}) but GitHub did not verify its signature: it is not the planner's",
                        short(&sha_of(c))
                    ),
                    "only commits the planner creates through the API (signed by GitHub) count; run planning again",
                ));
            }
            return Err(refuse(
                format!("pull request #{n} has no commit that the planner ({bot}) made and GitHub verified"),
                "run planning again",
            ));
        };
        let planner_sha = sha_of(&commits[last_bot]);
        if planner_sha != head_sha {
            let planned = self.plan_at(&plan_path, &planner_sha)?.unwrap_or_default();
            if planned != at_head {
                return Err(refuse(
                    format!(
                        "the plan at the head of #{n} (sha256 {}) is not the plan the planner committed in {} (sha256 {})",
                        short(&head_digest),
                        short(&planner_sha),
                        short(&super::sha256_hex(&planned))
                    ),
                    "only the planner may change a plan: run planning again to replace the branch",
                ));
            }
        }
        // Who else pushed to the branch (they may not approve it), and did they touch the plan?
        let mut pushers = BTreeSet::new();
        for c in &commits[..] {
            if is_planners(c) {
                continue;
            }
            let sha = sha_of(c);
            for role in ["author", "committer"] {
                let who = c.get(role).map(login).unwrap_or_default();
                if who.is_empty() {
                    return Err(refuse(
                        format!(
                            "commit {} on #{n} has a {role} GitHub cannot link to an account, so the gate cannot tell who pushed it",
                            short(&sha)
                        ),
                        "run planning again to rebuild the branch with the planner's commit only",
                    ));
                }
                pushers.insert(who.to_ascii_lowercase());
            }
        }
        for c in &commits[last_bot + 1..] {
            let sha = sha_of(c);
            if self.touches(&sha, &plan_path)? {
                let who = c.get("author").map(login).unwrap_or_default();
                return Err(refuse(
                    format!("commit {} by {who} changed {plan_path} after the planner's commit", short(&sha)),
                    "only the planner may change a plan: run planning again to replace the branch",
                ));
            }
        }

        // The branch changes nothing but the plan and its summary.
        let expected_files = pr.get("changed_files").and_then(Value::as_u64).unwrap_or_default();
        if expected_files > MAX_PR_FILES {
            return Err(refuse(
                format!("pull request #{n} changes {expected_files} files, more than the {MAX_PR_FILES} GitHub lists"),
                "a plan branch changes two files: run planning again",
            ));
        }
        let files =
            self.list(&format!("/pulls/{n}/files?per_page=100"), "changed files", Permission::PullRequestsRead, 30)?;
        if files.len() as u64 != expected_files {
            return Err(refuse(
                format!(
                    "pull request #{n} changes {expected_files} files, but the file list read {}; refusing to judge a partial list",
                    files.len()
                ),
                "add the label again; if it persists, run planning again",
            ));
        }
        let allowed = [plan_path.clone(), super::summary_path(target)];
        let others: Vec<String> = files
            .iter()
            .filter_map(|f| f.get("filename").and_then(Value::as_str))
            .filter(|name| !allowed.iter().any(|a| a == name))
            .map(|name| name.escape_debug().to_string())
            .collect();
        if !others.is_empty() {
            let shown = if others.len() > 5 {
                format!("{} and {} more", others[..5].join(", "), others.len() - 5)
            } else {
                others.join(", ")
            };
            return Err(refuse(
                format!(
                    "pull request #{n} changes files other than the plan: {shown}; a plan branch may change only {} and {}",
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

        // A second person approved exactly this head.
        let reviews =
            self.list(&format!("/pulls/{n}/reviews?per_page=100"), "reviews", Permission::PullRequestsRead, 10)?;
        let state = |r: &Value| r.get("state").and_then(Value::as_str).unwrap_or_default().to_string();
        let reviewer = |r: &Value| r.get("user").cloned().unwrap_or(Value::Null);
        let at = |r: &Value| r.get("commit_id").and_then(Value::as_str) == Some(head_sha.as_str());
        let mut reasons = Vec::new();
        let mut approver = None;
        let mut checked: Vec<(String, bool, String)> = Vec::new();
        for r in reviews.iter().filter(|r| state(r) == "APPROVED" && at(r)) {
            let user = reviewer(r);
            let who = login(&user);
            if who.is_empty() || approver.is_some() {
                continue;
            }
            if planner.is(&user) || who.eq_ignore_ascii_case(&bot) {
                reasons.push(format!("{who} is the planner identity"));
                continue;
            }
            if pushers.contains(&who.to_ascii_lowercase()) {
                reasons.push(format!("{who} authored or committed a commit on the branch"));
                continue;
            }
            let same = |x: &Value| reviewer(x).get("id") == user.get("id") && login(&reviewer(x)) == who;
            let latest = reviews.iter().rev().find(|x| same(x) && state(x) != "PENDING" && state(x) != "COMMENTED");
            if let Some(l) = latest.map(state)
                && (l == "CHANGES_REQUESTED" || l == "DISMISSED")
            {
                reasons.push(format!("{who}'s latest review is {l}"));
                continue;
            }
            if checked.iter().any(|(c, _, _)| *c == who) {
                continue;
            }
            let (ok, role) = self.permission_of(&who)?;
            checked.push((who.clone(), ok, role.clone()));
            if !ok {
                reasons.push(format!("{who} has the `{role}` role (approving needs write, maintain or admin)"));
                continue;
            }
            approver = Some(who);
        }
        let Some(approver) = approver else {
            let reason = if !reasons.is_empty() {
                reasons.sort();
                reasons.dedup();
                format!("no approving review of the head of #{n} ({}) counts: {}", short(&head_sha), reasons.join("; "))
            } else if let Some(r) = reviews.iter().find(|r| state(r) == "DISMISSED" && at(r)) {
                format!("the review of #{n}'s head ({}) by {} was dismissed", short(&head_sha), login(&reviewer(r)))
            } else if let Some(r) = reviews.iter().rev().find(|r| state(r) == "APPROVED") {
                format!(
                    "{} approved commit {} of #{n}, not its head {}",
                    login(&reviewer(r)),
                    short(r.get("commit_id").and_then(Value::as_str).unwrap_or_default()),
                    short(&head_sha)
                )
            } else {
                format!("pull request #{n} has no approving review")
            };
            return Err(refuse(
                reason,
                "a person with write access who pushed nothing to the branch must approve the pull request (Review changes → Approve) at its current head, then add the label",
            ));
        };

        // Who added the label: the event's sender, after the head commit, with write access.
        let events =
            self.list(&format!("/issues/{n}/events?per_page=100"), "issue events", Permission::PullRequestsRead, 10)?;
        let Some(labelled) = events.iter().rev().find(|e| {
            e.get("event").and_then(Value::as_str) == Some("labeled")
                && e.pointer("/label/name").and_then(Value::as_str) == Some(LABEL_EXECUTE_PLAN)
        }) else {
            return Err(refuse(format!("cannot find who added `{LABEL_EXECUTE_PLAN}` to #{n}"), "add the label again"));
        };
        let labeller = labelled.pointer("/actor/login").and_then(Value::as_str).unwrap_or_default().to_string();
        if let Some(sender) = &event.sender
            && !sender.eq_ignore_ascii_case(&labeller)
        {
            return Err(refuse(
                format!(
                    "the triggering event was sent by {sender}, but `{LABEL_EXECUTE_PLAN}` on #{n} was last added by {labeller}"
                ),
                "add the label again (the run must be started by the person who labels)",
            ));
        }
        let labelled_at = labelled.get("created_at").and_then(Value::as_str).unwrap_or_default();
        if !head_date.is_empty() && !labelled_at.is_empty() && labelled_at < head_date.as_str() {
            return Err(refuse(
                format!(
                    "`{LABEL_EXECUTE_PLAN}` was added to #{n} at {labelled_at}, before its head commit ({head_date})"
                ),
                "the approval predates the current plan commit: review it and add the label again",
            ));
        }
        if labeller.is_empty()
            || labeller.eq_ignore_ascii_case(&bot)
            || planner.is(labelled.get("actor").unwrap_or(&Value::Null))
        {
            return Err(refuse(
                format!(
                    "`{LABEL_EXECUTE_PLAN}` on #{n} was added by the planner's own identity ({bot}), not by a person"
                ),
                "a person with write, maintain or admin permission must add the label",
            ));
        }
        let (ok, role) = match checked.iter().find(|(who, _, _)| who.eq_ignore_ascii_case(&labeller)) {
            Some((_, ok, role)) => (*ok, role.clone()),
            None => self.permission_of(&labeller)?,
        };
        if !ok {
            return Err(refuse(
                format!(
                    "{labeller}, who added `{LABEL_EXECUTE_PLAN}` to #{n}, has the `{role}` role; executing needs write, maintain or admin"
                ),
                "ask someone with write access to review the plan and add the label",
            ));
        }

        // Not already executed: a success status of the executor on this head.
        if !req.force {
            let statuses = self.list(
                &format!("/commits/{}/statuses?per_page=100", enc(&head_sha)),
                "commit statuses",
                Permission::ContentsRead,
                10,
            )?;
            if statuses.iter().any(|st| {
                st.get("context").and_then(Value::as_str) == Some(STATUS_CONTEXT)
                    && st.get("state").and_then(Value::as_str) == Some("success")
            }) {
                return Err(refuse(
                    format!(
                        "the head of #{n} ({}) was already executed successfully (status `{STATUS_CONTEXT}`)",
                        short(&head_sha)
                    ),
                    "pass --force (action input `force: true`) to execute the same plan again",
                ));
            }
        }

        Ok(Approval {
            repo: full_name,
            pr_number: n,
            head_sha,
            plan_sha256: head_digest,
            plan_bytes: at_head,
            labeller,
            approver,
            target: target.to_string(),
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
