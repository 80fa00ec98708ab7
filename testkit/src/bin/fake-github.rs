//! `fake-github`: runs the fake GitHub REST API until killed (or until stdin closes with
//! `--until-stdin-closes`), for the action harness and for trying infra-scale by hand.
//!
//! Usage: `fake-github [--prefix /api/v3] [--owner O] [--repo R] [--identity user:LOGIN|actions|app:SLUG]
//!         [--role LOGIN=ROLE]... [--refuse-drafts] [--log PATH] [--until-stdin-closes]`
//!
//! Prints `GITHUB_API_URL=…`, `GITHUB_SERVER_URL=…`, `GITHUB_REPOSITORY=…` and `GITHUB_TOKEN=…`
//! on stdout once ready. With `--log`, appends one JSON line per request (method, path, query,
//! status, body) and one per contract violation (`{"violation": …}`) as they happen.

use std::io::{BufRead, Write};
use std::time::Duration;

use testkit::github::{FakeGitHub, Identity, Options};

const USAGE: &str = "usage: fake-github [--prefix /api/v3] [--owner O] [--repo R] [--identity user:LOGIN|actions|app:SLUG] [--role LOGIN=ROLE]... [--refuse-drafts] [--log PATH] [--until-stdin-closes]";

fn usage(message: &str) -> ! {
    eprintln!("error: {message}\n{USAGE}");
    std::process::exit(2);
}

fn main() {
    let mut options = Options::default();
    let mut roles = Vec::new();
    let mut refuse_drafts = false;
    let mut log = None;
    let mut until_stdin_closes = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") && f != "--role" => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value =
            || inline.clone().or_else(|| args.next()).unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--prefix" => options.prefix = value(),
            "--owner" => options.owner = value(),
            "--repo" => options.repo = value(),
            "--identity" => {
                let v = value();
                options.identity = match v.split_once(':') {
                    Some(("user", login)) => Identity::User(login.into()),
                    Some(("app", slug)) => Identity::App(slug.into()),
                    None if v == "actions" => Identity::ActionsBot,
                    _ => usage(&format!("--identity {v}: use user:LOGIN, actions or app:SLUG")),
                };
            }
            "--role" => {
                let v = value();
                let (login, role) = v.split_once('=').unwrap_or_else(|| usage(&format!("--role {v}: use LOGIN=ROLE")));
                roles.push((login.to_string(), role.to_string()));
            }
            "--refuse-drafts" => refuse_drafts = true,
            "--log" => log = Some(value()),
            "--until-stdin-closes" => until_stdin_closes = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => usage(&format!("unknown argument `{other}`")),
        }
    }
    if !options.prefix.is_empty() && !options.prefix.starts_with('/') {
        usage("--prefix must start with `/`");
    }
    let fake = FakeGitHub::start_with(options);
    for (login, role) in &roles {
        fake.set_role(login, role);
    }
    fake.refuse_drafts(refuse_drafts);
    let mut out = std::io::stdout();
    for (k, v) in fake.env() {
        let _ = writeln!(out, "{k}={v}");
    }
    let _ = out.flush();

    let mut file = log.map(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .unwrap_or_else(|e| usage(&format!("--log {p}: {e}")))
    });
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if until_stdin_closes {
        let done = done.clone();
        std::thread::spawn(move || {
            for _ in std::io::stdin().lock().lines() {}
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
    }
    let (mut seen, mut seen_violations) = (0, 0);
    loop {
        // Read the flag first: whatever was logged before stdin closed is written below.
        let stop = done.load(std::sync::atomic::Ordering::SeqCst);
        if let Some(f) = file.as_mut() {
            let requests = fake.requests();
            for r in &requests[seen.min(requests.len())..] {
                let line = serde_json::json!({"method": r.method, "path": r.path, "query": r.query, "status": r.status, "body": r.body});
                let _ = writeln!(f, "{line}");
            }
            seen = requests.len();
            let violations = fake.violations();
            for v in &violations[seen_violations.min(violations.len())..] {
                let _ = writeln!(f, "{}", serde_json::json!({"violation": v}));
            }
            seen_violations = violations.len();
        }
        if stop {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
