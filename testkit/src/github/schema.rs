//! GitHub's official OpenAPI description (a trimmed subset of `@octokit/openapi`'s
//! `generated/api.github.com.json`, committed as `tests/fixtures/github/openapi-subset.json`),
//! used to route requests to operations and to validate every request body.
//!
//! The subset is OpenAPI 3.0: schemas are JSON Schema draft 4 plus `nullable`. Before compiling,
//! `nullable: true` becomes a `null` alternative, and request-body objects get
//! `additionalProperties: false` (GitHub ignores unknown fields, so a misspelt field would
//! otherwise pass silently: the fake is stricter on purpose).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value, json};

const SUBSET: &str = include_str!("../../../tests/fixtures/github/openapi-subset.json");

/// A compiled request-body validator; `None` when the operation takes no body.
type Compiled = std::sync::Arc<Option<jsonschema::Validator>>;

/// The parsed subset, with a cache of compiled request-body validators.
pub struct Spec {
    doc: Value,
    /// (method, template), most specific templates first.
    operations: Vec<(String, String)>,
    validators: Mutex<HashMap<(String, String), Compiled>>,
}

/// The spec, parsed once per process.
pub fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let doc: Value = serde_json::from_str(SUBSET).expect("the OpenAPI subset fixture is JSON");
        let mut operations = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                if method != "parameters" {
                    operations.push((method.to_uppercase(), path.clone()));
                }
            }
        }
        // More literal segments first, so `/issues/comments/{id}` beats `/issues/{n}/comments`.
        operations.sort_by_key(|(_, t)| std::cmp::Reverse(t.split('/').filter(|s| !s.starts_with('{')).count()));
        Spec { doc, operations, validators: Mutex::default() }
    })
}

impl Spec {
    /// Every (METHOD, template) in the subset.
    pub fn operations(&self) -> &[(String, String)] {
        &self.operations
    }

    /// The operation serving `method path` and its path parameters (percent-decoded).
    /// `{ref}` and `{path}` as the last template segment take the rest of the path, slashes included.
    pub fn route(&self, method: &str, path: &str) -> Option<(String, HashMap<String, String>)> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        self.operations.iter().filter(|(m, _)| m == method).find_map(|(_, template)| {
            let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
            let mut params = HashMap::new();
            for (i, part) in parts.iter().enumerate() {
                let last = i == parts.len() - 1;
                if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    let value = if last && (name == "ref" || name == "path") {
                        if i >= segments.len() {
                            return None;
                        }
                        segments[i..].join("/")
                    } else {
                        (*segments.get(i)?).to_string()
                    };
                    if value.is_empty() {
                        return None;
                    }
                    params.insert(name.to_string(), percent_decode(&value));
                } else if segments.get(i) != Some(part) {
                    return None;
                }
                if last && !(name_is_greedy(part)) && segments.len() != parts.len() {
                    return None;
                }
            }
            Some((template.clone(), params))
        })
    }

    /// Whether the operation declares a request body.
    pub fn has_body(&self, method: &str, template: &str) -> bool {
        self.body_schema(method, template).is_some()
    }

    fn body_schema(&self, method: &str, template: &str) -> Option<&Value> {
        self.doc.pointer(&format!(
            "/paths/{}/{}/requestBody/content/application~1json/schema",
            escape(template),
            method.to_lowercase()
        ))
    }

    /// Validates a request body against the operation's `requestBody` schema; the errors, if any.
    pub fn validate_body(&self, method: &str, template: &str, body: &Value) -> Result<(), Vec<String>> {
        let key = (method.to_string(), template.to_string());
        let validator = {
            let mut cache = self.validators.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            cache.entry(key).or_insert_with(|| std::sync::Arc::new(self.compile(method, template))).clone()
        };
        let Some(validator) = validator.as_ref() else {
            return Err(vec![format!("{method} {template} takes no request body")]);
        };
        let errors: Vec<String> =
            validator.iter_errors(body).map(|e| format!("{} at `{}`", e, e.instance_path())).collect();
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    fn compile(&self, method: &str, template: &str) -> Option<jsonschema::Validator> {
        let mut schema = self.body_schema(method, template)?.clone();
        tighten(&mut schema);
        let mut components = self.doc["components"].clone();
        openapi_to_json_schema(&mut components);
        openapi_to_json_schema(&mut schema);
        // `#/components/...` references resolve against this root document.
        let mut root = Map::new();
        root.insert("allOf".into(), json!([schema]));
        root.insert("components".into(), components);
        let root = Value::Object(root);
        Some(
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft4)
                .build(&root)
                .unwrap_or_else(|e| panic!("compile the request schema of {method} {template}: {e}")),
        )
    }
}

fn name_is_greedy(part: &str) -> bool {
    part == "{ref}" || part == "{path}"
}

fn escape(template: &str) -> String {
    template.replace('~', "~0").replace('/', "~1")
}

/// `nullable: true` (OpenAPI 3.0) → also accept `null`.
fn openapi_to_json_schema(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("nullable") == Some(&Value::Bool(true)) {
                map.remove("nullable");
                let inner = Value::Object(std::mem::take(map));
                map.insert("anyOf".into(), json!([inner, {"type": "null"}]));
            }
            for child in map.values_mut() {
                openapi_to_json_schema(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(openapi_to_json_schema),
        _ => {}
    }
}

/// Objects with declared properties accept no others (see the module doc).
fn tighten(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some("object")
                && map.contains_key("properties")
                && !map.contains_key("additionalProperties")
            {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for child in map.values_mut() {
                tighten(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(tighten),
        _ => {}
    }
}

/// Decodes `%XX` escapes (and nothing else).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(hex) = std::str::from_utf8(&bytes[i + 1..i + 3])
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_with_literal_and_encoded_slashes() {
        let s = spec();
        let (t, p) = s.route("PATCH", "/repos/o/r/git/refs/heads/infra-scale/prod").expect("route");
        assert_eq!(t, "/repos/{owner}/{repo}/git/refs/{ref}");
        assert_eq!(p["ref"], "heads/infra-scale/prod");
        let (t, p) = s.route("GET", "/repos/o/r/contents/ops/plans/a%20b/plan.yaml").expect("route");
        assert_eq!(t, "/repos/{owner}/{repo}/contents/{path}");
        assert_eq!(p["path"], "ops/plans/a b/plan.yaml");
        let (t, _) = s.route("GET", "/repos/o/r/issues/comments/5").expect("route");
        assert_eq!(t, "/repos/{owner}/{repo}/issues/comments/{comment_id}");
        let (t, p) = s.route("GET", "/repos/o/r/issues/5/comments").expect("route");
        assert_eq!(t, "/repos/{owner}/{repo}/issues/{issue_number}/comments");
        assert_eq!(p["issue_number"], "5");
        assert!(s.route("GET", "/repos/o/r/issues/5/comments/extra").is_none());
        assert!(s.route("PUT", "/repos/o/r/contents/x").is_none(), "not an operation infra-scale uses");
    }

    #[test]
    fn bodies_are_checked_against_githubs_schemas() {
        let s = spec();
        let pulls = "/repos/{owner}/{repo}/pulls";
        assert!(
            s.validate_body("POST", pulls, &json!({"title": "t", "head": "h", "base": "main", "draft": true})).is_ok()
        );
        let err = s.validate_body("POST", pulls, &json!({"title": "t", "base": "main"})).expect_err("head missing");
        assert!(err.iter().any(|e| e.contains("head")), "{err:?}");
        assert!(
            s.validate_body("POST", pulls, &json!({"title": "t", "head": "h", "base": "m", "draft": "yes"})).is_err()
        );
        assert!(
            s.validate_body("POST", pulls, &json!({"title": "t", "head": "h", "base": "m", "drafts": true})).is_err()
        );
        let status = "/repos/{owner}/{repo}/statuses/{sha}";
        assert!(s.validate_body("POST", status, &json!({"state": "success", "target_url": null})).is_ok());
        assert!(s.validate_body("POST", status, &json!({"state": "done"})).is_err());
        let tree = "/repos/{owner}/{repo}/git/trees";
        let ok = json!({"base_tree": "abc", "tree": [{"path": "a", "mode": "100644", "type": "blob", "content": "x"}]});
        assert!(s.validate_body("POST", tree, &ok).is_ok());
        let bad = json!({"tree": [{"path": "a", "mode": "644", "type": "blob", "content": "x"}]});
        assert!(s.validate_body("POST", tree, &bad).is_err());
    }
}
