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
