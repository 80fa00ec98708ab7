//! `infra-scale plan` driven through the real binary: golden plan.yaml and SUMMARY.md for the
//! prototype's invocations, one failing case per validation rule, the quantity grammar,
//! determinism, the config file, and `--detect` against a stub kubectl printing real
//! `kubectl get -o json` output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use indoc::indoc;

const EPOCH: &str = "1760140800"; // 2025-10-11T00:00:00Z

const PROD: &[&str] = &[
    "plan",
    "--dry-run",
    "--target=prod",
    "--namespace=assistant",
    "--workload=Deployment:web:6",
    "--workload=Deployment:api:4",
    "--hpa=min:4,max:12,cpu:65",
    "--req=web:cpu=500m,mem=1Gi",
    "--lim=web:cpu=1,mem=2Gi",
    "--req=api:cpu=400m,mem=1Gi",
    "--lim=api:cpu=1,mem=2Gi",
];

const STAGING: &[&str] = &[
    "plan",
    "--dry-run",
    "--target=staging",
    "--namespace=assistant-staging",
    "--workload=Deployment:web:2",
    "--workload=Deployment:api:2",
    "--hpa=min:2,max:6,cpu:70",
    "--req=web:cpu=300m,mem=512Mi",
    "--lim=web:cpu=700m,mem=1Gi",
    "--req=api:cpu=300m,mem=512Mi",
    "--lim=api:cpu=700m,mem=1Gi",
];

/// One run of the binary in a scratch working directory, with the CI environment scrubbed.
struct Run {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Run {
    fn new() -> Self {
        Run { dir: tempfile::tempdir().expect("temp dir"), env: vec![("SOURCE_DATE_EPOCH".into(), EPOCH.into())] }
    }

    fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::write(&p, text).expect("write");
        p
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_infra-scale"));
        cmd.args(args).current_dir(self.dir.path());
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
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.output().expect("run infra-scale")
    }

    /// Runs with `--out out` and expects success; returns (stdout, plan.yaml, SUMMARY.md).
    fn ok(&self, args: &[&str]) -> (String, String, String) {
        let mut all: Vec<&str> = args.to_vec();
        all.push("--out=out");
        let out = self.run(&all);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status.code());
        let plan = std::fs::read_to_string(self.path("out/plan.yaml")).expect("plan.yaml");
        let summary = std::fs::read_to_string(self.path("out/SUMMARY.md")).expect("SUMMARY.md");
        (stdout, plan, summary)
    }

    /// Runs with `--out out` and expects exit 2 with nothing written; returns stderr.
    fn invalid(&self, args: &[&str]) -> String {
        let mut all: Vec<&str> = args.to_vec();
        all.push("--out=rejected");
        let out = self.run(&all);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "args {args:?}\nstderr:\n{stderr}");
        assert!(
            out.stdout.is_empty(),
            "stdout must be empty on invalid input: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(!self.path("rejected").exists(), "nothing may be written on invalid input");
        stderr
    }
}

/// Compares with a golden file; `UPDATE_GOLDEN=1` rewrites it. A mismatch shows a unified diff.
fn golden(rel: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(rel);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("missing golden {rel}; run with UPDATE_GOLDEN=1"));
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&expected, actual);
        panic!(
            "{rel} differs from the golden file (UPDATE_GOLDEN=1 to accept):\n{}",
            diff.unified_diff().header("golden", "actual")
        );
    }
}

fn with(base: &[&'static str], extra: &[&'static str]) -> Vec<&'static str> {
    base.iter().chain(extra).copied().collect()
}

#[test]
fn prototype_prod_invocation_matches_golden_files_and_contract() {
    let r = Run::new();
    let (stdout, plan, summary) = r.ok(PROD);
    let dir = r.dir.path().canonicalize().expect("canon").join("out");
    let dir = dir.display();
    assert_eq!(
        stdout,
        format!("artifacts_dir={dir}\nplan_yaml={dir}/plan.yaml\nsummary_md={dir}/SUMMARY.md\nsucceeded\n")
    );
    golden("prod/plan.yaml", &plan);
    golden("prod/SUMMARY.md", &summary);
    assert!(!plan.contains("mem:"), "`mem` must be written as `memory`");
}

#[test]
fn prototype_staging_profile_matches_golden_files() {
    let (_, plan, summary) = Run::new().ok(STAGING);
    golden("staging/plan.yaml", &plan);
    golden("staging/SUMMARY.md", &summary);
}

#[test]
fn default_artifacts_dir_is_under_the_working_directory_with_a_utc_stamp_and_the_target() {
    let r = Run::new();
    let out = r.run(PROD);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.ends_with("/.artifacts/infra-scale/20251011T000000Z-prod"), "{first}");
    assert!(r.path(".artifacts/infra-scale/20251011T000000Z-prod/plan.yaml").is_file());
    // No temp files left behind by the atomic writes.
    let names: Vec<String> = std::fs::read_dir(r.path(".artifacts/infra-scale/20251011T000000Z-prod"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["SUMMARY.md", "plan.yaml", "task.json"]);
}

#[test]
fn same_input_gives_byte_identical_files_apart_from_created_at() {
    let (_, a_plan, a_sum) = Run::new().ok(PROD);
    let (_, b_plan, b_sum) = Run::new().ok(PROD);
    assert_eq!(a_plan, b_plan);
    assert_eq!(a_sum, b_sum);
    let (_, c_plan, c_sum) = Run::new().env("SOURCE_DATE_EPOCH", "1893456000").ok(PROD);
    let strip = |s: &str| {
        s.lines()
            .filter(|l| !l.contains("createdAt") && !l.contains("2025-10-11") && !l.contains("2030-01-01"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_ne!(a_plan, c_plan);
    assert!(c_plan.contains("createdAt: 2030-01-01T00:00:00Z"));
    assert_eq!(strip(&a_plan), strip(&c_plan));
    assert_eq!(strip(&a_sum), strip(&c_sum));
}

#[test]
fn flag_value_forms_are_equivalent() {
    let (_, eq_form, _) = Run::new().ok(PROD);
    let spaced: Vec<String> = PROD
        .iter()
        .flat_map(|a| match a.split_once('=') {
            Some((k, v)) => vec![k.to_string(), v.to_string()],
            None => vec![a.to_string()],
        })
        .collect();
    let spaced: Vec<&str> = spaced.iter().map(String::as_str).collect();
    let (_, space_form, _) = Run::new().ok(&spaced);
    assert_eq!(eq_form, space_form);
}

#[test]
fn each_validation_rule_fails_with_exit_2_naming_the_input() {
    // (extra or replacement args, text the error must contain)
    let cases: &[(&[&str], &str)] = &[
        (&["--req=web:cpu=500m,mem=1GB"], "memory quantity `1GB`"),
        (&["--req=web:cpu=1K"], "`1K`"),
        (&["--req=web:mem=1 Gi"], "`1 Gi`"),
        (&["--req=web:mem=0x10"], "`0x10`"),
        (&["--req=web:cpu=-1"], "is negative"),
        (&["--req=web:cpu=500M"], "the suffix `M` is for bytes"),
        (&["--req=web:mem=400m"], "fraction of a byte"),
        (&["--req=web:cpu=0.1m"], "finer than 1m"),
        (&["--req=web:gpu=1"], "`gpu` is not a resource"),
        (&["--req=web:cpu=1,cpu=2"], "cpu is given twice"),
        (&["--req=web:cpu=2", "--lim=web:cpu=1"], "cpu limit 1 is below the cpu request 2"),
        (&["--req=web:mem=2Gi", "--lim=web:memory=1536Mi"], "memory limit 1536Mi is below the memory request 2Gi"),
        (&["--req=nope:cpu=1"], "`nope` is not one of the requested workloads"),
        (&["--lim=nope:cpu=1"], "`nope` is not one of the requested workloads"),
        (&["--hpa=nope=min:1,max:2,cpu:50"], "`nope` is not one of the requested workloads"),
        (&["--hpa=min:0,max:3,cpu:50"], "HPA min 0 is below 1"),
        (&["--hpa=min:5,max:3,cpu:50"], "HPA max 3 is below min 5"),
        (&["--hpa=min:1,max:3,cpu:0"], "CPU target 0% is below 1%"),
        (&["--hpa=min:1,max:3"], "`cpu` is missing"),
        (&["--hpa=min:1,max:3,cpu:50,mem:3"], "`mem` is not an HPA setting"),
        (&["--hpa=min:x,max:3,cpu:50"], "min `x` is not a whole number"),
        (&["--workload=DaemonSet:logs:2"], "kind `DaemonSet` is refused: a DaemonSet runs one pod per node"),
        (&["--workload=Job:migrate:1"], "kind `Job` is refused"),
        (&["--workload=Deployment:Web_1:2"], "Deployment name `Web_1` contains `W`"),
        (&["--workload=StatefulSet:db.primary:2"], "StatefulSet name `db.primary` contains `.`"),
        (&["--workload=Deployment:worker:-1"], "replicas `-1` is not a whole number"),
        (&["--workload=Deployment:worker:two"], "replicas `two` is not a whole number"),
        (&["--workload=Deployment"], "is not KIND:NAME:REPLICAS"),
        (&["--workload=Deployment:web:3"], "workload `web` is given twice"),
        (&["--namespace=Assistant"], "namespace `Assistant` contains `A`"),
        (&["--target=Prod"], "`Prod` contains `P`"),
    ];
    for (extra, want) in cases {
        let args = with(
            &["plan", "--dry-run", "--target=prod", "--namespace=assistant", "--workload=Deployment:web:6"],
            extra,
        );
        // --namespace / --target given twice: clap takes the last one, which is the case's value.
        let stderr = Run::new().invalid(&args);
        assert!(stderr.contains(want), "case {extra:?}: expected `{want}` in:\n{stderr}");
        assert!(stderr.contains("help:"), "case {extra:?}: every error gives the accepted form:\n{stderr}");
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let stderr = Run::new().invalid(&[
        "plan",
        "--target=prod",
        "--namespace=assistant",
        "--workload=Deployment:web:6",
        "--req=web:cpu=1GB,mem=1K",
        "--lim=api:cpu=1",
        "--hpa=min:0,max:3,cpu:50",
    ]);
    assert!(stderr.contains("4 problems found"), "{stderr}");
    for want in ["`1GB`", "`1K`", "`api` is not one of", "HPA min 0"] {
        assert!(stderr.contains(want), "missing {want}: {stderr}");
    }
}

#[test]
fn missing_target_namespace_or_workload_are_errors() {
    assert!(Run::new().invalid(&["plan", "--namespace=a", "--workload=Deployment:web:1"]).contains("--target"));
    assert!(
        Run::new().invalid(&["plan", "--target=prod", "--workload=Deployment:web:1"]).contains("no namespace given")
    );
    assert!(Run::new().invalid(&["plan", "--target=prod", "--namespace=a"]).contains("no workload given"));
    let out = Run::new().run(&["plan", "--target=prod", "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    let out = Run::new().run(&["plan", "--dry-run", "--apply", "--target=prod"]);
    assert_eq!(out.status.code(), Some(2), "--dry-run and --apply conflict");
}

#[test]
fn quantity_grammar_table() {
    // Accepted exactly as apimachinery parses them, written back as given.
    for (cpu, mem) in [
        ("1", "1Gi"),
        ("1.5", "1536Mi"),
        (".5", "1e9"),
        ("500m", "1E9"),
        ("2", "1e+9"),
        ("1500m", "1G"),
        ("0.25", "128974848"),
        ("+1", "0.5Gi"),
    ] {
        let arg = format!("--req=web:cpu={cpu},memory={mem}");
        let (_, plan, _) =
            Run::new().ok(&["plan", "--target=prod", "--namespace=assistant", "--workload=Deployment:web:2", &arg]);
        assert!(plan.contains(&format!("cpu: '{cpu}'")) || plan.contains(&format!("cpu: {cpu}")), "{cpu}:\n{plan}");
        assert!(
            plan.contains(&format!("memory: '{mem}'")) || plan.contains(&format!("memory: {mem}")),
            "{mem}:\n{plan}"
        );
    }
    // Refused.
    for bad in ["1GB", "1K", "1ki", "1 Gi", "0x10", "-1", "1GiB", "2Gi5", "Gi", "1e", "1.1.M", "100Ei", " 1"] {
        let arg = format!("--req=web:memory={bad}");
        let stderr = Run::new().invalid(&[
            "plan",
            "--target=prod",
            "--namespace=assistant",
            "--workload=Deployment:web:2",
            &arg,
        ]);
        assert!(stderr.contains(&format!("`{bad}`")), "{bad}: {stderr}");
    }
}

#[test]
fn numeric_comparison_not_string_comparison() {
    // "900m" > "1" as strings, but 0.9 < 1 cores; 1Gi == 1024Mi.
    Run::new().ok(&[
        "plan",
        "--target=prod",
        "--namespace=a",
        "--workload=Deployment:web:2",
        "--req=web:cpu=900m,mem=1Gi",
        "--lim=web:cpu=1,mem=1024Mi",
    ]);
    let stderr = Run::new().invalid(&[
        "plan",
        "--target=prod",
        "--namespace=a",
        "--workload=Deployment:web:2",
        "--req=web:cpu=1",
        "--lim=web:cpu=999m",
    ]);
    assert!(stderr.contains("below the cpu request"), "{stderr}");
}

#[test]
fn risks_and_notes_carry_severities() {
    let (_, plan, _) = Run::new().ok(&[
        "plan",
        "--target=prod",
        "--namespace=assistant",
        "--workload=Deployment:web:20",
        "--workload=Deployment:api:0",
        "--workload=Deployment:batch:3",
        "--hpa=web=min:2,max:8,cpu:60",
        "--hpa=api=min:2,max:8,cpu:60",
    ]);
    let doc: serde_yaml::Value = serde_yaml::from_str(&plan).expect("yaml");
    let codes = |key: &str| -> Vec<(String, String)> {
        doc[key]
            .as_sequence()
            .expect("list")
            .iter()
            .map(|f| (f["severity"].as_str().unwrap_or("").to_string(), f["code"].as_str().unwrap_or("").to_string()))
            .collect()
    };
    let risks = codes("risks");
    assert!(risks.contains(&("warning".into(), "replicas_above_threshold".into())), "{risks:?}");
    assert!(risks.contains(&("warning".into(), "hpa_clamps_replicas".into())), "{risks:?}");
    assert!(risks.contains(&("error".into(), "replicas_zero_under_hpa".into())), "{risks:?}");
    assert!(risks.contains(&("warning".into(), "hpa_cpu_without_request".into())), "{risks:?}");
    // Regression (issue 9 item 6): the requested 20 is never sent; no clamp of it is claimed.
    assert!(plan.contains("so 20 does not reach the server"), "web 20 under [2, 8] is not sent:\n{plan}");
    assert!(!plan.contains("will keep 8"), "{plan}");
    // A threshold from the flag changes the warning.
    let (_, plan, _) = Run::new().ok(&[
        "plan",
        "--target=prod",
        "--namespace=a",
        "--workload=Deployment:web:20",
        "--replicas-threshold=50",
    ]);
    assert!(!plan.contains("replicas_above_threshold"));
}

#[test]
fn fail_on_makes_the_run_fail_after_writing_the_plan() {
    let r = Run::new();
    let out = r.run(&with(PROD, &["--fail-on=warning", "--out=out"]));
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("replicas_above_threshold"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("succeeded"));
    assert!(r.path("out/plan.yaml").is_file(), "the plan is kept for inspection");
    let out = Run::new().run(&with(PROD, &["--fail-on=error", "--out=out"]));
    assert_eq!(out.status.code(), Some(0), "no error-level finding in the prod plan");
}

#[test]
fn without_detect_nothing_touches_a_cluster() {
    let r = Run::new();
    let log = r.path("kubectl.log");
    let stub = stub_kubectl(&r, "/dev/null");
    let (_, plan, _) = r
        .env("KUBECTL", stub.display().to_string())
        .env("INFRA_SCALE_CHILD_ENV", "STUB_LOG")
        .env("STUB_LOG", log.display().to_string())
        .ok(PROD);
    assert!(!log.exists(), "kubectl must not run without --detect");
    assert!(plan.contains("from: ${detect}"));
    assert!(plan.contains("liveState: unknown"));
}

#[test]
fn config_file_targets_and_flag_overrides() {
    let r = Run::new();
    r.write(
        "infra-scale.yaml",
        indoc! {r#"
            targets:
              prod:
                kubeContext: prod-eu
                namespace: assistant
                replicasThreshold: 8
                hpa: {min: 4, max: 12, cpu: 65}
                workloads:
                  - {kind: Deployment, name: web, replicas: 6, container: app, requests: {cpu: 500m, mem: 1Gi}, limits: {cpu: 1, memory: 2Gi}}
                  - {kind: Deployment, name: api, replicas: 4, requests: {cpu: 400m, memory: 1Gi}, limits: {cpu: "1", memory: 2Gi}}
              staging:
                namespace: assistant-staging
                workloads:
                  - {kind: StatefulSet, name: cache, replicas: 1}
        "#},
    );
    let (_, plan, _) = r.ok(&["plan", "--target=prod", "--workload=Deployment:api:5", "--req=api:cpu=450m"]);
    assert!(plan.contains("kubeContext: prod-eu"));
    assert!(plan.contains("container: app"));
    assert!(plan.contains("to: 5"), "flag overrides the file's replicas:\n{plan}");
    assert!(plan.contains("cpu: 450m"), "flag overrides the file's request");
    assert!(plan.contains("memory: 1Gi"), "keys the flag does not give keep the file's values");
    assert!(plan.contains("replicasThreshold: 8"));
    let (_, plan, _) = r.ok(&["plan", "--target=staging", "--context=kind-staging"]);
    assert!(plan.contains("kind: StatefulSet") && plan.contains("kubeContext: kind-staging"));
    // An unknown target of an explicit config file lists the known ones.
    let stderr = r.invalid(&["plan", "--config=infra-scale.yaml", "--target=qa"]);
    assert!(stderr.contains("one of: prod, staging"), "{stderr}");
}

#[test]
fn config_file_errors_name_the_file_and_line() {
    let r = Run::new();
    r.write("bad.yaml", "targets:\n  prod:\n    namespace: a\n    replicas: 3\n");
    let stderr = r.invalid(&["plan", "--config=bad.yaml", "--target=prod"]);
    assert!(stderr.contains("bad.yaml:4:"), "{stderr}");
    assert!(stderr.contains("unknown field `replicas`"), "{stderr}");
    r.write("bad2.yaml", "targets:\n  prod:\n    namespace: a\n    workloads:\n      - {kind: DaemonSet, name: x, replicas: 1}\n      - {kind: Deployment, name: y, requests: {cpu: 1GB}}\n");
    let stderr = r.invalid(&["plan", "--config=bad2.yaml", "--target=prod"]);
    assert!(stderr.contains("targets.prod.workloads[0]") && stderr.contains("DaemonSet"), "{stderr}");
    assert!(stderr.contains("targets.prod.workloads[1].requests.cpu") && stderr.contains("`1GB`"), "{stderr}");
    r.write("bad3.yaml", "targets:\n  prod:\n    namespace: a\n    hpa: {min: 0, max: 3, cpu: 50}\n    workloads:\n      - {kind: Deployment, name: y, replicas: 2, hpa: {min: 4, max: 2, cpu: 50}}\n");
    let stderr = r.invalid(&["plan", "--config=bad3.yaml", "--target=prod"]);
    assert!(stderr.contains("bad3.yaml: targets.prod.hpa: HPA min 0 is below 1"), "{stderr}");
    assert!(stderr.contains("bad3.yaml: targets.prod.workloads[0].hpa: HPA max 2 is below min 4"), "{stderr}");
    let stderr = r.invalid(&["plan", "--config=missing.yaml", "--target=prod"]);
    assert!(stderr.contains("--config=missing.yaml"), "{stderr}");
}

fn stub_kubectl(r: &Run, fixture: &str) -> PathBuf {
    let script =
        r.write("kubectl-stub.sh", &format!("#!/bin/sh\nprintf '%s\\n' \"$*\" >> \"$STUB_LOG\"\ncat '{fixture}'\n"));
    let mut perm = std::fs::metadata(&script).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&script, perm).expect("chmod");
    script
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kubectl").join(name).display().to_string()
}

fn detect_run() -> (Run, PathBuf) {
    let r = Run::new();
    let log = r.path("kubectl.log");
    let stub = stub_kubectl(&r, &fixture("assistant-list.json"));
    let r = r
        .env("KUBECTL", stub.display().to_string())
        .env("INFRA_SCALE_CHILD_ENV", "STUB_LOG")
        .env("STUB_LOG", log.display().to_string());
    (r, log)
}

#[test]
fn detect_fills_observed_state_with_one_kubectl_call() {
    let (r, log) = detect_run();
    let (_, plan, summary) = r.ok(&with(PROD, &["--detect"]));
    let calls = std::fs::read_to_string(&log).expect("log");
    assert_eq!(
        calls,
        "--context=production get deployments.apps,statefulsets.apps,horizontalpodautoscalers.autoscaling,resourcequotas -n assistant --show-managed-fields -o json\n"
    );
    golden("prod-detect/plan.yaml", &plan);
    golden("prod-detect/SUMMARY.md", &summary);
    let doc: serde_yaml::Value = serde_yaml::from_str(&plan).expect("yaml");
    assert_eq!(doc["assumptions"]["liveState"].as_str(), Some("detected"));
    let actions = doc["actions"].as_sequence().expect("actions");
    assert_eq!(actions[0]["from"].as_u64(), Some(3), "web's observed replicas");
    assert_eq!(actions[1]["container"].as_str(), Some("web"), "the only container is chosen");
    assert_eq!(actions[1]["from"]["requests"]["cpu"].as_str(), Some("250m"));
    // api has an HPA named api-hpa: it is updated, never duplicated.
    let api_hpa = actions.iter().find(|a| a["action"] == "apply_hpa" && a["target"]["name"] == "api").expect("api hpa");
    assert_eq!(api_hpa["name"].as_str(), Some("api-hpa"));
    assert_eq!(api_hpa["from"]["min"].as_u64(), Some(2));
    let web_hpa = actions.iter().find(|a| a["action"] == "apply_hpa" && a["target"]["name"] == "web").expect("web hpa");
    assert_eq!(web_hpa["from"].as_str(), Some("absent"));
    // Drift data for execution.
    let observed = &doc["observed"]["workloads"][0];
    assert_eq!(observed["uid"].as_str(), Some("3f1c2a6e-9a51-4d7e-a3f0-0b9d7a6c1e01"));
    assert_eq!(observed["resourceVersion"].as_str(), Some("481516"));
    assert!(summary.contains("→"), "SUMMARY shows before → after");
}

#[test]
fn detect_refuses_missing_workloads_and_ambiguous_containers() {
    let (r, _) = detect_run();
    let stderr = r.invalid(&[
        "plan",
        "--target=prod",
        "--namespace=assistant",
        "--detect",
        "--workload=Deployment:ghost:2",
        "--workload=StatefulSet:cache:3",
        "--req=cache:cpu=300m",
    ]);
    assert!(stderr.contains("Deployment/ghost does not exist in namespace assistant"), "{stderr}");
    assert!(
        stderr.contains("workloads in the namespace: Deployment/web, Deployment/api, StatefulSet/cache"),
        "{stderr}"
    );
    assert!(stderr.contains("StatefulSet/cache has 2 containers and none is named `cache`"), "{stderr}");
    let stderr = r.invalid(&[
        "plan",
        "--target=prod",
        "--namespace=assistant",
        "--detect",
        "--workload=StatefulSet:cache:3",
        "--req=cache/nope:cpu=300m",
    ]);
    assert!(stderr.contains("has no container `nope`") && stderr.contains("one of: redis, exporter"), "{stderr}");
    // Naming the container resolves it.
    let (_, plan, _) = r.ok(&[
        "plan",
        "--target=prod",
        "--namespace=assistant",
        "--detect",
        "--workload=StatefulSet:cache:3",
        "--req=cache/redis:cpu=300m",
    ]);
    assert!(plan.contains("container: redis"));
}

#[test]
fn detect_findings_use_the_live_state() {
    let (r, _) = detect_run();
    let (_, plan, _) = r.ok(&[
        "plan",
        "--target=prod",
        "--namespace=assistant",
        "--detect",
        "--workload=Deployment:web:9",
        "--workload=Deployment:api",
        "--req=web:memory=600Mi",
        "--lim=api:memory=1Gi",
        "--req=api:memory=512Mi",
        "--hpa=web=min:2,max:9,cpu:50",
    ]);
    // web: 3 → 9 under a new HPA: not a direct scale, but the HPA owns replicas.
    assert!(plan.contains("hpa_owns_replicas"), "{plan}");
    // web has a CPU request (250m) on its only container: no hpa_cpu_without_request.
    assert!(!plan.contains("hpa_cpu_without_request"), "{plan}");
    // api: memory limit 2Gi → 1Gi is a cut to 50%, and an OOM risk.
    assert!(plan.contains("memory_limit_decrease"), "{plan}");
    assert!(plan.contains("api: memory limit 2Gi → 1Gi is a cut to 50%"), "{plan}");
}

#[test]
fn detect_failure_is_reported_without_writing() {
    let r = Run::new();
    let stub =
        r.write("kubectl-fail.sh", "#!/bin/sh\necho 'error: context \"production\" does not exist' >&2\nexit 1\n");
    let mut perm = std::fs::metadata(&stub).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&stub, perm).expect("chmod");
    let r = r.env("KUBECTL", stub.display().to_string());
    let out = r.run(&with(PROD, &["--detect", "--out=out"]));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("context \"production\" does not exist"), "{stderr}");
    assert!(!r.path("out").exists());
    // Unparsable kubectl output is an error too.
    let r = Run::new();
    let garbage = r.write("garbage.txt", "No resources found in assistant namespace.\n");
    let stub = stub_kubectl(&r, &garbage.display().to_string());
    let out = r
        .env("KUBECTL", stub.display().to_string())
        .env("INFRA_SCALE_CHILD_ENV", "STUB_LOG")
        .env("STUB_LOG", "/dev/null")
        .run(&with(PROD, &["--detect", "--out=out"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not be read"));
}

#[test]
fn apply_without_credentials_keeps_the_prototype_contract_and_warns() {
    for flag in ["--apply", "--propose"] {
        let r = Run::new();
        let output_file = r.path("github_output");
        std::fs::write(&output_file, "").expect("create");
        let r = r.env("GITHUB_OUTPUT", output_file.display().to_string());
        let mut args: Vec<&str> = PROD.iter().filter(|a| **a != "--dry-run").copied().collect();
        args.push(flag);
        args.push("--out=out");
        let out = r.run(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{flag}: {stderr}");
        assert!(stdout.ends_with("outputs_uri=\nawaiting_approval\n"), "{flag}: {stdout}");
        assert!(stderr.contains("GITHUB_TOKEN") && stderr.contains("GITHUB_REPOSITORY"), "{flag}: {stderr}");
        let outputs = std::fs::read_to_string(&output_file).expect("outputs");
        assert!(outputs.contains("status") && outputs.contains("awaiting_approval"), "{outputs}");
        assert!(outputs.contains("plan_sha256"), "{outputs}");
    }
    let mut args: Vec<&str> = PROD.iter().filter(|a| **a != "--dry-run").copied().collect();
    args.extend(["--apply", "--require-pr", "--out=out"]);
    let out = Run::new().run(&args);
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("awaiting_approval"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("GITHUB_TOKEN"));
}

#[test]
fn task_record_and_metrics_events_follow_the_prototype_orchestrator() {
    // A local metrics collector that records every POST.
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/metrics", server.server_addr().to_ip().expect("ip"));
    let collector = std::thread::spawn(move || {
        let mut events = Vec::new();
        while let Ok(Some(mut req)) = server.recv_timeout(std::time::Duration::from_secs(5)) {
            let mut body = String::new();
            let _ = req.as_reader().read_to_string(&mut body);
            let key = req.headers().iter().find(|h| h.field.equiv("x-metrics-key")).map(|h| h.value.to_string());
            events.push((body, key));
            let _ = req.respond(tiny_http::Response::empty(204));
            if events.len() == 3 {
                break;
            }
        }
        events
    });
    let r = Run::new().env("METRICS_URL", url).env("METRICS_KEY", "k-123456").env("GITHUB_RUN_ID", "4242");
    let mut args: Vec<&str> = PROD.iter().filter(|a| **a != "--dry-run").copied().collect();
    args.extend(["--apply", "--out=out"]);
    let out = r.run(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("k-123456"), "the metrics key is never printed");
    let events = collector.join().expect("collector");
    let names: Vec<String> = events
        .iter()
        .map(|(b, _)| {
            serde_json::from_str::<serde_json::Value>(b).expect("json")["event"].as_str().unwrap_or("").to_string()
        })
        .collect();
    assert_eq!(names, ["agent.task_started", "agent.task_finished", "agent.awaiting_approval"]);
    assert!(events.iter().all(|(_, key)| key.as_deref() == Some("k-123456")));
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.path("out/task.json")).expect("task.json")).expect("json");
    for field in [
        "task",
        "run_id",
        "status",
        "started_at",
        "finished_at",
        "duration_ms",
        "outputs_uri",
        "approval_state",
        "log_excerpt",
    ] {
        assert!(record.get(field).is_some(), "task.json lacks {field}: {record}");
    }
    assert_eq!(record["task"], "infra.scale");
    assert_eq!(record["run_id"], "4242");
    assert_eq!(record["status"], "awaiting_approval");
    assert_eq!(record["approval_state"], "pending");
    assert!(record["log_excerpt"].as_str().unwrap_or("").ends_with("outputs_uri=\nawaiting_approval"), "{record}");
}

#[test]
fn a_metrics_collector_that_is_down_does_not_fail_the_run() {
    // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    let out = Run::new().env("METRICS_URL", "http://127.0.0.1:9/metrics").run(&with(PROD, &["--out=out"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("succeeded\n"));
}

#[test]
fn detect_reports_a_converged_target_only_when_no_action_would_change_the_cluster() {
    let (r, _) = detect_run();
    let base = ["plan", "--target=prod", "--namespace=assistant"];
    let cases: &[(&[&str], bool)] = &[
        // web runs 3 replicas with a 250m CPU request.
        (&["--detect", "--workload=Deployment:web:3", "--req=web:cpu=250m"], true),
        // api's replicas belong to its HPA, which already has these bounds: nothing to send.
        (&["--detect", "--workload=Deployment:api:5", "--hpa=api=min:2,max:6,cpu:80"], true),
        (&["--detect", "--workload=Deployment:web:3", "--req=web:cpu=300m"], false),
        (&["--detect", "--workload=Deployment:web:4"], false),
        (&["--detect", "--workload=Deployment:api:5", "--hpa=api=min:2,max:8,cpu:80"], false),
        // Without --detect the live state is unknown: never converged.
        (&["--workload=Deployment:web:3"], false),
    ];
    for (i, (extra, converged)) in cases.iter().enumerate() {
        let out_arg = format!("--out=out-{i}");
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        args.push(&out_arg);
        let out = r.run(&args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{extra:?}: {stderr}");
        assert_eq!(stdout.lines().last(), Some("succeeded"), "{extra:?}: without --apply the status stays");
        assert_eq!(stderr.contains("target prod: converged"), *converged, "{extra:?}:\n{stderr}");
    }
}
