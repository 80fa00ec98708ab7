//! Runs a workflow file the way GitHub does for one event, far enough for infra-scale's own
//! execution workflow: which tree the workflow file is taken from (`pull_request_target`: the
//! default branch; `pull_request`: the pull request), job `if:` / `needs` / `outputs`, `run:`
//! steps, `actions/checkout` (which tree lands in the workspace: the default branch's commit
//! without `ref:`, the pull request's head with `ref: <head sha>`), `uses: ./` (the composite
//! action found in the workspace, run by `runner.rs`), and `actions/upload-artifact` (the path
//! is recorded, nothing is uploaded). Anything else panics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value as Json, json};
use serde_yaml::Value as Yaml;

use super::runner::{Action, ActionRun, Job, evaluate_with, interpolate_with, is_truthy, parse_file_commands, scalar};

/// The two trees GitHub knows for a pull-request event.
pub struct Trees {
    /// The default branch's commit (`GITHUB_SHA` of a `pull_request_target` run).
    pub default_branch: PathBuf,
    /// The pull request's head commit.
    pub pr_head: PathBuf,
}

/// What one job did.
#[derive(Debug, Default)]
pub struct JobRun {
    pub ran: bool,
    pub success: bool,
    pub outputs: BTreeMap<String, String>,
    pub actions: Vec<ActionRun>,
    /// Which tree each `actions/checkout` put in the workspace.
    pub checkouts: Vec<PathBuf>,
    /// `path:` of each `actions/upload-artifact`.
    pub uploads: Vec<String>,
    /// The job's `environment:` (its name), evaluated as GitHub does before the job starts.
    pub environment: Option<String>,
    /// The job's `concurrency:` group and `cancel-in-progress`.
    pub concurrency: Option<(String, bool)>,
    pub log: String,
}

/// What the workflow did.
#[derive(Debug, Default)]
pub struct WorkflowRun {
    /// The file GitHub took the workflow from.
    pub workflow_file: PathBuf,
    pub jobs: BTreeMap<String, JobRun>,
}

/// Runs `.github/workflows/<name>` for `base.event_name`, taking the file from the tree GitHub
/// would take it from. `base` supplies the event, the `github` context, directories and platform.
pub fn run(trees: &Trees, name: &str, base: &Job, vars: &Json, secrets: &Json) -> WorkflowRun {
    let from = match base.event_name.as_str() {
        "pull_request_target" => &trees.default_branch,
        "pull_request" => &trees.pr_head,
        other => panic!("the workflow emulation knows pull_request and pull_request_target, not {other}"),
    };
    let workflow_file = from.join(".github/workflows").join(name);
    let doc: Yaml = serde_yaml::from_str(&std::fs::read_to_string(&workflow_file).expect("read the workflow"))
        .expect("workflow YAML");
    let mut result = WorkflowRun { workflow_file, jobs: BTreeMap::new() };
    if doc.get("on").and_then(|on| on.get(base.event_name.as_str())).is_none() {
        return result; // this workflow does not run on this event
    }
    let mut github = serde_json::Map::new();
    for (k, v) in &base.github {
        github.insert(k.clone(), Json::String(v.clone()));
    }
    github.insert("event_name".into(), Json::String(base.event_name.clone()));
    github.insert("event".into(), base.event.clone());
    let github = Json::Object(github);
    let runner =
        json!({"os": base.runner_os, "arch": base.runner_arch, "temp": base.runner_temp.display().to_string()});

    let Some(Yaml::Mapping(jobs)) = doc.get("jobs") else { panic!("no jobs") };
    for (job_name, job) in jobs {
        let job_name = job_name.as_str().expect("job name").to_string();
        let needs: Vec<String> = match job.get("needs") {
            Some(Yaml::String(n)) => vec![n.clone()],
            Some(Yaml::Sequence(ns)) => ns.iter().filter_map(|n| n.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        };
        let mut needs_ctx = serde_json::Map::new();
        let mut needs_ok = true;
        for n in &needs {
            let done = result.jobs.get(n).unwrap_or_else(|| panic!("job {job_name} needs {n}, which comes later"));
            needs_ok &= done.ran && done.success;
            needs_ctx.insert(
                n.clone(),
                json!({"outputs": done.outputs, "result": if !done.ran { "skipped" } else if done.success { "success" } else { "failure" }}),
            );
        }
        let mut contexts: BTreeMap<String, Json> = BTreeMap::new();
        contexts.insert("github".into(), github.clone());
        contexts.insert("runner".into(), runner.clone());
        contexts.insert("needs".into(), Json::Object(needs_ctx));
        contexts.insert("vars".into(), vars.clone());
        contexts.insert("secrets".into(), secrets.clone());
        contexts.insert("steps".into(), json!({}));
        let condition = job.get("if").and_then(Yaml::as_str).unwrap_or("success()");
        let mut record = JobRun::default();
        if !needs_ok || !is_truthy(&evaluate_with(&contexts, condition)) {
            result.jobs.insert(job_name, record);
            continue;
        }
        record.ran = true;
        record.success = true;
        record.environment = match job.get("environment") {
            Some(Yaml::Mapping(m)) => m.get("name").map(|n| interpolate_with(&contexts, &scalar(n))),
            Some(other) => Some(interpolate_with(&contexts, &scalar(other))),
            None => None,
        };
        record.concurrency = match job.get("concurrency") {
            Some(Yaml::Mapping(m)) => Some((
                interpolate_with(&contexts, &scalar(m.get("group").expect("concurrency group"))),
                m.get("cancel-in-progress").map(|c| is_truthy(&evaluate_with(&contexts, &scalar(c)))).unwrap_or(false),
            )),
            Some(other) => Some((interpolate_with(&contexts, &scalar(other)), false)),
            None => None,
        };
        // A fresh workspace per job, as on a hosted runner.
        let _ = std::fs::remove_dir_all(&base.workspace);
        std::fs::create_dir_all(&base.workspace).expect("workspace");
        let mut steps_ctx = serde_json::Map::new();
        let steps = job.get("steps").and_then(Yaml::as_sequence).cloned().unwrap_or_default();
        for (index, step) in steps.iter().enumerate() {
            contexts.insert("steps".into(), Json::Object(steps_ctx.clone()));
            let condition = step.get("if").and_then(Yaml::as_str).unwrap_or("success()");
            let always = condition.contains("always()");
            if (!record.success && !always) || !is_truthy(&evaluate_with(&contexts, condition)) {
                continue;
            }
            let with =
                |key: &str| step.get("with").and_then(|w| w.get(key)).map(|v| interpolate_with(&contexts, &scalar(v)));
            let env: BTreeMap<String, String> = match step.get("env") {
                Some(Yaml::Mapping(m)) => m
                    .iter()
                    .map(|(k, v)| (k.as_str().expect("env name").to_string(), interpolate_with(&contexts, &scalar(v))))
                    .collect(),
                _ => BTreeMap::new(),
            };
            let id = step.get("id").and_then(Yaml::as_str).map(str::to_string);
            let (ok, outputs) = if let Some(body) = step.get("run").and_then(Yaml::as_str) {
                let (ok, outputs, log) = run_script(base, index, body, &env);
                record.log.push_str(&log);
                (ok, outputs)
            } else {
                let uses = step.get("uses").and_then(Yaml::as_str).expect("a step runs or uses");
                if uses.starts_with("actions/checkout@") {
                    let reference = with("ref").unwrap_or_default();
                    let head = base.event.pointer("/pull_request/head/sha").and_then(Json::as_str).unwrap_or_default();
                    let tree = if reference.is_empty()
                        || Some(reference.as_str()) == base.github.get("sha").map(String::as_str)
                    {
                        &trees.default_branch
                    } else if reference == head {
                        &trees.pr_head
                    } else {
                        panic!("checkout of an unknown ref {reference}")
                    };
                    copy_tree(tree, &base.workspace);
                    record.checkouts.push(tree.clone());
                    (true, BTreeMap::new())
                } else if uses == "./" {
                    let mut job = base.clone();
                    job.inputs.clear();
                    if let Some(Yaml::Mapping(w)) = step.get("with") {
                        for (k, v) in w {
                            job.inputs.insert(
                                k.as_str().expect("input").to_string(),
                                interpolate_with(&contexts, &scalar(v)),
                            );
                        }
                    }
                    job.env.extend(env);
                    let run = Action::load(&base.workspace).run(&job);
                    record.log.push_str(&run.log);
                    let out = (run.success, run.outputs.clone());
                    record.actions.push(run);
                    out
                } else if uses.starts_with("actions/upload-artifact@") {
                    record.uploads.push(with("path").unwrap_or_default());
                    (true, BTreeMap::new())
                } else {
                    panic!("the workflow emulation does not know `uses: {uses}`")
                }
            };
            if !ok {
                record.success = false;
            }
            if let Some(id) = id {
                let outcome = if ok { "success" } else { "failure" };
                steps_ctx.insert(id, json!({"outputs": outputs, "outcome": outcome, "conclusion": outcome}));
            }
        }
        contexts.insert("steps".into(), Json::Object(steps_ctx));
        if let Some(Yaml::Mapping(outs)) = job.get("outputs") {
            for (k, v) in outs {
                record.outputs.insert(k.as_str().expect("output").to_string(), interpolate_with(&contexts, &scalar(v)));
            }
        }
        result.jobs.insert(job_name, record);
    }
    result
}

fn run_script(
    base: &Job,
    index: usize,
    body: &str,
    env: &BTreeMap<String, String>,
) -> (bool, BTreeMap<String, String>, String) {
    let dir = base.runner_temp.join("_workflow");
    std::fs::create_dir_all(&dir).expect("dir");
    let script = dir.join(format!("run-{index}.sh"));
    let output = dir.join(format!("output-{index}"));
    std::fs::write(&script, body).expect("script");
    std::fs::write(&output, "").expect("output file");
    let out = Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail"])
        .arg(&script)
        .env_clear()
        .env("PATH", &base.path)
        .env("GITHUB_OUTPUT", &output)
        .env("RUNNER_TEMP", &base.runner_temp)
        .envs(env)
        .current_dir(&base.workspace)
        .output()
        .expect("bash");
    let outputs = parse_file_commands(&std::fs::read_to_string(&output).unwrap_or_default()).expect("outputs");
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), outputs, log)
}

fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp").arg("-a").arg(format!("{}/.", from.display())).arg(to).status().expect("cp");
    assert!(status.success(), "copy {} to {}", from.display(), to.display());
}
