//! The whole loop through the real binary: `plan --apply` publishes the PR (fake GitHub), a
//! person with write access adds `execute-plan`, `apply --execute` passes the gate, changes the
//! real cluster (a namespace on the shared control plane) with the real kubectl, and reports back on the PR. Refusals leave the cluster
//! untouched: kubectl is never started.

#[path = "apply_support/mod.rs"]
mod apply_support;

use std::path::{Path, PathBuf};

use apply_support::{Cluster, Out, infra_scale, kubectls};
use testkit::github::{FakeGitHub, TOKEN};

const BRANCH: &str = "infra-scale/prod";
const PLAN_PATH: &str = "ops/plans/infra-scale/prod/plan.yaml";

fn plan_args(out: &Path, replicas: u32, ns: &str) -> Vec<String> {
    vec![
        "plan".into(),
        "--apply".into(),
        "--target=prod".into(),
        format!("--namespace={ns}"),
        "--context=production".into(),
        format!("--workload=Deployment:web:{replicas}"),
        format!("--out={}", out.display()),
        "--require-pr".into(),
    ]
}

fn run(dir: &Path, args: &[String], env: &[(String, String)]) -> Out {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    infra_scale(dir, &args, &env)
}

fn assert_no_token(out: &Out) {
    assert!(!out.stdout.contains(TOKEN) && !out.stderr.contains(TOKEN), "the token leaked:\n{}", out.context());
}

/// A kubectl that records that it was started and fails.
fn tripwire_kubectl(dir: &Path) -> (PathBuf, PathBuf) {
    let log = dir.join("kubectl-calls.log");
    let script = dir.join("kubectl-tripwire.sh");
    std::fs::write(&script, format!("#!/bin/sh\necho \"$@\" >> '{}'\nexit 1\n", log.display())).expect("write script");
    let mut perms = std::fs::metadata(&script).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).expect("chmod");
    (script, log)
}

fn event(dir: &Path, fake: &FakeGitHub, number: u64, label: &str, sender: &str) -> PathBuf {
    let head = fake.branch_sha(BRANCH).expect("branch");
    let path = dir.join(format!("event-{label}-{sender}.json"));
    let payload = serde_json::json!({
        "action": "labeled", "number": number, "label": {"name": label},
        "pull_request": {"number": number, "head": {"sha": head, "ref": BRANCH}},
        "repository": {"full_name": fake.repository()}, "sender": {"login": sender},
    });
    std::fs::write(&path, payload.to_string()).expect("event");
    path
}

#[test]
fn plan_publish_approve_execute_and_report_back() {
    let kubectl = kubectls().into_iter().next().expect("kubectl");
    let cluster = Cluster::new(&kubectl);
    let fake = FakeGitHub::start();
    let dir = cluster.dir.path();
    let output = dir.join("github-output");
    let mut gh_env = fake.env();
    gh_env.push(("GITHUB_OUTPUT".into(), output.display().to_string()));
    gh_env.push(("GITHUB_EVENT_NAME".into(), "schedule".into()));
    gh_env.push(("GITHUB_REF".into(), "refs/heads/main".into()));

    // 1. Planning publishes: stdout contract, GITHUB_OUTPUT, one PR.
    let planned = run(dir, &plan_args(&dir.join("a1"), 5, &cluster.ns), &gh_env);
    assert_eq!(planned.code, 0, "{}", planned.context());
    assert_no_token(&planned);
    let pr = fake.pulls().into_iter().next().expect("a PR");
    let number = pr["number"].as_u64().expect("number");
    let html_url = pr["html_url"].as_str().expect("url");
    assert!(planned.stdout.contains(&format!("\noutputs_uri={html_url}\n")), "{}", planned.context());
    assert_eq!(planned.stdout.lines().last(), Some("awaiting_approval"));
    let outputs = std::fs::read_to_string(&output).expect("GITHUB_OUTPUT");
    let plan_text = fake.file(BRANCH, PLAN_PATH).expect("plan on the branch");
    let digest = infra_scale::github::sha256_hex(plan_text.as_bytes());
    for line in [
        format!("outputs_uri={html_url}"),
        format!("pr_number={number}"),
        format!("plan_sha256={digest}"),
        "status=awaiting_approval".into(),
    ] {
        assert!(outputs.lines().any(|l| l == line), "{line} missing from GITHUB_OUTPUT:\n{outputs}");
    }
    let (reads, writes) = fake.counts();
    eprintln!("binary, first publication in a scheduled run: {reads} reads + {writes} writes");
    assert!(reads + writes <= 8, "{reads} + {writes}");

    // 2. The nightly re-run with the same request writes nothing.
    fake.clear_requests();
    let again = run(dir, &plan_args(&dir.join("a2"), 5, &cluster.ns), &gh_env);
    assert_eq!(again.code, 0, "{}", again.context());
    let (reads, writes) = fake.counts();
    eprintln!("binary, unchanged re-run: {reads} reads + {writes} writes");
    assert_eq!(writes, 0);
    assert!(reads <= 4);
    assert!(again.stdout.contains(&format!("outputs_uri={html_url}")));

    // 3. bob approves the head; a triage user labels: refused, kubectl never started.
    fake.set_role("bob", "write");
    fake.review_as(number, "bob", "APPROVED", None);
    fake.set_role("trudy", "triage");
    fake.add_label_as(number, "execute-plan", "trudy");
    let (tripwire, calls) = tripwire_kubectl(dir);
    let mut refused_env = fake.env();
    refused_env.push(("GITHUB_EVENT_NAME".into(), "pull_request_target".into()));
    refused_env
        .push(("GITHUB_EVENT_PATH".into(), event(dir, &fake, number, "execute-plan", "trudy").display().to_string()));
    refused_env.push(("KUBECTL".into(), tripwire.display().to_string()));
    let apply_args: Vec<String> = vec![
        "apply".into(),
        // The plan's path in the repository: read through the API at the approved head.
        format!("--plan={PLAN_PATH}"),
        "--execute".into(),
        format!("--out={}", dir.join("x1").display()),
    ];
    let refused = run(dir, &apply_args, &refused_env);
    assert_eq!(refused.code, 3, "{}", refused.context());
    assert!(refused.stderr.contains("trudy") && refused.stderr.contains("`triage` role"), "{}", refused.context());
    assert!(!calls.exists(), "kubectl must not run when the gate refuses");
    assert_no_token(&refused);

    // 4. A writer labels: executed against the real cluster, reported back on the PR.
    fake.set_role("alice", "write");
    fake.remove_label_as(number, "execute-plan", "trudy");
    fake.add_label_as(number, "execute-plan", "alice");
    let mut exec_env = fake.env();
    exec_env.extend(cluster.env());
    exec_env.push(("GITHUB_EVENT_NAME".into(), "pull_request_target".into()));
    let alice_event = event(dir, &fake, number, "execute-plan", "alice").display().to_string();
    exec_env.push(("GITHUB_EVENT_PATH".into(), alice_event.clone()));
    exec_env.push(("GITHUB_STEP_SUMMARY".into(), dir.join("step-summary.md").display().to_string()));
    let executed = run(dir, &apply_args, &exec_env);
    assert_eq!(executed.code, 0, "{}", executed.context());
    assert_no_token(&executed);
    let web = cluster.cluster.get(&cluster.ns, "deployment/web");
    assert_eq!(web["spec"]["replicas"], 5, "the approved plan ran");
    assert_eq!(fake.labels(number), vec!["executed"]);
    let head = fake.branch_sha(BRANCH).expect("head");
    let states: Vec<String> =
        fake.statuses(&head).iter().filter_map(|s| s["state"].as_str().map(str::to_string)).collect();
    assert_eq!(states, vec!["pending", "success"]);
    let comment = &fake.comments(number)[0].2;
    assert!(comment.contains("Execution succeeded"), "{comment}");
    assert!(std::fs::read_to_string(dir.join("step-summary.md")).expect("summary").contains("web"));
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());

    // 5. Labelling the same plan again: already executed, refused without --force.
    fake.add_label_as(number, "execute-plan", "alice");
    let mut again_env = refused_env.clone();
    again_env.retain(|(k, _)| k != "GITHUB_EVENT_PATH");
    again_env.push(("GITHUB_EVENT_PATH".into(), alice_event));
    let again = run(dir, &apply_args, &again_env);
    assert_eq!(again.code, 3, "{}", again.context());
    assert!(again.stderr.contains("already executed"), "{}", again.context());
    assert!(!calls.exists());
}
