//! Permissions before any change: one `kubectl auth can-i --list -n NS` (a SelfSubjectRulesReview)
//! read against what the steps need, so that a missing permission refuses the whole plan instead
//! of failing half-way. The server-side dry runs then check every call for real.
//!
//! What each operation needs (as kubectl issues it):
//! - a resources change: `patch` on `deployments.apps` / `statefulsets.apps`;
//! - a scale with `--current-replicas`: `get` and `update` on `deployments.apps/scale` (kubectl reads
//!   the Scale, compares, then updates it);
//! - an HPA: `create` (new) or `patch` (existing) on `horizontalpodautoscalers.autoscaling`;
//! - an HPA delete: `delete` on it.

use super::manifests::HPA_RESOURCE;
use super::resolve::{HpaBase, Op, Step};

/// One permission a plan needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub verb: &'static str,
    /// `deployments.apps`, `deployments.apps/scale`, `horizontalpodautoscalers.autoscaling`.
    pub resource: String,
    pub name: String,
}

impl std::fmt::Display for Need {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({})", self.verb, self.resource, self.name)
    }
}

/// The permissions the pending steps need, each once.
pub fn needs(steps: &[Step]) -> Vec<Need> {
    let mut out: Vec<Need> = Vec::new();
    let mut push = |verb, resource: String, name: &str| {
        let need = Need { verb, resource, name: name.to_string() };
        if !out.contains(&need) {
            out.push(need);
        }
    };
    for op in steps.iter().filter(|s| s.pending()).filter_map(|s| s.op.as_ref()) {
        match op {
            Op::Resources { kind, name, .. } => push("patch", kind.qualified_resource().into(), name),
            Op::Scale { kind, name, .. } => {
                push("get", format!("{}/scale", kind.qualified_resource()), name);
                push("update", format!("{}/scale", kind.qualified_resource()), name);
            }
            Op::Hpa { name, base, .. } => {
                let verb = if matches!(base, HpaBase::Absent) { "create" } else { "patch" };
                push(verb, HPA_RESOURCE.into(), name);
            }
            Op::DeleteHpa { name } => push("delete", HPA_RESOURCE.into(), name),
        }
    }
    out
}

/// One row of `kubectl auth can-i --list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `deployments.apps`, `deployments.apps/scale`, `*.*`, `*.apps`, `deployments.apps/*`.
    pub resource: String,
    /// Empty: every name.
    pub names: Vec<String>,
    pub verbs: Vec<String>,
}

fn bracketed(cell: &str) -> Vec<String> {
    cell.trim().trim_start_matches('[').trim_end_matches(']').split_whitespace().map(str::to_string).collect()
}

/// Parses kubectl's table (`Resources  Non-Resource URLs  Resource Names  Verbs`), cutting each row
/// at the header's column offsets. Rows without a resource (non-resource URLs) are skipped.
pub fn parse(text: &str) -> Result<Vec<Rule>, String> {
    let mut lines = text.lines();
    let header = lines.next().ok_or("the output is empty")?;
    let col = |name: &str| header.find(name).ok_or_else(|| format!("the header has no `{name}` column: {header}"));
    let (names_at, verbs_at) = (col("Resource Names")?, col("Verbs")?);
    let urls_at = col("Non-Resource URLs")?;
    let mut rules = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let cell = |from: usize, to: Option<usize>| -> &str {
            let end = to.unwrap_or(line.len()).min(line.len());
            line.get(from.min(end)..end).unwrap_or("")
        };
        let resource = cell(0, Some(urls_at)).trim();
        if resource.is_empty() {
            continue;
        }
        rules.push(Rule {
            resource: resource.to_string(),
            names: bracketed(cell(names_at, Some(verbs_at))),
            verbs: bracketed(cell(verbs_at, None)),
        });
    }
    Ok(rules)
}

/// Whether `rule` names `resource` (`res.group[/sub]`), honouring RBAC's wildcards: `*` verbs,
/// `*.*` and `*.group` resources (which include subresources), `res.group/*` subresources.
fn grants(rule: &Rule, need: &Need) -> bool {
    let verb = rule.verbs.iter().any(|v| v == "*" || v == need.verb);
    let name = rule.names.is_empty() || rule.names.contains(&need.name);
    let (res_group, sub) = match need.resource.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (need.resource.as_str(), None),
    };
    let (res, group) = res_group.split_once('.').unwrap_or((res_group, ""));
    let (rule_res_group, rule_sub) = match rule.resource.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (rule.resource.as_str(), None),
    };
    let (rule_res, rule_group) = rule_res_group.split_once('.').unwrap_or((rule_res_group, ""));
    let group_ok = rule_group == "*" || rule_group == group;
    let resource_ok = if rule_res == "*" && rule_sub.is_none() {
        true
    } else {
        rule_res == res
            && match (rule_sub, sub) {
                (None, None) => true,
                (Some("*"), Some(_)) => true,
                (Some(a), Some(b)) => a == b,
                _ => false,
            }
    };
    verb && name && group_ok && resource_ok
}

/// The needs no rule grants.
pub fn missing<'a>(rules: &[Rule], needs: &'a [Need]) -> Vec<&'a Need> {
    needs.iter().filter(|n| !rules.iter().any(|r| grants(r, n))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `kubectl auth can-i --list -n t1` for a service account, as kube-apiserver v1.34.4 answered.
    const LIMITED: &str = "\
Resources                                       Non-Resource URLs                      Resource Names   Verbs
selfsubjectreviews.authentication.k8s.io        []                                     []               [create]
deployments.apps                                []                                     []               [get list patch]
horizontalpodautoscalers.autoscaling            []                                     []               [get list patch]
deployments.apps/scale                          []                                     [web]            [get update]
                                                [/api/*]                               []               [get]
";

    const ADMIN: &str = "\
Resources                                       Non-Resource URLs   Resource Names   Verbs
*.*                                             []                  []               [*]
                                                [*]                 []               [*]
";

    fn need(verb: &'static str, resource: &str, name: &str) -> Need {
        Need { verb, resource: resource.into(), name: name.into() }
    }

    #[test]
    fn rules_grant_by_verb_resource_subresource_and_name() {
        let rules = parse(LIMITED).expect("parse");
        assert_eq!(rules.len(), 4, "{rules:?}");
        let needs = vec![
            need("patch", "deployments.apps", "web"),
            need("update", "deployments.apps/scale", "web"),
            need("update", "deployments.apps/scale", "api"),
            need("patch", "statefulsets.apps", "db"),
            need("create", "horizontalpodautoscalers.autoscaling", "web"),
            need("delete", "horizontalpodautoscalers.autoscaling", "old"),
        ];
        let gaps: Vec<String> = missing(&rules, &needs).iter().map(|n| n.to_string()).collect();
        assert_eq!(
            gaps,
            [
                "update deployments.apps/scale (api)",
                "patch statefulsets.apps (db)",
                "create horizontalpodautoscalers.autoscaling (web)",
                "delete horizontalpodautoscalers.autoscaling (old)"
            ]
        );
        // `deployments.apps` does not grant its subresources; `*.*` grants everything.
        assert!(!grants(&rules[1], &need("get", "deployments.apps/scale", "web")));
        let admin = parse(ADMIN).expect("parse");
        assert!(missing(&admin, &needs).is_empty());
    }

    #[test]
    fn output_without_the_columns_is_an_error() {
        assert!(parse("no table here\n").is_err());
        assert!(parse("").is_err());
    }
}
