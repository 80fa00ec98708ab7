//! The GitHub Actions runner's files and workflow commands: step outputs (`GITHUB_OUTPUT`), the
//! step summary (`GITHUB_STEP_SUMMARY`), annotations, masking, and fencing of untrusted text.
//!
//! Formats follow the runner's parser (actions/runner `FileCommandManager.cs`) and
//! `@actions/core` (`file-command.ts`, `command.ts`): a `name=value` line ends at the first `\n`,
//! so any value holding a line break is written as a heredoc with a random delimiter that the
//! value is checked not to contain.

use std::collections::hash_map::RandomState;
use std::fs::OpenOptions;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};

/// GitHub's limit for one step's summary ("each step is restricted to a maximum size of 1MiB").
pub const STEP_SUMMARY_LIMIT: usize = 1024 * 1024;
/// Room kept free under [`STEP_SUMMARY_LIMIT`] for the truncation notice and other writers.
const STEP_SUMMARY_MARGIN: usize = 8 * 1024;

/// Writes step outputs to the file named by `GITHUB_OUTPUT`; does nothing when it is unset.
pub fn set_outputs(pairs: &[(&str, &str)]) -> anyhow::Result<()> {
    match std::env::var_os("GITHUB_OUTPUT") {
        Some(path) if !path.is_empty() => write_outputs(Path::new(&path), pairs),
        _ => Ok(()),
    }
}

/// Appends step outputs to `path` in the runner's file-command format.
pub fn write_outputs(path: &Path, pairs: &[(&str, &str)]) -> anyhow::Result<()> {
    let text = format_outputs(pairs)?;
    append(path, text.as_bytes())
        .with_context(|| format!("cannot write step outputs to GITHUB_OUTPUT ({})", path.display()))
}

/// Renders step outputs: `name=value` for single-line values, a heredoc with a random
/// `ghadelimiter_…` delimiter for values holding CR or LF. Everything is checked before anything
/// is returned, so a bad pair writes nothing.
pub fn format_outputs(pairs: &[(&str, &str)]) -> anyhow::Result<String> {
    let mut out = String::new();
    for (name, value) in pairs {
        check_output_name(name)?;
        if value.contains('\0') {
            bail!("step output `{name}` contains a NUL character; refusing to write it");
        }
        if !value.contains(['\n', '\r']) {
            out.push_str(&format!("{name}={value}\n"));
            continue;
        }
        let delimiter = loop {
            let candidate = format!("ghadelimiter_{}", random_hex());
            if !value.contains(&candidate) {
                break candidate;
            }
        };
        // The runner ends the value at a line that is exactly the delimiter, so the value must
        // end with a newline of its own before the closing delimiter.
        out.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
    }
    Ok(out)
}

fn check_output_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok {
        bail!("invalid step output name `{}`: use letters, digits, `_` and `-`", name.escape_debug());
    }
    Ok(())
}

/// Appends Markdown to the step summary named by `GITHUB_STEP_SUMMARY`; does nothing when unset.
pub fn append_step_summary(markdown: &str) -> anyhow::Result<()> {
    match std::env::var_os("GITHUB_STEP_SUMMARY") {
        Some(path) if !path.is_empty() => append_step_summary_to(Path::new(&path), markdown),
        _ => Ok(()),
    }
}

/// Appends Markdown to a step-summary file, keeping the file under GitHub's 1 MiB per-step limit:
/// text that does not fit is cut on a character boundary and a notice says so.
pub fn append_step_summary_to(path: &Path, markdown: &str) -> anyhow::Result<()> {
    let used = std::fs::metadata(path).map(|m| m.len() as usize).unwrap_or(0);
    let room = STEP_SUMMARY_LIMIT.saturating_sub(STEP_SUMMARY_MARGIN).saturating_sub(used);
    let mut text = String::with_capacity(markdown.len().min(room) + 200);
    if markdown.len() <= room {
        text.push_str(markdown);
    } else {
        let cut = floor_char_boundary(markdown, room);
        text.push_str(&markdown[..cut]);
        text.push_str(&format!(
            "\n\n> **Note:** truncated: {cut} of {} bytes shown (GitHub keeps at most 1 MiB of summary per step).\n",
            markdown.len()
        ));
    }
    if !text.ends_with('\n') {
        text.push('\n');
    }
    append(path, text.as_bytes())
        .with_context(|| format!("cannot write the step summary to GITHUB_STEP_SUMMARY ({})", path.display()))
}

fn append(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(bytes)?;
    file.flush()
}

/// The largest index `<= at` that is a char boundary of `s`.
pub fn floor_char_boundary(s: &str, at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    let mut i = at;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Variables every child process (kubectl and the exec plugins it starts) may see: what a shell,
/// kubectl, its proxies and TLS need, and the cloud SDKs' own variables that kubeconfig exec
/// plugins (`aws eks get-token`, `gke-gcloud-auth-plugin`, `kubelogin`) read.
const CHILD_ENV_NAMES: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TMPDIR",
    "TMP",
    "TEMP",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TERM",
    "KUBECONFIG",
    "KUBECACHEDIR",
    "KUBERC",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "USE_GKE_GCLOUD_AUTH_PLUGIN",
];
const CHILD_ENV_PREFIXES: &[&str] = &["LC_", "XDG_", "KUBECTL_", "AWS_", "GOOGLE_", "CLOUDSDK_", "AZURE_"];

/// Never passed to a child, whatever `INFRA_SCALE_CHILD_ENV` says.
fn child_must_not_inherit(name: &str) -> bool {
    matches!(name, "GITHUB_TOKEN" | "GH_TOKEN" | "METRICS_KEY" | "METRICS_URL" | "INFRA_SCALE_WEBHOOK_URL")
        || ["INPUT_", "IS_", "ACTIONS_", "GITHUB_", "SLACK_WEBHOOK"].iter().any(|p| name.starts_with(p))
}

/// Whether a child process may inherit the variable `name`: the allowlist above, plus the names
/// listed (comma-separated) in `extra` (`INFRA_SCALE_CHILD_ENV`, for an exec plugin that needs
/// its own variables). Never the GitHub token (`GITHUB_TOKEN`, `GH_TOKEN`), the metrics key or
/// URL, the webhook URL, the action's inputs (`INPUT_*`, `IS_*`), nor the runner's own
/// variables (`ACTIONS_*`, `GITHUB_*`).
pub fn child_may_inherit(name: &str, extra: &str) -> bool {
    !child_must_not_inherit(name)
        && (CHILD_ENV_NAMES.contains(&name)
            || CHILD_ENV_PREFIXES.iter().any(|p| name.starts_with(p))
            || extra.split(',').any(|e| e.trim() == name))
}

/// Clears a child's environment down to what [`child_may_inherit`] allows.
pub fn scrub_child_env(cmd: &mut std::process::Command) {
    let extra = std::env::var("INFRA_SCALE_CHILD_ENV").unwrap_or_default();
    cmd.env_clear();
    for (name, value) in std::env::vars_os() {
        if name.to_str().is_some_and(|n| child_may_inherit(n, &extra)) {
            cmd.env(name, value);
        }
    }
}

/// True when running inside GitHub Actions.
pub fn in_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// Escapes a workflow-command message (`@actions/core` `escapeData`).
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escapes a workflow-command property value (`@actions/core` `escapeProperty`).
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// Renders a workflow command line: `::name key=value,…::message`.
pub fn command(name: &str, properties: &[(&str, &str)], message: &str) -> String {
    let mut line = format!("::{name}");
    for (i, (key, value)) in properties.iter().enumerate() {
        line.push(if i == 0 { ' ' } else { ',' });
        line.push_str(&format!("{key}={}", escape_property(value)));
    }
    line.push_str("::");
    line.push_str(&escape_data(message));
    line
}

/// The command that masks `value` in the rest of the job's log; issue it before the value could be printed.
pub fn add_mask(value: &str) -> String {
    command("add-mask", &[], value)
}

/// Wraps untrusted text (kubectl output, API error bodies, plan content) in a collapsed group
/// during which the runner ignores workflow commands, so `::…::` lines in it have no effect.
pub fn untrusted_block(title: &str, text: &str) -> String {
    let token = format!("infra-scale-{}", random_hex());
    let mut out = command("group", &[], title);
    out.push('\n');
    out.push_str(&format!("::stop-commands::{token}\n"));
    out.push_str(text);
    if !text.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("::{token}::\n::endgroup::"));
    out
}

/// GitHub shows at most 10 warning annotations per step; later ones are plain log lines.
const MAX_ANNOTATIONS: u64 = 10;
static WARNINGS: AtomicU64 = AtomicU64::new(0);

/// Prints a warning on stderr: a `::warning::` annotation inside Actions (the runner reads
/// workflow commands on stderr too), `warning: …` elsewhere.
pub fn warning(message: &str) {
    let n = WARNINGS.fetch_add(1, Ordering::Relaxed);
    if in_actions() && n < MAX_ANNOTATIONS {
        eprintln!("{}", command("warning", &[], message));
    } else {
        eprintln!("warning: {message}");
    }
}

/// 128 random bits as hex, from the standard library's randomly seeded hasher (no extra crate).
fn random_hex() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut words = [0u64; 2];
    for word in &mut words {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        h.write_u32(std::process::id());
        *word = h.finish();
    }
    format!("{:016x}{:016x}", words[0], words[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses an output file the way the runner does (testkit's `FileCommandManager.cs` copy).
    fn parse_like_runner(text: &str) -> Vec<(String, String)> {
        testkit::actions::parse_file_commands(text).expect("the runner accepts the file")
    }

    #[test]
    fn single_line_values_use_name_equals_value() {
        let text = format_outputs(&[("outputs_uri", "https://github.com/o/r/pull/1"), ("status", "awaiting_approval")])
            .expect("format");
        assert_eq!(text, "outputs_uri=https://github.com/o/r/pull/1\nstatus=awaiting_approval\n");
    }

    // Regression guard: a newline in a `name=value` value would end it early and let the rest of
    // the value set other outputs (CodeQL actions/envvar-injection).
    #[test]
    fn newlines_in_values_cannot_inject_other_outputs() {
        let evil = "x\nstatus=approved\nother<<EOF\nfoo\nEOF";
        let text = format_outputs(&[("summary", evil), ("status", "awaiting_approval")]).expect("format");
        let parsed = parse_like_runner(&text);
        assert_eq!(
            parsed,
            vec![("summary".to_string(), evil.to_string()), ("status".to_string(), "awaiting_approval".to_string())]
        );
    }

    #[test]
    fn carriage_returns_also_use_a_heredoc() {
        let text = format_outputs(&[("a", "one\rtwo")]).expect("format");
        assert!(text.starts_with("a<<ghadelimiter_"), "{text}");
    }

    #[test]
    fn a_value_holding_the_delimiter_prefix_still_round_trips() {
        let value = "ghadelimiter_\nghadelimiter_0000\n";
        let parsed = parse_like_runner(&format_outputs(&[("v", value)]).expect("format"));
        assert_eq!(parsed, vec![("v".to_string(), value.to_string())]);
    }

    #[test]
    fn bad_names_and_nul_are_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out");
        assert!(write_outputs(&path, &[("ok", "1"), ("bad name", "2")]).is_err());
        assert!(write_outputs(&path, &[("ok", "1"), ("x", "a\0b")]).is_err());
        assert!(write_outputs(&path, &[("a=b", "1")]).is_err());
        assert!(!path.exists(), "nothing may be written when one pair is bad");
        write_outputs(&path, &[("ok", "1")]).expect("write");
        write_outputs(&path, &[("ok2", "2")]).expect("append");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "ok=1\nok2=2\n");
    }

    #[test]
    fn step_summary_is_capped_at_one_mebibyte_on_a_char_boundary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("summary.md");
        append_step_summary_to(&path, "# first\n").expect("write");
        let big = "é".repeat(700_000); // 1.4 MB of two-byte characters
        append_step_summary_to(&path, &big).expect("write");
        let text = std::fs::read_to_string(&path).expect("valid UTF-8 after truncation");
        assert!(text.len() <= STEP_SUMMARY_LIMIT, "{} bytes", text.len());
        assert!(text.starts_with("# first\n"));
        assert!(text.contains("truncated"), "a notice says the summary was cut");
        // Once full, later appends still never cross the limit.
        append_step_summary_to(&path, &big).expect("write");
        assert!(std::fs::metadata(&path).expect("meta").len() as usize <= STEP_SUMMARY_LIMIT);
    }

    #[test]
    fn workflow_command_escaping_matches_actions_core() {
        assert_eq!(escape_data("50%\r\nnext"), "50%25%0D%0Anext");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
        assert_eq!(
            command("error", &[("file", "a,b.yaml"), ("title", "x:y")], "line1\nline2"),
            "::error file=a%2Cb.yaml,title=x%3Ay::line1%0Aline2"
        );
        assert_eq!(add_mask("s3cr%t"), "::add-mask::s3cr%25t");
    }

    #[test]
    fn untrusted_text_is_fenced_with_stop_commands() {
        let block = untrusted_block("kubectl output", "::set-env name=X::1\n");
        let lines: Vec<&str> = block.lines().collect();
        assert_eq!(lines[0], "::group::kubectl output");
        let token = lines[1].strip_prefix("::stop-commands::").expect("stop-commands");
        assert!(token.len() > 20);
        assert_eq!(lines[2], "::set-env name=X::1");
        assert_eq!(lines[3], format!("::{token}::"));
        assert_eq!(lines[4], "::endgroup::");
    }
}
