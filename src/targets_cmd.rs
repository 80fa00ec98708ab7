//! `infra-scale targets`: the config file's targets as one line of JSON for a workflow matrix,
//! after validating every target of the file (all problems reported at once).
//!
//! ```text
//! [{"target":"prod","context":"production","namespace":"assistant","environment":"infra-scale-prod","detect":true}, …]
//! ```
//! Targets are in name order. With `GITHUB_OUTPUT` set, the same JSON goes to the `targets` output.
//!
//! `--target NAME` prints that one entry as a JSON object, and sets the step outputs `target`,
//! `context`, `namespace` and `environment`: the execution workflow derives the target from the
//! plan branch and checks it against the default branch's config this way.

use std::path::PathBuf;

use serde::Serialize;

use crate::config;
use crate::error::{Error, Result};
use crate::request::{self, PlanOptions};

/// Everything `infra-scale targets` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct TargetsOptions {
    /// Config file (default: `infra-scale.yaml` in the working directory).
    pub config: Option<PathBuf>,
    /// Only this target (`--target NAME`).
    pub target: Option<String>,
}

/// One matrix entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetEntry {
    pub target: String,
    /// The kube context (cluster) the target lives in; several targets may share one.
    pub context: String,
    pub namespace: String,
    /// The GitHub environment that guards execution and holds the target's cluster credentials.
    pub environment: String,
    /// Whether scheduled planning reads the live state (`--detect`).
    pub detect: bool,
}

/// Runs `infra-scale targets`.
pub fn run(options: &TargetsOptions) -> Result<()> {
    let entries = list(options)?;
    let Some(name) = &options.target else {
        let json = serde_json::to_string(&entries).map_err(|e| Error::Failed(e.into()))?;
        crate::runner::set_outputs(&[("targets", &json)]).map_err(Error::Failed)?;
        crate::output::line(&json);
        return Ok(());
    };
    let Some(entry) = entries.iter().find(|e| &e.target == name) else {
        let known: Vec<&str> = entries.iter().map(|e| e.target.as_str()).collect();
        return Err(Error::invalid(
            "--target",
            format!("the config file has no target '{name}'"),
            format!("one of: {}", known.join(", ")),
        ));
    };
    let json = serde_json::to_string(entry).map_err(|e| Error::Failed(e.into()))?;
    crate::runner::set_outputs(&[
        ("target", &entry.target),
        ("context", &entry.context),
        ("namespace", &entry.namespace),
        ("environment", &entry.environment),
    ])
    .map_err(Error::Failed)?;
    crate::output::line(&json);
    Ok(())
}

/// Reads and validates the whole config file; returns its targets in name order.
pub fn list(options: &TargetsOptions) -> Result<Vec<TargetEntry>> {
    let plan_options = PlanOptions { config: options.config.clone(), ..PlanOptions::default() };
    let Some((path, file)) = request::load_config(&plan_options)? else {
        return Err(Error::invalid(
            "--config",
            format!("no config file given and no {} in the working directory", config::DEFAULT_PATH),
            "--config=PATH to an infra-scale.yaml file (see README: config file)",
        ));
    };
    if file.targets.is_empty() {
        return Err(Error::invalid(
            format!("{path}: targets"),
            "the config file has no targets",
            "name at least one target under `targets:` (see README: config file)",
        ));
    }
    let mut problems = Vec::new();
    let mut entries = Vec::new();
    for name in file.targets.keys() {
        let opts =
            PlanOptions { target: Some(name.clone()), config: Some(PathBuf::from(&path)), ..PlanOptions::default() };
        match request::build_with(&opts, Some((&path, &file))) {
            Ok(req) => entries.push(TargetEntry {
                target: req.target,
                context: req.kube_context,
                namespace: req.namespace,
                environment: req.environment,
                detect: req.detect_nightly,
            }),
            Err(Error::Invalid(found)) => problems.extend(found.into_iter().map(|mut p| {
                // Flag-shaped inputs (`--target=x`, `--namespace`) say which target they concern.
                if p.input.starts_with("--") {
                    p.input = format!("{path}: targets.{name} ({})", p.input);
                }
                p
            })),
            Err(other) => return Err(other),
        }
    }
    if problems.is_empty() { Ok(entries) } else { Err(Error::Invalid(problems)) }
}
