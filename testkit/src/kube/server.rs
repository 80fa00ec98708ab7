//! The in-memory store and the HTTP handlers: routing of Kubernetes API paths, get/list/watch, create,
//! update, patch (merge, strategic, JSON, apply), delete, the scale subresource, dry runs, faults.

use super::discovery::{self, ResourceType};
use super::fields::{self, Conflict, Ownership};
use super::merge;
use super::objects::{self, Rollout};
use super::protobuf;
use super::schema::{self, Style};
use super::validation::{self, FieldError};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// (storage, namespace, name); namespace is empty for cluster-scoped objects.
pub type Key = (String, String, String);

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

/// A watch event in the store's history.
#[derive(Clone, Debug)]
pub struct Event {
    pub rv: u64,
    pub key: Key,
    pub kind: &'static str,
    pub object: Value,
}

/// One injected failure answered instead of the real operation.
#[derive(Clone, Debug)]
pub struct Failure {
    pub storage: String,
    pub name: String,
    pub status: u16,
    pub message: String,
}

/// Injected faults.
#[derive(Default, Debug)]
pub struct Faults {
    pub fail_next_patch: Vec<Failure>,
    pub fail_on_dry_run: Vec<Failure>,
    pub conflict_on_apply: BTreeMap<(String, String), String>,
    pub rollout: BTreeMap<(String, String), Rollout>,
    pub denied: BTreeSet<(String, String)>,
    /// Emulate the HPA controller: keep every HPA target's replicas within [min, max].
    pub hpa_controller: bool,
}

/// Everything behind the lock.
#[derive(Default)]
pub struct State {
    pub objects: BTreeMap<Key, Value>,
    pub ownership: BTreeMap<Key, Ownership>,
    pub rv: u64,
    pub events: Vec<Event>,
    pub log: Vec<RecordedRequest>,
    pub faults: Faults,
    pub next_uid: u64,
    /// Rollouts that converge at the given instant.
    pub pending: Vec<(Key, Instant)>,
}

/// State shared by the server thread, the handler threads and the `FakeKube` handle.
pub struct Shared {
    pub state: Mutex<State>,
    pub changed: Condvar,
    pub shutdown: AtomicBool,
    pub address: String,
    pub token: String,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// An error answered as a `Status` object.
#[derive(Debug)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    pub fn new(code: u16, message: impl Into<String>) -> ApiError {
        ApiError { code, reason: reason_for(code), message: message.into(), details: Value::Null }
    }

    fn with_details(mut self, t: &ResourceType, name: &str) -> ApiError {
        self.details = json!({"name": name, "group": t.group, "kind": t.plural});
        self
    }

    fn not_found(t: &ResourceType, name: &str) -> ApiError {
        ApiError::new(404, format!("{} \"{name}\" not found", t.qualified_plural())).with_details(t, name)
    }

    fn invalid(t: &ResourceType, name: &str, errs: &[FieldError]) -> ApiError {
        let rendered: Vec<String> = errs.iter().map(FieldError::render).collect();
        let list = if rendered.len() == 1 { rendered[0].clone() } else { format!("[{}]", rendered.join(", ")) };
        let mut e = ApiError::new(422, format!("{} \"{name}\" is invalid: {list}", t.qualified_kind()));
        e.details = json!({"name": name, "group": t.group, "kind": t.kind,
                           "causes": errs.iter().map(FieldError::cause).collect::<Vec<_>>()});
        e
    }

    pub fn to_status(&self) -> Value {
        let mut s = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": self.message, "reason": self.reason, "code": self.code});
        if self.reason.is_empty() {
            s.as_object_mut().map(|m| m.remove("reason"));
        }
        if !self.details.is_null() {
            s["details"] = self.details.clone();
        }
        s
    }
}

/// The `reason` the apiserver uses for an HTTP status.
pub fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

/// What a handler answers.
pub enum Reply {
    Json(u16, Value),
    Watch(WatchSpec),
}

/// A watch request, served by streaming.
pub struct WatchSpec {
    t: &'static ResourceType,
    namespace: Option<String>,
    selector: Selector,
    since: Option<u64>,
    deadline: Instant,
    bookmarks: bool,
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

fn percent_decode(s: &str) -> String {
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
    pub user_agent: String,
    pub body: Vec<u8>,
    /// `Warning` headers for the response (unknown fields under `fieldValidation=Warn`).
    pub warnings: std::cell::RefCell<Vec<String>>,
}

impl Req {
    fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn dry_run(&self) -> bool {
        self.param("dryRun").is_some()
    }

    fn manager(&self, default: &str) -> String {
        match self.param("fieldManager") {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => {
                let ua = self.user_agent.split('/').next().unwrap_or("");
                if ua.is_empty() { default.to_string() } else { ua.to_string() }
            }
        }
    }
}

/// Label or field selector: equality requirements only (`a=b`, `a==b`, `a!=b`, `a`).
#[derive(Clone, Debug, Default)]
struct Selector {
    fields: Vec<(String, String, bool)>,
    labels: Vec<(String, Option<String>, bool)>,
}

impl Selector {
    fn parse(field: Option<&str>, label: Option<&str>) -> Result<Selector, ApiError> {
        let mut s = Selector::default();
        for part in field.unwrap_or("").split(',').filter(|p| !p.is_empty()) {
            let (k, v, eq) = split_requirement(part);
            let Some(v) = v else { return Err(ApiError::new(400, format!("invalid field selector: {part}"))) };
            if k != "metadata.name" && k != "metadata.namespace" {
                return Err(ApiError::new(400, format!("field label not supported: {k}")));
            }
            s.fields.push((k, v, eq));
        }
        for part in label.unwrap_or("").split(',').filter(|p| !p.is_empty()) {
            let (k, v, eq) = split_requirement(part);
            s.labels.push((k, v, eq));
        }
        Ok(s)
    }

    fn matches(&self, obj: &Value) -> bool {
        let fields_ok = self.fields.iter().all(|(k, v, eq)| {
            let actual = match k.as_str() {
                "metadata.name" => obj["metadata"]["name"].as_str(),
                _ => obj["metadata"]["namespace"].as_str(),
            };
            (actual == Some(v.as_str())) == *eq
        });
        let labels_ok = self.labels.iter().all(|(k, v, eq)| {
            let actual = obj["metadata"]["labels"][k.as_str()].as_str();
            match v {
                None => actual.is_some() == *eq,
                Some(v) => (actual == Some(v.as_str())) == *eq,
            }
        });
        fields_ok && labels_ok
    }
}

fn split_requirement(part: &str) -> (String, Option<String>, bool) {
    if let Some((k, v)) = part.split_once("!=") {
        return (k.trim().to_string(), Some(v.trim().to_string()), false);
    }
    if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return (k.trim().to_string(), Some(v.trim().to_string()), true);
    }
    if let Some(k) = part.strip_prefix('!') {
        return (k.trim().to_string(), None, false);
    }
    (part.trim().to_string(), None, true)
}

/// Serves one request on its own thread: watches stream until their deadline, the client leaves, or
/// the server shuts down.
pub fn serve(shared: &Arc<Shared>, mut request: tiny_http::Request) {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    fn header_of(request: &tiny_http::Request, name: &'static str) -> Option<String> {
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
        user_agent: user_agent.clone().unwrap_or_default(),
        body,
        warnings: std::cell::RefCell::default(),
    };
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
            let data = serde_json::to_vec(&value).unwrap_or_default();
            let mut response = tiny_http::Response::from_data(data).with_status_code(code).with_header(json_header());
            for w in req.warnings.borrow().iter() {
                let value = format!("299 - {}", serde_json::to_string(w).unwrap_or_default());
                if let Ok(h) = tiny_http::Header::from_bytes(&b"Warning"[..], value.as_bytes()) {
                    response.add_header(h);
                }
            }
            let _ = request.respond(response);
        }
        Reply::Watch(spec) => {
            let mut writer = request.into_writer();
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
            if writer.write_all(head.as_bytes()).and_then(|()| writer.flush()).is_ok() {
                stream_watch(shared, &spec, &mut writer);
            }
        }
    }
}

fn json_header() -> tiny_http::Header {
    tiny_http::Header {
        field: "Content-Type".parse().expect("static header name"),
        value: "application/json".parse().expect("static header value"),
    }
}

fn write_chunk(writer: &mut dyn Write, data: &[u8]) -> std::io::Result<()> {
    write!(writer, "{:x}\r\n", data.len())?;
    writer.write_all(data)?;
    writer.write_all(b"\r\n")?;
    writer.flush()
}

fn event_line(kind: &str, object: Value) -> Vec<u8> {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    line
}

fn stream_watch(shared: &Arc<Shared>, spec: &WatchSpec, writer: &mut dyn Write) {
    let t = spec.t;
    let matches = |key: &Key, obj: &Value| {
        key.0 == t.storage && spec.namespace.as_ref().is_none_or(|ns| *ns == key.1) && spec.selector.matches(obj)
    };
    let mut state = shared.lock();
    let mut last = match spec.since {
        Some(rv) => rv,
        None => {
            // resourceVersion 0 or absent: synthetic ADDED events for the current state first.
            let initial: Vec<Vec<u8>> = state
                .objects
                .iter()
                .filter(|(k, o)| matches(k, o))
                .map(|(_, o)| event_line("ADDED", present(t, o)))
                .collect();
            let rv = state.rv;
            drop(state);
            for line in initial {
                if write_chunk(writer, &line).is_err() {
                    return;
                }
            }
            state = shared.lock();
            rv
        }
    };
    let mut last_sent = Instant::now();
    loop {
        let lines: Vec<Vec<u8>> = state
            .events
            .iter()
            .filter(|e| e.rv > last && matches(&e.key, &e.object))
            .map(|e| event_line(e.kind, present(t, &e.object)))
            .collect();
        last = state.rv;
        drop(state);
        for line in &lines {
            if write_chunk(writer, line).is_err() {
                return;
            }
            last_sent = Instant::now();
        }
        if shared.shutdown.load(Ordering::SeqCst) || Instant::now() >= spec.deadline {
            let _ = writer.write_all(b"0\r\n\r\n").and_then(|()| writer.flush());
            return;
        }
        // Bookmarks keep the stream alive and tell us when the client has gone away.
        if spec.bookmarks && last_sent.elapsed() >= Duration::from_secs(1) {
            let bookmark = json!({"kind": t.kind, "apiVersion": t.api_version(),
                                  "metadata": {"resourceVersion": last.to_string()}});
            if write_chunk(writer, &event_line("BOOKMARK", bookmark)).is_err() {
                return;
            }
            last_sent = Instant::now();
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

/// The stored object as served by type `t` (HPAs are stored as autoscaling/v2).
pub fn present(t: &ResourceType, stored: &Value) -> Value {
    if t.storage == "autoscaling/horizontalpodautoscalers" && t.version == "v1" {
        return objects::hpa_v2_to_v1(stored);
    }
    let mut o = stored.clone();
    o["apiVersion"] = json!(t.api_version());
    o["kind"] = json!(t.kind);
    o
}

/// An object as sent by a client for type `t`, converted to the storage version.
fn to_storage(t: &ResourceType, sent: &Value) -> Value {
    if t.storage == "autoscaling/horizontalpodautoscalers" && t.version == "v1" {
        return objects::hpa_v1_to_v2(sent);
    }
    sent.clone()
}

fn not_found_path() -> ApiError {
    ApiError::new(404, "the server could not find the requested resource")
}

fn route(shared: &Arc<Shared>, req: &Req) -> Result<Reply, ApiError> {
    let segs: Vec<&str> = req.path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let ok = |v: Value| Ok(Reply::Json(200, v));
    if req.method == "GET" {
        match segs.as_slice() {
            ["version"] => return ok(discovery::version()),
            ["api"] => return ok(discovery::api_versions(&shared.address)),
            ["apis"] => return ok(discovery::api_group_list()),
            ["apis", group] => return discovery::api_group(group).map_or_else(|| Err(not_found_path()), ok),
            ["api", "v1"] => return discovery::api_resource_list("", "v1").map_or_else(|| Err(not_found_path()), ok),
            ["apis", group, version] => {
                return discovery::api_resource_list(group, version).map_or_else(|| Err(not_found_path()), ok);
            }
            ["openapi", "v3"] => return ok(discovery::openapi_v3_index()),
            ["openapi", "v3", rest @ ..] => {
                return discovery::openapi_v3_document(&rest.join("/")).map_or_else(|| Err(not_found_path()), ok);
            }
            _ => {}
        }
    }
    let (group, version, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] if !rest.is_empty() => ("", "v1", rest),
        ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
        _ => return Err(not_found_path()),
    };
    let (namespace, tail) =
        if rest[0] == "namespaces" && rest.len() >= 3 { (Some(rest[1].to_string()), &rest[2..]) } else { (None, rest) };
    let t = discovery::find(group, version, tail[0]).ok_or_else(not_found_path)?;
    if t.namespaced != namespace.is_some() && tail.len() > 1 {
        return Err(not_found_path());
    }
    let name = tail.get(1).copied();
    let sub = tail.get(2).copied();
    if tail.len() > 3 || sub.is_some_and(|s| !t.subresources.contains(&s)) {
        return Err(not_found_path());
    }
    let ns = namespace.clone().unwrap_or_default();
    match (req.method.as_str(), name, sub) {
        ("GET", None, None) => list_or_watch(shared, req, t, namespace),
        ("GET", Some(name), None | Some("status")) => {
            let state = shared.lock();
            let obj = state.objects.get(&key(t, &ns, name)).ok_or_else(|| ApiError::not_found(t, name))?;
            ok(present(t, obj))
        }
        ("GET", Some(name), Some("scale")) => {
            let state = shared.lock();
            let obj = state.objects.get(&key(t, &ns, name)).ok_or_else(|| ApiError::not_found(t, name))?;
            ok(objects::scale_of(obj))
        }
        ("POST", None, None) => create(shared, req, t, &ns),
        ("PUT", Some(name), sub) => update(shared, req, t, &ns, name, sub),
        ("PATCH", Some(name), sub) => patch(shared, req, t, &ns, name, sub),
        ("DELETE", Some(name), None) => delete(shared, req, t, &ns, name),
        _ => Err(ApiError::new(405, "the server does not allow this method on the requested resource")),
    }
}

fn key(t: &ResourceType, ns: &str, name: &str) -> Key {
    (t.storage.to_string(), if t.namespaced { ns.to_string() } else { String::new() }, name.to_string())
}

fn list_or_watch(
    shared: &Arc<Shared>,
    req: &Req,
    t: &'static ResourceType,
    ns: Option<String>,
) -> Result<Reply, ApiError> {
    let selector = Selector::parse(req.param("fieldSelector"), req.param("labelSelector"))?;
    if matches!(req.param("watch"), Some("true" | "1")) {
        let since = req
            .param("resourceVersion")
            .filter(|v| !v.is_empty() && *v != "0")
            .map(|v| v.parse::<u64>().map_err(|_| ApiError::new(400, format!("invalid resource version: {v}"))));
        let since = since.transpose()?;
        let timeout = req.param("timeoutSeconds").and_then(|s| s.parse::<u64>().ok()).unwrap_or(1800);
        return Ok(Reply::Watch(WatchSpec {
            t,
            namespace: ns,
            selector,
            since,
            deadline: Instant::now() + Duration::from_secs(timeout.min(3600)),
            bookmarks: matches!(req.param("allowWatchBookmarks"), Some("true" | "1")),
        }));
    }
    let state = shared.lock();
    let items: Vec<Value> = state
        .objects
        .iter()
        .filter(|(k, o)| k.0 == t.storage && ns.as_ref().is_none_or(|n| *n == k.1) && selector.matches(o))
        .map(|(_, o)| present(t, o))
        .collect();
    Ok(Reply::Json(
        200,
        json!({"kind": format!("{}List", t.kind), "apiVersion": t.api_version(),
               "metadata": {"resourceVersion": state.rv.to_string()}, "items": items}),
    ))
}

/// Parses a request body: JSON, YAML (apply patches may be YAML), or the protobuf that `kubectl
/// autoscale` sends for HorizontalPodAutoscalers.
fn decode_body(req: &Req) -> Result<Value, ApiError> {
    if req.content_type.starts_with("application/vnd.kubernetes.protobuf") {
        return protobuf::decode(&req.body)
            .map_err(|e| ApiError::new(415, format!("failed to decode protobuf body: {e}")));
    }
    if let Ok(v) = serde_json::from_slice::<Value>(&req.body) {
        return Ok(v);
    }
    if req.content_type.contains("yaml") {
        let text = String::from_utf8_lossy(&req.body);
        return serde_yaml::from_str::<Value>(&text)
            .map_err(|e| ApiError::new(400, format!("error decoding YAML: {e}")));
    }
    Err(ApiError::new(
        400,
        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
    ))
}

fn check_namespace(state: &State, t: &ResourceType, ns: &str) -> Result<(), ApiError> {
    if t.namespaced && !state.objects.contains_key(&("namespaces".to_string(), String::new(), ns.to_string())) {
        return Err(ApiError::new(404, format!("namespaces \"{ns}\" not found"))
            .with_details(discovery::by_kind("namespaces").unwrap_or(t), ns));
    }
    Ok(())
}

fn check_type_meta(t: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    if let Some(av) = obj["apiVersion"].as_str()
        && av != t.api_version()
    {
        return Err(ApiError::new(
            400,
            format!("the API version in the data ({av}) does not match the expected API version ({})", t.api_version()),
        ));
    }
    if let Some(kind) = obj["kind"].as_str()
        && kind != t.kind
    {
        return Err(ApiError::new(
            400,
            format!("the kind in the data ({kind}) does not match the expected kind ({})", t.kind),
        ));
    }
    Ok(())
}

/// Unknown fields in a write: an apply patch fails like structured-merge-diff does (a 500 without a
/// reason, as real servers answer); other writes fail under `fieldValidation=Strict` and otherwise
/// lose the fields, as the real decoder drops them.
fn check_fields(
    req: &Req,
    t: &ResourceType,
    obj: &mut Value,
    is_apply: bool,
    ns: &str,
    name: &str,
) -> Result<(), ApiError> {
    let Some(node) = schema::schema(&t.api_version(), t.kind) else { return Ok(()) };
    if is_apply {
        let unknown = schema::unknown_fields(obj, node, Style::Apply);
        if let Some(first) = unknown.first() {
            let gvknn = if t.namespaced { format!("{ns}/{name}") } else { name.to_string() };
            let mut e = ApiError::new(
                500,
                format!(
                    "failed to create typed patch object ({gvknn}; {}/{}, Kind={}): {first}: field not declared in schema",
                    t.group, t.version, t.kind
                ),
            );
            e.reason = "";
            return Err(e);
        }
        return Ok(());
    }
    let unknown = schema::unknown_fields(obj, node, Style::Decoder);
    let validation = req.param("fieldValidation").unwrap_or("Warn");
    if validation == "Warn" {
        req.warnings.borrow_mut().extend(unknown.iter().map(|f| format!("unknown field \"{f}\"")));
    }
    if validation == "Strict" && !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
        return Err(ApiError::new(
            400,
            format!(
                "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                t.kind,
                t.version,
                t.kind,
                list.join(", ")
            ),
        ));
    }
    schema::prune(obj, node);
    Ok(())
}

/// What kind of write produced a new object version (for managedFields and ownership).
pub struct WriteOp<'a> {
    pub manager: String,
    pub subresource: Option<&'a str>,
    /// The applied configuration, for `Apply` operations.
    pub applied: Option<&'a Value>,
    pub force: bool,
    pub dry_run: bool,
}

/// Validates, defaults and stores a new version of an object (or only computes it, for dry runs).
/// Returns the stored object and whether it was created.
pub fn commit(
    state: &mut State,
    t: &ResourceType,
    k: &Key,
    new: Value,
    op: &WriteOp<'_>,
) -> Result<(Value, bool), ApiError> {
    let storage = t.storage;
    let name = k.2.as_str();
    let old = state.objects.get(k).cloned();
    let mut new = new;
    new["apiVersion"] =
        json!(discovery::TYPES.iter().find(|x| x.storage == storage).map_or(t.api_version(), |x| x.api_version()));
    new["kind"] = json!(t.kind);
    validation::canonicalize(storage, &mut new).map_err(|e| {
        ApiError::new(400, format!("{} in version \"{}\" cannot be handled as a {}: {e}", t.kind, t.version, t.kind))
    })?;
    if let Some(node) = schema::schema(new["apiVersion"].as_str().unwrap_or(""), t.kind) {
        schema::prune(&mut new, node);
    }
    objects::apply_defaults(storage, &mut new);
    if old.is_none() {
        let mut errs = validation::validate_name(storage, name);
        errs.extend(validation::validate(storage, &new));
        if !errs.is_empty() {
            return Err(ApiError::invalid(t, name, &errs));
        }
    } else {
        let errs = validation::validate(storage, &new);
        if !errs.is_empty() {
            return Err(ApiError::invalid(t, name, &errs));
        }
    }
    // Field ownership and managedFields (fixtures are written without a manager: nobody owns them).
    let mut ownership = state.ownership.get(k).cloned().unwrap_or_default();
    let before = old.clone().unwrap_or(Value::Null);
    let api_version = t.api_version();
    if !op.manager.is_empty() {
        match op.applied {
            Some(config) => {
                let conflicts = ownership.apply(&op.manager, &api_version, config, &before, &mut new, op.force);
                if !conflicts.is_empty() {
                    return Err(conflict_error(t, name, &conflicts));
                }
            }
            None => ownership.update(&op.manager, &api_version, op.subresource, &before, &new),
        }
    }
    let managed = ownership.render();
    match new["metadata"].as_object_mut() {
        Some(m) if managed.as_array().is_some_and(|a| !a.is_empty()) => {
            m.insert("managedFields".to_string(), managed);
        }
        Some(m) => {
            m.remove("managedFields");
        }
        None => {}
    }
    let mode =
        state.faults.rollout.get(&(storage.to_string(), name.to_string())).cloned().unwrap_or(Rollout::Immediate);
    let created = old.is_none();
    if let Some(old) = &old {
        // Server-managed fields come from the stored object, whatever the client sent.
        for f in ["uid", "creationTimestamp", "generation", "resourceVersion"] {
            new["metadata"][f] = old["metadata"][f].clone();
        }
        if op.subresource != Some("status") {
            new["status"] = old["status"].clone();
        }
        if new == *old {
            return Ok((old.clone(), false));
        }
        if new["spec"] != old["spec"] {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            new["metadata"]["generation"] = json!(generation);
        }
        // The revision annotation comes from the deployment controller, so a dry run does not show it.
        if storage == "apps/deployments" && !op.dry_run && new["spec"]["template"] != old["spec"]["template"] {
            let rev = old["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                .as_str()
                .and_then(|r| r.parse::<i64>().ok())
                .unwrap_or(1);
            new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!((rev + 1).to_string());
        }
    } else {
        state.next_uid += 1;
        let uid = format!("00000000-0000-4000-8000-{:012x}", state.next_uid);
        let meta = &mut new["metadata"];
        meta["uid"] = json!(uid);
        meta["creationTimestamp"] = json!(objects::now_rfc3339());
        meta["generation"] = json!(1);
        if storage == "apps/deployments" {
            meta["annotations"]["deployment.kubernetes.io/revision"] = json!("1");
        }
        if storage == "namespaces" {
            new["spec"] = json!({"finalizers": ["kubernetes"]});
            new["status"] = json!({"phase": "Active"});
            new["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
        }
    }
    match storage {
        "apps/deployments" | "apps/statefulsets" => {
            // A dry run shows the object as stored, before any controller has acted on it.
            let spec_changed = old.as_ref().is_none_or(|o| o["spec"] != new["spec"]);
            if spec_changed && !op.dry_run {
                objects::set_workload_status(storage, &mut new, &mode, false);
            }
        }
        "autoscaling/horizontalpodautoscalers" if created && !op.dry_run => {
            let target = &new["spec"]["scaleTargetRef"];
            let target_storage = discovery::by_kind(target["kind"].as_str().unwrap_or("")).map(|t| t.storage);
            let replicas = target_storage
                .and_then(|s| {
                    state.objects.get(&(s.to_string(), k.1.clone(), target["name"].as_str().unwrap_or("").to_string()))
                })
                .and_then(|o| o["spec"]["replicas"].as_i64())
                .unwrap_or(0);
            objects::set_hpa_status(&mut new, replicas);
        }
        _ => {}
    }
    if op.dry_run {
        if created {
            new["metadata"].as_object_mut().map(|m| m.remove("resourceVersion"));
        }
        return Ok((new, created));
    }
    state.rv += 1;
    new["metadata"]["resourceVersion"] = json!(state.rv.to_string());
    state.objects.insert(k.clone(), new.clone());
    state.ownership.insert(k.clone(), ownership);
    let rv = state.rv;
    state.events.push(Event {
        rv,
        key: k.clone(),
        kind: if created { "ADDED" } else { "MODIFIED" },
        object: new.clone(),
    });
    if let Rollout::DelayedMs(ms) = mode
        && matches!(storage, "apps/deployments" | "apps/statefulsets")
        && old.as_ref().is_none_or(|o| o["spec"] != new["spec"])
    {
        state.pending.push((k.clone(), Instant::now() + Duration::from_millis(ms)));
    }
    Ok((new, created))
}

fn conflict_error(t: &ResourceType, name: &str, conflicts: &[Conflict]) -> ApiError {
    let lines: Vec<String> = conflicts
        .iter()
        .map(|c| format!("conflict with \"{}\" using {}: {}", c.manager, c.api_version, c.field))
        .collect();
    let message = if lines.len() == 1 {
        format!("Apply failed with 1 conflict: {}", lines[0])
    } else {
        format!("Apply failed with {} conflicts: {}", lines.len(), lines.join("\n"))
    };
    let mut e = ApiError::new(409, message);
    e.details = json!({
        "name": name, "group": t.group, "kind": t.plural,
        "causes": conflicts.iter().map(|c| json!({
            "reason": "FieldManagerConflict",
            "message": format!("conflict with \"{}\" using {}", c.manager, c.api_version),
            "field": c.field
        })).collect::<Vec<_>>()
    });
    e
}

/// Records a converged rollout for a workload whose delayed settle time has come.
pub fn settle_due(shared: &Shared) {
    let mut state = shared.lock();
    let now = Instant::now();
    let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut state.pending).into_iter().partition(|(_, at)| *at <= now);
    state.pending = later;
    if due.is_empty() {
        return;
    }
    for (k, _) in due {
        let Some(mut obj) = state.objects.get(&k).cloned() else { continue };
        objects::set_workload_status(&k.0, &mut obj, &Rollout::Immediate, true);
        state.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(state.rv.to_string());
        state.objects.insert(k.clone(), obj.clone());
        let rv = state.rv;
        state.events.push(Event { rv, key: k, kind: "MODIFIED", object: obj });
    }
    drop(state);
    shared.changed.notify_all();
}

fn injected(list: &mut Vec<Failure>, t: &ResourceType, name: &str, consume: bool) -> Option<ApiError> {
    let pos = list.iter().position(|f| f.storage == t.storage && f.name == name)?;
    let f = if consume { list.remove(pos) } else { list[pos].clone() };
    Some(ApiError::new(f.status, f.message).with_details(t, name))
}

fn check_faults(state: &mut State, req: &Req, t: &ResourceType, name: &str) -> Result<(), ApiError> {
    if req.dry_run() {
        if let Some(e) = injected(&mut state.faults.fail_on_dry_run, t, name, false) {
            return Err(e);
        }
    } else if matches!(req.method.as_str(), "PATCH" | "PUT")
        && let Some(e) = injected(&mut state.faults.fail_next_patch, t, name, true)
    {
        return Err(e);
    }
    Ok(())
}

/// The HPA controller, when enabled: every HPA target with replicas outside [minReplicas,
/// maxReplicas] is scaled into the range through its scale subresource (manager
/// `kube-controller-manager`), and the HPA status follows. A target at 0 replicas is left alone:
/// autoscaling is disabled then.
pub fn reconcile_hpas(state: &mut State) {
    if !state.faults.hpa_controller {
        return;
    }
    let hpa_type = discovery::find("autoscaling", "v2", "horizontalpodautoscalers").expect("served");
    let hpas: Vec<(Key, Value)> =
        state.objects.iter().filter(|(k, _)| k.0 == hpa_type.storage).map(|(k, v)| (k.clone(), v.clone())).collect();
    for (hk, hpa) in hpas {
        let target = &hpa["spec"]["scaleTargetRef"];
        let Some(tt) = discovery::by_kind(target["kind"].as_str().unwrap_or("")) else { continue };
        let tk: Key = (tt.storage.to_string(), hk.1.clone(), target["name"].as_str().unwrap_or("").to_string());
        let Some(obj) = state.objects.get(&tk).cloned() else { continue };
        let current = obj["spec"]["replicas"].as_i64().unwrap_or(1);
        if current == 0 {
            continue;
        }
        let min = hpa["spec"]["minReplicas"].as_i64().unwrap_or(1);
        let max = hpa["spec"]["maxReplicas"].as_i64().unwrap_or(current).max(min);
        let desired = current.clamp(min, max);
        let controller = |sub: &'static str| WriteOp {
            manager: "kube-controller-manager".to_string(),
            subresource: Some(sub),
            applied: None,
            force: false,
            dry_run: false,
        };
        if desired != current {
            let mut scaled = obj.clone();
            scaled["spec"]["replicas"] = json!(desired);
            let _ = commit(state, tt, &tk, scaled, &controller("scale"));
        }
        let mut new_hpa = hpa.clone();
        if new_hpa["status"]["desiredReplicas"] != json!(desired)
            || new_hpa["status"]["currentReplicas"] != json!(desired)
        {
            objects::set_hpa_status(&mut new_hpa, desired);
            if desired != current {
                new_hpa["status"]["lastScaleTime"] = json!(objects::now_rfc3339());
            }
            let _ = commit(state, hpa_type, &hk, new_hpa, &controller("status"));
        }
    }
}

fn finish(
    shared: &Shared,
    mut state: MutexGuard<'_, State>,
    t: &ResourceType,
    result: (Value, bool),
    sub: Option<&str>,
) -> Result<Reply, ApiError> {
    reconcile_hpas(&mut state);
    drop(state);
    shared.changed.notify_all();
    let (obj, created) = result;
    let body = if sub == Some("scale") { objects::scale_of(&obj) } else { present(t, &obj) };
    Ok(Reply::Json(if created { 201 } else { 200 }, body))
}

fn create(shared: &Arc<Shared>, req: &Req, t: &'static ResourceType, ns: &str) -> Result<Reply, ApiError> {
    let body = decode_body(req)?;
    check_type_meta(t, &body)?;
    if t.storage == "authorization.k8s.io/selfsubjectaccessreviews" {
        let attrs = &body["spec"]["resourceAttributes"];
        let verb = attrs["verb"].as_str().unwrap_or("").to_string();
        let resource = attrs["resource"].as_str().unwrap_or("").to_string();
        let denied =
            shared.lock().faults.denied.iter().any(|(v, r)| (v == &verb || v == "*") && (r == &resource || r == "*"));
        let mut reply = body.clone();
        reply["apiVersion"] = json!(t.api_version());
        reply["kind"] = json!(t.kind);
        reply["status"] = if denied {
            json!({"allowed": false, "reason": "denied by the fake API server's fault injection"})
        } else {
            json!({"allowed": true, "reason": "the fake API server allows everything"})
        };
        return Ok(Reply::Json(201, reply));
    }
    let name = body["metadata"]["name"].as_str().unwrap_or("").to_string();
    if name.is_empty() {
        return Err(ApiError::invalid(
            t,
            "",
            &[FieldError {
                field: "metadata.name".to_string(),
                reason: "FieldValueRequired",
                value: String::new(),
                detail: "name or generateName is required".to_string(),
            }],
        ));
    }
    if let Some(body_ns) = body["metadata"]["namespace"].as_str()
        && t.namespaced
        && body_ns != ns
    {
        return Err(ApiError::new(
            400,
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let mut state = shared.lock();
    check_namespace(&state, t, ns)?;
    check_faults(&mut state, req, t, &name)?;
    let k = key(t, ns, &name);
    if state.objects.contains_key(&k) {
        let mut e =
            ApiError::new(409, format!("{} \"{name}\" already exists", t.qualified_plural())).with_details(t, &name);
        e.reason = "AlreadyExists";
        return Err(e);
    }
    let mut body = body;
    check_fields(req, t, &mut body, false, ns, &name)?;
    let mut obj = to_storage(t, &body);
    if t.namespaced {
        obj["metadata"]["namespace"] = json!(ns);
    }
    strip_server_fields(&mut obj);
    let op = WriteOp {
        manager: req.manager("unknown"),
        subresource: None,
        applied: None,
        force: false,
        dry_run: req.dry_run(),
    };
    let result = commit(&mut state, t, &k, obj, &op)?;
    finish(shared, state, t, result, None)
}

fn strip_server_fields(obj: &mut Value) {
    if let Some(m) = obj["metadata"].as_object_mut() {
        for f in ["uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"] {
            m.remove(f);
        }
    }
}

fn stale_conflict(t: &ResourceType, name: &str) -> ApiError {
    ApiError::new(
        409,
        format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            t.qualified_plural()
        ),
    )
    .with_details(t, name)
}

fn update(
    shared: &Arc<Shared>,
    req: &Req,
    t: &'static ResourceType,
    ns: &str,
    name: &str,
    sub: Option<&str>,
) -> Result<Reply, ApiError> {
    let body = decode_body(req)?;
    let mut state = shared.lock();
    check_faults(&mut state, req, t, name)?;
    let k = key(t, ns, name);
    let Some(live) = state.objects.get(&k).cloned() else { return Err(ApiError::not_found(t, name)) };
    if let Some(rv) = body["metadata"]["resourceVersion"].as_str()
        && !rv.is_empty()
        && Some(rv) != live["metadata"]["resourceVersion"].as_str()
    {
        return Err(stale_conflict(t, name));
    }
    let new = match sub {
        Some("scale") => {
            let replicas = body["spec"]["replicas"].as_i64().unwrap_or(0);
            let mut new = live.clone();
            new["spec"]["replicas"] = json!(replicas);
            new
        }
        Some("status") => {
            let mut new = live.clone();
            new["status"] = to_storage(t, &body)["status"].clone();
            new
        }
        _ => {
            check_type_meta(t, &body)?;
            let mut body = body;
            check_fields(req, t, &mut body, false, ns, name)?;
            let mut new = to_storage(t, &body);
            new["status"] = live["status"].clone();
            new
        }
    };
    let op = WriteOp {
        manager: req.manager("unknown"),
        subresource: sub,
        applied: None,
        force: false,
        dry_run: req.dry_run(),
    };
    let result = commit(&mut state, t, &k, new, &op)?;
    finish(shared, state, t, result, sub)
}

fn patch(
    shared: &Arc<Shared>,
    req: &Req,
    t: &'static ResourceType,
    ns: &str,
    name: &str,
    sub: Option<&str>,
) -> Result<Reply, ApiError> {
    let ct = req.content_type.split(';').next().unwrap_or("").trim().to_string();
    let is_apply = ct == "application/apply-patch+yaml" || ct == "application/apply-patch+cbor";
    let body = decode_body(req)?;
    let mut state = shared.lock();
    check_faults(&mut state, req, t, name)?;
    let k = key(t, ns, name);
    let live = state.objects.get(&k).cloned();
    if is_apply {
        check_type_meta(t, &body)?;
        if let Some(n) = body["metadata"]["name"].as_str()
            && n != name
        {
            return Err(ApiError::new(
                400,
                format!("the name of the object ({n}) does not match the name on the URL ({name})"),
            ));
        }
        if sub.is_none() {
            let mut body = body.clone();
            check_fields(req, t, &mut body, true, ns, name)?;
        }
        if sub.is_none()
            && !matches!(req.param("force"), Some("true" | "1"))
            && let Some(manager) = state.faults.conflict_on_apply.get(&(t.storage.to_string(), name.to_string()))
        {
            let field = fields::leaf_paths(&body).into_iter().next().unwrap_or_else(|| ".spec".to_string());
            let conflict = Conflict { manager: manager.clone(), api_version: t.api_version(), field };
            return Err(conflict_error(t, name, &[conflict]));
        }
        if live.is_none() {
            check_namespace(&state, t, ns)?;
        }
    }
    let Some(live) = live.or_else(|| is_apply.then(|| json!({"metadata": {"name": name, "namespace": ns}}))) else {
        return Err(ApiError::not_found(t, name));
    };
    // Patches are computed against the version the client addressed (HPA v1 is converted back).
    let mut view = match sub {
        Some("scale") => objects::scale_of(&live),
        _ => present(t, &live),
    };
    let created_by_apply = !state.objects.contains_key(&k);
    let precondition = body["metadata"]["resourceVersion"].as_str().map(str::to_string);
    match ct.as_str() {
        "application/merge-patch+json" => merge::merge_patch(&mut view, &body),
        "application/strategic-merge-patch+json" => {
            merge::strategic_merge(&mut view, &body).map_err(|e| ApiError::new(400, e))?;
        }
        "application/json-patch+json" => {
            merge::json_patch(&mut view, &body).map_err(|e| ApiError::new(422, e))?;
        }
        _ if is_apply => {
            // Merged below, by the ownership-aware commit.
        }
        other => {
            return Err(ApiError::new(
                415,
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other})"
                ),
            ));
        }
    }
    if sub.is_none() && !is_apply {
        check_fields(req, t, &mut view, false, ns, name)?;
    }
    if let Some(rv) = precondition
        && !created_by_apply
        && Some(rv.as_str()) != live["metadata"]["resourceVersion"].as_str()
    {
        return Err(stale_conflict(t, name));
    }
    let new = match sub {
        Some("scale") => {
            let mut new = live.clone();
            new["spec"]["replicas"] = view["spec"]["replicas"].clone();
            new
        }
        _ if is_apply => {
            let mut new = if created_by_apply { json!({}) } else { view };
            merge::apply_merge(&mut new, &body);
            to_storage(t, &new)
        }
        _ => to_storage(t, &view),
    };
    let mut new = new;
    if created_by_apply {
        strip_server_fields(&mut new);
        if t.namespaced {
            new["metadata"]["namespace"] = json!(ns);
        }
    }
    let applied = to_storage(t, &body);
    let op = WriteOp {
        manager: req.manager("unknown"),
        subresource: sub,
        applied: is_apply.then_some(&applied),
        force: matches!(req.param("force"), Some("true" | "1")),
        dry_run: req.dry_run(),
    };
    if is_apply && req.param("fieldManager").is_none_or(str::is_empty) {
        return Err(ApiError::new(
            400,
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    }
    let result = commit(&mut state, t, &k, new, &op)?;
    finish(shared, state, t, result, sub)
}

fn delete(shared: &Arc<Shared>, req: &Req, t: &'static ResourceType, ns: &str, name: &str) -> Result<Reply, ApiError> {
    let mut state = shared.lock();
    check_faults(&mut state, req, t, name)?;
    let k = key(t, ns, name);
    let Some(obj) = state.objects.get(&k).cloned() else { return Err(ApiError::not_found(t, name)) };
    if req.dry_run() {
        return Ok(Reply::Json(200, present(t, &obj)));
    }
    state.objects.remove(&k);
    state.ownership.remove(&k);
    state.rv += 1;
    let rv = state.rv;
    let mut gone = obj.clone();
    gone["metadata"]["resourceVersion"] = json!(rv.to_string());
    state.events.push(Event { rv, key: k, kind: "DELETED", object: gone.clone() });
    drop(state);
    shared.changed.notify_all();
    Ok(Reply::Json(200, present(t, &gone)))
}
