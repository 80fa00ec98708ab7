//! `Selector`: the equality subset of field and label selectors (`a=b`, `a==b`, `a!=b`, `a`, `!a`);
//! field selectors on `metadata.name` and `metadata.namespace` only, as kubectl uses them.

use super::api_error::ApiError;
use serde_json::Value;

/// Label or field selector: equality requirements only (`a=b`, `a==b`, `a!=b`, `a`).
#[derive(Clone, Debug, Default)]
pub struct Selector {
    fields: Vec<(String, String, bool)>,
    labels: Vec<(String, Option<String>, bool)>,
}

impl Selector {
    pub fn parse(field: Option<&str>, label: Option<&str>) -> Result<Selector, ApiError> {
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

    pub fn matches(&self, obj: &Value) -> bool {
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

pub fn split_requirement(part: &str) -> (String, Option<String>, bool) {
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
