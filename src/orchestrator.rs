//! The prototype nightly orchestrator's duties, re-homed in the binary: the run's task record
//! (the prototype's `agents_tasks` row) written as `task.json`, shown in the job summary and set as
//! the `task_record` output; metrics events `agent.task_started`, `agent.task_finished` and
//! `agent.awaiting_approval` POSTed to `METRICS_URL`; a Slack-compatible webhook with the PR link.
//!
//! Everything here is best effort: a receiving end that is down, slow or refusing costs at most one
//! short timeout per endpoint, prints a warning that names no URL or key, and never fails the run.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Upper bound for one metrics or webhook request (connect + send + answer).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest `log_excerpt` kept in the record, in bytes (the prototype's limit).
pub const LOG_EXCERPT_MAX: usize = 2000;

/// The `source` field of every metrics event: the prototype's value, kept so existing dashboards
/// and queries that filter on it keep working.
pub const METRICS_SOURCE: &str = "orchestrator";

/// A value that must never be printed: its `Debug` is `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Where the orchestrator reports to, read once from the environment by [`Settings::from_env`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// `METRICS_URL`: the collector that receives one JSON event per POST. A URL may carry a key
    /// in its query string, so it is treated as a secret too.
    pub metrics_url: Option<Secret>,
    /// `METRICS_KEY`: sent as the `x-metrics-key` header (the prototype's header).
    pub metrics_key: Option<Secret>,
    /// `INFRA_SCALE_WEBHOOK_URL`, else the prototype's `SLACK_WEBHOOK`: a Slack-compatible incoming
    /// webhook (`{"text": …}`). Slack webhook URLs embed their credential, hence a secret.
    pub webhook_url: Option<Secret>,
    /// `GITHUB_RUN_ID` (with `-<attempt>` on a re-run), else `local-<UTC stamp>`.
    pub run_id: Option<String>,
    /// Link to the workflow run, when running in GitHub Actions.
    pub run_url: Option<String>,
    /// `GITHUB_STEP_SUMMARY`: where the record is shown.
    pub step_summary: Option<std::path::PathBuf>,
    /// `GITHUB_OUTPUT`: where the `task_record` output goes.
    pub github_output: Option<std::path::PathBuf>,
    /// Timeout of one request; [`SEND_TIMEOUT`] unless a test shortens it.
    pub timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            metrics_url: None,
            metrics_key: None,
            webhook_url: None,
            run_id: None,
            run_url: None,
            step_summary: None,
            github_output: None,
            timeout: SEND_TIMEOUT,
        }
    }
}

impl Settings {
    /// Reads `METRICS_URL`, `METRICS_KEY`, `INFRA_SCALE_WEBHOOK_URL` (or `SLACK_WEBHOOK`),
    /// `GITHUB_RUN_ID`, `GITHUB_RUN_ATTEMPT`, `GITHUB_SERVER_URL`, `GITHUB_REPOSITORY`,
    /// `GITHUB_STEP_SUMMARY` and `GITHUB_OUTPUT`. Empty values count as unset.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Settings::from_env`], with the variables supplied by `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let run_id = get("GITHUB_RUN_ID").map(|id| match get("GITHUB_RUN_ATTEMPT") {
            Some(attempt) if attempt != "1" => format!("{id}-{attempt}"),
            _ => id,
        });
        let run_url = match (get("GITHUB_SERVER_URL"), get("GITHUB_REPOSITORY"), get("GITHUB_RUN_ID")) {
            (Some(server), Some(repo), Some(id)) => {
                Some(format!("{}/{repo}/actions/runs/{id}", server.trim_end_matches('/')))
            }
            _ => None,
        };
        Self {
            metrics_url: get("METRICS_URL").map(Secret),
            metrics_key: get("METRICS_KEY").map(Secret),
            webhook_url: get("INFRA_SCALE_WEBHOOK_URL").or_else(|| get("SLACK_WEBHOOK")).map(Secret),
            run_id,
            run_url,
            step_summary: get("GITHUB_STEP_SUMMARY").map(Into::into),
            github_output: get("GITHUB_OUTPUT").map(Into::into),
            timeout: SEND_TIMEOUT,
        }
    }
}

/// How a task ended, as the caller knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskOutcome {
    /// `succeeded`, `awaiting_approval`, `converged`, `failed`, `refused`, … (the final status word).
    pub status: String,
    /// The PR html_url (or other result link); empty when there is none.
    pub outputs_uri: String,
    /// `pending` while a PR awaits approval; empty when not applicable.
    pub approval_state: String,
    /// The run's output; trimmed to the first and last lines by [`log_excerpt`].
    pub log_excerpt: String,
}

/// One run of a task: the prototype's `agents_tasks` row, written as `task.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRecord {
    pub task: String,
    pub run_id: String,
    pub status: String,
    /// RFC 3339, UTC, e.g. `2025-10-11T02:00:00Z`.
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
    /// `null` when the run produced no link (a dry run, a failure before publishing).
    pub outputs_uri: Option<String>,
    /// `pending` while awaiting approval, else `null` (as in the prototype).
    pub approval_state: Option<String>,
    pub log_excerpt: String,
}

/// A task that has started; [`TaskRun::finish`] completes it.
#[derive(Debug)]
pub struct TaskRun {
    task: String,
    run_id: String,
    started_at: SystemTime,
    started: Instant,
    settings: Settings,
    /// Set when a metrics request failed: the collector is not asked again during this run, so a
    /// collector that is down costs one timeout, not one per event.
    metrics_down: bool,
}

/// Starts `task` with settings from the environment and sends `agent.task_started`.
pub fn start(task: &str) -> TaskRun {
    start_with(task, Settings::from_env())
}

/// Starts `task` with explicit settings and sends `agent.task_started`.
pub fn start_with(task: &str, settings: Settings) -> TaskRun {
    let started_at = SystemTime::now();
    let run_id = settings.run_id.clone().unwrap_or_else(|| format!("local-{}", stamp(started_at)));
    let mut run =
        TaskRun { task: task.to_string(), run_id, started_at, started: Instant::now(), settings, metrics_down: false };
    let event = serde_json::json!({ "task": run.task, "run_id": run.run_id });
    run.emit("agent.task_started", event);
    run
}

impl TaskRun {
    /// The run id recorded for this task.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Completes the run: writes `task.json` into `artifacts_dir`, appends the record to the job
    /// summary, sets the `task_record` output, sends `agent.task_finished` (and
    /// `agent.awaiting_approval` when the status says so) and the webhook. Never fails: problems
    /// are warnings on stderr.
    pub fn finish(mut self, outcome: &TaskOutcome, artifacts_dir: &Path) -> TaskRecord {
        let finished_at = SystemTime::now();
        let duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let non_empty = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let record = TaskRecord {
            task: self.task.clone(),
            run_id: self.run_id.clone(),
            status: outcome.status.clone(),
            started_at: rfc3339(self.started_at),
            finished_at: rfc3339(finished_at),
            duration_ms,
            outputs_uri: non_empty(&outcome.outputs_uri),
            approval_state: non_empty(&outcome.approval_state),
            log_excerpt: self.scrub(&log_excerpt(&outcome.log_excerpt)),
        };

        match serde_json::to_vec_pretty(&record) {
            Ok(mut json) => {
                json.push(b'\n');
                if let Err(e) = crate::artifacts::write_atomic(&artifacts_dir.join("task.json"), &json) {
                    warn(&format!("task record not written: {e:#}"));
                }
            }
            Err(e) => warn(&format!("task record not serialised: {e}")),
        }
        if let Some(path) = &self.settings.step_summary
            && let Err(e) = crate::runner::append_step_summary_to(path, &summary_markdown(&record))
        {
            warn(&format!("task record not added to the job summary: {e}"));
        }
        if let Some(path) = &self.settings.github_output
            && let Err(e) = crate::runner::write_outputs(path, &[("task_record", &compact_json(&record))])
        {
            warn(&format!("task_record output not set: {e}"));
        }

        let finished = serde_json::json!({
            "task": record.task,
            "run_id": record.run_id,
            "status": record.status,
            "approval_state": record.approval_state,
            "duration_ms": record.duration_ms,
            "outputs_uri": record.outputs_uri,
        });
        self.emit("agent.task_finished", finished);
        if record.status == "awaiting_approval" {
            let awaiting = serde_json::json!({
                "task": record.task,
                "run_id": record.run_id,
                "outputs_uri": record.outputs_uri,
            });
            self.emit("agent.awaiting_approval", awaiting);
        }
        if let Some(text) = self.webhook_text(&record) {
            self.notify(&text);
        }
        record
    }

    /// POSTs one metrics event, `{ts, event, source, …fields}`, when `METRICS_URL` is set.
    fn emit(&mut self, event: &str, fields: serde_json::Value) {
        let Some(url) = self.settings.metrics_url.clone() else { return };
        if self.metrics_down {
            return;
        }
        let mut body = serde_json::json!({
            "ts": rfc3339(SystemTime::now()),
            "event": event,
            "source": METRICS_SOURCE,
        });
        if let (Some(body), serde_json::Value::Object(fields)) = (body.as_object_mut(), fields) {
            body.extend(fields);
        }
        let key = self.settings.metrics_key.clone();
        let headers: Vec<(&str, &str)> = key.as_ref().map(|k| vec![("x-metrics-key", k.expose())]).unwrap_or_default();
        if let Err(why) = post_json(url.expose(), &headers, &body, self.settings.timeout) {
            warn(&format!("metrics event {event} not delivered to METRICS_URL: {why}; continuing"));
            self.metrics_down = true;
        }
    }

    /// The webhook message, when one is due: a PR awaits approval, or the task failed.
    fn webhook_text(&self, record: &TaskRecord) -> Option<String> {
        self.settings.webhook_url.as_ref()?;
        let run = self.settings.run_url.as_deref().map(|u| format!(" (run: {u})")).unwrap_or_default();
        match record.status.as_str() {
            "awaiting_approval" => Some(format!(
                "Task {} awaiting approval: {}{run}",
                record.task,
                record.outputs_uri.as_deref().unwrap_or("(no pull request link)")
            )),
            // A converged target (nothing to change, no PR) is as quiet as a success.
            "succeeded" | "converged" => None,
            status => Some(format!("Task {} {status}{run}", record.task)),
        }
    }

    /// POSTs `{"text": …}` to the webhook.
    fn notify(&self, text: &str) {
        let Some(url) = &self.settings.webhook_url else { return };
        let body = serde_json::json!({ "text": text });
        if let Err(why) = post_json(url.expose(), &[], &body, self.settings.timeout) {
            warn(&format!("webhook notification not delivered: {why}; continuing"));
        }
    }

    /// Replaces any configured secret that found its way into `text` with `***`.
    fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        let secrets = [&self.settings.metrics_key, &self.settings.webhook_url, &self.settings.metrics_url];
        for secret in secrets.into_iter().flatten() {
            if secret.expose().len() >= 4 {
                out = out.replace(secret.expose(), "***");
            }
        }
        for name in ["GITHUB_TOKEN", "GH_TOKEN"] {
            if let Ok(token) = std::env::var(name)
                && token.len() >= 4
            {
                out = out.replace(&token, "***");
            }
        }
        out
    }
}

/// The prototype's excerpt: the whole text when it has at most 20 non-blank lines, else the first
/// and last 10 joined by `...`; at most [`LOG_EXCERPT_MAX`] bytes, cut on a character boundary.
pub fn log_excerpt(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let excerpt = if lines.len() <= 20 {
        lines.join("\n")
    } else {
        format!("{}\n...\n{}", lines[..10].join("\n"), lines[lines.len() - 10..].join("\n"))
    };
    truncate(&excerpt, LOG_EXCERPT_MAX).to_string()
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Why a POST did not succeed, in words that carry no URL, host or key.
fn post_json(url: &str, headers: &[(&str, &str)], body: &serde_json::Value, timeout: Duration) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("infra-scale/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut request = agent.post(url).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    match request.send(body.to_string()) {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("the endpoint answered HTTP {}", response.status().as_u16())),
        Err(e) => Err(describe(&e, timeout)),
    }
}

/// A description of a ureq error that never includes the URL (ureq's own messages may).
fn describe(error: &ureq::Error, timeout: Duration) -> String {
    match error {
        ureq::Error::Timeout(_) => format!("no answer within {}s", timeout.as_secs_f32()),
        ureq::Error::HostNotFound => "host not found".to_string(),
        ureq::Error::ConnectionFailed => "connection failed".to_string(),
        ureq::Error::Io(e) => format!("connection error ({:?})", e.kind()),
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => "the URL is not a valid http(s) URL".to_string(),
        ureq::Error::Tls(_) => "TLS error".to_string(),
        _ => "request failed".to_string(),
    }
}

fn warn(message: &str) {
    crate::runner::warning(message);
}

fn rfc3339(at: SystemTime) -> String {
    crate::artifacts::rfc3339(epoch(at))
}

fn stamp(at: SystemTime) -> String {
    crate::artifacts::folder_stamp(epoch(at))
}

fn epoch(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or_default()
}

/// The record on one line (serde_json escapes newlines inside strings), for `GITHUB_OUTPUT`.
fn compact_json(record: &TaskRecord) -> String {
    serde_json::to_string(record).unwrap_or_default()
}

/// The record as a Markdown section for the job summary.
pub fn summary_markdown(record: &TaskRecord) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace(['\n', '\r'], " ");
    let none = "—";
    let mut out = String::from("\n### Task record\n\n| field | value |\n|---|---|\n");
    let rows = [
        ("task", record.task.clone()),
        ("run_id", record.run_id.clone()),
        ("status", record.status.clone()),
        ("started_at", record.started_at.clone()),
        ("finished_at", record.finished_at.clone()),
        ("duration_ms", record.duration_ms.to_string()),
        ("outputs_uri", record.outputs_uri.clone().unwrap_or_else(|| none.to_string())),
        ("approval_state", record.approval_state.clone().unwrap_or_else(|| none.to_string())),
    ];
    for (field, value) in rows {
        out.push_str(&format!("| {field} | {} |\n", cell(&value)));
    }
    if !record.log_excerpt.is_empty() {
        // A fence longer than any backtick run inside keeps the excerpt inert.
        let longest = record.log_excerpt.split(|c| c != '`').map(str::len).max().unwrap_or(0);
        let fence = "`".repeat(longest.max(2) + 1);
        out.push_str(&format!(
            "\n<details><summary>log excerpt</summary>\n\n{fence}\n{}\n{fence}\n\n</details>\n",
            record.log_excerpt
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_keeps_first_and_last_ten_lines() {
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let excerpt = log_excerpt(&text);
        assert!(excerpt.starts_with("line 1\n"));
        assert!(excerpt.contains("line 10\n...\nline 21\n"));
        assert!(excerpt.ends_with("line 30"));
        assert!(!excerpt.contains("line 11\n"));
    }

    #[test]
    fn excerpt_is_capped_on_a_char_boundary() {
        let text = "é".repeat(3000);
        let excerpt = log_excerpt(&text);
        assert!(excerpt.len() <= LOG_EXCERPT_MAX);
        assert_eq!(excerpt.len(), LOG_EXCERPT_MAX);
    }

    #[test]
    fn secrets_debug_as_stars() {
        let s = Settings { metrics_key: Some(Secret::new("k-123456")), ..Settings::default() };
        assert!(!format!("{s:?}").contains("k-123456"));
    }

    #[test]
    fn run_id_and_webhook_from_environment() {
        let env = |name: &str| match name {
            "GITHUB_RUN_ID" => Some("42".to_string()),
            "GITHUB_RUN_ATTEMPT" => Some("2".to_string()),
            "GITHUB_SERVER_URL" => Some("https://github.example/".to_string()),
            "GITHUB_REPOSITORY" => Some("o/r".to_string()),
            "SLACK_WEBHOOK" => Some("http://hook".to_string()),
            "METRICS_URL" => Some("  ".to_string()),
            _ => None,
        };
        let s = Settings::from_lookup(env);
        assert_eq!(s.run_id.as_deref(), Some("42-2"));
        assert_eq!(s.run_url.as_deref(), Some("https://github.example/o/r/actions/runs/42"));
        assert_eq!(s.webhook_url.as_ref().map(Secret::expose), Some("http://hook"));
        assert!(s.metrics_url.is_none(), "blank counts as unset");
    }

    #[test]
    fn summary_escapes_table_cells_and_fences_the_excerpt() {
        let record = TaskRecord {
            task: "infra.scale".into(),
            run_id: "1".into(),
            status: "succeeded".into(),
            started_at: "a".into(),
            finished_at: "b".into(),
            duration_ms: 5,
            outputs_uri: None,
            approval_state: Some("x|y".into()),
            log_excerpt: "```\nnot the end".into(),
        };
        let md = summary_markdown(&record);
        assert!(md.contains("| approval_state | x\\|y |"));
        assert!(md.contains("````\n```\nnot the end\n````"));
    }
}
