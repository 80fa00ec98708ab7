//! Publishing a plan as a pull request, against the stateful fake GitHub (testkit), through the
//! library API with an explicit environment (no process environment is read or changed).
//! Every test ends by checking that every request matched GitHub's official OpenAPI description.

use std::time::{Duration, Instant};

use infra_scale::github::env::Env;
use infra_scale::github::publish::{PublishInput, PublishOutcome, publish_with};
use infra_scale::github::sticky;
use testkit::github::{FakeGitHub, Fault, FaultKind, Identity, Options, TOKEN};

const BRANCH: &str = "infra-scale/prod";
const PLAN_PATH: &str = "ops/plans/infra-scale/prod/plan.yaml";
const SUMMARY_PATH: &str = "ops/plans/infra-scale/prod/SUMMARY.md";

fn plan(created_at: &str, replicas: u32) -> String {
    format!(
        "apiVersion: infra.scale/v1\nkind: ScalePlan\nmetadata:\n  createdAt: {created_at}\n  target: prod\ncontext:\n  kubeContext: production\n  namespace: assistant\nactions:\n- action: scale_workload\n  kind: Deployment\n  name: web\n  namespace: assistant\n  replicas: {replicas}\n"
    )
}

fn input(plan_yaml: String) -> PublishInput {
    PublishInput {
        target: "prod".into(),
        summary_md: format!(
            "# Scaling plan: prod\n\n| workload | replicas |\n|---|---|\n| web | {} |\n",
            plan_yaml.len()
        ),
        plan_yaml,
        reviewers: Vec::new(),
        require_pr: false,
    }
}

/// The fake's variables, small retry bounds, nothing from the process.
fn env_for(fake: &FakeGitHub) -> Env {
    Env::from_pairs(fake.env()).with("INFRA_SCALE_MAX_RETRY_WAIT", "3").with("INFRA_SCALE_HTTP_TIMEOUT", "5")
}

fn sha256(text: &str) -> String {
    infra_scale::github::sha256_hex(text.as_bytes())
}

fn assert_contract(fake: &FakeGitHub) {
    let v = fake.violations();
    assert!(v.is_empty(), "requests outside GitHub's OpenAPI description:\n{}", v.join("\n"));
}

fn log(fake: &FakeGitHub) -> String {
    fake.requests().iter().map(|r| r.line()).collect::<Vec<_>>().join("\n")
}

fn publish_ok(env: &Env, input: &PublishInput) -> PublishOutcome {
    publish_with(env, input).unwrap_or_else(|e| panic!("publish failed: {e}"))
}

#[test]
fn first_publication_opens_one_draft_pr_with_one_commit_label_and_comment() {
    let fake = FakeGitHub::start();
    let main_tip = fake.branch_sha("main").expect("main");
    let plan_yaml = plan("2026-01-01T00:00:00Z", 6);
    let out = publish_ok(&env_for(&fake), &input(plan_yaml.clone()));

    let (reads, writes) = fake.counts();
    eprintln!("first publication (no Actions event): {reads} reads + {writes} writes\n{}", log(&fake));
    assert_eq!(reads + writes, 9, "{}", log(&fake));
    assert_eq!(writes, 6, "tree, commit, ref, PR, label, comment:\n{}", log(&fake));
    assert_eq!(out.api_requests, (reads as u32, writes as u32));

    // One commit on top of main, holding both files and keeping main's files (base_tree).
    let head = fake.branch_sha(BRANCH).expect("branch created");
    let (parents, author, message) = fake.commit(&head).expect("commit");
    assert_eq!(parents, vec![main_tip]);
    assert_eq!(author, "infra-bot");
    assert!(message.contains(&sha256(&plan_yaml)), "{message}");
    let paths = fake.tree_paths(&head);
    for p in [PLAN_PATH, SUMMARY_PATH, "README.md", "ops/plans/README.md"] {
        assert!(paths.iter().any(|x| x == p), "{p} missing from {paths:?}");
    }
    assert_eq!(fake.file(BRANCH, PLAN_PATH).as_deref(), Some(plan_yaml.as_str()));
    let trees = fake.requests().iter().filter(|r| r.path.ends_with("/git/trees")).count();
    assert_eq!(trees, 1, "one tree for both files");

    // One draft PR, labelled, with one comment by the token's identity carrying the digest.
    let pulls = fake.pulls();
    assert_eq!(pulls.len(), 1);
    let pr = &pulls[0];
    assert_eq!(pr["draft"], true);
    assert_eq!(pr["head"]["ref"], BRANCH);
    assert_eq!(pr["base"]["ref"], "main");
    let number = pr["number"].as_u64().expect("number");
    assert_eq!(fake.labels(number), vec!["needs-approval"]);
    let comments = fake.comments(number);
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].1, "infra-bot");
    assert_eq!(sticky::digest_of(&comments[0].2), Some(sha256(&plan_yaml)));
    assert!(comments[0].2.contains("execute-plan"), "says how to approve");

    assert_eq!(out.outputs_uri, pr["html_url"].as_str().expect("html_url"));
    assert_eq!(out.pr_number, Some(number));
    assert_eq!(out.plan_sha256, sha256(&plan_yaml));
    assert_eq!(out.status, "awaiting_approval");
    assert!(out.changed && out.created_pr);
    assert_contract(&fake);
}

#[test]
fn in_a_scheduled_run_the_default_branch_comes_from_the_context_and_costs_no_request() {
    let fake = FakeGitHub::start();
    let env = env_for(&fake).with("GITHUB_EVENT_NAME", "schedule").with("GITHUB_REF", "refs/heads/main");
    publish_ok(&env, &input(plan("2026-01-01T00:00:00Z", 6)));
    let (reads, writes) = fake.counts();
    eprintln!("first publication (scheduled run): {reads} reads + {writes} writes");
    assert_eq!(reads + writes, 8, "{}", log(&fake));
    assert!(!fake.requests().iter().any(|r| r.path == "/repos/octo-org/fleet"), "{}", log(&fake));
    assert_contract(&fake);
}

#[test]
fn an_unchanged_rerun_makes_no_write_and_keeps_the_digest() {
    let fake = FakeGitHub::start();
    let env = env_for(&fake);
    let first = publish_ok(&env, &input(plan("2026-01-01T00:00:00Z", 6)));
    fake.clear_requests();

    // Only createdAt differs: not a change.
    let again = publish_ok(&env, &input(plan("2026-01-02T02:00:00Z", 6)));
    let (reads, writes) = fake.counts();
    eprintln!("unchanged re-run: {reads} reads + {writes} writes\n{}", log(&fake));
    assert_eq!(writes, 0, "{}", log(&fake));
    assert!(reads <= 4, "{}", log(&fake));
    assert_eq!(again.outputs_uri, first.outputs_uri);
    assert_eq!(again.pr_number, first.pr_number);
    assert_eq!(again.plan_sha256, first.plan_sha256, "the digest of the bytes on the branch");
    assert!(!again.changed && !again.created_pr);
    assert_eq!(fake.pulls().len(), 1);
    assert_contract(&fake);
}

#[test]
fn an_unchanged_rerun_with_the_actions_token_also_makes_no_write() {
    // GET /user fails for the workflow GITHUB_TOKEN; its comments are github-actions[bot]'s.
    let fake = FakeGitHub::start_with(Options { identity: Identity::ActionsBot, ..Options::default() });
    let env = env_for(&fake);
    let first = publish_ok(&env, &input(plan("2026-01-01T00:00:00Z", 6)));
    let n = first.pr_number.expect("pr");
    assert_eq!(fake.comments(n)[0].1, "github-actions[bot]");
    fake.clear_requests();
    publish_ok(&env, &input(plan("2026-01-03T00:00:00Z", 6)));
    let (reads, writes) = fake.counts();
    assert_eq!((reads, writes), (4, 0), "{}", log(&fake));
    assert_contract(&fake);
}

#[test]
fn a_changed_plan_updates_the_same_branch_pr_and_comment_and_withdraws_the_approval() {
    let fake = FakeGitHub::start();
    let env = env_for(&fake);
    let first = publish_ok(&env, &input(plan("2026-01-01T00:00:00Z", 6)));
    let n = first.pr_number.expect("pr");
    let first_head = fake.branch_sha(BRANCH).expect("branch");
    let comment_id = fake.comments(n)[0].0;
    fake.add_label_as(n, "execute-plan", "alice");

    let new_plan = plan("2026-01-02T00:00:00Z", 8);
    let out = publish_ok(&env, &input(new_plan.clone()));
    assert_eq!(out.pr_number, Some(n), "same PR");
    assert!(out.changed && !out.created_pr);
    assert_eq!(out.plan_sha256, sha256(&new_plan));
    assert_eq!(fake.pulls().len(), 1);

    // Rebuilt on main: one commit, not stacked on the previous plan commit.
    let head = fake.branch_sha(BRANCH).expect("branch");
    assert_ne!(head, first_head);
    assert_eq!(fake.commit(&head).expect("commit").0, vec![fake.branch_sha("main").expect("main")]);
    assert_eq!(fake.file(BRANCH, PLAN_PATH).as_deref(), Some(new_plan.as_str()));

    let comments = fake.comments(n);
    assert_eq!(comments.len(), 1, "the same comment, updated in place");
    assert_eq!(comments[0].0, comment_id);
    assert_eq!(sticky::digest_of(&comments[0].2), Some(sha256(&new_plan)));
    assert_eq!(fake.labels(n), vec!["needs-approval"], "the stale execute-plan is gone");
    assert_contract(&fake);
}

#[test]
fn a_pasted_marker_is_not_taken_for_the_planners_comment() {
    let fake = FakeGitHub::start();
    let env = env_for(&fake);
    let first = publish_ok(&env, &input(plan("2026-01-01T00:00:00Z", 6)));
    let n = first.pr_number.expect("pr");
    let forged = format!("{}\nplan-sha256: {}\n", sticky::MARKER, "f".repeat(64));
    let mallory = fake.comment_as(n, "mallory", &forged);

    let new_plan = plan("2026-01-02T00:00:00Z", 9);
    publish_ok(&env, &input(new_plan.clone()));
    let comments = fake.comments(n);
    assert_eq!(comments.len(), 2);
    let theirs = comments.iter().find(|c| c.0 == mallory).expect("mallory's comment");
    assert_eq!(theirs.2, forged, "someone else's comment is never edited");
    let ours = comments.iter().find(|c| c.1 == "infra-bot").expect("ours");
    assert_eq!(sticky::digest_of(&ours.2), Some(sha256(&new_plan)));
    assert_contract(&fake);
}

#[test]
fn a_repository_without_drafts_gets_a_regular_pr() {
    let fake = FakeGitHub::start();
    fake.refuse_drafts(true);
    let out = publish_ok(&env_for(&fake), &input(plan("2026-01-01T00:00:00Z", 6)));
    let pr = fake.pull(out.pr_number.expect("pr")).expect("pr");
    assert_eq!(pr["draft"], false);
    assert_eq!(fake.pulls().len(), 1);
    assert!(out.warnings.iter().any(|w| w.contains("draft")), "{:?}", out.warnings);
    assert_contract(&fake);
}

#[test]
fn server_errors_are_retried_and_a_post_that_took_effect_is_not_repeated() {
    let fake = FakeGitHub::start();
    // A GET is simply repeated; a POST whose answer was lost is looked up before any repeat.
    fake.inject(Fault::new("GET", "/contents/", FaultKind::Status(502)));
    fake.inject(Fault::new("POST", "/git/refs", FaultKind::Status(500)));
    fake.inject(Fault::new("POST", "/pulls", FaultKind::StatusAfterEffect(500)));
    fake.inject(Fault::new("POST", "/comments", FaultKind::StatusAfterEffect(503)));
    let out = publish_ok(&env_for(&fake), &input(plan("2026-01-01T00:00:00Z", 6)));
    let n = out.pr_number.expect("pr");
    assert_eq!(fake.pulls().len(), 1, "exactly one PR:\n{}", log(&fake));
    assert_eq!(fake.comments(n).len(), 1, "exactly one comment:\n{}", log(&fake));
    assert!(fake.branch_sha(BRANCH).is_some());
    let posts_to_pulls = fake.requests().iter().filter(|r| r.method == "POST" && r.path.ends_with("/pulls")).count();
    assert_eq!(posts_to_pulls, 1, "the PR POST took effect and was not repeated:\n{}", log(&fake));
    let ref_posts = fake.requests().iter().filter(|r| r.method == "POST" && r.path.ends_with("/git/refs")).count();
    assert_eq!(ref_posts, 2, "the ref POST had no effect and was repeated:\n{}", log(&fake));
    assert_contract(&fake);
}

#[test]
fn rate_limits_are_waited_out_within_the_bound() {
    let fake = FakeGitHub::start();
    fake.inject(Fault::new("POST", "/pulls", FaultKind::SecondaryRateLimit { retry_after: 1 }));
    fake.inject(Fault::new("POST", "/labels", FaultKind::TooManyRequests { retry_after: 1 }));
    fake.inject(Fault::new("POST", "/git/trees", FaultKind::PrimaryRateLimit { reset_in: 1 }));
    let started = Instant::now();
    let out = publish_ok(&env_for(&fake), &input(plan("2026-01-01T00:00:00Z", 6)));
    assert!(started.elapsed() >= Duration::from_secs(3), "each limit waited: {:?}", started.elapsed());
    assert_eq!(fake.pulls().len(), 1);
    assert_eq!(fake.labels(out.pr_number.expect("pr")), vec!["needs-approval"]);
    assert_contract(&fake);
}

#[test]
fn a_rate_limit_longer_than_the_bound_fails_fast_with_a_clear_message() {
    let fake = FakeGitHub::start();
    fake.inject(Fault::new("GET", "/contents/", FaultKind::SecondaryRateLimit { retry_after: 600 }));
    let started = Instant::now();
    let err = publish_with(&env_for(&fake), &input(plan("2026-01-01T00:00:00Z", 6))).expect_err("too long");
    assert!(started.elapsed() < Duration::from_secs(3));
    let text = err.to_string();
    assert!(
        text.contains("rate limit") && text.contains("600 s") && text.contains("INFRA_SCALE_MAX_RETRY_WAIT"),
        "{text}"
    );
    assert_eq!(err.exit_code(), 1);
}

#[test]
fn slow_answers_time_out_and_are_retried() {
    let fake = FakeGitHub::start();
    fake.inject(Fault::new("GET", "/contents/", FaultKind::Delay(Duration::from_secs(3))));
    let env = env_for(&fake).with("INFRA_SCALE_HTTP_TIMEOUT", "1");
    let out = publish_ok(&env, &input(plan("2026-01-01T00:00:00Z", 6)));
    assert!(out.pr_number.is_some());
    // The slow answer is logged when the fake finally sends it, after the retry succeeded.
    let deadline = Instant::now() + Duration::from_secs(10);
    let reads = loop {
        let reads = fake.requests().iter().filter(|r| r.path.contains("/contents/")).count();
        if reads >= 2 || Instant::now() > deadline {
            break reads;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(reads, 2, "one timed out, one retried:\n{}", log(&fake));
}

#[test]
fn a_bad_token_is_a_401_error_naming_the_variable_and_never_the_token() {
    let fake = FakeGitHub::start();
    let secret = "ghp_NotTheRightToken000000000000000000000";
    let env = env_for(&fake).with("GITHUB_TOKEN", secret);
    let err = publish_with(&env, &input(plan("2026-01-01T00:00:00Z", 6))).expect_err("401");
    let text = err.to_string();
    assert!(text.contains("401") && text.contains("GITHUB_TOKEN"), "{text}");
    assert!(!text.contains(secret) && !text.contains(TOKEN), "{text}");
}

#[test]
fn a_403_names_the_missing_permission() {
    let fake = FakeGitHub::start();
    fake.inject(Fault::new(
        "POST",
        "/git/trees",
        FaultKind::Forbidden("Resource not accessible by integration".into()),
    ));
    let err = publish_with(&env_for(&fake), &input(plan("2026-01-01T00:00:00Z", 6))).expect_err("403");
    let text = err.to_string();
    assert!(text.contains("403") && text.contains("contents: write"), "{text}");

    let fake = FakeGitHub::start();
    fake.inject(Fault::new(
        "POST",
        "/pulls",
        FaultKind::Forbidden("GitHub Actions is not permitted to create or approve pull requests.".into()),
    ));
    let err = publish_with(&env_for(&fake), &input(plan("2026-01-01T00:00:00Z", 6))).expect_err("403");
    assert!(err.to_string().contains("Allow GitHub Actions to create and approve pull requests"), "{err}");

    let fake = FakeGitHub::start();
    fake.inject(Fault::new("POST", "/labels", FaultKind::Forbidden("Resource not accessible by integration".into())));
    let err = publish_with(&env_for(&fake), &input(plan("2026-01-01T00:00:00Z", 6))).expect_err("403");
    assert!(err.to_string().contains("issues: write"), "{err}");
}

#[test]
fn a_missing_repository_is_a_404_error_naming_it() {
    let fake = FakeGitHub::start();
    let env = env_for(&fake).with("GITHUB_REPOSITORY", "octo-org/nope");
    let err = publish_with(&env, &input(plan("2026-01-01T00:00:00Z", 6))).expect_err("404");
    let text = err.to_string();
    assert!(text.contains("404") && text.contains("octo-org/nope"), "{text}");
    assert!(fake.requests().iter().all(|r| !r.is_write()), "nothing written:\n{}", log(&fake));
}

#[test]
fn without_credentials_the_outputs_uri_is_empty_with_a_warning_or_an_error_with_require_pr() {
    let out = publish_with(&Env::default(), &input(plan("2026-01-01T00:00:00Z", 6))).expect("no PR is not an error");
    assert_eq!(out.outputs_uri, "");
    assert_eq!(out.pr_number, None);
    let warning = out.warnings.join("\n");
    assert!(warning.contains("GITHUB_TOKEN") && warning.contains("GITHUB_REPOSITORY"), "{warning}");

    let only_token = Env::from_pairs([("GITHUB_TOKEN", "x"), ("GH_OWNER", "o")]);
    let out = publish_with(&only_token, &input(plan("2026-01-01T00:00:00Z", 6))).expect("warn");
    assert!(out.warnings.join("\n").contains("GH_REPO"), "{:?}", out.warnings);

    let mut strict = input(plan("2026-01-01T00:00:00Z", 6));
    strict.require_pr = true;
    let err = publish_with(&Env::default(), &strict).expect_err("--require-pr");
    assert!(err.to_string().contains("GITHUB_TOKEN") && err.to_string().contains("--require-pr"), "{err}");
}

#[test]
fn the_token_never_appears_in_outcomes_comments_bodies_or_errors() {
    let fake = FakeGitHub::start();
    let out = publish_ok(&env_for(&fake), &input(plan("2026-01-01T00:00:00Z", 6)));
    assert!(!format!("{out:?}").contains(TOKEN));
    for r in fake.requests() {
        assert!(!r.body.map(|b| b.to_string()).unwrap_or_default().contains(TOKEN));
        assert!(!r.path.contains(TOKEN) && !r.query.contains(TOKEN));
    }
    for (_, _, body) in fake.comments(out.pr_number.expect("pr")) {
        assert!(!body.contains(TOKEN));
    }
    fake.inject(Fault::new("GET", "/contents/", FaultKind::Status(500)).times(10));
    let err = publish_with(&env_for(&fake), &input(plan("2026-01-02T00:00:00Z", 7))).expect_err("500s");
    assert!(!err.to_string().contains(TOKEN), "{err}");
    assert!(err.to_string().contains("500"), "{err}");
}

#[test]
fn a_huge_summary_is_cut_to_githubs_comment_limit() {
    let fake = FakeGitHub::start();
    let mut big = input(plan("2026-01-01T00:00:00Z", 6));
    big.summary_md = format!("# Summary\n\n{}", "| web | 3 → 6 | ✅ |\n".repeat(12_000)); // ~230 kB
    let out = publish_ok(&env_for(&fake), &big);
    let comments = fake.comments(out.pr_number.expect("pr"));
    let body = &comments[0].2;
    assert!(body.chars().count() <= 65_536, "{}", body.chars().count());
    assert!(body.contains("was cut to fit"), "a notice says so");
    assert_eq!(sticky::digest_of(body), Some(out.plan_sha256.clone()));
    assert_eq!(fake.file(BRANCH, SUMMARY_PATH).as_deref(), Some(big.summary_md.as_str()), "the file keeps everything");
    assert_contract(&fake);
}

#[test]
fn github_enterprise_server_paths_and_paginated_comments_work() {
    let fake = FakeGitHub::start_with(Options { prefix: "/api/v3".into(), ..Options::default() });
    assert!(fake.api_url().ends_with("/api/v3"));
    let env = env_for(&fake);
    let first = publish_ok(&env, &input(plan("2026-01-01T00:00:00Z", 6)));
    let n = first.pr_number.expect("pr");
    // 250 comments after ours: finding it again needs three pages of 100 (Link: rel="next").
    for i in 0..250 {
        fake.comment_as(n, "alice", &format!("comment {i}"));
    }
    let changed = plan("2026-01-02T00:00:00Z", 10);
    publish_ok(&env, &input(changed.clone()));
    let pages = fake.requests().iter().filter(|r| r.method == "GET" && r.path.ends_with("/comments")).count();
    assert_eq!(pages, 3, "{}", log(&fake));
    let ours: Vec<_> = fake.comments(n).into_iter().filter(|c| c.1 == "infra-bot").collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(sticky::digest_of(&ours[0].2), Some(sha256(&changed)));
    assert_contract(&fake);
}

#[test]
fn a_branch_left_without_a_plan_is_taken_over() {
    let fake = FakeGitHub::start();
    fake.push_commit_as(BRANCH, "someone", &[("notes.txt", "left over\n")]);
    let out = publish_ok(&env_for(&fake), &input(plan("2026-01-01T00:00:00Z", 6)));
    let head = fake.branch_sha(BRANCH).expect("branch");
    assert_eq!(fake.commit(&head).expect("commit").0, vec![fake.branch_sha("main").expect("main")]);
    assert!(out.created_pr);
    assert_contract(&fake);
}

#[test]
fn reviewers_are_requested_and_a_non_collaborator_is_only_a_warning() {
    let fake = FakeGitHub::start();
    fake.set_role("alice", "write");
    let mut with_reviewers = input(plan("2026-01-01T00:00:00Z", 6));
    with_reviewers.reviewers = vec!["alice".into()];
    let out = publish_ok(&env_for(&fake), &with_reviewers);
    let pr = fake.pull(out.pr_number.expect("pr")).expect("pr");
    assert_eq!(pr["requested_reviewers"][0]["login"], "alice");

    let fake = FakeGitHub::start();
    with_reviewers.reviewers = vec!["stranger".into()];
    let out = publish_ok(&env_for(&fake), &with_reviewers);
    assert!(out.pr_number.is_some());
    assert!(out.warnings.iter().any(|w| w.contains("stranger")), "{:?}", out.warnings);
    assert_contract(&fake);
}

#[test]
fn bad_inputs_are_refused_before_any_request() {
    let fake = FakeGitHub::start();
    let mut bad = input(plan("2026-01-01T00:00:00Z", 6));
    bad.target = "Prod/../x".into();
    let err = publish_with(&env_for(&fake), &bad).expect_err("bad target");
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("--target"), "{err}");
    let mut bad = input(plan("2026-01-01T00:00:00Z", 6));
    bad.reviewers = vec!["al ice".into()];
    assert_eq!(publish_with(&env_for(&fake), &bad).expect_err("bad reviewer").exit_code(), 2);
    assert!(fake.requests().is_empty());
}

#[test]
fn a_pr_opened_meanwhile_by_a_concurrent_run_is_adopted() {
    let fake = FakeGitHub::start();
    let env = env_for(&fake);
    let first = publish_ok(&env, &input(plan("2026-01-01T00:00:00Z", 6)));
    // The lookup misses the PR (as if another run opened it a moment later): creating it then
    // fails with "already exists", and the existing PR is used.
    fake.inject(Fault::new("GET", "/pulls", FaultKind::Answer(200, serde_json::json!([]))));
    let out = publish_ok(&env, &input(plan("2026-01-02T00:00:00Z", 7)));
    assert_eq!(out.pr_number, first.pr_number, "{}", log(&fake));
    assert_eq!(fake.pulls().len(), 1, "{}", log(&fake));
    let refused: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/pulls"))
        .map(|r| r.status)
        .collect();
    assert_eq!(refused, vec![201, 422], "{}", log(&fake));
    assert_eq!(fake.comments(first.pr_number.expect("pr")).len(), 1);
    assert_contract(&fake);
}

#[test]
fn an_unreachable_api_is_reported_after_bounded_attempts() {
    let env = Env::from_pairs([
        ("GITHUB_API_URL", "http://127.0.0.1:1"),
        ("GITHUB_REPOSITORY", "octo-org/fleet"),
        ("GITHUB_TOKEN", "ghp_unused"),
        ("INFRA_SCALE_MAX_RETRY_WAIT", "0"),
    ]);
    let started = Instant::now();
    let err = publish_with(&env, &input(plan("2026-01-01T00:00:00Z", 6))).expect_err("no server");
    assert!(started.elapsed() < Duration::from_secs(20));
    let text = err.to_string();
    assert!(text.contains("no answer from GitHub after 4 attempt(s)"), "{text}");
    assert!(!text.contains("ghp_unused"), "{text}");
}

#[test]
fn a_rate_limit_that_never_lifts_ends_after_the_attempts() {
    let fake = FakeGitHub::start();
    fake.inject(Fault::new("GET", "/contents/", FaultKind::TooManyRequests { retry_after: 0 }).times(10));
    let err = publish_with(&env_for(&fake), &input(plan("2026-01-01T00:00:00Z", 6))).expect_err("limited");
    assert!(err.to_string().contains("rate limit still refused"), "{err}");
    assert_eq!(fake.requests().len(), 4, "{}", log(&fake));
}

// ---- Converged targets: closing the plan PR.

use infra_scale::github::publish::{CONVERGED_MARKER, converge_with};

fn converged_comments(fake: &FakeGitHub, number: u64) -> usize {
    fake.comments(number).iter().filter(|(_, _, body)| body.starts_with(CONVERGED_MARKER)).count()
}

#[test]
fn converge_closes_the_open_plan_pr_comments_once_and_deletes_the_branch() {
    let fake = FakeGitHub::start();
    let env = env_for(&fake);
    let published = publish_ok(&env, &input(plan("2026-01-01T00:00:00Z", 6)));
    let number = published.pr_number.expect("PR");

    // Closing fails (the token may not write pull requests) after the comment was posted.
    fake.inject(Fault::new("PATCH", "/pulls/", FaultKind::Forbidden("Resource not accessible by integration".into())));
    fake.clear_requests();
    let err = converge_with(&env, "prod", false).expect_err("closing was refused");
    assert!(err.to_string().contains("pull-requests: write"), "{err}");
    assert_eq!(converged_comments(&fake, number), 1);
    assert_eq!(fake.pull(number).expect("PR")["state"], "open");

    // The re-run finishes the job without a second comment.
    fake.clear_requests();
    let out = converge_with(&env, "prod", false).unwrap_or_else(|e| panic!("converge: {e}"));
    assert_eq!(out.closed_pr, Some(number));
    assert_eq!(converged_comments(&fake, number), 1, "one converged comment, not two");
    assert_eq!(fake.pull(number).expect("PR")["state"], "closed");
    assert_eq!(fake.branch_sha(BRANCH), None);
    assert_eq!(fake.counts().1, 2, "close and delete only:\n{}", log(&fake));
    assert_contract(&fake);
}

#[test]
fn converge_tolerates_a_branch_that_is_already_gone_and_ignores_other_prs() {
    let fake = FakeGitHub::start();
    let env = env_for(&fake);
    let published = publish_ok(&env, &input(plan("2026-01-01T00:00:00Z", 6)));
    let number = published.pr_number.expect("PR");
    // A PR from a fork's branch of the same name and a person's PR are not ours to close.
    let fork = fake.open_pull_as(BRANCH, "mallory");
    fake.set_pull_head_repo(fork, "mallory/fleet");
    let other = fake.open_pull_as("feature/x", "alice");

    // Our PR's branch was deleted by hand already: the PR is closed, the missing ref is fine.
    fake.inject(Fault::new(
        "DELETE",
        "/git/refs/",
        FaultKind::Answer(422, serde_json::json!({"message": "Reference does not exist", "status": "422"})),
    ));
    let out = converge_with(&env, "prod", false).unwrap_or_else(|e| panic!("converge: {e}"));
    assert_eq!(out.closed_pr, Some(number));
    assert_eq!(fake.pull(number).expect("PR")["state"], "closed");
    for n in [fork, other] {
        assert_eq!(fake.pull(n).expect("PR")["state"], "open", "#{n} is not ours");
    }

    // Nothing of ours is open any more: one read, no write.
    fake.clear_requests();
    let out = converge_with(&env, "prod", false).unwrap_or_else(|e| panic!("converge: {e}"));
    assert_eq!(out.closed_pr, None);
    assert_eq!(fake.counts(), (1, 0), "{}", log(&fake));
    assert_contract(&fake);
}

#[test]
fn converge_without_credentials_warns_or_fails_with_require_pr() {
    let out = converge_with(&Env::from_pairs(Vec::<(String, String)>::new()), "prod", false).expect("only a warning");
    assert_eq!(out.closed_pr, None);
    assert_eq!(out.api_requests, (0, 0));
    assert!(out.warnings.iter().any(|w| w.contains("converged") && w.contains("GITHUB_TOKEN")), "{:?}", out.warnings);
    let err = converge_with(&Env::from_pairs(Vec::<(String, String)>::new()), "prod", true).expect_err("--require-pr");
    assert!(err.to_string().contains("cannot be checked and closed"), "{err}");
}
