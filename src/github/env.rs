//! Settings for talking to GitHub, read from an explicit environment snapshot ([`Env`]) so that
//! tests can pass their own values instead of changing the process environment.
//!
//! | variable | use |
//! |---|---|
//! | `GITHUB_REPOSITORY`, or `GH_OWNER` + `GH_REPO` | the repository (`GH_*` win when both are set) |
//! | `GITHUB_TOKEN`, or `GH_TOKEN` | the token |
//! | `GITHUB_API_URL` | API base (default `https://api.github.com`; GHES `https://HOST/api/v3`) |
//! | `GITHUB_SERVER_URL` | web links (default `https://github.com`) |
//! | `GITHUB_EVENT_PATH`, `GITHUB_EVENT_NAME`, `GITHUB_REF` | the triggering event |
//! | `GITHUB_RUN_ID`, `GITHUB_RUN_ATTEMPT` | the link to the run |
//! | `GITHUB_STEP_SUMMARY` | the step summary file |
//! | `INFRA_SCALE_BOT_LOGIN` | the planner's login when `GET /user` cannot tell (App tokens: `<app-slug>[bot]`) |
//! | `INFRA_SCALE_PLANNER_ID` | the planner's numeric user id (a GitHub App's bot user: `GET /users/<app-slug>%5Bbot%5D`); the gate matches commits by it |
//! | `INFRA_SCALE_MAX_RETRY_WAIT` | longest wait, in seconds, for one retry (rate limits, 5xx); default 120 |
//! | `INFRA_SCALE_HTTP_TIMEOUT` | timeout, in seconds, of one HTTP request; default 30 |
//! | `INFRA_SCALE_GITHUB_API_VERSION` | `X-GitHub-Api-Version` (default `2022-11-28`) |

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::Repo;
use super::client::{ClientConfig, Token};
use crate::error::Result;

/// A snapshot of environment variables. Its `Debug` lists names only: values include the token.
#[derive(Clone, Default)]
pub struct Env(BTreeMap<String, String>);

impl Env {
    /// The current process environment (variables that are valid UTF-8).
    pub fn from_process() -> Env {
        Env(std::env::vars().collect())
    }

    /// An environment holding exactly these variables.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Env {
        Env(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    /// Sets one variable (builder style, for tests).
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Env {
        self.0.insert(key.to_string(), value.into());
        self
    }

    /// A variable's value, treating empty as unset (as the runner does with unset inputs).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str).filter(|v| !v.trim().is_empty())
    }
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// The identity GitHub Actions' own token acts as.
pub const ACTIONS_BOT_LOGIN: &str = "github-actions[bot]";

/// Everything publish, gate and report need to know about their GitHub context.
#[derive(Debug, Clone)]
pub struct Settings {
    pub api_url: String,
    pub server_url: String,
    pub repo: Option<Repo>,
    pub token: Option<Token>,
    /// Variables that are missing for a publication, named as the user would set them.
    pub missing: Vec<String>,
    pub notes: Vec<String>,
    pub bot_login: Option<String>,
    /// The planner's numeric user id (`INFRA_SCALE_PLANNER_ID`).
    pub planner_id: Option<u64>,
    pub max_retry_wait: Duration,
    pub timeout: Duration,
    pub api_version: String,
    /// `GITHUB_SERVER_URL/OWNER/REPO/actions/runs/ID`, when running in Actions.
    pub run_url: Option<String>,
    /// The default branch when the event says it, saving a request.
    pub default_branch_hint: Option<String>,
    pub event_path: Option<PathBuf>,
    pub event_name: Option<String>,
    pub step_summary: Option<PathBuf>,
}

impl Settings {
    /// Reads and checks the settings. Malformed values are [`Error::Invalid`]; missing
    /// credentials are listed in [`Settings::missing`] for the caller to decide.
    pub fn from_env(env: &Env) -> Result<Settings> {
        let mut problems = crate::error::Problems::default();
        let mut missing = Vec::new();
        let mut notes = Vec::new();

        let from_github_repository = env.get("GITHUB_REPOSITORY").map(str::trim);
        let owner = env.get("GH_OWNER").map(str::trim);
        let name = env.get("GH_REPO").map(str::trim);
        let repo = match (owner, name) {
            (Some(o), Some(n)) => {
                let text = format!("{o}/{n}");
                let repo = Repo::parse(&text);
                if repo.is_none() {
                    problems.push(
                        format!("GH_OWNER={o} GH_REPO={n}"),
                        format!("`{text}` is not a repository name"),
                        "GH_OWNER is a user or organization login, GH_REPO a repository name (letters, digits, `-`, `_`, `.`)",
                    );
                }
                if let (Some(r), Some(g)) = (&repo, from_github_repository)
                    && !r.full_name().eq_ignore_ascii_case(g)
                {
                    notes.push(format!("publishing to GH_OWNER/GH_REPO = {r}, not GITHUB_REPOSITORY = {g}"));
                }
                repo
            }
            (Some(_), None) | (None, Some(_)) if from_github_repository.is_none() => {
                missing.push(
                    if owner.is_some() { "GH_REPO (GH_OWNER is set)" } else { "GH_OWNER (GH_REPO is set)" }.into(),
                );
                None
            }
            _ => match from_github_repository {
                Some(text) => {
                    let repo = Repo::parse(text);
                    if repo.is_none() {
                        problems.push(
                            format!("GITHUB_REPOSITORY={text}"),
                            format!("`{text}` is not `owner/name`"),
                            "set GITHUB_REPOSITORY=owner/name (GitHub Actions sets it), or GH_OWNER and GH_REPO",
                        );
                    }
                    repo
                }
                None => {
                    missing.push("GITHUB_REPOSITORY (or GH_OWNER and GH_REPO)".into());
                    None
                }
            },
        };

        let token = env.get("GITHUB_TOKEN").or_else(|| env.get("GH_TOKEN")).and_then(|t| Token::new(t.trim()));
        if token.is_none() {
            missing.push("GITHUB_TOKEN (or GH_TOKEN)".into());
        }

        let api_url = url_setting(env, "GITHUB_API_URL", "https://api.github.com", &mut problems);
        let server_url = url_setting(env, "GITHUB_SERVER_URL", "https://github.com", &mut problems);
        let max_retry_wait = seconds_setting(env, "INFRA_SCALE_MAX_RETRY_WAIT", 120, &mut problems);
        let timeout = seconds_setting(env, "INFRA_SCALE_HTTP_TIMEOUT", 30, &mut problems);
        let api_version = env.get("INFRA_SCALE_GITHUB_API_VERSION").unwrap_or("2022-11-28").trim().to_string();
        if !api_version.chars().all(|c| c.is_ascii_digit() || c == '-') {
            problems.push(
                format!("INFRA_SCALE_GITHUB_API_VERSION={api_version}"),
                "not an API version date",
                "use a date such as 2022-11-28",
            );
        }
        let bot_login = env.get("INFRA_SCALE_BOT_LOGIN").map(|s| s.trim().to_string());
        let planner_id = env.get("INFRA_SCALE_PLANNER_ID").and_then(|text| match text.trim().parse::<u64>() {
            Ok(id) if id > 0 => Some(id),
            _ => {
                problems.push(
                    format!("INFRA_SCALE_PLANNER_ID={text}"),
                    "not a numeric user id",
                    "the planner's user id, e.g. 41898282 for github-actions[bot]; for a GitHub App, the `id` of GET /users/<app-slug>[bot]",
                );
                None
            }
        });

        let run_url = match (env.get("GITHUB_REPOSITORY"), env.get("GITHUB_RUN_ID")) {
            (Some(r), Some(id)) if Repo::parse(r).is_some() && id.chars().all(|c| c.is_ascii_digit()) => {
                let mut url = format!("{server_url}/{r}/actions/runs/{id}");
                if let Some(attempt) = env.get("GITHUB_RUN_ATTEMPT").filter(|a| a.chars().all(|c| c.is_ascii_digit())) {
                    url.push_str(&format!("/attempts/{attempt}"));
                }
                Some(url)
            }
            _ => None,
        };
        let event_path = env.get("GITHUB_EVENT_PATH").map(PathBuf::from);
        let event_name = env.get("GITHUB_EVENT_NAME").map(str::to_string);
        let default_branch_hint = repo.as_ref().and_then(|r| default_branch_hint(env, r, event_path.as_deref()));

        problems.finish(())?;
        Ok(Settings {
            api_url,
            server_url,
            repo,
            token,
            missing,
            notes,
            bot_login,
            planner_id,
            max_retry_wait,
            timeout,
            api_version,
            run_url,
            default_branch_hint,
            event_path,
            event_name,
            step_summary: env.get("GITHUB_STEP_SUMMARY").map(PathBuf::from),
        })
    }

    /// The client configuration, when a token is present.
    pub fn client_config(&self) -> Option<ClientConfig> {
        Some(ClientConfig {
            api_url: self.api_url.clone(),
            token: self.token.clone()?,
            api_version: self.api_version.clone(),
            max_retry_wait: self.max_retry_wait,
            timeout: self.timeout,
            attempts: 4,
        })
    }

    /// A web link to a file on a branch or commit.
    pub fn blob_url(&self, repo: &Repo, reference: &str, path: &str) -> String {
        format!("{}/{}/blob/{}/{}", self.server_url, repo.full_name(), reference, path)
    }
}

fn url_setting(env: &Env, key: &str, default: &str, problems: &mut crate::error::Problems) -> String {
    let value = env.get(key).unwrap_or(default).trim().trim_end_matches('/').to_string();
    let ok = (value.starts_with("https://") || value.starts_with("http://"))
        && !value.contains(|c: char| c.is_whitespace() || c == '?' || c == '#');
    if !ok {
        problems.push(format!("{key}={value}"), "not an http(s) URL", format!("for example {default}"));
    }
    value
}

fn seconds_setting(env: &Env, key: &str, default: u64, problems: &mut crate::error::Problems) -> Duration {
    match env.get(key) {
        None => Duration::from_secs(default),
        Some(text) => match text.trim().parse::<u64>() {
            Ok(n) => Duration::from_secs(n),
            Err(_) => {
                problems.push(
                    format!("{key}={text}"),
                    "not a whole number of seconds",
                    format!("for example {default}"),
                );
                Duration::from_secs(default)
            }
        },
    }
}

/// The default branch, when the Actions context states it for this repository: the event payload's
/// `repository.default_branch`, or `GITHUB_REF` of a `schedule` run (schedules always run on the
/// default branch; their payload has no `repository`).
fn default_branch_hint(env: &Env, repo: &Repo, event_path: Option<&std::path::Path>) -> Option<String> {
    let same_repo = env.get("GITHUB_REPOSITORY").is_some_and(|r| r.eq_ignore_ascii_case(&repo.full_name()));
    if let Some(path) = event_path
        && let Ok(text) = std::fs::read_to_string(path)
        && let Ok(event) = serde_json::from_str::<serde_json::Value>(&text)
    {
        let full_name = event.pointer("/repository/full_name").and_then(|v| v.as_str());
        let branch = event.pointer("/repository/default_branch").and_then(|v| v.as_str());
        if let (Some(full_name), Some(branch)) = (full_name, branch)
            && full_name.eq_ignore_ascii_case(&repo.full_name())
            && !branch.is_empty()
        {
            return Some(branch.to_string());
        }
    }
    if same_repo && env.get("GITHUB_EVENT_NAME") == Some("schedule") {
        return env.get("GITHUB_REF").and_then(|r| r.strip_prefix("refs/heads/")).map(str::to_string);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_from_github_repository_or_gh_owner_and_repo() {
        let s = Settings::from_env(&Env::from_pairs([("GITHUB_REPOSITORY", "a/b")])).expect("ok");
        assert_eq!(s.repo.map(|r| r.full_name()), Some("a/b".into()));
        let s = Settings::from_env(&Env::from_pairs([("GH_OWNER", "o"), ("GH_REPO", "r")])).expect("ok");
        assert_eq!(s.repo.map(|r| r.full_name()), Some("o/r".into()));
        let s = Settings::from_env(&Env::from_pairs([("GH_OWNER", "o")])).expect("ok");
        assert!(s.repo.is_none());
        assert!(s.missing.iter().any(|m| m.contains("GH_REPO")), "{:?}", s.missing);
        assert!(s.missing.iter().any(|m| m.contains("GITHUB_TOKEN")), "{:?}", s.missing);
        let err = Settings::from_env(&Env::from_pairs([("GITHUB_REPOSITORY", "not a repo")])).expect_err("invalid");
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("GITHUB_REPOSITORY"), "{err}");
    }

    #[test]
    fn urls_and_numbers_are_checked() {
        let err = Settings::from_env(&Env::from_pairs([("GITHUB_API_URL", "ftp://x")])).expect_err("bad");
        assert!(err.to_string().contains("GITHUB_API_URL"), "{err}");
        let err = Settings::from_env(&Env::from_pairs([("INFRA_SCALE_MAX_RETRY_WAIT", "soon")])).expect_err("bad");
        assert!(err.to_string().contains("INFRA_SCALE_MAX_RETRY_WAIT"), "{err}");
        let s = Settings::from_env(&Env::from_pairs([("GITHUB_API_URL", "https://ghe.example/api/v3/")])).expect("ok");
        assert_eq!(s.api_url, "https://ghe.example/api/v3");
    }

    #[test]
    fn debug_never_shows_values() {
        let env = Env::from_pairs([("GITHUB_TOKEN", "ghp_secretvalue")]);
        assert!(!format!("{env:?}").contains("secretvalue"));
        let s = Settings::from_env(&env).expect("ok");
        assert!(!format!("{s:?}").contains("secretvalue"));
    }

    #[test]
    fn default_branch_from_a_schedule_run_or_the_event_payload() {
        let env = Env::from_pairs([
            ("GITHUB_REPOSITORY", "o/r"),
            ("GITHUB_EVENT_NAME", "schedule"),
            ("GITHUB_REF", "refs/heads/trunk"),
        ]);
        assert_eq!(Settings::from_env(&env).expect("ok").default_branch_hint.as_deref(), Some("trunk"));
        let dir = tempfile::tempdir().expect("tmp");
        let event = dir.path().join("event.json");
        std::fs::write(&event, r#"{"repository":{"full_name":"o/r","default_branch":"develop"}}"#).expect("write");
        let env = Env::from_pairs([
            ("GITHUB_REPOSITORY", "o/r"),
            ("GITHUB_EVENT_NAME", "workflow_dispatch"),
            ("GITHUB_EVENT_PATH", event.to_str().expect("utf8")),
        ]);
        assert_eq!(Settings::from_env(&env).expect("ok").default_branch_hint.as_deref(), Some("develop"));
        // Another repository's payload says nothing about this one.
        let env = env.with("GH_OWNER", "x").with("GH_REPO", "y");
        assert_eq!(Settings::from_env(&env).expect("ok").default_branch_hint, None);
    }
}
