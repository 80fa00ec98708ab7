//! The fake's repository state (git objects, refs, pull requests, labels, comments, events,
//! permissions, statuses) and the handler of each REST operation, answering like GitHub does
//! (status codes, `Validation Failed` bodies, pagination `Link` headers).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Value, json};

/// Who the token acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A personal access token of this user: `GET /user` answers with the login.
    User(String),
    /// The workflow `GITHUB_TOKEN`: acts as `github-actions[bot]`; `GET /user` answers 403.
    ActionsBot,
    /// A GitHub App installation token: acts as `<slug>[bot]`; `GET /user` answers 403.
    App(String),
}

impl Identity {
    pub fn login(&self) -> String {
        match self {
            Identity::User(l) => l.clone(),
            Identity::ActionsBot => "github-actions[bot]".into(),
            Identity::App(slug) => format!("{slug}[bot]"),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Identity::User(_) => "User",
            _ => "Bot",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Commit {
    pub tree: String,
    pub parents: Vec<String>,
    pub message: String,
    pub author: String,
    /// Who committed: the author for a pushed commit, the token's identity for an API commit.
    pub committer: String,
    /// GitHub verified the commit's signature: true for commits created through the API (GitHub
    /// signs them), false for pushed commits (unsigned, whatever e-mail they claim).
    pub verified: bool,
    pub date: String,
}

#[derive(Debug, Clone)]
pub struct Review {
    pub id: u64,
    pub pull: u64,
    pub user: String,
    /// APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED (an approval or change request that was dismissed).
    pub state: String,
    pub commit_id: String,
    pub submitted_at: String,
}

#[derive(Debug, Clone)]
pub struct Pull {
    pub number: u64,
    pub state: String,
    pub merged: bool,
    pub draft: bool,
    pub title: String,
    pub body: String,
    pub head_ref: String,
    pub head_repo: String,
    /// The head SHA when the head is not a branch here (a fork).
    pub head_sha: Option<String>,
    pub base_ref: String,
    pub user: String,
    pub labels: Vec<String>,
    pub requested_reviewers: Vec<String>,
    /// Overrides of the `commits` / `changed_files` counts (to model a list that reads short).
    pub counts_override: (Option<u64>, Option<u64>),
}

#[derive(Debug, Clone)]
pub struct Comment {
    pub id: u64,
    pub issue: u64,
    pub body: String,
    pub user: String,
    pub user_type: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone)]
pub struct IssueEvent {
    pub id: u64,
    pub issue: u64,
    pub event: String,
    pub label: String,
    pub actor: String,
    pub created_at: String,
}

/// Everything the fake remembers.
#[derive(Debug)]
pub struct State {
    pub owner: String,
    pub repo: String,
    pub default_branch: String,
    pub identity: Identity,
    pub drafts_refused: bool,
    pub blobs: HashMap<String, String>,
    /// Flattened trees: path → blob SHA.
    pub trees: HashMap<String, BTreeMap<String, String>>,
    pub commits: HashMap<String, Commit>,
    pub refs: BTreeMap<String, String>,
    pub pulls: Vec<Pull>,
    pub comments: Vec<Comment>,
    pub events: Vec<IssueEvent>,
    pub roles: BTreeMap<String, String>,
    pub statuses: Vec<(String, Value)>,
    pub reviews: Vec<Review>,
    next_id: u64,
    next_sha: u64,
    clock: u64,
}

/// An answer: status, JSON or text body, extra headers.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: ReplyBody,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug)]
pub enum ReplyBody {
    Json(Value),
    Text(String),
    /// `204 No Content`.
    Empty,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply { status, body: ReplyBody::Json(body), headers: Vec::new() }
    }

    pub fn message(status: u16, message: &str) -> Reply {
        Reply::json(
            status,
            json!({"message": message, "documentation_url": "https://docs.github.com/rest", "status": status.to_string()}),
        )
    }

    /// GitHub's 422 `Validation Failed` with one error.
    pub fn invalid(resource: &str, field: &str, code: &str, message: Option<&str>) -> Reply {
        let mut error = json!({"resource": resource, "field": field, "code": code});
        if let Some(m) = message {
            error["message"] = json!(m);
        }
        Reply::json(
            422,
            json!({"message": "Validation Failed", "errors": [error], "documentation_url": "https://docs.github.com/rest", "status": "422"}),
        )
    }
}

/// What a handler needs besides the state.
pub struct Ctx<'a> {
    pub api_url: &'a str,
    pub server_url: &'a str,
    pub path: &'a str,
    pub query: &'a HashMap<String, String>,
    pub accept: &'a str,
    pub params: &'a HashMap<String, String>,
    pub body: Option<&'a Value>,
}

impl Ctx<'_> {
    fn param(&self, name: &str) -> &str {
        self.params.get(name).map(String::as_str).unwrap_or_default()
    }

    fn number(&self, name: &str) -> Option<u64> {
        self.param(name).parse().ok()
    }

    fn field(&self, name: &str) -> Option<&Value> {
        self.body.and_then(|b| b.get(name))
    }

    fn str_field(&self, name: &str) -> Option<&str> {
        self.field(name).and_then(Value::as_str)
    }
}

impl State {
    pub fn new(owner: &str, repo: &str, default_branch: &str, identity: Identity) -> State {
        let mut s = State {
            owner: owner.into(),
            repo: repo.into(),
            default_branch: default_branch.into(),
            identity,
            drafts_refused: false,
            blobs: HashMap::new(),
            trees: HashMap::new(),
            commits: HashMap::new(),
            refs: BTreeMap::new(),
            pulls: Vec::new(),
            comments: Vec::new(),
            events: Vec::new(),
            roles: BTreeMap::new(),
            statuses: Vec::new(),
            reviews: Vec::new(),
            next_id: 0,
            next_sha: 0,
            clock: 0,
        };
        let files = [("README.md", "# fleet\n"), ("ops/plans/README.md", "Plans live here.\n")];
        let sha = s.commit_files(None, "octocat", "Initial commit", &files);
        s.refs.insert(format!("refs/heads/{default_branch}"), sha);
        s
    }

    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.repo)
    }

    fn sha(&mut self) -> String {
        self.next_sha += 1;
        // Not content-addressed: distinct 40-hex names are all the client may rely on.
        format!(
            "{:08x}{:032x}",
            0x5eed_0000u32 + self.next_sha as u32,
            self.next_sha.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        )
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A logical clock: every event is one second after the previous one.
    pub fn now(&mut self) -> String {
        self.clock += 1;
        let t = self.clock;
        format!("2026-01-{:02}T{:02}:{:02}:{:02}Z", 1 + t / 86_400, (t / 3600) % 24, (t / 60) % 60, t % 60)
    }

    /// Makes a commit on top of `parent` changing `files` (content `""` deletes), by `author`.
    pub fn commit_files(
        &mut self,
        parent: Option<&str>,
        author: &str,
        message: &str,
        files: &[(&str, &str)],
    ) -> String {
        let mut tree =
            parent.and_then(|p| self.commits.get(p)).and_then(|c| self.trees.get(&c.tree)).cloned().unwrap_or_default();
        for (path, content) in files {
            if content.is_empty() {
                tree.remove(*path);
            } else {
                let blob = self.sha();
                self.blobs.insert(blob.clone(), (*content).to_string());
                tree.insert((*path).to_string(), blob);
            }
        }
        let tree_sha = self.sha();
        self.trees.insert(tree_sha.clone(), tree);
        let sha = self.sha();
        let date = self.now();
        self.commits.insert(
            sha.clone(),
            Commit {
                tree: tree_sha,
                parents: parent.map(|p| vec![p.to_string()]).unwrap_or_default(),
                message: message.into(),
                author: author.into(),
                committer: author.into(),
                verified: false,
                date,
            },
        );
        sha
    }

    /// Resolves a branch name, `heads/…` or `refs/heads/…` name, or commit SHA.
    pub fn resolve(&self, reference: &str) -> Option<String> {
        let candidates = [format!("refs/heads/{reference}"), format!("refs/{reference}"), reference.to_string()];
        candidates
            .iter()
            .find_map(|r| self.refs.get(r).cloned())
            .or_else(|| self.commits.contains_key(reference).then(|| reference.to_string()))
    }

    pub fn file_at(&self, reference: &str, path: &str) -> Option<String> {
        let sha = self.resolve(reference)?;
        let tree = self.trees.get(&self.commits.get(&sha)?.tree)?;
        self.blobs.get(tree.get(path)?).cloned()
    }

    fn ancestors(&self, sha: &str) -> HashSet<String> {
        let mut seen = HashSet::new();
        let mut stack = vec![sha.to_string()];
        while let Some(s) = stack.pop() {
            if seen.insert(s.clone())
                && let Some(c) = self.commits.get(&s)
            {
                stack.extend(c.parents.iter().cloned());
            }
        }
        seen
    }

    fn user(&self, login: &str) -> Value {
        let kind = if login.ends_with("[bot]") { "Bot" } else { "User" };
        json!({"login": login, "id": user_id(login), "type": kind})
    }

    fn repo_json(&self) -> Value {
        json!({
            "id": 4242, "name": self.repo, "full_name": self.full_name(), "private": true,
            "owner": self.user(&self.owner), "default_branch": self.default_branch,
        })
    }

    pub fn pull_head_sha(&self, p: &Pull) -> String {
        p.head_sha.clone().or_else(|| self.resolve(&p.head_ref)).unwrap_or_default()
    }

    pub fn pull_json(&self, p: &Pull, ctx_server: &str, api_url: &str) -> Value {
        let base_sha = self.resolve(&p.base_ref).unwrap_or_default();
        let head_repo = json!({"full_name": p.head_repo, "name": p.head_repo.split('/').nth(1).unwrap_or_default(), "default_branch": self.default_branch});
        let commits = p.counts_override.0.unwrap_or(self.pull_commits(p).len() as u64);
        let changed_files = p.counts_override.1.unwrap_or(self.pull_files(p).map_or(0, |f| f.len() as u64));
        json!({
            "commits": commits, "changed_files": changed_files,
            "id": 900_000 + p.number, "number": p.number, "state": p.state, "draft": p.draft, "merged": p.merged,
            "locked": false, "title": p.title, "body": p.body,
            "url": format!("{api_url}/repos/{}/pulls/{}", self.full_name(), p.number),
            "html_url": format!("{ctx_server}/{}/pull/{}", self.full_name(), p.number),
            "user": self.user(&p.user),
            "labels": p.labels.iter().enumerate().map(|(i, l)| json!({"id": i + 1, "name": l, "color": "ededed", "default": false})).collect::<Vec<_>>(),
            "requested_reviewers": p.requested_reviewers.iter().map(|r| self.user(r)).collect::<Vec<_>>(),
            "head": {"label": format!("{}:{}", p.head_repo.split('/').next().unwrap_or_default(), p.head_ref), "ref": p.head_ref, "sha": self.pull_head_sha(p), "repo": head_repo},
            "base": {"label": format!("{}:{}", self.owner, p.base_ref), "ref": p.base_ref, "sha": base_sha, "repo": self.repo_json()},
        })
    }

    fn comment_json(&self, c: &Comment, server: &str) -> Value {
        json!({
            "id": c.id, "body": c.body, "user": {"login": c.user, "type": c.user_type},
            "html_url": format!("{server}/{}/pull/{}#issuecomment-{}", self.full_name(), c.issue, c.id),
            "created_at": c.created_at, "updated_at": c.updated_at, "author_association": "MEMBER",
            "performed_via_github_app": Value::Null,
        })
    }

    fn commit_json(&self, sha: &str) -> Value {
        let c = &self.commits[sha];
        json!({
            "sha": sha,
            "commit": {
                "message": c.message,
                "tree": {"sha": c.tree},
                "author": {"name": c.author, "email": format!("{}@users.noreply.github.com", c.author), "date": c.date},
                "committer": {"name": c.committer, "email": format!("{}@users.noreply.github.com", c.committer), "date": c.date},
                "verification": {"verified": c.verified, "reason": if c.verified { "valid" } else { "unsigned" }, "signature": Value::Null, "payload": Value::Null, "verified_at": Value::Null},
            },
            "author": self.user(&c.author),
            "committer": self.user(&c.committer),
            "parents": c.parents.iter().map(|p| json!({"sha": p})).collect::<Vec<_>>(),
        })
    }

    /// The PR's commits, oldest first, following first parents from the head down to the base.
    pub fn pull_commits(&self, p: &Pull) -> Vec<String> {
        let base = self.ancestors(&self.resolve(&p.base_ref).unwrap_or_default());
        let mut chain = Vec::new();
        let mut at = Some(self.pull_head_sha(p));
        while let Some(sha) = at {
            if base.contains(&sha) || !self.commits.contains_key(&sha) {
                break;
            }
            at = self.commits[&sha].parents.first().cloned();
            chain.push(sha);
        }
        chain.reverse();
        chain
    }

    /// The diff of the head against the base branch's tip (the merge base here); `None` without a head commit.
    pub fn pull_files(&self, p: &Pull) -> Option<Vec<Value>> {
        let empty = BTreeMap::new();
        let base = self.resolve(&p.base_ref).and_then(|sha| self.commits.get(&sha)).map(|c| &self.trees[&c.tree]);
        let base = base.unwrap_or(&empty);
        let head = self.commits.get(&self.pull_head_sha(p)).map(|c| &self.trees[&c.tree])?;
        let mut files = Vec::new();
        for (path, blob) in head {
            match base.get(path) {
                None => files.push(json!({"sha": blob, "filename": path, "status": "added", "additions": 1, "deletions": 0, "changes": 1, "blob_url": "", "raw_url": "", "contents_url": ""})),
                Some(b) if b != blob && self.blobs[b] != self.blobs[blob] => files.push(json!({"sha": blob, "filename": path, "status": "modified", "additions": 1, "deletions": 1, "changes": 2, "blob_url": "", "raw_url": "", "contents_url": ""})),
                _ => {}
            }
        }
        for (path, blob) in base.iter().filter(|(p, _)| !head.contains_key(*p)) {
            files.push(json!({"sha": blob, "filename": path, "status": "removed", "additions": 0, "deletions": 1, "changes": 1, "blob_url": "", "raw_url": "", "contents_url": ""}));
        }
        Some(files)
    }

    /// Submits a review as `user` on `commit_id`; returns its id.
    pub fn add_review(&mut self, number: u64, user: &str, state: &str, commit_id: &str) -> u64 {
        let (id, submitted_at) = (self.id(), self.now());
        self.reviews.push(Review {
            id,
            pull: number,
            user: user.into(),
            state: state.into(),
            commit_id: commit_id.into(),
            submitted_at,
        });
        id
    }

    pub fn add_label(&mut self, number: u64, label: &str, actor: &str) {
        let Some(i) = self.pulls.iter().position(|p| p.number == number) else { return };
        if !self.pulls[i].labels.iter().any(|l| l == label) {
            self.pulls[i].labels.push(label.to_string());
            let (id, created_at) = (self.id(), self.now());
            self.events.push(IssueEvent {
                id,
                issue: number,
                event: "labeled".into(),
                label: label.into(),
                actor: actor.into(),
                created_at,
            });
        }
    }

    pub fn remove_label(&mut self, number: u64, label: &str, actor: &str) -> bool {
        let Some(i) = self.pulls.iter().position(|p| p.number == number) else { return false };
        let before = self.pulls[i].labels.len();
        self.pulls[i].labels.retain(|l| l != label);
        if self.pulls[i].labels.len() == before {
            return false;
        }
        let (id, created_at) = (self.id(), self.now());
        self.events.push(IssueEvent {
            id,
            issue: number,
            event: "unlabeled".into(),
            label: label.into(),
            actor: actor.into(),
            created_at,
        });
        true
    }

    pub fn add_comment(&mut self, number: u64, user: &str, user_type: &str, body: &str) -> u64 {
        let (id, now) = (1000 + self.id(), self.now());
        self.comments.push(Comment {
            id,
            issue: number,
            body: body.into(),
            user: user.into(),
            user_type: user_type.into(),
            created_at: now.clone(),
            updated_at: now,
        });
        id
    }

    fn labels_json(&self, number: u64) -> Value {
        let labels = self.pulls.iter().find(|p| p.number == number).map(|p| p.labels.clone()).unwrap_or_default();
        json!(
            labels
                .iter()
                .enumerate()
                .map(|(i, l)| json!({"id": i + 1, "name": l, "color": "ededed"}))
                .collect::<Vec<_>>()
        )
    }

    /// Serves one routed operation.
    pub fn handle(&mut self, method: &str, template: &str, ctx: &Ctx) -> Reply {
        if template.starts_with("/repos/{owner}/{repo}")
            && !(ctx.param("owner").eq_ignore_ascii_case(&self.owner)
                && ctx.param("repo").eq_ignore_ascii_case(&self.repo))
        {
            return Reply::message(404, "Not Found");
        }
        let op = template.trim_start_matches("/repos/{owner}/{repo}");
        let me = self.identity.login();
        match (method, op) {
            ("GET", "/user") => match &self.identity {
                Identity::User(login) => Reply::json(200, json!({"login": login, "id": 77, "type": "User"})),
                _ => Reply::message(403, "Resource not accessible by integration"),
            },
            ("GET", "") => Reply::json(200, self.repo_json()),
            ("GET", "/branches/{branch}") => match self.refs.get(&format!("refs/heads/{}", ctx.param("branch"))) {
                Some(sha) => Reply::json(
                    200,
                    json!({"name": ctx.param("branch"), "commit": self.commit_json(&sha.clone()), "protected": false}),
                ),
                None => Reply::message(404, "Branch not found"),
            },
            ("GET", "/contents/{path}") => {
                let reference = ctx.query.get("ref").cloned().unwrap_or_else(|| self.default_branch.clone());
                if self.resolve(&reference).is_none() {
                    return Reply::message(404, &format!("No commit found for the ref {reference}"));
                }
                match self.file_at(&reference, ctx.param("path")) {
                    Some(text) if ctx.accept.contains("raw") => {
                        Reply { status: 200, body: ReplyBody::Text(text), headers: Vec::new() }
                    }
                    Some(text) => Reply::json(
                        200,
                        json!({"type": "file", "encoding": "base64", "path": ctx.param("path"), "size": text.len(), "content": base64(text.as_bytes())}),
                    ),
                    None => Reply::message(404, "Not Found"),
                }
            }
            ("GET", "/commits/{ref}") => match self.resolve(ctx.param("ref")) {
                Some(sha) => {
                    let c = self.commits[&sha].clone();
                    let new = &self.trees[&c.tree];
                    let empty = BTreeMap::new();
                    let old =
                        c.parents.first().and_then(|p| self.commits.get(p)).map_or(&empty, |p| &self.trees[&p.tree]);
                    let mut files = Vec::new();
                    for (path, blob) in new {
                        match old.get(path) {
                            None => files.push(json!({"filename": path, "status": "added"})),
                            Some(b) if b != blob && self.blobs[b] != self.blobs[blob] => {
                                files.push(json!({"filename": path, "status": "modified"}))
                            }
                            _ => {}
                        }
                    }
                    for path in old.keys().filter(|p| !new.contains_key(*p)) {
                        files.push(json!({"filename": path, "status": "removed"}));
                    }
                    let mut v = self.commit_json(&sha);
                    v["files"] = json!(files);
                    Reply::json(200, v)
                }
                None => Reply::message(422, &format!("No commit found for SHA: {}", ctx.param("ref"))),
            },
            ("POST", "/git/trees") => {
                let mut tree = match ctx.str_field("base_tree") {
                    Some(base) => match self
                        .trees
                        .get(base)
                        .or_else(|| self.commits.get(base).and_then(|c| self.trees.get(&c.tree)))
                    {
                        Some(t) => t.clone(),
                        None => {
                            return Reply::invalid(
                                "Tree",
                                "base_tree",
                                "invalid",
                                Some("base_tree is not a valid tree"),
                            );
                        }
                    },
                    None => BTreeMap::new(),
                };
                let entries = ctx.field("tree").and_then(Value::as_array).cloned().unwrap_or_default();
                for e in entries {
                    let path = e["path"].as_str().unwrap_or_default().to_string();
                    if path.is_empty() || path.starts_with('/') || path.ends_with('/') {
                        return Reply::message(422, "tree.path contains a malformed path component");
                    }
                    match (e.get("content").and_then(Value::as_str), e.get("sha")) {
                        (Some(content), None) => {
                            let blob = self.sha();
                            self.blobs.insert(blob.clone(), content.to_string());
                            tree.insert(path, blob);
                        }
                        (None, Some(Value::Null)) => {
                            tree.remove(&path);
                        }
                        (None, Some(Value::String(sha))) if self.blobs.contains_key(sha) => {
                            tree.insert(path, sha.clone());
                        }
                        (Some(_), Some(_)) => {
                            return Reply::message(422, "tree.sha and tree.content cannot both be given");
                        }
                        _ => return Reply::message(422, "Must supply a valid tree.sha or tree.content"),
                    }
                }
                let sha = self.sha();
                let listing: Vec<Value> =
                    tree.iter().map(|(p, b)| json!({"path": p, "mode": "100644", "type": "blob", "sha": b})).collect();
                self.trees.insert(sha.clone(), tree);
                Reply::json(201, json!({"sha": sha, "tree": listing, "truncated": false}))
            }
            ("POST", "/git/commits") => {
                let tree = ctx.str_field("tree").unwrap_or_default().to_string();
                if !self.trees.contains_key(&tree) {
                    return Reply::message(422, "Tree SHA does not exist");
                }
                let parents: Vec<String> = ctx
                    .field("parents")
                    .and_then(Value::as_array)
                    .map(|p| p.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                if parents.iter().any(|p| !self.commits.contains_key(p)) {
                    return Reply::message(422, "Parent SHA does not exist or is not a commit object");
                }
                let sha = self.sha();
                let date = self.now();
                let message = ctx.str_field("message").unwrap_or_default().to_string();
                // GitHub signs commits made through the API: verified, committed by the token's identity.
                self.commits.insert(
                    sha.clone(),
                    Commit { tree, parents, message, author: me.clone(), committer: me, verified: true, date },
                );
                Reply::json(
                    201,
                    self.commit_json(&sha)["commit"].clone().as_object().map_or(json!({}), |c| {
                        let mut c = Value::Object(c.clone());
                        c["sha"] = json!(sha);
                        c
                    }),
                )
            }
            ("POST", "/git/refs") => {
                let name = ctx.str_field("ref").unwrap_or_default().to_string();
                let sha = ctx.str_field("sha").unwrap_or_default().to_string();
                if !name.starts_with("refs/") || name.matches('/').count() < 2 {
                    return Reply::message(
                        422,
                        "Reference name must start with 'refs/' and have at least two slashes.",
                    );
                }
                if self.refs.contains_key(&name) {
                    return Reply::message(422, "Reference already exists");
                }
                if !self.commits.contains_key(&sha) {
                    return Reply::message(422, "Object does not exist");
                }
                self.refs.insert(name.clone(), sha.clone());
                Reply::json(201, json!({"ref": name, "object": {"sha": sha, "type": "commit"}}))
            }
            ("GET", "/git/ref/{ref}") => {
                let name = format!("refs/{}", ctx.param("ref"));
                match self.refs.get(&name) {
                    Some(sha) => Reply::json(200, json!({"ref": name, "object": {"sha": sha, "type": "commit"}})),
                    None => Reply::message(404, "Not Found"),
                }
            }
            ("PATCH", "/git/refs/{ref}") => {
                let name = format!("refs/{}", ctx.param("ref"));
                let sha = ctx.str_field("sha").unwrap_or_default().to_string();
                let force = ctx.field("force").and_then(Value::as_bool).unwrap_or(false);
                let Some(old) = self.refs.get(&name).cloned() else {
                    return Reply::message(422, "Reference does not exist");
                };
                if !self.commits.contains_key(&sha) {
                    return Reply::message(422, "Object does not exist");
                }
                if !force && !self.ancestors(&sha).contains(&old) {
                    return Reply::message(422, "Update is not a fast forward");
                }
                self.refs.insert(name.clone(), sha.clone());
                Reply::json(200, json!({"ref": name, "object": {"sha": sha, "type": "commit"}}))
            }
            ("DELETE", "/git/refs/{ref}") => {
                // GitHub answers 422 `Reference does not exist` for a ref that is not there.
                let name = format!("refs/{}", ctx.param("ref"));
                if self.refs.remove(&name).is_none() {
                    return Reply::message(422, "Reference does not exist");
                }
                // Deleting a PR's head branch closes the PR (GitHub does the same).
                if let Some(branch) = name.strip_prefix("refs/heads/") {
                    let full_name = self.full_name();
                    for p in self.pulls.iter_mut() {
                        if p.state == "open" && p.head_ref == branch && p.head_repo == full_name {
                            p.state = "closed".into();
                        }
                    }
                }
                Reply { status: 204, body: ReplyBody::Empty, headers: Vec::new() }
            }
            ("GET", "/pulls") => {
                let state = ctx.query.get("state").map_or("open", String::as_str);
                let head = ctx.query.get("head").cloned();
                let base = ctx.query.get("base").cloned();
                let list: Vec<Value> = self
                    .pulls
                    .iter()
                    .filter(|p| state == "all" || p.state == state)
                    .filter(|p| {
                        head.as_ref().is_none_or(|h| {
                            *h == format!("{}:{}", p.head_repo.split('/').next().unwrap_or_default(), p.head_ref)
                        })
                    })
                    .filter(|p| base.as_ref().is_none_or(|b| *b == p.base_ref))
                    .rev()
                    .map(|p| self.pull_json(p, ctx.server_url, ctx.api_url))
                    .collect();
                paginate(ctx, list)
            }
            ("POST", "/pulls") => self.create_pull(ctx, &me),
            ("GET", "/pulls/{pull_number}") => {
                match self.pulls.iter().find(|p| Some(p.number) == ctx.number("pull_number")) {
                    Some(p) => Reply::json(200, self.pull_json(p, ctx.server_url, ctx.api_url)),
                    None => Reply::message(404, "Not Found"),
                }
            }
            ("PATCH", "/pulls/{pull_number}") => {
                let Some(i) = self.pulls.iter().position(|p| Some(p.number) == ctx.number("pull_number")) else {
                    return Reply::message(404, "Not Found");
                };
                if let Some(state) = ctx.str_field("state") {
                    let p = &self.pulls[i];
                    if state == "open" && p.state == "closed" && p.merged {
                        return Reply::message(422, "Cannot reopen a merged pull request");
                    }
                    self.pulls[i].state = state.to_string();
                }
                if let Some(title) = ctx.str_field("title") {
                    self.pulls[i].title = title.to_string();
                }
                if let Some(body) = ctx.str_field("body") {
                    self.pulls[i].body = body.to_string();
                }
                if let Some(base) = ctx.str_field("base") {
                    self.pulls[i].base_ref = base.to_string();
                }
                let p = self.pulls[i].clone();
                Reply::json(200, self.pull_json(&p, ctx.server_url, ctx.api_url))
            }
            ("GET", "/pulls/{pull_number}/commits") => {
                let Some(p) = self.pulls.iter().find(|p| Some(p.number) == ctx.number("pull_number")) else {
                    return Reply::message(404, "Not Found");
                };
                let list = self.pull_commits(p).iter().map(|s| self.commit_json(s)).collect();
                paginate(ctx, list)
            }
            ("GET", "/pulls/{pull_number}/reviews") => {
                let n = ctx.number("pull_number");
                if !self.pulls.iter().any(|p| Some(p.number) == n) {
                    return Reply::message(404, "Not Found");
                }
                let list = self
                    .reviews
                    .iter()
                    .filter(|r| Some(r.pull) == n)
                    .map(|r| {
                        json!({
                            "id": r.id, "node_id": format!("PRR_{}", r.id), "user": self.user(&r.user), "body": "",
                            "state": r.state, "commit_id": r.commit_id, "submitted_at": r.submitted_at,
                            "author_association": "MEMBER", "html_url": "", "pull_request_url": "",
                            "_links": {"html": {"href": ""}, "pull_request": {"href": ""}},
                        })
                    })
                    .collect();
                paginate(ctx, list)
            }
            ("GET", "/pulls/{pull_number}/files") => {
                let Some(p) = self.pulls.iter().find(|p| Some(p.number) == ctx.number("pull_number")) else {
                    return Reply::message(404, "Not Found");
                };
                match self.pull_files(p) {
                    Some(files) => paginate(ctx, files),
                    None => Reply::message(404, "Not Found"),
                }
            }
            ("POST", "/pulls/{pull_number}/requested_reviewers") => {
                let Some(i) = self.pulls.iter().position(|p| Some(p.number) == ctx.number("pull_number")) else {
                    return Reply::message(404, "Not Found");
                };
                let reviewers: Vec<String> = ctx
                    .field("reviewers")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                if reviewers.iter().any(|r| !self.roles.contains_key(r)) {
                    return Reply::message(
                        422,
                        &format!(
                            "Reviews may only be requested from collaborators. One or more of the users or teams you specified is not a collaborator of the {} repository.",
                            self.full_name()
                        ),
                    );
                }
                for r in reviewers {
                    if !self.pulls[i].requested_reviewers.contains(&r) {
                        self.pulls[i].requested_reviewers.push(r);
                    }
                }
                Reply::json(201, self.pull_json(&self.pulls[i].clone(), ctx.server_url, ctx.api_url))
            }
            ("POST", "/issues/{issue_number}/labels") => {
                let Some(n) = ctx.number("issue_number").filter(|n| self.pulls.iter().any(|p| p.number == *n)) else {
                    return Reply::message(404, "Not Found");
                };
                let labels: Vec<String> = ctx
                    .field("labels")
                    .and_then(Value::as_array)
                    .map(|l| {
                        l.iter()
                            .filter_map(|x| x.as_str().or_else(|| x.get("name")?.as_str()).map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                for l in labels {
                    self.add_label(n, &l, &me);
                }
                Reply::json(200, self.labels_json(n))
            }
            ("DELETE", "/issues/{issue_number}/labels/{name}") => {
                let Some(n) = ctx.number("issue_number").filter(|n| self.pulls.iter().any(|p| p.number == *n)) else {
                    return Reply::message(404, "Not Found");
                };
                if self.remove_label(n, ctx.param("name"), &me) {
                    Reply::json(200, self.labels_json(n))
                } else {
                    Reply::message(404, "Label does not exist")
                }
            }
            ("GET", "/issues/{issue_number}/comments") => {
                let n = ctx.number("issue_number");
                if !self.pulls.iter().any(|p| Some(p.number) == n) {
                    return Reply::message(404, "Not Found");
                }
                let list = self
                    .comments
                    .iter()
                    .filter(|c| Some(c.issue) == n)
                    .map(|c| self.comment_json(c, ctx.server_url))
                    .collect();
                paginate(ctx, list)
            }
            ("POST", "/issues/{issue_number}/comments") => {
                let Some(n) = ctx.number("issue_number").filter(|n| self.pulls.iter().any(|p| p.number == *n)) else {
                    return Reply::message(404, "Not Found");
                };
                let body = ctx.str_field("body").unwrap_or_default().to_string();
                if let Some(r) = too_long(&body) {
                    return r;
                }
                let kind = self.identity.kind().to_string();
                let id = self.add_comment(n, &me, &kind, &body);
                let c = self.comments.iter().find(|c| c.id == id).cloned().expect("just added");
                Reply::json(201, self.comment_json(&c, ctx.server_url))
            }
            ("GET", "/issues/comments/{comment_id}") => {
                match self.comments.iter().find(|c| Some(c.id) == ctx.number("comment_id")) {
                    Some(c) => Reply::json(200, self.comment_json(c, ctx.server_url)),
                    None => Reply::message(404, "Not Found"),
                }
            }
            ("PATCH", "/issues/comments/{comment_id}") => {
                let body = ctx.str_field("body").unwrap_or_default().to_string();
                if let Some(r) = too_long(&body) {
                    return r;
                }
                let now = self.now();
                match self.comments.iter_mut().find(|c| Some(c.id) == ctx.number("comment_id")) {
                    Some(c) => {
                        c.body = body;
                        c.updated_at = now;
                        let c = c.clone();
                        Reply::json(200, self.comment_json(&c, ctx.server_url))
                    }
                    None => Reply::message(404, "Not Found"),
                }
            }
            ("GET", "/issues/{issue_number}/events") => {
                let n = ctx.number("issue_number");
                let list = self
                    .events
                    .iter()
                    .filter(|e| Some(e.issue) == n)
                    .map(|e| json!({"id": e.id, "event": e.event, "actor": self.user(&e.actor), "label": {"name": e.label, "color": "ededed"}, "created_at": e.created_at, "commit_id": null}))
                    .collect();
                paginate(ctx, list)
            }
            ("GET", "/collaborators/{username}/permission") => {
                let user = ctx.param("username");
                let role = self.roles.get(user).cloned().unwrap_or_else(|| "none".into());
                let legacy = match role.as_str() {
                    "admin" => "admin",
                    "maintain" | "write" => "write",
                    "triage" | "read" => "read",
                    "none" => "none",
                    _ => "write",
                };
                Reply::json(200, json!({"permission": legacy, "role_name": role, "user": self.user(user)}))
            }
            ("GET", "/commits/{ref}/statuses") => {
                let Some(sha) = self.resolve(ctx.param("ref")) else {
                    return Reply::message(404, "Not Found");
                };
                // Newest first, as GitHub lists them.
                let list = self.statuses.iter().rev().filter(|(s, _)| *s == sha).map(|(_, v)| v.clone()).collect();
                paginate(ctx, list)
            }
            ("POST", "/statuses/{sha}") => {
                let sha = ctx.param("sha").to_string();
                if !self.commits.contains_key(&sha) {
                    return Reply::message(422, &format!("No commit found for SHA: {sha}"));
                }
                let mut status = ctx.body.cloned().unwrap_or_else(|| json!({}));
                status["id"] = json!(self.id());
                status["creator"] = self.user(&me);
                status["created_at"] = json!(self.now());
                self.statuses.push((sha, status.clone()));
                Reply::json(201, status)
            }
            _ => Reply::message(404, "Not Found"),
        }
    }

    fn create_pull(&mut self, ctx: &Ctx, me: &str) -> Reply {
        let head = ctx.str_field("head").unwrap_or_default();
        let head_ref = head.split_once(':').map_or(head, |(_, r)| r).to_string();
        let base = ctx.str_field("base").unwrap_or_default().to_string();
        let draft = ctx.field("draft").and_then(Value::as_bool).unwrap_or(false);
        if self.resolve(&format!("heads/{head_ref}")).is_none() {
            return Reply::invalid("PullRequest", "head", "invalid", None);
        }
        let Some(base_sha) = self.resolve(&format!("heads/{base}")) else {
            return Reply::invalid("PullRequest", "base", "invalid", None);
        };
        if self.pulls.iter().any(|p| p.state == "open" && p.head_ref == head_ref && p.base_ref == base) {
            return Reply::invalid(
                "PullRequest",
                "",
                "custom",
                Some(&format!("A pull request already exists for {}:{head_ref}.", self.owner)),
            );
        }
        if self.resolve(&format!("heads/{head_ref}")) == Some(base_sha) {
            return Reply::invalid(
                "PullRequest",
                "",
                "custom",
                Some(&format!("No commits between {base} and {head_ref}")),
            );
        }
        if draft && self.drafts_refused {
            return Reply::invalid(
                "PullRequest",
                "draft",
                "custom",
                Some("Draft pull requests are not supported in this repository."),
            );
        }
        let number = self.id();
        let pull = Pull {
            number,
            state: "open".into(),
            merged: false,
            draft,
            title: ctx.str_field("title").unwrap_or_default().into(),
            body: ctx.str_field("body").unwrap_or_default().into(),
            head_ref,
            head_repo: self.full_name(),
            head_sha: None,
            base_ref: base,
            user: me.into(),
            labels: Vec::new(),
            requested_reviewers: Vec::new(),
            counts_override: (None, None),
        };
        let json = self.pull_json(&pull, ctx.server_url, ctx.api_url);
        self.pulls.push(pull);
        Reply::json(201, json)
    }
}

/// A stable numeric user id for a login (github-actions[bot] has its real one).
pub fn user_id(login: &str) -> u64 {
    if login == "github-actions[bot]" {
        return 41_898_282;
    }
    // FNV-1a, folded to a positive id that looks like GitHub's.
    let hash = login.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    1_000_000 + hash % 100_000_000
}

fn too_long(body: &str) -> Option<Reply> {
    (body.chars().count() > 65_536).then(|| {
        Reply::invalid("IssueComment", "data", "unprocessable", Some("Body is too long (maximum is 65536 characters)"))
    })
}

/// GitHub-style pagination (`per_page` default 30, max 100; `Link` with next/last).
fn paginate(ctx: &Ctx, list: Vec<Value>) -> Reply {
    let per_page = ctx.query.get("per_page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(30).clamp(1, 100);
    let page = ctx.query.get("page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(1).max(1);
    let pages = list.len().div_ceil(per_page).max(1);
    let items: Vec<Value> = list.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    let mut reply = Reply::json(200, Value::Array(items));
    if pages > 1 {
        let link = |n: usize| {
            let mut q: BTreeMap<&str, String> = ctx.query.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            q.insert("page", n.to_string());
            let query: Vec<String> = q.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
            format!("<{}{}?{}>", ctx.api_url, ctx.path, query.join("&"))
        };
        let mut parts = Vec::new();
        if page < pages {
            parts.push(format!("{}; rel=\"next\"", link(page + 1)));
            parts.push(format!("{}; rel=\"last\"", link(pages)));
        }
        if page > 1 {
            parts.push(format!("{}; rel=\"first\"", link(1)));
            parts.push(format!("{}; rel=\"prev\"", link(page - 1)));
        }
        reply.headers.push(("Link".into(), parts.join(", ")));
    }
    reply
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
