//! Publishing a plan as a pull request, idempotently.
//!
//! One commit holding `plan.yaml` and `SUMMARY.md` on `infra-scale/<target>`, based on the
//! default branch (Git Data API: one tree with `base_tree`, one commit, one ref create/update);
//! the open PR for that branch is reused, else one is created (as a draft when the repository
//! allows drafts); label `needs-approval`; one sticky comment with the plan's digest. A re-run
//! whose plan differs only in `metadata.createdAt` makes no write request at all.
//!
//! Requests for a first publication: read the plan on the branch (404), read the default branch
//! (skipped when the Actions event names it), read its tip, create tree, create commit, create
//! ref, create PR, add label, create comment: 8 (9 outside Actions). An unchanged re-run: read
//! the plan, find the PR, list comments, read the token's identity: 4 reads, 0 writes.
//!
//! A converged target (its plan changes nothing in the live cluster) publishes nothing:
//! [`converge`] looks for the target's open plan PR (1 read) and, only when there is one, comments
//! that the cluster converged, closes it and deletes its branch.

use serde_json::{Value, json};

use super::client::{ACCEPT_RAW, ApiError, Client, Method, Permission, Request, enc, enc_path};
use super::env::{Env, Settings};
use super::sticky::{self, PlanComment};
use super::{LABEL_EXECUTE_FAILED, LABEL_EXECUTE_PLAN, LABEL_EXECUTED, LABEL_NEEDS_APPROVAL, Repo};
use crate::error::{Error, Result};

/// What to publish.
#[derive(Debug, Clone)]
pub struct PublishInput {
    pub target: String,
    pub plan_yaml: String,
    pub summary_md: String,
    pub reviewers: Vec<String>,
    pub require_pr: bool,
}

/// What was published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    /// The PR's `html_url`; empty when no PR could be published (no credentials).
    pub outputs_uri: String,
    pub pr_number: Option<u64>,
    /// sha256 of the plan.yaml bytes on the branch (the digest in the sticky comment).
    pub plan_sha256: String,
    /// `awaiting_approval`.
    pub status: String,
    /// True when the branch got a new commit (a new or changed plan).
    pub changed: bool,
    /// True when this run opened the PR.
    pub created_pr: bool,
    /// API requests sent: (reads, writes), retries included.
    pub api_requests: (u32, u32),
    /// Warnings; [`publish`] has already written them to stderr.
    pub warnings: Vec<String>,
}

/// Publishes with settings from the process environment; warnings go to stderr.
pub fn publish(input: &PublishInput) -> Result<PublishOutcome> {
    let outcome = publish_with(&Env::from_process(), input)?;
    for w in &outcome.warnings {
        crate::runner::warning(w);
    }
    Ok(outcome)
}

/// Publishes with settings from `env` (no process environment is read).
pub fn publish_with(env: &Env, input: &PublishInput) -> Result<PublishOutcome> {
    super::check_target(&input.target)
        .map_err(|e| Error::invalid(format!("--target={}", input.target), e, crate::names::LABEL_HELP))?;
    for r in &input.reviewers {
        if !r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') || r.is_empty() {
            return Err(Error::invalid(
                format!("--reviewers={r}"),
                format!("`{r}` is not a GitHub login"),
                "logins are letters, digits and `-`, comma-separated",
            ));
        }
    }
    let settings = Settings::from_env(env)?;
    let mut warnings = settings.notes.clone();
    let (Some(repo), Some(config)) = (settings.repo.clone(), settings.client_config()) else {
        let missing = settings.missing.join(", ");
        if input.require_pr {
            return Err(Error::Failed(anyhow::anyhow!(
                "cannot publish the plan as a pull request: missing {missing}\n  help: set them (in a workflow: GITHUB_TOKEN: ${{{{ github.token }}}} with permissions contents: write, pull-requests: write, issues: write), or drop --require-pr to only write the files"
            )));
        }
        warnings.push(format!("not publishing a pull request: missing {missing}; outputs_uri is empty"));
        return Ok(PublishOutcome {
            outputs_uri: String::new(),
            pr_number: None,
            plan_sha256: super::sha256_hex(input.plan_yaml.as_bytes()),
            status: "awaiting_approval".into(),
            changed: false,
            created_pr: false,
            api_requests: (0, 0),
            warnings,
        });
    };
    let client = Client::new(config);
    let mut run = Publication { client: &client, settings: &settings, repo: &repo, input, warnings };
    let result = run.go();
    let mut outcome = result?;
    outcome.api_requests = client.counts();
    Ok(outcome)
}

/// What [`converge`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvergeOutcome {
    /// The plan PR this run closed, if one was open.
    pub closed_pr: Option<u64>,
    /// API requests sent: (reads, writes), retries included.
    pub api_requests: (u32, u32),
    /// Warnings; [`converge`] has already written them to stderr.
    pub warnings: Vec<String>,
}

/// The converged comment's first line, which also marks it as ours.
pub const CONVERGED_MARKER: &str = "<!-- infra-scale:converged -->";

/// A converged target, with settings from the process environment; warnings go to stderr.
pub fn converge(target: &str, require_pr: bool) -> Result<ConvergeOutcome> {
    let outcome = converge_with(&Env::from_process(), target, require_pr)?;
    for w in &outcome.warnings {
        crate::runner::warning(w);
    }
    Ok(outcome)
}

/// A converged target: no pull request is opened; an open plan PR for the target (branch
/// `infra-scale/<target>`) gets a comment saying the cluster converged, is closed, and its branch
/// is deleted. Without an open PR nothing is written.
pub fn converge_with(env: &Env, target: &str, require_pr: bool) -> Result<ConvergeOutcome> {
    super::check_target(target)
        .map_err(|e| Error::invalid(format!("--target={target}"), e, crate::names::LABEL_HELP))?;
    let settings = Settings::from_env(env)?;
    let mut warnings = settings.notes.clone();
    let (Some(repo), Some(config)) = (settings.repo.clone(), settings.client_config()) else {
        let missing = settings.missing.join(", ");
        if require_pr {
            return Err(Error::Failed(anyhow::anyhow!(
                "the cluster converged, but the target's plan pull request cannot be checked and closed: missing {missing}\n  help: set them (in a workflow: GITHUB_TOKEN: ${{{{ github.token }}}} with permissions contents: write, pull-requests: write, issues: write), or drop --require-pr"
            )));
        }
        warnings.push(format!(
            "the cluster converged; not checking for an open plan pull request to close: missing {missing}"
        ));
        return Ok(ConvergeOutcome { closed_pr: None, api_requests: (0, 0), warnings });
    };
    let client = Client::new(config);
    let input = PublishInput {
        target: target.to_string(),
        plan_yaml: String::new(),
        summary_md: String::new(),
        reviewers: Vec::new(),
        require_pr,
    };
    let run = Publication { client: &client, settings: &settings, repo: &repo, input: &input, warnings };
    let closed_pr = run.close_converged()?;
    Ok(ConvergeOutcome { closed_pr, api_requests: client.counts(), warnings: run.warnings })
}

/// A pull request as far as publishing cares.
#[derive(Debug, Clone)]
struct Pull {
    number: u64,
    html_url: String,
    labels: Vec<String>,
}

impl Pull {
    fn from_json(v: &Value) -> Option<Pull> {
        Some(Pull {
            number: v.get("number")?.as_u64()?,
            // It goes to stdout and GITHUB_OUTPUT as one `outputs_uri=` line: a URL, one line.
            html_url: v
                .get("html_url")?
                .as_str()
                .filter(|u| u.starts_with("http") && !u.contains(|c: char| c.is_control() || c.is_whitespace()))?
                .to_string(),
            labels: v
                .get("labels")
                .and_then(Value::as_array)
                .map(|l| l.iter().filter_map(|x| x.get("name")?.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
        })
    }
}

struct Publication<'a> {
    client: &'a Client,
    settings: &'a Settings,
    repo: &'a Repo,
    input: &'a PublishInput,
    warnings: Vec<String>,
}

impl Publication<'_> {
    fn go(&mut self) -> Result<PublishOutcome> {
        let target = self.input.target.as_str();
        let branch = super::branch_for(target);
        let plan_path = super::plan_path(target);

        // 1. The plan currently on the branch, if any.
        let on_branch = self.read_file(&branch, &plan_path)?;
        let unchanged = on_branch.as_deref().is_some_and(|old| super::same_plan(old, &self.input.plan_yaml));
        let digest = match (&on_branch, unchanged) {
            (Some(old), true) => super::sha256_hex(old.as_bytes()),
            _ => super::sha256_hex(self.input.plan_yaml.as_bytes()),
        };

        // 2. A new commit, unless only createdAt changed.
        let mut default_branch = self.settings.default_branch_hint.clone();
        let mut branch_is_new = false;
        if !unchanged {
            let base = self.default_branch(&mut default_branch)?;
            branch_is_new = self.commit(&base, &branch, on_branch.is_none())?;
        }

        // 3. The pull request. A branch this run created cannot have an open PR yet.
        let existing = if branch_is_new { None } else { self.find_pull(&branch)? };
        let (pull, created_pr) = match existing {
            Some(p) => (p, false),
            None => {
                let base = self.default_branch(&mut default_branch)?;
                self.create_pull(&branch, &base)?
            }
        };

        // 4. Labels: ask for approval; a changed plan withdraws any earlier approval or outcome.
        if !pull.labels.iter().any(|l| l == LABEL_NEEDS_APPROVAL) {
            self.add_label(pull.number, LABEL_NEEDS_APPROVAL)?;
        }
        if !unchanged {
            for stale in [LABEL_EXECUTE_PLAN, LABEL_EXECUTED, LABEL_EXECUTE_FAILED] {
                if pull.labels.iter().any(|l| l == stale) {
                    self.remove_label(pull.number, stale)?;
                }
            }
        }
        if (created_pr || !unchanged) && !self.input.reviewers.is_empty() {
            self.request_reviewers(pull.number)?;
        }

        // 5. The sticky comment.
        self.upsert_comment(&pull, &branch, &digest, created_pr, unchanged)?;

        Ok(PublishOutcome {
            outputs_uri: pull.html_url.clone(),
            pr_number: Some(pull.number),
            plan_sha256: digest,
            status: "awaiting_approval".into(),
            changed: !unchanged,
            created_pr,
            api_requests: (0, 0),
            warnings: std::mem::take(&mut self.warnings),
        })
    }

    /// Comments on, closes and deletes the branch of the target's open plan PR; returns its number.
    fn close_converged(&self) -> Result<Option<u64>> {
        let target = self.input.target.as_str();
        let branch = super::branch_for(target);
        let Some(pull) = self.find_pull(&branch)? else {
            return Ok(None);
        };
        let number = pull.number;
        let body = format!(
            "{CONVERGED_MARKER}\nThe cluster converged: the live state of target `{target}` matches the config, \
             so this plan has nothing left to change. infra-scale closed this pull request and deleted its \
             branch `{branch}`; a later drift opens a new one.\n"
        );
        // A re-run after a half-finished close (comment posted, closing failed) comments once.
        let comments = list_comments(self.client, self.repo, number)?;
        if !comments.iter().any(|c| c.get("body").and_then(Value::as_str) == Some(body.as_str())) {
            let req = Request::new(
                Method::Post,
                self.path(&format!("/issues/{number}/comments")),
                format!("comment on #{number} that the cluster converged"),
                Permission::IssuesWrite,
            )
            .body(json!({"body": body}));
            let check = || -> Result<Option<Value>, ApiError> {
                let all = list_comments(self.client, self.repo, number)?;
                Ok(all.into_iter().find(|c| c.get("body").and_then(Value::as_str) == Some(body.as_str())))
            };
            self.client.send_checked(&req, &check)?;
        }
        let close = Request::new(
            Method::Patch,
            self.path(&format!("/pulls/{number}")),
            format!("close #{number} (the cluster converged)"),
            Permission::PullRequestsWrite,
        )
        .body(json!({"state": "closed"}));
        self.client.send(&close)?;
        let delete = Request::new(
            Method::Delete,
            self.path(&format!("/git/refs/heads/{}", enc_path(&branch))),
            format!("delete branch {branch} (the cluster converged)"),
            Permission::ContentsWrite,
        );
        match self.client.send(&delete) {
            Ok(_) => {}
            // Already gone (deleted by hand, or by a concurrent run): nothing left to do.
            Err(e) if e.is_not_found() || e.status() == Some(422) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Some(number))
    }

    fn path(&self, rest: &str) -> String {
        format!("{}{rest}", self.repo.api_path())
    }

    /// A file's text at a ref, `None` when the ref or the file does not exist.
    fn read_file(&self, reference: &str, path: &str) -> Result<Option<String>> {
        let req = Request::get(
            self.path(&format!("/contents/{}?ref={}", enc_path(path), enc(reference))),
            format!("read {path} on {reference}"),
            Permission::ContentsRead,
        )
        .accept(ACCEPT_RAW);
        match self.client.send(&req) {
            Ok(resp) => Ok(Some(resp.body)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn default_branch(&self, known: &mut Option<String>) -> Result<String> {
        if let Some(b) = known {
            return Ok(b.clone());
        }
        let repo = self.client.json(&Request::get(
            self.repo.api_path(),
            format!("read the repository {}", self.repo),
            Permission::Metadata,
        ))?;
        let branch = repo
            .get("default_branch")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Error::Failed(anyhow::anyhow!("GitHub did not say which branch of {} is the default", self.repo))
            })?
            .to_string();
        *known = Some(branch.clone());
        Ok(branch)
    }

    /// Commits plan.yaml and SUMMARY.md on top of the default branch's tip and points the plan
    /// branch at it. Returns true when the branch was created.
    fn commit(&self, base: &str, branch: &str, maybe_new: bool) -> Result<bool> {
        let target = self.input.target.as_str();
        let tip = self.client.json(&Request::get(
            self.path(&format!("/branches/{}", enc(base))),
            format!("read the tip of the default branch {base}"),
            Permission::ContentsRead,
        ))?;
        let parent = str_at(&tip, "/commit/sha", "the default branch's commit")?;
        let base_tree = str_at(&tip, "/commit/commit/tree/sha", "the default branch's tree")?;

        // Trees and commits are content objects: repeating the POST creates nothing visible.
        let tree = self.client.json(
            &Request::new(Method::Post, self.path("/git/trees"), "create the plan's git tree", Permission::ContentsWrite)
                .body(json!({
                    "base_tree": base_tree,
                    "tree": [
                        {"path": super::plan_path(target), "mode": "100644", "type": "blob", "content": self.input.plan_yaml},
                        {"path": super::summary_path(target), "mode": "100644", "type": "blob", "content": self.input.summary_md},
                    ],
                }))
                .repeatable(),
        )?;
        let tree_sha = str_at(&tree, "/sha", "the new tree")?;
        let digest = super::sha256_hex(self.input.plan_yaml.as_bytes());
        let commit = self.client.json(
            &Request::new(Method::Post, self.path("/git/commits"), "create the plan commit", Permission::ContentsWrite)
                .body(json!({
                    "message": format!("infra-scale: scaling plan for {target}\n\nplan-sha256: {digest}\n"),
                    "tree": tree_sha,
                    "parents": [parent],
                }))
                .repeatable(),
        )?;
        let commit_sha = str_at(&commit, "/sha", "the new commit")?;

        let ref_path = self.path(&format!("/git/refs/heads/{}", enc_path(branch)));
        let update = Request::new(
            Method::Patch,
            ref_path,
            format!("move branch {branch} to the new plan commit"),
            Permission::ContentsWrite,
        )
        // The branch belongs to the planner: it is rebuilt on the default branch each time.
        .body(json!({"sha": commit_sha, "force": true}));
        if !maybe_new {
            self.client.send(&update)?;
            return Ok(false);
        }
        let create = Request::new(
            Method::Post,
            self.path("/git/refs"),
            format!("create branch {branch}"),
            Permission::ContentsWrite,
        )
        .body(json!({"ref": format!("refs/heads/{branch}"), "sha": commit_sha}));
        let check = || -> Result<Option<Value>, ApiError> {
            let req = Request::get(
                self.path(&format!("/git/ref/heads/{}", enc_path(branch))),
                format!("check whether branch {branch} was created"),
                Permission::ContentsRead,
            );
            match self.client.json(&req) {
                Ok(r) if r.pointer("/object/sha").and_then(Value::as_str) == Some(commit_sha.as_str()) => Ok(Some(r)),
                Ok(_) => Ok(None),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(e),
            }
        };
        match self.client.send_checked(&create, &check) {
            Ok(_) => Ok(true),
            // The branch exists without a plan file (created by hand, or a half-finished run).
            Err(e) if e.status() == Some(422) && e.message().to_ascii_lowercase().contains("already exists") => {
                self.client.send(&update)?;
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn find_pull(&self, branch: &str) -> Result<Option<Pull>, ApiError> {
        let head = format!("{}:{branch}", self.repo.owner);
        let pulls = self.client.get_pages(
            &Request::get(
                self.path(&format!("/pulls?head={}&state=open&per_page=100", enc(&head))),
                format!("look for an open pull request from {branch}"),
                Permission::PullRequestsRead,
            ),
            3,
        )?;
        let full_name = self.repo.full_name();
        // `head=` filtering is done by GitHub; check anyway that it is our branch in our repository.
        Ok(pulls
            .iter()
            .filter(|p| {
                p.pointer("/head/ref").and_then(Value::as_str) == Some(branch)
                    && p.pointer("/head/repo/full_name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| n.eq_ignore_ascii_case(&full_name))
            })
            .find_map(Pull::from_json))
    }

    /// Opens the PR; the flag is true when this call created it (a 201, not an adoption of a PR
    /// that a lost answer or a concurrent run had already opened).
    fn create_pull(&mut self, branch: &str, base: &str) -> Result<(Pull, bool)> {
        let target = &self.input.target;
        let settings = self.settings;
        let body = format!(
            "Scaling plan for target `{target}`, written by `infra-scale plan`.\n\n\
             - Plan: [`{plan}`]({plan_url})\n- Summary: [`{summary}`]({summary_url})\n\n\
             The plan's digest, its summary and how to approve it are in the infra-scale comment below. \
             Do not push to this branch: the next planning run replaces it, and any push withdraws an approval.\n",
            plan = super::plan_path(target),
            summary = super::summary_path(target),
            plan_url = settings.blob_url(self.repo, branch, &super::plan_path(target)),
            summary_url = settings.blob_url(self.repo, branch, &super::summary_path(target)),
        );
        let title = format!("infra-scale: scaling plan for {target}");
        let check = || -> Result<Option<Value>, ApiError> {
            Ok(self.find_pull(branch)?.map(|p| {
                json!({"number": p.number, "html_url": p.html_url, "labels": p.labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>()})
            }))
        };
        let create = |draft: bool| {
            let mut body =
                json!({"title": title, "head": branch, "base": base, "body": body, "maintainer_can_modify": false});
            if draft {
                body["draft"] = Value::Bool(true);
            }
            Request::new(Method::Post, self.path("/pulls"), "create the pull request", Permission::PullRequestsWrite)
                .body(body)
        };
        let mut draft_refused = None;
        let result = match self.client.send_checked(&create(true), &check) {
            Err(e) if e.status() == Some(422) && e.message().to_ascii_lowercase().contains("draft") => {
                draft_refused = Some(e.message().to_string());
                self.client.send_checked(&create(false), &check)
            }
            other => other,
        };
        if let Some(message) = draft_refused {
            self.warnings
                .push(format!("the repository does not accept draft pull requests ({message}); opened a regular one"));
        }
        match result {
            Ok(resp) => {
                let v = resp.json()?;
                Pull::from_json(&v).map(|p| (p, resp.status == 201)).ok_or_else(|| {
                    Error::Failed(anyhow::anyhow!(
                        "GitHub's answer to creating the pull request has no number or html_url"
                    ))
                })
            }
            // Someone (a concurrent run) opened it meanwhile.
            Err(e) if e.status() == Some(422) && e.message().to_ascii_lowercase().contains("already exists") => {
                self.find_pull(branch)?.map(|p| (p, false)).ok_or_else(|| e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn add_label(&self, number: u64, label: &str) -> Result<()> {
        // Adding a label that is already there changes nothing: safe to repeat.
        let req = Request::new(
            Method::Post,
            self.path(&format!("/issues/{number}/labels")),
            format!("add the label `{label}` to #{number}"),
            Permission::IssuesWrite,
        )
        .body(json!({"labels": [label]}))
        .repeatable();
        self.client.send(&req)?;
        Ok(())
    }

    fn remove_label(&self, number: u64, label: &str) -> Result<()> {
        remove_label(self.client, self.repo, number, label)
    }

    fn request_reviewers(&mut self, number: u64) -> Result<()> {
        let req = Request::new(
            Method::Post,
            self.path(&format!("/pulls/{number}/requested_reviewers")),
            format!("request reviews on #{number}"),
            Permission::PullRequestsWrite,
        )
        .body(json!({"reviewers": self.input.reviewers}))
        .repeatable();
        match self.client.send(&req) {
            Ok(_) => Ok(()),
            // A reviewer who is not a collaborator must not cost the whole publication.
            Err(e) if e.status() == Some(422) => {
                self.warnings.push(format!(
                    "could not request reviews from {}: {}",
                    self.input.reviewers.join(", "),
                    e.message()
                ));
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn upsert_comment(&self, pull: &Pull, branch: &str, digest: &str, created_pr: bool, unchanged: bool) -> Result<()> {
        let comments = if created_pr { Vec::new() } else { list_comments(self.client, self.repo, pull.number)? };
        let ours = if comments.iter().any(sticky::has_marker) {
            let login = sticky::bot_login(self.client, self.settings)?;
            comments.into_iter().find(|c| sticky::is_ours(c, &login))
        } else {
            None
        };
        let old_body = ours.as_ref().and_then(|c| c.get("body")).and_then(Value::as_str).unwrap_or_default();
        if unchanged && sticky::digest_of(old_body).as_deref() == Some(digest) {
            return Ok(());
        }
        let target = &self.input.target;
        let body = sticky::render(&PlanComment {
            target,
            branch,
            digest,
            summary_md: &self.input.summary_md,
            plan_url: &self.settings.blob_url(self.repo, branch, &super::plan_path(target)),
            summary_url: &self.settings.blob_url(self.repo, branch, &super::summary_path(target)),
            executed: sticky::executed_lines(old_body),
        });
        match ours.as_ref().and_then(|c| c.get("id")).and_then(Value::as_u64) {
            Some(id) => {
                if body != old_body {
                    let req = Request::new(
                        Method::Patch,
                        self.path(&format!("/issues/comments/{id}")),
                        format!("update the plan comment on #{}", pull.number),
                        Permission::IssuesWrite,
                    )
                    .body(json!({"body": body}));
                    self.client.send(&req)?;
                }
            }
            None => {
                let req = Request::new(
                    Method::Post,
                    self.path(&format!("/issues/{}/comments", pull.number)),
                    format!("comment the plan's digest on #{}", pull.number),
                    Permission::IssuesWrite,
                )
                .body(json!({"body": body}));
                let check = || -> Result<Option<Value>, ApiError> {
                    let all = list_comments(self.client, self.repo, pull.number)?;
                    Ok(all.into_iter().find(|c| c.get("body").and_then(Value::as_str) == Some(body.as_str())))
                };
                self.client.send_checked(&req, &check)?;
            }
        }
        Ok(())
    }
}

/// Every comment of an issue or PR, oldest first.
pub(crate) fn list_comments(client: &Client, repo: &Repo, number: u64) -> Result<Vec<Value>, ApiError> {
    client.get_pages(
        &Request::get(
            format!("{}/issues/{number}/comments?per_page=100", repo.api_path()),
            format!("read the comments of #{number}"),
            Permission::PullRequestsRead,
        ),
        20,
    )
}

/// Removes a label; a label that is already gone is fine.
pub(crate) fn remove_label(client: &Client, repo: &Repo, number: u64, label: &str) -> Result<()> {
    let req = Request::new(
        Method::Delete,
        format!("{}/issues/{number}/labels/{}", repo.api_path(), enc(label)),
        format!("remove the label `{label}` from #{number}"),
        Permission::IssuesWrite,
    );
    match client.send(&req) {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn str_at(v: &Value, pointer: &str, what: &str) -> Result<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Error::Failed(anyhow::anyhow!("GitHub's answer lacks {what} ({pointer})")))
}
