//! The real control plane of `scripts/cluster.sh` (etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler, kwok), started once per test binary and shared; tests keep apart by namespace.
//!
//! `scripts/cluster.sh up` is given this process's PID (`INFRA_SCALE_CLUSTER_OWNER_PID`) and leaves
//! a watcher behind that runs `down` when the test binary exits, however it exits.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub struct RealCluster {
    /// Admin kubeconfig written by `cluster.sh up` (context `infra-scale-test`).
    pub kubeconfig: PathBuf,
    pub dir: PathBuf,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = lines[lines.len().saturating_sub(n)..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

impl RealCluster {
    /// The shared control plane; the first call builds (if needed) and starts it. If that fails,
    /// this and every later call in the test binary panics with `cluster.sh`'s own words: the
    /// component that failed and the end of its log (no second attempt per test).
    pub fn shared() -> &'static RealCluster {
        static CLUSTER: OnceLock<Result<RealCluster, String>> = OnceLock::new();
        match CLUSTER.get_or_init(RealCluster::start) {
            Ok(cluster) => cluster,
            Err(why) => panic!("{why}"),
        }
    }

    /// `scripts/cluster.sh up` into a directory of this test binary's own (its PID: binaries
    /// running at once never share one); the watcher it leaves stops the control plane and
    /// removes the directory when this process exits, also when `up` failed.
    fn start() -> Result<RealCluster, String> {
        let dir = std::env::temp_dir().join(format!("infra-scale-cluster-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let script = repo_root().join("scripts/cluster.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("up")
            .arg(&dir)
            .env("INFRA_SCALE_CLUSTER_OWNER_PID", std::process::id().to_string())
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("cannot run bash {}: {e}", script.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return Err(format!(
                "the real control plane did not start: `scripts/cluster.sh up {}` exited with {}\n{}{}",
                dir.display(),
                out.status,
                tail(&stderr, 60),
                tail(&stdout, 10)
            ));
        }
        let kubeconfig = stdout
            .lines()
            .last()
            .and_then(|l| l.strip_prefix("KUBECONFIG="))
            .map(PathBuf::from)
            .ok_or_else(|| format!("scripts/cluster.sh up printed no KUBECONFIG= last line:\n{stdout}{stderr}"))?;
        Ok(RealCluster { kubeconfig, dir })
    }

    /// Writes a kubeconfig for this cluster whose only context is `context` with default
    /// namespace `namespace`, and returns its path.
    pub fn kubeconfig_for(&self, dir: &Path, context: &str, namespace: &str) -> PathBuf {
        let text = std::fs::read_to_string(&self.kubeconfig).expect("read kubeconfig");
        let text = text
            .replace("- name: infra-scale-test\n  context:", &format!("- name: {context}\n  context:"))
            .replace("current-context: infra-scale-test", &format!("current-context: {context}"))
            .replace("namespace: default}", &format!("namespace: {namespace}}}"));
        let path = dir.join("kubeconfig");
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    /// Runs `kubectl` (the one on PATH) as admin with `args`, feeding `stdin`; panics on failure.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> String {
        use std::io::Write;
        let mut cmd = Command::new("kubectl");
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig.display())).args(args);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn kubectl");
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(stdin.unwrap_or("").as_bytes()).expect("write stdin");
        drop(pipe);
        let out = child.wait_with_output().expect("kubectl");
        assert!(out.status.success(), "kubectl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl get KIND/NAME -n NS -o json`.
    pub fn get(&self, namespace: &str, object: &str) -> serde_json::Value {
        let text = self.kubectl(&["-n", namespace, "get", object, "-o", "json"], None);
        serde_json::from_str(&text).expect("kubectl get JSON")
    }
}
