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

/// Values to mask in a kubeconfig: every credential a `users[*].user` entry can hold, whatever
/// its YAML form (plain, single- or double-quoted, block scalar, flow style), exec plugin `args`
/// and `env` values included, plus the decoded body of `*-data` fields and the words of values
/// holding spaces. Text that is not YAML is masked line by line.
pub fn kubeconfig_masks(text: &str) -> Vec<String> {
    fn walk(key: &str, v: &serde_yaml::Value, out: &mut Vec<String>) {
        match v {
            serde_yaml::Value::Mapping(m) => {
                for (k, v) in m {
                    let k = k.as_str().unwrap_or_default();
                    // Names, not secrets: the plugin program, its API version, an env entry's name.
                    if !matches!(k, "command" | "apiVersion" | "interactiveMode" | "installHint" | "name") {
                        walk(k, v, out);
                    }
                }
            }
            serde_yaml::Value::Sequence(items) => items.iter().for_each(|i| walk(key, i, out)),
            serde_yaml::Value::String(s) => secret_value(key, s, out),
            serde_yaml::Value::Number(n) => secret_value(key, &n.to_string(), out),
            _ => {}
        }
    }
    fn secret_value(key: &str, value: &str, out: &mut Vec<String>) {
        let value = value.trim();
        let push = |out: &mut Vec<String>, v: &str| {
            if v.len() >= 4 && !out.iter().any(|o| o == v) {
                out.push(v.to_string());
            }
        };
        if key == "args" {
            // `--token=abc` masks `abc`; flags and word-like sub-commands (`eks`, `get-token`,
            // `--cluster-name`) are not secrets; any other positional of 8+ characters is.
            let wordlike = |v: &str| v.chars().all(|c| c.is_ascii_lowercase() || c == '-');
            match value.split_once('=') {
                Some((flag, v)) if flag.starts_with('-') => push(out, v),
                _ if value.starts_with('-') || value.len() < 8 || wordlike(value) => {}
                _ => push(out, value),
            }
            return;
        }
        push(out, value);
        if value.contains(char::is_whitespace) {
            value.split_whitespace().filter(|w| w.len() >= 8).for_each(|w| push(out, w));
        }
        if key.ends_with("-data") {
            use base64::Engine as _;
            let compact: String = value.split_whitespace().collect();
            if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()) {
                let decoded = String::from_utf8_lossy(&decoded).into_owned();
                for line in decoded.lines().map(str::trim) {
                    if line.len() >= 8 && !line.starts_with("-----") {
                        push(out, line);
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(doc) => {
            if let Some(users) = doc.get("users").and_then(|u| u.as_sequence()) {
                for u in users {
                    if let Some(user) = u.get("user") {
                        walk("user", user, &mut out);
                    }
                }
            }
        }
        Err(_) => text.lines().map(str::trim).filter(|l| l.len() >= 8).for_each(|l| out.push(l.to_string())),
    }
    out
}

/// Inside Actions, masks every credential in the kubeconfig files named by `KUBECONFIG`, before
/// anything else is printed (the masks escape `%`, CR and LF, so values holding them mask correctly).
pub fn mask_kubeconfig() {
    if !in_actions() {
        return;
    }
    let Some(paths) = std::env::var_os("KUBECONFIG") else { return };
    let mut stdout = std::io::stdout().lock();
    for path in std::env::split_paths(&paths) {
        if let Ok(text) = std::fs::read_to_string(&path) {
            for value in kubeconfig_masks(&text) {
                let _ = writeln!(stdout, "{}", add_mask(&value));
            }
        }
    }
    let _ = stdout.flush();
}

/// A diagnostic as it may be printed: inside Actions, text that could hold a workflow command
/// (`::` anywhere: plan values quoted in errors, kubectl's stderr, API messages) is fenced with
/// [`untrusted_block`], so no line of it is read as a command.
pub fn diagnostic(text: &str, in_actions: bool) -> String {
    if in_actions && text.contains("::") { untrusted_block("infra-scale: details", text) } else { text.to_string() }
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

    #[test]
    fn every_kubeconfig_credential_form_is_masked() {
        use base64::Engine as _;
        let pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIKeyMaterialLine0123456789\n-----END EC PRIVATE KEY-----\n";
        let key_data = base64::engine::general_purpose::STANDARD.encode(pem);
        let kubeconfig = format!(
            "apiVersion: v1\nusers:\n\
             - name: single\n  user:\n    token: 'single-quoted-token-1'\n\
             - name: double\n  user:\n    password: \"double quoted pass 2\"\n    username: admin-user\n\
             - name: block\n  user:\n    client-key-data: |\n      {key_data}\n\
             - name: flow\n  user: {{token: flow-style-token-3, client-certificate-data: Y2VydGlmaWNhdGU=}}\n\
             - name: pct\n  user:\n    token: \"100%secret%0Atoken\"\n\
             - name: exec\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n\
             \x20     args: [eks, get-token, --cluster-name, prod, \"--token=exec-arg-secret-4\", exec-positional-secret-5]\n\
             \x20     env:\n      - name: AWS_SECRET_ACCESS_KEY\n        value: exec-env-secret-6\n"
        );
        let masks = kubeconfig_masks(&kubeconfig);
        for secret in [
            "single-quoted-token-1",
            "double quoted pass 2",
            key_data.as_str(),
            "MHcCAQEEIKeyMaterialLine0123456789",
            "flow-style-token-3",
            "Y2VydGlmaWNhdGU=",
            "100%secret%0Atoken",
            "exec-arg-secret-4",
            "exec-positional-secret-5",
            "exec-env-secret-6",
            "admin-user",
        ] {
            assert!(masks.iter().any(|m| m == secret), "not masked: {secret}\n{masks:?}");
        }
        for not_secret in
            ["aws", "eks", "get-token", "--cluster-name", "AWS_SECRET_ACCESS_KEY", "client.authentication.k8s.io/v1"]
        {
            assert!(!masks.iter().any(|m| m == not_secret), "masked a non-secret: {not_secret}");
        }
        assert!(!masks.iter().any(|m| m.starts_with("-----")));
        // `%` survives the runner's unescaping.
        assert_eq!(add_mask("100%secret%0Atoken"), "::add-mask::100%25secret%250Atoken");
    }

    #[test]
    fn diagnostics_with_workflow_commands_are_fenced_in_actions() {
        let evil = "invalid plan: `x\n::add-mask::secret\n::error::forged`";
        let fenced = diagnostic(evil, true);
        let token = fenced.lines().nth(1).and_then(|l| l.strip_prefix("::stop-commands::")).expect("fenced");
        assert!(token.len() >= 16, "{fenced}");
        assert!(fenced.contains(&format!("::{token}::")));
        assert_eq!(diagnostic(evil, false), evil);
        assert_eq!(diagnostic("plain error", true), "plain error");
    }

    #[test]
    fn children_inherit_only_the_allowlist() {
        for ok in [
            "PATH",
            "HOME",
            "KUBECONFIG",
            "AWS_PROFILE",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "CLOUDSDK_CONFIG",
            "AZURE_CLIENT_ID",
            "LC_ALL",
        ] {
            assert!(child_may_inherit(ok, ""), "{ok}");
        }
        for no in [
            "GITHUB_TOKEN",
            "GH_TOKEN",
            "METRICS_KEY",
            "INFRA_SCALE_WEBHOOK_URL",
            "INPUT_KUBECONFIG",
            "IS_KUBECONFIG",
            "ACTIONS_RUNTIME_TOKEN",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
            "SOMETHING_ELSE",
        ] {
            assert!(!child_may_inherit(no, ""), "{no}");
        }
        assert!(child_may_inherit("VAULT_ADDR", "VAULT_ADDR, X"));
        assert!(!child_may_inherit("GITHUB_TOKEN", "GITHUB_TOKEN"), "never, whatever INFRA_SCALE_CHILD_ENV says");
    }

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
