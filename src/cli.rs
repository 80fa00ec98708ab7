//! The command line: the only module that knows clap, and one that no other module imports. It
//! turns arguments into the plain option structs of the commands that consume them
//! ([`PlanOptions`] in `request`, [`ApplyOptions`] in `apply_cmd`, [`TargetsOptions`] in
//! `targets_cmd`), dispatches, and maps errors to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::apply_cmd::ApplyOptions;
use crate::error::{Error, Problem};
use crate::request::{FailOn, PlanOptions};
use crate::targets_cmd::TargetsOptions;

#[derive(Debug, Parser)]
#[command(
    name = "infra-scale",
    version,
    about = "Plan, approve and apply Kubernetes capacity changes",
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Turn a scaling request into plan.yaml and SUMMARY.md; with --apply, publish them as a pull request.
    Plan(PlanArgs),
    /// Preview (default) or execute a plan with kubectl.
    Apply(ApplyArgs),
    /// Validate the whole config file and print its targets as JSON for a workflow matrix.
    Targets(TargetsArgs),
}

#[derive(Debug, Args)]
struct TargetsArgs {
    /// Config file with named targets (default: infra-scale.yaml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print only this target, as one JSON object (also the step outputs target, context,
    /// namespace, environment); an error when the config has no such target.
    #[arg(long)]
    target: Option<String>,
}

#[derive(Debug, Args)]
struct PlanArgs {
    /// Write the plan locally only (the default).
    #[arg(long, conflicts_with = "apply")]
    dry_run: bool,
    /// Also publish the plan as a pull request (alias: --propose).
    #[arg(long, visible_alias = "propose")]
    apply: bool,
    /// Named target from the config file (prod, staging, …); also the plan's target name.
    #[arg(long)]
    target: Option<String>,
    /// Config file with named targets (default: infra-scale.yaml when it exists).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Namespace of the workloads.
    #[arg(long)]
    namespace: Option<String>,
    /// Kube context recorded in the plan and used by --detect.
    #[arg(long)]
    context: Option<String>,
    /// Kind:name:replicas, e.g. Deployment:web:6 (repeatable).
    #[arg(long = "workload", value_name = "KIND:NAME:REPLICAS")]
    workloads: Vec<String>,
    /// min:N,max:N,cpu:P for every workload, or NAME=min:N,max:N,cpu:P for one (repeatable).
    #[arg(long = "hpa", value_name = "[NAME=]min:N,max:N,cpu:P")]
    hpa: Vec<String>,
    /// Requests: NAME[/CONTAINER]:cpu=Q,mem=Q (repeatable).
    #[arg(long = "req", value_name = "NAME[/CONTAINER]:cpu=Q,memory=Q")]
    requests: Vec<String>,
    /// Limits: NAME[/CONTAINER]:cpu=Q,mem=Q (repeatable).
    #[arg(long = "lim", value_name = "NAME[/CONTAINER]:cpu=Q,memory=Q")]
    limits: Vec<String>,
    /// Read the live state of the namespace with kubectl (one call) and plan from it.
    #[arg(long)]
    detect: bool,
    /// Exit 3 when a risk of this severity or higher is found (files are still written).
    #[arg(long, value_enum)]
    fail_on: Option<FailOnArg>,
    /// Warn about replicas above this count (default 10, or the config's value).
    #[arg(long)]
    replicas_threshold: Option<u32>,
    /// Artifacts directory (default: a new .artifacts/infra-scale/<UTC timestamp>-<target>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// With --apply: fail when no pull request can be published (missing credentials).
    #[arg(long)]
    require_pr: bool,
    /// With --apply: request reviews from these users (comma-separated, repeatable).
    #[arg(long, value_delimiter = ',')]
    reviewers: Vec<String>,
}

#[derive(Debug, Args)]
struct ApplyArgs {
    /// The plan file to preview or execute.
    #[arg(long)]
    plan: PathBuf,
    /// Print the kubectl invocations without running them (the default).
    #[arg(long, conflicts_with = "execute")]
    dry_run: bool,
    /// Run them.
    #[arg(long)]
    execute: bool,
    /// Kube context to use instead of the plan's.
    #[arg(long)]
    context: Option<String>,
    /// Execute even when the live state differs from the state the plan observed.
    #[arg(long)]
    allow_drift: bool,
    /// Change fields owned by this field manager or tool (`helm`, `argocd`, `flux`, or a manager
    /// name) although its next sync reverts them; repeatable or comma-separated.
    #[arg(long = "allow-owner", value_name = "NAME", value_delimiter = ',')]
    allow_owner: Vec<String>,
    /// How long to wait for rollouts, e.g. 90s, 10m (default 10m).
    #[arg(long, default_value = "10m")]
    timeout: String,
    /// Restore the snapshot automatically when a step or the wait fails.
    #[arg(long)]
    rollback_on_failure: bool,
    /// Directory for results.json and restore-plan.yaml (default: beside the plan's artifacts).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Pull request whose approval gates execution (default: from GITHUB_EVENT_PATH).
    #[arg(long)]
    pr: Option<u64>,
    /// Execute a plan digest that was already executed successfully.
    #[arg(long)]
    force: bool,
    /// Inside GitHub Actions, execute although there is no pull request whose approval can be
    /// verified (a break-glass run behind a protected environment).
    #[arg(long)]
    without_approval: bool,
}

/// `--fail-on` levels as clap sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FailOnArg {
    Warning,
    Error,
}

impl From<FailOnArg> for FailOn {
    fn from(a: FailOnArg) -> FailOn {
        match a {
            FailOnArg::Warning => FailOn::Warning,
            FailOnArg::Error => FailOn::Error,
        }
    }
}

/// Parses the command line, runs it and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // Credentials of the kubeconfig are masked before anything can print them.
    crate::runner::mask_kubeconfig();
    let result = match cli.command {
        Command::Plan(args) => crate::plan_cmd::run(&plan_options(args)),
        Command::Apply(args) => apply_options(args).and_then(|o| crate::apply_cmd::run(&o)),
        Command::Targets(args) => crate::targets_cmd::run(&TargetsOptions { config: args.config, target: args.target }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", crate::runner::diagnostic(&e.to_string(), crate::runner::in_actions()));
            ExitCode::from(e.exit_code())
        }
    }
}

fn plan_options(a: PlanArgs) -> PlanOptions {
    PlanOptions {
        publish: a.apply,
        target: a.target,
        config: a.config,
        namespace: a.namespace,
        context: a.context,
        workloads: a.workloads,
        hpa: a.hpa,
        requests: a.requests,
        limits: a.limits,
        detect: a.detect,
        fail_on: a.fail_on.map(FailOn::from),
        replicas_threshold: a.replicas_threshold,
        out: a.out,
        require_pr: a.require_pr,
        reviewers: a.reviewers.into_iter().filter(|r| !r.trim().is_empty()).map(|r| r.trim().to_string()).collect(),
    }
}

fn apply_options(a: ApplyArgs) -> Result<ApplyOptions, Error> {
    let timeout = parse_duration(&a.timeout).ok_or_else(|| {
        Error::Invalid(vec![Problem::new(
            format!("--timeout={}", a.timeout),
            format!("`{}` is not a duration", a.timeout),
            "use a number with s, m or h, e.g. 90s, 10m or 1h",
        )])
    })?;
    for owner in &a.allow_owner {
        let ok = !owner.is_empty() && owner.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
        if !ok {
            return Err(Error::Invalid(vec![Problem::new(
                "--allow-owner",
                format!("`{owner}` is not a field manager name"),
                "a manager name as in metadata.managedFields (e.g. helm, argocd-controller, kustomize-controller) \
                 or a tool: helm, argocd, flux",
            )]));
        }
    }
    Ok(ApplyOptions {
        plan: a.plan,
        execute: a.execute,
        context: a.context,
        allow_drift: a.allow_drift,
        allow_owner: a.allow_owner,
        timeout,
        rollback_on_failure: a.rollback_on_failure,
        out: a.out,
        pr: a.pr,
        force: a.force,
        without_approval: a.without_approval,
    })
}

/// `90s`, `10m`, `1h` (a positive whole number and one unit).
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = number.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        _ => return None,
    };
    (secs > 0).then(|| std::time::Duration::from_secs(secs))
}
