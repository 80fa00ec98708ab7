//! The fleet: `infra-scale targets` (the matrix of the scheduled workflow) driven through the
//! real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use indoc::indoc;

/// Runs the binary in `dir` with the CI environment scrubbed, plus `env`.
fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_infra-scale"));
    cmd.args(args).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("GITHUB_")
            || k.starts_with("RUNNER_")
            || k.starts_with("GH_")
            || k == "KUBECONFIG"
            || k == "KUBECTL"
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("KUBECTL", "/nonexistent/kubectl-must-not-run");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run infra-scale")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, rel: &str, content: &str) -> PathBuf {
    let p = dir.join(rel);
    std::fs::write(&p, content).expect("write");
    p
}

const FLEET: &str = indoc! {"
    targets:
      staging:
        kubeContext: shared
        namespace: assistant-staging
        workloads: [{kind: Deployment, name: web, replicas: 2}]
      prod:
        namespace: assistant
        environment: prod-gate
        workloads: [{kind: Deployment, name: web, replicas: 6}]
      batch:
        kubeContext: shared
        namespace: batch
        detect: false
        workloads: [{kind: StatefulSet, name: queue, replicas: 3}]
"};

#[test]
fn targets_prints_the_matrix_in_name_order_with_defaults_applied() {
    let dir = tempfile::tempdir().expect("tmp");
    write(dir.path(), "infra-scale.yaml", FLEET);
    let out = run_in(dir.path(), &["targets"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        concat!(
            r#"[{"target":"batch","context":"shared","namespace":"batch","environment":"infra-scale-batch","detect":false},"#,
            r#"{"target":"prod","context":"production","namespace":"assistant","environment":"prod-gate","detect":true},"#,
            r#"{"target":"staging","context":"shared","namespace":"assistant-staging","environment":"infra-scale-staging","detect":true}]"#,
            "\n"
        )
    );
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn targets_writes_the_matrix_to_github_output() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = write(dir.path(), "fleet.yaml", FLEET);
    let output = dir.path().join("github_output");
    std::fs::write(&output, "").expect("touch");
    let args = ["targets", "--config", config.to_str().expect("utf-8")];
    let out = run_in(dir.path(), &args, &[("GITHUB_OUTPUT", output.to_str().expect("utf-8"))]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&output).expect("read");
    assert_eq!(written, format!("targets={}", text(&out.stdout)));
}

#[test]
fn targets_validates_every_target_and_reports_all_problems() {
    let dir = tempfile::tempdir().expect("tmp");
    write(
        dir.path(),
        "infra-scale.yaml",
        indoc! {"
            targets:
              a:
                namespace: Bad_NS
                workloads: [{kind: Deployment, name: web, replicas: 2}]
              b:
                namespace: ok
                environment: \"has space\"
                workloads: [{kind: DaemonSet, name: web, replicas: 2}]
              good:
                namespace: ok
                workloads: [{kind: Deployment, name: web, replicas: 2}]
        "},
    );
    let out = run_in(dir.path(), &["targets"], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "no matrix on invalid input: {}", text(&out.stdout));
    for expected in [
        "infra-scale.yaml: targets.a.namespace: namespace `Bad_NS`",
        "infra-scale.yaml: targets.b.environment: environment `has space` contains ` `",
        "help: a GitHub environment name",
        "infra-scale.yaml: targets.b.workloads[0]: kind `DaemonSet` is refused",
        "4 problems found",
    ] {
        assert!(stderr.contains(expected), "missing `{expected}` in:\n{stderr}");
    }
}

#[test]
fn targets_refuses_unknown_keys_missing_files_and_empty_files() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = run_in(dir.path(), &["targets"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no infra-scale.yaml in the working directory"), "{}", text(&out.stderr));

    write(dir.path(), "infra-scale.yaml", "targets:\n  prod:\n    namespace: a\n    enviroment: x\n");
    let out = run_in(dir.path(), &["targets"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("infra-scale.yaml:4:5: invalid config") && stderr.contains("unknown field `enviroment`"),
        "{stderr}"
    );

    write(dir.path(), "empty.yaml", "targets: {}\n");
    let out = run_in(dir.path(), &["targets", "--config=empty.yaml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("empty.yaml: targets: the config file has no targets"), "{}", text(&out.stderr));
}

// Regression: two plans in the same second shared `.artifacts/infra-scale/<timestamp>/`, and the
// second replaced the first's plan.yaml, so the first's `plan_yaml=` named the other's plan.
#[test]
fn artifacts_of_two_targets_planned_in_the_same_second_both_survive() {
    let dir = tempfile::tempdir().expect("tmp");
    write(dir.path(), "infra-scale.yaml", FLEET);
    let env = [("SOURCE_DATE_EPOCH", "1760140800")];
    let mut printed = Vec::new();
    for target in ["prod", "staging", "prod"] {
        let out = run_in(dir.path(), &["plan", &format!("--target={target}")], &env);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let plan_yaml = stdout.lines().find_map(|l| l.strip_prefix("plan_yaml=")).expect("plan_yaml=").to_string();
        printed.push((target, plan_yaml));
    }
    let dirs: Vec<String> =
        printed.iter().map(|(_, p)| Path::new(p).parent().expect("dir").display().to_string()).collect();
    assert!(dirs[0].ends_with("/.artifacts/infra-scale/20251011T000000Z-prod"), "{}", dirs[0]);
    assert!(dirs[1].ends_with("/.artifacts/infra-scale/20251011T000000Z-staging"), "{}", dirs[1]);
    assert!(dirs[2].ends_with("/.artifacts/infra-scale/20251011T000000Z-prod-2"), "{}", dirs[2]);
    for (target, plan_yaml) in &printed {
        let plan = std::fs::read_to_string(plan_yaml).expect("plan survives");
        assert!(plan.contains(&format!("target: {target}")), "{plan_yaml} holds another target's plan");
    }
}

// Regression: `infra-scale plan … | head -1` ended with a panic and a backtrace on the broken pipe.
#[test]
fn a_closed_stdout_ends_quietly_with_the_usual_status() {
    let dir = tempfile::tempdir().expect("tmp");
    write(dir.path(), "infra-scale.yaml", FLEET);
    let plan = "--plan=plan-for-apply.yaml";
    for args in [&["plan", "--target=prod", "--out=for-apply"][..], &["targets"][..], &["apply", plan, "--dry-run"][..]]
    {
        if args[0] == "apply" {
            std::fs::copy(dir.path().join("for-apply/plan.yaml"), dir.path().join("plan-for-apply.yaml"))
                .expect("plan");
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_infra-scale"));
        cmd.args(args)
            .current_dir(dir.path())
            .env("SOURCE_DATE_EPOCH", "1760140800")
            .env_remove("GITHUB_OUTPUT")
            .env_remove("GITHUB_STEP_SUMMARY")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        drop(child.stdout.take()); // the reader goes away before the first line
        let out = child.wait_with_output().expect("wait");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    }
}

// ---- Planning from the live state: converged and drifted targets, against the real control
// plane (a namespace each, behind testkit's fault proxy; real kubectl) and the fake GitHub.

#[path = "apply_support/mod.rs"]
mod apply_support;

use apply_support::{Cluster, Out, infra_scale, kubectls};
use testkit::github::FakeGitHub;

const PROD_BRANCH: &str = "infra-scale/prod";

/// The fleet config: `prod` asks for `web_replicas` replicas of Deployment/web (the fixture has 3);
/// `broken` points at a kube context whose API server does not answer.
fn live_fleet(ns: &str, web_replicas: u32) -> String {
    format!(
        "targets:\n  prod:\n    kubeContext: production\n    namespace: {ns}\n    workloads: [{{kind: Deployment, name: web, replicas: {web_replicas}}}]\n  broken:\n    kubeContext: unreachable\n    namespace: {ns}\n    workloads: [{{kind: Deployment, name: web, replicas: 3}}]\n"
    )
}

/// The fixture namespace behind the proxy (context `production`), plus a context `unreachable`
/// whose server refuses connections.
fn live_cluster() -> Cluster {
    let kubectl = kubectls().into_iter().next().expect("kubectl");
    let cluster = Cluster::new(&kubectl);
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: proxy\n  cluster: {{server: '{url}'}}\n\
         - name: dead\n  cluster: {{server: 'http://127.0.0.1:1'}}\nusers:\n- name: nobody\n  user: {{}}\n\
         contexts:\n- name: production\n  context: {{cluster: proxy, user: nobody, namespace: {ns}}}\n\
         - name: unreachable\n  context: {{cluster: dead, user: nobody, namespace: {ns}}}\ncurrent-context: production\n",
        url = cluster.proxy.url(),
        ns = cluster.ns
    );
    std::fs::write(&cluster.kubeconfig, text).expect("kubeconfig");
    cluster
}

/// `plan --target=<target> --detect [--apply]` in the cluster's directory with `live_fleet(replicas)`.
fn plan_live(cluster: &Cluster, fake: &FakeGitHub, target: &str, replicas: u32, apply: bool) -> (Out, String) {
    let dir = cluster.dir.path();
    write(dir, "infra-scale.yaml", &live_fleet(&cluster.ns, replicas));
    let output = dir.join("github-output");
    std::fs::write(&output, "").expect("reset GITHUB_OUTPUT");
    let mut env = cluster.env();
    env.extend(fake.env());
    env.push(("GITHUB_OUTPUT".into(), output.display().to_string()));
    env.push(("GITHUB_EVENT_NAME".into(), "schedule".into()));
    env.push(("GITHUB_REF".into(), "refs/heads/main".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let target_arg = format!("--target={target}");
    let mut args = vec!["plan", target_arg.as_str(), "--detect"];
    if apply {
        args.push("--apply");
    }
    let out = infra_scale(dir, &args, &env);
    (out, std::fs::read_to_string(&output).expect("GITHUB_OUTPUT"))
}

fn assert_contract(fake: &FakeGitHub) {
    let v = fake.violations();
    assert!(v.is_empty(), "requests outside GitHub's OpenAPI description:\n{}", v.join("\n"));
}

fn keys(stdout: &str) -> Vec<&str> {
    stdout.lines().map(|l| l.split_once('=').map_or(l, |(k, _)| k)).collect()
}

#[test]
fn a_converged_target_opens_no_pull_request_and_writes_nothing() {
    let cluster = live_cluster();
    let fake = FakeGitHub::start();

    // Without --apply: the usual contract, ending in `succeeded`.
    let (out, _) = plan_live(&cluster, &fake, "prod", 3, false);
    assert_eq!(out.code, 0, "{}", out.context());
    assert_eq!(keys(&out.stdout), ["artifacts_dir", "plan_yaml", "summary_md", "succeeded"], "{}", out.context());
    assert!(out.stderr.contains("target prod: converged"), "{}", out.context());
    assert_eq!(fake.counts(), (0, 0), "no GitHub request without --apply");

    // With --apply: an empty outputs_uri and `converged`; no PR, no write, one read.
    let (out, outputs) = plan_live(&cluster, &fake, "prod", 3, true);
    assert_eq!(out.code, 0, "{}", out.context());
    assert_eq!(
        keys(&out.stdout),
        ["artifacts_dir", "plan_yaml", "summary_md", "outputs_uri", "converged"],
        "{}",
        out.context()
    );
    assert!(out.stdout.contains("\noutputs_uri=\nconverged\n"), "{}", out.context());
    assert!(fake.pulls().is_empty(), "a converged target opens no pull request");
    assert_eq!(fake.branch_sha(PROD_BRANCH), None, "and pushes no branch");
    let (reads, writes) = fake.counts();
    assert_eq!((reads, writes), (1, 0), "one look for an open plan PR, nothing written");
    for line in ["outputs_uri=", "pr_number=", "status=converged"] {
        assert!(outputs.lines().any(|l| l == line), "{line} missing from GITHUB_OUTPUT:\n{outputs}");
    }
    assert_eq!(cluster.proxy.writes(), [], "planning never writes to the cluster");
    assert!(!cluster.proxy.seen().is_empty(), "the plan read the live state through the proxy");
    assert_contract(&fake);
}

#[test]
fn a_drifted_target_gets_a_pr_which_is_closed_once_the_cluster_converges() {
    let cluster = live_cluster();
    let fake = FakeGitHub::start();

    // Drifted (the config asks for 5, the cluster runs 3): a draft PR, as today.
    let (out, _) = plan_live(&cluster, &fake, "prod", 5, true);
    assert_eq!(out.code, 0, "{}", out.context());
    assert_eq!(out.stdout.lines().last(), Some("awaiting_approval"), "{}", out.context());
    let pulls = fake.pulls();
    assert_eq!(pulls.len(), 1);
    let number = pulls[0]["number"].as_u64().expect("number");
    let html_url = pulls[0]["html_url"].as_str().expect("url").to_string();
    assert!(out.stdout.contains(&format!("\noutputs_uri={html_url}\n")), "{}", out.context());
    assert!(fake.branch_sha(PROD_BRANCH).is_some());

    // The unchanged re-run still writes nothing.
    fake.clear_requests();
    let (out, _) = plan_live(&cluster, &fake, "prod", 5, true);
    assert_eq!(out.code, 0, "{}", out.context());
    assert_eq!(fake.counts().1, 0, "unchanged re-run of a drifted target writes nothing");
    assert!(out.stdout.contains(&format!("\noutputs_uri={html_url}\n")), "{}", out.context());

    // The config now matches the cluster: the PR is commented on, closed, its branch deleted.
    fake.clear_requests();
    let comments_before = fake.comments(number).len();
    let (out, _) = plan_live(&cluster, &fake, "prod", 3, true);
    assert_eq!(out.code, 0, "{}", out.context());
    assert!(out.stdout.ends_with("\noutputs_uri=\nconverged\n"), "{}", out.context());
    let pr = fake.pull(number).expect("the PR");
    assert_eq!(pr["state"].as_str(), Some("closed"), "{pr}");
    assert_eq!(fake.pulls().len(), 1, "no new PR");
    let comments = fake.comments(number);
    assert_eq!(comments.len(), comments_before + 1, "{comments:?}");
    let (_, _, body) = comments.last().expect("comment");
    assert!(body.contains("The cluster converged") && body.contains("`prod`"), "{body}");
    assert_eq!(fake.branch_sha(PROD_BRANCH), None, "the plan branch is deleted");
    let log: Vec<String> = fake.requests().iter().filter(|r| r.is_write()).map(|r| r.line()).collect();
    assert_eq!(log.len(), 3, "comment, close, delete the branch:\n{}", log.join("\n"));
    assert_contract(&fake);

    // Converged again: no open PR any more, so nothing is written.
    fake.clear_requests();
    let (out, _) = plan_live(&cluster, &fake, "prod", 3, true);
    assert_eq!(out.code, 0, "{}", out.context());
    assert_eq!(fake.counts(), (1, 0));
    assert_eq!(fake.comments(number).len(), comments_before + 1);

    // Drifting again opens a fresh PR.
    let (out, _) = plan_live(&cluster, &fake, "prod", 4, true);
    assert_eq!(out.code, 0, "{}", out.context());
    assert_eq!(out.stdout.lines().last(), Some("awaiting_approval"));
    let open: Vec<_> = fake.pulls().into_iter().filter(|p| p["state"] == "open").collect();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_ne!(open[0]["number"].as_u64(), Some(number));
    assert_contract(&fake);
}

#[test]
fn a_failing_target_leaves_another_targets_pull_request_untouched() {
    let cluster = live_cluster();
    let fake = FakeGitHub::start();
    let (out, _) = plan_live(&cluster, &fake, "prod", 5, true);
    assert_eq!(out.code, 0, "{}", out.context());
    let number = fake.pulls()[0]["number"].as_u64().expect("number");
    let head = fake.branch_sha(PROD_BRANCH).expect("branch");
    let comments = fake.comments(number);

    fake.clear_requests();
    let (out, outputs) = plan_live(&cluster, &fake, "broken", 3, true);
    assert_ne!(out.code, 0, "{}", out.context());
    assert!(out.stderr.contains("unreachable"), "the failure names the context:\n{}", out.context());
    assert!(!out.stdout.contains("outputs_uri=") && !out.stdout.contains("converged"), "{}", out.context());
    assert_eq!(fake.counts(), (0, 0), "a target that failed sends nothing to GitHub");
    assert!(!outputs.contains("status="), "{outputs}");
    let pr = fake.pull(number).expect("the PR");
    assert_eq!(pr["state"].as_str(), Some("open"));
    assert_eq!(fake.branch_sha(PROD_BRANCH), Some(head));
    assert_eq!(fake.comments(number), comments);
}
