//! Issue 9, items 4 and 5 on the real control plane of `scripts/cluster.sh` (kube-apiserver
//! v1.34.4 with its controllers, a kwok node whose pods become Ready): `apply --execute` with the
//! real kubectl on PATH, one namespace per scenario, each asserting the server's state afterwards.
//! - rollouts that cannot happen are not waited for, and the journal does not claim them: a paused
//!   Deployment, an `OnDelete` StatefulSet, a partitioned StatefulSet; what will happen still is
//!   (an OnDelete scale-up's new pod, the pods at or above the partition);
//! - pod admission before the first change: LimitRange max, PodSecurity `enforce=restricted`, a
//!   compute quota the change exceeds, a `pods` quota only the surge exceeds (refused, exit 3,
//!   nothing changed);
//! - pods the controllers cannot create during the wait: a `count/pods` quota (a key the
//!   pre-check does not total, and the single dry-run pod still fits) that the rolling update's
//!   surge exceeds, and a StatefulSet scale-up past it: exit 4 with the server's message.

mod apply_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use apply_support::{CONTEXT, Out, Scratch, execute_in, kubectls};
use serde_json::{Value, json};

/// A namespace holding the scenario's manifests, and the kubeconfig of the shared control plane
/// for it.
struct Scenario(Scratch);

impl std::ops::Deref for Scenario {
    type Target = Scratch;
    fn deref(&self) -> &Scratch {
        &self.0
    }
}

impl Scenario {
    /// A fresh namespace holding `manifests` (`{ns}` is replaced by the namespace's name); waits
    /// until every workload named in `ready` has all its replicas ready.
    fn new(manifests: &str, ready: &[&str]) -> Scenario {
        let kubectl = kubectls().into_iter().next().expect("a kubectl");
        let s = Scratch::new("r", &kubectl, |cluster, dir, ns| cluster.kubeconfig_for(dir, CONTEXT, ns));
        let text = format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\n{}",
            manifests.replace("{ns}", &s.ns),
            ns = s.ns
        );
        s.cluster.kubectl(&["create", "-f", "-"], Some(&text));
        let s = Scenario(s);
        for object in ready {
            s.ready(object);
        }
        s
    }

    /// Waits until `object` has `status.readyReplicas == spec.replicas` (`kubectl rollout status`
    /// refuses OnDelete StatefulSets).
    fn ready(&self, object: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let o = self.get(object);
            if o["status"]["observedGeneration"] == o["metadata"]["generation"]
                && o["status"]["readyReplicas"] == o["spec"]["replicas"]
            {
                return;
            }
            assert!(Instant::now() < deadline, "{object} never became ready: {}", o["status"]);
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn kubectl(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.ns.as_str()];
        all.extend_from_slice(args);
        self.cluster.kubectl(&all, None)
    }

    fn get(&self, object: &str) -> Value {
        self.cluster.get(&self.ns, object)
    }

    /// Writes a plan with `actions` (YAML list items, `{ns}` replaced) and executes it with a short
    /// timeout; returns the run, its output directory and how long it took.
    fn execute(&self, actions: &str, extra: &[&str]) -> (Out, PathBuf, Duration) {
        let run = self.next_run();
        let plan = format!(
            "apiVersion: infra.scale/v1\nkind: ScalePlan\nmetadata:\n  createdAt: 2026-01-01T00:00:00Z\n  target: test\n\
             context:\n  kubeContext: {CONTEXT}\n  namespace: {ns}\nassumptions:\n  autoscaling: none\nactions:\n{}\n\
             rollbackHints: []\nrisks: []\nnotes: []\n",
            actions.replace("{ns}", &self.ns),
            ns = self.ns
        );
        let path = self.dir.path().join(format!("plan-{run}.yaml"));
        std::fs::write(&path, plan).expect("write plan");
        let mut args = vec!["--timeout=30s"];
        args.extend_from_slice(extra);
        let started = Instant::now();
        let (out, dir) = execute_in(self.dir.path(), run, &self.kubeconfig, &self.kubectl, &path, &args);
        let took = started.elapsed();
        // Shown with --nocapture: the figures quoted in the notes.
        eprintln!("{} run {run}: exit {} in {took:?}\n{}", self.ns, out.code, out.stderr);
        (out, dir, took)
    }

    /// Each pod's name → its first container's resources, as the server has them.
    fn pods(&self) -> Vec<(String, Value)> {
        let list: Value = serde_json::from_str(&self.kubectl(&["get", "pods", "-o", "json"])).expect("pods JSON");
        let mut out: Vec<(String, Value)> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .map(|p| {
                (
                    p["metadata"]["name"].as_str().unwrap_or("?").to_string(),
                    p["spec"]["containers"][0]["resources"].clone(),
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The first container's resources in a workload's pod template.
    fn template(&self, object: &str) -> Value {
        self.get(object)["spec"]["template"]["spec"]["containers"][0]["resources"].clone()
    }

    /// Waits until a ResourceQuota's `status.used[key]` is `value` (the quota controller's sync).
    fn quota_used(&self, quota: &str, key: &str, value: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let q = self.get(&format!("resourcequota/{quota}"));
            if q["status"]["used"][key] == json!(value) {
                return;
            }
            assert!(Instant::now() < deadline, "quota {quota} never reported used {key}={value}: {}", q["status"]);
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn results_json(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).expect("results.json"))
        .expect("results.json is JSON")
}

fn resources(kind: &str, name: &str, container: &str, requests: &str, limits: &str) -> String {
    format!(
        "  - action: update_resources\n    kind: {kind}\n    name: {name}\n    namespace: {{ns}}\n    container: {container}\n\
         {requests}{limits}",
        requests = if requests.is_empty() { String::new() } else { format!("    requests: {{{requests}}}\n") },
        limits = if limits.is_empty() { String::new() } else { format!("    limits: {{{limits}}}\n") },
    )
}

fn scale(kind: &str, name: &str, to: u32) -> String {
    format!(
        "  - action: scale_workload\n    kind: {kind}\n    name: {name}\n    namespace: {{ns}}\n    from: \"${{detect}}\"\n\
         \x20   to: {to}\n    reason: requested_scale\n"
    )
}

fn deployment(extra_spec: &str, replicas: u32) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {{ns}}}}
spec:
  replicas: {replicas}
{extra_spec}  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - {{name: app, image: nginx, resources: {{requests: {{cpu: 200m, memory: 128Mi}}}}}}
"#
    )
}

fn statefulset(extra_spec: &str, replicas: u32) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db, namespace: {{ns}}}}
spec:
  replicas: {replicas}
  serviceName: db
{extra_spec}  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      containers:
      - {{name: db, image: db, resources: {{requests: {{cpu: 200m, memory: 128Mi}}}}}}
"#
    )
}

const OLD: &str = r#"{"requests":{"cpu":"200m","memory":"128Mi"}}"#;

fn old() -> Value {
    serde_json::from_str(OLD).expect("OLD")
}

#[test]
fn a_paused_deployment_gets_the_template_without_a_wait_and_its_pods_stay() {
    // Paused after its pods exist (a Deployment created paused gets no ReplicaSet at all).
    let s = Scenario::new(&deployment("", 2), &["deployment/web"]);
    s.kubectl(&["rollout", "pause", "deployment/web"]);
    let (out, dir, took) = s.execute(&resources("Deployment", "web", "app", "cpu: 300m, memory: 256Mi", ""), &[]);
    assert_eq!(out.code, 0, "{}", out.context());
    assert!(took < Duration::from_secs(20), "a paused Deployment is not waited for: took {took:?}");
    assert_eq!(s.template("deployment/web")["requests"]["cpu"], "300m");
    let web = s.get("deployment/web");
    assert_eq!(web["status"]["updatedReplicas"].as_i64().unwrap_or(0), 0, "no pod was updated: {}", web["status"]);
    for (name, r) in s.pods() {
        assert_eq!(r, old(), "pod {name} keeps its old resources");
    }
    let note = "template updated; Deployment is paused: no pod changes until `kubectl rollout resume deployment/web";
    assert!(out.stderr.contains(note), "{}", out.context());
    let results = results_json(&dir);
    assert!(results["results"][0]["note"].as_str().unwrap_or("").starts_with(note), "{results}");
    assert_eq!(results["results"][0]["status"], "applied");
}

#[test]
fn an_on_delete_statefulset_is_not_waited_for_but_its_scale_up_is() {
    let s = Scenario::new(&statefulset("  updateStrategy: {type: OnDelete}\n", 2), &["statefulset/db"]);
    let (out, dir, took) = s.execute(&resources("StatefulSet", "db", "db", "cpu: 300m, memory: 256Mi", ""), &[]);
    assert_eq!(out.code, 0, "{}", out.context());
    assert!(took < Duration::from_secs(20), "an OnDelete template change is not waited for: took {took:?}");
    assert_eq!(s.template("statefulset/db")["requests"]["cpu"], "300m");
    assert_eq!(s.pods().len(), 2);
    for (name, r) in s.pods() {
        assert_eq!(r, old(), "pod {name} keeps its old resources");
    }
    let note = "template updated; updateStrategy OnDelete: running pods keep their old resources until each is deleted";
    assert!(out.stderr.contains(note), "{}", out.context());
    assert!(results_json(&dir)["results"][0]["note"].as_str().unwrap_or("").starts_with(note));
    assert!(
        s.kubectl(&["get", "controllerrevisions", "-o", "name"]).lines().count() >= 2,
        "the controller saw the new template"
    );

    // The scale-up happens: the wait ends when the new pod is Ready, and only it has the new resources.
    let (out, _, _) = s.execute(&scale("StatefulSet", "db", 3), &[]);
    assert_eq!(out.code, 0, "{}", out.context());
    let db = s.get("statefulset/db");
    assert_eq!(db["status"]["readyReplicas"], 3, "the wait ended with the new pod Ready: {}", db["status"]);
    let pods = s.pods();
    assert_eq!(pods.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(), ["db-0", "db-1", "db-2"]);
    assert_eq!(pods[0].1, old());
    assert_eq!(pods[1].1, old());
    assert_eq!(pods[2].1["requests"]["cpu"], "300m", "the new pod has the new template");
}

#[test]
fn a_partitioned_statefulset_updates_only_the_pods_at_or_above_the_partition() {
    let s = Scenario::new(
        &statefulset("  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 2}}\n", 3),
        &["statefulset/db"],
    );
    let (out, dir, _) = s.execute(&resources("StatefulSet", "db", "db", "cpu: 300m, memory: 256Mi", ""), &[]);
    assert_eq!(out.code, 0, "{}", out.context());
    let pods = s.pods();
    assert_eq!(pods.len(), 3, "{pods:?}");
    assert_eq!(pods[0].1, old(), "db-0 is below the partition");
    assert_eq!(pods[1].1, old(), "db-1 is below the partition");
    assert_eq!(pods[2].1["requests"]["cpu"], "300m", "the wait ended once db-2 was updated");
    let db = s.get("statefulset/db");
    assert_eq!(db["status"]["updatedReplicas"], 1, "{}", db["status"]);
    let note = "template updated; pods db-0..db-1 below partition 2 keep their old resources; db-2 is updated";
    assert!(out.stderr.contains(note), "{}", out.context());
    assert_eq!(results_json(&dir)["results"][0]["note"], note);
}

/// Asserts a refusal before any change: exit 3, the workload and the server's words, the template as
/// it was, no restore plan written.
fn assert_refused(s: &Scenario, out: &Out, dir: &Path, words: &[&str]) {
    assert_eq!(out.code, 3, "{}", out.context());
    for w in words {
        assert!(out.stderr.contains(w), "missing `{w}`:\n{}", out.context());
    }
    assert_eq!(s.template("deployment/web"), old(), "nothing was changed");
    assert!(!dir.join("restore-plan.yaml").exists(), "the refusal comes before the restore plan");
}

#[test]
fn a_limit_range_max_below_the_planned_limit_is_refused_before_any_change() {
    let lr = "apiVersion: v1\nkind: LimitRange\nmetadata: {name: caps, namespace: '{ns}'}\nspec:\n  limits:\n  - type: Container\n    max: {cpu: 500m}\n---\n";
    let s = Scenario::new(&format!("{lr}{}", deployment("", 1)), &["deployment/web"]);
    let (out, dir, _) = s.execute(&resources("Deployment", "web", "app", "", "cpu: \"1\""), &[]);
    assert_refused(
        &s,
        &out,
        &dir,
        &["Deployment/web", "is forbidden: maximum cpu usage per Container is 500m, but limit is 1"],
    );
}

#[test]
fn pod_security_restricted_refuses_a_non_compliant_template_with_the_servers_words() {
    let s = Scenario::new(&deployment("", 1), &["deployment/web"]);
    // Enforced after the pods exist: the namespace label only judges new pods.
    s.cluster.kubectl(&["label", "namespace", &s.ns, "pod-security.kubernetes.io/enforce=restricted"], None);
    let (out, dir, _) = s.execute(&resources("Deployment", "web", "app", "cpu: 300m, memory: 256Mi", ""), &[]);
    assert_refused(&s, &out, &dir, &["Deployment/web", "is forbidden: violates PodSecurity \"restricted:latest\""]);
}

#[test]
fn a_compute_quota_the_change_exceeds_is_refused_with_the_numbers() {
    let quota = "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: compute, namespace: '{ns}'}\nspec:\n  hard: {requests.cpu: \"1\"}\n---\n";
    let s = Scenario::new(&format!("{quota}{}", deployment("", 2)), &["deployment/web"]);
    s.quota_used("compute", "requests.cpu", "400m");
    // One pod of 400m fits (400m used + 400m ≤ 1); the change does not: 3 pods × 400m (2 replicas +
    // 1 surge pod, maxSurge 25 % rounded up; the API server writes the default onto the object) −
    // 400m now = 800m > 600m free.
    let (out, dir, _) = s.execute(&resources("Deployment", "web", "app", "cpu: 400m, memory: 256Mi", ""), &[]);
    assert_refused(
        &s,
        &out,
        &dir,
        &[
            "ResourceQuota/compute requests.cpu: used 400m of hard 1 (600m free); the change needs 800m more: Deployment/web +800m (2 → 3 pods incl. 1 surge pod (maxSurge 25%))",
        ],
    );
}

#[test]
fn a_pods_quota_only_the_surge_exceeds_is_refused() {
    let quota = "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: pods, namespace: '{ns}'}\nspec:\n  hard: {pods: \"3\"}\n---\n";
    let strategy = "  strategy: {rollingUpdate: {maxSurge: 2, maxUnavailable: 0}}\n";
    let s = Scenario::new(&format!("{quota}{}", deployment(strategy, 2)), &["deployment/web"]);
    s.quota_used("pods", "pods", "2");
    let (out, dir, _) = s.execute(&resources("Deployment", "web", "app", "cpu: 300m, memory: 256Mi", ""), &[]);
    assert_refused(&s, &out, &dir, &["ResourceQuota/pods pods: used 2 of hard 3 (1 free); the change needs 2 more"]);
}

/// The surge exceeds a `count/pods` quota, a key the pre-check does not total (the single dry-run
/// pod fits: 2 used + 1 ≤ 3). minReadySeconds keeps the first new pod unavailable, so the old pods
/// stay and the second surge pod cannot be created: the ReplicaSet controller reports FailedCreate.
#[test]
fn a_surge_the_quota_rejects_fails_the_wait_with_the_servers_message() {
    let quota = "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: count, namespace: '{ns}'}\nspec:\n  hard: {count/pods: \"3\"}\n---\n";
    let strategy = "  minReadySeconds: 3600\n  progressDeadlineSeconds: 7200\n  strategy: {rollingUpdate: {maxSurge: 2, maxUnavailable: 0}}\n";
    let s = Scenario::new(&format!("{quota}{}", deployment(strategy, 2)), &[]);
    s.quota_used("count", "count/pods", "2");
    let (out, dir, took) = s.execute(&resources("Deployment", "web", "app", "cpu: 300m, memory: 256Mi", ""), &[]);
    assert_eq!(out.code, 4, "{}", out.context());
    assert!(took < Duration::from_secs(25), "the wait stopped at the failure, not the timeout: {took:?}");
    for w in [
        "a rollout failed",
        "Deployment/web: the ReplicaSet controller cannot create pods (FailedCreate): pods \"web-",
        "is forbidden: exceeded quota: count, requested: count/pods=1, used: count/pods=3, limited: count/pods=3",
        "to restore the snapshot: infra-scale apply --plan=",
    ] {
        assert!(out.stderr.contains(w), "missing `{w}`:\n{}", out.context());
    }
    assert_eq!(s.template("deployment/web")["requests"]["cpu"], "300m", "the change was made");
    assert!(dir.join("restore-plan.yaml").exists());
}

/// A StatefulSet scale-up past a `count/pods` quota: db-1 is created, db-2 is not; the StatefulSet
/// controller says so only in a FailedCreate event, which the stalled wait reads.
#[test]
fn a_statefulset_whose_pods_cannot_be_created_fails_the_wait_with_the_event() {
    let quota = "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: count, namespace: '{ns}'}\nspec:\n  hard: {count/pods: \"2\"}\n---\n";
    let s = Scenario::new(&format!("{quota}{}", statefulset("", 1)), &["statefulset/db"]);
    s.quota_used("count", "count/pods", "1");
    let (out, _, took) = s.execute(&scale("StatefulSet", "db", 3), &[]);
    assert_eq!(out.code, 4, "{}", out.context());
    assert!(took < Duration::from_secs(25), "the wait stopped at the failure, not the timeout: {took:?}");
    let w = "StatefulSet/db: the StatefulSet controller cannot create pods (FailedCreate): create Pod db-2 in \
             StatefulSet db failed error: pods \"db-2\" is forbidden: exceeded quota: count, requested: count/pods=1, \
             used: count/pods=2, limited: count/pods=2";
    assert!(out.stderr.contains(w), "missing `{w}`:\n{}", out.context());
    assert_eq!(s.get("statefulset/db")["spec"]["replicas"], 3);
    assert_eq!(s.pods().len(), 2, "db-2 was never created");
}

/// Credentials that may change workloads but not create pods: the admission check cannot run, says
/// so once, and the execution goes on (the server's RBAC denial is not a policy refusal).
#[test]
fn credentials_that_may_not_create_pods_get_one_warning_and_the_change_runs() {
    let rbac = r#"apiVersion: v1
kind: ServiceAccount
metadata: {name: limited, namespace: '{ns}'}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: limited, namespace: '{ns}'}
rules:
- apiGroups: [apps]
  resources: [deployments, statefulsets, deployments/scale, statefulsets/scale]
  verbs: [get, list, watch, patch, update]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list]
- apiGroups: [""]
  resources: [resourcequotas, events]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: limited, namespace: '{ns}'}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: limited}
subjects:
- {kind: ServiceAccount, name: limited, namespace: '{ns}'}
---
"#;
    let s = Scenario::new(&format!("{rbac}{}", deployment("", 1)), &["deployment/web"]);
    let token = s.kubectl(&["create", "token", "limited", "--duration=10m"]);
    let admin = std::fs::read_to_string(&s.kubeconfig).expect("kubeconfig");
    let mut limited = String::new();
    for line in admin.lines() {
        if line.trim_start().starts_with("client-certificate:") {
            limited.push_str(&format!("    token: {}\n", token.trim()));
        } else if !line.trim_start().starts_with("client-key:") {
            limited.push_str(line);
            limited.push('\n');
        }
    }
    std::fs::write(&s.kubeconfig, limited).expect("write the limited kubeconfig");

    let (out, _, _) = s.execute(&resources("Deployment", "web", "app", "cpu: 300m, memory: 256Mi", ""), &[]);
    assert_eq!(out.code, 0, "{}", out.context());
    let warning = "pod admission (LimitRange, PodSecurity, per-pod quota rules) could not be checked before the change";
    assert_eq!(out.stderr.matches(warning).count(), 1, "{}", out.context());
    assert_eq!(s.template("deployment/web")["requests"]["cpu"], "300m");
}

/// A StatefulSet at a full `pods` quota replaces its pods one at a time: the single dry-run pod is
/// over the quota ("exceeded quota: pods"), the change is not, and it runs.
#[test]
fn a_statefulset_at_a_full_pods_quota_still_rolls() {
    let quota = "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: pods, namespace: '{ns}'}\nspec:\n  hard: {pods: \"2\"}\n---\n";
    let s = Scenario::new(&format!("{quota}{}", statefulset("", 2)), &["statefulset/db"]);
    s.quota_used("pods", "pods", "2");
    let (out, _, _) = s.execute(&resources("StatefulSet", "db", "db", "cpu: 300m, memory: 256Mi", ""), &[]);
    assert_eq!(out.code, 0, "{}", out.context());
    let pods = s.pods();
    assert_eq!(pods.len(), 2, "{pods:?}");
    for (name, r) in pods {
        assert_eq!(r["requests"]["cpu"], "300m", "pod {name} was replaced with the new resources");
    }
}

/// A Deployment whose pods cannot be scheduled (no node matches) and whose progress deadline is 1 s
/// is at ProgressDeadlineExceeded before execution: the note says so, and the wait fails on the
/// deadline saying it had already passed before the change.
#[test]
fn a_deployment_already_past_its_progress_deadline_is_said_so() {
    let spec = "  progressDeadlineSeconds: 1\n";
    let manifest = deployment(spec, 1).replace(
        "    spec:\n      containers:",
        "    spec:\n      nodeSelector: {nowhere: \"true\"}\n      containers:",
    );
    let s = Scenario::new(&manifest, &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.get("deployment/web")["status"]["conditions"]
        .as_array()
        .is_none_or(|cs| !cs.iter().any(|c| c["reason"] == "ProgressDeadlineExceeded"))
    {
        assert!(Instant::now() < deadline, "never reached ProgressDeadlineExceeded");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (out, dir, _) = s.execute(&resources("Deployment", "web", "app", "cpu: 300m, memory: 256Mi", ""), &[]);
    assert_eq!(out.code, 4, "{}", out.context());
    let note =
        "had already exceeded its progress deadline before execution (ProgressDeadlineExceeded: ReplicaSet \"web-";
    assert!(out.stderr.contains(&format!("note: Deployment/web: {note}")), "{}", out.context());
    assert!(results_json(&dir)["results"][0]["note"].as_str().unwrap_or("").starts_with(note));
    assert!(
        out.stderr.contains("; it had already exceeded its progress deadline before execution"),
        "{}",
        out.context()
    );
    assert_eq!(s.template("deployment/web")["requests"]["cpu"], "300m");
}

/// A StatefulSet with volumeClaimTemplates: its containers mount volumes that only the controller
/// adds to its pods. The dry-run pod carries them too, so the server judges the LimitRange, not a
/// missing volume (`volumeMounts[0].name: Not found`).
#[test]
fn a_statefulset_with_volume_claims_is_judged_on_its_resources() {
    let lr = "apiVersion: v1\nkind: LimitRange\nmetadata: {name: caps, namespace: '{ns}'}\nspec:\n  limits:\n  - type: Container\n    max: {cpu: 500m}\n---\n";
    let sts = statefulset("", 1).replace(
        "resources: {requests: {cpu: 200m, memory: 128Mi}}}",
        "resources: {requests: {cpu: 200m, memory: 128Mi}}, volumeMounts: [{name: data, mountPath: /data}]}",
    ) + "  volumeClaimTemplates:\n  - metadata: {name: data}\n    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n";
    // The claim is never bound (no storage on kwok): the pod stays Pending, nothing is waited for.
    let s = Scenario::new(&format!("{lr}{sts}"), &[]);
    let (out, dir, _) = s.execute(&resources("StatefulSet", "db", "db", "", "cpu: \"1\""), &[]);
    assert_eq!(out.code, 3, "{}", out.context());
    let words = "StatefulSet/db: the API server would not admit its pods with the planned resources: pods \"db-";
    assert!(out.stderr.contains(words), "{}", out.context());
    assert!(out.stderr.contains("maximum cpu usage per Container is 500m, but limit is 1"), "{}", out.context());
    assert!(!out.stderr.contains("volumeMounts"), "{}", out.context());
    assert!(s.template("statefulset/db").get("limits").is_none(), "nothing was changed");
    assert!(!dir.join("restore-plan.yaml").exists());
}
