//! `ApiError`: a failure answered as a Kubernetes `Status` object, with the reasons and message shapes
//! of the real apiserver (NotFound, Invalid with causes, Conflict, AlreadyExists…).

use super::discovery::ResourceType;
use super::fields::Conflict;
use super::validation::FieldError;
use serde_json::{Value, json};

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

    pub fn with_details(mut self, t: &ResourceType, name: &str) -> ApiError {
        self.details = json!({"name": name, "group": t.group, "kind": t.plural});
        self
    }

    pub fn not_found(t: &ResourceType, name: &str) -> ApiError {
        ApiError::new(404, format!("{} \"{name}\" not found", t.qualified_plural())).with_details(t, name)
    }

    pub fn invalid(t: &ResourceType, name: &str, errs: &[FieldError]) -> ApiError {
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

pub fn not_found_path() -> ApiError {
    ApiError::new(404, "the server could not find the requested resource")
}

pub fn conflict_error(t: &ResourceType, name: &str, conflicts: &[Conflict]) -> ApiError {
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

pub fn stale_conflict(t: &ResourceType, name: &str) -> ApiError {
    ApiError::new(
        409,
        format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            t.qualified_plural()
        ),
    )
    .with_details(t, name)
}
