//! `infra-scale apply --execute` with real kubectl against the real control plane of
//! `scripts/cluster.sh` (kube-apiserver v1.34.4 with its controllers, kwok nodes), one namespace
//! per scenario and kubectl version. Part of the default suite: the first test starts the control
//! plane (`scripts/cluster.sh up`, which builds it if it is not cached yet; `scripts/test.sh`
//! builds it before `cargo test`).

mod apply_support;

use std::path::{Path, PathBuf};

use apply_support::{CONTEXT, Scratch, fixture, kubectls};
use serde_json::{Value, json};

/// A namespace with the fixture, and the kubeconfig of the shared control plane for it.
struct Scenario(Scratch);

impl std::ops::Deref for Scenario {
    type Target = Scratch;
    fn deref(&self) -> &Scratch {
        &self.0
    }
}

impl Scenario {
    /// A fresh namespace with the fixture, created with `how` (`create` or client-side `apply`).
    fn new(kubectl: &Path, how: &str) -> Scenario {
        let s = Scratch::new("t", kubectl, |cluster, dir, ns| cluster.kubeconfig_for(dir, CONTEXT, ns));
        let args: &[&str] = match how {
            "apply" => &["apply", "-f", "-"],
            // What Helm 3 does: create (and later update) as field manager `helm`.
            "helm" => &["create", "--field-manager=helm", "-f", "-"],
            // Argo CD's server-side sync.
            "argocd" => &["apply", "--server-side", "--field-manager=argocd-controller", "-f", "-"],
            _ => &["create", "-f", "-"],
        };
        s.cluster.kubectl(args, Some(&fixture(&s.ns)));
        s.cluster.kubectl(&["-n", &s.ns, "rollout", "status", "deploy/web", "deploy/api", "--timeout=60s"], None);
        Scenario(s)
    }

    /// Replicas, every container's resources and every HPA's bounds and metrics, read from the server.
    fn state(&self) -> Value {
        let mut out = serde_json::Map::new();
        for object in ["deployment/web", "deployment/api", "statefulset/db"] {
            let o = self.cluster.get(&self.ns, object);
            let spec = &o["spec"]["template"]["spec"];
            let mut containers = serde_json::Map::new();
            for list in ["containers", "initContainers"] {
                for c in spec[list].as_array().into_iter().flatten() {
                    containers.insert(c["name"].as_str().unwrap_or("?").to_string(), c["resources"].clone());
                }
            }
            out.insert(object.to_string(), json!({"replicas": o["spec"]["replicas"], "containers": containers}));
        }
        let hpas = self.cluster.get(&self.ns, "horizontalpodautoscalers.v2.autoscaling");
        for h in hpas["items"].as_array().into_iter().flatten() {
            out.insert(
                format!("hpa/{}", h["metadata"]["name"].as_str().unwrap_or("?")),
                json!({"min": h["spec"]["minReplicas"], "max": h["spec"]["maxReplicas"], "metrics": h["spec"]["metrics"]}),
            );
        }
        Value::Object(out)
    }
}

fn each_kubectl(scenario: impl Fn(&Path)) {
    for kubectl in kubectls() {
        eprintln!("kubectl: {}", kubectl.display());
        scenario(&kubectl);
    }
}

#[test]
fn the_prod_plan_executes_re_runs_as_noops_and_restores_on_a_real_server() {
    each_kubectl(|kubectl| {
        let s = Scenario::new(kubectl, "create");
        let before = s.state();
        let (out, dir) = s.execute(&s.plan("execute.yaml"), &[]);
        assert_eq!(out.code, 0, "{}", out.context());
        let after = s.state();
        assert_eq!(
            after["deployment/web"]["containers"]["app"],
            json!({"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}})
        );
        assert_eq!(
            after["deployment/web"]["containers"]["log-shipper"],
            before["deployment/web"]["containers"]["log-shipper"]
        );
        assert_eq!(after["deployment/api"]["replicas"], 4);
        assert_eq!(after["statefulset/db"]["replicas"], 3);
        assert_eq!(
            after["statefulset/db"]["containers"]["db"],
            json!({"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}})
        );
        assert_eq!((after["hpa/web"]["min"].as_i64(), after["hpa/web"]["max"].as_i64()), (Some(4), Some(12)));
        // The rollout waits ended because the real controllers finished: every pod is updated.
        // (web's new HPA raises it from 3 to its minimum 4 on its own, after the wait.)
        for object in ["deployment/web", "deployment/api", "statefulset/db"] {
            let o = s.cluster.get(&s.ns, object);
            let wanted = if object == "deployment/web" { 3 } else { o["spec"]["replicas"].as_u64().unwrap_or(0) };
            let updated = o["status"]["updatedReplicas"].as_u64().unwrap_or(0);
            assert!(updated >= wanted, "{object}: {}", o["status"]);
        }

        let (again, _) = s.execute(&s.plan("execute.yaml"), &[]);
        assert_eq!(again.code, 0, "{}", again.context());
        assert_eq!(again.json()["changed"], false, "{}", again.context());

        let (restored, _) = s.execute(&dir.join("restore-plan.yaml"), &[]);
        assert_eq!(restored.code, 0, "{}", restored.context());
        let restored_state = s.state();
        assert_eq!(restored_state["deployment/api"], before["deployment/api"]);
        assert_eq!(restored_state["statefulset/db"], before["statefulset/db"]);
        assert_eq!(restored_state["deployment/web"]["containers"], before["deployment/web"]["containers"]);
        assert!(restored_state.get("hpa/web").is_none(), "the HPA the plan created is deleted: {restored_state}");
    });
}

/// The managers of an object and the fields each owns (FieldsV1 as JSON text).
fn owners(s: &Scenario, object: &str) -> Vec<(String, String, String)> {
    let text = s.cluster.kubectl(&["-n", &s.ns, "get", object, "-o", "json", "--show-managed-fields"], None);
    let o: Value = serde_json::from_str(&text).expect("JSON");
    o["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["manager"].as_str().unwrap_or("").to_string(),
                m["operation"].as_str().unwrap_or("").to_string(),
                m["fieldsV1"].to_string(),
            )
        })
        .collect()
}

/// Issue 9, item 1 (audit finding 1): objects last written by client-side `kubectl apply`. Every
/// execution (the restore plan included) succeeds, infra-scale owns exactly the fields it changed
/// (an Update entry), `kubectl-client-side-apply` keeps everything else, and the next client-side
/// `kubectl apply` of the same manifests (the next deploy) still succeeds.
#[test]
fn objects_from_client_side_apply_execute_and_restore() {
    each_kubectl(|kubectl| {
        let s = Scenario::new(kubectl, "apply");
        let before = s.state();
        let (out, dir) = s.execute(&s.plan("execute.yaml"), &[]);
        assert_eq!(out.code, 0, "{}", out.context());
        assert!(!out.stderr.contains("Warning"), "no kubectl warning (no ownership migration): {}", out.stderr);

        let web = owners(&s, "deployment/web");
        let mine: Vec<_> = web.iter().filter(|(m, _, _)| m == "infra-scale").collect();
        assert_eq!(mine.len(), 1, "{web:?}");
        assert_eq!(mine[0].1, "Update", "a JSON patch is an Update operation: {web:?}");
        let owned = &mine[0].2;
        for field in ["f:cpu", "f:memory", "f:limits", r#"k:{\"name\":\"app\"}"#] {
            assert!(owned.contains(field), "infra-scale owns {field}: {owned}");
        }
        for never in ["f:selector", "f:image", "f:replicas", "log-shipper", "f:labels", "last-applied"] {
            assert!(!owned.contains(never), "infra-scale must not own {never}: {owned}");
        }
        let csa = web.iter().find(|(m, _, _)| m == "kubectl-client-side-apply").expect("the CSA manager stays");
        for kept in ["f:selector", "f:image", "last-applied-configuration"] {
            assert!(csa.2.contains(kept), "kubectl-client-side-apply keeps {kept}: {}", csa.2);
        }

        // The next deploy: the same manifests, client-side again.
        s.cluster.kubectl(&["apply", "-f", "-"], Some(&fixture(&s.ns)));
        // A later execution and the restore still succeed.
        let (again, _) = s.execute(&s.plan("execute.yaml"), &[]);
        assert_eq!(again.code, 0, "{}", again.context());
        let (restored, _) = s.execute(&dir.join("restore-plan.yaml"), &[]);
        assert_eq!(restored.code, 0, "{}", restored.context());
        let restored_state = s.state();
        assert_eq!(restored_state["deployment/api"], before["deployment/api"], "{}", restored.context());
        assert_eq!(restored_state["statefulset/db"], before["statefulset/db"], "{}", restored.context());
        assert_eq!(restored_state["deployment/web"]["containers"], before["deployment/web"]["containers"]);
        // The selector, images and labels were never touched.
        let web = s.cluster.get(&s.ns, "deployment/web");
        assert_eq!(web["spec"]["selector"], json!({"matchLabels": {"app": "web"}}));
        assert_eq!(web["spec"]["template"]["spec"]["containers"][0]["image"], "nginx");
        s.cluster.kubectl(&["apply", "-f", "-"], Some(&fixture(&s.ns)));
    });
}

/// An HPA written client-side with a memory and a CPU metric and a `behavior`.
fn hpa_manifest(ns: &str, metrics: &str) -> String {
    format!(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {{name: web, namespace: {ns}}}\n\
         spec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}\n  minReplicas: 2\n  \
         maxReplicas: 6\n  metrics: {metrics}\n  behavior:\n    scaleDown: {{stabilizationWindowSeconds: 120}}\n"
    )
}

const MEMORY: &str = "{type: Resource, resource: {name: memory, target: {type: Utilization, averageUtilization: 75}}}";
const CPU: &str = "{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}}";

fn hpa_plan(s: &Scenario, hpa: &str) -> PathBuf {
    let p = s.dir.path().join("hpa.yaml");
    let text = format!(
        "apiVersion: infra.scale/v1\nkind: ScalePlan\nmetadata: {{createdAt: 2025-10-11T00:00:00Z, target: prod}}\n\
         context: {{kubeContext: {CONTEXT}, namespace: {ns}}}\nassumptions: {{autoscaling: hpa}}\nactions:\n\
         - {{action: apply_hpa, kind: HorizontalPodAutoscaler, name: web, namespace: {ns}, hpa: {hpa}}}\n\
         rollbackHints: []\nrisks: []\nnotes: []\n",
        ns = s.ns
    );
    std::fs::write(&p, text).expect("plan");
    p
}

/// Issue 9, item 3: an HPA's other metrics and its `behavior` survive a CPU-target change (the
/// atomic `spec.metrics` list is patched whole with only the CPU entry replaced), and the restore
/// plan brings back the exact list.
#[test]
fn an_hpa_keeps_its_other_metrics_and_behavior_and_restores_exactly() {
    each_kubectl(|kubectl| {
        let s = Scenario::new(kubectl, "apply");
        s.cluster.kubectl(&["apply", "-f", "-"], Some(&hpa_manifest(&s.ns, &format!("[{MEMORY}, {CPU}]"))));
        let before = s.cluster.get(&s.ns, "horizontalpodautoscalers.v2.autoscaling/web");
        let (out, dir) = s.execute(&hpa_plan(&s, "{min: 3, max: 8, targetCPU: 70}"), &[]);
        assert_eq!(out.code, 0, "{}", out.context());
        let after = s.cluster.get(&s.ns, "horizontalpodautoscalers.v2.autoscaling/web");
        assert_eq!((after["spec"]["minReplicas"].as_u64(), after["spec"]["maxReplicas"].as_u64()), (Some(3), Some(8)));
        let metrics = after["spec"]["metrics"].as_array().cloned().unwrap_or_default();
        assert_eq!(metrics.len(), 2, "{metrics:?}");
        assert_eq!(metrics[0], before["spec"]["metrics"][0], "the memory metric is kept in place");
        assert_eq!(metrics[1]["resource"]["target"]["averageUtilization"], 70);
        assert_eq!(after["spec"]["behavior"], before["spec"]["behavior"], "behavior is untouched");

        // Re-running the same plan sends nothing: other metrics do not make it a change.
        let (again, _) = s.execute(&hpa_plan(&s, "{min: 3, max: 8, targetCPU: 70}"), &[]);
        assert_eq!(again.code, 0, "{}", again.context());
        assert_eq!(again.json()["changed"], false, "{}", again.context());

        let (restored, _) = s.execute(&dir.join("restore-plan.yaml"), &[]);
        assert_eq!(restored.code, 0, "{}", restored.context());
        let back = s.cluster.get(&s.ns, "horizontalpodautoscalers.v2.autoscaling/web");
        assert_eq!(back["spec"], before["spec"], "the exact spec is back");
    });
}

/// Issue 9, item 3: an HPA that had no CPU metric is restored without one (no 80 % CPU default).
#[test]
fn an_hpa_without_a_cpu_metric_is_restored_without_one() {
    each_kubectl(|kubectl| {
        let s = Scenario::new(kubectl, "apply");
        s.cluster.kubectl(&["apply", "-f", "-"], Some(&hpa_manifest(&s.ns, &format!("[{MEMORY}]"))));
        let before = s.cluster.get(&s.ns, "horizontalpodautoscalers.v2.autoscaling/web");
        let (out, dir) = s.execute(&hpa_plan(&s, "{min: 3, max: 8, targetCPU: 70}"), &[]);
        assert_eq!(out.code, 0, "{}", out.context());
        let after = s.cluster.get(&s.ns, "horizontalpodautoscalers.v2.autoscaling/web");
        assert_eq!(after["spec"]["metrics"].as_array().map(Vec::len), Some(2), "{}", after["spec"]);
        let (restored, _) = s.execute(&dir.join("restore-plan.yaml"), &[]);
        assert_eq!(restored.code, 0, "{}", restored.context());
        let back = s.cluster.get(&s.ns, "horizontalpodautoscalers.v2.autoscaling/web");
        assert_eq!(back["spec"], before["spec"], "memory only again, no CPU metric");
        // Bounds only: the metrics list is not sent at all.
        let (bounds, _) = s.execute(&hpa_plan(&s, "{min: 2, max: 9}"), &[]);
        assert_eq!(bounds.code, 0, "{}", bounds.context());
        let now = s.cluster.get(&s.ns, "horizontalpodautoscalers.v2.autoscaling/web");
        assert_eq!(now["spec"]["metrics"], before["spec"]["metrics"]);
        assert_eq!(now["spec"]["maxReplicas"], 9);
    });
}

/// Issue 9, item 2: fields owned by Helm or Argo CD are refused before anything is sent (a JSON
/// patch would never conflict, and their next sync would revert it), naming the owner; with
/// `--allow-owner` the change goes ahead. Replicas too: `/scale` never conflicts either.
#[test]
fn fields_owned_by_helm_or_argo_cd_are_refused_unless_allowed() {
    each_kubectl(|kubectl| {
        for (how, allow) in [("helm", "helm"), ("argocd", "argocd")] {
            let s = Scenario::new(kubectl, how);
            let before = s.state();
            let (out, _) = s.execute(&s.plan("execute.yaml"), &[]);
            assert_eq!(out.code, 3, "{how}: {}", out.context());
            let manager = if how == "helm" { "helm" } else { "argocd-controller" };
            assert!(out.stderr.contains(manager), "{how}: the owner is named: {}", out.stderr);
            assert!(out.stderr.contains("spec.template.spec.containers[app].resources.requests.cpu"), "{}", out.stderr);
            assert!(out.stderr.contains("spec.replicas"), "replicas are an owned field too: {}", out.stderr);
            assert!(!out.stderr.contains("--force-conflicts"), "{}", out.stderr);
            assert!(out.stderr.contains("--allow-owner"), "{}", out.stderr);
            assert_eq!(s.state(), before, "{how}: a refused plan changes nothing");

            let (allowed, _) = s.execute(&s.plan("execute.yaml"), &[&format!("--allow-owner={allow}")]);
            assert_eq!(allowed.code, 0, "{how}: {}", allowed.context());
            assert_eq!(s.state()["deployment/api"]["replicas"], 4);
        }
    });
}

/// Issue 9, item 7: credentials that may patch but not scale are refused before anything
/// changes, naming the verb and the resource (one `auth can-i --list`).
#[test]
fn a_missing_permission_changes_nothing_and_names_the_verb() {
    each_kubectl(|kubectl| {
        let s = Scenario::new(kubectl, "create");
        let role = format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: patch-only, namespace: {ns}}}\n\
             rules:\n- apiGroups: [apps, autoscaling]\n  resources: [deployments, statefulsets, horizontalpodautoscalers]\n  \
             verbs: [get, list, patch, create]\n- apiGroups: [\"\"]\n  resources: [resourcequotas, pods]\n  verbs: [get, list, create]\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: deployer, namespace: {ns}}}\n\
             ---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: deployer, namespace: {ns}}}\n\
             roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: patch-only}}\n\
             subjects: [{{kind: ServiceAccount, name: deployer, namespace: {ns}}}]\n",
            ns = s.ns
        );
        s.cluster.kubectl(&["apply", "-f", "-"], Some(&role));
        let token = s.cluster.kubectl(&["-n", &s.ns, "create", "token", "deployer"], None);
        // The scenario's kubeconfig, with the service account's token as its user.
        let text = std::fs::read_to_string(&s.kubeconfig).expect("kubeconfig");
        let (users_at, contexts_at) = (text.find("users:").expect("users"), text.find("contexts:").expect("contexts"));
        assert!(users_at < contexts_at, "{text}");
        let limited = format!(
            "{}users:\n- name: infra-scale-admin\n  user:\n    token: {}\n{}",
            &text[..users_at],
            token.trim(),
            &text[contexts_at..]
        );
        std::fs::write(&s.kubeconfig, limited).expect("write kubeconfig");
        let before = s.state();
        let (out, _) = s.execute(&s.plan("execute.yaml"), &[]);
        assert_eq!(out.code, 3, "{}", out.context());
        assert!(out.stderr.contains("update deployments.apps/scale (api)"), "{}", out.stderr);
        assert!(out.stderr.contains("update statefulsets.apps/scale (db)"), "{}", out.stderr);
        assert!(!out.stderr.contains("patch deployments.apps"), "patch is granted: {}", out.stderr);
        assert!(!out.stderr.contains(token.trim()), "the token is never printed");
        assert_eq!(s.state(), before, "nothing changed");
    });
}

#[test]
fn drift_is_refused_on_a_real_server() {
    each_kubectl(|kubectl| {
        let s = Scenario::new(kubectl, "create");
        s.cluster.kubectl(&["-n", &s.ns, "scale", "deployment/api", "--replicas=5"], None);
        let p = s.plan("execute.yaml");
        let text = std::fs::read_to_string(&p).expect("plan").replace("from: \"${detect}\"", "from: 3");
        std::fs::write(&p, text).expect("plan");
        let before = s.state();
        let (out, _) = s.execute(&p, &[]);
        assert_eq!(out.code, 3, "{}", out.context());
        assert_eq!(s.state(), before, "a refused plan changes nothing");
    });
}

/// Issue 9, item 1 (audit finding 1), reproduced on kube-apiserver v1.34.4: a StatefulSet last
/// written by client-side `kubectl apply`, a plan that only adds a CPU limit (no conflict). The
/// first execution succeeds, but kubectl migrates every `kubectl-client-side-apply` field to
/// `infra-scale` (selector, serviceName, template, ...), so the restore plan's partial manifest
/// is rejected: "spec.selector: Required value", "spec.template.spec.containers[0].image:
/// Required value".
#[test]
fn a_client_side_applied_statefulset_keeps_its_owner_and_restores() {
    each_kubectl(|kubectl| {
        let s = Scenario::new(kubectl, "apply");
        let before = s.state();
        let p = s.dir.path().join("db-limit.yaml");
        let text = format!(
            "apiVersion: infra.scale/v1\nkind: ScalePlan\nmetadata: {{createdAt: 2025-10-11T00:00:00Z, target: prod}}\n\
             context: {{kubeContext: {CONTEXT}, namespace: {ns}}}\nassumptions: {{autoscaling: hpa}}\nactions:\n\
             - {{action: update_resources, kind: StatefulSet, name: db, namespace: {ns}, container: db, limits: {{cpu: 2}}}}\n\
             rollbackHints: []\nrisks: []\nnotes: []\n",
            ns = s.ns
        );
        std::fs::write(&p, text).expect("plan");
        let (out, dir) = s.execute(&p, &[]);
        assert_eq!(out.code, 0, "{}", out.context());
        let (restored, _) = s.execute(&dir.join("restore-plan.yaml"), &[]);
        assert_eq!(restored.code, 0, "{}", restored.context());
        assert_eq!(s.state()["statefulset/db"], before["statefulset/db"]);
    });
}
