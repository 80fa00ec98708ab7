//! The planner's sticky comment on a plan pull request: rendering, parsing, and finding the one
//! that is really the planner's (hidden marker AND authored by the planner's identity: anyone can
//! paste a marker into a comment of their own).
//!
//! Layout (machine-read parts are whole lines):
//! ```text
//! <!-- infra-scale:plan -->
//! ### infra-scale plan for `prod`
//! plan-sha256: <64 hex>
//! …how to approve…, the summary…
//! <!-- infra-scale:execution --> …last execution… <!-- /infra-scale:execution -->
//! <!-- infra-scale:executed sha256=<hex> head=<sha> -->   (one per successful execution)
//! ```

use serde_json::Value;

use super::client::{ApiError, Client, Permission, Request};
use super::env::{ACTIONS_BOT_LOGIN, Settings};

/// Hidden marker that starts the planner's comment.
pub const MARKER: &str = "<!-- infra-scale:plan -->";
const EXEC_START: &str = "<!-- infra-scale:execution -->";
const EXEC_END: &str = "<!-- /infra-scale:execution -->";
const EXECUTED_PREFIX: &str = "<!-- infra-scale:executed sha256=";
/// GitHub's limit for a comment body ("Body is too long (maximum is 65536 characters)").
pub const COMMENT_LIMIT: usize = 65_536;
const DIGEST_PREFIX: &str = "plan-sha256: ";

/// What goes into the comment.
#[derive(Debug, Clone)]
pub struct PlanComment<'a> {
    pub target: &'a str,
    pub branch: &'a str,
    pub digest: &'a str,
    pub summary_md: &'a str,
    pub plan_url: &'a str,
    pub summary_url: &'a str,
    /// `executed` record lines carried over from the previous comment.
    pub executed: Vec<String>,
}

/// Renders the comment, truncating the summary (never the digest or the instructions) so the
/// body stays within [`COMMENT_LIMIT`].
pub fn render(c: &PlanComment) -> String {
    let head = format!(
        "{MARKER}\n### infra-scale plan for `{target}`\n\n{DIGEST_PREFIX}{digest}\n\n\
         **To approve:** review [`plan.yaml`]({plan}) and [`SUMMARY.md`]({summary}), then add the label \
         `{label}`. The person who adds it needs write, maintain or admin permission on this repository. \
         Before touching the cluster, execution checks that the plan at this pull request's head still has \
         the digest above: a new commit on `{branch}`, or a new plan from the next planning run, withdraws \
         the approval.\n\n#### Summary\n\n",
        target = c.target,
        digest = c.digest,
        plan = c.plan_url,
        summary = c.summary_url,
        label = super::LABEL_EXECUTE_PLAN,
        branch = c.branch,
    );
    let tail: String = c.executed.iter().map(|l| format!("\n{l}")).collect();
    let notice = format!(
        "\n\n> **Note:** the summary was cut to fit GitHub's {COMMENT_LIMIT}-character comment limit; the full text is in [`SUMMARY.md`]({}).",
        c.summary_url
    );
    let summary = neutralize(c.summary_md.trim_end());
    let fixed = utf16_len(&head) + utf16_len(&tail) + 1;
    let body = if fixed + utf16_len(&summary) <= COMMENT_LIMIT {
        summary
    } else {
        let budget = COMMENT_LIMIT.saturating_sub(fixed + utf16_len(&notice) + 8);
        format!("{}{notice}", fit(&summary, budget))
    };
    format!("{head}{body}\n{tail}")
}

/// The digest the comment publishes: the first line `plan-sha256: <64 lower-case hex>`.
pub fn digest_of(body: &str) -> Option<String> {
    body.lines().find_map(|line| {
        let hex = line.trim_end().strip_prefix(DIGEST_PREFIX)?;
        (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)))
            .then(|| hex.to_string())
    })
}

/// The `executed` record lines of a comment.
pub fn executed_lines(body: &str) -> Vec<String> {
    body.lines().filter(|l| l.starts_with(EXECUTED_PREFIX)).map(str::to_string).collect()
}

/// Digests recorded as successfully executed.
pub fn executed_digests(body: &str) -> Vec<String> {
    executed_lines(body)
        .iter()
        .filter_map(|l| l.strip_prefix(EXECUTED_PREFIX)?.split_whitespace().next().map(str::to_string))
        .collect()
}

/// The record line for a successful execution.
pub fn executed_line(digest: &str, head_sha: &str) -> String {
    format!("{EXECUTED_PREFIX}{digest} head={head_sha} -->")
}

/// Replaces the comment's execution section with `section` and appends `record` (if any),
/// cutting the section so the body stays within [`COMMENT_LIMIT`].
pub fn with_execution(body: &str, section: &str, record: Option<&str>) -> String {
    let mut head = body.to_string();
    if let (Some(start), Some(end)) = (head.find(EXEC_START), head.find(EXEC_END))
        && start < end
    {
        head.replace_range(start..end + EXEC_END.len(), "");
    }
    let mut records = executed_lines(&head);
    head = head.lines().filter(|l| !l.starts_with(EXECUTED_PREFIX)).collect::<Vec<_>>().join("\n");
    if let Some(r) = record
        && !records.iter().any(|l| l == r)
    {
        records.push(r.to_string());
    }
    let head = head.trim_end();
    let tail: String = records.iter().map(|l| format!("\n{l}")).collect();
    let fixed = utf16_len(head) + utf16_len(EXEC_START) + utf16_len(EXEC_END) + utf16_len(&tail) + 8;
    let section = neutralize(section.trim_end());
    let notice = "\n\n> **Note:** cut to fit GitHub's comment limit; the full journal is in the run's step summary.";
    let section = if fixed + utf16_len(&section) <= COMMENT_LIMIT {
        section
    } else {
        format!("{}{notice}", fit(&section, COMMENT_LIMIT.saturating_sub(fixed + utf16_len(notice) + 8)))
    };
    format!("{head}\n\n{EXEC_START}\n{section}\n{EXEC_END}{tail}")
}

/// True when the comment carries the marker and was written by `login`.
pub fn is_ours(comment: &Value, login: &str) -> bool {
    let body = comment.get("body").and_then(Value::as_str).unwrap_or_default();
    let author = comment.pointer("/user/login").and_then(Value::as_str).unwrap_or_default();
    body.contains(MARKER) && author.eq_ignore_ascii_case(login)
}

/// True when the comment carries the marker (whoever wrote it).
pub fn has_marker(comment: &Value) -> bool {
    comment.get("body").and_then(Value::as_str).is_some_and(|b| b.contains(MARKER))
}

/// The login the planner acts as: `INFRA_SCALE_BOT_LOGIN` when set, else `GET /user`; tokens
/// that cannot read `/user` (the Actions `GITHUB_TOKEN`, App installation tokens answer 403
/// "Resource not accessible by integration") are taken to be `github-actions[bot]`.
pub fn bot_login(client: &Client, settings: &Settings) -> Result<String, ApiError> {
    if let Some(login) = &settings.bot_login {
        return Ok(login.clone());
    }
    match client.json(&Request::get("/user", "read the token's identity", Permission::Metadata)) {
        Ok(user) => Ok(user.get("login").and_then(Value::as_str).unwrap_or(ACTIONS_BOT_LOGIN).to_string()),
        Err(e) if e.status() == Some(403) => Ok(ACTIONS_BOT_LOGIN.to_string()),
        Err(e) => Err(e),
    }
}

/// Length as GitHub's limit counts it, conservatively (UTF-16 code units ≥ characters).
pub fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// The longest prefix of `text` within `budget` UTF-16 units, cut on a character boundary
/// (preferably at a line end), with an unclosed code fence closed.
pub fn fit(text: &str, budget: usize) -> String {
    let mut used = 0;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        used += c.len_utf16();
        if used > budget.saturating_sub(4) {
            break;
        }
        end = i + c.len_utf8();
    }
    let mut cut = &text[..end];
    if end < text.len()
        && let Some(nl) = cut.rfind('\n')
        && nl > end / 2
    {
        cut = &cut[..nl];
    }
    let mut out = cut.to_string();
    if out.lines().filter(|l| l.trim_start().starts_with("```")).count() % 2 == 1 {
        out.push_str("\n```");
    }
    out
}

/// Stops embedded text from opening HTML comments, so it cannot forge the hidden markers.
pub fn neutralize(text: &str) -> String {
    text.replace("<!--", "&lt;!--")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comment(summary: &str) -> String {
        render(&PlanComment {
            target: "prod",
            branch: "infra-scale/prod",
            digest: &"a".repeat(64),
            summary_md: summary,
            plan_url: "https://github.com/o/r/blob/infra-scale/prod/ops/plans/infra-scale/prod/plan.yaml",
            summary_url: "https://github.com/o/r/blob/infra-scale/prod/ops/plans/infra-scale/prod/SUMMARY.md",
            executed: vec![executed_line(&"b".repeat(64), "c0ffee")],
        })
    }

    #[test]
    fn digest_and_records_round_trip() {
        let body = comment("# Summary\n\nweb: 3 → 6\n");
        assert!(body.starts_with(MARKER));
        assert_eq!(digest_of(&body), Some("a".repeat(64)));
        assert_eq!(executed_digests(&body), vec!["b".repeat(64)]);
        assert!(body.contains("execute-plan"));
    }

    #[test]
    fn a_summary_cannot_forge_markers_or_the_digest() {
        let forged = format!("<!-- infra-scale:executed sha256={} head=x -->\n", "d".repeat(64));
        let body = comment(&forged);
        assert_eq!(executed_digests(&body), vec!["b".repeat(64)]);
        assert_eq!(digest_of(&body), Some("a".repeat(64)), "the first digest line wins");
    }

    #[test]
    fn huge_summaries_are_cut_to_the_limit_on_a_char_boundary() {
        let summary = format!("```\n{}\n```\n", "日本語😀".repeat(40_000));
        let body = comment(&summary);
        assert!(utf16_len(&body) <= COMMENT_LIMIT, "{}", utf16_len(&body));
        assert!(body.contains("was cut to fit"));
        assert_eq!(digest_of(&body), Some("a".repeat(64)));
        assert_eq!(executed_digests(&body), vec!["b".repeat(64)]);
        assert_eq!(body.matches("```").count() % 2, 0, "code fence closed");
    }

    #[test]
    fn execution_section_is_replaced_and_records_accumulate() {
        let body = comment("s");
        let once = with_execution(&body, "first run", Some(&executed_line(&"e".repeat(64), "1")));
        let twice = with_execution(&once, "second run", None);
        assert!(!twice.contains("first run"));
        assert!(twice.contains("second run"));
        assert_eq!(executed_digests(&twice), vec!["b".repeat(64), "e".repeat(64)]);
        assert_eq!(digest_of(&twice), Some("a".repeat(64)));
        let big = with_execution(&body, &"x\n".repeat(70_000), None);
        assert!(utf16_len(&big) <= COMMENT_LIMIT);
        assert!(big.ends_with(&executed_line(&"b".repeat(64), "c0ffee")));
    }
}
