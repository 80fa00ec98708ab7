//! The fake GitHub answers like GitHub and holds clients to GitHub's contract: authentication,
//! headers, operations and request bodies from the official OpenAPI description, pagination.

use serde_json::{Value, json};
use testkit::github::{FakeGitHub, Options, TOKEN};

struct Answer {
    status: u16,
    link: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

fn call(fake: &FakeGitHub, method: &str, path: &str, body: Option<Value>, headers: &[(&str, &str)]) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let url = format!("{}{path}", fake.api_url());
    let mut req = http_request(method, &url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(body.map(|b| b.to_string()).unwrap_or_default()).expect("request");
    let mut resp = agent.run(req).expect("an answer");
    Answer {
        status: resp.status().as_u16(),
        link: resp.headers().get("link").map(|v| v.to_str().unwrap_or_default().to_string()),
        body: resp.body_mut().read_to_string().unwrap_or_default(),
    }
}

fn http_request(method: &str, url: &str) -> ureq::http::request::Builder {
    ureq::http::Request::builder().method(method).uri(url)
}

const AUTH: &str = "Bearer ghp_FakeGitHubToken0123456789abcdefABCDEF";

fn good_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Authorization", AUTH),
        ("Accept", "application/vnd.github+json"),
        ("X-GitHub-Api-Version", "2022-11-28"),
        ("User-Agent", "test"),
        ("Content-Type", "application/json"),
    ]
}

#[test]
fn the_token_constant_is_the_accepted_one() {
    assert_eq!(AUTH, format!("Bearer {TOKEN}"));
}

#[test]
fn authentication_is_required() {
    let fake = FakeGitHub::start();
    let a = call(&fake, "GET", "/repos/octo-org/fleet", None, &[("User-Agent", "t")]);
    assert_eq!(a.status, 401);
    assert_eq!(a.json()["message"], "Requires authentication");
    let a = call(&fake, "GET", "/repos/octo-org/fleet", None, &[("Authorization", "Bearer nope"), ("User-Agent", "t")]);
    assert_eq!(a.status, 401);
    assert_eq!(a.json()["message"], "Bad credentials");
    let a = call(&fake, "GET", "/repos/octo-org/fleet", None, &good_headers());
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["default_branch"], "main");
}

#[test]
fn missing_headers_are_contract_violations() {
    let fake = FakeGitHub::start();
    let a = call(&fake, "GET", "/repos/octo-org/fleet", None, &[("Authorization", AUTH), ("User-Agent", "t")]);
    assert_eq!(a.status, 200, "GitHub tolerates it, the fake records it");
    let v = fake.violations().join("\n");
    assert!(v.contains("X-GitHub-Api-Version") && v.contains("Accept"), "{v}");
    let a = call(
        &fake,
        "GET",
        "/repos/octo-org/fleet",
        None,
        &[("Authorization", AUTH), ("X-GitHub-Api-Version", "1999-01-01")],
    );
    assert_eq!(a.status, 400);
}

#[test]
fn bodies_are_validated_against_the_openapi_schema() {
    let fake = FakeGitHub::start();
    let a = call(
        &fake,
        "POST",
        "/repos/octo-org/fleet/pulls",
        Some(json!({"title": "t", "base": "main"})),
        &good_headers(),
    );
    assert_eq!(a.status, 422);
    assert!(a.json()["message"].as_str().unwrap_or_default().contains("head"), "{}", a.body);
    let a = call(
        &fake,
        "POST",
        "/repos/octo-org/fleet/git/refs",
        Some(json!({"ref": "refs/heads/x", "sha": 7})),
        &good_headers(),
    );
    assert_eq!(a.status, 422);
    let v = fake.violations();
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(v.iter().all(|x| x.contains("violates the OpenAPI schema")), "{v:?}");
}

#[test]
fn operations_outside_the_subset_are_violations() {
    let fake = FakeGitHub::start();
    let a = call(
        &fake,
        "PUT",
        "/repos/octo-org/fleet/contents/a.txt",
        Some(json!({"message": "m", "content": "eA=="})),
        &good_headers(),
    );
    assert_eq!(a.status, 404);
    assert!(fake.violations().iter().any(|v| v.contains("no such operation")), "{:?}", fake.violations());
}

#[test]
fn comments_are_paginated_with_link_headers_under_the_prefix() {
    let fake = FakeGitHub::start_with(Options { prefix: "/api/v3".into(), ..Options::default() });
    fake.push_commit_as("feature", "alice", &[("a.txt", "a\n")]);
    let n = fake.open_pull_as("feature", "alice");
    for i in 0..5 {
        fake.comment_as(n, "alice", &format!("c{i}"));
    }
    let a = call(&fake, "GET", &format!("/repos/octo-org/fleet/issues/{n}/comments?per_page=2"), None, &good_headers());
    assert_eq!(a.status, 200);
    assert_eq!(a.json().as_array().map(Vec::len), Some(2));
    let link = a.link.expect("Link header");
    let next = format!("<{}/repos/octo-org/fleet/issues/{n}/comments?page=2&per_page=2>; rel=\"next\"", fake.api_url());
    assert!(link.contains(&next), "{link}");
    assert!(link.contains("page=3&per_page=2>; rel=\"last\""), "{link}");
    let a = call(
        &fake,
        "GET",
        &format!("/repos/octo-org/fleet/issues/{n}/comments?per_page=2&page=3"),
        None,
        &good_headers(),
    );
    assert_eq!(a.json()[0]["body"], "c4");
}

#[test]
fn git_data_api_builds_one_commit_and_refuses_non_fast_forward_updates() {
    let fake = FakeGitHub::start();
    let h = good_headers();
    let branch = call(&fake, "GET", "/repos/octo-org/fleet/branches/main", None, &h).json();
    let tip = branch["commit"]["sha"].as_str().expect("sha").to_string();
    let tree = branch["commit"]["commit"]["tree"]["sha"].as_str().expect("tree").to_string();
    let t = call(
        &fake,
        "POST",
        "/repos/octo-org/fleet/git/trees",
        Some(
            json!({"base_tree": tree, "tree": [{"path": "x/y.txt", "mode": "100644", "type": "blob", "content": "hi\n"}]}),
        ),
        &h,
    );
    assert_eq!(t.status, 201, "{}", t.body);
    let c = call(
        &fake,
        "POST",
        "/repos/octo-org/fleet/git/commits",
        Some(json!({"message": "m", "tree": t.json()["sha"], "parents": [tip]})),
        &h,
    );
    assert_eq!(c.status, 201, "{}", c.body);
    let sha = c.json()["sha"].as_str().expect("sha").to_string();
    let r = call(
        &fake,
        "POST",
        "/repos/octo-org/fleet/git/refs",
        Some(json!({"ref": "refs/heads/topic/a", "sha": sha})),
        &h,
    );
    assert_eq!(r.status, 201);
    let again = call(
        &fake,
        "POST",
        "/repos/octo-org/fleet/git/refs",
        Some(json!({"ref": "refs/heads/topic/a", "sha": sha})),
        &h,
    );
    assert_eq!(again.status, 422);
    assert_eq!(again.json()["message"], "Reference already exists");
    assert_eq!(fake.file("topic/a", "x/y.txt").as_deref(), Some("hi\n"));
    assert_eq!(fake.file("topic/a", "README.md").as_deref(), Some("# fleet\n"), "base_tree kept");
    // Moving the branch back to main's tip is not a fast forward unless forced.
    let back = json!({"sha": fake.branch_sha("main"), "force": false});
    let p = call(&fake, "PATCH", "/repos/octo-org/fleet/git/refs/heads/topic/a", Some(back), &h);
    assert_eq!(p.status, 422);
    assert_eq!(p.json()["message"], "Update is not a fast forward");
    // Raw and base64 contents.
    let raw = call(
        &fake,
        "GET",
        "/repos/octo-org/fleet/contents/x/y.txt?ref=topic%2Fa",
        None,
        &[
            ("Authorization", AUTH),
            ("Accept", "application/vnd.github.raw+json"),
            ("X-GitHub-Api-Version", "2022-11-28"),
            ("User-Agent", "t"),
        ],
    );
    assert_eq!(raw.body, "hi\n");
    let b64 = call(&fake, "GET", "/repos/octo-org/fleet/contents/x/y.txt?ref=topic/a", None, &h);
    assert_eq!(b64.json()["content"], "aGkK");
    let missing = call(&fake, "GET", "/repos/octo-org/fleet/contents/x/y.txt?ref=nope", None, &h);
    assert_eq!(missing.json()["message"], "No commit found for the ref nope");
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}

#[test]
fn the_fake_github_binary_prints_its_settings_logs_requests_and_stops_with_stdin() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("requests.jsonl");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fake-github"))
        .args(["--prefix", "/api/v3", "--identity", "actions", "--role", "alice=write", "--until-stdin-closes"])
        .arg(format!("--log={}", log.display()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start fake-github");
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let settings: Vec<String> = (0..4).map(|_| lines.next().expect("line").expect("utf8")).collect();
    let api_url = settings[0].strip_prefix("GITHUB_API_URL=").expect("api url").to_string();
    assert!(api_url.ends_with("/api/v3"), "{api_url}");
    assert_eq!(settings[2], "GITHUB_REPOSITORY=octo-org/fleet");
    assert_eq!(settings[3], format!("GITHUB_TOKEN={TOKEN}"));

    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut req = ureq::http::Request::builder()
        .method("GET")
        .uri(format!("{api_url}/repos/octo-org/fleet/collaborators/alice/permission"));
    for (k, v) in good_headers() {
        req = req.header(k, v);
    }
    let mut resp = agent.run(req.body(String::new()).expect("req")).expect("answer");
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().expect("body")).expect("json");
    assert_eq!(body["role_name"], "write");

    drop(child.stdin.take()); // closing stdin stops it
    let status = child.wait().expect("wait");
    assert!(status.success());
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(logged.contains("/collaborators/alice/permission"), "{logged}");
}
