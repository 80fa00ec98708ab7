//! The GitHub side of infra-scale: publishing a plan as a pull request ([`publish`]), the approval
//! gate that execution passes before touching the cluster ([`gate`]), and reporting the outcome
//! back on the pull request ([`report`]).
//!
//! Everything talks to the REST API through [`client::Client`] (base URL from `GITHUB_API_URL`,
//! the token in a [`client::Token`] newtype that never prints). Settings come from an explicit
//! [`env::Env`] snapshot; only the thin public wrappers read the process environment.

pub mod client;
pub mod env;
pub mod gate;
pub mod publish;
pub mod report;
pub mod sticky;

/// Label the planner puts on a plan pull request.
pub const LABEL_NEEDS_APPROVAL: &str = "needs-approval";
/// Label a reviewer adds to ask for execution.
pub const LABEL_EXECUTE_PLAN: &str = "execute-plan";
/// Label put on after a successful execution.
pub const LABEL_EXECUTED: &str = "executed";
/// Label put on after a failed execution.
pub const LABEL_EXECUTE_FAILED: &str = "execute-failed";
/// Commit-status context set on the head commit by the executor.
pub const STATUS_CONTEXT: &str = "infra-scale/execute";

/// Prefix of every plan branch (`infra-scale/<target>`).
pub const BRANCH_PREFIX: &str = "infra-scale/";

/// The branch that carries a target's plan.
pub fn branch_for(target: &str) -> String {
    format!("{BRANCH_PREFIX}{target}")
}

/// Folder of a target's plan files in the repository.
pub fn plan_dir(target: &str) -> String {
    format!("ops/plans/infra-scale/{target}")
}

/// Path of a target's plan.yaml in the repository.
pub fn plan_path(target: &str) -> String {
    format!("{}/plan.yaml", plan_dir(target))
}

/// Path of a target's SUMMARY.md in the repository.
pub fn summary_path(target: &str) -> String {
    format!("{}/SUMMARY.md", plan_dir(target))
}

/// Checks that a target name is safe in a branch name and a path: a DNS-1123 label.
pub fn check_target(target: &str) -> Result<(), String> {
    crate::names::dns1123_label(target).map_err(|e| format!("target `{target}` {e}"))
}

/// sha256 of bytes, as lower-case hex: the digest published for a plan.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `owner/name` of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    pub owner: String,
    pub name: String,
}

impl Repo {
    /// Parses `owner/name`, checking GitHub's character rules so the parts are safe in URLs.
    pub fn parse(text: &str) -> Option<Repo> {
        let (owner, name) = text.split_once('/')?;
        let owner_ok = !owner.is_empty()
            && owner.len() <= 39
            && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !owner.starts_with('-');
        let name_ok = !name.is_empty()
            && name.len() <= 100
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && name != "."
            && name != "..";
        (owner_ok && name_ok).then(|| Repo { owner: owner.to_string(), name: name.to_string() })
    }

    /// `owner/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// The REST path of the repository, `/repos/owner/name`.
    pub fn api_path(&self) -> String {
        format!("/repos/{}/{}", self.owner, self.name)
    }
}

impl std::fmt::Display for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// Removes `metadata.createdAt` so that two plans can be compared without their timestamps
/// ("a new createdAt alone is not a change"). Falls back to the raw text when it is not YAML.
pub fn same_plan(a: &str, b: &str) -> bool {
    fn normalized(text: &str) -> Option<serde_yaml::Value> {
        let mut value: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
        if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_mapping_mut()) {
            meta.remove("createdAt");
        }
        Some(value)
    }
    match (normalized(a), normalized(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_at_alone_is_not_a_change() {
        let a =
            "apiVersion: infra.scale/v1\nmetadata:\n  createdAt: 2026-01-01T00:00:00Z\n  target: prod\nactions: []\n";
        let b =
            "apiVersion: infra.scale/v1\nmetadata:\n  createdAt: 2026-01-02T03:04:05Z\n  target: prod\nactions: []\n";
        let c = "apiVersion: infra.scale/v1\nmetadata:\n  createdAt: 2026-01-02T03:04:05Z\n  target: staging\nactions: []\n";
        assert!(same_plan(a, b));
        assert!(!same_plan(a, c));
        assert!(!same_plan("not: [yaml", "not: [yaml2"));
    }

    #[test]
    fn repository_names_are_checked() {
        assert_eq!(Repo::parse("octo-org/fleet.ops").map(|r| r.full_name()), Some("octo-org/fleet.ops".into()));
        for bad in ["", "a", "a/", "/b", "a/b/c", "a b/c", "a/..", "-a/b", "a/b?x=1"] {
            assert!(Repo::parse(bad).is_none(), "{bad}");
        }
    }
}
