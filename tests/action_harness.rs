//! The composite action (`action.yml`) run the way the GitHub Actions runner runs it, by the local
//! runner in `tests/action/runner.rs`: input validation, binary selection and checksum, the
//! command line it builds, kubeconfig handling, outputs, and the real binary end to end.

#[path = "action/runner.rs"]
mod runner;
#[path = "action/workflow.rs"]
mod workflow;

use std::path::{Path, PathBuf};

use runner::{Action, ActionRun, Job, StepOutcome};
use sha2::{Digest, Sha256};
use testkit::cluster::RealCluster;

const TRIPLE: &str = "x86_64-unknown-linux-musl";

/// A dist-like action directory (action.yml + dist/<triple>/infra-scale + dist/SHA256SUMS), a
/// workspace and a RUNNER_TEMP, all in one temp dir.
struct Fixture {
    _tmp: tempfile::TempDir,
    action_dir: PathBuf,
    workspace: PathBuf,
    runner_temp: PathBuf,
}

impl Fixture {
    /// With `binary` as the prebuilt binary and a matching SHA256SUMS.
    fn new(binary: &[u8]) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let action_dir = tmp.path().join("action");
        let workspace = tmp.path().join("workspace");
        let runner_temp = tmp.path().join("runner-temp");
        for d in [&action_dir, &workspace, &runner_temp] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::copy(repo.join("action.yml"), action_dir.join("action.yml")).expect("copy action.yml");
        let f = Self { _tmp: tmp, action_dir, workspace, runner_temp };
        f.install(binary);
        f
    }

    /// The real infra-scale binary built by cargo for this test run.
    fn real() -> Self {
        Self::new(&std::fs::read(env!("CARGO_BIN_EXE_infra-scale")).expect("read the infra-scale binary"))
    }

    /// A stand-in binary (bash) that records its argv and environment, then prints and exits as
    /// told by FAKE_LAST / FAKE_EXIT.
    fn recorder() -> Self {
        Self::new(RECORDER.as_bytes())
    }

    fn binary_path(&self) -> PathBuf {
        self.action_dir.join("dist").join(TRIPLE).join("infra-scale")
    }

    fn install(&self, binary: &[u8]) {
        let path = self.binary_path();
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir dist");
        std::fs::write(&path, binary).expect("write binary");
        set_mode(&path, 0o755);
        let digest = Sha256::digest(binary);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(self.action_dir.join("dist/SHA256SUMS"), format!("{hex}  {TRIPLE}/infra-scale\n"))
            .expect("sums");
    }

    fn record_path(&self) -> PathBuf {
        self.runner_temp.join("recorded.tsv")
    }

    fn job(&self) -> Job {
        Job::new(&self.workspace, &self.runner_temp).env("FAKE_RECORD", &self.record_path().display().to_string())
    }

    fn run(&self, job: &Job) -> ActionRun {
        Action::load(&self.action_dir).run(job)
    }

    /// What the recorder saw: `key<TAB>value` lines (argv is tab-separated).
    fn recorded(&self) -> Option<Vec<(String, String)>> {
        let text = std::fs::read_to_string(self.record_path()).ok()?;
        Some(
            text.lines()
                .map(|l| {
                    let (k, v) = l.split_once('\t').unwrap_or((l, ""));
                    (k.to_string(), v.to_string())
                })
                .collect(),
        )
    }

    fn recorded_value(&self, key: &str) -> String {
        self.recorded().expect("the binary ran").into_iter().find(|(k, _)| k == key).map(|(_, v)| v).unwrap_or_default()
    }

    fn argv(&self) -> Vec<String> {
        self.recorded_value("argv").split('\t').filter(|s| !s.is_empty()).map(str::to_string).collect()
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

const RECORDER: &str = r#"#!/usr/bin/env bash
set -u
{
  printf 'argv'; printf '\t%s' "$@"; printf '\n'
  printf 'kubeconfig\t%s\n' "${KUBECONFIG:-}"
  if [ -n "${KUBECONFIG:-}" ]; then
    printf 'kubeconfig_mode\t%s\n' "$(stat -c %a "$KUBECONFIG")"
    printf 'kubeconfig_dir_mode\t%s\n' "$(stat -c %a "$(dirname "$KUBECONFIG")")"
    printf 'kubeconfig_content\t%s\n' "$(base64 -w0 <"$KUBECONFIG")"
  fi
  printf 'token\t%s\n' "${GITHUB_TOKEN:-}"
  printf 'env_names\t%s\n' "$(env | cut -d= -f1 | sort | tr '\n' ' ')"
  printf 'cwd\t%s\n' "$PWD"
} >"$FAKE_RECORD"
echo "artifacts_dir=$PWD/.artifacts/fake"
echo "artifacts_dir=$PWD/.artifacts/fake" >>"$GITHUB_OUTPUT"
echo "${FAKE_LAST:-succeeded}"
exit "${FAKE_EXIT:-0}"
"#;

fn step<'a>(run: &'a ActionRun, id: &str) -> &'a runner::StepRecord {
    run.steps.iter().find(|s| s.id.as_deref() == Some(id)).expect("step")
}

// ---- static wiring ------------------------------------------------------------------------------

#[test]
fn every_input_reaches_the_script_only_through_env() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let action = Action::load(repo);
    let doc = action.doc();
    let inputs: Vec<String> = match doc.get("inputs") {
        Some(serde_yaml::Value::Mapping(m)) => m.keys().map(|k| k.as_str().expect("name").to_string()).collect(),
        _ => panic!("action.yml declares no inputs"),
    };
    let steps = action.steps();
    let main = steps.iter().find(|s| s.get("id").and_then(|v| v.as_str()) == Some("run")).expect("step id run");
    let env = serde_yaml::to_string(main.get("env").expect("run step env")).expect("yaml");
    for input in &inputs {
        assert!(env.contains(&format!("${{{{ inputs.{input} }}}}")), "input `{input}` is not mapped through env:");
    }
    for s in &steps {
        assert_eq!(
            s.get("shell").and_then(|v| v.as_str()),
            Some("/usr/bin/env -u BASH_ENV -u ENV -u SHELLOPTS -u BASHOPTS bash --noprofile --norc -euo pipefail {0}"),
            "every run step uses the hardened bash"
        );
        assert!(s.get("run").and_then(|v| v.as_str()).is_some_and(|b| !b.contains("set -x")), "never traces");
        let body = s.get("run").and_then(|v| v.as_str()).expect("run body");
        assert!(!body.contains("${{"), "a run: body contains an expression:\n{body}");
        assert!(!body.contains("github.action_path"), "paths come from $GITHUB_ACTION_PATH");
        assert!(!body.contains("curl") && !body.contains("wget"), "the action never downloads");
    }
    for name in ["outputs_uri", "status", "plan_sha256", "pr_number", "artifacts_dir", "task_record"] {
        let value = doc.get("outputs").and_then(|o| o.get(name)).and_then(|o| o.get("value")).and_then(|v| v.as_str());
        assert_eq!(value, Some(format!("${{{{ steps.run.outputs.{name} }}}}").as_str()), "output {name}");
    }
}

// ---- the command line and the environment the binary gets --------------------------------------

#[test]
fn plan_mode_builds_one_flag_per_line_with_values_attached() {
    let f = Fixture::recorder();
    let job = f
        .job()
        .input("target", "prod")
        .input("namespace", "assistant")
        .input("context", "prod-ctx")
        .input("detect", "true")
        .input("fail-on", "error")
        .input("reviewers", "alice, bob\ncarol")
        .input("workloads", "Deployment:web:6\r\n\n  # api next\n  Deployment:api:4  \n")
        .input("hpa", "min:4,max:12,cpu:65")
        .input("requests", "web:cpu=500m,memory=1Gi\napi/app:cpu=400m,mem=1Gi")
        .input("limits", "web:cpu=1,memory=2Gi");
    let run = f.run(&job);
    assert!(run.success, "{}", run.log);
    assert_eq!(
        f.argv(),
        [
            "plan",
            "--apply",
            "--require-pr",
            "--target=prod",
            "--namespace=assistant",
            "--context=prod-ctx",
            "--detect",
            "--fail-on=error",
            "--reviewers=alice,bob,carol",
            "--workload=Deployment:web:6",
            "--workload=Deployment:api:4",
            "--hpa=min:4,max:12,cpu:65",
            "--req=web:cpu=500m,memory=1Gi",
            "--req=api/app:cpu=400m,mem=1Gi",
            "--lim=web:cpu=1,memory=2Gi",
        ]
    );
    // The token defaults to ${{ github.token }}, reaches the binary as GITHUB_TOKEN, is masked,
    // and the input variables holding secrets are gone from the binary's environment.
    assert_eq!(f.recorded_value("token"), "ghs_harness_token_0000");
    assert!(run.masks.contains(&"ghs_harness_token_0000".to_string()));
    let names = f.recorded_value("env_names");
    assert!(!names.contains("IS_GITHUB_TOKEN") && !names.contains("IS_KUBECONFIG"), "{names}");
    assert_eq!(f.recorded_value("kubeconfig"), "", "no kubeconfig input, no KUBECONFIG");
    assert_eq!(Path::new(&f.recorded_value("cwd")), f.workspace, "runs in the workspace");
    assert_eq!(run.output("status"), "succeeded");
    assert_eq!(run.output("artifacts_dir"), format!("{}/.artifacts/fake", f.workspace.display()));
}

#[test]
fn plan_dry_run_does_not_publish() {
    let f = Fixture::recorder();
    let run = f.run(&f.job().input("dry-run", "true").input("target", "staging"));
    assert!(run.success, "{}", run.log);
    assert_eq!(f.argv(), ["plan", "--dry-run", "--target=staging"]);
}

#[test]
fn execute_mode_writes_a_private_kubeconfig_masks_it_and_removes_it() {
    let f = Fixture::recorder();
    let key_pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIKeyMaterialThatMustNeverBePrinted0123456789abcdef\n-----END EC PRIVATE KEY-----\n";
    let key_data = base64(key_pem.as_bytes());
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster: {{server: 'https://10.0.0.1'}}\n\
         users:\n- name: ci\n  user:\n    token: kube-token-s3cr3t-123456\n    client-key-data: {key_data}\n\
         contexts:\n- name: prod\n  context: {{cluster: prod, user: ci}}\ncurrent-context: prod\n"
    );
    let job = f
        .job()
        .input("mode", "execute")
        .input("plan", "ops/plans/infra-scale/prod/plan.yaml")
        .input("pr-number", "7")
        .input("timeout", "5m")
        .input("rollback-on-failure", "true")
        .input("allow-drift", "true")
        .input("allow-owner", "helm,argocd-controller")
        .input("force", "true")
        .input("context", "prod")
        .input("kubeconfig", &kubeconfig);
    let run = f.run(&job);
    assert!(run.success, "{}", run.log);
    assert_eq!(
        f.argv(),
        [
            "apply",
            "--plan=ops/plans/infra-scale/prod/plan.yaml",
            "--execute",
            &format!("--out={}/infra-scale-out", f.runner_temp.display()),
            "--context=prod",
            "--timeout=5m",
            "--rollback-on-failure",
            "--allow-drift",
            "--allow-owner=helm,argocd-controller",
            "--force",
            "--pr=7",
        ]
    );
    // While the binary ran: KUBECONFIG under RUNNER_TEMP, 0600 in a 0700 directory, the contents.
    let path = PathBuf::from(f.recorded_value("kubeconfig"));
    assert!(path.starts_with(&f.runner_temp), "{}", path.display());
    assert_eq!(f.recorded_value("kubeconfig_mode"), "600");
    assert_eq!(f.recorded_value("kubeconfig_dir_mode"), "700");
    assert_eq!(f.recorded_value("kubeconfig_content"), base64(format!("{kubeconfig}\n").as_bytes()));
    // Afterwards: gone.
    assert!(!path.exists(), "kubeconfig left behind");
    assert!(!path.parent().expect("dir").exists(), "kubeconfig directory left behind");
    // Every credential value was masked before anything else ran, the decoded key too.
    for secret in
        ["kube-token-s3cr3t-123456", key_data.as_str(), "MHcCAQEEIKeyMaterialThatMustNeverBePrinted0123456789abcdef"]
    {
        assert!(run.masks.iter().any(|m| m == secret), "not masked: {secret}\nmasks: {:?}", run.masks);
    }
    assert!(!run.masks.iter().any(|m| m.starts_with("-----")), "PEM armour lines are not secrets");
    // The log carries no secret; the binary's environment holds no copy of the input.
    for secret in ["kube-token-s3cr3t-123456", "MHcCAQEEIKeyMaterial"] {
        assert!(!run.log.contains(secret), "secret printed:\n{}", run.log);
    }
    assert!(!f.recorded_value("env_names").contains("IS_KUBECONFIG"));
}

#[test]
fn the_kubeconfig_is_removed_when_the_binary_fails() {
    let f = Fixture::recorder();
    let job = f
        .job()
        .env("FAKE_EXIT", "4")
        .input("mode", "execute")
        .input("plan", "plan.yaml")
        .input("kubeconfig", "users:\n- user:\n    token: abcdefgh12345678\n");
    let run = f.run(&job);
    assert!(!run.success);
    assert_eq!(run.output("status"), "failed_after_change");
    let path = PathBuf::from(f.recorded_value("kubeconfig"));
    assert!(path.starts_with(&f.runner_temp));
    assert!(!path.exists());
    let leftovers: Vec<_> = std::fs::read_dir(&f.runner_temp)
        .expect("read RUNNER_TEMP")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("infra-scale-kube"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let cleanup = run.steps.last().expect("cleanup step");
    assert_eq!(cleanup.name, "Remove kubeconfig");
    assert_eq!(cleanup.outcome, StepOutcome::Success, "the always() cleanup step runs after a failure");
}

#[test]
fn exit_codes_become_the_status_output() {
    let cases = [
        ("0", "succeeded", "succeeded", true),
        ("0", "awaiting_approval", "awaiting_approval", true),
        ("0", "converged", "converged", true),
        ("1", "", "failed", false),
        ("2", "", "invalid", false),
        ("3", "", "refused", false),
        ("4", "", "failed_after_change", false),
        ("101", "", "failed", false),
    ];
    for (code, last, status, success) in cases {
        let f = Fixture::recorder();
        let run = f.run(&f.job().env("FAKE_EXIT", code).env("FAKE_LAST", last).input("dry-run", "true"));
        assert_eq!(run.success, success, "exit {code}");
        assert_eq!(run.output("status"), status, "exit {code}");
        assert_eq!(
            step(&run, "run").exit_code,
            Some(code.parse().expect("code")),
            "the step exits with the binary's code"
        );
    }
}

// ---- validation ---------------------------------------------------------------------------------

#[test]
fn bad_inputs_are_all_reported_and_nothing_runs() {
    let f = Fixture::recorder();
    let job = f
        .job()
        .input("mode", "deploy")
        .input("dry-run", "yes")
        .input("namespace", "Bad_NS")
        .input("timeout", "10 minutes")
        .input("fail-on", "info")
        .input("reviewers", "alice,not a user!")
        .input("allow-owner", "helm;rm -rf")
        .input("config", "../../etc/passwd");
    let run = f.run(&job);
    assert!(!run.success);
    assert_eq!(run.output("status"), "invalid");
    assert!(f.recorded().is_none(), "the binary ran despite invalid inputs");
    let errors = run.errors().join("\n");
    for needle in [
        "`mode`",
        "`dry-run`",
        "`namespace`",
        "`timeout`",
        "`fail-on`",
        "`reviewers`",
        "`allow-owner`",
        "`config`",
        "nothing was run",
    ] {
        assert!(errors.contains(needle), "no error naming {needle}:\n{errors}");
    }
    assert!(errors.contains("use plan, execute or targets"), "the accepted form is named:\n{errors}");
}

#[test]
fn inputs_of_the_other_mode_are_refused() {
    let f = Fixture::recorder();
    let run = f.run(&f.job().input("mode", "execute").input("plan", "p.yaml").input("workloads", "Deployment:web:2"));
    assert!(!run.success);
    assert!(run.errors().iter().any(|e| e.contains("`workloads` is only used with mode: plan")), "{:?}", run.errors());
    let run = f.run(&f.job().input("mode", "execute"));
    assert!(run.errors().iter().any(|e| e.contains("`plan` is required")), "{:?}", run.errors());
    let run = f.run(&f.job().input("plan", "p.yaml"));
    assert!(run.errors().iter().any(|e| e.contains("`plan` is only used with mode: execute")), "{:?}", run.errors());
    assert!(f.recorded().is_none());
}

#[test]
fn input_values_are_data_never_code() {
    let f = Fixture::recorder();
    // Shell syntax in a value that passes validation reaches the binary verbatim, unexecuted.
    let sneaky = "$(touch${IFS}pwned)`touch${IFS}pwned2`";
    let run = f.run(&f.job().input("dry-run", "true").input("context", sneaky));
    assert!(run.success, "{}", run.log);
    assert_eq!(f.argv(), ["plan", "--dry-run", &format!("--context={sneaky}")]);
    // Values that would be dangerous as separate words are refused outright.
    let f2 = Fixture::recorder();
    let run = f2.run(
        &f2.job()
            .input("target", "prod; touch pwned3")
            .input("workloads", "Deployment:web:6 --config=/etc/shadow\n$(touch pwned4)"),
    );
    assert!(!run.success);
    assert_eq!(run.errors().len(), 4, "target, two workload lines, summary: {:?}", run.errors());
    assert!(f2.recorded().is_none());
    for dir in [&f.workspace, &f2.workspace, &f.action_dir] {
        for name in ["pwned", "pwned2", "pwned3", "pwned4"] {
            assert!(!dir.join(name).exists(), "{name} was created: an input was executed");
        }
    }
}

// ---- binary selection and integrity -------------------------------------------------------------

#[test]
fn a_corrupted_binary_fails_the_checksum_and_is_never_run() {
    let f = Fixture::recorder();
    let mut bytes = std::fs::read(f.binary_path()).expect("read");
    // Flip one byte inside the recorder so that, were it run, it would still work.
    let at = RECORDER.find("printf 'cwd").expect("marker") + 1;
    bytes[at] ^= 0x20;
    std::fs::write(f.binary_path(), &bytes).expect("write");
    let run = f.run(&f.job().input("dry-run", "true"));
    assert!(!run.success);
    assert!(run.errors().iter().any(|e| e.contains("checksum mismatch")), "{:?}", run.errors());
    let stderr = &step(&run, "run").stderr;
    assert!(stderr.contains("FAILED") || stderr.contains("did NOT match"), "sha256sum's own report: {stderr}");
    assert!(step(&run, "run").stdout.contains("::error title=infra-scale::checksum mismatch"));
    assert!(f.recorded().is_none(), "the corrupted binary ran");
    assert_eq!(run.output("status"), "");
}

#[test]
fn a_checksum_list_without_the_binary_fails() {
    let f = Fixture::recorder();
    std::fs::write(
        f.action_dir.join("dist/SHA256SUMS"),
        format!("{}  aarch64-unknown-linux-musl/infra-scale\n", "0".repeat(64)),
    )
    .expect("write");
    let run = f.run(&f.job().input("dry-run", "true"));
    assert!(!run.success);
    assert!(
        run.errors().iter().any(|e| e.contains("no entry for x86_64-unknown-linux-musl/infra-scale")),
        "{:?}",
        run.errors()
    );
    assert!(f.recorded().is_none());
}

#[test]
fn a_git_lfs_pointer_instead_of_the_binary_fails() {
    let f = Fixture::recorder();
    let pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n";
    let sums = std::fs::read_to_string(f.action_dir.join("dist/SHA256SUMS")).expect("sums");
    std::fs::write(f.binary_path(), pointer).expect("write");
    std::fs::write(f.action_dir.join("dist/SHA256SUMS"), sums).expect("keep the sums");
    let run = f.run(&f.job().input("dry-run", "true"));
    assert!(!run.success);
    assert!(run.errors().iter().any(|e| e.contains("checksum mismatch")), "{:?}", run.errors());
}

#[test]
fn a_platform_without_a_binary_or_cargo_is_an_error_naming_what_is_supported() {
    let f = Fixture::recorder();
    let mut job = f.job().input("dry-run", "true");
    job.runner_os = "macOS".into();
    job.runner_arch = "ARM64".into();
    job.path = "/usr/bin:/bin".into();
    assert!(!Path::new("/usr/bin/cargo").exists(), "this test needs a PATH without cargo");
    let run = f.run(&job);
    assert!(!run.success);
    let errors = run.errors().join("\n");
    assert!(errors.contains("macOS/ARM64") && errors.contains("Linux/X64"), "{errors}");
    assert!(f.recorded().is_none());
}

#[test]
fn a_platform_without_a_binary_builds_with_cargo() {
    let f = Fixture::recorder();
    // A stand-in cargo that records how it was called and "builds" the recorder.
    let bin_dir = f.runner_temp.join("fake-bin");
    std::fs::create_dir_all(&bin_dir).expect("mkdir");
    let cargo = bin_dir.join("cargo");
    std::fs::write(
        &cargo,
        format!(
            "#!/usr/bin/env bash\nprintf '%s\\n' \"$PWD\" \"$*\" >\"$RUNNER_TEMP/cargo-call\"\n\
             mkdir -p \"$CARGO_TARGET_DIR/release\"\ncp {bin} \"$CARGO_TARGET_DIR/release/infra-scale\"\n",
            bin = f.binary_path().display()
        ),
    )
    .expect("write cargo");
    set_mode(&cargo, 0o755);
    let mut job = f.job().input("dry-run", "true");
    job.runner_os = "Linux".into();
    job.runner_arch = "ARM64".into();
    job.path = format!("{}:/usr/bin:/bin", bin_dir.display());
    let run = f.run(&job);
    assert!(run.success, "{}", run.log);
    let call = std::fs::read_to_string(f.runner_temp.join("cargo-call")).expect("cargo was called");
    let mut lines = call.lines();
    assert_eq!(lines.next().map(PathBuf::from), Some(f.action_dir.clone()), "builds the action's own source");
    assert_eq!(lines.next(), Some("build --release --locked --bin infra-scale"));
    assert_eq!(f.argv(), ["plan", "--dry-run"]);
}

// ---- the real binary ----------------------------------------------------------------------------

#[test]
fn plan_dry_run_with_the_real_binary_sets_the_outputs() {
    let f = Fixture::real();
    let job = f
        .job()
        .input("dry-run", "true")
        .input("target", "prod")
        .input("namespace", "assistant")
        .input("workloads", "Deployment:web:6\nDeployment:api:4")
        .input("hpa", "min:4,max:12,cpu:65")
        .input("requests", "web:cpu=500m,mem=1Gi\napi:cpu=400m,mem=1Gi")
        .input("limits", "web:cpu=1,mem=2Gi\napi:cpu=1,mem=2Gi");
    let run = f.run(&job);
    assert!(run.success, "{run:#?}");
    assert_eq!(run.output("status"), "succeeded");
    assert_eq!(run.output("outputs_uri"), "");
    let dir = PathBuf::from(run.output("artifacts_dir"));
    let printed = run.log.lines().find_map(|l| l.strip_prefix("artifacts_dir=")).expect("artifacts_dir= on stdout");
    assert_eq!(Path::new(printed), dir, "the output and the printed contract agree");
    assert!(dir.starts_with(f.workspace.join(".artifacts/infra-scale")), "{}", dir.display());
    let plan = std::fs::read_to_string(dir.join("plan.yaml")).expect("plan.yaml");
    assert!(plan.contains("apiVersion: infra.scale/v1") && plan.contains("name: api"), "{plan}");
    assert!(dir.join("SUMMARY.md").is_file());
}

#[test]
fn the_real_binary_rejects_what_the_action_lets_through() {
    // The action checks the shape of each line; the binary checks the meaning (exit 2, no files).
    let f = Fixture::real();
    let run =
        f.run(&f.job().input("dry-run", "true").input("target", "prod").input("workloads", "Deployment:web:many"));
    assert!(!run.success);
    assert_eq!(run.output("status"), "invalid");
    assert_eq!(step(&run, "run").exit_code, Some(2));
    assert!(run.log.contains("Deployment:web:many"), "the error names the bad value:\n{}", run.log);
    assert!(!f.workspace.join(".artifacts").exists(), "nothing is written on invalid input");
}

#[test]
fn publish_then_execute_through_the_action_against_fake_github_and_the_real_cluster() {
    use testkit::github::FakeGitHub;
    const BRANCH: &str = "infra-scale/prod";
    const PLAN_PATH: &str = "ops/plans/infra-scale/prod/plan.yaml";

    let fake = FakeGitHub::start();
    let (ns, kubeconfig, kube_token) = real_namespace(&["web", "api"]);

    let f = Fixture::real();
    let on_github = |mut job: Job| {
        job.github.insert("api_url".into(), fake.api_url().into());
        job.github.insert("server_url".into(), fake.server_url().into());
        job.github.insert("repository".into(), fake.repository());
        job.github.insert("token".into(), fake.token().into());
        job
    };

    // 1. Plan mode publishes: the PR link is the outputs_uri output.
    let mut job = on_github(f.job())
        .input("target", "prod")
        .input("namespace", &ns)
        .input("context", "production")
        .input("workloads", "Deployment:web:5")
        .input("requests", "web:cpu=500m,memory=1Gi")
        .input("limits", "web:cpu=1,memory=2Gi");
    job.event_name = "schedule".into();
    let planned = f.run(&job);
    assert!(planned.success, "{planned:#?}");
    let pr = fake.pulls().into_iter().next().expect("a pull request was opened");
    let number = pr["number"].as_u64().expect("number");
    assert_eq!(planned.output("outputs_uri"), pr["html_url"].as_str().expect("html_url"));
    assert_eq!(planned.output("status"), "awaiting_approval");
    assert_eq!(planned.output("pr_number"), number.to_string());
    let plan_text = fake.file(BRANCH, PLAN_PATH).expect("plan.yaml on the branch");
    let digest: String = Sha256::digest(plan_text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(planned.output("plan_sha256"), digest);
    assert!(planned.masks.iter().any(|m| m == fake.token()), "the token is masked");
    assert!(!planned.log.contains(fake.token()), "the token leaked into the log");
    assert_eq!(fake.labels(number), vec!["needs-approval"]);

    // 2. bob approves the head, alice adds execute-plan; execute mode applies the reviewed plan,
    // read through the API at the head: the workspace (the default branch under
    // pull_request_target) holds another file at that path, which must not be what runs.
    std::fs::create_dir_all(f.workspace.join("ops/plans/infra-scale/prod")).expect("mkdir");
    std::fs::write(f.workspace.join(PLAN_PATH), plan_text.replace("replicas: 5", "replicas: 1"))
        .expect("a decoy plan in the workspace");
    fake.set_role("alice", "write");
    fake.set_role("bob", "write");
    fake.review_as(number, "bob", "APPROVED", None);
    fake.add_label_as(number, "execute-plan", "alice");
    let head = fake.branch_sha(BRANCH).expect("head");
    let mut job = on_github(f.job())
        .env("KUBECACHEDIR", &f.runner_temp.join("kube-cache").display().to_string())
        .input("mode", "execute")
        .input("plan", PLAN_PATH)
        .input("pr-number", &number.to_string())
        .input("rollback-on-failure", "true")
        .input("timeout", "60s")
        .input("kubeconfig", &kubeconfig);
    job.event_name = "pull_request_target".into();
    job.event = serde_json::json!({
        "action": "labeled", "number": number, "label": {"name": "execute-plan"},
        "pull_request": {"number": number, "head": {"sha": head, "ref": BRANCH, "repo": {"full_name": fake.repository()}}},
        "repository": {"full_name": fake.repository()}, "sender": {"login": "alice"},
    });
    let executed = f.run(&job);
    assert!(executed.success, "{executed:#?}");
    assert_eq!(executed.output("status"), "succeeded");
    let web = RealCluster::shared().get(&ns, "deployment/web");
    assert_eq!(web["spec"]["replicas"], 5, "the approved plan ran");
    let resources = &web["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert_eq!(resources["requests"]["memory"], "1Gi", "{resources}");
    assert_eq!(fake.labels(number), vec!["executed"]);
    assert!(executed.masks.contains(&kube_token), "the cluster's client key is masked");
    for secret in [kube_token.as_str(), fake.token()] {
        assert!(!executed.log.contains(secret) && !planned.log.contains(secret), "a secret leaked into the log");
    }
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}

#[test]
fn the_committed_dist_binary_runs_through_the_action_as_shipped() {
    // GITHUB_ACTION_PATH is this repository: action.yml, dist/SHA256SUMS and the prebuilt static
    // binary exactly as committed (scripts/check-dist.sh checks their version and linking).
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(repo.join("dist").join(TRIPLE).join("infra-scale").is_file(), "dist/ has no prebuilt binary");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (workspace, runner_temp) = (tmp.path().join("workspace"), tmp.path().join("runner-temp"));
    for d in [&workspace, &runner_temp] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let job = Job::new(&workspace, &runner_temp)
        .input("dry-run", "true")
        .input("target", "prod")
        .input("namespace", "assistant")
        .input("workloads", "Deployment:web:6")
        .input("hpa", "min:4,max:12,cpu:65");
    let run = Action::load(repo).run(&job);
    assert!(run.success, "{run:#?}");
    assert_eq!(run.output("status"), "succeeded");
    let dir = PathBuf::from(run.output("artifacts_dir"));
    assert!(dir.starts_with(&workspace), "{}", dir.display());
    assert!(std::fs::read_to_string(dir.join("plan.yaml")).expect("plan.yaml").contains("name: web"));
}

/// Standard base64, as the runner's `base64 -w0` prints it.
fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// ---- shell hardening ----------------------------------------------------------------------------

#[test]
fn bash_env_env_and_shellopts_from_earlier_steps_are_ignored() {
    // An earlier step can write BASH_ENV/ENV/SHELLOPTS to GITHUB_ENV; the action's shell drops
    // them: no code runs before the script, and nothing is traced (the token would be printed
    // before its mask).
    let f = Fixture::recorder();
    let hook = f.runner_temp.join("bash-env-hook.sh");
    let marker = f.runner_temp.join("bash-env-ran");
    std::fs::write(&hook, format!("touch '{}'\n", marker.display())).expect("hook");
    let job = f
        .job()
        .env("BASH_ENV", &hook.display().to_string())
        .env("ENV", &hook.display().to_string())
        .env("SHELLOPTS", "braceexpand:hashall:interactive-comments:xtrace")
        .env("BASHOPTS", "checkwinsize")
        .input("dry-run", "true");
    let run = f.run(&job);
    assert!(run.success, "{}", run.log);
    assert!(!marker.exists(), "BASH_ENV ran before the action's script");
    let stderr = &step(&run, "run").stderr;
    assert!(!stderr.contains("+ "), "the script was traced:\n{stderr}");
    assert!(!run.log.contains("ghs_harness_token_0000"), "the token reached the log");
}

#[test]
fn execute_mode_never_builds_from_source() {
    // Build scripts run arbitrary code: with a kubeconfig in reach, only the checksummed binary runs.
    let f = Fixture::recorder();
    let bin_dir = f.runner_temp.join("fake-bin");
    std::fs::create_dir_all(&bin_dir).expect("mkdir");
    let cargo = bin_dir.join("cargo");
    std::fs::write(&cargo, "#!/usr/bin/env bash\ntouch \"$RUNNER_TEMP/cargo-was-called\"\n").expect("cargo");
    set_mode(&cargo, 0o755);
    let mut job = f.job().input("mode", "execute").input("plan", "ops/plans/infra-scale/prod/plan.yaml");
    job.runner_os = "Linux".into();
    job.runner_arch = "ARM64".into();
    job.path = format!("{}:/usr/bin:/bin", bin_dir.display());
    let run = f.run(&job);
    assert!(!run.success);
    assert!(run.errors().iter().any(|e| e.contains("execute mode runs only the prebuilt")), "{:?}", run.errors());
    assert!(!f.runner_temp.join("cargo-was-called").exists(), "cargo ran in execute mode");
    assert!(f.recorded().is_none());
}

// ---- the execution workflow, as GitHub runs it for pull_request_target ---------------------------

/// The default branch's infra-scale.yaml in the workflow tests: two targets on one cluster, one
/// with its own environment name.
const TREE_CONFIG: &str = "targets:
  prod:
    kubeContext: production
    namespace: assistant
    workloads: [{kind: Deployment, name: web, replicas: 5}]
  prod-batch:
    kubeContext: production
    namespace: batch
    environment: production-batch
    workloads: [{kind: Deployment, name: worker, replicas: 2}]
";

/// A tree with `action.yml`, the workflows, infra-scale.yaml and a dist/ binary with matching
/// SHA256SUMS.
fn action_tree(dir: &Path, action_yml: &str, workflow: &str, binary: &[u8]) {
    std::fs::create_dir_all(dir.join(".github/workflows")).expect("mkdir");
    std::fs::write(dir.join("infra-scale.yaml"), TREE_CONFIG).expect("config");
    std::fs::write(dir.join("action.yml"), action_yml).expect("action.yml");
    std::fs::write(dir.join(".github/workflows/infra-scale-apply.yml"), workflow).expect("workflow");
    let bin = dir.join("dist").join(TRIPLE).join("infra-scale");
    std::fs::create_dir_all(bin.parent().expect("parent")).expect("mkdir dist");
    std::fs::write(&bin, binary).expect("binary");
    set_mode(&bin, 0o755);
    let hex: String = Sha256::digest(binary).iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(dir.join("dist/SHA256SUMS"), format!("{hex}  {TRIPLE}/infra-scale\n")).expect("sums");
}

#[test]
fn the_execution_workflow_runs_only_default_branch_code_on_pull_request_target() {
    use testkit::github::FakeGitHub;
    const BRANCH: &str = "infra-scale/prod";
    const PLAN_PATH: &str = "ops/plans/infra-scale/prod/plan.yaml";
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));

    let fake = FakeGitHub::start();
    let (ns, kubeconfig, kube_token) = real_namespace(&["web"]);
    let web_state = || {
        let web = RealCluster::shared().get(&ns, "deployment/web");
        (web["metadata"]["resourceVersion"].clone(), web["spec"].clone())
    };
    let f = Fixture::real();
    let on_github = |mut job: Job| {
        job.github.insert("api_url".into(), fake.api_url().into());
        job.github.insert("server_url".into(), fake.server_url().into());
        job.github.insert("repository".into(), fake.repository());
        job.github.insert("token".into(), fake.token().into());
        job
    };
    // The planner publishes (plan mode through the action).
    let mut job = on_github(f.job())
        .input("target", "prod")
        .input("namespace", &ns)
        .input("context", "production")
        .input("workloads", "Deployment:web:5");
    job.event_name = "schedule".into();
    assert!(f.run(&job).success);
    let number = fake.pulls()[0]["number"].as_u64().expect("number");
    fake.set_role("alice", "write");
    fake.set_role("bob", "write");

    // The two trees: the default branch's (this repository's action.yml and workflow, the binary
    // under test), and the pull request's.
    let trees_dir = tempfile::tempdir().expect("tmp");
    let trees =
        workflow::Trees { default_branch: trees_dir.path().join("default"), pr_head: trees_dir.path().join("pr") };
    let workflow_text =
        std::fs::read_to_string(repo.join(".github/workflows/infra-scale-apply.yml")).expect("workflow");
    action_tree(
        &trees.default_branch,
        &std::fs::read_to_string(repo.join("action.yml")).expect("action.yml"),
        &workflow_text,
        &std::fs::read(env!("CARGO_BIN_EXE_infra-scale")).expect("binary"),
    );
    let run_workflow = |sender: &str| {
        let head = fake.branch_sha(BRANCH).expect("head");
        let mut job = on_github(f.job()).env("KUBECACHEDIR", &f.runner_temp.join("kube-cache").display().to_string());
        job.event_name = "pull_request_target".into();
        job.github.insert("sha".into(), fake.branch_sha("main").expect("main"));
        job.github.insert("ref".into(), "refs/heads/main".into());
        job.event = serde_json::json!({
            "action": "labeled", "number": number, "label": {"name": "execute-plan"},
            "pull_request": {"number": number, "head": {"sha": head, "ref": BRANCH, "repo": {"full_name": fake.repository()}}},
            "repository": {"full_name": fake.repository(), "default_branch": "main"}, "sender": {"login": sender},
        });
        let vars = serde_json::json!({"INFRA_SCALE_BOT_LOGIN": "", "INFRA_SCALE_PLANNER_ID": ""});
        let secrets = serde_json::json!({"KUBECONFIG": kubeconfig});
        workflow::run(&trees, "infra-scale-apply.yml", &job, &vars, &secrets)
    };

    // 1. A clean plan PR: bob approves the head, alice labels; the default branch's workflow,
    // action and binary execute the plan read through the API.
    action_tree(&trees.pr_head, "name: pr\n", &workflow_text, b"#!/bin/sh\nexit 0\n");
    fake.review_as(number, "bob", "APPROVED", None);
    fake.add_label_as(number, "execute-plan", "alice");
    let run = run_workflow("alice");
    assert!(run.workflow_file.starts_with(&trees.default_branch), "{}", run.workflow_file.display());
    assert_eq!(run.jobs["target"].outputs.get("name").map(String::as_str), Some("prod"));
    let execute = &run.jobs["execute"];
    assert!(execute.ran && execute.success, "{}", execute.log);
    // The target's environment (the default name) and one group per cluster, never cancelled.
    assert_eq!(execute.environment.as_deref(), Some("infra-scale-prod"));
    assert_eq!(execute.concurrency, Some(("infra-scale-cluster-production".to_string(), false)));
    assert_eq!(execute.checkouts, vec![trees.default_branch.clone()], "only the default branch is checked out");
    assert_eq!(execute.actions[0].output("status"), "succeeded", "{}", execute.log);
    assert_eq!(RealCluster::shared().get(&ns, "deployment/web")["spec"]["replicas"], 5);
    assert_eq!(execute.uploads, vec![format!("{}/infra-scale-out/", f.runner_temp.display())]);
    assert!(f.runner_temp.join("infra-scale-out").is_dir(), "the journal is under RUNNER_TEMP");
    for secret in [kube_token.as_str(), fake.token()] {
        assert!(!execute.log.contains(secret), "a secret leaked into the log");
    }

    // 2. mallory pushes a changed action.yml, workflow and dist/ binary to the plan branch (and
    // bob, who pushed nothing, approves that head). None of mallory's code may run.
    let evil_action = "name: evil\nruns:\n  using: composite\n  steps:\n    - shell: bash\n      run: touch \"$RUNNER_TEMP/pwned-action\"\n";
    let evil_workflow = workflow_text.replace(
        "      - name: Execute the approved plan",
        "      - run: touch \"$RUNNER_TEMP/pwned-workflow\"\n      - name: Execute the approved plan",
    );
    assert_ne!(evil_workflow, workflow_text);
    let evil_binary = "#!/bin/sh\ntouch \"$RUNNER_TEMP/pwned-dist\"\n";
    action_tree(&trees.pr_head, evil_action, &evil_workflow, evil_binary.as_bytes());
    fake.push_commit_as(
        BRANCH,
        "mallory",
        &[
            ("action.yml", evil_action),
            (".github/workflows/infra-scale-apply.yml", &evil_workflow),
            (&format!("dist/{TRIPLE}/infra-scale"), evil_binary),
        ],
    );
    fake.review_as(number, "bob", "APPROVED", None);
    fake.add_label_as(number, "execute-plan", "alice");
    let before = web_state();
    let run = run_workflow("alice");
    assert!(run.workflow_file.starts_with(&trees.default_branch), "the PR's workflow file is not used");
    let execute = &run.jobs["execute"];
    assert!(execute.ran && !execute.success, "{}", execute.log);
    assert_eq!(execute.checkouts, vec![trees.default_branch.clone()]);
    assert_eq!(execute.actions[0].output("status"), "refused", "{}", execute.log);
    assert!(execute.log.contains("changes files other than the plan"), "{}", execute.log);
    for marker in ["pwned-action", "pwned-workflow", "pwned-dist"] {
        assert!(!f.runner_temp.join(marker).exists(), "{marker}: code from the pull request ran");
        assert!(!f.workspace.join(marker).exists(), "{marker}: code from the pull request ran");
    }
    assert_eq!(web_state(), before, "the cluster is untouched (same resourceVersion)");
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    // The plan file in the repository is only ever read through the API.
    assert!(fake.requests().iter().any(|r| r.path.ends_with(PLAN_PATH)));
}

/// Runs only the execution workflow's `target` job and the `execute` job's set-up for a label
/// event on `branch` (no GitHub API is reached: the target job reads the default branch's config).
fn target_jobs_for(branch: &str) -> (workflow::WorkflowRun, tempfile::TempDir) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let f = Fixture::real();
    let trees_dir = tempfile::tempdir().expect("tmp");
    let trees =
        workflow::Trees { default_branch: trees_dir.path().join("default"), pr_head: trees_dir.path().join("pr") };
    let workflow_text =
        std::fs::read_to_string(repo.join(".github/workflows/infra-scale-apply.yml")).expect("workflow");
    action_tree(
        &trees.default_branch,
        &std::fs::read_to_string(repo.join("action.yml")).expect("action.yml"),
        &workflow_text,
        &std::fs::read(env!("CARGO_BIN_EXE_infra-scale")).expect("binary"),
    );
    action_tree(&trees.pr_head, "name: pr\n", &workflow_text, b"#!/bin/sh\nexit 0\n");
    let mut job = f.job();
    job.event_name = "pull_request_target".into();
    job.github.insert("repository".into(), "octo/infra".into());
    job.github.insert("sha".into(), "1".repeat(40));
    job.event = serde_json::json!({
        "action": "labeled", "number": 7, "label": {"name": "execute-plan"},
        "pull_request": {"number": 7, "head": {"sha": "2".repeat(40), "ref": branch, "repo": {"full_name": "octo/infra"}}},
        "repository": {"full_name": "octo/infra", "default_branch": "main"}, "sender": {"login": "alice"},
    });
    // The execute job's own steps need GitHub; here only its environment and group matter, so
    // its action fails fast on the missing API (and changes nothing).
    let run = workflow::run(&trees, "infra-scale-apply.yml", &job, &serde_json::json!({}), &serde_json::json!({}));
    (run, trees_dir)
}

#[test]
fn the_execution_workflow_takes_the_environment_and_cluster_group_from_the_targets_config() {
    let (run, _dir) = target_jobs_for("infra-scale/prod-batch");
    let target = &run.jobs["target"];
    assert!(target.ran && target.success, "{}", target.log);
    assert_eq!(target.outputs.get("name").map(String::as_str), Some("prod-batch"));
    assert_eq!(target.outputs.get("environment").map(String::as_str), Some("production-batch"));
    assert_eq!(target.outputs.get("context").map(String::as_str), Some("production"));
    let execute = &run.jobs["execute"];
    assert!(execute.ran, "{}", target.log);
    assert_eq!(execute.environment.as_deref(), Some("production-batch"));
    // prod and prod-batch share the cluster `production`: one group, so they never run at once.
    assert_eq!(execute.concurrency, Some(("infra-scale-cluster-production".to_string(), false)));
}

#[test]
fn a_plan_branch_for_a_target_the_default_branch_does_not_have_executes_nothing() {
    let (run, _dir) = target_jobs_for("infra-scale/qa");
    let target = &run.jobs["target"];
    assert!(target.ran && !target.success, "{}", target.log);
    assert!(target.log.contains("no target 'qa'") && target.log.contains("prod, prod-batch"), "{}", target.log);
    assert!(!run.jobs["execute"].ran, "the execute job must not run for an unknown target");
    let (run, _dir) = target_jobs_for("infra-scale/../prod");
    assert!(!run.jobs["target"].success && !run.jobs["execute"].ran);
}

/// A fresh namespace on the shared real control plane with a Deployment per name (3 replicas, one
/// container of that name: requests cpu 250m, memory 256Mi; limit memory 512Mi), rolled out; and
/// a self-contained admin kubeconfig for it as a CI secret holds one (context `production`, the
/// certificates and key embedded). Returns (namespace, kubeconfig text, the `client-key-data`).
fn real_namespace(deployments: &[&str]) -> (String, String, String) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let cluster = RealCluster::shared();
    let ns = format!("h{}-{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
    let mut manifests = format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n");
    for name in deployments {
        manifests.push_str(&format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  replicas: 3\n  \
             selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      \
             containers:\n      - {{name: {name}, image: {name}, resources: {{requests: {{cpu: 250m, memory: 256Mi}}, limits: {{memory: 512Mi}}}}}}\n"
        ));
    }
    cluster.kubectl(&["create", "-f", "-"], Some(&manifests));
    let mut status = vec!["-n", ns.as_str(), "rollout", "status", "--timeout=90s"];
    let objects: Vec<String> = deployments.iter().map(|d| format!("deployment/{d}")).collect();
    status.extend(objects.iter().map(String::as_str));
    cluster.kubectl(&status, None);
    let mut text = std::fs::read_to_string(&cluster.kubeconfig).expect("admin kubeconfig");
    let pki = cluster.dir.join("pki");
    let mut key_data = String::new();
    for (field, file) in
        [("certificate-authority", "ca.crt"), ("client-certificate", "admin.crt"), ("client-key", "admin.key")]
    {
        let data = base64(&std::fs::read(pki.join(file)).expect("pki file"));
        let from = format!("{field}: {}", pki.join(file).display());
        assert!(text.contains(&from), "the kubeconfig names {from}");
        text = text.replace(&from, &format!("{field}-data: {data}"));
        if file == "admin.key" {
            key_data = data;
        }
    }
    let text = text
        .replace("- name: infra-scale-test\n  context:", "- name: production\n  context:")
        .replace("current-context: infra-scale-test", "current-context: production")
        .replace("namespace: default}", &format!("namespace: {ns}}}"));
    (ns, text, key_data)
}
