//! The checked-in config file (`infra-scale.yaml`): named targets, each with a kube context, a
//! namespace, workloads, a default HPA, resources and risk thresholds. Strict: unknown keys are errors.
//!
//! ```yaml
//! targets:
//!   prod:
//!     kubeContext: production        # optional; default: `production` for prod, else the target name
//!     namespace: assistant
//!     environment: infra-scale-prod  # optional; GitHub environment guarding execution (default infra-scale-<target>)
//!     detect: true                   # optional; nightly planning reads the live state (default true)
//!     replicasThreshold: 10          # optional; warn above this many replicas
//!     failOn: warning                # optional; like --fail-on
//!     hpa: {min: 4, max: 12, cpu: 65}  # optional; default HPA for every workload
//!     workloads:
//!       - kind: Deployment           # Deployment or StatefulSet
//!         name: web
//!         replicas: 6                # optional
//!         container: web             # optional; which container's resources change
//!         requests: {cpu: 500m, memory: 1Gi}   # `mem` is accepted for memory
//!         limits: {cpu: "1", memory: 2Gi}
//!         hpa: {min: 2, max: 8, cpu: 70}       # optional; overrides the target's hpa
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub targets: BTreeMap<String, TargetConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TargetConfig {
    pub kube_context: Option<String>,
    pub namespace: Option<String>,
    /// The GitHub environment whose protection rules and secrets guard this target
    /// (default `infra-scale-<target>`).
    pub environment: Option<String>,
    /// Whether the scheduled planning run reads the live state (`--detect`); default true.
    pub detect: Option<bool>,
    pub replicas_threshold: Option<u32>,
    pub fail_on: Option<String>,
    pub hpa: Option<HpaConfig>,
    #[serde(default)]
    pub workloads: Vec<WorkloadConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadConfig {
    pub kind: String,
    pub name: String,
    pub replicas: Option<u32>,
    pub container: Option<String>,
    #[serde(default)]
    pub requests: BTreeMap<String, ScalarString>,
    #[serde(default)]
    pub limits: BTreeMap<String, ScalarString>,
    pub hpa: Option<HpaConfig>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HpaConfig {
    pub min: u32,
    pub max: u32,
    pub cpu: u32,
}

/// A YAML scalar read as text (`cpu: 1` and `cpu: "1"` both give `1`).
#[derive(Debug, Clone)]
pub struct ScalarString(pub String);

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match serde_yaml::Value::deserialize(d)? {
            serde_yaml::Value::String(s) => Ok(ScalarString(s)),
            serde_yaml::Value::Number(n) => Ok(ScalarString(n.to_string())),
            other => Err(serde::de::Error::custom(format!("expected a quantity, found {other:?}"))),
        }
    }
}

impl TargetConfig {
    /// The GitHub environment of a target: the configured one, else `infra-scale-<target>`.
    pub fn environment_for(&self, target: &str) -> String {
        self.environment.clone().unwrap_or_else(|| format!("infra-scale-{target}"))
    }
}

/// Checks a GitHub environment name: 1 to 255 characters from letters, digits, `-`, `_` and `.`
/// (a subset of what GitHub accepts, safe in workflow expressions, concurrency groups and URLs).
pub fn check_environment(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err(format!("`{}` must be 1 to 255 characters", name.escape_debug()));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        return Err(format!("`{}` contains `{}`", name.escape_debug(), c.escape_debug()));
    }
    Ok(())
}

/// The accepted form of an environment name.
pub const ENVIRONMENT_HELP: &str =
    "a GitHub environment name of letters, digits, `-`, `_` and `.`, e.g. infra-scale-prod";

/// The default config file name, looked up in the working directory.
pub const DEFAULT_PATH: &str = "infra-scale.yaml";

/// Reads and parses a config file; every error names the file (and line when known).
pub fn load(path: &Path) -> Result<ConfigFile> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::invalid(
            format!("--config={shown}"),
            format!("cannot read the config file: {e}"),
            "a path to an infra-scale.yaml file (see README: config file)",
        )
    })?;
    parse(&text, &shown)
}

/// Parses config text; `source` names it in errors.
pub fn parse(text: &str, source: &str) -> Result<ConfigFile> {
    serde_yaml::from_str(text).map_err(|e| {
        let at = e.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
        Error::invalid(
            format!("{source}{at}"),
            format!("invalid config: {e}"),
            "see the config schema in README.md; allowed keys per target: kubeContext, namespace, environment, detect, replicasThreshold, failOn, hpa, workloads",
        )
    })
}
