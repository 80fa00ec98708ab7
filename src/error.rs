//! The error type every command returns, and the one table that maps errors to exit codes.
//!
//! | code | meaning                                                                 |
//! |------|-------------------------------------------------------------------------|
//! | 0    | success                                                                 |
//! | 1    | failed; nothing was changed (API down, kubectl missing, preflight, …)  |
//! | 2    | invalid input (flags, config, plan file); nothing was written or sent   |
//! | 3    | refused by a safety check (drift, approval gate, `--fail-on`); nothing changed |
//! | 4    | failed after changing the cluster; the message lists what changed      |

use std::fmt;

/// One problem found in the input: which input, the bad value, what is wrong, what is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The flag or file the value came from, e.g. `--req=web:cpu=1GB` or `infra-scale.yaml: targets.prod.namespace`.
    pub input: String,
    /// What is wrong, naming the bad value.
    pub message: String,
    /// The accepted form, or what to do next.
    pub help: String,
}

impl Problem {
    pub fn new(input: impl Into<String>, message: impl Into<String>, help: impl Into<String>) -> Self {
        Self { input: input.into(), message: message.into(), help: help.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}: {}", self.input, self.message)?;
        if !self.help.is_empty() {
            write!(f, "\n  help: {}", self.help)?;
        }
        Ok(())
    }
}

/// Every way a command can end other than success.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: every problem found, reported at once. Exit 2.
    #[error("{}", render_problems(.0))]
    Invalid(Vec<Problem>),
    /// A safety check refused to go on; nothing was changed. Exit 3.
    #[error("refused: {reason}\n  help: {help}")]
    Refused { reason: String, help: String },
    /// Something failed before anything was changed. Exit 1.
    #[error("{0:#}")]
    Failed(#[from] anyhow::Error),
    /// Something failed after the cluster was changed. Exit 4.
    #[error("{0}")]
    FailedAfterChange(String),
}

impl Error {
    /// A single-problem validation error.
    pub fn invalid(input: impl Into<String>, message: impl Into<String>, help: impl Into<String>) -> Self {
        Error::Invalid(vec![Problem::new(input, message, help)])
    }

    pub fn refused(reason: impl Into<String>, help: impl Into<String>) -> Self {
        Error::Refused { reason: reason.into(), help: help.into() }
    }

    /// The documented exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Failed(_) => 1,
            Error::Invalid(_) => 2,
            Error::Refused { .. } => 3,
            Error::FailedAfterChange(_) => 4,
        }
    }
}

fn render_problems(problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&p.to_string());
    }
    if problems.len() > 1 {
        out.push_str(&format!("\n{} problems found; nothing was written", problems.len()));
    }
    out
}

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Collects problems while validating, so that every one is reported at once.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn push(&mut self, input: impl Into<String>, message: impl Into<String>, help: impl Into<String>) {
        self.0.push(Problem::new(input, message, help));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when no problem was recorded, otherwise [`Error::Invalid`] with all of them.
    pub fn finish<T>(self, value: T) -> Result<T> {
        if self.0.is_empty() { Ok(value) } else { Err(Error::Invalid(self.0)) }
    }
}
