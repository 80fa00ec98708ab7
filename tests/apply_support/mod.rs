//! Shared by the `apply_*` integration tests: running the real binary with a scrubbed
//! environment, the kubectl versions to run against, and a namespace on the real control plane
//! (behind testkit's fault proxy) with the fixture the execution tests start from.
//!
//! kubectl versions: `INFRA_SCALE_TEST_KUBECTLS` (paths separated by `:`) when set; otherwise
//! `kubectl` from PATH plus the newest `kubectl.1.NN` (NN ≥ 28) installed beside the binary it
//! resolves to (the Google Cloud SDK layout ships `kubectl.1.27` … `kubectl.1.33`). A missing
//! second version is skipped with a note on stderr.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};

use testkit::cluster::RealCluster;
use testkit::faults::FaultProxy;

pub const NS: &str = "assistant";
pub const CONTEXT: &str = "production";

/// A finished run of the binary.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// The JSON summary printed on stdout (from the first line that is `{` to the last `}`).
    pub fn json(&self) -> Value {
        let start = self.stdout.find("\n{").map(|i| i + 1).or_else(|| self.stdout.starts_with('{').then_some(0));
        let start = start.unwrap_or_else(|| panic!("no JSON summary on stdout:\n{}", self.stdout));
        let end = self.stdout.rfind("\n}").map(|i| i + 2).expect("end of the JSON summary");
        serde_json::from_str(&self.stdout[start..end])
            .unwrap_or_else(|e| panic!("bad JSON summary ({e}):\n{}", self.stdout))
    }

    /// The statuses of the results, in plan order.
    pub fn statuses(&self) -> Vec<String> {
        self.json()["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["status"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    pub fn context(&self) -> String {
        format!("exit code {}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Runs `infra-scale` in `cwd` with only PATH, HOME and `env` set (no GITHUB_*, RUNNER_*,
/// KUBECONFIG or KUBECTL from the outside, so that the tests behave the same inside Actions).
pub fn infra_scale(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_infra-scale"));
    cmd.current_dir(cwd).args(args).env_clear().env("HOME", cwd);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run infra-scale");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `infra-scale apply --plan=<plan> --execute --out=<dir>/out-<run> <extra>` in `dir`, with this
/// kubeconfig and kubectl and a private discovery cache under `dir`; returns the run and its
/// output directory.
pub fn execute_in(
    dir: &Path,
    run: usize,
    kubeconfig: &Path,
    kubectl: &Path,
    plan: &Path,
    extra: &[&str],
) -> (Out, PathBuf) {
    let out_dir = dir.join(format!("out-{run}"));
    let plan_arg = format!("--plan={}", plan.display());
    let out_arg = format!("--out={}", out_dir.display());
    let mut args = vec!["apply", plan_arg.as_str(), "--execute", out_arg.as_str()];
    args.extend_from_slice(extra);
    let kubeconfig = kubeconfig.display().to_string();
    let cache = dir.join("cache").display().to_string();
    let kubectl = kubectl.display().to_string();
    let env = [("KUBECONFIG", kubeconfig.as_str()), ("KUBECACHEDIR", cache.as_str()), ("KUBECTL", kubectl.as_str())];
    (infra_scale(dir, &args, &env), out_dir)
}

/// A plan fixture by file name.
pub fn plan(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plans").join(name)
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(program)).find(|p| p.is_file())
}

/// The kubectl binaries to run the execution tests with (see the module docs).
pub fn kubectls() -> Vec<PathBuf> {
    if let Some(list) = std::env::var_os("INFRA_SCALE_TEST_KUBECTLS").filter(|v| !v.is_empty()) {
        return std::env::split_paths(&list).collect();
    }
    let Some(kubectl) = which("kubectl") else {
        panic!("kubectl is not on PATH; the execution tests run the real kubectl against the real control plane")
    };
    let mut out = vec![kubectl.clone()];
    let dir = std::fs::canonicalize(&kubectl).ok().and_then(|p| p.parent().map(Path::to_path_buf));
    let newest = dir.and_then(|dir| {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(&dir)
            .ok()?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let minor: u32 = name.strip_prefix("kubectl.1.")?.parse().ok()?;
                (minor >= 28).then(|| (minor, e.path()))
            })
            .collect();
        versions.sort();
        versions.pop()
    });
    match newest {
        Some((_, p)) => out.push(p),
        None => eprintln!("note: no second kubectl minor (kubectl.1.NN) beside {}; ran with one", kubectl.display()),
    }
    out
}

/// The execution fixture in namespace `ns`, as manifests:
/// - Deployment `web`, 3 replicas: container `app` (requests cpu 250m, memory 256Mi; limit memory
///   512Mi), container `log-shipper` (requests cpu 50m, memory 64Mi), init container `migrate`
///   (requests cpu 100m).
/// - Deployment `api`, 3 replicas: container `api` (requests cpu 250m, memory 256Mi; limit memory 512Mi).
/// - StatefulSet `db`, 2 replicas: container `db` (requests cpu 500m, memory 1Gi; limit memory 1Gi).
pub fn fixture(ns: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      initContainers:
      - {{name: migrate, image: busybox, resources: {{requests: {{cpu: 100m}}}}}}
      containers:
      - {{name: app, image: nginx, resources: {{requests: {{cpu: 250m, memory: 256Mi}}, limits: {{memory: 512Mi}}}}}}
      - {{name: log-shipper, image: fluent, resources: {{requests: {{cpu: 50m, memory: 64Mi}}}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: api, namespace: {ns}}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata: {{labels: {{app: api}}}}
    spec:
      containers:
      - {{name: api, image: api, resources: {{requests: {{cpu: 250m, memory: 256Mi}}, limits: {{memory: 512Mi}}}}}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db, namespace: {ns}}}
spec:
  replicas: 2
  serviceName: db
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      containers:
      - {{name: db, image: db, resources: {{requests: {{cpu: 500m, memory: 1Gi}}, limits: {{memory: 1Gi}}}}}}
"#
    )
}

/// A namespace of its own on the shared real control plane (its name only: the caller creates
/// it), a scratch directory, the kubeconfig the binary uses and the kubectl it drives. The
/// namespace is deleted (without waiting) on drop: its pods would otherwise fill the kwok node
/// for later scenarios.
pub struct Scratch {
    pub cluster: &'static RealCluster,
    pub ns: String,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
    runs: std::cell::Cell<usize>,
}

impl Scratch {
    /// A namespace named `<prefix><pid>-<n>`; `kubeconfig` writes the binary's kubeconfig for it
    /// into the scratch directory.
    pub fn new(prefix: &str, kubectl: &Path, kubeconfig: impl FnOnce(&RealCluster, &Path, &str) -> PathBuf) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let cluster = RealCluster::shared();
        let ns = format!("{prefix}{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = kubeconfig(cluster, dir.path(), &ns);
        Scratch { cluster, ns, dir, kubeconfig, kubectl: kubectl.to_path_buf(), runs: std::cell::Cell::new(0) }
    }

    /// The number of the next run (1, 2, …): names its output directory.
    pub fn next_run(&self) -> usize {
        self.runs.set(self.runs.get() + 1);
        self.runs.get()
    }

    /// `infra-scale apply --plan=<plan> --execute --out=<fresh dir> <extra>`; returns the run and
    /// its output directory.
    pub fn execute(&self, plan: &Path, extra: &[&str]) -> (Out, PathBuf) {
        execute_in(self.dir.path(), self.next_run(), &self.kubeconfig, &self.kubectl, plan, extra)
    }

    /// A plan fixture (by file name) with namespace `assistant` replaced by this one.
    pub fn plan(&self, name: &str) -> PathBuf {
        let text = std::fs::read_to_string(plan(name)).expect("plan fixture");
        self.write_plan(name, &text)
    }

    /// Writes a plan text, namespace `assistant` replaced by this one, into the scratch directory
    /// and returns its path.
    pub fn write_plan(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text.replace(&format!("namespace: {NS}"), &format!("namespace: {}", self.ns)))
            .expect("write plan");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = Command::new("kubectl")
            .arg(format!("--kubeconfig={}", self.cluster.kubeconfig.display()))
            .args(["delete", "namespace", &self.ns, "--wait=false"])
            .output();
    }
}

/// A fresh namespace on the shared real control plane with [`fixture`] (created by `kubectl
/// create`, so no field manager but `kubectl-create` owns anything), rolled out, and a fault proxy
/// in front of the server; the kubeconfig points at the proxy (contexts as given, the first
/// current, default namespace this one) and holds no credentials.
pub struct Cluster {
    pub scratch: Scratch,
    pub proxy: FaultProxy,
}

impl std::ops::Deref for Cluster {
    type Target = Scratch;
    fn deref(&self) -> &Scratch {
        &self.scratch
    }
}

impl Cluster {
    /// The fixture, with contexts `production` (current) and `staging`.
    pub fn new(kubectl: &Path) -> Cluster {
        Cluster::with_contexts(kubectl, &[CONTEXT, "staging"])
    }

    pub fn with_contexts(kubectl: &Path, contexts: &[&str]) -> Cluster {
        Cluster::with_fixture(kubectl, contexts, &["create", "-f", "-"])
    }

    /// The fixture written by `kubectl <how…> -f -` as admin (e.g. `create --field-manager=helm`).
    pub fn with_fixture(kubectl: &Path, contexts: &[&str], how: &[&str]) -> Cluster {
        let cluster = RealCluster::shared();
        let proxy = FaultProxy::start(&cluster.kubeconfig);
        let scratch = Scratch::new("x", kubectl, |_, dir, ns| proxy.write_kubeconfig(dir, contexts, ns));
        let ns = &scratch.ns;
        cluster.kubectl(how, Some(&fixture(ns)));
        cluster.kubectl(
            &["-n", ns, "rollout", "status", "deploy/web", "deploy/api", "statefulset/db", "--timeout=90s"],
            None,
        );
        Cluster { scratch, proxy }
    }

    /// The environment for the binary: this kubeconfig, a private discovery cache, this kubectl.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("KUBECONFIG".into(), self.kubeconfig.display().to_string()),
            ("KUBECACHEDIR".into(), self.dir.path().join("cache").display().to_string()),
            ("KUBECTL".into(), self.kubectl.display().to_string()),
        ]
    }

    /// `kubectl <args>` as admin in this namespace (not through the proxy); panics on failure.
    pub fn admin(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut all = vec!["-n", self.ns.as_str()];
        all.extend_from_slice(args);
        self.cluster.kubectl(&all, stdin)
    }

    /// The namespace's Deployments, StatefulSets and HPAs (autoscaling/v2) as the server has them.
    pub fn objects(&self) -> Vec<Value> {
        let text = self.admin(
            &["get", "deployments.apps,statefulsets.apps,horizontalpodautoscalers.v2.autoscaling", "-o", "json"],
            None,
        );
        let list: Value = serde_json::from_str(&text).expect("kubectl get JSON");
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// `KIND/NAME` → `metadata.resourceVersion` of every object in [`Cluster::objects`]: equal
    /// before and after means the server stored nothing.
    pub fn versions(&self) -> std::collections::BTreeMap<String, String> {
        self.objects()
            .iter()
            .map(|o| {
                let key =
                    format!("{}/{}", o["kind"].as_str().unwrap_or("?"), o["metadata"]["name"].as_str().unwrap_or("?"));
                (key, o["metadata"]["resourceVersion"].as_str().unwrap_or("?").to_string())
            })
            .collect()
    }

    /// Everything the tests compare about the namespace, read from the server: replicas, every
    /// container's resources (init containers included), and every HPA's target and bounds.
    pub fn state(&self) -> Value {
        let mut out = serde_json::Map::new();
        for o in self.objects() {
            let (kind, name) = (o["kind"].as_str().unwrap_or("?"), o["metadata"]["name"].as_str().unwrap_or("?"));
            if kind == "HorizontalPodAutoscaler" {
                out.insert(
                    format!("{kind}/{name}"),
                    serde_json::json!({
                        "apiVersion": o["apiVersion"],
                        "target": o["spec"]["scaleTargetRef"],
                        "min": o["spec"]["minReplicas"],
                        "max": o["spec"]["maxReplicas"],
                        "metrics": o["spec"]["metrics"],
                    }),
                );
                continue;
            }
            let spec = &o["spec"]["template"]["spec"];
            let mut containers = serde_json::Map::new();
            for list in ["containers", "initContainers"] {
                for c in spec[list].as_array().into_iter().flatten() {
                    containers.insert(c["name"].as_str().unwrap_or("?").to_string(), c["resources"].clone());
                }
            }
            out.insert(
                format!("{kind}/{name}"),
                serde_json::json!({ "replicas": o["spec"]["replicas"], "containers": containers }),
            );
        }
        Value::Object(out)
    }

    /// Waits up to `secs` seconds for `check` on [`Cluster::state`]; returns the last state.
    pub fn wait_state(&self, secs: u64, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let s = self.state();
            if check(&s) || std::time::Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }

    /// The path of `Kind/name` in this namespace on the API server, for fault rules.
    pub fn api_path(&self, kind: &str, name: &str) -> String {
        let (group, plural) = match kind {
            "Deployment" => ("apis/apps/v1", "deployments"),
            "StatefulSet" => ("apis/apps/v1", "statefulsets"),
            "HorizontalPodAutoscaler" => ("apis/autoscaling/v2", "horizontalpodautoscalers"),
            other => panic!("no API path for kind {other}"),
        };
        format!("/{group}/namespaces/{}/{plural}/{name}", self.ns)
    }
}
