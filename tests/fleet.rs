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
    for args in [&["plan", "--target=prod"][..], &["targets"][..]] {
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
