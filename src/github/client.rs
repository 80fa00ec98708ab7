//! A small, careful GitHub REST client: one request at a time, GitHub's recommended headers,
//! bounded retries, and errors that say what failed and what to do.
//!
//! Retry rules (GitHub docs, "Best practices for using the REST API"):
//! - 403/429 rate limits: wait `retry-after`, else until `x-ratelimit-reset` when
//!   `x-ratelimit-remaining` is 0, else a minute; never longer than the configured bound.
//! - 5xx and network errors: retried with exponential backoff only for requests that are safe to
//!   repeat. A POST that creates something is not repeated blindly: the caller's check looks
//!   whether it took effect first ([`Client::send_checked`]).

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// A GitHub token. `Debug` and `Display` print `***`; only the client reads the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token; `None` when it is empty.
    pub fn new(value: &str) -> Option<Token> {
        (!value.is_empty()).then(|| Token(value.to_string()))
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// How to reach the API.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL without a trailing slash (`https://api.github.com`, `https://HOST/api/v3`).
    pub api_url: String,
    pub token: Token,
    pub api_version: String,
    /// Longest single wait before a retry.
    pub max_retry_wait: Duration,
    /// Timeout of one HTTP exchange.
    pub timeout: Duration,
    /// Attempts per request, the first included.
    pub attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// The token permission an operation needs, named in 403 errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    ContentsRead,
    ContentsWrite,
    PullRequestsRead,
    PullRequestsWrite,
    IssuesWrite,
    StatusesWrite,
    Metadata,
}

impl Permission {
    /// As written in a workflow's `permissions:` block.
    pub fn grant(self) -> &'static str {
        match self {
            Permission::ContentsRead => "contents: read",
            Permission::ContentsWrite => "contents: write",
            Permission::PullRequestsRead => "pull-requests: read",
            Permission::PullRequestsWrite => "pull-requests: write",
            Permission::IssuesWrite => "issues: write",
            Permission::StatusesWrite => "statuses: write",
            Permission::Metadata => "metadata: read",
        }
    }
}

/// One API call: what, why, and whether it is safe to send twice.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// Path under the API base, starting with `/`, already percent-encoded.
    pub path: String,
    pub body: Option<Value>,
    pub accept: Option<&'static str>,
    /// What the call is for, in the words of an error message ("create the pull request").
    pub purpose: String,
    pub permission: Permission,
    /// Safe to send again after a 5xx or network error (GET, PATCH, DELETE, content-addressed POSTs).
    pub repeatable: bool,
}

impl Request {
    pub fn new(method: Method, path: impl Into<String>, purpose: impl Into<String>, permission: Permission) -> Request {
        Request {
            method,
            path: path.into(),
            body: None,
            accept: None,
            purpose: purpose.into(),
            permission,
            repeatable: method != Method::Post,
        }
    }

    pub fn get(path: impl Into<String>, purpose: impl Into<String>, permission: Permission) -> Request {
        Request::new(Method::Get, path, purpose, permission)
    }

    pub fn body(mut self, body: Value) -> Request {
        self.body = Some(body);
        self
    }

    pub fn accept(mut self, accept: &'static str) -> Request {
        self.accept = Some(accept);
        self
    }

    /// Marks a POST as safe to repeat (it creates nothing visible, e.g. a git tree).
    pub fn repeatable(mut self) -> Request {
        self.repeatable = true;
        self
    }
}

/// A 2xx answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// A header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<Value, ApiError> {
        serde_json::from_str(&self.body).map_err(|e| ApiError {
            kind: ApiErrorKind::Decode(format!("the answer is not JSON: {e}")),
            method: Method::Get,
            path: String::new(),
            purpose: String::new(),
        })
    }
}

/// Why a call failed.
#[derive(Debug, Clone)]
pub enum ApiErrorKind {
    /// GitHub answered with an error status.
    Status { status: u16, message: String, permission: Permission, accepted: Option<String> },
    /// No answer (connection, timeout), after the allowed attempts.
    Network { detail: String, attempts: u32 },
    /// A rate limit asked for a longer wait than allowed.
    RateLimited { wait: Duration, bound: Duration },
    /// Still rate-limited after every attempt.
    StillRateLimited { attempts: u32 },
    /// The answer could not be understood.
    Decode(String),
}

/// A failed API call, with enough context for a person to act on.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub kind: ApiErrorKind,
    pub method: Method,
    pub path: String,
    pub purpose: String,
}

impl ApiError {
    /// The HTTP status, when GitHub answered.
    pub fn status(&self) -> Option<u16> {
        match &self.kind {
            ApiErrorKind::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// GitHub's message (plus its `errors[]` details), when it answered.
    pub fn message(&self) -> &str {
        match &self.kind {
            ApiErrorKind::Status { message, .. } => message,
            _ => "",
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    fn repo_hint(&self) -> String {
        let mut parts = self.path.trim_start_matches('/').split('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("repos"), Some(owner), Some(name)) => format!("the repository {owner}/{name}"),
            _ => "the repository".into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = format!("{} {}", self.method.as_str(), self.path.split('?').next().unwrap_or_default());
        match &self.kind {
            ApiErrorKind::Status { status: 401, message, .. } => write!(
                f,
                "cannot {}: GitHub rejected the token (401 {message}) on {what}\n  help: check that GITHUB_TOKEN (or GH_TOKEN) holds a valid, unexpired token",
                self.purpose
            ),
            ApiErrorKind::Status { status: 403, message, permission, accepted } => {
                write!(f, "cannot {}: GitHub refused {what} (403 {message})", self.purpose)?;
                if message.contains("not permitted to create or approve pull requests") {
                    return write!(
                        f,
                        "\n  help: enable \"Allow GitHub Actions to create and approve pull requests\" in the repository's (or organization's) Actions settings, or use a GitHub App token"
                    );
                }
                write!(
                    f,
                    "\n  help: the token lacks the `{}` permission; grant it in the workflow's `permissions:` block (or the token's settings)",
                    permission.grant()
                )?;
                if let Some(accepted) = accepted {
                    write!(f, "; GitHub says this call accepts: {accepted}")?;
                }
                Ok(())
            }
            ApiErrorKind::Status { status: 404, message, .. } => write!(
                f,
                "cannot {}: {what} was not found (404 {message})\n  help: check that {} exists and that the token can read it (GITHUB_REPOSITORY, or GH_OWNER and GH_REPO)",
                self.purpose,
                self.repo_hint()
            ),
            ApiErrorKind::Status { status, message, .. } => {
                write!(f, "cannot {}: GitHub answered {status} to {what}: {message}", self.purpose)
            }
            ApiErrorKind::Network { detail, attempts } => write!(
                f,
                "cannot {}: {what} got no answer from GitHub after {attempts} attempt(s): {detail}",
                self.purpose
            ),
            ApiErrorKind::RateLimited { wait, bound } => write!(
                f,
                "cannot {}: GitHub's rate limit asks to wait {} s before {what}, longer than the {} s allowed\n  help: run again later, or raise INFRA_SCALE_MAX_RETRY_WAIT",
                self.purpose,
                wait.as_secs(),
                bound.as_secs()
            ),
            ApiErrorKind::StillRateLimited { attempts } => write!(
                f,
                "cannot {}: GitHub's rate limit still refused {what} after {attempts} attempts\n  help: run again later",
                self.purpose
            ),
            ApiErrorKind::Decode(detail) => write!(f, "cannot {}: {what}: {detail}", self.purpose),
        }
    }
}

impl std::error::Error for ApiError {}

impl From<ApiError> for crate::error::Error {
    fn from(e: ApiError) -> Self {
        crate::error::Error::Failed(anyhow::anyhow!(e.to_string()))
    }
}

/// The REST client. Not `Sync`: requests go one at a time, as GitHub asks of integrations.
pub struct Client {
    cfg: ClientConfig,
    agent: ureq::Agent,
    reads: Cell<u32>,
    writes: Cell<u32>,
}

const DEFAULT_ACCEPT: &str = "application/vnd.github+json, application/json";
/// Raw file contents (no base64, files up to 100 MB).
pub const ACCEPT_RAW: &str = "application/vnd.github.raw+json";

impl Client {
    pub fn new(cfg: ClientConfig) -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(cfg.timeout))
            .user_agent(concat!("infra-scale/", env!("CARGO_PKG_VERSION")))
            .build();
        Client { cfg, agent: config.into(), reads: Cell::new(0), writes: Cell::new(0) }
    }

    /// Requests sent so far: (reads, writes), retries included.
    pub fn counts(&self) -> (u32, u32) {
        (self.reads.get(), self.writes.get())
    }

    /// The API base URL.
    pub fn api_url(&self) -> &str {
        &self.cfg.api_url
    }

    /// Sends a request, retrying per the module rules; `Ok` only for a 2xx answer.
    pub fn send(&self, req: &Request) -> Result<Response, ApiError> {
        self.send_checked(req, &|| Ok(None))
    }

    /// Like [`Client::send`]; when a request that is not repeatable gets a 5xx or no answer,
    /// `took_effect` is asked first, and its answer (if any) is returned instead of repeating.
    pub fn send_checked(
        &self,
        req: &Request,
        took_effect: &dyn Fn() -> Result<Option<Value>, ApiError>,
    ) -> Result<Response, ApiError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.cfg.attempts;
            match self.once(req) {
                Ok(resp) if (200..300).contains(&resp.status) => return Ok(resp),
                Ok(resp) => {
                    if let Some(wait) = rate_limit_wait(&resp) {
                        if wait > self.cfg.max_retry_wait {
                            return Err(
                                self.error(req, ApiErrorKind::RateLimited { wait, bound: self.cfg.max_retry_wait })
                            );
                        }
                        if last {
                            return Err(self.error(req, ApiErrorKind::StillRateLimited { attempts: attempt }));
                        }
                        std::thread::sleep(wait);
                        continue;
                    }
                    if resp.status >= 500 && !last {
                        if !req.repeatable
                            && let Some(value) = took_effect()?
                        {
                            return Ok(Response { status: 200, headers: Vec::new(), body: value.to_string() });
                        }
                        std::thread::sleep(self.backoff(attempt));
                        continue;
                    }
                    return Err(self.status_error(req, &resp));
                }
                Err(detail) => {
                    if !last {
                        if req.repeatable {
                            std::thread::sleep(self.backoff(attempt));
                            continue;
                        }
                        if let Some(value) = took_effect()? {
                            return Ok(Response { status: 200, headers: Vec::new(), body: value.to_string() });
                        }
                        std::thread::sleep(self.backoff(attempt));
                        continue;
                    }
                    return Err(self.error(req, ApiErrorKind::Network { detail, attempts: attempt }));
                }
            }
        }
    }

    /// Sends and parses the JSON answer.
    pub fn json(&self, req: &Request) -> Result<Value, ApiError> {
        let resp = self.send(req)?;
        resp.json().map_err(|e| ApiError {
            method: req.method,
            path: req.path.clone(),
            purpose: req.purpose.clone(),
            ..e
        })
    }

    /// GETs every page of a list (following `Link: rel="next"` on the same API base). Fails
    /// closed: a list with more than `max_pages` pages is an error, never a silently partial list.
    pub fn get_pages(&self, req: &Request, max_pages: usize) -> Result<Vec<Value>, ApiError> {
        match self.get_pages_bounded(req, max_pages)? {
            (items, true) => Ok(items),
            (_, false) => Err(self.error(
                req,
                ApiErrorKind::Decode(format!(
                    "the list has more than {max_pages} pages; refusing to act on part of it"
                )),
            )),
        }
    }

    /// Like [`Client::get_pages`], returning `(items, complete)`: `complete` is false when a
    /// `next` page remained after `max_pages`.
    pub fn get_pages_bounded(&self, req: &Request, max_pages: usize) -> Result<(Vec<Value>, bool), ApiError> {
        let mut items = Vec::new();
        let mut page = req.clone();
        for _ in 0..max_pages {
            let resp = self.send(&page)?;
            let value = resp.json().map_err(|e| ApiError {
                method: page.method,
                path: page.path.clone(),
                purpose: page.purpose.clone(),
                ..e
            })?;
            match value {
                Value::Array(list) => items.extend(list),
                _ => {
                    return Err(self.error(&page, ApiErrorKind::Decode("expected a JSON list".into())));
                }
            }
            match resp.header("link").and_then(next_link) {
                // Follow only links on our own API base: the token must never go elsewhere.
                Some(next) => match next.strip_prefix(&self.cfg.api_url) {
                    Some(path) if path.starts_with('/') => page.path = path.to_string(),
                    _ => {
                        return Err(self.error(
                            &page,
                            ApiErrorKind::Decode(format!("the next page is not under {}", self.cfg.api_url)),
                        ));
                    }
                },
                None => return Ok((items, true)),
            }
        }
        Ok((items, false))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        // 0.5 s, 1 s, 2 s, … plus up to 25 % jitter, capped by the configured bound.
        let base = Duration::from_millis(500u64.saturating_mul(1 << (attempt - 1).min(10)));
        let jitter = base.mul_f64(
            f64::from(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() % 250)) / 1000.0,
        );
        (base + jitter).min(self.cfg.max_retry_wait)
    }

    fn error(&self, req: &Request, kind: ApiErrorKind) -> ApiError {
        ApiError { kind, method: req.method, path: req.path.clone(), purpose: req.purpose.clone() }
    }

    fn status_error(&self, req: &Request, resp: &Response) -> ApiError {
        let message = github_message(&resp.body, self.cfg.token.expose());
        let message = if message.is_empty() { reason(resp.status).to_string() } else { message };
        self.error(
            req,
            ApiErrorKind::Status {
                status: resp.status,
                message,
                permission: req.permission,
                accepted: resp.header("x-accepted-github-permissions").map(str::to_string),
            },
        )
    }

    /// One HTTP exchange; `Err` when no answer came.
    fn once(&self, req: &Request) -> Result<Response, String> {
        let url = format!("{}{}", self.cfg.api_url, req.path);
        let accept = req.accept.unwrap_or(DEFAULT_ACCEPT);
        let auth = format!("Bearer {}", self.cfg.token.expose());
        let version = self.cfg.api_version.as_str();
        if req.method == Method::Get {
            self.reads.set(self.reads.get() + 1);
        } else {
            self.writes.set(self.writes.get() + 1);
        }
        macro_rules! headers {
            ($builder:expr) => {
                $builder.header("Accept", accept).header("Authorization", &auth).header("X-GitHub-Api-Version", version)
            };
        }
        let body = req.body.as_ref().map(Value::to_string).unwrap_or_default();
        let result = match req.method {
            Method::Get => headers!(self.agent.get(&url)).call(),
            Method::Delete => headers!(self.agent.delete(&url)).call(),
            Method::Post => {
                headers!(self.agent.post(&url)).header("Content-Type", "application/json").send(body.as_str())
            }
            Method::Patch => {
                headers!(self.agent.patch(&url)).header("Content-Type", "application/json").send(body.as_str())
            }
        };
        let mut resp = result.map_err(|e| scrub(&e.to_string(), self.cfg.token.expose()))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        let body = resp.body_mut().read_to_string().map_err(|e| scrub(&e.to_string(), self.cfg.token.expose()))?;
        Ok(Response { status, headers, body })
    }
}

/// How long a rate-limited answer asks to wait, or `None` when it is not a rate limit.
fn rate_limit_wait(resp: &Response) -> Option<Duration> {
    if resp.status != 403 && resp.status != 429 {
        return None;
    }
    if let Some(secs) = resp.header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(secs));
    }
    if resp.header("x-ratelimit-remaining").map(str::trim) == Some("0") {
        let reset = resp.header("x-ratelimit-reset").and_then(|v| v.trim().parse::<u64>().ok())?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        return Some(Duration::from_secs(reset.saturating_sub(now) + 1));
    }
    // A secondary rate limit without headers: GitHub asks to wait at least a minute.
    let lower = resp.body.to_ascii_lowercase();
    (resp.status == 429 || lower.contains("rate limit")).then_some(Duration::from_secs(60))
}

/// GitHub's `message` plus the details in `errors[]`, one line, control characters removed,
/// capped, the token scrubbed.
fn github_message(body: &str, token: &str) -> String {
    let mut text = match serde_json::from_str::<Value>(body) {
        Ok(v) => {
            let mut text = v.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
            if let Some(errors) = v.get("errors").and_then(Value::as_array) {
                let details: Vec<String> = errors
                    .iter()
                    .map(|e| match e {
                        Value::String(s) => s.clone(),
                        _ => {
                            let get = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default();
                            match (get("message"), get("field"), get("code")) {
                                ("", "", code) => code.to_string(),
                                ("", field, code) => format!("`{field}` {code}"),
                                (message, _, _) => message.to_string(),
                            }
                        }
                    })
                    .filter(|s| !s.is_empty())
                    .collect();
                if !details.is_empty() {
                    text.push_str(&format!(": {}", details.join("; ")));
                }
            }
            text
        }
        Err(_) => body.chars().take(200).collect(),
    };
    text = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if text.chars().count() > 400 {
        text = text.chars().take(400).collect::<String>() + "…";
    }
    scrub(text.trim(), token)
}

fn scrub(text: &str, token: &str) -> String {
    if token.len() >= 4 { text.replace(token, "***") } else { text.to_string() }
}

fn reason(status: u16) -> &'static str {
    match status {
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        422 => "Unprocessable Entity",
        _ => "error",
    }
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| p.trim().replace(' ', "") == "rel=\"next\"");
        is_next.then(|| url.trim().trim_start_matches('<').trim_end_matches('>').to_string())
    })
}

/// Percent-encodes one path segment or query value (everything but RFC 3986 unreserved characters).
pub fn enc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes a path of several segments, keeping the `/` between them.
pub fn enc_path(path: &str) -> String {
    path.split('/').map(enc).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_never_prints() {
        let t = Token::new("ghp_abcdef").expect("token");
        assert_eq!(format!("{t}"), "***");
        assert_eq!(format!("{t:?}"), "***");
        assert!(Token::new("").is_none());
    }

    #[test]
    fn link_header_next() {
        let link = r#"<https://api.github.com/repositories/1/issues/2/comments?page=2>; rel="next", <https://api.github.com/repositories/1/issues/2/comments?page=5>; rel="last""#;
        assert_eq!(next_link(link).as_deref(), Some("https://api.github.com/repositories/1/issues/2/comments?page=2"));
        assert_eq!(next_link(r#"<https://x/?page=1>; rel="prev""#), None);
    }

    #[test]
    fn messages_are_one_line_and_scrubbed() {
        let body = r#"{"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"custom","message":"A pull request already exists for o:b."}]}"#;
        assert_eq!(github_message(body, "tok123"), "Validation Failed: A pull request already exists for o:b.");
        assert_eq!(github_message("{\"message\":\"bad tok123\\nline\"}", "tok123"), "bad *** line");
        let field =
            r#"{"message":"Validation Failed","errors":[{"resource":"PullRequest","field":"head","code":"invalid"}]}"#;
        assert_eq!(github_message(field, "t0ken"), "Validation Failed: `head` invalid");
    }

    #[test]
    fn encoding() {
        assert_eq!(enc("infra-scale/prod"), "infra-scale%2Fprod");
        assert_eq!(enc("o:b"), "o%3Ab");
        assert_eq!(enc_path("ops/plans/a b.yaml"), "ops/plans/a%20b.yaml");
    }
}
