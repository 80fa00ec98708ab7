//! Request handlers: routing of the Kubernetes API paths, discovery and OpenAPI documents, and the
//! verbs: get, list, watch, create, update (incl. `/scale`), patch (merge, strategic, JSON, apply),
//! delete; dry runs, preconditions, unknown fields and injected faults.

use super::api_error::{ApiError, conflict_error, not_found_path, stale_conflict};
use super::discovery::{self, ResourceType};
use super::fields::{self, Conflict};
use super::http::{Reply, Req, WatchSpec};
use super::merge;
use super::objects;
use super::protobuf;
use super::schema::{self, Style};
use super::selector::Selector;
use super::store::{
    Event, Failure, Shared, State, WriteOp, commit, key, present, reconcile_hpas, strip_server_fields, to_storage,
};
use super::table;
use super::validation::FieldError;
use serde_json::{Value, json};
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

pub fn route(shared: &Arc<Shared>, req: &Req) -> Result<Reply, ApiError> {
    {
        let mut state = shared.lock();
        let hit = state
            .faults
            .fail_next_request
            .iter()
            .position(|(method, part, _, _)| *method == req.method && req.path.contains(part.as_str()));
        if let Some(i) = hit {
            let (_, _, code, message) = state.faults.fail_next_request.remove(i);
            return Err(ApiError::new(code, message));
        }
    }
    let segs: Vec<&str> = req.path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let ok = |v: Value| Ok(Reply::Json(200, v));
    if req.method == "GET" {
        match segs.as_slice() {
            ["version"] => return ok(discovery::version(shared.lock().server_minor)),
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
            if table::wanted(&req.accept) {
                return ok(table::table(t, &[present(t, obj)], state.rv));
            }
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

pub fn list_or_watch(
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
    if table::wanted(&req.accept) {
        return Ok(Reply::Json(200, table::table(t, &items, state.rv)));
    }
    Ok(Reply::Json(
        200,
        json!({"kind": format!("{}List", t.kind), "apiVersion": t.api_version(),
               "metadata": {"resourceVersion": state.rv.to_string()}, "items": items}),
    ))
}

/// Parses a request body: JSON, YAML (apply patches may be YAML), or the protobuf that `kubectl
/// autoscale` sends for HorizontalPodAutoscalers.
pub fn decode_body(req: &Req) -> Result<Value, ApiError> {
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

pub fn check_namespace(state: &State, t: &ResourceType, ns: &str) -> Result<(), ApiError> {
    if t.namespaced && !state.objects.contains_key(&("namespaces".to_string(), String::new(), ns.to_string())) {
        return Err(ApiError::new(404, format!("namespaces \"{ns}\" not found"))
            .with_details(discovery::by_kind("namespaces").unwrap_or(t), ns));
    }
    Ok(())
}

pub fn check_type_meta(t: &ResourceType, obj: &Value) -> Result<(), ApiError> {
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
pub fn check_fields(
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

pub fn injected(list: &mut Vec<Failure>, t: &ResourceType, name: &str, consume: bool) -> Option<ApiError> {
    let pos = list.iter().position(|f| f.storage == t.storage && f.name == name)?;
    let f = if consume { list.remove(pos) } else { list[pos].clone() };
    Some(ApiError::new(f.status, f.message).with_details(t, name))
}

pub fn check_faults(state: &mut State, req: &Req, t: &ResourceType, name: &str) -> Result<(), ApiError> {
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

pub fn finish(
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

pub fn create(shared: &Arc<Shared>, req: &Req, t: &'static ResourceType, ns: &str) -> Result<Reply, ApiError> {
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
    if t.kind == "Pod" {
        // The fake runs no admission: a dry-run Pod is admitted as sent, with a generated name.
        if !req.dry_run() {
            return Err(ApiError::new(405, "the fake API server only dry-runs pods"));
        }
        let mut pod = body.clone();
        if pod["metadata"]["name"].as_str().unwrap_or("").is_empty() {
            let prefix = pod["metadata"]["generateName"].as_str().unwrap_or("pod-").to_string();
            pod["metadata"]["name"] = json!(format!("{prefix}fake0"));
        }
        pod["metadata"]["namespace"] = json!(ns);
        return Ok(Reply::Json(201, pod));
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

pub fn update(
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

pub fn patch(
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

pub fn delete(
    shared: &Arc<Shared>,
    req: &Req,
    t: &'static ResourceType,
    ns: &str,
    name: &str,
) -> Result<Reply, ApiError> {
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
