//! A stateful fake of the GitHub REST API for infra-scale's tests.
//!
//! It keeps a repository (default branch, git objects, refs), pull requests with labels,
//! requested reviewers and paginated comments, issue events, collaborator roles and commit
//! statuses, and answers like GitHub (status codes, `Validation Failed` bodies, `Link` headers).
//!
//! Every request is checked: it must authenticate with the fake's token (else 401), carry
//! `X-GitHub-Api-Version`, a User-Agent and a GitHub `Accept`, name an operation present in the
//! official OpenAPI subset (else 404), and its body must satisfy that operation's `requestBody`
//! schema (else 422). Problems are recorded in [`FakeGitHub::violations`] so a test can insist
//! there were none. Faults can be injected ([`Fault`]), and every request is logged.

pub mod schema;
mod state;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

pub use state::Identity;
use state::{Ctx, Pull, Reply, ReplyBody, State};

/// The token the fake accepts; tests assert it never appears in output.
pub const TOKEN: &str = "ghp_FakeGitHubToken0123456789abcdefABCDEF";

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    pub method: String,
    /// Path below the API prefix, without the query.
    pub path: String,
    pub query: String,
    /// The routed operation template, e.g. `/repos/{owner}/{repo}/pulls`.
    pub operation: Option<String>,
    pub body: Option<Value>,
    pub status: u16,
    /// The injected fault that answered, if any.
    pub fault: Option<String>,
}

impl LoggedRequest {
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }

    /// `METHOD path`, for assertion messages.
    pub fn line(&self) -> String {
        format!(
            "{} {}{} -> {}",
            self.method,
            self.path,
            if self.query.is_empty() { String::new() } else { format!("?{}", self.query) },
            self.status
        )
    }
}

/// What an injected fault does.
#[derive(Debug, Clone)]
pub enum FaultKind {
    /// Answer this status (with a GitHub-style message) without doing anything.
    Status(u16),
    /// Do the request, then answer 500 anyway (the effect happened, the answer was lost).
    StatusAfterEffect(u16),
    /// 403 secondary rate limit with `retry-after: N`.
    SecondaryRateLimit { retry_after: u64 },
    /// 403 primary rate limit: `x-ratelimit-remaining: 0`, reset in N seconds.
    PrimaryRateLimit { reset_in: u64 },
    /// 429 with `retry-after: N`.
    TooManyRequests { retry_after: u64 },
    /// 403 with this message, as for a token without the needed permission.
    Forbidden(String),
    /// Wait this long before answering (normally).
    Delay(Duration),
    /// Answer this status and JSON body without doing anything (e.g. a stale empty list).
    Answer(u16, Value),
}

/// A fault for the next `times` requests whose method matches and whose path contains `path_contains`.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: String,
    pub path_contains: String,
    pub kind: FaultKind,
    pub times: u32,
}

impl Fault {
    pub fn new(method: &str, path_contains: &str, kind: FaultKind) -> Fault {
        Fault { method: method.into(), path_contains: path_contains.into(), kind, times: 1 }
    }

    pub fn times(mut self, n: u32) -> Fault {
        self.times = n;
        self
    }
}

struct Shared {
    state: Mutex<State>,
    log: Mutex<Vec<LoggedRequest>>,
    faults: Mutex<Vec<Fault>>,
    violations: Mutex<Vec<String>>,
    prefix: String,
    api_url: String,
    server_url: String,
    shutdown: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Options for [`FakeGitHub::start_with`].
#[derive(Debug, Clone)]
pub struct Options {
    /// API path prefix: `""` like api.github.com, `"/api/v3"` like GitHub Enterprise Server.
    pub prefix: String,
    pub owner: String,
    pub repo: String,
    pub default_branch: String,
    pub identity: Identity,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            prefix: String::new(),
            owner: "octo-org".into(),
            repo: "fleet".into(),
            default_branch: "main".into(),
            identity: Identity::User("infra-bot".into()),
        }
    }
}

/// A running fake. Dropping it stops the server.
pub struct FakeGitHub {
    shared: Arc<Shared>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    handlers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl FakeGitHub {
    /// Starts with the default options (repository `octo-org/fleet`, default branch `main`,
    /// token of user `infra-bot`).
    pub fn start() -> FakeGitHub {
        FakeGitHub::start_with(Options::default())
    }

    /// Starts on `127.0.0.1:0` in a background thread.
    ///
    /// # Panics
    /// When no local port can be bound.
    pub fn start_with(options: Options) -> FakeGitHub {
        let server =
            Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1:0 for the fake GitHub API"));
        let addr = server.server_addr().to_ip().expect("the fake GitHub API listens on an IP address");
        let server_url = format!("http://{addr}");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(&options.owner, &options.repo, &options.default_branch, options.identity)),
            log: Mutex::default(),
            faults: Mutex::default(),
            violations: Mutex::default(),
            api_url: format!("{server_url}{}", options.prefix),
            prefix: options.prefix,
            server_url,
            shutdown: AtomicBool::new(false),
        });
        let handlers: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let thread = {
            let (shared, server, handlers) = (shared.clone(), server.clone(), handlers.clone());
            std::thread::Builder::new()
                .name("fake-github".into())
                .spawn(move || {
                    while !shared.shutdown.load(Ordering::SeqCst) {
                        match server.recv_timeout(Duration::from_millis(25)) {
                            Ok(Some(request)) => {
                                let shared = shared.clone();
                                let handle = std::thread::spawn(move || serve(&shared, request));
                                let mut hs = lock(&handlers);
                                hs.retain(|h| !h.is_finished());
                                hs.push(handle);
                            }
                            Ok(None) => {}
                            Err(_) => break,
                        }
                    }
                })
                .expect("spawn the fake GitHub thread")
        };
        FakeGitHub { shared, server, thread: Some(thread), handlers }
    }

    /// The API base URL (`http://127.0.0.1:<port>` plus the prefix).
    pub fn api_url(&self) -> &str {
        &self.shared.api_url
    }

    /// The web base URL used in `html_url`s.
    pub fn server_url(&self) -> &str {
        &self.shared.server_url
    }

    pub fn token(&self) -> &str {
        TOKEN
    }

    /// `owner/name`.
    pub fn repository(&self) -> String {
        lock(&self.shared.state).full_name()
    }

    /// The variables a client needs: `GITHUB_API_URL`, `GITHUB_SERVER_URL`, `GITHUB_REPOSITORY`, `GITHUB_TOKEN`.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("GITHUB_API_URL".into(), self.api_url().into()),
            ("GITHUB_SERVER_URL".into(), self.server_url().into()),
            ("GITHUB_REPOSITORY".into(), self.repository()),
            ("GITHUB_TOKEN".into(), TOKEN.into()),
        ]
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.shared.log).clone()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    /// (reads, writes) in the log.
    pub fn counts(&self) -> (usize, usize) {
        let log = lock(&self.shared.log);
        let writes = log.iter().filter(|r| r.is_write()).count();
        (log.len() - writes, writes)
    }

    /// Contract problems seen: requests not in the OpenAPI subset, bodies that fail its schema,
    /// missing headers.
    pub fn violations(&self) -> Vec<String> {
        lock(&self.shared.violations).clone()
    }

    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    /// Makes `POST /pulls` with `draft: true` fail like a repository without draft support.
    pub fn refuse_drafts(&self, refuse: bool) {
        lock(&self.shared.state).drafts_refused = refuse;
    }

    pub fn set_identity(&self, identity: Identity) {
        lock(&self.shared.state).identity = identity;
    }

    /// Sets a collaborator's role (`admin`, `maintain`, `write`, `triage`, `read` or a custom name).
    pub fn set_role(&self, login: &str, role: &str) {
        lock(&self.shared.state).roles.insert(login.into(), role.into());
    }

    /// The text of a file at a branch or commit.
    pub fn file(&self, reference: &str, path: &str) -> Option<String> {
        lock(&self.shared.state).file_at(reference, path)
    }

    /// The commit a branch points at.
    pub fn branch_sha(&self, branch: &str) -> Option<String> {
        lock(&self.shared.state).refs.get(&format!("refs/heads/{branch}")).cloned()
    }

    /// A commit's parents, author login and message.
    pub fn commit(&self, sha: &str) -> Option<(Vec<String>, String, String)> {
        lock(&self.shared.state).commits.get(sha).map(|c| (c.parents.clone(), c.author.clone(), c.message.clone()))
    }

    /// Paths in a commit's tree.
    pub fn tree_paths(&self, sha: &str) -> Vec<String> {
        let s = lock(&self.shared.state);
        s.commits.get(sha).and_then(|c| s.trees.get(&c.tree)).map(|t| t.keys().cloned().collect()).unwrap_or_default()
    }

    /// A pull request as the API shows it.
    pub fn pull(&self, number: u64) -> Option<Value> {
        let s = lock(&self.shared.state);
        s.pulls
            .iter()
            .find(|p| p.number == number)
            .map(|p| s.pull_json(p, &self.shared.server_url, &self.shared.api_url))
    }

    /// Every pull request (any state), oldest first.
    pub fn pulls(&self) -> Vec<Value> {
        let s = lock(&self.shared.state);
        s.pulls.iter().map(|p| s.pull_json(p, &self.shared.server_url, &self.shared.api_url)).collect()
    }

    pub fn labels(&self, number: u64) -> Vec<String> {
        lock(&self.shared.state).pulls.iter().find(|p| p.number == number).map(|p| p.labels.clone()).unwrap_or_default()
    }

    /// Comments of a PR: (id, author login, body), oldest first.
    pub fn comments(&self, number: u64) -> Vec<(u64, String, String)> {
        lock(&self.shared.state)
            .comments
            .iter()
            .filter(|c| c.issue == number)
            .map(|c| (c.id, c.user.clone(), c.body.clone()))
            .collect()
    }

    /// Commit statuses set on a SHA.
    pub fn statuses(&self, sha: &str) -> Vec<Value> {
        lock(&self.shared.state).statuses.iter().filter(|(s, _)| s == sha).map(|(_, v)| v.clone()).collect()
    }

    /// Adds a label as `actor` (recording a `labeled` event), as a person would in the UI.
    pub fn add_label_as(&self, number: u64, label: &str, actor: &str) {
        lock(&self.shared.state).add_label(number, label, actor);
    }

    pub fn remove_label_as(&self, number: u64, label: &str, actor: &str) {
        lock(&self.shared.state).remove_label(number, label, actor);
    }

    /// Posts a comment as someone else.
    pub fn comment_as(&self, number: u64, login: &str, body: &str) -> u64 {
        let kind = if login.ends_with("[bot]") { "Bot" } else { "User" };
        lock(&self.shared.state).add_comment(number, login, kind, body)
    }

    /// Pushes a commit by `author` on top of `branch` changing `files` (empty content deletes).
    /// Creates the branch from the default branch when missing.
    pub fn push_commit_as(&self, branch: &str, author: &str, files: &[(&str, &str)]) -> String {
        let mut s = lock(&self.shared.state);
        let name = format!("refs/heads/{branch}");
        let parent = s.refs.get(&name).cloned().or_else(|| {
            let default = format!("refs/heads/{}", s.default_branch);
            s.refs.get(&default).cloned()
        });
        let sha = s.commit_files(parent.as_deref(), author, &format!("edit by {author}"), files);
        s.refs.insert(name, sha.clone());
        sha
    }

    /// Like [`FakeGitHub::push_commit_as`], but the commit is verified and committed by `login`,
    /// as when that identity creates it through the API (e.g. a workflow on another branch
    /// using the workflow token).
    pub fn push_verified_commit_as(&self, branch: &str, login: &str, files: &[(&str, &str)]) -> String {
        let sha = self.push_commit_as(branch, login, files);
        if let Some(c) = lock(&self.shared.state).commits.get_mut(&sha) {
            c.verified = true;
            c.committer = login.into();
        }
        sha
    }

    /// Submits a pull-request review as `user` (`APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`) on
    /// `commit_id` (the current head when `None`); returns the review id.
    pub fn review_as(&self, number: u64, user: &str, state: &str, commit_id: Option<&str>) -> u64 {
        let mut s = lock(&self.shared.state);
        let head = s.pulls.iter().find(|p| p.number == number).map(|p| s.pull_head_sha(p)).unwrap_or_default();
        let commit = commit_id.map_or(head, str::to_string);
        s.add_review(number, user, state, &commit)
    }

    /// Dismisses a review, as a maintainer or branch protection does: its state becomes `DISMISSED`.
    pub fn dismiss_review(&self, id: u64) {
        if let Some(r) = lock(&self.shared.state).reviews.iter_mut().find(|r| r.id == id) {
            r.state = "DISMISSED".into();
        }
    }

    /// Makes the PR object report these `commits` / `changed_files` counts (a list that then
    /// reads shorter than the count, as when entries are hidden).
    pub fn set_pull_counts(&self, number: u64, commits: Option<u64>, changed_files: Option<u64>) {
        self.edit_pull(number, |p| p.counts_override = (commits, changed_files));
    }

    /// Sets a commit status directly (as any writer with `statuses: write` can).
    pub fn set_status_as(&self, sha: &str, login: &str, state: &str, context: &str) {
        let mut s = lock(&self.shared.state);
        let id = s.reviews.len() as u64 + s.statuses.len() as u64 + 1;
        let created_at = s.now();
        let status = serde_json::json!({"id": id, "state": state, "context": context, "description": "", "creator": {"login": login, "id": state::user_id(login)}, "created_at": created_at});
        s.statuses.push((sha.to_string(), status));
    }

    /// A login's numeric user id, as the fake reports it.
    pub fn user_id(login: &str) -> u64 {
        state::user_id(login)
    }

    /// Sets a PR's state (`open`/`closed`), `merged` when `closed` and `merged`.
    pub fn set_pull_state(&self, number: u64, state: &str, merged: bool) {
        self.edit_pull(number, |p| {
            p.state = state.into();
            p.merged = merged;
        });
    }

    /// Makes a PR look like it comes from a fork.
    pub fn set_pull_head_repo(&self, number: u64, full_name: &str) {
        let mut s = lock(&self.shared.state);
        let head = s.pulls.iter().find(|p| p.number == number).map(|p| s.pull_head_sha(p));
        if let Some(p) = s.pulls.iter_mut().find(|p| p.number == number) {
            p.head_repo = full_name.into();
            p.head_sha = head;
        }
    }

    pub fn set_pull_base(&self, number: u64, base: &str) {
        self.edit_pull(number, |p| p.base_ref = base.into());
    }

    /// Opens a PR directly (a person's, from `branch` to the default branch).
    pub fn open_pull_as(&self, branch: &str, author: &str) -> u64 {
        let mut s = lock(&self.shared.state);
        let number = s.pulls.iter().map(|p| p.number).max().unwrap_or(0) + 100;
        let full_name = s.full_name();
        let base_ref = s.default_branch.clone();
        s.pulls.push(Pull {
            number,
            state: "open".into(),
            merged: false,
            draft: false,
            title: format!("{branch} by {author}"),
            body: String::new(),
            head_ref: branch.into(),
            head_repo: full_name,
            head_sha: None,
            base_ref,
            user: author.into(),
            labels: Vec::new(),
            requested_reviewers: Vec::new(),
            counts_override: (None, None),
        });
        number
    }

    fn edit_pull(&self, number: u64, f: impl FnOnce(&mut Pull)) {
        if let Some(p) = lock(&self.shared.state).pulls.iter_mut().find(|p| p.number == number) {
            f(p);
        }
    }
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for h in lock(&self.handlers).drain(..) {
            let _ = h.join();
        }
    }
}

fn header(request: &tiny_http::Request, name: &str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str().to_string())
}

fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (schema::percent_decode(&k.replace('+', " ")), schema::percent_decode(&v.replace('+', " ")))
        })
        .collect()
}

fn serve(shared: &Shared, mut request: tiny_http::Request) {
    let method = request.method().as_str().to_uppercase();
    let url = request.url().to_string();
    let (full_path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let mut raw = Vec::new();
    let _ = request.as_reader().read_to_end(&mut raw);
    let body: Option<Value> = if raw.is_empty() { None } else { serde_json::from_slice(&raw).ok() };
    let path = full_path.strip_prefix(&shared.prefix).unwrap_or("").to_string();
    let route = if path.starts_with('/') { schema::spec().route(&method, &path) } else { None };
    let mut entry = LoggedRequest {
        method: method.clone(),
        path: if path.is_empty() { full_path.to_string() } else { path.clone() },
        query: query.to_string(),
        operation: route.as_ref().map(|(t, _)| t.clone()),
        body: body.clone(),
        status: 0,
        fault: None,
    };
    let violation = |text: String| lock(&shared.violations).push(format!("{method} {full_path}: {text}"));

    let reply = (|| {
        // Authentication and headers, as GitHub checks them.
        let auth = header(&request, "authorization").unwrap_or_default();
        if auth != format!("Bearer {TOKEN}") && auth != format!("token {TOKEN}") {
            return if auth.is_empty() {
                Reply::message(401, "Requires authentication")
            } else {
                Reply::message(401, "Bad credentials")
            };
        }
        if header(&request, "user-agent").is_none_or(|ua| ua.is_empty()) {
            violation("no User-Agent header".into());
            return Reply::message(
                403,
                "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
            );
        }
        match header(&request, "x-github-api-version").as_deref() {
            Some("2022-11-28") => {}
            Some(other) => return Reply::message(400, &format!("API version '{other}' is not supported.")),
            None => violation("no X-GitHub-Api-Version header".into()),
        }
        let accept = header(&request, "accept").unwrap_or_default();
        if !accept.contains("application/vnd.github") {
            violation(format!("Accept `{accept}` is not a GitHub media type"));
        }
        let Some((template, params)) = route.clone() else {
            violation("no such operation in the OpenAPI subset".into());
            return Reply::message(404, "Not Found");
        };
        // The request body against GitHub's schema.
        if schema::spec().has_body(&method, &template) {
            if !raw.is_empty() && !header(&request, "content-type").unwrap_or_default().starts_with("application/json")
            {
                violation("a body without Content-Type: application/json".into());
            }
            let value = match (&body, raw.is_empty()) {
                (Some(v), _) => v.clone(),
                (None, true) => Value::Null,
                (None, false) => {
                    violation("the body is not JSON".into());
                    return Reply::message(400, "Problems parsing JSON");
                }
            };
            if let Err(errors) = schema::spec().validate_body(&method, &template, &value) {
                violation(format!("request body violates the OpenAPI schema: {}", errors.join("; ")));
                return Reply::message(422, &format!("Invalid request.\n\n{}", errors.join("\n")));
            }
        } else if !raw.is_empty() {
            violation("a body on an operation that takes none".into());
        }

        // Injected faults.
        let fault = {
            let mut faults = lock(&shared.faults);
            let i = faults.iter().position(|f| f.times > 0 && f.method == method && path.contains(&f.path_contains));
            i.map(|i| {
                faults[i].times -= 1;
                faults[i].kind.clone()
            })
        };
        let mut after_effect = None;
        if let Some(kind) = &fault {
            entry.fault = Some(format!("{kind:?}"));
            match kind {
                FaultKind::Status(code) => return Reply::message(*code, "Server Error"),
                FaultKind::StatusAfterEffect(code) => after_effect = Some(*code),
                FaultKind::SecondaryRateLimit { retry_after } => {
                    let mut r = Reply::message(
                        403,
                        "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                    );
                    r.headers.push(("retry-after".into(), retry_after.to_string()));
                    return r;
                }
                FaultKind::PrimaryRateLimit { reset_in } => {
                    let now =
                        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                    let mut r = Reply::message(403, "API rate limit exceeded for installation.");
                    r.headers.push(("x-ratelimit-remaining".into(), "0".into()));
                    r.headers.push(("x-ratelimit-reset".into(), (now + reset_in).to_string()));
                    return r;
                }
                FaultKind::TooManyRequests { retry_after } => {
                    let mut r = Reply::message(429, "Too Many Requests");
                    r.headers.push(("retry-after".into(), retry_after.to_string()));
                    return r;
                }
                FaultKind::Forbidden(message) => return Reply::message(403, message),
                FaultKind::Answer(code, body) => return Reply::json(*code, body.clone()),
                FaultKind::Delay(d) => std::thread::sleep(*d),
            }
        }
        let ctx = Ctx {
            api_url: &shared.api_url,
            server_url: &shared.server_url,
            path: &path,
            query: &parse_query(query),
            accept: &accept,
            params: &params,
            body: body.as_ref(),
        };
        let reply = lock(&shared.state).handle(&method, &template, &ctx);
        match after_effect {
            Some(code) => Reply::message(code, "Server Error"),
            None => reply,
        }
    })();

    entry.status = reply.status;
    lock(&shared.log).push(entry);
    let (data, content_type) = match reply.body {
        ReplyBody::Json(v) => (v.to_string().into_bytes(), "application/json; charset=utf-8"),
        ReplyBody::Text(t) => (t.into_bytes(), "application/vnd.github.raw+json; charset=utf-8"),
        ReplyBody::Empty => (Vec::new(), ""),
    };
    let mut response = tiny_http::Response::from_data(data).with_status_code(reply.status);
    let mut headers = reply.headers;
    if !content_type.is_empty() {
        headers.push(("Content-Type".into(), content_type.into()));
    }
    headers.push(("X-GitHub-Media-Type".into(), "github.v3; format=json".into()));
    for (k, v) in headers {
        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            response.add_header(h);
        }
    }
    let _ = request.respond(response);
}
