//! The `fake-kube` binary: serves its demo fixture until killed, for the benchmark and the action harness.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn fake_kube_binary_serves_the_demo_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kc.yaml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-kube"))
        .args(["--kubeconfig", kubeconfig.to_str().unwrap(), "--context", "bench", "--workloads", "3"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start fake-kube");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines.next().unwrap().unwrap();
    assert!(url.starts_with("url=http://127.0.0.1:"), "{url}");
    assert_eq!(lines.next().unwrap().unwrap(), format!("kubeconfig={}", kubeconfig.display()));
    let out = Command::new("/usr/bin/kubectl")
        .args(["get", "deployments", "-n", "assistant", "-o", "jsonpath={.items[*].metadata.name}"])
        .env("KUBECONFIG", &kubeconfig)
        .env("KUBECACHEDIR", dir.path().join("cache"))
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "api app-001 app-002 app-003 web");
    let config = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(config.contains("current-context: bench"));
}

#[test]
fn fake_kube_binary_rejects_bad_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_fake-kube")).args(["--workloads", "many"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workloads must be a number, got `many`"));
    let out = Command::new(env!("CARGO_BIN_EXE_fake-kube")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kubeconfig PATH is required"));
}
