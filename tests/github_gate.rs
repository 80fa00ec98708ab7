//! The approval gate and the report back, against the stateful fake GitHub, through the library
//! API with an explicit environment. Each refusal reason has its own test and its own message;
//! the valid case passes (within the request budget); after a successful report the same head is
//! refused unless forced.

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
    /// Published, approved at the head by alice (write), labelled by alice.
    fn new() -> Setup {
        Setup::with(Options::default())
    }

    fn with(options: Options) -> Setup {
        let s = Setup::bare(options);
        s.fake.review_as(s.number, "alice", "APPROVED", None);
        s.fake.add_label_as(s.number, "execute-plan", "alice");
        s
    }

    /// Published, nobody reviewed or labelled yet; alice has write.
    fn bare(options: Options) -> Setup {
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
        fake.set_role("bob", "write");
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
        self.event_full(label, head, "alice")
    }

    fn event_full(&self, label: &str, head: &str, sender: &str) -> PathBuf {
        let path = self.dir.path().join(format!("event-{label}-{head}-{sender}.json"));
        let event = serde_json::json!({
            "action": "labeled",
            "number": self.number,
            "label": {"name": label},
            "pull_request": {"number": self.number, "head": {"sha": head, "ref": BRANCH}},
            "repository": {"full_name": self.fake.repository()},
            "sender": {"login": sender},
        });
        std::fs::write(&path, event.to_string()).expect("write event");
        path
    }

    fn env(&self) -> Env {
        self.env_by("alice")
    }

    /// The environment of a run started by `sender` adding `execute-plan` at the current head.
    fn env_by(&self, sender: &str) -> Env {
        Env::from_pairs(self.fake.env())
            .with("GITHUB_EVENT_NAME", "pull_request_target")
            .with("GITHUB_EVENT_PATH", self.event_full("execute-plan", &self.head(), sender).to_str().expect("utf8"))
            .with("GITHUB_STEP_SUMMARY", self.dir.path().join("summary.md").to_str().expect("utf8"))
            .with("GITHUB_RUN_ID", "777")
            .with("INFRA_SCALE_MAX_RETRY_WAIT", "2")
    }

    fn verify(&self, env: &Env) -> infra_scale::error::Result<Option<Approval>> {
        verify_with(env, &GateRequest { plan_path: PLAN_PATH, pr: None, force: false })
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
    let approval = verify_with(&env, &GateRequest { plan_path: PLAN_PATH, pr: Some(s.number), force: false })
        .expect("approved")
        .expect("context");
    assert_eq!(approval.labeller, "alice");
}

#[test]
fn refused_when_pr_flag_and_event_disagree() {
    let s = Setup::new();
    s.fake.clear_requests();
    let err = verify_with(&s.env(), &GateRequest { plan_path: PLAN_PATH, pr: Some(s.number + 1), force: false })
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
    let err = verify_with(&env, &GateRequest { plan_path: PLAN_PATH, pr: Some(n), force: false }).expect_err("x");
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
fn refused_when_plan_names_another_path_than_the_branchs_plan() {
    // In a PR context --plan is a repository path, read through the API at the head.
    let s = Setup::new();
    s.fake.clear_requests();
    for other in ["/etc/infra-scale/plan.yaml", "ops/plans/infra-scale/staging/plan.yaml"] {
        let err = verify_with(&s.env(), &GateRequest { plan_path: other, pr: None, force: false }).expect_err("x");
        assert_eq!(err.exit_code(), 3);
        assert!(err.to_string().contains("does not name the plan of"), "{err}");
    }
    let ok = verify_with(
        &s.env(),
        &GateRequest { plan_path: "./ops/plans/infra-scale/prod/plan.yaml", pr: None, force: false },
    );
    assert!(ok.expect("a ./ prefix is the same path").is_some());
}

#[test]
fn the_approval_carries_the_plan_bytes_read_at_the_head() {
    let s = Setup::new();
    let a = s.verify(&s.env()).expect("approved").expect("context");
    assert_eq!(a.plan_bytes, s.plan.as_bytes());
    assert_eq!(a.approver, "alice");
}

#[test]
fn refused_when_a_writer_edits_the_plan_after_the_planner() {
    // alice (write) pushes an edited plan, approves it and labels it: the plan at the head is not
    // the planner's, whoever approved it.
    let s = Setup::new();
    let edited = plan(60);
    s.fake.push_commit_as(BRANCH, "alice", &[(PLAN_PATH, &edited)]);
    s.fake.review_as(s.number, "bob", "APPROVED", None);
    s.refused(&s.env(), "is not the plan the planner committed in");
}

#[test]
fn refused_when_a_forged_comment_carries_the_digest_of_an_edited_plan() {
    // Anyone can paste the marker and a digest, or edit the planner's comment: the comment is not
    // a trust anchor; the planner's verified commit is.
    let s = Setup::new();
    let edited = plan(60);
    s.fake.push_commit_as(BRANCH, "mallory", &[(PLAN_PATH, &edited)]);
    let forged = format!("{}\nplan-sha256: {}\n", sticky::MARKER, infra_scale::github::sha256_hex(edited.as_bytes()));
    s.fake.comment_as(s.number, "mallory", &forged);
    s.fake.review_as(s.number, "bob", "APPROVED", None);
    s.refused(&s.env(), "is not the plan the planner committed in");
}

#[test]
fn refused_when_a_commit_claims_the_planners_identity_without_a_signature() {
    // `git commit --author "infra-bot <…>"` links the commit to the planner's account, but GitHub
    // did not verify it: it is someone else's commit.
    let s = Setup::new();
    s.fake.push_commit_as(BRANCH, "infra-bot", &[(PLAN_PATH, &plan(60))]);
    s.fake.review_as(s.number, "bob", "APPROVED", None);
    s.refused(&s.env(), "is not the plan the planner committed in");
    // A branch whose only commit claims to be the planner's has no planner commit at all.
    s.fake.push_commit_as("infra-scale/staging", "infra-bot", &[("ops/plans/infra-scale/staging/plan.yaml", &s.plan)]);
    let n = s.fake.open_pull_as("infra-scale/staging", "infra-bot");
    s.fake.add_label_as(n, "execute-plan", "alice");
    let env = Env::from_pairs(s.fake.env());
    let err = verify_with(
        &env,
        &GateRequest { plan_path: "ops/plans/infra-scale/staging/plan.yaml", pr: Some(n), force: false },
    )
    .expect_err("x");
    assert!(err.to_string().contains("names the planner (infra-bot) but GitHub did not verify its signature"), "{err}");
}

#[test]
fn refused_when_another_verified_identity_committed_the_plan() {
    // A writer's branch workflow commits through the API as github-actions[bot]: verified, but not
    // the planner (matched by numeric id).
    let s = Setup::new();
    s.fake.push_verified_commit_as(BRANCH, "github-actions[bot]", &[(PLAN_PATH, &plan(60))]);
    s.fake.review_as(s.number, "bob", "APPROVED", None);
    s.refused(&s.env(), "is not the plan the planner committed in");
    let err = s.verify(&s.env().with("INFRA_SCALE_PLANNER_ID", "12345")).expect_err("x");
    assert!(err.to_string().contains("has no commit that the planner (infra-bot) made and GitHub verified"), "{err}");
}

#[test]
fn refused_when_an_app_planner_is_named_by_login_only() {
    let s = Setup::new();
    let env = s.env().with("INFRA_SCALE_BOT_LOGIN", "plan-app[bot]");
    s.refused(&env, "INFRA_SCALE_PLANNER_ID does not give its numeric user id");
}

#[test]
fn refused_when_someone_else_touched_the_plan_after_the_planner_even_if_reverted() {
    let s = Setup::new();
    s.fake.push_commit_as(BRANCH, "mallory", &[(PLAN_PATH, &plan(60))]);
    s.fake.push_commit_as(BRANCH, "mallory", &[(PLAN_PATH, &s.plan)]); // same digest again
    s.fake.review_as(s.number, "bob", "APPROVED", None);
    s.refused(&s.env(), "by mallory changed ops/plans/infra-scale/prod/plan.yaml after the planner's commit");
}

#[test]
fn refused_when_the_plan_is_gone_from_the_head() {
    let s = Setup::new();
    s.fake.push_commit_as(BRANCH, "alice", &[(PLAN_PATH, "")]);
    s.refused(&s.env(), "there is no ops/plans/infra-scale/prod/plan.yaml at the head");
}

#[test]
fn a_summary_edit_needs_an_approval_of_the_new_head_by_someone_who_did_not_push() {
    let s = Setup::new();
    s.fake.push_commit_as(BRANCH, "alice", &[(SUMMARY_PATH, "# summary, with a reviewer's note\n")]);
    s.fake.remove_label_as(s.number, "execute-plan", "alice");
    s.fake.add_label_as(s.number, "execute-plan", "alice");
    s.refused(&s.env(), "alice approved commit");
    s.fake.review_as(s.number, "alice", "APPROVED", None);
    s.refused(&s.env(), "alice authored or committed a commit on the branch");
    s.fake.review_as(s.number, "bob", "APPROVED", None);
    let a = s.verify(&s.env()).expect("approved").expect("context");
    assert_eq!(a.approver, "bob");
}

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
    // The label stays on while someone pushes: the label was for an older head.
    s.fake.push_commit_as(BRANCH, "alice", &[(SUMMARY_PATH, "# edited summary\n")]);
    s.fake.review_as(s.number, "bob", "APPROVED", None);
    s.refused(&s.env(), "before its head commit");
}

#[test]
fn refused_without_any_approving_review() {
    let s = Setup::bare(Options::default());
    s.fake.add_label_as(s.number, "execute-plan", "alice");
    s.refused(&s.env(), "has no approving review");
    s.fake.review_as(s.number, "bob", "COMMENTED", None);
    s.refused(&s.env(), "has no approving review");
}

#[test]
fn refused_when_the_approval_is_for_an_older_head() {
    let s = Setup::new();
    // The planner publishes a new plan: alice's approval was of the old head.
    publish_with(
        &Env::from_pairs(s.fake.env()),
        &PublishInput {
            target: "prod".into(),
            plan_yaml: plan(9),
            summary_md: "# S\n".into(),
            reviewers: vec![],
            require_pr: true,
        },
    )
    .expect("publish");
    s.fake.add_label_as(s.number, "execute-plan", "alice");
    let env = s.env();
    let err = verify_with(&env, &GateRequest { plan_path: PLAN_PATH, pr: None, force: false }).expect_err("x");
    assert!(err.to_string().contains("alice approved commit"), "{err}");
    assert!(err.to_string().contains("not its head"), "{err}");
}

#[test]
fn refused_when_the_planner_approves_its_own_plan() {
    let s = Setup::bare(Options::default());
    s.fake.set_role("infra-bot", "admin");
    s.fake.review_as(s.number, "infra-bot", "APPROVED", None);
    s.fake.add_label_as(s.number, "execute-plan", "alice");
    s.refused(&s.env(), "infra-bot is the planner identity");
}

#[test]
fn refused_when_the_approver_pushed_to_the_branch() {
    let s = Setup::bare(Options::default());
    s.fake.push_commit_as(BRANCH, "bob", &[(SUMMARY_PATH, "# bob's summary\n")]);
    s.fake.review_as(s.number, "bob", "APPROVED", None);
    s.fake.add_label_as(s.number, "execute-plan", "alice");
    s.refused(&s.env(), "bob authored or committed a commit on the branch");
}

#[test]
fn refused_when_the_approver_later_requested_changes() {
    let s = Setup::new();
    s.fake.review_as(s.number, "alice", "CHANGES_REQUESTED", None);
    s.refused(&s.env(), "alice's latest review is CHANGES_REQUESTED");
    // A later comment-only review does not change that; a new approval does.
    s.fake.review_as(s.number, "alice", "COMMENTED", None);
    s.refused(&s.env(), "alice's latest review is CHANGES_REQUESTED");
    s.fake.review_as(s.number, "alice", "APPROVED", None);
    assert!(s.verify(&s.env()).expect("approved").is_some());
}

#[test]
fn refused_when_the_approval_was_dismissed() {
    let s = Setup::bare(Options::default());
    let id = s.fake.review_as(s.number, "bob", "APPROVED", None);
    s.fake.add_label_as(s.number, "execute-plan", "alice");
    assert!(s.verify(&s.env()).expect("approved").is_some());
    s.fake.dismiss_review(id);
    s.refused(&s.env(), "by bob was dismissed");
}

#[test]
fn refused_when_the_approver_has_no_write_access() {
    let s = Setup::bare(Options::default());
    s.fake.set_role("rita", "read");
    s.fake.review_as(s.number, "rita", "APPROVED", None);
    s.fake.add_label_as(s.number, "execute-plan", "alice");
    s.refused(&s.env(), "rita has the `read` role");
}

#[test]
fn refused_when_the_labeller_is_not_the_events_sender() {
    let s = Setup::new();
    s.refused(&s.env_by("bob"), "the triggering event was sent by bob, but `execute-plan`");
}

#[test]
fn refused_when_the_labeller_has_only_triage() {
    let s = Setup::new();
    s.fake.set_role("trudy", "triage");
    s.fake.remove_label_as(s.number, "execute-plan", "alice");
    s.fake.add_label_as(s.number, "execute-plan", "trudy");
    let text = s.refused(&s.env_by("trudy"), "trudy, who added `execute-plan`");
    assert!(text.contains("`triage` role"), "{text}");
    s.fake.set_role("trudy", "read");
    s.refused(&s.env_by("trudy"), "`read` role");
}

#[test]
fn maintainers_admins_and_custom_write_roles_may_execute() {
    let s = Setup::new();
    for (who, role) in [("mia", "maintain"), ("ada", "admin"), ("dee", "deployer")] {
        s.fake.set_role(who, role);
        s.fake.remove_label_as(s.number, "execute-plan", "x");
        s.fake.add_label_as(s.number, "execute-plan", who);
        let a = s.verify(&s.env_by(who)).expect("approved").expect("context");
        assert_eq!(a.labeller, who);
        assert_eq!(a.approver, "alice");
    }
}

#[test]
fn refused_when_the_planner_labelled_its_own_plan() {
    let s = Setup::new();
    s.fake.set_role("infra-bot", "admin");
    s.fake.remove_label_as(s.number, "execute-plan", "alice");
    s.fake.add_label_as(s.number, "execute-plan", "infra-bot");
    s.refused(&s.env_by("infra-bot"), "added by the planner's own identity");
}

#[test]
fn refused_on_a_pull_request_event_with_a_pointer_to_the_migration() {
    let s = Setup::new();
    let text =
        s.refused(&s.env().with("GITHUB_EVENT_NAME", "pull_request"), "refusing to execute on a `pull_request` event");
    assert!(text.contains("pull_request_target"), "{text}");
}

#[test]
fn refused_when_a_list_reads_shorter_than_the_pull_requests_counts() {
    // A padded or truncated list must not hide an entry: the counts in the PR object must match.
    let s = Setup::new();
    s.fake.set_pull_counts(s.number, Some(2), None);
    s.refused(&s.env(), "has 2 commits, but the commit list read 1");
    s.fake.set_pull_counts(s.number, Some(251), None);
    s.refused(&s.env(), "more than the 250 GitHub lists");
    s.fake.set_pull_counts(s.number, None, Some(3));
    s.refused(&s.env(), "changes 3 files, but the file list read 2");
    s.fake.set_pull_counts(s.number, None, Some(3001));
    s.refused(&s.env(), "more than the 3000 GitHub lists");
}

#[test]
fn refused_when_a_list_is_longer_than_the_gate_reads() {
    // A triage user pads the timeline past the pages the gate reads: refuse, never judge the
    // first pages alone.
    let s = Setup::new();
    s.fake.set_role("trudy", "triage");
    for _ in 0..501 {
        s.fake.add_label_as(s.number, "noise", "trudy");
        s.fake.remove_label_as(s.number, "noise", "trudy");
    }
    s.refused(&s.env(), "more issue events than the gate reads");
}

#[test]
fn refused_when_the_head_already_carries_a_successful_execution() {
    let s = Setup::new();
    s.fake.set_status_as(&s.head(), "github-actions[bot]", "success", "infra-scale/execute");
    s.refused(&s.env(), "was already executed successfully (status `infra-scale/execute`)");
    let forced = verify_with(&s.env(), &GateRequest { plan_path: PLAN_PATH, pr: None, force: true });
    assert!(forced.expect("--force").is_some());
    // Another context's success is not an execution.
    let s = Setup::new();
    s.fake.set_status_as(&s.head(), "ci-bot", "success", "ci/lint");
    assert!(s.verify(&s.env()).expect("approved").is_some());
}

#[test]
fn a_valid_execution_costs_at_most_twelve_requests() {
    let s = Setup::new();
    s.fake.clear_requests();
    s.verify(&s.env()).expect("approved").expect("context");
    let lines: Vec<String> = s.fake.requests().iter().map(|r| r.line()).collect();
    eprintln!("gate requests ({}):\n{}", lines.len(), lines.join("\n"));
    assert!(lines.len() <= 12, "{}", lines.join("\n"));
    let s = Setup::with(Options { identity: Identity::ActionsBot, ..Options::default() });
    s.fake.clear_requests();
    s.verify(&s.env()).expect("approved").expect("context");
    assert!(s.fake.requests().len() <= 12);
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
    let forced = verify_with(&env, &GateRequest { plan_path: PLAN_PATH, pr: None, force: true });
    assert!(forced.expect("--force").is_some());
}

#[test]
fn a_plan_pushed_during_execution_keeps_its_labels() {
    let s = Setup::new();
    let env = s.env();
    let approval = s.verify(&env).expect("approved").expect("context");
    publish_with(
        &Env::from_pairs(s.fake.env()),
        &PublishInput {
            target: "prod".into(),
            plan_yaml: plan(11),
            summary_md: "# S\n".into(),
            reviewers: vec![],
            require_pr: true,
        },
    )
    .expect("publish");
    let ok = ExecutionReport { success: true, changed: true, journal_markdown: "ok".into(), summary_line: "ok".into() };
    let err = post_with(&env, &approval, &ok).expect_err("the head moved");
    assert!(err.to_string().contains("moved to"), "{err}");
    assert_eq!(s.fake.labels(s.number), vec!["needs-approval"], "the new plan still needs approval");
    let states: Vec<String> =
        s.fake.statuses(&approval.head_sha).iter().filter_map(|v| v["state"].as_str().map(str::to_string)).collect();
    assert_eq!(states, vec!["success"], "the executed head got its status");
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
