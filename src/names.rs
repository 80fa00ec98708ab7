//! Kubernetes object-name rules (apimachinery `pkg/util/validation`): DNS-1123 labels for
//! namespaces, StatefulSets and containers; DNS-1123 subdomains for Deployments and HPAs.

/// Checks a DNS-1123 label: at most 63 characters of `[a-z0-9-]`, starting and ending alphanumeric.
pub fn dns1123_label(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > 63 {
        return Err(format!("is {} characters long; the limit is 63", name.len()));
    }
    label_chars(name)
}

/// Checks a DNS-1123 subdomain: at most 253 characters, dot-separated DNS-1123 labels.
pub fn dns1123_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > 253 {
        return Err(format!("is {} characters long; the limit is 253", name.len()));
    }
    for part in name.split('.') {
        if part.is_empty() {
            return Err("has an empty part between dots".into());
        }
        label_chars(part)?;
    }
    Ok(())
}

fn label_chars(part: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if let Some(c) = part.chars().find(|&c| !ok_char(c)) {
        return Err(format!("contains `{c}`; only lower-case letters, digits and `-` are allowed"));
    }
    if part.starts_with('-') || part.ends_with('-') {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

/// The accepted form of a DNS-1123 label, for help lines.
pub const LABEL_HELP: &str =
    "a DNS-1123 label: lower-case letters, digits and `-`, starting and ending alphanumeric, at most 63 characters";
/// The accepted form of a DNS-1123 subdomain, for help lines.
pub const SUBDOMAIN_HELP: &str = "a DNS-1123 subdomain: lower-case letters, digits, `-` and `.`, each part starting and ending alphanumeric, at most 253 characters";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_subdomains() {
        assert!(dns1123_label("web").is_ok());
        assert!(dns1123_label("web-1").is_ok());
        assert!(dns1123_label("Web_1").is_err());
        assert!(dns1123_label("-web").is_err());
        assert!(dns1123_label(&"a".repeat(64)).is_err());
        assert!(dns1123_label("a.b").is_err());
        assert!(dns1123_subdomain("a.b").is_ok());
        assert!(dns1123_subdomain("a..b").is_err());
        assert!(dns1123_subdomain(&"a".repeat(254)).is_err());
    }
}
