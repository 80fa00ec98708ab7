//! kubectl (and every exec plugin it starts) runs without the GitHub token, the metrics key, the
//! webhook URL or the action's inputs; what kubeconfig exec plugins need still passes. Proved by
//! a kubectl stand-in that records the environment it receives.

mod apply_support;

use std::os::unix::fs::PermissionsExt;

use apply_support::{infra_scale, plan};

#[test]
fn kubectl_receives_no_secret_of_the_run_but_keeps_what_exec_plugins_need() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("kubectl-env-recorder");
    let record = dir.path().join("kubectl-env.txt");
    std::fs::write(&script, format!("#!/bin/sh\nenv > '{}'\nexit 1\n", record.display())).expect("write");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\n").expect("kubeconfig");

    let secrets = [
        ("GITHUB_TOKEN", "ghs_secret_github_token_0001"),
        ("GH_TOKEN", "ghs_secret_gh_token_0002"),
        ("METRICS_KEY", "secret-metrics-key-0003"),
        ("METRICS_URL", "https://metrics.example/secret-0004"),
        ("INFRA_SCALE_WEBHOOK_URL", "https://hooks.example/secret-0005"),
        ("INPUT_KUBECONFIG", "secret-input-0006"),
        ("IS_GITHUB_TOKEN", "secret-input-0007"),
        ("ACTIONS_RUNTIME_TOKEN", "secret-runtime-0008"),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "secret-oidc-0009"),
    ];
    let kept = [
        ("KUBECONFIG", kubeconfig.to_str().expect("utf8")),
        ("AWS_PROFILE", "prod-eks"),
        ("AWS_REGION", "eu-west-1"),
        ("GOOGLE_APPLICATION_CREDENTIALS", "/var/run/gcp.json"),
        ("CLOUDSDK_CORE_PROJECT", "fleet"),
        ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000000"),
        ("HTTPS_PROXY", "http://proxy.invalid:3128"),
        ("KUBECACHEDIR", "/var/cache/kube-cache"),
    ];
    let plan_arg = format!("--plan={}", plan("prototype-prod.yaml").display());
    let mut env: Vec<(&str, &str)> = vec![("KUBECTL", script.to_str().expect("utf8"))];
    env.extend(secrets);
    env.extend(kept);
    let out = infra_scale(dir.path(), &["apply", &plan_arg, "--execute"], &env);
    assert_ne!(out.code, 0, "the stand-in fails the first call: {}", out.context());
    let seen = std::fs::read_to_string(&record).expect("kubectl was started and recorded its environment");
    for (name, value) in secrets {
        assert!(!seen.contains(value), "{name} reached kubectl:\n{seen}");
        assert!(!seen.lines().any(|l| l.starts_with(&format!("{name}="))), "{name} reached kubectl:\n{seen}");
    }
    for (name, value) in kept {
        assert!(seen.lines().any(|l| l == format!("{name}={value}")), "{name} did not reach kubectl:\n{seen}");
    }
    for name in ["PATH", "HOME"] {
        assert!(seen.lines().any(|l| l.starts_with(&format!("{name}="))), "{name} missing:\n{seen}");
    }
    for (_, value) in secrets {
        assert!(!out.stdout.contains(value) && !out.stderr.contains(value), "a secret was printed:\n{}", out.context());
    }
}
