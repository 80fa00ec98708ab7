//! `infra-scale apply` without a cluster: the preview (golden output for the prototype's prod
//! plan), the prototype's `KUBECTL=echo … --execute`, and strict plan parsing, which refuses bad
//! plans with exit 2 before any kubectl process starts (proved with a KUBECTL that records every
//! invocation).

mod apply_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use apply_support::{Out, infra_scale, plan};

/// A kubectl stand-in that appends its arguments to `calls.log` beside itself and exits 0.
fn recording_kubectl(dir: &Path) -> (PathBuf, PathBuf) {
    let script = dir.join("kubectl-recorder");
    std::fs::write(&script, "#!/bin/sh\necho \"$@\" >> \"$(dirname \"$0\")/calls.log\"\n").expect("write script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (script, dir.join("calls.log"))
}

fn golden(rel: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("missing golden {rel}; run with UPDATE_GOLDEN=1"));
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&expected, actual).unified_diff().header(rel, "actual").to_string();
        panic!("{rel} differs from the golden file (UPDATE_GOLDEN=1 to accept):\n{diff}");
    }
}

fn preview(dir: &Path, plan_path: &Path, extra: &[&str], kubectl: &Path) -> Out {
    let plan_arg = format!("--plan={}", plan_path.display());
    let mut args = vec!["apply", plan_arg.as_str()];
    args.extend_from_slice(extra);
    infra_scale(dir, &args, &[("KUBECTL", &kubectl.display().to_string())])
}

#[test]
fn preview_of_the_prototype_prod_plan_is_golden_and_needs_no_cluster() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (kubectl, calls) = recording_kubectl(dir.path());
    let out = preview(dir.path(), &plan("prototype-prod.yaml"), &[], &kubectl);
    assert_eq!(out.code, 0, "{}", out.context());
    golden("tests/fixtures/plans/prototype-prod.preview.txt", &out.stdout);
    assert!(!calls.exists(), "a preview must not run kubectl");

    // `--dry-run` is the same as the default.
    let explicit = preview(dir.path(), &plan("prototype-prod.yaml"), &["--dry-run"], &kubectl);
    assert_eq!(explicit.stdout, out.stdout);

    // The fixes to the prototype, visible in the preview.
    assert!(!out.stdout.contains("mem="), "`mem` is never sent:\n{}", out.stdout);
    assert!(out.stdout.contains("memory=1Gi"));
    assert!(!out.stdout.contains(" autoscale "), "no `kubectl autoscale`:\n{}", out.stdout);
    assert!(!out.stdout.contains("set resources"), "no container-blind `set resources`");
    // Every change is a JSON patch (an Update owning only the changed fields), dry-run first.
    assert!(out.stdout.contains("patch deployments.apps/web --type=json --field-manager=infra-scale --dry-run=server"));
    assert!(!out.stdout.contains("--server-side"), "no server-side apply:\n{}", out.stdout);
    let summary = out.json();
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["executed"], false);
    assert_eq!(summary["namespace"], "assistant");
    assert_eq!(summary["results"].as_array().map(Vec::len), Some(6), "one result per action");
    assert_eq!(out.stdout.lines().last(), Some("succeeded"));
}

#[test]
fn preview_shows_a_compare_and_swap_scale_per_distinct_count_pair() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (kubectl, _) = recording_kubectl(dir.path());
    let out = preview(dir.path(), &plan("execute.yaml"), &["--context=staging"], &kubectl);
    assert_eq!(out.code, 0, "{}", out.context());
    let lines: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("preview: ")).collect();
    assert_eq!(lines.len(), 12, "a dry run of each of 6 changes, then the changes:\n{}", out.stdout);
    assert!(lines.iter().all(|l| l.starts_with("preview: kubectl --context=staging -n assistant ")));
    assert!(lines[..6].iter().all(|l| l.contains("--dry-run=server")), "{}", out.stdout);
    assert!(!lines[6..].iter().any(|l| l.contains("--dry-run")), "{}", out.stdout);
    assert!(lines[7].contains("Deployment/web container app: requests cpu=500m,memory=1Gi limits cpu=1,memory=2Gi"));
    assert!(lines[10].contains("scale '--current-replicas=<live>' --replicas=4 deployment/api"), "{}", lines[10]);
    assert!(lines[11].contains("--replicas=3 statefulset/db"), "{}", lines[11]);
    // web's replicas are left to the HPA the plan applies.
    assert!(!out.stdout.contains("deployment/web"), "{}", out.stdout);
    assert_eq!(out.statuses(), ["skipped", "planned", "planned", "planned", "planned", "planned", "planned"]);
}

#[test]
fn kubectl_echo_execute_passes_the_invocations_through() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plan_arg = format!("--plan={}", plan("prototype-prod.yaml").display());
    let out = infra_scale(dir.path(), &["apply", &plan_arg, "--execute"], &[("KUBECTL", "echo")]);
    assert_eq!(out.code, 0, "{}", out.context());
    // echo prints the arguments of each change invocation.
    assert!(
        out.stdout.starts_with(
            "--context=production -n assistant patch horizontalpodautoscalers.autoscaling/web --type=json \
             --field-manager=infra-scale --dry-run=server -p "
        ),
        "{}",
        out.stdout
    );
    let summary = out.json();
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["executed"], true);
    assert_eq!(
        out.statuses(),
        ["skipped", "passed_through", "skipped", "passed_through", "passed_through", "passed_through"]
    );
    assert_eq!(out.stdout.lines().last(), Some("succeeded"));
    assert!(out.stderr.contains("pass-through"), "{}", out.stderr);
}

const PROTOTYPE: &str = include_str!("fixtures/plans/prototype-prod.yaml");

#[test]
fn bad_plans_exit_2_before_any_kubectl_call() {
    let alias_bomb = "apiVersion: infra.scale/v1\nkind: ScalePlan\na: &a [\"lol\",\"lol\",\"lol\"]\nb: &b [*a,*a,*a]\nc: &c [*b,*b,*b]\nd: [*c,*c,*c]\n";
    let mut oversize = PROTOTYPE.to_string();
    while oversize.len() <= 1024 * 1024 {
        oversize.push_str("# padding padding padding padding padding padding padding padding padding\n");
    }
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown field",
            PROTOTYPE.replace("  target: prod\n", "  target: prod\n  owner: me\n"),
            "unknown field `owner`",
        ),
        (
            "unknown action",
            PROTOTYPE.replacen("action: scale_workload", "action: delete_workload", 1),
            "unknown variant `delete_workload`",
        ),
        (
            "wrong apiVersion",
            PROTOTYPE.replace("infra.scale/v1", "infra.scale/v2"),
            "`infra.scale/v2` is not supported",
        ),
        ("wrong kind", PROTOTYPE.replace("kind: ScalePlan", "kind: Deployment"), "is not a ScalePlan"),
        ("alias bomb", alias_bomb.to_string(), "anchors, aliases and tags are not accepted"),
        ("oversize", oversize, "the limit is 1048576"),
        ("bad quantity", PROTOTYPE.replace("cpu: 500m", "cpu: 500M"), "500M"),
        ("bad name", PROTOTYPE.replace("name: web\n", "name: Web_1\n"), "Web_1"),
        (
            "two actions on the same fields",
            PROTOTYPE.replace(
                "rollbackHints:",
                "  - {action: restore_resources, kind: Deployment, name: web, namespace: assistant, container: web}\nrollbackHints:",
            ),
            "Deployment/web also has a update_resources action",
        ),
    ];
    let mut cases: Vec<(&str, Vec<u8>, &str)> = cases.into_iter().map(|(w, t, e)| (w, t.into_bytes(), e)).collect();
    cases.push(("not UTF-8", b"apiVersion: \xff\n".to_vec(), "not UTF-8"));
    let dir = tempfile::tempdir().expect("temp dir");
    let (kubectl, calls) = recording_kubectl(dir.path());
    for (what, text, expected) in cases {
        let path = dir.path().join("plan.yaml");
        std::fs::write(&path, &text).expect("write plan");
        let plan_arg = format!("--plan={}", path.display());
        let out =
            infra_scale(dir.path(), &["apply", &plan_arg, "--execute"], &[("KUBECTL", &kubectl.display().to_string())]);
        assert_eq!(out.code, 2, "{what}: {}", out.context());
        assert!(out.stderr.contains(expected), "{what}: expected `{expected}` in:\n{}", out.stderr);
        assert!(out.stdout.is_empty(), "{what}: nothing on stdout:\n{}", out.stdout);
        assert!(!calls.exists(), "{what}: kubectl ran: {:?}", std::fs::read_to_string(&calls));
    }
    let out = infra_scale(dir.path(), &["apply", "--plan=missing.yaml", "--execute"], &[("KUBECTL", "echo")]);
    assert_eq!(out.code, 2, "{}", out.context());
    assert!(out.stderr.contains("missing.yaml"), "{}", out.stderr);
}

#[test]
fn a_missing_kubectl_fails_with_exit_1_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plan_arg = format!("--plan={}", plan("prototype-prod.yaml").display());
    let out = infra_scale(dir.path(), &["apply", &plan_arg, "--execute"], &[("KUBECTL", "no-such-kubectl-here")]);
    assert_eq!(out.code, 1, "{}", out.context());
    assert!(out.stderr.contains("`no-such-kubectl-here` was not found"), "{}", out.stderr);
    assert!(out.stderr.contains("nothing was changed"), "{}", out.stderr);
    assert_eq!(out.json()["ok"], false);
}

/// Regression guard: an execution workflow that lost its pull-request context (another trigger,
/// an empty pr-number) would otherwise apply a plan nobody approved.
#[test]
fn in_github_actions_execution_without_a_pull_request_is_refused_before_any_kubectl_call() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (kubectl, calls) = recording_kubectl(dir.path());
    let plan_arg = format!("--plan={}", plan("prototype-prod.yaml").display());
    let kubectl = kubectl.display().to_string();
    let env = [("KUBECTL", kubectl.as_str()), ("GITHUB_ACTIONS", "true")];
    let out = infra_scale(dir.path(), &["apply", plan_arg.as_str(), "--execute"], &env);
    assert_eq!(out.code, 3, "{}", out.context());
    assert!(out.stderr.contains("without a pull request whose approval can be verified"), "{}", out.context());
    assert!(!calls.exists(), "no kubectl may run: {:?}", std::fs::read_to_string(&calls).ok());
    // The explicit break-glass flag lets it through to kubectl (here the recorder, which lists no
    // contexts, so preflight then refuses; the point is that kubectl was reached).
    let out = infra_scale(dir.path(), &["apply", plan_arg.as_str(), "--execute", "--without-approval"], &env);
    assert!(!out.stderr.contains("without a pull request whose approval"), "{}", out.context());
    assert!(calls.exists(), "--without-approval reaches kubectl");
}

#[test]
fn an_allow_owner_that_is_not_a_manager_name_exits_2_before_any_kubectl_call() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (kubectl, calls) = recording_kubectl(dir.path());
    let out = preview(dir.path(), &plan("execute.yaml"), &["--execute", "--allow-owner=helm,flux x"], &kubectl);
    assert_eq!(out.code, 2, "{}", out.context());
    assert!(out.stderr.contains("--allow-owner") && out.stderr.contains("`flux x`"), "{}", out.stderr);
    assert!(out.stderr.contains("argocd-controller"), "the accepted form is named: {}", out.stderr);
    assert!(!calls.exists(), "no kubectl call");
}
