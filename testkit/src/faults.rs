//! A fault-injecting HTTP proxy in front of the real control plane ([`crate::cluster`]): what a
//! real API server cannot do for a test on demand (a 500 on a chosen request, latency, a dropped
//! connection, a watch that ends).
//!
//! # Design
//! `kubectl ──http──▶ FaultProxy (127.0.0.1:free) ──http──▶ kubectl proxy --port=0 ──https+client cert──▶ kube-apiserver`
//!
//! The proxy speaks plain HTTP/1.1 to its clients (the kubeconfigs it writes say
//! `server: http://127.0.0.1:PORT` and hold no credentials) and forwards to a `kubectl proxy`
//! child that holds the admin kubeconfig and does TLS with the client certificate. So the proxy
//! needs no TLS stack and never sees a key, and the API server still authenticates, authorizes,
//! validates and stores every request that gets through. Each client connection carries one
//! request (`Connection: close` both ways), so the proxy never has to frame keep-alive bodies;
//! response bodies are copied as they arrive, so watches stream.
//!
//! # Faults
//! A [`Rule`] selects requests by HTTP method, path ([`PathMatch`]: exact, prefix, or a pattern
//! whose `*` stands for one path segment), whether the query asks for a dry run (`dryRun=All`) or
//! a watch, and which matches it acts on ([`Times`]). The selection is by what goes over the wire,
//! not by which kubectl command sent it, so `kubectl apply --server-side`, `kubectl patch` and
//! `kubectl scale` that write the same object are selected alike. [`Fault`]s: answer a status
//! with a Kubernetes `Status` body, add latency, drop the connection without answering, end a
//! watch after N events or after a duration (with the chunked terminator a server sends when a
//! watch times out). Every request is recorded ([`Seen`]).
//!
//! # Use
//! ```no_run
//! use testkit::cluster::RealCluster;
//! use testkit::faults::{Fault, FaultProxy, Rule};
//! let proxy = FaultProxy::start(&RealCluster::shared().kubeconfig);
//! proxy.add(Rule::new(Fault::status(500, "etcdserver: request timed out")).method("PATCH")
//!     .path("/apis/apps/v1/namespaces/t1/deployments/api").dry_run(false).nth(1));
//! let kubeconfig = proxy.write_kubeconfig(&std::env::temp_dir(), &["production"], "t1");
//! # let _ = kubeconfig;
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Which paths a [`Rule`] selects.
#[derive(Clone, Debug)]
pub enum PathMatch {
    Any,
    Exact(String),
    Prefix(String),
    /// Segment by segment; `*` matches any one segment (`/apis/apps/v1/namespaces/*/deployments/*`).
    Pattern(String),
}

impl PathMatch {
    fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Any => true,
            PathMatch::Exact(p) => path == p,
            PathMatch::Prefix(p) => path.starts_with(p.as_str()),
            PathMatch::Pattern(p) => {
                let (want, have): (Vec<&str>, Vec<&str>) = (p.split('/').collect(), path.split('/').collect());
                want.len() == have.len() && want.iter().zip(&have).all(|(w, h)| *w == "*" || w == h)
            }
        }
    }
}

/// Which of a rule's matches it acts on.
#[derive(Clone, Copy, Debug)]
pub enum Times {
    Always,
    /// Only the n-th matching request (1-based); the others pass through.
    Nth(usize),
}

/// What a rule does to the requests it acts on.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer `code` with a Kubernetes `Status` body carrying `message` (the request is not forwarded).
    Status { code: u16, message: String },
    /// Wait, then forward. Latency rules add up and combine with one other fault.
    Delay(Duration),
    /// Read the request, then close the connection without answering (nothing is forwarded).
    Drop,
    /// Forward; end the (chunked) response body cleanly after this many newline-terminated events.
    EndWatchAfterEvents(usize),
    /// Forward; end the (chunked) response body cleanly once this long has passed.
    EndWatchAfter(Duration),
}

impl Fault {
    pub fn status(code: u16, message: &str) -> Fault {
        Fault::Status { code, message: message.to_string() }
    }
}

/// One fault and the requests it selects; every unset criterion matches anything.
#[derive(Clone, Debug)]
pub struct Rule {
    method: Option<String>,
    path: PathMatch,
    dry_run: Option<bool>,
    watch: Option<bool>,
    times: Times,
    fault: Fault,
}

impl Rule {
    /// `fault` on every request, until narrowed.
    pub fn new(fault: Fault) -> Rule {
        Rule { method: None, path: PathMatch::Any, dry_run: None, watch: None, times: Times::Always, fault }
    }
    /// Only this HTTP method (`GET`, `PATCH`…).
    pub fn method(mut self, method: &str) -> Rule {
        self.method = Some(method.to_ascii_uppercase());
        self
    }
    /// Only this exact path (without the query).
    pub fn path(mut self, path: &str) -> Rule {
        self.path = PathMatch::Exact(path.to_string());
        self
    }
    /// Only paths starting with `prefix`.
    pub fn path_prefix(mut self, prefix: &str) -> Rule {
        self.path = PathMatch::Prefix(prefix.to_string());
        self
    }
    /// Only paths matching `pattern`, where a `*` segment matches any one segment.
    pub fn path_pattern(mut self, pattern: &str) -> Rule {
        self.path = PathMatch::Pattern(pattern.to_string());
        self
    }
    /// Only dry runs (`dryRun` in the query) when `true`, only real requests when `false`.
    pub fn dry_run(mut self, dry_run: bool) -> Rule {
        self.dry_run = Some(dry_run);
        self
    }
    /// Only watches (`watch=true`/`watch=1` in the query) when `true`, only other requests when `false`.
    pub fn watch(mut self, watch: bool) -> Rule {
        self.watch = Some(watch);
        self
    }
    /// Only the n-th (1-based) request that matches the other criteria.
    pub fn nth(mut self, n: usize) -> Rule {
        self.times = Times::Nth(n);
        self
    }

    fn selects(&self, r: &Seen) -> bool {
        self.method.as_deref().is_none_or(|m| m == r.method)
            && self.path.matches(&r.path)
            && self.dry_run.is_none_or(|d| d == r.dry_run())
            && self.watch.is_none_or(|w| w == r.watch())
    }
}

/// A request the proxy received, and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?` (empty when there is none).
    pub query: String,
    /// The status the client got: the fault's, the server's, or `None` (dropped, or no answer).
    pub status: Option<u16>,
    /// Whether a fault other than latency acted on it.
    pub faulted: bool,
}

impl Seen {
    fn param(&self, name: &str) -> Option<&str> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then_some(v)
        })
    }
    /// `dryRun` is in the query (kubectl `--dry-run=server` sends `dryRun=All`).
    pub fn dry_run(&self) -> bool {
        self.param("dryRun").is_some()
    }
    pub fn watch(&self) -> bool {
        matches!(self.param("watch"), Some("true" | "1"))
    }
    /// A request that can change stored state: POST, PUT, PATCH or DELETE, not a dry run, not an
    /// access review (`kubectl auth can-i` POSTs those; they store nothing).
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
            && !self.dry_run()
            && !self.path.ends_with("accessreviews")
            && !self.path.ends_with("rulesreviews")
    }
}

struct RuleState {
    rule: Rule,
    matched: usize,
}

struct Inner {
    rules: Mutex<Vec<RuleState>>,
    seen: Mutex<Vec<Seen>>,
    stop: AtomicBool,
    upstream: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running proxy; dropping it stops it, its `kubectl proxy` child and every open stream.
pub struct FaultProxy {
    inner: Arc<Inner>,
    addr: String,
    accept: Option<JoinHandle<()>>,
    upstream: Child,
    watchdog: Option<Child>,
}

impl FaultProxy {
    /// Starts `kubectl --kubeconfig=<kubeconfig> proxy --port=0` (the kubectl on PATH) and the
    /// proxy in front of it, on `127.0.0.1:<free port>`.
    ///
    /// # Panics
    /// When kubectl cannot be started or does not report its port, or no local port can be bound.
    pub fn start(kubeconfig: &Path) -> FaultProxy {
        let mut upstream = Command::new("kubectl")
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args(["proxy", "--port=0", "--address=127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start `kubectl proxy`");
        let mut line = String::new();
        let stdout = upstream.stdout.take().expect("kubectl proxy stdout");
        let mut reader = BufReader::new(stdout);
        let read = reader.read_line(&mut line);
        // "Starting to serve on 127.0.0.1:40123"
        let Some(port) = line.trim().strip_prefix("Starting to serve on ").map(str::to_string) else {
            let _ = upstream.kill();
            let _ = upstream.wait();
            panic!("`kubectl proxy` did not report its address ({read:?}): {line:?}");
        };
        // Keep draining its stdout so that it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        // Drop stops the child; this stops it when this process dies without unwinding (SIGKILL).
        let watchdog = Command::new("sh")
            .args(["-c", r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done; kill "$2" 2>/dev/null"#, "watchdog"])
            .arg(std::process::id().to_string())
            .arg(upstream.id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 for the fault proxy");
        let addr = listener.local_addr().expect("proxy address").to_string();
        let inner = Arc::new(Inner {
            rules: Mutex::default(),
            seen: Mutex::default(),
            stop: AtomicBool::new(false),
            upstream: port,
        });
        let accept = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("fault-proxy".into())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if inner.stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(conn) = conn else { continue };
                        let inner = inner.clone();
                        std::thread::spawn(move || serve(&inner, conn));
                    }
                })
                .expect("spawn the fault proxy thread")
        };
        FaultProxy { inner, addr, accept: Some(accept), upstream, watchdog }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a rule; rules are checked in the order added.
    pub fn add(&self, rule: Rule) {
        lock(&self.inner.rules).push(RuleState { rule, matched: 0 });
    }

    /// Removes every rule (the requests seen are kept).
    pub fn clear(&self) {
        lock(&self.inner.rules).clear();
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.inner.seen).clone()
    }

    /// The requests so far that could change stored state ([`Seen::is_write`]).
    pub fn writes(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(Seen::is_write).collect()
    }

    /// The text of a kubeconfig whose contexts all point at this proxy with default namespace
    /// `namespace`, the first one current. It holds no credentials: the proxy's upstream does.
    pub fn kubeconfig(&self, contexts: &[&str], namespace: &str) -> String {
        let mut ctxs = String::new();
        for name in contexts {
            ctxs.push_str(&format!(
                "- name: {name}\n  context: {{cluster: fault-proxy, user: fault-proxy, namespace: {namespace}}}\n"
            ));
        }
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fault-proxy\n  cluster: {{server: '{}'}}\n\
             users:\n- name: fault-proxy\n  user: {{}}\ncontexts:\n{ctxs}current-context: {}\n",
            self.url(),
            contexts.first().copied().unwrap_or("fault-proxy")
        )
    }

    /// Writes [`FaultProxy::kubeconfig`] to `<dir>/kubeconfig` and returns its path.
    pub fn write_kubeconfig(&self, dir: &Path, contexts: &[&str], namespace: &str) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig(contexts, namespace)).expect("write kubeconfig");
        path
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop; open streams end when their upstream (the child) goes away.
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let _ = self.upstream.kill();
        let _ = self.upstream.wait();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// A parsed HTTP/1.1 request: its line, its headers, its whole body.
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Reads lines up to the empty one; `None` at EOF before a complete head.
fn read_head(r: &mut impl BufRead) -> Option<(String, Vec<(String, String)>)> {
    let mut first = String::new();
    if r.read_line(&mut first).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Some((first.trim_end().to_string(), headers));
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
}

/// One chunk of a chunked body: `Some(data)`, empty data for the last chunk, `None` on EOF or garbage.
fn read_chunk(r: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut size = String::new();
    if r.read_line(&mut size).ok()? == 0 {
        return None;
    }
    let size = usize::from_str_radix(size.trim().split(';').next()?.trim(), 16).ok()?;
    let mut data = vec![0; size];
    r.read_exact(&mut data).ok()?;
    let mut crlf = String::new();
    r.read_line(&mut crlf).ok()?;
    if size == 0 {
        // Trailers end with an empty line; kube-apiserver sends none, so `crlf` was that line.
        return Some(Vec::new());
    }
    Some(data)
}

fn read_request(r: &mut impl BufRead) -> Option<Request> {
    let (line, headers) = read_head(r)?;
    let mut parts = line.split(' ');
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut body = Vec::new();
    if header(&headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let chunk = read_chunk(r)?;
            if chunk.is_empty() {
                break;
            }
            body.extend(chunk);
        }
    } else if let Some(n) = header(&headers, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(n, 0);
        r.read_exact(&mut body).ok()?;
    }
    Some(Request { method, target, headers, body })
}

fn reason(code: u16) -> (&'static str, &'static str) {
    // (HTTP reason phrase, Kubernetes StatusReason)
    match code {
        400 => ("Bad Request", "BadRequest"),
        401 => ("Unauthorized", "Unauthorized"),
        403 => ("Forbidden", "Forbidden"),
        404 => ("Not Found", "NotFound"),
        409 => ("Conflict", "Conflict"),
        410 => ("Gone", "Expired"),
        422 => ("Unprocessable Entity", "Invalid"),
        429 => ("Too Many Requests", "TooManyRequests"),
        503 => ("Service Unavailable", "ServiceUnavailable"),
        504 => ("Gateway Timeout", "Timeout"),
        _ => ("Internal Server Error", "InternalError"),
    }
}

fn record(inner: &Inner, seen: Seen) {
    lock(&inner.seen).push(seen);
}

fn serve(inner: &Inner, client: TcpStream) {
    let _ = client.set_nodelay(true);
    let Ok(read_half) = client.try_clone() else { return };
    let mut reader = BufReader::new(read_half);
    let Some(request) = read_request(&mut reader) else { return };
    let (path, query) = match request.target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (request.target.clone(), String::new()),
    };
    let mut seen = Seen { method: request.method.clone(), path, query, status: None, faulted: false };
    // Latency rules add up; the first other fault that acts wins.
    let (mut delay, mut fault) = (Duration::ZERO, None);
    for state in lock(&inner.rules).iter_mut() {
        if !state.rule.selects(&seen) {
            continue;
        }
        state.matched += 1;
        if let Times::Nth(n) = state.rule.times
            && state.matched != n
        {
            continue;
        }
        match &state.rule.fault {
            Fault::Delay(d) => delay += *d,
            other if fault.is_none() => fault = Some(other.clone()),
            _ => {}
        }
    }
    std::thread::sleep(delay);
    seen.faulted = fault.is_some();
    let mut client = client;
    match fault {
        Some(Fault::Status { code, message }) => {
            let (phrase, k8s_reason) = reason(code);
            let body = serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": k8s_reason, "code": code,
            })
            .to_string();
            let _ = write!(
                client,
                "HTTP/1.1 {code} {phrase}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            seen.status = Some(code);
            record(inner, seen);
        }
        Some(Fault::Drop) => {
            record(inner, seen);
            let _ = client.shutdown(Shutdown::Both);
        }
        end => {
            let end = match end {
                Some(Fault::EndWatchAfterEvents(n)) => End::Events(n),
                Some(Fault::EndWatchAfter(d)) => End::At(Instant::now() + d),
                _ => End::Never,
            };
            forward(inner, &request, seen, &mut client, end);
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}

enum End {
    Never,
    Events(usize),
    At(Instant),
}

/// Sends `request` upstream and copies the answer back as it arrives.
fn forward(inner: &Inner, request: &Request, mut seen: Seen, client: &mut TcpStream, end: End) {
    let Ok(mut up) = TcpStream::connect(&inner.upstream) else {
        record(inner, seen);
        return;
    };
    let _ = up.set_nodelay(true);
    let mut head = format!("{} {} HTTP/1.1\r\nHost: {}\r\n", request.method, request.target, inner.upstream);
    for (k, v) in &request.headers {
        let skip = ["host", "connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"];
        if !skip.iter().any(|s| k.eq_ignore_ascii_case(s)) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    if !request.body.is_empty() || matches!(request.method.as_str(), "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", request.body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    if up.write_all(head.as_bytes()).and_then(|()| up.write_all(&request.body)).is_err() {
        record(inner, seen);
        return;
    }
    let Ok(up_read) = up.try_clone() else { return };
    let mut up_reader = BufReader::new(up_read);
    let Some((status_line, headers)) = read_head(&mut up_reader) else {
        record(inner, seen);
        return;
    };
    seen.status = status_line.split(' ').nth(1).and_then(|c| c.parse().ok());
    record(inner, seen);
    let mut out = format!("{status_line}\r\n");
    for (k, v) in &headers {
        if !k.eq_ignore_ascii_case("connection") && !k.eq_ignore_ascii_case("keep-alive") {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    if client.write_all(out.as_bytes()).is_err() {
        return;
    }
    let chunked = header(&headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if matches!(end, End::Never) || !chunked {
        // Raw copy until the server closes (it does after one response: `Connection: close`).
        let mut buf = [0u8; 16 * 1024];
        loop {
            match up_reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if client.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        return;
    }
    // Chunk by chunk, on a reader thread, so that a deadline can end the stream between chunks.
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        while let Some(chunk) = read_chunk(&mut up_reader) {
            let last = chunk.is_empty();
            if tx.send(chunk).is_err() || last {
                break;
            }
        }
    });
    let mut events = 0;
    loop {
        let chunk = match end {
            End::At(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(c) => c,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => break,
                Err(_) => return,
            },
            _ => match rx.recv() {
                Ok(c) => c,
                Err(_) => return,
            },
        };
        if chunk.is_empty() {
            break;
        }
        let mut data = &chunk[..];
        let mut done = false;
        if let End::Events(n) = end {
            for (i, b) in chunk.iter().enumerate() {
                if *b == b'\n' {
                    events += 1;
                    if events >= n {
                        data = &chunk[..=i];
                        done = true;
                        break;
                    }
                }
            }
        }
        if client.write_all(format!("{:x}\r\n", data.len()).as_bytes()).is_err()
            || client.write_all(data).and_then(|()| client.write_all(b"\r\n")).is_err()
        {
            break;
        }
        if done {
            break;
        }
    }
    let _ = client.write_all(b"0\r\n\r\n");
    let _ = up.shutdown(Shutdown::Both);
}
