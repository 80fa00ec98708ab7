//! The approval gate through the real binary (`infra-scale apply --plan=<repo path> --execute` on a
//! `pull_request_target` event against the fake GitHub): one test per refusal reason, each exit 3
//! with its own message, the token never printed and kubectl never started (a tripwire KUBECTL
//! records any start); and the valid case, which passes the gate (`KUBECTL=echo`).

#[path = "apply_support/mod.rs"]
mod apply_support;

use std::path::{Path, PathBuf};

use apply_support::{Out, infra_scale};
use infra_scale::github::env::Env;
use infra_scale::github::publish::{PublishInput, publish_with};
use testkit::github::{FakeGitHub, TOKEN};

const BRANCH: &str = "infra-scale/prod";
const PLAN_PATH: &str = "ops/plans/infra-scale/prod/plan.yaml";
const SUMMARY_PATH: &str = "ops/plans/infra-scale/prod/SUMMARY.md";

struct Case {
    fake: FakeGitHub,
    dir: tempfile::TempDir,
    number: u64,
    plan: String,
}

impl Case {
    /// Published by the planner (infra-bot); alice and bob have write. Not reviewed, not labelled.
    fn bare() -> Case {
        let fake = FakeGitHub::start();
        let plan = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plans/prototype-prod.yaml"),
        )
        .expect("plan fixture");
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
        fake.set_role("alice", "write");
        fake.set_role("bob", "write");
        Case { number: out.pr_number.expect("pr"), fake, dir: tempfile::tempdir().expect("tmp"), plan }
    }

    /// Approved at the head by bob, labelled by alice.
    fn approved() -> Case {
        let c = Case::bare();
        c.fake.review_as(c.number, "bob", "APPROVED", None);
        c.fake.add_label_as(c.number, "execute-plan", "alice");
        c
    }

    fn tripwire(&self) -> (PathBuf, PathBuf) {
        let log = self.dir.path().join("kubectl-started");
        let script = self.dir.path().join("kubectl-tripwire");
        std::fs::write(&script, format!("#!/bin/sh\necho \"$@\" >> '{}'\nexit 1\n", log.display())).expect("write");
        let mut perms = std::fs::metadata(&script).expect("meta").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&script, perms).expect("chmod");
        (script, log)
    }

    /// Runs `apply --execute` for a `event_name` event sent by `sender` at the current head.
    fn run(&self, event_name: &str, sender: &str, kubectl: &str, extra: &[(&str, &str)]) -> Out {
        self.run_args(event_name, sender, kubectl, extra, &[])
    }

    fn run_args(&self, event_name: &str, sender: &str, kubectl: &str, extra: &[(&str, &str)], args: &[&str]) -> Out {
        let head = self.fake.branch_sha(BRANCH).expect("head");
        let event = self.dir.path().join(format!("event-{sender}-{head}.json"));
        let payload = serde_json::json!({
            "action": "labeled", "number": self.number, "label": {"name": "execute-plan"},
            "pull_request": {"number": self.number, "head": {"sha": head, "ref": BRANCH, "repo": {"full_name": self.fake.repository()}}},
            "repository": {"full_name": self.fake.repository()}, "sender": {"login": sender},
        });
        std::fs::write(&event, payload.to_string()).expect("event");
        let mut env: Vec<(String, String)> = self.fake.env();
        env.push(("GITHUB_EVENT_NAME".into(), event_name.into()));
        env.push(("GITHUB_EVENT_PATH".into(), event.display().to_string()));
        env.push(("RUNNER_TEMP".into(), self.dir.path().display().to_string()));
        env.push(("INFRA_SCALE_MAX_RETRY_WAIT".into(), "1".into()));
        env.push(("KUBECTL".into(), kubectl.into()));
        for (k, v) in extra {
            env.push(((*k).into(), (*v).into()));
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let plan_arg = format!("--plan={PLAN_PATH}");
        let out_arg = format!("--out={}", self.dir.path().join("out").display());
        let mut argv = vec!["apply", plan_arg.as_str(), "--execute", out_arg.as_str()];
        argv.extend_from_slice(args);
        infra_scale(self.dir.path(), &argv, &env)
    }

    /// Asserts exit 3 with `needle` on stderr, no kubectl started, no token printed.
    fn refused_by(&self, sender: &str, extra: &[(&str, &str)], needle: &str) -> Out {
        self.refused_on("pull_request_target", sender, extra, needle)
    }

    fn refused_on(&self, event_name: &str, sender: &str, extra: &[(&str, &str)], needle: &str) -> Out {
        let (kubectl, started) = self.tripwire();
        let out = self.run(event_name, sender, &kubectl.display().to_string(), extra);
        assert_eq!(out.code, 3, "{}", out.context());
        assert!(out.stderr.contains(needle), "expected `{needle}`:\n{}", out.context());
        assert!(!started.exists(), "kubectl was started despite the refusal");
        assert!(!out.stdout.contains(TOKEN) && !out.stderr.contains(TOKEN), "the token leaked");
        assert!(self.fake.violations().is_empty(), "{:?}", self.fake.violations());
        out
    }
}

#[test]
fn valid_approval_passes_the_gate_and_executes_the_plan_read_at_the_head() {
    let c = Case::approved();
    // The working directory holds a different file at the plan's path: it must not be what runs.
    std::fs::create_dir_all(c.dir.path().join("ops/plans/infra-scale/prod")).expect("mkdir");
    std::fs::write(c.dir.path().join(PLAN_PATH), c.plan.replace("to: 6", "to: 60")).expect("decoy");
    c.fake.clear_requests();
    let out = c.run("pull_request_target", "alice", "echo", &[("INFRA_SCALE_DEBUG_REQUESTS", "1")]);
    assert_eq!(out.code, 0, "{}", out.context());
    assert!(out.stdout.contains("\"replicas\": 6\n") && !out.stdout.contains("\"replicas\": 60"), "{}", out.context());
    // bob approved, alice labelled: two permission reads; GET /user names the planner.
    assert!(out.stderr.contains("the approval gate sent 10 GitHub API request(s) (0 writes)"), "{}", out.context());
    let gate_reads = c.fake.requests().iter().take_while(|r| !r.is_write()).count();
    assert!(gate_reads <= 12, "{gate_reads}");
    let statuses = c.fake.statuses(&c.fake.branch_sha(BRANCH).expect("head"));
    assert_eq!(statuses[0]["state"], "pending");
}

#[test]
fn refused_on_a_pull_request_event() {
    Case::approved().refused_on(
        "pull_request",
        "alice",
        &[],
        "migrate the execution workflow to `on: pull_request_target",
    );
}

#[test]
fn refused_without_an_approving_review() {
    let c = Case::bare();
    c.fake.add_label_as(c.number, "execute-plan", "alice");
    c.refused_by("alice", &[], "has no approving review");
}

#[test]
fn refused_when_the_approval_is_of_an_older_head() {
    let c = Case::approved();
    c.fake.push_commit_as(BRANCH, "alice", &[(SUMMARY_PATH, "# note\n")]);
    c.refused_by("alice", &[], "bob approved commit");
}

#[test]
fn refused_when_the_planner_approved() {
    let c = Case::bare();
    c.fake.set_role("infra-bot", "admin");
    c.fake.review_as(c.number, "infra-bot", "APPROVED", None);
    c.fake.add_label_as(c.number, "execute-plan", "alice");
    c.refused_by("alice", &[], "infra-bot is the planner identity");
}

#[test]
fn refused_when_the_approver_pushed_to_the_branch() {
    let c = Case::bare();
    c.fake.push_commit_as(BRANCH, "bob", &[(SUMMARY_PATH, "# bob\n")]);
    c.fake.review_as(c.number, "bob", "APPROVED", None);
    c.fake.add_label_as(c.number, "execute-plan", "alice");
    c.refused_by("alice", &[], "bob authored or committed a commit on the branch");
}

#[test]
fn refused_when_the_approver_then_requested_changes() {
    let c = Case::approved();
    c.fake.review_as(c.number, "bob", "CHANGES_REQUESTED", None);
    c.refused_by("alice", &[], "bob's latest review is CHANGES_REQUESTED");
}

#[test]
fn refused_when_the_approval_was_dismissed() {
    let c = Case::bare();
    let id = c.fake.review_as(c.number, "bob", "APPROVED", None);
    c.fake.dismiss_review(id);
    c.fake.add_label_as(c.number, "execute-plan", "alice");
    c.refused_by("alice", &[], "by bob was dismissed");
}

#[test]
fn refused_when_the_approver_cannot_write() {
    let c = Case::bare();
    c.fake.set_role("rita", "triage");
    c.fake.review_as(c.number, "rita", "APPROVED", None);
    c.fake.add_label_as(c.number, "execute-plan", "alice");
    c.refused_by("alice", &[], "rita has the `triage` role");
}

#[test]
fn refused_when_the_plan_at_the_head_is_not_the_planners() {
    let c = Case::approved();
    c.fake.push_commit_as(BRANCH, "mallory", &[(PLAN_PATH, &c.plan.replace("to: 6", "to: 60"))]);
    c.fake.review_as(c.number, "bob", "APPROVED", None);
    c.refused_by("alice", &[], "is not the plan the planner committed in");
}

#[test]
fn refused_when_a_commit_only_claims_to_be_the_planners() {
    // A branch whose only commit carries the planner's identity without a signature.
    let c = Case::bare();
    c.fake.push_commit_as(BRANCH, "infra-bot", &[(SUMMARY_PATH, "# unsigned\n")]);
    c.fake.review_as(c.number, "bob", "APPROVED", None);
    c.fake.add_label_as(c.number, "execute-plan", "alice");
    // The planner's real commit is still below it, so this alone passes the plan check; the
    // unsigned commit is someone else's, and the plan it did not touch is still the planner's.
    let out = c.run("pull_request_target", "alice", "echo", &[]);
    assert_eq!(out.code, 0, "{}", out.context());
    // Now the same with an edited plan: refused.
    c.fake.push_commit_as(BRANCH, "infra-bot", &[(PLAN_PATH, &c.plan.replace("to: 6", "to: 61"))]);
    c.fake.review_as(c.number, "bob", "APPROVED", None);
    c.refused_by("alice", &[], "is not the plan the planner committed in");
}

#[test]
fn refused_when_an_app_planner_has_no_numeric_id() {
    Case::approved().refused_by("alice", &[("INFRA_SCALE_BOT_LOGIN", "plan-app[bot]")], "INFRA_SCALE_PLANNER_ID");
}

#[test]
fn refused_when_the_labeller_is_not_the_sender() {
    Case::approved().refused_by("bob", &[], "the triggering event was sent by bob");
}

#[test]
fn refused_when_the_labeller_has_only_triage() {
    let c = Case::bare();
    c.fake.set_role("trudy", "triage");
    c.fake.review_as(c.number, "bob", "APPROVED", None);
    c.fake.add_label_as(c.number, "execute-plan", "trudy");
    c.refused_by("trudy", &[], "trudy, who added `execute-plan`");
}

#[test]
fn refused_when_a_list_reads_short() {
    let c = Case::approved();
    c.fake.set_pull_counts(c.number, Some(3), None);
    c.refused_by("alice", &[], "has 3 commits, but the commit list read 1");
}

#[test]
fn refused_when_a_list_is_padded_past_what_the_gate_reads() {
    let c = Case::approved();
    c.fake.set_role("trudy", "triage");
    for _ in 0..501 {
        c.fake.add_label_as(c.number, "noise", "trudy");
        c.fake.remove_label_as(c.number, "noise", "trudy");
    }
    c.refused_by("alice", &[], "more issue events than the gate reads");
}

#[test]
fn refused_when_the_head_was_already_executed_unless_forced() {
    let c = Case::approved();
    let head = c.fake.branch_sha(BRANCH).expect("head");
    c.fake.set_status_as(&head, "github-actions[bot]", "success", "infra-scale/execute");
    c.refused_by("alice", &[], "was already executed successfully");
    let out = c.run_args("pull_request_target", "alice", "echo", &[], &["--force"]);
    assert_eq!(out.code, 0, "--force executes again: {}", out.context());
}

#[test]
fn refused_when_the_branch_changes_other_files() {
    let c = Case::bare();
    c.fake.push_commit_as(BRANCH, "mallory", &[("dist/x86_64-unknown-linux-musl/infra-scale", "#!/bin/sh\n")]);
    c.fake.review_as(c.number, "bob", "APPROVED", None);
    c.fake.add_label_as(c.number, "execute-plan", "alice");
    c.refused_by("alice", &[], "changes files other than the plan: dist/x86_64-unknown-linux-musl/infra-scale");
}
