//! The fake Kubernetes API server driven by the real kubectl, for several kubectl minors: every
//! scenario runs once per installed version (in parallel threads) and asserts the fake's final state.
//!
//! Versions: `INFRA_SCALE_TEST_KUBECTLS` (paths separated by `:`) when set; otherwise `/usr/bin/kubectl`
//! (the Google Cloud SDK dispatcher running v1.32; required), and from the SDK's `bin/` directory
//! kubectl.1.33, kubectl.1.29 and kubectl.1.27 when installed (skipped with a note otherwise).
//! kubectl ≤1.28 validates manifests against `/openapi/v2`, which the fake does not serve, so `apply`
//! runs with `--validate=false` there (the minor is read from `kubectl version --client`).

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testkit::kube::{Container, FakeKube, TOKEN};

const SDK_BIN: &str = "/usr/lib/google-cloud-sdk/bin";

#[derive(Clone, Debug)]
struct Kubectl {
    label: String,
    path: PathBuf,
    /// kubectl ≤1.28 needs `--validate=false` for apply against this fake.
    needs_validate_false: bool,
}

/// The client minor version of a kubectl binary.
fn client_minor(path: &Path) -> u32 {
    let out = Command::new(path).args(["version", "--client", "-o", "json"]).output().expect("run kubectl version");
    let v: Value = serde_json::from_slice(&out.stdout).expect("kubectl version --client -o json");
    let minor = v["clientVersion"]["minor"].as_str().unwrap_or("").trim_end_matches('+');
    minor.parse().unwrap_or_else(|_| panic!("no client minor version from {}", path.display()))
}

fn kubectl(path: PathBuf) -> Kubectl {
    let minor = client_minor(&path);
    Kubectl { label: format!("1.{minor} ({})", path.display()), path, needs_validate_false: minor <= 28 }
}

fn kubectls() -> Vec<Kubectl> {
    if let Some(list) = std::env::var_os("INFRA_SCALE_TEST_KUBECTLS").filter(|v| !v.is_empty()) {
        return std::env::split_paths(&list).map(kubectl).collect();
    }
    let main = PathBuf::from("/usr/bin/kubectl");
    assert!(main.exists(), "kubectl 1.32 must be installed at /usr/bin/kubectl (or set INFRA_SCALE_TEST_KUBECTLS)");
    let mut out = vec![kubectl(main)];
    for minor in ["1.33", "1.29", "1.27"] {
        let path = Path::new(SDK_BIN).join(format!("kubectl.{minor}"));
        if path.exists() {
            out.push(kubectl(path));
        } else {
            eprintln!("note: kubectl {minor} is not installed at {}; skipping it", path.display());
        }
    }
    out
}

/// Runs `scenario` once per kubectl version, in parallel, and fails with every version's panic.
fn for_each_kubectl(scenario: fn(&Kubectl)) {
    let handles: Vec<(String, std::thread::JoinHandle<()>)> =
        kubectls().into_iter().map(|k| (k.label.clone(), std::thread::spawn(move || scenario(&k)))).collect();
    let failed: Vec<String> = handles.into_iter().filter_map(|(label, h)| h.join().is_err().then_some(label)).collect();
    assert!(failed.is_empty(), "scenario failed with kubectl {failed:?} (see the panic messages above)");
}

/// A fresh fake with a kubeconfig and its own discovery cache.
struct Cluster {
    kube: FakeKube,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

impl Cluster {
    fn new() -> Cluster {
        let kube = FakeKube::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = kube.write_kubeconfig(dir.path(), "fake");
        Cluster { kube, dir, kubeconfig }
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write manifest");
        p
    }

    fn kubectl(&self, k: &Kubectl, args: &[&str]) -> Run {
        let mut args: Vec<&str> = args.to_vec();
        if k.needs_validate_false && args.contains(&"apply") {
            args.push("--validate=false");
        }
        let out = Command::new(&k.path)
            .args(&args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.dir.path().join("cache"))
            .env("HOME", self.dir.path())
            .env_remove("KUBECTL_EXTERNAL_DIFF")
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl");
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(!run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN), "kubectl printed the token");
        run
    }

    /// Runs kubectl and asserts exit code 0.
    fn ok(&self, k: &Kubectl, args: &[&str]) -> Run {
        let run = self.kubectl(k, args);
        assert_eq!(run.code, 0, "kubectl {} {args:?} failed:\n{}{}", k.label, run.stdout, run.stderr);
        run
    }

    /// Runs kubectl and asserts a non-zero exit code.
    fn fails(&self, k: &Kubectl, args: &[&str]) -> Run {
        let run = self.kubectl(k, args);
        assert_ne!(run.code, 0, "kubectl {} {args:?} should fail:\n{}{}", k.label, run.stdout, run.stderr);
        run
    }

    fn deployment(&self, name: &str) -> Value {
        self.kube.deployment("assistant", name).unwrap_or_else(|| panic!("deployment {name} missing"))
    }
}

fn app(name: &str) -> Container {
    Container::new(name).request("cpu", "250m").request("memory", "256Mi").limit("memory", "512Mi")
}

/// `assistant` with Deployment web (3 replicas; containers web + log-shipper; init container migrate).
fn web_cluster() -> Cluster {
    let c = Cluster::new();
    c.kube.add_deployment(
        "assistant",
        "web",
        3,
        &[
            app("web"),
            Container::new("log-shipper").request("cpu", "50m").limit("cpu", "100m"),
            Container::new("migrate").request("cpu", "100m").init(),
        ],
    );
    c
}

fn containers(d: &Value) -> Vec<Value> {
    d["spec"]["template"]["spec"]["containers"].as_array().cloned().unwrap_or_default()
}

fn container<'a>(d: &'a Value, name: &str) -> &'a Value {
    let list = d["spec"]["template"]["spec"]["containers"].as_array().expect("containers");
    list.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("container {name} missing"))
}

const WEB_RESOURCES: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: assistant
spec:
  template:
    spec:
      containers:
      - name: web
        resources:
          requests:
            cpu: 500m
            memory: 1Gi
          limits:
            cpu: \"1\"
            memory: 2Gi
";

fn hpa_manifest(min: i64, max: i64, cpu: i64) -> String {
    format!(
        "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
  namespace: assistant
  labels:
    app.kubernetes.io/managed-by: infra-scale
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: web
  minReplicas: {min}
  maxReplicas: {max}
  metrics:
  - type: Resource
    resource:
      name: cpu
      target:
        type: Utilization
        averageUtilization: {cpu}
"
    )
}

#[test]
fn get_returns_the_stored_object_and_404_for_unknown_ones() {
    for_each_kubectl(|k| {
        let c = web_cluster();
        let got = c.ok(k, &["get", "deployment", "web", "-n", "assistant", "-o", "json"]).json();
        assert_eq!(got["metadata"]["name"], "web");
        assert_eq!(got["spec"]["replicas"], 3);
        assert_eq!(got["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "1");
        assert_eq!(container(&got, "web")["resources"]["limits"]["memory"], "512Mi");
        let missing = c.fails(k, &["get", "deployment", "nope", "-n", "assistant", "-o", "json"]);
        assert!(
            missing.stderr.contains("Error from server (NotFound): deployments.apps \"nope\" not found"),
            "{}",
            missing.stderr
        );
        // Human output: a server-side Table with the usual columns.
        let table = c.ok(k, &["get", "deployments", "-n", "assistant"]).stdout;
        let lines: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(lines[0], vec!["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"], "{table}");
        assert_eq!(lines[1][..4], ["web", "3/3", "3", "3"], "{table}");
        let ns = c.ok(k, &["get", "namespace", "assistant", "-o", "json"]).json();
        assert_eq!(ns["status"]["phase"], "Active");
        if client_minor(&k.path) >= 30 {
            // kubectl ≥1.30 names itself: one session per process, the command per request.
            assert_eq!(c.kube.kubectl_sessions(), 4);
            let commands: Vec<Option<String>> = c.kube.requests().iter().map(|r| r.kubectl_command.clone()).collect();
            assert!(commands.iter().flatten().all(|cmd| cmd == "kubectl get"), "{commands:?}");
        }
    });
}

#[test]
fn scale_with_current_replicas_is_a_compare_and_swap() {
    for_each_kubectl(|k| {
        let c = web_cluster();
        c.ok(k, &["scale", "deployment/web", "-n", "assistant", "--current-replicas=3", "--replicas=6"]);
        let d = c.deployment("web");
        assert_eq!(d["spec"]["replicas"], 6);
        assert_eq!(d["metadata"]["generation"], 2, "a replicas change bumps the generation");
        assert_eq!(d["status"]["availableReplicas"], 6, "status settles");
        assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "1", "no template change");
        let rv = d["metadata"]["resourceVersion"].clone();
        let mismatch =
            c.fails(k, &["scale", "deployment/web", "-n", "assistant", "--current-replicas=3", "--replicas=4"]);
        assert!(mismatch.stderr.contains("Expected replicas to be 3, was 6"), "{}", mismatch.stderr);
        let stale = c.fails(k, &["scale", "deployment/web", "-n", "assistant", "--resource-version=1", "--replicas=4"]);
        assert!(stale.stderr.contains("Expected resource version to be 1"), "{}", stale.stderr);
        let d = c.deployment("web");
        assert_eq!(d["spec"]["replicas"], 6);
        assert_eq!(d["metadata"]["resourceVersion"], rv, "failed scales write nothing");
        // The blind form is a merge patch of /scale.
        c.ok(k, &["scale", "deployment/web", "-n", "assistant", "--replicas=2"]);
        assert_eq!(c.deployment("web")["spec"]["replicas"], 2);
        assert!(c.kube.requests().iter().any(|r| r.method == "PATCH"
            && r.path.ends_with("/deployments/web/scale")
            && r.content_type.as_deref() == Some("application/merge-patch+json")));
    });
}

#[test]
fn set_resources_with_c_changes_only_that_container() {
    for_each_kubectl(|k| {
        let c = web_cluster();
        let before = c.deployment("web");
        c.ok(
            k,
            &[
                "set",
                "resources",
                "deployment/web",
                "-n",
                "assistant",
                "-c",
                "web",
                "--requests=cpu=500m,memory=1Gi",
                "--limits=cpu=1,memory=2Gi",
            ],
        );
        let d = c.deployment("web");
        assert_eq!(
            container(&d, "web")["resources"],
            json!({"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}})
        );
        assert_eq!(container(&d, "log-shipper"), container(&before, "log-shipper"));
        assert_eq!(
            d["spec"]["template"]["spec"]["initContainers"],
            before["spec"]["template"]["spec"]["initContainers"]
        );
        assert_eq!(d["metadata"]["generation"], 2);
        assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2");
        let managers: Vec<&str> =
            d["metadata"]["managedFields"].as_array().unwrap().iter().filter_map(|m| m["manager"].as_str()).collect();
        assert_eq!(managers, vec!["kubectl-set"]);
    });
}

#[test]
fn server_side_apply_of_a_partial_deployment_touches_one_container() {
    for_each_kubectl(|k| {
        let c = web_cluster();
        let before = c.deployment("web");
        let file = c.file("web-resources.yaml", WEB_RESOURCES);
        let f = file.to_str().unwrap();
        let out = c.ok(k, &["apply", "--server-side", "--field-manager=infra-scale", "-f", f]);
        assert!(out.stdout.contains("deployment.apps/web serverside-applied"), "{}", out.stdout);
        let d = c.deployment("web");
        let web = container(&d, "web");
        assert_eq!(web["resources"]["requests"], json!({"cpu": "500m", "memory": "1Gi"}));
        assert_eq!(web["resources"]["limits"], json!({"cpu": "1", "memory": "2Gi"}));
        assert_eq!(web["image"], container(&before, "web")["image"], "fields not in the manifest stay");
        assert_eq!(container(&d, "log-shipper"), container(&before, "log-shipper"));
        assert_eq!(containers(&d).len(), 2);
        assert_eq!(
            d["spec"]["template"]["spec"]["initContainers"],
            before["spec"]["template"]["spec"]["initContainers"]
        );
        assert_eq!(d["spec"]["replicas"], 3);
        assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2");
        let entry =
            d["metadata"]["managedFields"].as_array().unwrap().iter().find(|m| m["manager"] == "infra-scale").cloned();
        assert_eq!(entry.as_ref().map(|e| e["operation"].clone()), Some(json!("Apply")));
        // Re-applying the same manifest is a no-op: nothing is written.
        let rv = d["metadata"]["resourceVersion"].clone();
        c.ok(k, &["apply", "--server-side", "--field-manager=infra-scale", "-f", f]);
        assert_eq!(c.deployment("web")["metadata"]["resourceVersion"], rv);
        // A rollback manifest without the CPU limit removes it: infra-scale was its only owner.
        let rollback = WEB_RESOURCES
            .replace("            cpu: \"1\"\n", "")
            .replace("500m", "250m")
            .replace("memory: 1Gi", "memory: 256Mi")
            .replace("2Gi", "512Mi");
        let rb = c.file("rollback.yaml", &rollback);
        c.ok(k, &["apply", "--server-side", "--field-manager=infra-scale", "-f", rb.to_str().unwrap()]);
        let d = c.deployment("web");
        assert_eq!(container(&d, "web")["resources"], container(&before, "web")["resources"]);
        assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "3");
    });
}

#[test]
fn server_side_apply_of_an_hpa_creates_then_updates() {
    for_each_kubectl(|k| {
        let c = web_cluster();
        let file = c.file("hpa.yaml", &hpa_manifest(4, 12, 65));
        let f = file.to_str().unwrap();
        c.ok(k, &["apply", "--server-side", "--field-manager=infra-scale", "-f", f]);
        let hpa = c.kube.hpa("assistant", "web").expect("created");
        assert_eq!(hpa["spec"]["minReplicas"], 4);
        assert_eq!(hpa["spec"]["maxReplicas"], 12);
        assert_eq!(hpa["metadata"]["labels"]["app.kubernetes.io/managed-by"], "infra-scale");
        std::fs::write(&file, hpa_manifest(4, 15, 70)).unwrap();
        c.ok(k, &["apply", "--server-side", "--field-manager=infra-scale", "-f", f]);
        let hpa = c.kube.hpa("assistant", "web").expect("still there");
        assert_eq!(hpa["spec"]["maxReplicas"], 15);
        assert_eq!(hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 70);
        assert_eq!(hpa["metadata"]["generation"], 2);
        let codes: Vec<u16> = c
            .kube
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH" && r.path.ends_with("/horizontalpodautoscalers/web"))
            .map(|r| r.status)
            .collect();
        assert_eq!(codes, vec![201, 200]);
        let patch = c.kube.requests().into_iter().find(|r| r.method == "PATCH").unwrap();
        assert_eq!(patch.content_type.as_deref(), Some("application/apply-patch+yaml"));
        assert_eq!(patch.param("fieldManager").as_deref(), Some("infra-scale"));
        let expected_validation = if k.needs_validate_false { "Ignore" } else { "Strict" };
        assert_eq!(patch.param("fieldValidation").as_deref(), Some(expected_validation));
        let v1 =
            c.ok(k, &["get", "horizontalpodautoscalers.v1.autoscaling", "web", "-n", "assistant", "-o", "json"]).json();
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 70, "served as autoscaling/v1 by conversion");
    });
}

#[test]
fn server_dry_run_persists_nothing() {
    for_each_kubectl(|k| {
        let c = web_cluster();
        let rv = c.kube.resource_version();
        let before = c.deployment("web");
        let res = c.file("web-resources.yaml", WEB_RESOURCES);
        let hpa = c.file("hpa.yaml", &hpa_manifest(4, 12, 65));
        for f in [&res, &hpa] {
            let out = c.ok(
                k,
                &[
                    "apply",
                    "--server-side",
                    "--field-manager=infra-scale",
                    "--dry-run=server",
                    "-f",
                    f.to_str().unwrap(),
                ],
            );
            assert!(out.stdout.contains("(server dry run)"), "{}", out.stdout);
        }
        c.ok(k, &["scale", "deployment/web", "-n", "assistant", "--replicas=9", "--dry-run=server"]);
        c.ok(
            k,
            &[
                "set",
                "resources",
                "deployment/web",
                "-n",
                "assistant",
                "-c",
                "web",
                "--limits=cpu=2",
                "--dry-run=server",
            ],
        );
        assert_eq!(c.deployment("web"), before);
        assert!(c.kube.hpa("assistant", "web").is_none());
        assert_eq!(c.kube.resource_version(), rv);
        assert_eq!(c.kube.write_count(), 0);
        assert!(
            c.kube
                .requests()
                .iter()
                .filter(|r| r.method == "PATCH")
                .all(|r| r.param("dryRun").as_deref() == Some("All"))
        );
    });
}

#[test]
fn invalid_changes_get_the_apiservers_422_and_change_nothing() {
    for_each_kubectl(|k| {
        let c = web_cluster();
        let before = c.deployment("web");
        let mem = c.fails(
            k,
            &["set", "resources", "deployment/web", "-n", "assistant", "-c", "web", "--requests=cpu=500m,mem=1Gi"],
        );
        assert!(
            mem.stderr.contains("spec.template.spec.containers[0].resources.requests[mem]: Invalid value: \"mem\": must be a standard resource type or fully qualified"),
            "{}",
            mem.stderr
        );
        assert!(mem.stderr.contains("must be a standard resource for containers"), "{}", mem.stderr);
        let over = c
            .fails(k, &["set", "resources", "deployment/web", "-n", "assistant", "-c", "web", "--requests=memory=1Gi"]);
        assert!(over.stderr.contains("must be less than or equal to memory limit of 512Mi"), "{}", over.stderr);
        let manifest = WEB_RESOURCES.replace("cpu: 500m", "cpu: \"-1\"");
        let neg = c.file("neg.yaml", &manifest);
        let run = c.fails(k, &["apply", "--server-side", "--field-manager=infra-scale", "-f", neg.to_str().unwrap()]);
        assert!(
            run.stderr.contains("requests[cpu]: Invalid value: \"-1\": must be greater than or equal to 0"),
            "{}",
            run.stderr
        );
        let bad_qty = c.file("badq.yaml", &WEB_RESOURCES.replace("memory: 1Gi", "memory: 1GB"));
        let run =
            c.fails(k, &["apply", "--server-side", "--field-manager=infra-scale", "-f", bad_qty.to_str().unwrap()]);
        assert!(run.stderr.contains("quantities must match the regular expression"), "{}", run.stderr);
        assert_eq!(c.deployment("web"), before);
        for (manifest, message) in [
            (
                hpa_manifest(5, 3, 65),
                "spec.maxReplicas: Invalid value: 3: must be greater than or equal to `minReplicas`",
            ),
            (hpa_manifest(0, 3, 65), "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"),
            (
                hpa_manifest(1, 3, 0),
                "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
            ),
        ] {
            let f = c.file("bad-hpa.yaml", &manifest);
            let run = c.fails(k, &["apply", "--server-side", "--field-manager=infra-scale", "-f", f.to_str().unwrap()]);
            assert!(run.stderr.contains(message), "want {message}, got {}", run.stderr);
            assert!(run.stderr.contains("The HorizontalPodAutoscaler \"web\" is invalid"), "{}", run.stderr);
        }
        assert!(c.kube.hpa("assistant", "web").is_none());
        // Unknown fields: server-side apply always rejects them; other writes under kubectl's default
        // fieldValidation=Strict (kubectl ≥1.29 against this fake).
        let typo = c.file("typo.yaml", &WEB_RESOURCES.replace("        resources:", "        resourcez:"));
        let run = c.fails(k, &["apply", "--server-side", "--field-manager=infra-scale", "-f", typo.to_str().unwrap()]);
        assert!(
            run.stderr.contains(".spec.template.spec.containers[name=\"web\"].resourcez: field not declared in schema"),
            "{}",
            run.stderr
        );
        let v1_field = c.file(
            "v1field.yaml",
            &hpa_manifest(2, 4, 60)
                .replace("  minReplicas: 2", "  minReplicas: 2\n  targetCPUUtilizationPercentage: 60"),
        );
        let run =
            c.fails(k, &["apply", "--server-side", "--field-manager=infra-scale", "-f", v1_field.to_str().unwrap()]);
        assert!(
            run.stderr.contains(".spec.targetCPUUtilizationPercentage: field not declared in schema"),
            "{}",
            run.stderr
        );
        // kubectl patch sends no fieldValidation: the server's default (Warn) drops the field and warns.
        let run = c.ok(
            k,
            &["patch", "deployment", "web", "-n", "assistant", "--type=merge", "-p", r#"{"spec":{"replica":5}}"#],
        );
        assert!(run.stderr.contains("Warning: unknown field \"spec.replica\""), "{}", run.stderr);
        assert_eq!(c.deployment("web"), before);
        assert!(c.kube.hpa("assistant", "web").is_none());
    });
}

#[test]
fn diff_and_wait_work_for_the_executor() {
    for_each_kubectl(|k| {
        let c = web_cluster();
        let res = c.file("web-resources.yaml", WEB_RESOURCES);
        let f = res.to_str().unwrap();
        let diff = c.kubectl(k, &["diff", "--server-side", "--field-manager=infra-scale", "-f", f]);
        assert_eq!(diff.code, 1, "a pending change: {}{}", diff.stdout, diff.stderr);
        assert!(diff.stdout.contains("+            cpu: 500m"), "{}", diff.stdout);
        assert_eq!(
            container(&c.deployment("web"), "web")["resources"]["requests"]["cpu"],
            "250m",
            "diff writes nothing"
        );
        c.ok(k, &["apply", "--server-side", "--field-manager=infra-scale", "-f", f]);
        let diff = c.kubectl(k, &["diff", "--server-side", "--field-manager=infra-scale", "-f", f]);
        assert_eq!(diff.code, 0, "no change left: {}{}", diff.stdout, diff.stderr);
        let hpa = c.file("hpa.yaml", &hpa_manifest(4, 12, 65));
        c.ok(k, &["apply", "--server-side", "--field-manager=infra-scale", "-f", hpa.to_str().unwrap()]);
        c.ok(k, &["wait", "hpa/web", "-n", "assistant", "--for=condition=ScalingActive", "--timeout=10s"]);
        // One multi-document apply for several workloads: one process, one PATCH each.
        c.kube.add_deployment("assistant", "api", 2, &[app("api")]);
        let both = format!("{WEB_RESOURCES}---\n{}", WEB_RESOURCES.replace("web", "api"));
        let both = c.file("both.yaml", &both);
        c.kube.clear_requests();
        c.ok(k, &["apply", "--server-side", "--field-manager=infra-scale", "-f", both.to_str().unwrap()]);
        assert_eq!(c.kube.count_requests("PATCH", "/deployments/"), 2);
        assert_eq!(container(&c.deployment("api"), "api")["resources"]["limits"]["memory"], "2Gi");
    });
}

#[test]
fn rollout_status_completes_waits_and_times_out() {
    for_each_kubectl(|k| {
        let c = web_cluster();
        c.kube.add_statefulset("assistant", "db", 2, &[app("db")]);
        let ok = c.ok(k, &["rollout", "status", "deployment/web", "-n", "assistant", "--timeout=10s"]);
        assert!(ok.stdout.contains("successfully rolled out"), "{}", ok.stdout);
        // A rollout that converges a little later: kubectl sees it through the watch.
        c.kube.delayed_rollout("Deployment", "web", Duration::from_millis(600));
        c.ok(k, &["scale", "deployment/web", "-n", "assistant", "--replicas=5"]);
        let started = Instant::now();
        let waited = c.ok(k, &["rollout", "status", "deployment/web", "-n", "assistant", "--timeout=10s"]);
        assert!(waited.stdout.contains("Waiting for deployment \"web\" rollout to finish"), "{}", waited.stdout);
        assert!(waited.stdout.contains("successfully rolled out"), "{}", waited.stdout);
        assert!(started.elapsed() < Duration::from_secs(5));
        // A stuck rollout never converges: the timeout fails the command.
        c.kube.stuck_rollout("Deployment", "web");
        c.ok(k, &["set", "resources", "deployment/web", "-n", "assistant", "-c", "web", "--limits=cpu=2"]);
        let started = Instant::now();
        let stuck = c.fails(k, &["rollout", "status", "deployment/web", "-n", "assistant", "--timeout=2s"]);
        assert!(stuck.stderr.contains("timed out waiting for the condition"), "{}", stuck.stderr);
        assert!(started.elapsed() >= Duration::from_secs(2) && started.elapsed() < Duration::from_secs(8));
        c.kube.resume_rollout("Deployment", "web");
        c.ok(k, &["rollout", "status", "deployment/web", "-n", "assistant", "--timeout=10s"]);
        // ProgressDeadlineExceeded fails at once.
        c.kube.failed_rollout("Deployment", "web");
        c.ok(k, &["scale", "deployment/web", "-n", "assistant", "--replicas=3"]);
        let failed = c.fails(k, &["rollout", "status", "deployment/web", "-n", "assistant", "--timeout=10s"]);
        assert!(failed.stderr.contains("exceeded its progress deadline"), "{}", failed.stderr);
        // StatefulSets: converged, then stuck.
        let sts = c.ok(k, &["rollout", "status", "statefulset/db", "-n", "assistant", "--timeout=10s"]);
        assert!(sts.stdout.contains("roll out complete"), "{}", sts.stdout);
        c.kube.stuck_rollout("StatefulSet", "db");
        c.ok(k, &["scale", "statefulset/db", "-n", "assistant", "--replicas=4"]);
        c.fails(k, &["rollout", "status", "statefulset/db", "-n", "assistant", "--timeout=2s"]);
        assert_eq!(c.kube.statefulset("assistant", "db").unwrap()["spec"]["replicas"], 4);
    });
}

#[test]
fn delete_hpa_for_rollback() {
    for_each_kubectl(|k| {
        let c = web_cluster();
        c.kube.add_hpa("assistant", "web", "Deployment", "web", 2, 6, Some(70));
        let out = c.ok(k, &["delete", "hpa", "web", "-n", "assistant"]);
        assert!(out.stdout.contains("horizontalpodautoscaler.autoscaling \"web\" deleted"), "{}", out.stdout);
        assert!(c.kube.hpa("assistant", "web").is_none());
        let again = c.fails(k, &["delete", "hpa", "web", "-n", "assistant"]);
        assert!(again.stderr.contains("NotFound"), "{}", again.stderr);
        c.ok(k, &["delete", "hpa", "web", "-n", "assistant", "--ignore-not-found"]);
    });
}

#[test]
fn multi_type_get_returns_one_list() {
    for_each_kubectl(|k| {
        let c = web_cluster();
        c.kube.add_deployment("assistant", "api", 2, &[app("api")]);
        c.kube.add_statefulset("assistant", "db", 1, &[app("db")]);
        c.kube.add_hpa("assistant", "api", "Deployment", "api", 2, 8, Some(60));
        c.kube.add_resource_quota(
            "assistant",
            "compute",
            &[("requests.cpu", "10"), ("requests.memory", "20Gi")],
            &[("requests.cpu", "1.5"), ("requests.memory", "4096Mi")],
        );
        c.kube.add_deployment("other", "elsewhere", 1, &[app("elsewhere")]);
        let list = c
            .ok(
                k,
                &[
                    "get",
                    "deployments,statefulsets,horizontalpodautoscalers,resourcequotas",
                    "-n",
                    "assistant",
                    "-o",
                    "json",
                ],
            )
            .json();
        assert_eq!(list["kind"], "List");
        let items: Vec<(String, String)> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["kind"].as_str().unwrap().to_string(), i["metadata"]["name"].as_str().unwrap().to_string()))
            .collect();
        let want: Vec<(String, String)> = [
            ("Deployment", "api"),
            ("Deployment", "web"),
            ("StatefulSet", "db"),
            ("HorizontalPodAutoscaler", "api"),
            ("ResourceQuota", "compute"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(items, want);
        let quota = &list["items"][4];
        assert_eq!(
            quota["status"]["used"],
            json!({"requests.cpu": "1500m", "requests.memory": "4Gi"}),
            "canonical quantities"
        );
        // Several names of one type in one call.
        let two = c.ok(k, &["get", "deployment", "web", "api", "-n", "assistant", "-o", "json"]).json();
        assert_eq!(two["items"].as_array().unwrap().len(), 2);
    });
}

#[test]
fn injected_faults_fail_the_right_calls() {
    for_each_kubectl(|k| {
        let c = web_cluster();
        let res = c.file("web-resources.yaml", WEB_RESOURCES);
        let f = res.to_str().unwrap();
        let apply = ["apply", "--server-side", "--field-manager=infra-scale", "-f", f];
        c.kube.fail_next_patch("Deployment", "web", 500, "etcdserver: request timed out");
        let run = c.fails(k, &apply);
        assert!(run.stderr.contains("etcdserver: request timed out"), "{}", run.stderr);
        assert_eq!(container(&c.deployment("web"), "web")["resources"]["requests"]["cpu"], "250m");
        c.kube.fail_on_dry_run(
            "Deployment",
            "web",
            403,
            "admission webhook \"policy.example.com\" denied the request: cpu limit too high",
        );
        let mut dry = apply.to_vec();
        dry.push("--dry-run=server");
        let run = c.fails(k, &dry);
        assert!(run.stderr.contains("Forbidden") && run.stderr.contains("denied the request"), "{}", run.stderr);
        c.kube.conflict_on_apply("Deployment", "web");
        let run = c.fails(k, &apply);
        assert!(
            run.stderr
                .contains("Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1"),
            "{}",
            run.stderr
        );
        assert_eq!(container(&c.deployment("web"), "web")["resources"]["requests"]["cpu"], "250m");
        let mut forced = apply.to_vec();
        forced.push("--force-conflicts");
        c.ok(k, &forced);
        assert_eq!(container(&c.deployment("web"), "web")["resources"]["requests"]["cpu"], "500m");
    });
}

#[test]
fn field_ownership_conflicts_like_a_real_server() {
    for_each_kubectl(|k| {
        let c = web_cluster();
        c.kube.set_field_owner("Deployment", "assistant", "web", "kubectl-client-side-apply");
        let res = c.file("web-resources.yaml", WEB_RESOURCES);
        let f = res.to_str().unwrap();
        let run = c.fails(k, &["apply", "--server-side", "--field-manager=infra-scale", "-f", f]);
        assert!(
            run.stderr.contains(".spec.template.spec.containers[name=\"web\"].resources.requests.cpu"),
            "{}",
            run.stderr
        );
        c.ok(k, &["apply", "--server-side", "--field-manager=infra-scale", "--force-conflicts", "-f", f]);
        assert_eq!(container(&c.deployment("web"), "web")["resources"]["limits"]["cpu"], "1");
        // Now infra-scale owns these leaves: a plain re-apply is fine.
        c.ok(k, &["apply", "--server-side", "--field-manager=infra-scale", "-f", f]);
    });
}

#[test]
fn kubectl_autoscale_twice_fails_with_already_exists() {
    for_each_kubectl(|k| {
        let c = web_cluster();
        c.ok(k, &["autoscale", "deployment", "web", "-n", "assistant", "--min=4", "--max=12", "--cpu-percent=65"]);
        let hpa = c.kube.hpa("assistant", "web").expect("created");
        assert_eq!(hpa["spec"]["minReplicas"], 4);
        assert_eq!(hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 65);
        let again = c.fails(
            k,
            &["autoscale", "deployment", "web", "-n", "assistant", "--min=4", "--max=12", "--cpu-percent=65"],
        );
        assert!(again.stderr.contains("AlreadyExists"), "{}", again.stderr);
    });
}

#[test]
fn preflight_calls_work() {
    for_each_kubectl(|k| {
        let c = web_cluster();
        let version = c.ok(k, &["version", "-o", "json"]).json();
        assert_eq!(version["serverVersion"]["minor"], "32");
        let yes = c.ok(k, &["auth", "can-i", "patch", "deployments", "-n", "assistant"]);
        assert_eq!(yes.stdout.trim(), "yes");
        c.kube.deny("create", "horizontalpodautoscalers");
        let no = c.fails(k, &["auth", "can-i", "create", "horizontalpodautoscalers.autoscaling", "-n", "assistant"]);
        assert!(no.stdout.starts_with("no"), "{}", no.stdout);
        let policy =
            c.ok(k, &["get", "resourcequota,limitrange,poddisruptionbudget", "-n", "assistant", "-o", "json"]).json();
        assert_eq!(policy["items"], json!([]));
        let ctx = c.ok(k, &["config", "get-contexts", "-o", "name"]);
        assert_eq!(ctx.stdout.trim(), "fake");
        // Version skew checks read the server's version.
        c.kube.set_server_minor(29);
        let version = c.ok(k, &["version", "-o", "json"]).json();
        assert_eq!(version["serverVersion"]["gitVersion"], "v1.29.0");
        // A one-shot failure of a read, e.g. while taking the snapshot.
        c.kube.fail_next_request("GET", "/deployments/web", 500, "etcdserver: leader changed");
        let run = c.fails(k, &["get", "deployment", "web", "-n", "assistant", "-o", "json"]);
        assert!(run.stderr.contains("etcdserver: leader changed"), "{}", run.stderr);
        c.ok(k, &["get", "deployment", "web", "-n", "assistant", "-o", "json"]);
    });
}

#[test]
fn several_contexts_in_one_kubeconfig() {
    let kube = FakeKube::start();
    let dir = tempfile::tempdir().unwrap();
    let path = kube.write_kubeconfig_contexts(dir.path(), &["prod", "staging"]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("current-context: prod"));
    let out = Command::new("/usr/bin/kubectl")
        .args(["config", "get-contexts", "-o", "name"])
        .env("KUBECONFIG", &path)
        .env("KUBECACHEDIR", dir.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "prod\nstaging\n");
    let out = Command::new("/usr/bin/kubectl")
        .args(["--context", "staging", "get", "namespace", "default", "-o", "name"])
        .env("KUBECONFIG", &path)
        .env("KUBECACHEDIR", dir.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "namespace/default\n");
}

#[test]
fn opt_in_controllers_react_like_a_cluster() {
    for_each_kubectl(|k| {
        let c = web_cluster();
        // The HPA controller clamps the target's replicas into [min, max].
        c.kube.run_hpa_controller();
        let hpa = c.file("hpa.yaml", &hpa_manifest(4, 12, 65));
        c.ok(k, &["apply", "--server-side", "--field-manager=infra-scale", "-f", hpa.to_str().unwrap()]);
        let d = c.deployment("web");
        assert_eq!(d["spec"]["replicas"], 4, "raised to minReplicas");
        let managers: Vec<(String, String)> = d["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["manager"].as_str().unwrap().to_string(), m["subresource"].as_str().unwrap_or("").to_string()))
            .collect();
        assert!(managers.contains(&("kube-controller-manager".to_string(), "scale".to_string())), "{managers:?}");
        assert_eq!(c.kube.hpa("assistant", "web").unwrap()["status"]["desiredReplicas"], 4);
        c.ok(k, &["scale", "deployment/web", "-n", "assistant", "--replicas=20"]);
        assert_eq!(c.deployment("web")["spec"]["replicas"], 12, "lowered to maxReplicas");
        // Pod admission rejects the new pods: the write succeeds, the rollout stalls with ReplicaFailure.
        c.kube.replica_failure("Deployment", "web", "pods \"web-7d4b9c\" is forbidden: exceeded quota: compute");
        c.ok(
            k,
            &[
                "set",
                "resources",
                "deployment/web",
                "-n",
                "assistant",
                "-c",
                "web",
                "--requests=cpu=1",
                "--limits=cpu=2",
            ],
        );
        let d = c.ok(k, &["get", "deployment", "web", "-n", "assistant", "-o", "json"]).json();
        let failure =
            d["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "ReplicaFailure").cloned();
        assert_eq!(failure.as_ref().map(|f| f["reason"].clone()), Some(json!("FailedCreate")));
        assert!(d["status"]["updatedReplicas"].as_i64().unwrap() < 12);
    });
}

#[test]
fn one_kubeconfig_for_two_fake_clusters() {
    let (prod, staging) = (FakeKube::start(), FakeKube::start());
    staging.add_namespace("only-in-staging");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, FakeKube::kubeconfig_for(&[("prod", &prod), ("staging", &staging)], "prod")).unwrap();
    let get = |context: &str| {
        Command::new("/usr/bin/kubectl")
            .args(["--context", context, "get", "namespace", "only-in-staging", "-o", "name"])
            .env("KUBECONFIG", &path)
            .env("KUBECACHEDIR", dir.path().join(format!("cache-{context}")))
            .output()
            .unwrap()
    };
    assert_eq!(get("staging").status.code(), Some(0));
    let out = get("prod");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("namespaces \"only-in-staging\" not found"));
}
