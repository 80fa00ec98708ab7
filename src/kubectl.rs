//! The one seam to kubectl: argv lists (never a shell), a purpose string per call, and
//! failures classified as "not found", "exited non-zero" (with stderr) or "unparsable output".
//!
//! `KUBECTL` overrides the program (the prototype's `KUBECTL=echo` keeps working); `KUBECONFIG`
//! is honoured by kubectl itself; a context, when given, is passed as `--context`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A classified kubectl failure.
#[derive(Debug, thiserror::Error)]
pub enum KubectlError {
    #[error("kubectl program `{program}` was not found ({purpose}); install kubectl or set KUBECTL to its path")]
    NotFound { program: String, purpose: String },
    #[error("kubectl failed while {purpose} (exit code {code}): {stderr}")]
    Failed { purpose: String, code: i32, stderr: String },
    #[error("kubectl output could not be read while {purpose}: {detail}")]
    Unparsable { purpose: String, detail: String },
    #[error("kubectl could not be run while {purpose}: {detail}")]
    Io { purpose: String, detail: String },
}

/// What one kubectl run printed.
#[derive(Debug, Clone)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// How to run kubectl.
#[derive(Debug, Clone)]
pub struct Kubectl {
    program: PathBuf,
    context: Option<String>,
}

impl Kubectl {
    /// kubectl from `KUBECTL` (default `kubectl` on PATH), talking to `context` when given.
    pub fn from_env(context: Option<&str>) -> Self {
        let program = std::env::var_os("KUBECTL").filter(|p| !p.is_empty()).unwrap_or_else(|| "kubectl".into());
        Kubectl { program: PathBuf::from(program), context: context.map(str::to_string) }
    }

    /// The program that will be run.
    pub fn program(&self) -> &std::path::Path {
        &self.program
    }

    /// The argv (after the program) for `args`, with `--context` first when set.
    pub fn argv(&self, args: &[String]) -> Vec<String> {
        let mut argv = Vec::with_capacity(args.len() + 1);
        if let Some(ctx) = &self.context {
            argv.push(format!("--context={ctx}"));
        }
        argv.extend(args.iter().cloned());
        argv
    }

    /// Runs kubectl with `args` (and `stdin` when given); non-zero exit is an error.
    pub fn run(&self, purpose: &str, args: &[String], stdin: Option<&[u8]>) -> Result<Output, KubectlError> {
        let started = Instant::now();
        let mut cmd = Command::new(&self.program);
        // No GitHub token, metrics key, webhook URL or action input reaches kubectl or its plugins.
        crate::runner::scrub_child_env(&mut cmd);
        cmd.args(self.argv(args))
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                KubectlError::NotFound { program: self.program.display().to_string(), purpose: purpose.into() }
            }
            _ => KubectlError::Io { purpose: purpose.into(), detail: e.to_string() },
        })?;
        // Feed stdin from a thread while stdout/stderr are drained, so that neither side can block
        // the other. A program that exits without reading stdin (a usage error, `echo`) closes the
        // pipe: that is not an error of ours, its exit status and stderr tell what happened.
        let writer = match (stdin, child.stdin.take()) {
            (Some(input), Some(mut pipe)) => {
                let input = input.to_vec();
                Some(std::thread::spawn(move || match pipe.write_all(&input) {
                    Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
                    _ => Ok(()),
                }))
            }
            _ => None,
        };
        let out = child
            .wait_with_output()
            .map_err(|e| KubectlError::Io { purpose: purpose.into(), detail: e.to_string() })?;
        if let Some(Ok(Err(e))) = writer.map(|w| w.join()) {
            return Err(KubectlError::Io { purpose: purpose.into(), detail: format!("writing stdin: {e}") });
        }
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if !out.status.success() {
            return Err(KubectlError::Failed {
                purpose: purpose.into(),
                code: out.status.code().unwrap_or(-1),
                stderr,
            });
        }
        surface_warnings(&stderr);
        Ok(Output { stdout, stderr, elapsed: started.elapsed() })
    }

    /// Runs kubectl with `args` (which must ask for `-o json`) and parses stdout as JSON.
    pub fn get_json(&self, purpose: &str, args: &[String]) -> Result<serde_json::Value, KubectlError> {
        let out = self.run(purpose, args, None)?;
        serde_json::from_str(&out.stdout).map_err(|e| KubectlError::Unparsable {
            purpose: purpose.into(),
            detail: format!("{e}; output starts with {:?}", out.stdout.chars().take(80).collect::<String>()),
        })
    }
}

/// kubectl succeeded but warned (the API server's `Warning:` headers: a missing
/// last-applied-configuration annotation, a deprecated API; kubectl's own `WARNING:` on version
/// skew): each distinct warning is shown once per run, never taken as silent success.
fn surface_warnings(stderr: &str) {
    static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    for line in stderr.lines().map(str::trim) {
        let Some(text) = line.strip_prefix("Warning:").or_else(|| line.strip_prefix("WARNING:")) else { continue };
        let text = text.trim();
        let mut seen = SEEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if text.is_empty() || seen.iter().any(|s| s == text) {
            continue;
        }
        seen.push(text.to_string());
        drop(seen);
        crate::runner::warning(&format!("kubectl: {text}"));
    }
}
