//! `infra-scale plan --detect` against the real control plane (`scripts/cluster.sh`: the real
//! kube-apiserver writes the managedFields, the real controllers run) with real kubectl: who owns
//! the fields a plan changes (Helm, Argo CD, client-side apply), rollouts that cannot or only
//! partly happen (paused, OnDelete, partition), and what the live HPA controller does with the
//! current replicas. Each test has its own namespace; the plan must change nothing on the server.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::cluster::RealCluster;

const CONTEXT: &str = "infra-scale-test";

struct Ns {
    cluster: &'static RealCluster,
    name: String,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Ns {
    fn new() -> Ns {
        static N: AtomicUsize = AtomicUsize::new(0);
        let cluster = RealCluster::shared();
        let name = format!("own{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = cluster.kubeconfig_for(dir.path(), CONTEXT, &name);
        cluster.kubectl(&["create", "namespace", &name], None);
        Ns { cluster, name, dir, kubeconfig }
    }

    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        self.cluster.kubectl(&all, stdin)
    }

    fn get(&self, object: &str) -> Value {
        self.cluster.get(&self.name, object)
    }

    /// `infra-scale plan --detect` with `args`; returns (plan as YAML text, parsed, SUMMARY.md).
    fn plan(&self, args: &[&str]) -> (String, serde_yaml::Value, String) {
        let out_dir = self.dir.path().join("out");
        let _ = std::fs::remove_dir_all(&out_dir);
        let ns = format!("--namespace={}", self.name);
        let ctx = format!("--context={CONTEXT}");
        let out_arg = format!("--out={}", out_dir.display());
        let mut all = vec!["plan", "--target=t", ns.as_str(), ctx.as_str(), "--detect", out_arg.as_str()];
        all.extend_from_slice(args);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_infra-scale"));
        cmd.current_dir(self.dir.path())
            .args(&all)
            .env_clear()
            .env("HOME", self.dir.path())
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.dir.path().join("cache"))
            .env("KUBECTL", "kubectl")
            .env("SOURCE_DATE_EPOCH", "1760140800");
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        let out = cmd.output().expect("run infra-scale");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "plan {all:?} failed: {stderr}");
        let text = std::fs::read_to_string(out_dir.join("plan.yaml")).expect("plan.yaml");
        let summary = std::fs::read_to_string(out_dir.join("SUMMARY.md")).expect("SUMMARY.md");
        let doc = serde_yaml::from_str(&text).expect("plan YAML");
        (text, doc, summary)
    }
}

/// (code, message) of every risk and note about `workload`.
fn findings(doc: &serde_yaml::Value, workload: &str) -> Vec<(String, String)> {
    ["risks", "notes"]
        .iter()
        .flat_map(|k| doc[*k].as_sequence().cloned().unwrap_or_default())
        .filter(|f| f["workload"].as_str() == Some(workload))
        .map(|f| (f["code"].as_str().unwrap_or("").to_string(), f["message"].as_str().unwrap_or("").to_string()))
        .collect()
}

fn message<'a>(found: &'a [(String, String)], code: &str) -> &'a str {
    found.iter().find(|(c, _)| c == code).map(|(_, m)| m.as_str()).unwrap_or_else(|| panic!("no {code} in {found:#?}"))
}

fn deployment(name: &str, labels: &str, annotations: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  labels: {{app: {name}{labels}}}\n  \
         annotations: {{note: \"v1\"{annotations}}}\nspec:\n  replicas: 2\n{extra_spec}  selector: {{matchLabels: {{app: {name}}}}}\n  \
         template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers:\n      - name: app\n        \
         image: nginx\n        resources:\n          requests: {{cpu: 100m, memory: 128Mi}}\n"
    )
}

fn statefulset(name: &str, strategy: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: {name}}}\nspec:\n  replicas: 3\n  serviceName: {name}\n  \
         updateStrategy: {strategy}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    \
         spec:\n      containers:\n      - name: app\n        image: nginx\n        resources:\n          requests: {{cpu: 100m, memory: 128Mi}}\n"
    )
}

fn resource_versions(ns: &Ns, objects: &[&str]) -> Vec<String> {
    objects.iter().map(|o| ns.get(o)["metadata"]["resourceVersion"].as_str().unwrap_or("").to_string()).collect()
}

#[test]
fn helm_and_argo_cd_owned_fields_are_risks_and_client_side_apply_fields_are_taken_over() {
    let ns = Ns::new();
    let helm = deployment(
        "helm",
        ", app.kubernetes.io/managed-by: Helm",
        ", meta.helm.sh/release-name: web, meta.helm.sh/release-namespace: prod",
        "",
    );
    ns.kubectl(&["create", "--field-manager=helm", "-f", "-"], Some(&helm));
    let argo = deployment(
        "argo",
        ", app.kubernetes.io/instance: shop",
        ", argocd.argoproj.io/tracking-id: 'shop:apps/Deployment:x/argo'",
        "",
    );
    ns.kubectl(&["apply", "--server-side", "--field-manager=argocd-controller", "-f", "-"], Some(&argo));
    ns.kubectl(&["apply", "-f", "-"], Some(&deployment("csa", "", "", "")));
    // Argo CD's client-side sync: the manager is kubectl-client-side-apply, the annotation says Argo CD.
    ns.kubectl(
        &["apply", "-f", "-"],
        Some(&deployment("argocsa", "", ", argocd.argoproj.io/tracking-id: 'shop:apps/Deployment:x/argocsa'", "")),
    );
    let objects = ["deployment/helm", "deployment/argo", "deployment/csa", "deployment/argocsa"];
    let before = resource_versions(&ns, &objects);

    let mut args = Vec::new();
    for w in ["helm", "argo", "csa", "argocsa"] {
        args.push(format!("--workload=Deployment:{w}:3"));
        args.push(format!("--req={w}:cpu=200m"));
        args.push(format!("--lim={w}:memory=256Mi"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (text, doc, summary) = ns.plan(&args);

    let cpu = "spec.template.spec.containers[app].resources.requests.cpu";
    let h = findings(&doc, "helm");
    let m = message(&h, "owned_by_gitops");
    assert!(
        m.starts_with("Deployment/helm: field manager `helm` (Helm, Helm release `web` in namespace `prod`"),
        "{m}"
    );
    assert!(m.contains("owns spec.replicas, ") && m.contains(cpu), "{m}");
    // limits.memory does not exist yet: nobody owns it, so it is not named.
    assert!(!m.contains("limits.memory"), "{m}");
    assert!(
        m.contains("reverts this change") && m.contains("execution refuses unless --allow-owner=helm is given"),
        "{m}"
    );
    assert!(!h.iter().any(|(c, _)| c == "takes_over_fields"), "{h:#?}");

    let a = findings(&doc, "argo");
    let m = message(&a, "owned_by_gitops");
    assert!(m.contains("field manager `argocd-controller` (Argo CD, Argo CD application `shop`"), "{m}");
    assert!(m.contains("--allow-owner=argocd"), "{m}");

    let c = findings(&doc, "csa");
    assert!(!c.iter().any(|(code, _)| code == "owned_by_gitops"), "{c:#?}");
    assert_eq!(
        message(&c, "takes_over_fields"),
        format!(
            "Deployment/csa: the approved plan takes over exactly these fields from the one-off manager(s) \
             kubectl-client-side-apply: spec.replicas, {cpu}; their other fields keep their owners"
        )
    );

    let x = findings(&doc, "argocsa");
    let m = message(&x, "owned_by_gitops");
    assert!(m.contains("field manager `kubectl-client-side-apply` owns spec.replicas, "), "{m}");
    assert!(m.contains("the object carries Argo CD application `shop`"), "{m}");
    assert!(m.contains("--allow-owner=kubectl-client-side-apply --allow-owner=argocd"), "{m}");

    // The help never recommends --force-conflicts; the plan changed nothing on the server.
    assert!(!text.contains("force-conflicts") && !summary.contains("force-conflicts"));
    assert!(summary.contains("`owned_by_gitops`") && summary.contains("`takes_over_fields`"), "{summary}");
    assert_eq!(resource_versions(&ns, &objects), before, "plan --detect must not write");
}

#[test]
fn paused_on_delete_and_partitioned_rollouts_are_stated() {
    let ns = Ns::new();
    ns.kubectl(&["create", "-f", "-"], Some(&deployment("paused", "", "", "  paused: true\n")));
    ns.kubectl(&["create", "-f", "-"], Some(&statefulset("ondelete", "{type: OnDelete}")));
    ns.kubectl(
        &["create", "-f", "-"],
        Some(&statefulset("part", "{type: RollingUpdate, rollingUpdate: {partition: 2}}")),
    );
    ns.kubectl(&["create", "-f", "-"], Some(&statefulset("plain", "{type: RollingUpdate}")));
    let mut args = Vec::new();
    for w in ["paused", "ondelete", "part", "plain"] {
        args.push(format!("--req={w}:cpu=300m"));
    }
    args.extend(
        [
            "--workload=Deployment:paused:2",
            "--workload=sts:ondelete:3",
            "--workload=sts:part:3",
            "--workload=sts:plain:3",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, doc, _) = ns.plan(&args);

    let p = findings(&doc, "paused");
    assert_eq!(
        message(&p, "rollout_paused"),
        "Deployment/paused is paused (spec.paused: true): the template change is stored but no pod is replaced until \
         `kubectl rollout resume deployment/paused`; execution applies the template and does not wait for a rollout"
    );
    let o = findings(&doc, "ondelete");
    assert!(
        message(&o, "on_delete_update")
            .contains("running pods keep their old resources until each is deleted; new pods get the new ones")
    );
    let t = findings(&doc, "part");
    assert_eq!(
        message(&t, "partitioned_update"),
        "StatefulSet/part has updateStrategy.rollingUpdate.partition 2: pods with ordinal < 2 keep the old resources \
         (only the pod with ordinal 2 is replaced)"
    );
    // Only the plain StatefulSet claims that every pod is replaced.
    for f in [&p, &o, &t] {
        assert!(!f.iter().any(|(c, _)| c == "rolling_restart"), "{f:#?}");
    }
    assert!(message(&findings(&doc, "plain"), "rolling_restart").contains("replaces every pod, one pod at a time"));

    // The observed state records it (and omits the defaults).
    let observed = doc["observed"]["workloads"].as_sequence().expect("observed workloads");
    let by_name = |n: &str| observed.iter().find(|w| w["name"].as_str() == Some(n)).expect("observed").clone();
    assert_eq!(by_name("paused")["paused"].as_bool(), Some(true));
    assert_eq!(by_name("ondelete")["updateStrategy"].as_str(), Some("OnDelete"));
    assert_eq!(by_name("part")["partition"].as_u64(), Some(2));
    let plain = by_name("plain");
    assert!(plain.get("paused").is_none() && plain.get("updateStrategy").is_none() && plain.get("partition").is_none());
}

/// Issue 9 item 6: the requested replicas never reach the server under an HPA; the plan records
/// what the real HPA controller does, which is checked here by creating the same HPA afterwards.
#[test]
fn under_an_hpa_the_plan_records_the_clamp_of_the_current_replicas() {
    let ns = Ns::new();
    ns.kubectl(&["create", "-f", "-"], Some(&deployment("web", "", "", "")));
    let (_, doc, summary) = ns.plan(&["--workload=Deployment:web:8", "--hpa=web=min:3,max:5,cpu:60"]);
    let scale = doc["actions"]
        .as_sequence()
        .expect("actions")
        .iter()
        .find(|a| a["action"].as_str() == Some("scale_workload"))
        .expect("scale_workload")
        .clone();
    assert_eq!(scale["to"].as_u64(), Some(8));
    assert_eq!(scale["effective"].as_u64(), Some(3), "the current 2 clamped into [3, 5], not the request 8");
    let m = message(&findings(&doc, "web"), "hpa_clamps_replicas").to_string();
    assert!(m.contains("so 8 does not reach the server"), "{m}");
    assert!(m.contains("raises the current 2 replicas to its min 3"), "{m}");
    assert!(
        summary.contains("| Deployment `web` | cpu 100m, memory 128Mi | cpu no limit, memory no limit | 3 | 3 | 5 |"),
        "{summary}"
    );
    assert!(summary.contains("| At planned replicas | 3 | 300m | 384Mi |"), "{summary}");
    assert_eq!(ns.get("deployment/web")["spec"]["replicas"].as_u64(), Some(2), "plan must not write");

    // What the real controller does with that HPA: the current 2 becomes 3 (no metrics needed).
    ns.kubectl(&["autoscale", "deployment/web", "--min=3", "--max=5", "--cpu-percent=60"], None);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let replicas = ns.get("deployment/web")["spec"]["replicas"].as_u64();
        if replicas == Some(3) {
            break;
        }
        assert!(Instant::now() < deadline, "the HPA controller did not raise 2 to 3 (replicas {replicas:?})");
        std::thread::sleep(Duration::from_millis(500));
    }
    // The controller's own words for it (an Event on the HPA).
    let rescaled = loop {
        let events = ns.kubectl(
            &["get", "events", "--field-selector=involvedObject.kind=HorizontalPodAutoscaler", "-o", "json"],
            None,
        );
        let events: Value = serde_json::from_str(&events).expect("events JSON");
        let found = events["items"].as_array().into_iter().flatten().find_map(|e| {
            (e["reason"].as_str() == Some("SuccessfulRescale")).then(|| e["message"].as_str().unwrap_or("").to_string())
        });
        if let Some(m) = found {
            break m;
        }
        assert!(Instant::now() < deadline, "no SuccessfulRescale event on the HPA");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(rescaled, "New size: 3; reason: Current number of replicas below Spec.MinReplicas");
}

/// An HPA written by an operator (KEDA creates `keda-hpa-*` with its own field manager): changing
/// its bounds is a risk that names the operator, the HPA and the fields.
#[test]
fn an_operator_owned_hpa_is_a_risk() {
    let ns = Ns::new();
    ns.kubectl(&["create", "-f", "-"], Some(&deployment("web", "", "", "")));
    let hpa = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: keda-hpa-web}\nspec:\n  \
               scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  minReplicas: 2\n  maxReplicas: 4\n  \
               metrics:\n  - type: Resource\n    resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}\n";
    ns.kubectl(&["apply", "--server-side", "--field-manager=keda-operator", "-f", "-"], Some(hpa));
    let (_, doc, _) = ns.plan(&["--workload=Deployment:web:2", "--hpa=web=min:2,max:6,cpu:60"]);
    let m = message(&findings(&doc, "web"), "owned_by_gitops").to_string();
    assert_eq!(
        m,
        "HorizontalPodAutoscaler/keda-hpa-web: field manager `keda-operator` (a controller or operator, which may write its own \
         values back) owns spec.maxReplicas, spec.metrics; a GitOps sync, `helm upgrade` or the \
         owning controller puts its own values back and reverts this change, so make it in the source of truth \
         (chart values, Git) instead; execution refuses unless --allow-owner=keda-operator is given"
    );
    assert_eq!(ns.get("hpa/keda-hpa-web")["spec"]["maxReplicas"].as_u64(), Some(4), "plan must not write");
}
