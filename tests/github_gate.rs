//! The approval gate and the report back, against the stateful fake GitHub, through the library
//! API with an explicit environment. Each refusal reason has its own test and its own message;
//! the valid case passes; after a successful report the same digest is refused unless forced.

use std::path::PathBuf;

use infra_scale::github::env::Env;
use infra_scale::github::gate::{Approval, GateRequest, verify_with};
use infra_scale::github::publish::{PublishInput, publish_with};
use infra_scale::github::report::{ExecutionReport, post_with, started_with};
use infra_scale::github::sticky;
use testkit::github::{FakeGitHub, Identity, Options};

const BRANCH: &str = "infra-scale/prod";
const PLAN_PATH: &str = "ops/plans/infra-scale/prod/plan.yaml";
const SUMMARY_PATH: &str = "ops/plans/infra-scale/prod/SUMMARY.md";

fn plan(replicas: u32) -> String {
    format!(
        "apiVersion: infra.scale/v1\nkind: ScalePlan\nmetadata:\n  createdAt: 2026-01-01T00:00:00Z\n  target: prod\nactions:\n- action: scale_workload\n  name: web\n  replicas: {replicas}\n"
    )
}

/// A published plan PR, labelled `execute-plan` by `alice` (write), and the labelled event.
struct Setup {
    fake: FakeGitHub,
    dir: tempfile::TempDir,
    number: u64,
    plan: String,
}

impl Setup {
    fn new() -> Setup {
        Setup::with(Options::default())
    }

    fn with(options: Options) -> Setup {
        let fake = FakeGitHub::start_with(options);
        let plan = plan(6);
        let out = publish_with(
            &Env::from_pairs(fake.env()),
            &PublishInput {
                target: "prod".into(),
                plan_yaml: plan.clone(),
                summary_md: "# Summary\n".into(),
                reviewers: Vec::new(),
                require_pr: true,
            },
        )
        .expect("publish");
        let number = out.pr_number.expect("pr");
        fake.set_role("alice", "write");
        fake.add_label_as(number, "execute-plan", "alice");
        Setup { fake, dir: tempfile::tempdir().expect("tmp"), number, plan }
    }

    fn head(&self) -> String {
        self.fake.branch_sha(BRANCH).expect("branch")
    }

    /// A `pull_request` `labeled` payload for the current head.
    fn event(&self, label: &str) -> PathBuf {
        self.event_at(label, &self.head())
    }

    fn event_at(&self, label: &str, head: &str) -> PathBuf {
        let path = self.dir.path().join(format!("event-{label}-{head}.json"));
        let event = serde_json::json!({
            "action": "labeled",
            "number": self.number,
            "label": {"name": label},
            "pull_request": {"number": self.number, "head": {"sha": head, "ref": BRANCH}},
            "repository": {"full_name": self.fake.repository()},
            "sender": {"login": "alice"},
        });
        std::fs::write(&path, event.to_string()).expect("write event");
        path
    }

    fn env(&self) -> Env {
        Env::from_pairs(self.fake.env())
            .with("GITHUB_EVENT_NAME", "pull_request_target")
            .with("GITHUB_EVENT_PATH", self.event("execute-plan").to_str().expect("utf8"))
            .with("GITHUB_STEP_SUMMARY", self.dir.path().join("summary.md").to_str().expect("utf8"))
            .with("GITHUB_RUN_ID", "777")
            .with("INFRA_SCALE_MAX_RETRY_WAIT", "2")
    }

    fn verify(&self, env: &Env) -> infra_scale::error::Result<Option<Approval>> {
        verify_with(env, &GateRequest { plan_bytes: self.plan.as_bytes(), pr: None, force: false })
    }

    /// Asserts a refusal (exit 3) whose message contains `needle`, and that the gate wrote nothing.
    fn refused(&self, env: &Env, needle: &str) -> String {
        self.fake.clear_requests();
        let err = self.verify(env).expect_err("refused");
        let text = err.to_string();
        assert_eq!(err.exit_code(), 3, "{text}");
        assert!(text.contains(needle), "expected `{needle}` in:\n{text}");
        assert!(self.fake.requests().iter().all(|r| !r.is_write()), "the gate only reads");
        assert!(self.fake.violations().is_empty(), "{:?}", self.fake.violations());
        text
    }
}

#[test]
fn an_approved_plan_passes_and_names_who_approved_it() {
    let s = Setup::new();
    s.fake.clear_requests();
    let approval = s.verify(&s.env()).expect("approved").expect("a PR context");
    assert_eq!(approval.pr_number, s.number);
    assert_eq!(approval.head_sha, s.head());
    assert_eq!(approval.plan_sha256, infra_scale::github::sha256_hex(s.plan.as_bytes()));
    assert_eq!(approval.labeller, "alice");
    assert_eq!(approval.target, "prod");
    assert_eq!(approval.bot_login, "infra-bot");
    assert_eq!(approval.repo, "octo-org/fleet");
    let (reads, writes) = s.fake.counts();
    eprintln!("gate: {reads} reads, {writes} writes");
    assert_eq!(writes, 0);
    assert!(s.fake.violations().is_empty(), "{:?}", s.fake.violations());
}

#[test]
fn without_a_pull_request_context_there_is_nothing_to_check() {
    let s = Setup::new();
    let env = Env::from_pairs(s.fake.env());
    assert_eq!(s.verify(&env).expect("ok"), None);
    // A push or schedule payload is not a pull-request context either.
    let push = s.dir.path().join("push.json");
    std::fs::write(&push, r#"{"ref":"refs/heads/main","repository":{"full_name":"octo-org/fleet"}}"#).expect("write");
    assert_eq!(s.verify(&env.with("GITHUB_EVENT_PATH", push.to_str().expect("utf8"))).expect("ok"), None);
}

#[test]
fn pr_flag_alone_works_and_finds_the_labeller_from_the_timeline() {
    let s = Setup::new();
    let env = Env::from_pairs(s.fake.env());
    let approval = verify_with(&env, &GateRequest { plan_bytes: s.plan.as_bytes(), pr: Some(s.number), force: false })
        .expect("approved")
        .expect("context");
    assert_eq!(approval.labeller, "alice");
}

#[test]
fn refused_when_pr_flag_and_event_disagree() {
    let s = Setup::new();
    s.fake.clear_requests();
    let err =
        verify_with(&s.env(), &GateRequest { plan_bytes: s.plan.as_bytes(), pr: Some(s.number + 1), force: false })
            .expect_err("mismatch");
    assert_eq!(err.exit_code(), 3);
    assert!(err.to_string().contains("does not match the pull request of the triggering event"), "{err}");
}

#[test]
fn refused_when_the_event_added_another_label() {
    let s = Setup::new();
    let env = s.env().with("GITHUB_EVENT_PATH", s.event("bug").to_str().expect("utf8"));
    s.refused(&env, "added the label `bug`");
}

#[test]
fn refused_without_credentials() {
    let s = Setup::new();
    let env = Env::from_pairs([("GITHUB_EVENT_PATH", s.event("execute-plan").to_str().expect("utf8").to_string())]);
    s.refused(&env, "cannot verify the approval");
}

#[test]
fn refused_when_closed_or_merged() {
    let s = Setup::new();
    s.fake.set_pull_state(s.number, "closed", false);
    s.refused(&s.env(), "is closed, not open");
    s.fake.set_pull_state(s.number, "closed", true);
    s.refused(&s.env(), "is merged, not open");
}

#[test]
fn refused_for_a_fork() {
    let s = Setup::new();
    s.fake.set_pull_head_repo(s.number, "mallory/fleet");
    s.refused(&s.env(), "comes from mallory/fleet");
}

#[test]
fn refused_for_a_branch_that_is_not_a_plan_branch() {
    let s = Setup::new();
    s.fake.push_commit_as("feature/x", "alice", &[(PLAN_PATH, &s.plan)]);
    let n = s.fake.open_pull_as("feature/x", "alice");
    s.fake.add_label_as(n, "execute-plan", "alice");
    let env = Env::from_pairs(s.fake.env());
    s.fake.clear_requests();
    let err =
        verify_with(&env, &GateRequest { plan_bytes: s.plan.as_bytes(), pr: Some(n), force: false }).expect_err("x");
    assert!(err.to_string().contains("not an infra-scale plan branch"), "{err}");
}

#[test]
fn refused_when_the_base_is_not_the_default_branch() {
    let s = Setup::new();
    s.fake.set_pull_base(s.number, "release");
    s.refused(&s.env(), "not the default branch `main`");
}

#[test]
fn refused_when_the_label_was_removed() {
    let s = Setup::new();
    s.fake.remove_label_as(s.number, "execute-plan", "bob");
    s.refused(&s.env(), "no longer has the label `execute-plan`");
}

#[test]
fn refused_when_the_head_moved_since_the_event() {
    let s = Setup::new();
    let env = s.env(); // the event names the current head
    s.fake.push_commit_as(BRANCH, "alice", &[(SUMMARY_PATH, "# edited\n")]);
    s.refused(&env, "head moved from");
}

#[test]
fn refused_when_the_plan_given_to_apply_is_not_the_plan_at_the_head() {
    let s = Setup::new();
    s.fake.clear_requests();
    let other = plan(60);
    let err =
        verify_with(&s.env(), &GateRequest { plan_bytes: other.as_bytes(), pr: None, force: false }).expect_err("x");
    assert_eq!(err.exit_code(), 3);
    assert!(err.to_string().contains("is not the plan at the head of"), "{err}");
}

#[test]
fn refused_when_the_plan_at_the_head_differs_from_the_published_digest() {
    let s = Setup::new();
    let edited = plan(60);
    s.fake.push_commit_as(BRANCH, "alice", &[(PLAN_PATH, &edited)]);
    s.fake.add_label_as(s.number, "execute-plan", "alice"); // still there; the event is for the new head
    let env = s.env();
    s.fake.clear_requests();
    let err = verify_with(&env, &GateRequest { plan_bytes: edited.as_bytes(), pr: None, force: false }).expect_err("x");
    assert_eq!(err.exit_code(), 3);
    assert!(err.to_string().contains("but the planner's comment published"), "{err}");
}

#[test]
fn refused_when_a_forged_comment_carries_the_digest_of_an_edited_plan() {
    // Anyone can paste the marker and a digest: only the planner's own comment counts.
    let s = Setup::new();
    let edited = plan(60);
    s.fake.push_commit_as(BRANCH, "mallory", &[(PLAN_PATH, &edited)]);
    let forged = format!("{}\nplan-sha256: {}\n", sticky::MARKER, infra_scale::github::sha256_hex(edited.as_bytes()));
    s.fake.comment_as(s.number, "mallory", &forged);
    let env = s.env();
    let err = verify_with(&env, &GateRequest { plan_bytes: edited.as_bytes(), pr: None, force: false }).expect_err("x");
    assert!(err.to_string().contains("but the planner's comment published"), "{err}");
}

#[test]
fn refused_when_someone_else_touched_the_plan_after_the_planner_even_if_reverted() {
    let s = Setup::new();
    s.fake.push_commit_as(BRANCH, "mallory", &[(PLAN_PATH, &plan(60))]);
    s.fake.push_commit_as(BRANCH, "mallory", &[(PLAN_PATH, &s.plan)]); // same digest again
    s.fake.add_label_as(s.number, "execute-plan", "alice");
    s.refused(&s.env(), "by mallory changed ops/plans/infra-scale/prod/plan.yaml after the planner's commit");
}

#[test]
fn refused_when_the_plan_is_gone_from_the_head() {
    let s = Setup::new();
    s.fake.push_commit_as(BRANCH, "alice", &[(PLAN_PATH, "")]);
    s.refused(&s.env(), "there is no ops/plans/infra-scale/prod/plan.yaml at the head");
}

#[test]
fn a_later_edit_of_the_summary_is_fine_once_relabelled() {
    let s = Setup::new();
    s.fake.push_commit_as(BRANCH, "alice", &[(SUMMARY_PATH, "# summary, with a reviewer's note\n")]);
    s.fake.remove_label_as(s.number, "execute-plan", "alice");
    s.fake.add_label_as(s.number, "execute-plan", "alice");
    assert!(s.verify(&s.env()).expect("approved").is_some());
}

/// Regression: the execution workflow runs the action and the workflow file from the plan
/// branch's checkout with the production kubeconfig, so a commit that slips other files (a
/// modified action.yml, a script) onto the branch must stop execution even though the plan
/// itself is untouched and correctly approved.
#[test]
fn refused_when_the_branch_changes_files_other_than_the_plan() {
    let s = Setup::new();
    s.fake.push_commit_as(BRANCH, "alice", &[("action.yml", "runs: {using: composite, steps: []}\n")]);
    s.fake.remove_label_as(s.number, "execute-plan", "alice");
    s.fake.add_label_as(s.number, "execute-plan", "alice");
    s.refused(&s.env(), "changes files other than the plan: action.yml");
}

#[test]
fn refused_when_the_label_predates_the_head_commit() {
    let s = Setup::new();
    // The label stays on while someone pushes: the approval was for an older head.
    s.fake.push_commit_as(BRANCH, "alice", &[(SUMMARY_PATH, "# edited summary\n")]);
    s.refused(&s.env(), "before its head commit");
}

#[test]
fn refused_when_the_labeller_has_only_triage() {
    let s = Setup::new();
    s.fake.set_role("trudy", "triage");
    s.fake.remove_label_as(s.number, "execute-plan", "alice");
    s.fake.add_label_as(s.number, "execute-plan", "trudy");
    let text = s.refused(&s.env(), "trudy, who added `execute-plan`");
    assert!(text.contains("`triage` role"), "{text}");
    s.fake.set_role("trudy", "read");
    s.refused(&s.env(), "`read` role");
}

#[test]
fn maintainers_admins_and_custom_write_roles_may_execute() {
    let s = Setup::new();
    for (who, role) in [("mia", "maintain"), ("ada", "admin"), ("dee", "deployer")] {
        s.fake.set_role(who, role);
        s.fake.remove_label_as(s.number, "execute-plan", "x");
        s.fake.add_label_as(s.number, "execute-plan", who);
        let a = s.verify(&s.env()).expect("approved").expect("context");
        assert_eq!(a.labeller, who);
    }
}

#[test]
fn refused_when_the_planner_labelled_its_own_plan() {
    let s = Setup::new();
    s.fake.set_role("infra-bot", "admin");
    s.fake.remove_label_as(s.number, "execute-plan", "alice");
    s.fake.add_label_as(s.number, "execute-plan", "infra-bot");
    s.refused(&s.env(), "added by the planner's own identity");
}

#[test]
fn refused_when_the_planners_comment_is_missing() {
    let s = Setup::new();
    let env = s.env().with("INFRA_SCALE_BOT_LOGIN", "other-bot[bot]");
    s.refused(&env, "has no plan comment written by the planner (other-bot[bot])");
}

#[test]
fn the_actions_token_identity_is_understood_on_both_sides() {
    let s = Setup::with(Options { identity: Identity::ActionsBot, ..Options::default() });
    let a = s.verify(&s.env()).expect("approved").expect("context");
    assert_eq!(a.bot_login, "github-actions[bot]");
}

#[test]
fn a_success_is_reported_and_the_same_digest_is_then_refused_unless_forced() {
    let s = Setup::new();
    let env = s.env();
    let approval = s.verify(&env).expect("approved").expect("context");
    started_with(&env, &approval).expect("pending status");
    let report = ExecutionReport {
        success: true,
        changed: true,
        journal_markdown: "| action | before | after | status |\n|---|---|---|---|\n| scale web | 3 | 6 | ok |\n"
            .into(),
        summary_line: "executed in assistant: 1 action applied".into(),
    };
    post_with(&env, &approval, &report).expect("reported");

    let labels = s.fake.labels(s.number);
    assert_eq!(labels, vec!["executed"], "needs-approval and execute-plan swapped for executed");
    let statuses = s.fake.statuses(&approval.head_sha);
    let states: Vec<&str> = statuses.iter().filter_map(|v| v["state"].as_str()).collect();
    assert_eq!(states, vec!["pending", "success"]);
    assert_eq!(statuses[1]["context"], "infra-scale/execute");
    assert!(statuses[1]["target_url"].as_str().is_some_and(|u| u.ends_with("/octo-org/fleet/actions/runs/777")));
    let comments = s.fake.comments(s.number);
    assert_eq!(comments.len(), 1, "the sticky comment is updated, not duplicated");
    let body = &comments[0].2;
    assert!(body.contains("Execution succeeded") && body.contains("| scale web | 3 | 6 | ok |"), "{body}");
    assert_eq!(sticky::executed_digests(body), vec![approval.plan_sha256.clone()]);
    assert_eq!(sticky::digest_of(body), Some(approval.plan_sha256.clone()), "the digest is kept");
    let summary = std::fs::read_to_string(s.dir.path().join("summary.md")).expect("step summary");
    assert!(summary.contains("| scale web | 3 | 6 | ok |"), "{summary}");
    assert!(s.fake.violations().is_empty(), "{:?}", s.fake.violations());

    // Someone labels again: the same digest already ran.
    s.fake.add_label_as(s.number, "execute-plan", "alice");
    s.refused(&env, "was already executed successfully");
    let forced = verify_with(&env, &GateRequest { plan_bytes: s.plan.as_bytes(), pr: None, force: true });
    assert!(forced.expect("--force").is_some());
}

#[test]
fn a_failure_is_reported_with_execute_failed_and_can_be_retried() {
    let s = Setup::new();
    let env = s.env();
    let approval = s.verify(&env).expect("approved").expect("context");
    let report = ExecutionReport {
        success: false,
        changed: true,
        journal_markdown: "| scale web | 3 | 6 | rollout timed out |\n".into(),
        summary_line: "execution failed in assistant: rollout of web timed out".into(),
    };
    post_with(&env, &approval, &report).expect("reported");
    assert_eq!(s.fake.labels(s.number), vec!["execute-failed"]);
    let statuses = s.fake.statuses(&approval.head_sha);
    assert_eq!(statuses.last().expect("status")["state"], "failure");
    let body = &s.fake.comments(s.number)[0].2;
    assert!(body.contains("Execution failed") && body.contains("the cluster was changed"), "{body}");
    assert!(sticky::executed_digests(body).is_empty(), "a failure is not recorded as executed");

    // A new approval of the same plan may run again; success then swaps execute-failed for executed.
    s.fake.add_label_as(s.number, "execute-plan", "alice");
    let approval = s.verify(&env).expect("approved again").expect("context");
    post_with(&env, &approval, &ExecutionReport { success: true, ..report }).expect("reported");
    assert_eq!(s.fake.labels(s.number), vec!["executed"]);
}

#[test]
fn a_new_plan_clears_the_outcome_labels_but_keeps_the_execution_record() {
    let s = Setup::new();
    let env = s.env();
    let approval = s.verify(&env).expect("approved").expect("context");
    let ok = ExecutionReport { success: true, changed: true, journal_markdown: "ok".into(), summary_line: "ok".into() };
    post_with(&env, &approval, &ok).expect("reported");
    let next = plan(8);
    publish_with(
        &Env::from_pairs(s.fake.env()),
        &PublishInput {
            target: "prod".into(),
            plan_yaml: next,
            summary_md: "# S\n".into(),
            reviewers: vec![],
            require_pr: true,
        },
    )
    .expect("publish");
    assert_eq!(s.fake.labels(s.number), vec!["needs-approval"]);
    let body = &s.fake.comments(s.number)[0].2;
    assert_eq!(sticky::executed_digests(body), vec![approval.plan_sha256], "history is kept");
    assert!(!body.contains("Execution succeeded"), "the old plan's execution section is gone");
}
