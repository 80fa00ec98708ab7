//! HTTP: one thread per request, the request log, JSON replies with `Warning` headers, and watch
//! streams written by hand in chunked encoding (tiny_http would buffer them) with BOOKMARKs that
//! detect a departed client.

use super::discovery::ResourceType;
use super::handlers::route;
use super::selector::Selector;
use super::store::{Key, Shared, present};
use serde_json::{Value, json};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// One request as the fake received it (bodies of protobuf requests are kept lossily as text).
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    pub content_type: Option<String>,
    pub accept: Option<String>,
    pub user_agent: Option<String>,
    /// Whether the request carried `Authorization: Bearer <the kubeconfig's token>`. kubectl never
    /// sends it to an `http://` server, so this is only meaningful for other clients.
    pub authorized: bool,
    /// kubectl's `Kubectl-Command` header (`kubectl apply`…), sent by kubectl ≥1.30.
    pub kubectl_command: Option<String>,
    /// kubectl's `Kubectl-Session` header: one value per kubectl process (kubectl ≥1.30).
    pub kubectl_session: Option<String>,
    pub body: String,
    /// The HTTP status the fake answered.
    pub status: u16,
}

impl RecordedRequest {
    /// The decoded value of one query parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        parse_query(&self.query).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Whether the request is a write (POST, PUT, PATCH, DELETE) that was not a dry run.
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE") && self.param("dryRun").is_none()
    }

    /// Whether the request was a watch.
    pub fn is_watch(&self) -> bool {
        matches!(self.param("watch").as_deref(), Some("true" | "1"))
    }
}

/// What a handler answers.
pub enum Reply {
    Json(u16, Value),
    Watch(WatchSpec),
}

/// A watch request, served by streaming.
pub struct WatchSpec {
    pub t: &'static ResourceType,
    pub namespace: Option<String>,
    pub selector: Selector,
    pub since: Option<u64>,
    pub deadline: Instant,
    pub bookmarks: bool,
}

/// Decodes `a=b&c=d` (percent-decoding, `+` as space).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len() + 1
            && let Some(b) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A parsed request.
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: String,
    pub params: Vec<(String, String)>,
    pub content_type: String,
    pub accept: String,
    pub user_agent: String,
    pub body: Vec<u8>,
    /// `Warning` headers for the response (unknown fields under `fieldValidation=Warn`).
    pub warnings: std::cell::RefCell<Vec<String>>,
}

impl Req {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn dry_run(&self) -> bool {
        self.param("dryRun").is_some()
    }

    pub fn manager(&self, default: &str) -> String {
        match self.param("fieldManager") {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => {
                let ua = self.user_agent.split('/').next().unwrap_or("");
                if ua.is_empty() { default.to_string() } else { ua.to_string() }
            }
        }
    }
}

/// Serves one request on its own thread: watches stream until their deadline, the client leaves, or
/// the server shuts down.
pub fn serve(shared: &Arc<Shared>, mut request: tiny_http::Request) {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    pub fn header_of(request: &tiny_http::Request, name: &'static str) -> Option<String> {
        request.headers().iter().find(|h| h.field.equiv(name)).map(|h| h.value.as_str().to_string())
    }
    let header = |name: &'static str| header_of(&request, name);
    let content_type = header("Content-Type");
    let accept = header("Accept");
    let user_agent = header("User-Agent");
    let authorized = header("Authorization").is_some_and(|a| a == format!("Bearer {}", shared.token));
    let kubectl_command = header("Kubectl-Command");
    let kubectl_session = header("Kubectl-Session");
    let mut body = Vec::new();
    let _ = request.as_reader().read_to_end(&mut body);
    let req = Req {
        method: request.method().as_str().to_ascii_uppercase(),
        path: path.to_string(),
        query: query.to_string(),
        params: parse_query(query),
        content_type: content_type.clone().unwrap_or_default(),
        accept: accept.clone().unwrap_or_default(),
        user_agent: user_agent.clone().unwrap_or_default(),
        body,
        warnings: std::cell::RefCell::default(),
    };
    let latency = shared.lock().latency;
    if !latency.is_zero() {
        std::thread::sleep(latency);
    }
    let reply = route(shared, &req).unwrap_or_else(|e| Reply::Json(e.code, e.to_status()));
    let status = match &reply {
        Reply::Json(code, _) => *code,
        Reply::Watch(_) => 200,
    };
    shared.lock().log.push(RecordedRequest {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        content_type,
        accept,
        user_agent,
        authorized,
        kubectl_command,
        kubectl_session,
        body: String::from_utf8_lossy(&req.body).into_owned(),
        status,
    });
    match reply {
        Reply::Json(code, value) => {
            let body = serde_json::to_vec(&value).unwrap_or_default();
            let mut head = format!(
                "HTTP/1.1 {code} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
                tiny_http::StatusCode(code).default_reason_phrase(),
                body.len()
            );
            for w in req.warnings.borrow().iter() {
                head.push_str(&format!("Warning: 299 - {}\r\n", serde_json::to_string(w).unwrap_or_default()));
            }
            head.push_str("\r\n");
            let mut response = head.into_bytes();
            response.extend_from_slice(&body);
            let mut writer = request.into_writer();
            let _ = writer.write_all(&response).and_then(|()| writer.flush());
        }
        Reply::Watch(spec) => {
            let mut writer = request.into_writer();
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
            stream_watch(shared, &spec, head.as_bytes().to_vec(), &mut writer);
        }
    }
}

/// One chunk of a chunked body.
fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

pub fn event_line(kind: &str, object: Value) -> Vec<u8> {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    line
}

/// Streams watch events. Everything due at once (the response head, the initial events, a batch of
/// changes) goes out in a single write: tiny_http's socket has Nagle on, and a second small segment
/// would wait for the client's delayed ACK (~40 ms).
pub fn stream_watch(shared: &Arc<Shared>, spec: &WatchSpec, head: Vec<u8>, writer: &mut dyn Write) {
    let t = spec.t;
    let matches = |key: &Key, obj: &Value| {
        key.0 == t.storage && spec.namespace.as_ref().is_none_or(|ns| *ns == key.1) && spec.selector.matches(obj)
    };
    let mut out = head;
    let mut state = shared.lock();
    let mut last = match spec.since {
        Some(rv) => rv,
        None => {
            // resourceVersion 0 or absent: synthetic ADDED events for the current state first.
            for (_, o) in state.objects.iter().filter(|(k, o)| matches(k, o)) {
                out.extend(chunk(&event_line("ADDED", present(t, o))));
            }
            state.rv
        }
    };
    let mut last_sent = Instant::now();
    loop {
        for e in state.events.iter().filter(|e| e.rv > last && matches(&e.key, &e.object)) {
            out.extend(chunk(&event_line(e.kind, present(t, &e.object))));
        }
        last = state.rv;
        drop(state);
        let ending = shared.shutdown.load(Ordering::SeqCst) || Instant::now() >= spec.deadline;
        // Bookmarks keep the stream alive and tell us when the client has gone away.
        if out.is_empty() && spec.bookmarks && last_sent.elapsed() >= Duration::from_secs(1) {
            let bookmark = json!({"kind": t.kind, "apiVersion": t.api_version(),
                                  "metadata": {"resourceVersion": last.to_string()}});
            out.extend(chunk(&event_line("BOOKMARK", bookmark)));
        }
        if ending {
            out.extend_from_slice(b"0\r\n\r\n");
        }
        if !out.is_empty() {
            if writer.write_all(&out).and_then(|()| writer.flush()).is_err() {
                return;
            }
            out.clear();
            last_sent = Instant::now();
        }
        if ending {
            return;
        }
        state = shared.lock();
        if state.rv == last {
            state = shared
                .changed
                .wait_timeout(state, Duration::from_millis(200))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}
