//! Kubernetes-style validation: the checks of `pkg/apis/*/validation` that infra-scale can trip over,
//! with the apiserver's message shapes (`<field>: Invalid value: <value>: <detail>`), plus the decode
//! step that canonicalizes quantities (and rejects malformed ones with 400, as the decoder does).

use super::quantity::Quantity;
use serde_json::{Value, json};

/// One field error, rendered like `field.Error`.
#[derive(Clone, Debug)]
pub struct FieldError {
    pub field: String,
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`.
    pub reason: &'static str,
    /// The bad value, already rendered (`"mem"` quoted for strings, `0` for numbers).
    pub value: String,
    pub detail: String,
}

impl FieldError {
    fn invalid(field: impl Into<String>, value: impl Into<String>, detail: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), reason: "FieldValueInvalid", value: value.into(), detail: detail.into() }
    }

    fn required(field: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), reason: "FieldValueRequired", value: String::new(), detail: String::new() }
    }

    /// The cause message without the field (as in Status `details.causes[].message`).
    pub fn cause_message(&self) -> String {
        match self.reason {
            "FieldValueRequired" => "Required value".to_string(),
            _ => format!("Invalid value: {}: {}", self.value, self.detail),
        }
    }

    /// `field: message`, as in the Status `message`.
    pub fn render(&self) -> String {
        format!("{}: {}", self.field, self.cause_message())
    }

    /// The Status cause object.
    pub fn cause(&self) -> Value {
        json!({"reason": self.reason, "message": self.cause_message(), "field": self.field})
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Canonicalizes every quantity the fake knows about (container resources, quota hard/used); an
/// unparsable one is a decode error (HTTP 400 `BadRequest` in the real server).
pub fn canonicalize(storage: &str, obj: &mut Value) -> Result<(), String> {
    let fix = |v: &mut Value| -> Result<(), String> {
        if let Value::Object(m) = v {
            for (_, q) in m.iter_mut() {
                let text = match q {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return Err(format!("quantities must be strings or numbers, got {q}")),
                };
                *q = Value::String(Quantity::parse(&text)?.canonical());
            }
        }
        Ok(())
    };
    match storage {
        "apps/deployments" | "apps/statefulsets" => {
            for list in ["containers", "initContainers"] {
                if let Some(Value::Array(cs)) = obj["spec"]["template"]["spec"].get_mut(list) {
                    for c in cs {
                        if let Some(r) = c.get_mut("resources") {
                            for part in ["requests", "limits"] {
                                if let Some(v) = r.get_mut(part) {
                                    fix(v)?;
                                }
                            }
                        }
                    }
                }
            }
        }
        "resourcequotas" => {
            for v in [obj["spec"].get_mut("hard")].into_iter().flatten() {
                fix(v)?;
            }
            if let Some(st) = obj.get_mut("status") {
                for part in ["hard", "used"] {
                    if let Some(v) = st.get_mut(part) {
                        fix(v)?;
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Validates a name for create: DNS-1123 label for namespaces and StatefulSets, subdomain otherwise.
pub fn validate_name(storage: &str, name: &str) -> Vec<FieldError> {
    let label = matches!(storage, "namespaces" | "apps/statefulsets");
    let ok = if label { is_dns_label(name) } else { is_dns_subdomain(name) };
    if ok {
        return Vec::new();
    }
    let detail = if label {
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    } else {
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    };
    vec![FieldError::invalid("metadata.name", quoted(name), detail)]
}

fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

fn is_standard_resource(name: &str) -> bool {
    is_standard_container_resource(name)
        || matches!(
            name,
            "pods" | "services" | "storage" | "requests.cpu" | "requests.memory" | "limits.cpu" | "limits.memory"
        )
}

fn validate_resources(path: &str, resources: &Value, errs: &mut Vec<FieldError>) {
    for part in ["limits", "requests"] {
        let Some(map) = resources[part].as_object() else { continue };
        for (name, q) in map {
            let field = format!("{path}.{part}[{name}]");
            if !name.contains('/') {
                if !is_standard_resource(name) {
                    errs.push(FieldError::invalid(
                        &field,
                        quoted(name),
                        "must be a standard resource type or fully qualified",
                    ));
                }
                if !is_standard_container_resource(name) {
                    errs.push(FieldError::invalid(&field, quoted(name), "must be a standard resource for containers"));
                }
            }
            let text = q.as_str().unwrap_or("");
            if let Ok(parsed) = Quantity::parse(text)
                && parsed.nanos < 0
            {
                errs.push(FieldError::invalid(&field, quoted(text), "must be greater than or equal to 0"));
            }
        }
    }
    let (Some(requests), Some(limits)) = (resources["requests"].as_object(), resources["limits"].as_object()) else {
        return;
    };
    for (name, req) in requests {
        let Some(lim) = limits.get(name) else { continue };
        let (Some(req_text), Some(lim_text)) = (req.as_str(), lim.as_str()) else { continue };
        if let (Ok(r), Ok(l)) = (Quantity::parse(req_text), Quantity::parse(lim_text))
            && r.nanos > l.nanos
        {
            errs.push(FieldError::invalid(
                format!("{path}.requests[{name}]"),
                quoted(req_text),
                format!("must be less than or equal to {name} limit of {lim_text}"),
            ));
        }
    }
}

fn validate_workload(storage: &str, obj: &Value, errs: &mut Vec<FieldError>) {
    let spec = &obj["spec"];
    if let Some(r) = spec["replicas"].as_i64()
        && r < 0
    {
        errs.push(FieldError::invalid("spec.replicas", r.to_string(), "must be greater than or equal to 0"));
    }
    if !spec["selector"].is_object() {
        errs.push(FieldError::required("spec.selector"));
    } else if let Some(want) = spec["selector"]["matchLabels"].as_object() {
        let labels = spec["template"]["metadata"]["labels"].as_object();
        let matches = want.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
        if !matches {
            errs.push(FieldError::invalid(
                "spec.template.metadata.labels",
                format!("{}", spec["template"]["metadata"]["labels"]),
                "`selector` does not match template `labels`",
            ));
        }
    }
    let pod = &spec["template"]["spec"];
    match pod["containers"].as_array() {
        Some(cs) if !cs.is_empty() => {}
        _ => errs.push(FieldError::required("spec.template.spec.containers")),
    }
    for list in ["initContainers", "containers"] {
        let Some(cs) = pod[list].as_array() else { continue };
        for (i, c) in cs.iter().enumerate() {
            let path = format!("spec.template.spec.{list}[{i}]");
            match c["name"].as_str() {
                None | Some("") => errs.push(FieldError::required(format!("{path}.name"))),
                Some(n) if !is_dns_label(n) => errs.push(FieldError::invalid(
                    format!("{path}.name"),
                    quoted(n),
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                )),
                _ => {}
            }
            if c["image"].as_str().is_none_or(str::is_empty) {
                errs.push(FieldError::required(format!("{path}.image")));
            }
            validate_resources(&format!("{path}.resources"), &c["resources"], errs);
        }
    }
    if storage == "apps/statefulsets"
        && let Some(t) = spec["updateStrategy"]["type"].as_str()
        && t != "RollingUpdate"
        && t != "OnDelete"
    {
        errs.push(FieldError {
            field: "spec.updateStrategy.type".to_string(),
            reason: "FieldValueNotSupported",
            value: quoted(t),
            detail: "supported values: \"OnDelete\", \"RollingUpdate\"".to_string(),
        });
    }
}

fn validate_hpa(obj: &Value, errs: &mut Vec<FieldError>) {
    let spec = &obj["spec"];
    let target = &spec["scaleTargetRef"];
    if target["kind"].as_str().is_none_or(str::is_empty) {
        errs.push(FieldError::required("spec.scaleTargetRef.kind"));
    }
    if target["name"].as_str().is_none_or(str::is_empty) {
        errs.push(FieldError::required("spec.scaleTargetRef.name"));
    }
    let min = spec["minReplicas"].as_i64();
    if let Some(min) = min
        && min < 1
    {
        errs.push(FieldError::invalid("spec.minReplicas", min.to_string(), "must be greater than or equal to 1"));
    }
    match spec["maxReplicas"].as_i64() {
        None => errs.push(FieldError::required("spec.maxReplicas")),
        Some(max) if max < 1 => {
            errs.push(FieldError::invalid("spec.maxReplicas", max.to_string(), "must be greater than 0"));
        }
        Some(max) if min.is_some_and(|m| max < m) => {
            errs.push(FieldError::invalid(
                "spec.maxReplicas",
                max.to_string(),
                "must be greater than or equal to `minReplicas`",
            ));
        }
        _ => {}
    }
    if let Some(metrics) = spec["metrics"].as_array() {
        for (i, m) in metrics.iter().enumerate() {
            let path = format!("spec.metrics[{i}]");
            let kind = m["type"].as_str().unwrap_or("");
            if kind.is_empty() {
                errs.push(FieldError::required(format!("{path}.type")));
                continue;
            }
            let source = match kind {
                "Resource" => "resource",
                "ContainerResource" => "containerResource",
                "Pods" => "pods",
                "Object" => "object",
                "External" => "external",
                other => {
                    errs.push(FieldError {
                        field: format!("{path}.type"),
                        reason: "FieldValueNotSupported",
                        value: quoted(other),
                        detail:
                            "supported values: \"ContainerResource\", \"External\", \"Object\", \"Pods\", \"Resource\""
                                .to_string(),
                    });
                    continue;
                }
            };
            let target = &m[source]["target"];
            if let Some(u) = target["averageUtilization"].as_i64()
                && u < 1
            {
                errs.push(FieldError::invalid(
                    format!("{path}.{source}.target.averageUtilization"),
                    u.to_string(),
                    "must be greater than 0",
                ));
            }
            if matches!(kind, "Resource" | "ContainerResource") && m[source]["name"].as_str().is_none_or(str::is_empty)
            {
                errs.push(FieldError::required(format!("{path}.{source}.name")));
            }
        }
    }
    for dir in ["scaleUp", "scaleDown"] {
        let rules = &spec["behavior"][dir];
        if let Some(w) = rules["stabilizationWindowSeconds"].as_i64()
            && !(0..=3600).contains(&w)
        {
            let detail =
                if w < 0 { "must be greater than or equal to 0" } else { "must be less than or equal to 3600" };
            errs.push(FieldError::invalid(
                format!("spec.behavior.{dir}.stabilizationWindowSeconds"),
                w.to_string(),
                detail,
            ));
        }
        if let Some(policies) = rules["policies"].as_array() {
            for (i, p) in policies.iter().enumerate() {
                if let Some(s) = p["periodSeconds"].as_i64()
                    && !(1..=1800).contains(&s)
                {
                    let detail = if s < 1 { "must be greater than zero" } else { "must be less than or equal to 1800" };
                    errs.push(FieldError::invalid(
                        format!("spec.behavior.{dir}.policies[{i}].periodSeconds"),
                        s.to_string(),
                        detail,
                    ));
                }
            }
        }
    }
}

/// Semantic validation of a whole object about to be stored.
pub fn validate(storage: &str, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match storage {
        "apps/deployments" | "apps/statefulsets" => validate_workload(storage, obj, &mut errs),
        "autoscaling/horizontalpodautoscalers" => validate_hpa(obj, &mut errs),
        _ => {}
    }
    errs
}
