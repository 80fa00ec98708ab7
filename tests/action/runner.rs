//! A local runner for composite actions: executes `action.yml`'s steps the way the GitHub Actions
//! runner does, so the action's wiring is tested without GitHub.
//!
//! What it emulates (actions/runner behaviour, see the reference notes):
//! - inputs: the caller's `with:` values, else the input's `default` (itself an expression, e.g.
//!   `${{ github.token }}`); `required` is not enforced (the runner passes ''). Composite actions get
//!   no `INPUT_*` variables: inputs reach scripts only through `${{ inputs.x }}` in `env:`.
//! - `run:` steps with `shell: bash`, executed as `bash --noprofile --norc -eo pipefail {file}`, or
//!   a custom bash command line with `{0}` (e.g. `/usr/bin/env -u BASH_ENV … bash … {0}`),
//!   with `env:`, `if:` (`success()`, `failure()`, `always()`, comparisons), `working-directory:`.
//! - per-step files `GITHUB_OUTPUT`, `GITHUB_ENV`, `GITHUB_PATH`, `GITHUB_STEP_SUMMARY` in the
//!   runner's formats (`name=value`, `name<<DELIM` … `DELIM`; a missing delimiter fails the step);
//!   `GITHUB_ENV`/`GITHUB_PATH` carry over to later steps.
//! - the environment: `GITHUB_ACTION_PATH`, `GITHUB_EVENT_PATH`/`GITHUB_EVENT_NAME`, `GITHUB_WORKSPACE`,
//!   `RUNNER_TEMP`, `RUNNER_OS`, `RUNNER_ARCH`, `GITHUB_*` context values, `CI`, `GITHUB_ACTIONS`.
//! - workflow commands on stdout/stderr: `::add-mask::`, `::error`/`::warning`/`::notice`,
//!   `::stop-commands::TOKEN` … `::TOKEN::`.
//! - expressions `inputs.*`, `steps.<id>.outputs.*`/`.outcome`/`.conclusion`, `github.*` (including
//!   `github.event.*`), `env.*`, `runner.*`, string/number/boolean literals, `!`, `==`, `!=`, `&&`, `||`.
//! - action outputs: `outputs.<name>.value` evaluated after the steps.
//!
//! Anything else (a nested `uses:`, another shell, an unknown function) panics: the harness never
//! silently pretends to support it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

/// One workflow-command annotation (`::error title=…::message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub level: String,
    pub properties: String,
    pub message: String,
}

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    Success,
    Failure,
    Skipped,
}

/// What one step did.
#[derive(Debug, Clone)]
pub struct StepRecord {
    pub id: Option<String>,
    pub name: String,
    pub outcome: StepOutcome,
    pub exit_code: Option<i32>,
    pub outputs: BTreeMap<String, String>,
    pub stdout: String,
    pub stderr: String,
}

/// What the action did as a whole.
#[derive(Debug, Clone)]
pub struct ActionRun {
    pub steps: Vec<StepRecord>,
    /// The action's outputs (`outputs.<name>.value`).
    pub outputs: BTreeMap<String, String>,
    /// Every step's `GITHUB_STEP_SUMMARY`, concatenated.
    pub summary: String,
    /// Every line every step printed (stdout then stderr, per step), without `::add-mask::` lines.
    pub log: String,
    pub masks: Vec<String>,
    pub annotations: Vec<Annotation>,
    /// True when no step failed.
    pub success: bool,
}

impl ActionRun {
    pub fn output(&self, name: &str) -> &str {
        self.outputs.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn errors(&self) -> Vec<&str> {
        self.annotations.iter().filter(|a| a.level == "error").map(|a| a.message.as_str()).collect()
    }
}

/// The job around the action: context values, environment, event, directories.
#[derive(Debug, Clone)]
pub struct Job {
    /// `with:` of the step that uses the action.
    pub inputs: BTreeMap<String, String>,
    /// `env:` of the job and of the step that uses the action.
    pub env: BTreeMap<String, String>,
    /// The `github` context, except `event` (e.g. token, repository, run_id, server_url, api_url).
    pub github: BTreeMap<String, String>,
    pub event_name: String,
    pub event: Json,
    pub workspace: PathBuf,
    pub runner_temp: PathBuf,
    pub runner_os: String,
    pub runner_arch: String,
    /// `PATH` the steps start with.
    pub path: String,
}

impl Job {
    /// A job in `workspace`, with `runner_temp`, on Linux/X64, on a `workflow_dispatch` event.
    pub fn new(workspace: &Path, runner_temp: &Path) -> Self {
        let github = [
            ("token", "ghs_harness_token_0000"),
            ("repository", "octo/infra"),
            ("repository_owner", "octo"),
            ("run_id", "4242"),
            ("run_attempt", "1"),
            ("server_url", "https://github.example"),
            ("api_url", "http://127.0.0.1:9"),
            ("sha", "0123456789abcdef0123456789abcdef01234567"),
            ("ref", "refs/heads/main"),
            ("workflow", "harness"),
            ("actor", "octocat"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Self {
            inputs: BTreeMap::new(),
            env: BTreeMap::new(),
            github,
            event_name: "workflow_dispatch".into(),
            event: serde_json::json!({}),
            workspace: workspace.to_path_buf(),
            runner_temp: runner_temp.to_path_buf(),
            runner_os: "Linux".into(),
            runner_arch: "X64".into(),
            path: std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
        }
    }

    pub fn input(mut self, name: &str, value: &str) -> Self {
        self.inputs.insert(name.into(), value.into());
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }
}

/// A composite action loaded from `<dir>/action.yml`.
pub struct Action {
    dir: PathBuf,
    doc: Yaml,
}

impl Action {
    pub fn load(dir: &Path) -> Self {
        let text = std::fs::read_to_string(dir.join("action.yml")).expect("read action.yml");
        let doc: Yaml = serde_yaml::from_str(&text).expect("action.yml is YAML");
        assert_eq!(str_at(&doc, &["runs", "using"]), Some("composite"), "only composite actions are supported");
        Self { dir: dir.to_path_buf(), doc }
    }

    pub fn doc(&self) -> &Yaml {
        &self.doc
    }

    /// The `run:` steps as (id, name, env, run) for static checks.
    pub fn steps(&self) -> Vec<&Yaml> {
        match self.doc.get("runs").and_then(|r| r.get("steps")) {
            Some(Yaml::Sequence(steps)) => steps.iter().collect(),
            _ => Vec::new(),
        }
    }

    /// Runs every step like the runner and returns what happened.
    pub fn run(&self, job: &Job) -> ActionRun {
        let harness_dir = job.runner_temp.join("_harness");
        std::fs::create_dir_all(&harness_dir).expect("harness dir");
        let event_path = harness_dir.join("event.json");
        std::fs::write(&event_path, serde_json::to_vec_pretty(&job.event).expect("event")).expect("write event");

        let mut github = serde_json::Map::new();
        for (k, v) in &job.github {
            github.insert(k.clone(), Json::String(v.clone()));
        }
        github.insert("action_path".into(), Json::String(self.dir.display().to_string()));
        github.insert("workspace".into(), Json::String(job.workspace.display().to_string()));
        github.insert("event_name".into(), Json::String(job.event_name.clone()));
        github.insert("event_path".into(), Json::String(event_path.display().to_string()));
        github.insert("event".into(), job.event.clone());
        let mut ctx = Context {
            github: Json::Object(github),
            env: job.env.clone(),
            runner: serde_json::json!({
                "os": job.runner_os, "arch": job.runner_arch, "temp": job.runner_temp.display().to_string(),
            }),
            inputs: BTreeMap::new(),
            steps: BTreeMap::new(),
            failed: false,
            extra: BTreeMap::new(),
        };
        // Inputs: given values, else defaults (evaluated); only declared inputs exist.
        if let Some(Yaml::Mapping(decl)) = self.doc.get("inputs") {
            for (name, spec) in decl {
                let name = name.as_str().expect("input name").to_string();
                let value = match job.inputs.get(&name) {
                    Some(v) => v.clone(),
                    None => spec.get("default").map(|d| ctx.interpolate(&scalar(d))).unwrap_or_default(),
                };
                ctx.inputs.insert(name, value);
            }
        }
        for name in job.inputs.keys() {
            assert!(ctx.inputs.contains_key(name), "input `{name}` is not declared in action.yml");
        }

        let mut carried_env: BTreeMap<String, String> = BTreeMap::new();
        let mut extra_path: Vec<String> = Vec::new();
        let mut run = ActionRun {
            steps: Vec::new(),
            outputs: BTreeMap::new(),
            summary: String::new(),
            log: String::new(),
            masks: Vec::new(),
            annotations: Vec::new(),
            success: true,
        };
        for (index, step) in self.steps().into_iter().enumerate() {
            assert!(step.get("uses").is_none(), "nested `uses:` is not supported by the harness");
            let id = step.get("id").and_then(Yaml::as_str).map(str::to_string);
            let name = step.get("name").and_then(Yaml::as_str).unwrap_or("(unnamed)").to_string();
            let condition = step.get("if").map(scalar).unwrap_or_else(|| "success()".into());
            if !truthy(&ctx.evaluate_condition(&condition)) {
                let record = StepRecord {
                    id: id.clone(),
                    name,
                    outcome: StepOutcome::Skipped,
                    exit_code: None,
                    outputs: BTreeMap::new(),
                    stdout: String::new(),
                    stderr: String::new(),
                };
                ctx.record_step(&record);
                run.steps.push(record);
                continue;
            }
            let shell = step.get("shell").and_then(Yaml::as_str).expect("a composite run step needs `shell:`");
            // `bash` is `bash --noprofile --norc -eo pipefail {0}`; a custom shell is a command line
            // whose `{0}` is the script file (actions/runner ScriptHandlerHelpers).
            let shell_words: Vec<String> = if shell == "bash" {
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "{0}"].map(String::from).to_vec()
            } else {
                assert!(shell.contains("{0}") && shell.contains("bash"), "only bash shells are emulated: {shell}");
                shell.split_whitespace().map(String::from).collect()
            };
            let body = ctx.interpolate(step.get("run").and_then(Yaml::as_str).expect("run step"));
            let script = harness_dir.join(format!("step-{index}.sh"));
            std::fs::write(&script, &body).expect("write step script");

            let files = ["output", "env", "path", "summary"].map(|f| harness_dir.join(format!("{f}-{index}")));
            for f in &files {
                std::fs::write(f, "").expect("create step file");
            }
            let mut env: BTreeMap<String, String> = BTreeMap::new();
            env.insert("HOME".into(), job.runner_temp.join("_home").display().to_string());
            env.insert("LANG".into(), "C.UTF-8".into());
            env.insert("CI".into(), "true".into());
            env.insert("GITHUB_ACTIONS".into(), "true".into());
            for (k, v) in &job.github {
                env.insert(format!("GITHUB_{}", k.to_uppercase()), v.clone());
            }
            env.remove("GITHUB_TOKEN"); // the runner never exports the token by itself
            env.insert("GITHUB_ACTION_PATH".into(), self.dir.display().to_string());
            env.insert("GITHUB_WORKSPACE".into(), job.workspace.display().to_string());
            env.insert("GITHUB_EVENT_NAME".into(), job.event_name.clone());
            env.insert("GITHUB_EVENT_PATH".into(), event_path.display().to_string());
            env.insert("RUNNER_TEMP".into(), job.runner_temp.display().to_string());
            env.insert("RUNNER_OS".into(), job.runner_os.clone());
            env.insert("RUNNER_ARCH".into(), job.runner_arch.clone());
            env.insert("GITHUB_OUTPUT".into(), files[0].display().to_string());
            env.insert("GITHUB_ENV".into(), files[1].display().to_string());
            env.insert("GITHUB_PATH".into(), files[2].display().to_string());
            env.insert("GITHUB_STEP_SUMMARY".into(), files[3].display().to_string());
            env.extend(job.env.clone());
            env.extend(carried_env.clone());
            if let Some(Yaml::Mapping(step_env)) = step.get("env") {
                for (k, v) in step_env {
                    let k = k.as_str().expect("env name").to_string();
                    let v = ctx.interpolate(&scalar(v));
                    env.insert(k, v);
                }
            }
            let mut path = extra_path.iter().rev().cloned().collect::<Vec<_>>();
            path.push(job.path.clone());
            env.insert("PATH".into(), path.join(":"));
            let cwd = match step.get("working-directory") {
                Some(d) => job.workspace.join(ctx.interpolate(&scalar(d))),
                None => job.workspace.clone(),
            };

            let script_arg = script.display().to_string();
            let argv: Vec<String> = shell_words.iter().map(|w| w.replace("{0}", &script_arg)).collect();
            let out = Command::new(&argv[0])
                .args(&argv[1..])
                .env_clear()
                .envs(&env)
                .current_dir(&cwd)
                .output()
                .expect("run bash");
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            parse_commands(&stdout, &mut run);
            parse_commands(&stderr, &mut run);
            // The runner consumes `::add-mask::` lines: they never appear in the job log.
            for line in stdout.lines().chain(stderr.lines()).filter(|l| !l.starts_with("::add-mask::")) {
                run.log.push_str(line);
                run.log.push('\n');
            }

            let mut ok = out.status.success();
            let outputs = match parse_file_commands(&std::fs::read_to_string(&files[0]).expect("read GITHUB_OUTPUT")) {
                Ok(o) => o,
                Err(e) => {
                    run.annotations.push(Annotation { level: "error".into(), properties: String::new(), message: e });
                    ok = false;
                    BTreeMap::new()
                }
            };
            match parse_file_commands(&std::fs::read_to_string(&files[1]).expect("read GITHUB_ENV")) {
                Ok(e) => {
                    for (k, v) in e {
                        ctx.env.insert(k.clone(), v.clone());
                        carried_env.insert(k, v);
                    }
                }
                Err(e) => {
                    run.annotations.push(Annotation { level: "error".into(), properties: String::new(), message: e });
                    ok = false;
                }
            }
            extra_path.extend(
                std::fs::read_to_string(&files[2])
                    .expect("read GITHUB_PATH")
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_string),
            );
            run.summary.push_str(&std::fs::read_to_string(&files[3]).expect("read GITHUB_STEP_SUMMARY"));

            let record = StepRecord {
                id,
                name,
                outcome: if ok { StepOutcome::Success } else { StepOutcome::Failure },
                exit_code: out.status.code(),
                outputs,
                stdout,
                stderr,
            };
            if !ok {
                ctx.failed = true;
                run.success = false;
            }
            ctx.record_step(&record);
            run.steps.push(record);
        }

        if let Some(Yaml::Mapping(decl)) = self.doc.get("outputs") {
            for (name, spec) in decl {
                let name = name.as_str().expect("output name").to_string();
                let value = spec.get("value").map(|v| ctx.interpolate(&scalar(v))).unwrap_or_default();
                run.outputs.insert(name, value);
            }
        }
        run
    }
}

fn str_at<'a>(doc: &'a Yaml, path: &[&str]) -> Option<&'a str> {
    let mut v = doc;
    for p in path {
        v = v.get(*p)?;
    }
    v.as_str()
}

/// A YAML scalar as the runner sees it (booleans and numbers as their text).
pub fn scalar(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Null => String::new(),
        other => panic!("expected a scalar, found {other:?}"),
    }
}

/// The runner's file-command parser (testkit's copy of `FileCommandManager.cs`), as a map.
pub fn parse_file_commands(text: &str) -> Result<BTreeMap<String, String>, String> {
    testkit::actions::parse_file_commands(text).map(|pairs| pairs.into_iter().collect())
}

/// Workflow commands in a step's output.
fn parse_commands(text: &str, run: &mut ActionRun) {
    let mut stopped: Option<String> = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("::") else { continue };
        let Some(end) = rest.find("::") else { continue };
        let (head, message) = (&rest[..end], &rest[end + 2..]);
        if let Some(token) = &stopped {
            if head == token {
                stopped = None;
            }
            continue;
        }
        let (command, properties) = head.split_once(' ').unwrap_or((head, ""));
        let message = unescape(message);
        match command {
            "add-mask" => run.masks.push(message),
            "stop-commands" => stopped = Some(message),
            "error" | "warning" | "notice" => run.annotations.push(Annotation {
                level: command.to_string(),
                properties: properties.to_string(),
                message,
            }),
            _ => {}
        }
    }
}

fn unescape(s: &str) -> String {
    s.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")
}

fn truthy(v: &Json) -> bool {
    match v {
        Json::Null => false,
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Json::String(s) => !s.is_empty(),
        _ => true,
    }
}

fn to_text(v: &Json) -> String {
    match v {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

struct Context {
    github: Json,
    env: BTreeMap<String, String>,
    runner: Json,
    inputs: BTreeMap<String, String>,
    steps: BTreeMap<String, Json>,
    failed: bool,
    /// Further contexts of a workflow (`needs`, `vars`, `secrets`, `job`).
    extra: BTreeMap<String, Json>,
}

/// Evaluates an expression against named contexts (`github`, `needs`, `steps`, `vars`, …), for
/// the workflow emulation in `workflow.rs`.
pub fn evaluate_with(contexts: &BTreeMap<String, Json>, expr: &str) -> Json {
    context_from(contexts).evaluate_condition(expr)
}

/// Replaces every `${{ expr }}` in `text`, against named contexts.
pub fn interpolate_with(contexts: &BTreeMap<String, Json>, text: &str) -> String {
    context_from(contexts).interpolate(text)
}

/// Truthiness as the runner sees it.
pub fn is_truthy(v: &Json) -> bool {
    truthy(v)
}

fn context_from(contexts: &BTreeMap<String, Json>) -> Context {
    let mut extra = contexts.clone();
    let github = extra.remove("github").unwrap_or(Json::Null);
    let runner = extra.remove("runner").unwrap_or(Json::Null);
    let steps = match extra.remove("steps") {
        Some(Json::Object(m)) => m.into_iter().collect(),
        _ => BTreeMap::new(),
    };
    let env = match extra.remove("env") {
        Some(Json::Object(m)) => m.into_iter().map(|(k, v)| (k, to_text(&v))).collect(),
        _ => BTreeMap::new(),
    };
    Context { github, env, runner, inputs: BTreeMap::new(), steps, failed: false, extra }
}

impl Context {
    fn record_step(&mut self, record: &StepRecord) {
        let Some(id) = &record.id else { return };
        let outcome = match record.outcome {
            StepOutcome::Success => "success",
            StepOutcome::Failure => "failure",
            StepOutcome::Skipped => "skipped",
        };
        self.steps.insert(
            id.clone(),
            serde_json::json!({ "outputs": record.outputs, "outcome": outcome, "conclusion": outcome }),
        );
    }

    /// Replaces every `${{ expr }}` in `text` with the expression's value.
    fn interpolate(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 3..];
            let end = after.find("}}").unwrap_or_else(|| panic!("unterminated expression in `{text}`"));
            out.push_str(&to_text(&self.evaluate(after[..end].trim())));
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }

    /// An `if:` value: an expression with or without `${{ }}`.
    fn evaluate_condition(&self, condition: &str) -> Json {
        let c = condition.trim();
        match c.strip_prefix("${{").and_then(|c| c.strip_suffix("}}")) {
            Some(inner) => self.evaluate(inner.trim()),
            None => self.evaluate(c),
        }
    }

    fn evaluate(&self, expr: &str) -> Json {
        let tokens = tokenize(expr);
        let mut parser = Parser { tokens: &tokens, pos: 0, ctx: self, expr };
        let value = parser.or();
        assert!(parser.pos == tokens.len(), "unsupported expression `{expr}`");
        value
    }

    fn lookup(&self, path: &[String]) -> Json {
        let (root, rest) = path.split_first().expect("path");
        let base = match root.as_str() {
            "github" => self.github.clone(),
            "runner" => self.runner.clone(),
            "env" => serde_json::to_value(&self.env).expect("env"),
            "inputs" => serde_json::to_value(&self.inputs).expect("inputs"),
            "steps" => serde_json::to_value(&self.steps).expect("steps"),
            other => self.extra.get(other).cloned().unwrap_or_else(|| panic!("unsupported context `{other}`")),
        };
        let mut v = &base;
        for key in rest {
            match v.get(key) {
                Some(next) => v = next,
                None => return Json::Null,
            }
        }
        v.clone()
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Num(f64),
    Dot,
    LParen,
    RParen,
    Not,
    Comma,
    Eq,
    Ne,
    And,
    Or,
}

fn tokenize(expr: &str) -> Vec<Token> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        match c {
            ' ' | '\t' | '\n' => i += 1,
            '.' => {
                out.push(Token::Dot);
                i += 1
            }
            '(' => {
                out.push(Token::LParen);
                i += 1
            }
            ')' => {
                out.push(Token::RParen);
                i += 1
            }
            ',' => {
                out.push(Token::Comma);
                i += 1
            }
            _ if two == "==" => {
                out.push(Token::Eq);
                i += 2
            }
            _ if two == "!=" => {
                out.push(Token::Ne);
                i += 2
            }
            _ if two == "&&" => {
                out.push(Token::And);
                i += 2
            }
            _ if two == "||" => {
                out.push(Token::Or);
                i += 2
            }
            '!' => {
                out.push(Token::Not);
                i += 1
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    assert!(i < chars.len(), "unterminated string in `{expr}`");
                    if chars[i] == '\'' {
                        if chars.get(i + 1) == Some(&'\'') {
                            s.push('\'');
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    s.push(chars[i]);
                    i += 1;
                }
                out.push(Token::Str(s));
            }
            _ if c.is_ascii_digit() => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                out.push(Token::Num(text.parse().expect("number")));
            }
            _ if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '-') {
                    i += 1;
                }
                out.push(Token::Ident(chars[start..i].iter().collect()));
            }
            _ => panic!("unsupported character `{c}` in expression `{expr}`"),
        }
    }
    out
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    ctx: &'a Context,
    expr: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn or(&mut self) -> Json {
        let mut left = self.and();
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            let right = self.and();
            left = if truthy(&left) { left } else { right };
        }
        left
    }

    fn and(&mut self) -> Json {
        let mut left = self.comparison();
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            let right = self.comparison();
            left = if truthy(&left) { right } else { left };
        }
        left
    }

    fn comparison(&mut self) -> Json {
        let left = self.unary();
        match self.peek() {
            Some(Token::Eq) | Some(Token::Ne) => {
                let negate = self.peek() == Some(&Token::Ne);
                self.pos += 1;
                let right = self.unary();
                // Expression comparisons are case-insensitive for strings.
                let equal = to_text(&left).to_lowercase() == to_text(&right).to_lowercase();
                Json::Bool(equal != negate)
            }
            _ => left,
        }
    }

    fn unary(&mut self) -> Json {
        if self.peek() == Some(&Token::Not) {
            self.pos += 1;
            return Json::Bool(!truthy(&self.unary()));
        }
        self.primary()
    }

    fn primary(&mut self) -> Json {
        let token =
            self.tokens.get(self.pos).cloned().unwrap_or_else(|| panic!("truncated expression `{}`", self.expr));
        self.pos += 1;
        match token {
            Token::Str(s) => Json::String(s),
            Token::Num(n) => serde_json::json!(n),
            Token::LParen => {
                let v = self.or();
                assert_eq!(self.peek(), Some(&Token::RParen), "missing `)` in `{}`", self.expr);
                self.pos += 1;
                v
            }
            Token::Ident(name) if self.peek() == Some(&Token::LParen) => {
                self.pos += 1;
                let mut args = Vec::new();
                while self.peek() != Some(&Token::RParen) {
                    args.push(self.or());
                    if self.peek() == Some(&Token::Comma) {
                        self.pos += 1;
                    }
                }
                self.pos += 1;
                let text = |i: usize| to_text(args.get(i).unwrap_or(&Json::Null)).to_lowercase();
                match name.as_str() {
                    // String functions compare case-insensitively, as GitHub's do.
                    "startsWith" => return Json::Bool(text(0).starts_with(&text(1))),
                    "endsWith" => return Json::Bool(text(0).ends_with(&text(1))),
                    "contains" => return Json::Bool(text(0).contains(&text(1))),
                    "format" => {
                        let mut out = to_text(&args[0]);
                        for (i, a) in args.iter().enumerate().skip(1) {
                            out = out.replace(&format!("{{{}}}", i - 1), &to_text(a));
                        }
                        return Json::String(out);
                    }
                    _ => assert!(args.is_empty(), "unsupported function `{name}` with arguments in `{}`", self.expr),
                }
                match name.as_str() {
                    "success" => Json::Bool(!self.ctx.failed),
                    "failure" => Json::Bool(self.ctx.failed),
                    "always" => Json::Bool(true),
                    "cancelled" => Json::Bool(false),
                    other => panic!("unsupported function `{other}()` in `{}`", self.expr),
                }
            }
            Token::Ident(name) if name == "true" => Json::Bool(true),
            Token::Ident(name) if name == "false" => Json::Bool(false),
            Token::Ident(name) if name == "null" => Json::Null,
            Token::Ident(root) => {
                let mut path = vec![root];
                while self.peek() == Some(&Token::Dot) {
                    self.pos += 1;
                    match self.tokens.get(self.pos) {
                        Some(Token::Ident(key)) => path.push(key.clone()),
                        other => panic!("unsupported property access {other:?} in `{}`", self.expr),
                    }
                    self.pos += 1;
                }
                self.ctx.lookup(&path)
            }
            other => panic!("unexpected {other:?} in `{}`", self.expr),
        }
    }
}
