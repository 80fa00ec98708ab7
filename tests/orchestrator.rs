//! The orchestrator's duties against local servers: the task record (task.json, job summary,
//! `task_record` output), metrics events with their key header, the Slack-compatible webhook, and
//! best-effort behaviour when the receiving ends are down, failing or hanging.

use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use infra_scale::orchestrator::{self, Secret, Settings, TaskOutcome, TaskRecord};

/// One request as the local server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: serde_json::Value,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A recording HTTP server on 127.0.0.1 (free port), answering every request with `status`.
struct Recorder {
    server: Arc<tiny_http::Server>,
    seen: Arc<Mutex<Vec<Seen>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    port: u16,
}

impl Recorder {
    fn start(status: u16) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1:0"));
        let port = server.server_addr().to_ip().expect("ip listener").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (srv, log) = (Arc::clone(&server), Arc::clone(&seen));
        let thread = std::thread::spawn(move || {
            for mut request in srv.incoming_requests() {
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                let headers = request.headers().iter().map(|h| (h.field.to_string(), h.value.to_string())).collect();
                log.lock().expect("lock").push(Seen {
                    method: request.method().to_string(),
                    path: request.url().to_string(),
                    headers,
                    body: serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
                });
                let _ = request.respond(tiny_http::Response::from_string("ok").with_status_code(status));
            }
        });
        Self { server, seen, thread: Some(thread), port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn settings(dir: &Path) -> Settings {
    Settings {
        run_id: Some("9001".into()),
        run_url: Some("https://github.example/o/r/actions/runs/9001".into()),
        step_summary: Some(dir.join("summary.md")),
        github_output: Some(dir.join("output.txt")),
        ..Settings::default()
    }
}

fn awaiting() -> TaskOutcome {
    TaskOutcome {
        status: "awaiting_approval".into(),
        outputs_uri: "https://github.example/o/r/pull/7".into(),
        approval_state: "pending".into(),
        log_excerpt: "artifacts_dir=/x\noutputs_uri=https://github.example/o/r/pull/7\nawaiting_approval\n".into(),
    }
}

fn read_record(dir: &Path) -> TaskRecord {
    let text = std::fs::read_to_string(dir.join("task.json")).expect("task.json written");
    serde_json::from_str(&text).expect("task.json has exactly the record's fields")
}

#[test]
fn awaiting_approval_sends_three_events_with_the_key_and_a_webhook_with_the_pr_link() {
    let metrics = Recorder::start(202);
    let hook = Recorder::start(200);
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Settings {
        metrics_url: Some(Secret::new(metrics.url("/metrics"))),
        metrics_key: Some(Secret::new("mk-s3cret-value")),
        webhook_url: Some(Secret::new(hook.url("/services/T000/B000/XXXX"))),
        ..settings(dir.path())
    };
    let run = orchestrator::start_with("infra.scale", s);
    assert_eq!(metrics.seen().len(), 1, "task_started is sent at start");
    let record = run.finish(&awaiting(), dir.path());

    let events = metrics.seen();
    let names: Vec<&str> = events.iter().map(|e| e.body["event"].as_str().unwrap_or("")).collect();
    assert_eq!(names, ["agent.task_started", "agent.task_finished", "agent.awaiting_approval"]);
    for e in &events {
        assert_eq!(e.method, "POST");
        assert_eq!(e.path, "/metrics");
        assert_eq!(e.header("x-metrics-key"), Some("mk-s3cret-value"));
        assert_eq!(e.header("content-type"), Some("application/json"));
        assert_eq!(e.body["task"], "infra.scale");
        assert_eq!(e.body["run_id"], "9001");
        assert_eq!(e.body["source"], "orchestrator");
        assert!(e.body["ts"].as_str().is_some_and(|t| t.ends_with('Z')), "ts is RFC 3339 UTC: {}", e.body);
    }
    assert_eq!(events[1].body["status"], "awaiting_approval");
    assert_eq!(events[1].body["approval_state"], "pending");
    assert_eq!(events[1].body["outputs_uri"], "https://github.example/o/r/pull/7");
    assert!(events[1].body["duration_ms"].is_u64());
    assert_eq!(events[2].body["outputs_uri"], "https://github.example/o/r/pull/7");

    let hooks = hook.seen();
    assert_eq!(hooks.len(), 1);
    let text = hooks[0].body["text"].as_str().expect("Slack-compatible {\"text\": …}");
    assert!(text.contains("infra.scale awaiting approval: https://github.example/o/r/pull/7"), "{text}");
    assert!(text.contains("actions/runs/9001"), "{text}");
    assert_eq!(hooks[0].body.as_object().map(|o| o.len()), Some(1), "only the text field");

    // task.json: exactly the prototype's agents_tasks fields.
    assert_eq!(read_record(dir.path()), record);
    let raw: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("task.json")).expect("read")).expect("json");
    let mut keys: Vec<&String> = raw.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "approval_state",
            "duration_ms",
            "finished_at",
            "log_excerpt",
            "outputs_uri",
            "run_id",
            "started_at",
            "status",
            "task"
        ]
    );
    assert_eq!(record.status, "awaiting_approval");
    assert_eq!(record.approval_state.as_deref(), Some("pending"));
    assert!(record.started_at <= record.finished_at);
    assert!(record.log_excerpt.contains("outputs_uri=https://github.example/o/r/pull/7"));

    // The job summary shows it; GITHUB_OUTPUT carries it on one line.
    let summary = std::fs::read_to_string(dir.path().join("summary.md")).expect("summary");
    assert!(summary.contains("| outputs_uri | https://github.example/o/r/pull/7 |"), "{summary}");
    assert!(summary.contains("| status | awaiting_approval |"));
    let output = std::fs::read_to_string(dir.path().join("output.txt")).expect("output");
    let line = output.lines().find_map(|l| l.strip_prefix("task_record=")).expect("task_record output");
    assert_eq!(serde_json::from_str::<TaskRecord>(line).expect("one-line JSON"), record);
    assert_eq!(output.lines().count(), 1);
}

#[test]
fn a_dry_run_sends_no_approval_event_and_no_webhook() {
    let metrics = Recorder::start(200);
    let hook = Recorder::start(200);
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Settings {
        metrics_url: Some(Secret::new(metrics.url("/m"))),
        webhook_url: Some(Secret::new(hook.url("/h"))),
        ..settings(dir.path())
    };
    let outcome = TaskOutcome { status: "succeeded".into(), ..TaskOutcome::default() };
    let record = orchestrator::start_with("infra.scale", s).finish(&outcome, dir.path());
    let names: Vec<String> =
        metrics.seen().iter().map(|e| e.body["event"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(names, ["agent.task_started", "agent.task_finished"]);
    assert!(metrics.seen().iter().all(|e| e.header("x-metrics-key").is_none()), "no key configured, no header");
    assert!(hook.seen().is_empty());
    assert_eq!(record.outputs_uri, None);
    assert_eq!(record.approval_state, None);
    let raw = std::fs::read_to_string(dir.path().join("task.json")).expect("task.json");
    assert!(raw.contains("\"outputs_uri\": null"), "{raw}");
}

#[test]
fn a_converged_target_sends_no_approval_event_and_no_webhook() {
    let metrics = Recorder::start(200);
    let hook = Recorder::start(200);
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Settings {
        metrics_url: Some(Secret::new(metrics.url("/m"))),
        webhook_url: Some(Secret::new(hook.url("/h"))),
        ..settings(dir.path())
    };
    let outcome = TaskOutcome { status: "converged".into(), ..TaskOutcome::default() };
    let record = orchestrator::start_with("infra.scale", s).finish(&outcome, dir.path());
    let names: Vec<String> =
        metrics.seen().iter().map(|e| e.body["event"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(names, ["agent.task_started", "agent.task_finished"]);
    assert_eq!(metrics.seen()[1].body["status"].as_str(), Some("converged"));
    assert!(hook.seen().is_empty(), "a converged nightly run is not news");
    assert_eq!(record.status, "converged");
}

#[test]
fn a_failed_task_notifies_the_webhook_with_the_run_link() {
    let hook = Recorder::start(200);
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Settings { webhook_url: Some(Secret::new(hook.url("/h"))), ..settings(dir.path()) };
    let outcome =
        TaskOutcome { status: "failed".into(), log_excerpt: "error: GitHub answered 401".into(), ..Default::default() };
    orchestrator::start_with("infra.scale", s).finish(&outcome, dir.path());
    let hooks = hook.seen();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].body["text"], "Task infra.scale failed (run: https://github.example/o/r/actions/runs/9001)");
}

#[test]
fn without_configuration_nothing_is_sent_and_the_record_is_still_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Settings { run_id: None, ..settings(dir.path()) };
    let record = orchestrator::start_with("infra.scale", s).finish(&awaiting(), dir.path());
    assert!(record.run_id.starts_with("local-"), "{}", record.run_id);
    assert_eq!(read_record(dir.path()), record);
}

#[test]
fn a_failing_collector_is_asked_once_and_never_fails_the_run() {
    // 500 on the first event: the collector is considered down for the rest of the run.
    let metrics = Recorder::start(500);
    let hook = Recorder::start(503);
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Settings {
        metrics_url: Some(Secret::new(metrics.url("/m"))),
        webhook_url: Some(Secret::new(hook.url("/h"))),
        ..settings(dir.path())
    };
    let record = orchestrator::start_with("infra.scale", s).finish(&awaiting(), dir.path());
    assert_eq!(metrics.seen().len(), 1);
    assert_eq!(hook.seen().len(), 1);
    assert_eq!(read_record(dir.path()), record);
}

#[test]
fn endpoints_that_refuse_connections_cost_nothing() {
    // A port that was free a moment ago and has no listener now.
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Settings {
        metrics_url: Some(Secret::new(format!("http://127.0.0.1:{port}/m"))),
        webhook_url: Some(Secret::new(format!("http://127.0.0.1:{port}/h"))),
        ..settings(dir.path())
    };
    let t = Instant::now();
    let record = orchestrator::start_with("infra.scale", s).finish(&awaiting(), dir.path());
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(read_record(dir.path()), record);
}

#[test]
fn hanging_endpoints_cost_at_most_one_timeout_each() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&held);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            keep.lock().expect("lock").push(stream);
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let timeout = Duration::from_millis(600);
    let s = Settings {
        metrics_url: Some(Secret::new(format!("http://127.0.0.1:{port}/m"))),
        webhook_url: Some(Secret::new(format!("http://127.0.0.1:{port}/h"))),
        timeout,
        ..settings(dir.path())
    };
    let t = Instant::now();
    let record = orchestrator::start_with("infra.scale", s).finish(&awaiting(), dir.path());
    let elapsed = t.elapsed();
    // One timeout for the metrics collector (then skipped), one for the webhook.
    assert!(elapsed >= 2 * timeout, "{elapsed:?}");
    assert!(elapsed < 2 * timeout + Duration::from_millis(900), "{elapsed:?}");
    assert_eq!(held.lock().expect("lock").len(), 2, "one connection per endpoint");
    assert_eq!(read_record(dir.path()), record);
    assert_eq!(orchestrator::SEND_TIMEOUT, Duration::from_secs(3), "the production timeout is 3 s");
}

#[test]
fn secrets_never_reach_the_record_or_the_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Settings {
        metrics_key: Some(Secret::new("mk-0123456789")),
        webhook_url: Some(Secret::new("http://127.0.0.1:9/services/SECRETPATH")),
        ..settings(dir.path())
    };
    let outcome = TaskOutcome {
        status: "failed".into(),
        log_excerpt: "key mk-0123456789 and hook http://127.0.0.1:9/services/SECRETPATH".into(),
        ..Default::default()
    };
    let record = orchestrator::start_with("infra.scale", s).finish(&outcome, dir.path());
    assert_eq!(record.log_excerpt, "key *** and hook ***");
    for file in ["task.json", "summary.md", "output.txt"] {
        let text = std::fs::read_to_string(dir.path().join(file)).expect(file);
        assert!(!text.contains("mk-0123456789") && !text.contains("SECRETPATH"), "{file}: {text}");
    }
}

/// Runs in a child process (see the next test): delivery fails in every way, with secrets in the
/// URLs and key, and whatever is printed goes to the parent through stderr.
#[test]
fn child_prints_warnings() {
    let Ok(dir) = std::env::var("ORCHESTRATOR_CHILD_DIR") else { return };
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let s = Settings {
        metrics_url: Some(Secret::new(format!("http://127.0.0.1:{port}/m?token=URLSECRET"))),
        metrics_key: Some(Secret::new("KEYSECRET")),
        webhook_url: Some(Secret::new("http://hooks.invalid/services/HOOKSECRET")),
        ..settings(Path::new(&dir))
    };
    orchestrator::start_with("infra.scale", s).finish(&awaiting(), Path::new(&dir));
}

#[test]
fn warnings_name_no_url_and_no_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "child_prints_warnings", "--nocapture", "--test-threads=1"])
        .env("ORCHESTRATOR_CHILD_DIR", dir.path())
        .env_remove("GITHUB_ACTIONS")
        .output()
        .expect("run child");
    assert!(out.status.success(), "child failed: {}", String::from_utf8_lossy(&out.stderr));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(all.contains("warning: metrics event agent.task_started not delivered"), "{all}");
    assert!(all.contains("warning: webhook notification not delivered"), "{all}");
    for secret in ["URLSECRET", "KEYSECRET", "HOOKSECRET", "hooks.invalid", "127.0.0.1"] {
        assert!(!all.contains(secret), "`{secret}` printed:\n{all}");
    }
    assert!(dir.path().join("task.json").exists());
}
