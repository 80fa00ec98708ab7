//! `infra-scale apply --execute` with the real kubectl against the real control plane of
//! `scripts/cluster.sh` (one namespace per scenario, testkit's fault proxy in front of the server
//! for the faults a real server does not make on demand): every test asserts the server's state
//! afterwards, not the printed commands. Each scenario runs once per kubectl version (see
//! `apply_support::kubectls`). Rollouts really happen (kwok makes the pods Ready).

mod apply_support;

use std::path::Path;
use std::time::{Duration, Instant};

use apply_support::{CONTEXT, Cluster, infra_scale, kubectls};
use serde_json::{Value, json};
use testkit::faults::{Fault, Rule};

fn each_kubectl(scenario: impl Fn(&Path)) {
    for kubectl in kubectls() {
        eprintln!("kubectl: {}", kubectl.display());
        scenario(&kubectl);
    }
}

fn container<'a>(state: &'a Value, object: &str, name: &str) -> &'a Value {
    &state[object]["containers"][name]
}

/// What the happy path leaves in the fixture.
fn assert_executed(c: &Cluster, before: &Value) {
    let s = c.state();
    // web: only container `app` changed, `memory` (never `mem`), the sidecar and init container untouched.
    assert_eq!(
        container(&s, "Deployment/web", "app"),
        &json!({"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}})
    );
    assert_eq!(container(&s, "Deployment/web", "log-shipper"), container(before, "Deployment/web", "log-shipper"));
    assert_eq!(container(&s, "Deployment/web", "migrate"), container(before, "Deployment/web", "migrate"));
    // web's replicas are left to the HPA the plan created (by scaleTargetRef); the real HPA
    // controller raises them to its minReplicas.
    let s = c.wait_state(30, |s| s["Deployment/web"]["replicas"] == 4);
    assert_eq!(s["Deployment/web"]["replicas"], 4, "the HPA controller scaled web to min=4: {s}");
    let hpa = &s["HorizontalPodAutoscaler/web"];
    assert_eq!(hpa["target"], json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}));
    assert_eq!((hpa["min"].as_i64(), hpa["max"].as_i64()), (Some(4), Some(12)));
    assert_eq!(hpa["metrics"][0]["resource"]["target"], json!({"type": "Utilization", "averageUtilization": 65}));
    // api: no HPA, so replicas set; its only container chosen; the memory limit kept.
    assert_eq!(s["Deployment/api"]["replicas"], 4);
    assert_eq!(
        container(&s, "Deployment/api", "api"),
        &json!({"requests": {"cpu": "400m", "memory": "512Mi"}, "limits": {"memory": "512Mi"}})
    );
    assert!(s.get("HorizontalPodAutoscaler/api").is_none(), "no HPA for api");
    // db (StatefulSet): replicas and a CPU limit added, the rest kept.
    assert_eq!(s["StatefulSet/db"]["replicas"], 3);
    assert_eq!(
        container(&s, "StatefulSet/db", "db"),
        &json!({"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}})
    );
}

#[test]
fn execute_applies_the_plan_and_a_second_run_is_all_noops() {
    each_kubectl(|kubectl| {
        let c = Cluster::new(kubectl);
        let before = c.state();
        let (out, dir) = c.execute(&c.plan("execute.yaml"), &[]);
        assert_eq!(out.code, 0, "{}", out.context());
        assert_eq!(out.stdout.lines().last(), Some("succeeded"));
        assert_executed(&c, &before);
        let summary = out.json();
        assert_eq!(summary["executed"], true);
        assert_eq!(summary["changed"], true);
        assert_eq!(out.statuses(), ["skipped", "applied", "applied", "applied", "applied", "applied", "applied"]);
        let web_scale = &summary["results"][0];
        assert!(web_scale["reason"].as_str().unwrap_or("").contains("HorizontalPodAutoscaler/web"), "{web_scale}");
        assert_eq!(summary["results"][2]["before"], json!({"replicas": 3}));
        assert_eq!(summary["results"][2]["after"], json!({"replicas": 4}));
        // The rollout waits ended because the real controllers finished: every pod is updated.
        for object in ["deployment/web", "deployment/api", "statefulset/db"] {
            let o = c.cluster.get(&c.ns, object);
            assert_eq!(o["status"]["updatedReplicas"], o["spec"]["replicas"], "{object}: {}", o["status"]);
        }
        // The journal and the restore plan are in the output directory.
        let results: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).expect("results"))
            .expect("results.json is JSON");
        assert_eq!(results["results"], summary["results"]);
        let restore = std::fs::read_to_string(dir.join("restore-plan.yaml")).expect("restore plan");
        let restore =
            ::infra_scale::plan::ScalePlan::parse_untrusted(&restore, "restore-plan.yaml").expect("valid plan");
        assert_eq!(
            restore.actions.iter().map(|a| (a.name(), a.object())).collect::<Vec<_>>(),
            [
                ("delete_hpa", "HorizontalPodAutoscaler/web".to_string()),
                ("restore_resources", "Deployment/web".to_string()),
                ("restore_resources", "Deployment/api".to_string()),
                ("restore_resources", "StatefulSet/db".to_string()),
                ("scale_workload", "Deployment/api".to_string()),
                // web's replicas were never set, but the HPA infra-scale created may move them.
                ("scale_workload", "Deployment/web".to_string()),
                ("scale_workload", "StatefulSet/db".to_string()),
            ]
        );

        // Again: everything is a no-op, nothing is written, exit 0.
        let writes = c.proxy.writes();
        let after_first = c.state();
        let (again, _) = c.execute(&c.plan("execute.yaml"), &[]);
        assert_eq!(again.code, 0, "{}", again.context());
        assert_eq!(again.statuses(), ["skipped", "noop", "noop", "noop", "noop", "noop", "noop"]);
        assert_eq!(again.json()["changed"], false);
        assert_eq!(c.proxy.writes(), writes, "a re-run sends the server no write");
        assert_eq!(c.state(), after_first);
    });
}

#[test]
fn the_restore_plan_returns_every_object_to_the_snapshot() {
    each_kubectl(|kubectl| {
        let c = Cluster::new(kubectl);
        let before = c.state();
        let (out, dir) = c.execute(&c.plan("execute.yaml"), &[]);
        assert_eq!(out.code, 0, "{}", out.context());
        // Let the HPA controller act on web first, as it would in a real cluster.
        c.wait_state(30, |s| s["Deployment/web"]["replicas"] == 4);
        let (restored, _) = c.execute(&dir.join("restore-plan.yaml"), &[]);
        assert_eq!(restored.code, 0, "{}", restored.context());
        // Limits that did not exist are gone again (infra-scale was their only field manager),
        // the HPA it created is deleted, replicas are back (web's too, which the HPA had raised).
        assert_eq!(c.state(), before);
    });
}

#[test]
fn drift_from_the_observed_state_is_refused() {
    each_kubectl(|kubectl| {
        let c = Cluster::new(kubectl);
        let before = c.state();
        let versions = c.versions();
        let (out, _) = c.execute(&c.plan("drift.yaml"), &[]);
        assert_eq!(out.code, 3, "{}", out.context());
        for expected in
            ["was deleted and re-created", "replicas: planned from 2, live 3", "container api: planned from"]
        {
            assert!(out.stderr.contains(expected), "missing `{expected}`:\n{}", out.stderr);
        }
        assert!(out.stderr.contains("--allow-drift"), "{}", out.stderr);
        assert_eq!(c.proxy.writes(), [], "no write reached the server");
        assert_eq!(c.versions(), versions, "the server stored nothing");
        assert_eq!(c.state(), before);
    });
}

/// With `--allow-drift` the drifted plan executes. api's fields belong to `kubectl-create`, and
/// the plan changes exactly one of them: a one-off manager, so that field is taken over (under
/// the former server-side apply, kube-apiserver v1.34.4 answered "Apply failed with 1 conflict:
/// conflict with \"kubectl-create\"" and the execution was refused).
#[test]
fn drift_is_executed_when_allowed() {
    each_kubectl(|kubectl| {
        let c = Cluster::new(kubectl);
        let (allowed, _) = c.execute(&c.plan("drift.yaml"), &["--allow-drift"]);
        assert_eq!(allowed.code, 0, "{}", allowed.context());
        assert!(allowed.stderr.contains("from kubectl-create"), "the take-over is said: {}", allowed.stderr);
        assert!(!allowed.json()["drift"].as_array().expect("drift listed").is_empty());
        let s = c.state();
        assert_eq!(s["Deployment/api"]["replicas"], 4);
        assert_eq!(container(&s, "Deployment/api", "api")["requests"]["cpu"], "400m");
    });
}

#[test]
fn a_missing_context_is_refused_with_the_available_ones() {
    each_kubectl(|kubectl| {
        let c = Cluster::with_contexts(kubectl, &["staging", "dev"]);
        let (out, _) = c.execute(&c.plan("execute.yaml"), &[]);
        assert_eq!(out.code, 3, "{}", out.context());
        assert!(out.stderr.contains("kube context `production` is not in the kubeconfig"), "{}", out.stderr);
        assert!(out.stderr.contains("available contexts: dev, staging"), "{}", out.stderr);
        assert_eq!(c.proxy.seen(), [], "nothing was asked of the cluster");

        let (other, _) = c.execute(&c.plan("execute.yaml"), &["--context=staging"]);
        assert_eq!(other.code, 0, "{}", other.context());
        assert_eq!(other.json()["context"], "staging");
    });
}

#[test]
fn a_missing_namespace_is_refused() {
    each_kubectl(|kubectl| {
        let c = Cluster::new(kubectl);
        let text =
            std::fs::read_to_string(apply_support::plan("execute.yaml")).expect("plan").replace("assistant", "nowhere");
        let (out, _) = c.execute(&c.write_plan("nowhere.yaml", &text), &[]);
        assert_eq!(out.code, 3, "{}", out.context());
        assert!(out.stderr.contains("namespace `nowhere` does not exist"), "{}", out.stderr);
        assert_eq!(c.proxy.writes(), []);
    });
}

#[test]
fn a_server_side_dry_run_rejection_changes_nothing() {
    each_kubectl(|kubectl| {
        let c = Cluster::new(kubectl);
        let before = c.state();
        // What an admission webhook answers; selected by method, path and dry run, so any way of
        // writing api (apply, patch, scale's own path is another) meets it.
        c.proxy.add(
            Rule::new(Fault::status(
                403,
                "admission webhook \"quota.example.com\" denied the request: exceeded quota: compute, requested: requests.cpu=400m",
            ))
            .method("PATCH")
            .path(&c.api_path("Deployment", "api"))
            .dry_run(true),
        );
        let versions = c.versions();
        let (out, _) = c.execute(&c.plan("execute.yaml"), &[]);
        assert_eq!(out.code, 3, "{}", out.context());
        assert!(out.stderr.contains("exceeded quota"), "{}", out.stderr);
        assert!(out.stderr.contains("nothing was changed"), "{}", out.stderr);
        assert!(c.proxy.seen().iter().any(|r| r.faulted && r.dry_run()), "the dry run met the fault");
        assert_eq!(c.proxy.writes(), [], "only dry runs reached the server");
        assert_eq!(c.versions(), versions);
        assert_eq!(c.state(), before);
        assert!(out.statuses().iter().all(|s| s == "skipped"), "{:?}", out.statuses());
    });
}

#[test]
fn a_conflict_from_the_server_on_the_dry_run_is_refused_before_anything_changes() {
    each_kubectl(|kubectl| {
        // The 409 server-side apply answers when another manager owns a field (injected: which
        // managers own what is the next test's business).
        let c = Cluster::new(kubectl);
        let before = c.state();
        c.proxy.add(
            Rule::new(Fault::status(
                409,
                "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.template.spec.containers[name=\"app\"].resources.requests.cpu",
            ))
            .method("PATCH")
            .path(&c.api_path("Deployment", "web"))
            .dry_run(true),
        );
        let (out, _) = c.execute(&c.plan("execute.yaml"), &[]);
        assert_eq!(out.code, 3, "{}", out.context());
        assert!(out.stderr.contains("kubectl-client-side-apply"), "{}", out.stderr);
        let help = out.stderr.lines().find(|l| l.trim_start().starts_with("help:")).unwrap_or("");
        assert!(!help.contains("--force-conflicts"), "the help never recommends --force-conflicts:\n{}", out.stderr);
        assert_eq!(c.proxy.writes(), []);
        assert_eq!(c.state(), before);
    });
}

/// A workload whose fields another manager owns (here `helm`, which created every object with
/// `kubectl create --field-manager=helm`) is refused with exit 3 and nothing changes.
#[test]
fn field_ownership_conflicts_are_refused_before_anything_changes() {
    each_kubectl(|kubectl| {
        let c = Cluster::with_fixture(kubectl, &[CONTEXT, "staging"], &["create", "--field-manager=helm", "-f", "-"]);
        let api: Value =
            serde_json::from_str(&c.admin(&["get", "deployment/api", "-o", "json", "--show-managed-fields"], None))
                .expect("JSON");
        let managers: Vec<String> = api["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| m["manager"].as_str().unwrap_or("?").to_string())
            .collect();
        assert!(managers.contains(&"helm".to_string()), "{managers:?}");
        let before = c.state();
        let versions = c.versions();
        let (out, _) = c.execute(&c.plan("execute.yaml"), &[]);
        assert_eq!(out.code, 3, "{}", out.context());
        assert!(out.stderr.contains("helm"), "{}", out.stderr);
        assert_eq!(c.proxy.writes(), [], "nothing was written");
        assert_eq!(c.versions(), versions);
        assert_eq!(c.state(), before);
    });
}

#[test]
fn a_failing_patch_mid_way_exits_4_listing_the_changes_and_the_restore_brings_the_snapshot_back() {
    each_kubectl(|kubectl| {
        let c = Cluster::new(kubectl);
        let before = c.state();
        fail_first_write(&c, "Deployment", "api");
        let (out, dir) = c.execute(&c.plan("execute.yaml"), &[]);
        assert_eq!(out.code, 4, "{}", out.context());
        for expected in [
            "execution failed after changing the cluster",
            "etcdserver: request timed out",
            "Deployment/web container app: requests cpu=250m,memory=256Mi → cpu=500m,memory=1Gi",
            "HorizontalPodAutoscaler/web: absent → min=4 max=12 cpu=65%",
            "restore: not run (pass --rollback-on-failure",
            "restore-plan.yaml --execute",
        ] {
            assert!(out.stderr.contains(expected), "missing `{expected}`:\n{}", out.stderr);
        }
        assert!(!out.stderr.contains("Deployment/api container"), "api did not change:\n{}", out.stderr);
        let s = c.state();
        assert_eq!(s["Deployment/api"], before["Deployment/api"], "the failed object is unchanged");
        assert_ne!(s["Deployment/web"], before["Deployment/web"]);
        let summary = out.json();
        assert_eq!(summary["ok"], false);
        assert_eq!(summary["results"][3]["status"], "failed", "api's resources");
        assert_eq!(summary["results"][2]["status"], "skipped", "api's scale never ran");
        // The restore plan written before the change brings the snapshot back (once the HPA
        // controller has acted on web, as it would in a real cluster).
        c.wait_state(30, |s| s["Deployment/web"]["replicas"] == 4);
        let (restored, _) = c.execute(&dir.join("restore-plan.yaml"), &[]);
        assert_eq!(restored.code, 0, "{}", restored.context());
        assert_eq!(c.state(), before);

        // With --rollback-on-failure the restore runs by itself, deleting the HPA that did not exist.
        let c = Cluster::new(kubectl);
        fail_first_write(&c, "Deployment", "api");
        let (out, _) = c.execute(&c.plan("execute.yaml"), &["--rollback-on-failure"]);
        assert_eq!(out.code, 4, "{}", out.context());
        assert!(out.stderr.contains("ran automatically (--rollback-on-failure) and succeeded"), "{}", out.stderr);
        assert_eq!(without_web_replicas(c.state()), without_web_replicas(before));
        assert!(c.state().get("HorizontalPodAutoscaler/web").is_none(), "the HPA that did not exist is deleted");
        assert_eq!(out.json()["rollback"]["ok"], true);
    });
}

/// `execute.yaml` with `kind/name`'s new CPU request and limit at 4000 cores: the kwok node has 1,000,
/// so the new pods stay Pending (`FailedScheduling`) and that rollout never progresses.
fn unschedulable(c: &Cluster, workload: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(apply_support::plan("execute.yaml")).expect("plan");
    let text = match workload {
        "web" => text.replace(
            "    requests:\n      cpu: 500m\n      mem: 1Gi\n    limits:\n      cpu: 1\n",
            "    requests:\n      cpu: 4000\n      mem: 1Gi\n    limits:\n      cpu: 4000\n",
        ),
        "api" => text.replace("    requests:\n      cpu: 400m\n", "    requests:\n      cpu: 4000\n"),
        other => panic!("no unschedulable variant for {other}"),
    };
    assert!(text.contains("cpu: 4000"), "the plan fixture changed");
    c.write_plan(&format!("unschedulable-{workload}.yaml"), &text)
}

#[test]
fn a_stuck_rollout_times_out_with_exit_4() {
    each_kubectl(|kubectl| {
        let c = Cluster::new(kubectl);
        let started = Instant::now();
        let (out, _) = c.execute(&unschedulable(&c, "web"), &["--timeout=20s"]);
        assert_eq!(out.code, 4, "{}", out.context());
        assert!(started.elapsed() < Duration::from_secs(60));
        assert!(out.stderr.contains("rollouts did not complete within --timeout=20s"), "{}", out.stderr);
        assert!(out.stderr.contains("Deployment/web: "), "{}", out.stderr);
        assert!(!out.stderr.contains("    StatefulSet/db: "), "db rolled out:\n{}", out.stderr);
        assert!(out.stderr.contains(&format!("changed in namespace {}", c.ns)), "{}", out.stderr);
        // The server has the change; the new pods are Pending.
        let web = c.cluster.get(&c.ns, "deployment/web");
        assert_eq!(web["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"], "4k");
        assert_ne!(web["status"]["updatedReplicas"], web["status"]["readyReplicas"], "{}", web["status"]);
    });
}

#[test]
fn a_failed_rollout_stops_the_wait_and_rollback_restores_the_objects() {
    each_kubectl(|kubectl| {
        let c = Cluster::new(kubectl);
        // The deployment controller marks a rollout that makes no progress for 1 s as
        // ProgressDeadlineExceeded (no template change: no rollout of its own).
        c.admin(
            &["patch", "deployment", "api", "--type=merge", "-p", r#"{"spec":{"progressDeadlineSeconds":1}}"#],
            None,
        );
        let before = c.state();
        let started = Instant::now();
        let (out, _) = c.execute(&unschedulable(&c, "api"), &["--rollback-on-failure", "--timeout=60s"]);
        assert_eq!(out.code, 4, "{}", out.context());
        assert!(started.elapsed() < Duration::from_secs(45), "a failed rollout does not wait for the timeout");
        assert!(out.stderr.contains("ProgressDeadlineExceeded"), "{}", out.stderr);
        // The objects are back. web's replicas are left out: the restore deletes the HPA the plan
        // created and then finds web at its snapshot's 3, but the HPA controller, still acting on
        // that HPA, may raise web to its minReplicas 4 right after (seen once in three runs on
        // v1.34.4; see notes/proxy.md).
        assert_eq!(without_web_replicas(c.state()), without_web_replicas(before), "{}", out.context());
        assert_eq!(out.json()["rollback"]["ok"], true, "{}", out.context());
    });
}

#[test]
fn replicas_are_left_to_an_existing_hpa_and_a_second_hpa_is_refused() {
    each_kubectl(|kubectl| {
        let c = Cluster::new(kubectl);
        add_hpa(&c, "api-hpa", "api", 2, 6, 80);
        let (out, _) = c.execute(&c.plan("execute.yaml"), &[]);
        assert_eq!(out.code, 0, "{}", out.context());
        assert_eq!(out.statuses()[2], "skipped");
        let s = c.state();
        assert_eq!(s["Deployment/api"]["replicas"], 3, "the HPA owns api's replicas");
        assert_eq!(s["HorizontalPodAutoscaler/api-hpa"]["min"], 2, "not touched");

        // R16: one HPA per workload.
        let c = Cluster::new(kubectl);
        add_hpa(&c, "web-autoscaler", "web", 2, 5, 70);
        let before = c.state();
        let (out, _) = c.execute(&c.plan("execute.yaml"), &[]);
        assert_eq!(out.code, 3, "{}", out.context());
        assert!(
            out.stderr.contains("HorizontalPodAutoscaler/web-autoscaler already scales Deployment/web"),
            "{}",
            out.stderr
        );
        assert_eq!(c.state(), before);
        assert_eq!(c.proxy.writes(), []);
    });
}

#[test]
fn a_workload_with_several_containers_needs_a_container_name() {
    each_kubectl(|kubectl| {
        let c = Cluster::new(kubectl);
        let text = std::fs::read_to_string(apply_support::plan("execute.yaml"))
            .expect("plan")
            .replace("    container: app\n", "");
        let (out, _) = c.execute(&c.write_plan("no-container.yaml", &text), &[]);
        assert_eq!(out.code, 3, "{}", out.context());
        assert!(
            out.stderr.contains("Deployment/web has containers app, log-shipper and the plan names none"),
            "{}",
            out.stderr
        );
        assert_eq!(c.proxy.writes(), []);
    });
}

#[test]
fn a_plan_from_the_planner_with_detect_executes_and_re_executes_as_noops() {
    each_kubectl(|kubectl| {
        let c = Cluster::new(kubectl);
        let env = c.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let out_dir = c.dir.path().join("planned");
        let out_arg = format!("--out={}", out_dir.display());
        let planned = infra_scale(
            c.dir.path(),
            &[
                "plan",
                "--dry-run",
                "--detect",
                "--target=prod",
                &format!("--namespace={}", c.ns),
                &format!("--context={CONTEXT}"),
                "--workload=Deployment:web:6",
                "--workload=Deployment:api:4",
                "--hpa=web=min:4,max:12,cpu:65",
                "--req=web/app:cpu=500m,mem=1Gi",
                "--lim=web/app:cpu=1,mem=2Gi",
                "--req=api:cpu=400m,mem=512Mi",
                &out_arg,
            ],
            &env,
        );
        assert_eq!(planned.code, 0, "{}", planned.context());
        let plan_path = out_dir.join("plan.yaml");
        let (out, _) = c.execute(&plan_path, &[]);
        assert_eq!(out.code, 0, "{}", out.context());
        let s = c.state();
        assert_eq!(container(&s, "Deployment/web", "app")["limits"], json!({"cpu": "1", "memory": "2Gi"}));
        assert_eq!(s["Deployment/api"]["replicas"], 4);
        assert_eq!(s["HorizontalPodAutoscaler/web"]["max"], 12);

        // The plan observed the state before the change; re-running it finds its own changes,
        // which are no-ops, not drift.
        let (again, _) = c.execute(&plan_path, &[]);
        assert_eq!(again.code, 0, "{}", again.context());
        assert!(again.statuses().iter().all(|s| s == "noop" || s == "skipped"), "{:?}", again.statuses());
    });
}

#[test]
fn secrets_from_the_kubeconfig_never_reach_the_output() {
    use base64::Engine;
    each_kubectl(|kubectl| {
        let c = Cluster::new(kubectl);
        // Through the proxy, with a token in the kubeconfig (kubectl does not send it over http).
        const TOKEN: &str = "infra-scale-test-token-6c1e0d";
        let text = std::fs::read_to_string(&c.kubeconfig).expect("kubeconfig");
        std::fs::write(&c.kubeconfig, text.replace("user: {}", &format!("user: {{token: {TOKEN}}}"))).expect("write");
        fail_first_write(&c, "Deployment", "api");
        let (out, dir) = c.execute(&c.plan("execute.yaml"), &[]);
        assert_eq!(out.code, 4, "{}", out.context());
        let mut secrets = vec![TOKEN.to_string()];
        // Straight to the server with the admin's key embedded in the kubeconfig: the restore.
        let pki = c.cluster.dir.join("pki");
        let data = |f: &str| base64::engine::general_purpose::STANDARD.encode(std::fs::read(pki.join(f)).expect("pki"));
        let key = std::fs::read_to_string(pki.join("admin.key")).expect("key");
        secrets.push(data("admin.key"));
        secrets.extend(key.lines().filter(|l| !l.starts_with("-----")).map(str::to_string));
        let direct = std::fs::read_to_string(&c.cluster.kubeconfig)
            .expect("admin kubeconfig")
            .replace("- name: infra-scale-test\n  context:", &format!("- name: {CONTEXT}\n  context:"))
            .replace("current-context: infra-scale-test", &format!("current-context: {CONTEXT}"))
            .replace(
                &format!("client-key: {}", pki.join("admin.key").display()),
                &format!("client-key-data: {}", data("admin.key")),
            );
        assert!(direct.contains("client-key-data"), "{direct}");
        let direct_path = c.dir.path().join("direct-kubeconfig");
        std::fs::write(&direct_path, direct).expect("write");
        let restore = dir.join("restore-plan.yaml");
        let (restored, _) = apply_support::execute_in(c.dir.path(), 99, &direct_path, &c.kubectl, &restore, &[]);
        assert_eq!(restored.code, 0, "{}", restored.context());
        for run in [&out, &restored] {
            for secret in &secrets {
                assert!(
                    !run.stdout.contains(secret.as_str()) && !run.stderr.contains(secret.as_str()),
                    "a secret in the output"
                );
            }
        }
        for file in ["results.json", "restore-plan.yaml"] {
            for d in [&dir, &c.dir.path().join("out-99")] {
                let text = std::fs::read_to_string(d.join(file)).expect("artifact");
                assert!(secrets.iter().all(|s| !text.contains(s.as_str())), "{file} holds a secret");
            }
        }
    });
}

#[test]
fn warnings_kubectl_prints_on_success_are_shown_once_each() {
    use std::os::unix::fs::PermissionsExt;
    let real = kubectls().into_iter().next().expect("a kubectl");
    let dir = tempfile::tempdir().expect("tmp");
    let wrapper = dir.path().join("kubectl-that-warns");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho 'Warning: resource deployments/web is missing the kubectl.kubernetes.io/last-applied-configuration annotation' >&2\nexec '{}' \"$@\"\n",
            real.display()
        ),
    )
    .expect("write");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let c = Cluster::new(&wrapper);
    let (out, _) = c.execute(&c.plan("execute.yaml"), &[]);
    assert_eq!(out.code, 0, "{}", out.context());
    let shown: Vec<&str> = out.stderr.lines().filter(|l| l.contains("last-applied-configuration annotation")).collect();
    assert_eq!(shown.len(), 1, "each distinct warning once:\n{}", out.stderr);
    assert!(shown[0].starts_with("warning: kubectl: resource deployments/web"), "{}", shown[0]);
}

/// A 500 (`etcdserver: request timed out`) on the first real (not dry-run) PATCH of `kind/name`.
fn fail_first_write(c: &Cluster, kind: &str, name: &str) {
    c.proxy.add(
        Rule::new(Fault::status(500, "etcdserver: request timed out"))
            .method("PATCH")
            .path(&c.api_path(kind, name))
            .dry_run(false)
            .nth(1),
    );
}

/// An autoscaling/v2 HPA `name` on Deployment `target`, created as admin.
fn add_hpa(c: &Cluster, name: &str, target: &str, min: u32, max: u32, cpu: u32) {
    let manifest = format!(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {{name: {name}}}\nspec:\n  \
         scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {target}}}\n  minReplicas: {min}\n  \
         maxReplicas: {max}\n  metrics:\n  - type: Resource\n    resource: {{name: cpu, target: {{type: Utilization, averageUtilization: {cpu}}}}}\n"
    );
    c.admin(&["create", "-f", "-"], Some(&manifest));
}

/// `state` without web's replicas. An automatic restore right after the change deletes the HPA
/// the plan created and finds web at its snapshot's 3 replicas, but the HPA controller, still
/// acting on that HPA, may raise web to its minReplicas 4 right after (kube-controller-manager
/// v1.34.4, `--horizontal-pod-autoscaler-sync-period=2s`; seen once in three runs).
fn without_web_replicas(mut state: Value) -> Value {
    state["Deployment/web"]["replicas"] = Value::Null;
    state
}
