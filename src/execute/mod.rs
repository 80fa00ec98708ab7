//! Executing a ScalePlan with kubectl: preview, preflight, snapshot, drift check, server-side dry
//! run, apply, rollout wait, journal and restore plan.
//!
//! The pipeline:
//! ```text
//! preflight ─ config get-contexts, get namespace, auth can-i --list (one process each)
//! snapshot  ─ get deployments,statefulsets,horizontalpodautoscalers -n NS --show-managed-fields -o json
//! resolve   ─ (pure) container per action, HPA governance, no-ops, owners, JSON patches
//! dry run   ─ every change below with --dry-run=server (4 at a time)
//! admission ─ create --dry-run=server -f - (one Pod per workload whose resources change, one
//!             stream) + ResourceQuota totals from the snapshot (pure)
//! change    ─ delete HPAs (restore plans only) → create/patch HPAs → patch resources (one run
//!             per object) → scale --current-replicas=C --replicas=N KIND/NAME… (one per (C, N))
//! wait      ─ the snapshot call again, once per poll, until every changed workload rolled out
//!             (+ get events reason=FailedCreate, only on a poll where a StatefulSet stalled)
//! journal   ─ results.json + restore-plan.yaml; restore automatically on failure when asked
//! ```
//! Changes are JSON patches under field manager `infra-scale` (see [`manifests`]): infra-scale
//! owns exactly the fields it changed, and no other field of the object moves or disappears.
//!
//! `KUBECTL=echo` (any program whose file name is `echo`) is a pass-through kept from the
//! prototype: the change invocations are handed to it without a cluster behind them (echo prints
//! them), nothing is read back, and the summary says `"executed": true` with each action
//! `passed_through`. See [`is_echo`].

pub mod admission;
pub mod apply;
pub mod drift;
pub mod journal;
pub mod manifests;
pub mod owners;
pub mod permissions;
pub mod preview;
pub mod resolve;
pub mod restore;
pub mod run;
pub mod snapshot;
pub mod wait;

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::kubectl::{Kubectl, KubectlError, Output};

/// The field manager of every change infra-scale makes.
pub const FIELD_MANAGER: &str = "infra-scale";

/// Whether `kubectl` is the prototype's `KUBECTL=echo` stand-in (a program named `echo`).
pub fn is_echo(kubectl: &Kubectl) -> bool {
    kubectl.program().file_name().is_some_and(|n| n == "echo")
}

/// kubectl plus a count of the processes started, for the summary and the benchmark.
#[derive(Debug)]
pub struct Session {
    pub kubectl: Kubectl,
    calls: AtomicUsize,
}

impl Session {
    pub fn new(kubectl: Kubectl) -> Self {
        Session { kubectl, calls: AtomicUsize::new(0) }
    }

    /// Runs kubectl (see [`Kubectl::run`]), counting the process.
    pub fn run(&self, purpose: &str, args: &[String], stdin: Option<&[u8]>) -> Result<Output, KubectlError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.kubectl.run(purpose, args, stdin)
    }

    /// Runs kubectl and parses its stdout as JSON, counting the process.
    pub fn get_json(&self, purpose: &str, args: &[String]) -> Result<serde_json::Value, KubectlError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.kubectl.get_json(purpose, args)
    }

    /// kubectl processes started so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }
}

/// `args` as owned strings.
pub(crate) fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}
