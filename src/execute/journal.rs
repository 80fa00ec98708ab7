//! The JSON summary printed by `apply` (and written as results.json): the prototype's `ok`,
//! `executed`, `namespace`, `results` (one entry per action, in plan order: status, before,
//! desired, after, duration), plus what execution adds (drift, kubectl process count, artifact
//! paths, the automatic restore's own summary, the error). Also its Markdown form for the PR
//! report and the job summary.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::resolve::{Status, Step};

/// The summary of one preview or execution.
#[derive(Debug, Clone)]
pub struct Summary {
    pub ok: bool,
    pub executed: bool,
    pub namespace: String,
    pub context: String,
    /// Whether the cluster was changed (execution only).
    pub changed: Option<bool>,
    pub results: Vec<Step>,
    pub drift: Vec<String>,
    /// kubectl processes started (execution only).
    pub kubectl_calls: Option<usize>,
    pub duration_ms: Option<u64>,
    pub restore_plan: Option<String>,
    pub results_file: Option<String>,
    /// The automatic restore (`--rollback-on-failure`), when it ran.
    pub rollback: Option<Box<Summary>>,
    pub error: Option<String>,
    /// What a step did not do that its status might suggest (a paused Deployment's template changed,
    /// its pods did not), by [`Step::index`]; serialized as the result's `note`.
    pub notes: BTreeMap<usize, String>,
}

/// A result as serialized: the step, then its note when it has one.
#[derive(Serialize)]
struct Noted<'a> {
    #[serde(flatten)]
    step: &'a Step,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
}

/// The summary as serialized: its fields in order, each result with its note.
#[derive(Serialize)]
struct Out<'a> {
    ok: bool,
    executed: bool,
    namespace: &'a str,
    context: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    changed: Option<bool>,
    results: Vec<Noted<'a>>,
    #[serde(skip_serializing_if = "no_drift")]
    drift: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    kubectl_calls: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    restore_plan: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    results_file: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollback: Option<&'a Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

fn no_drift(drift: &&[String]) -> bool {
    drift.is_empty()
}

impl Serialize for Summary {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let results = self
            .results
            .iter()
            .map(|step| Noted { step, note: self.notes.get(&step.index).map(String::as_str) })
            .collect();
        Out {
            ok: self.ok,
            executed: self.executed,
            namespace: &self.namespace,
            context: &self.context,
            changed: self.changed,
            results,
            drift: &self.drift,
            kubectl_calls: self.kubectl_calls,
            duration_ms: self.duration_ms,
            restore_plan: self.restore_plan.as_deref(),
            results_file: self.results_file.as_deref(),
            rollback: self.rollback.as_deref(),
            error: self.error.as_deref(),
        }
        .serialize(serializer)
    }
}

impl Summary {
    pub fn new(executed: bool, namespace: &str, context: &str) -> Self {
        Summary {
            ok: true,
            executed,
            namespace: namespace.to_string(),
            context: context.to_string(),
            changed: None,
            results: Vec::new(),
            drift: Vec::new(),
            kubectl_calls: None,
            duration_ms: None,
            restore_plan: None,
            results_file: None,
            rollback: None,
            error: None,
            notes: BTreeMap::new(),
        }
    }

    /// Pretty JSON, as printed and written.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// How many actions ended in each status, e.g. `2 applied, 1 noop, 1 skipped`.
    pub fn counts(&self) -> String {
        let order = [
            (Status::Applied, "applied"),
            (Status::Noop, "noop"),
            (Status::Skipped, "skipped"),
            (Status::Failed, "failed"),
            (Status::Planned, "planned"),
            (Status::PassedThrough, "passed through"),
            (Status::Pending, "pending"),
        ];
        let parts: Vec<String> = order
            .iter()
            .filter_map(|(status, word)| {
                let n = self.results.iter().filter(|s| s.status == *status).count();
                (n > 0).then(|| format!("{n} {word}"))
            })
            .collect();
        parts.join(", ")
    }

    /// A Markdown table of the journal.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "**infra-scale apply** in `{}` (context `{}`): {}{}\n\n",
            self.namespace,
            self.context,
            if self.ok { "succeeded" } else { "failed" },
            if self.results.is_empty() { String::new() } else { format!(" ({})", self.counts()) }
        ));
        out.push_str("| action | object | status | before | after |\n|---|---|---|---|---|\n");
        for s in &self.results {
            let cell = |v: Option<&Value>| match v {
                None | Some(Value::Null) => "".to_string(),
                Some(v) => format!("`{}`", compact(v)),
            };
            let status = match &s.reason {
                Some(r) if s.status == Status::Skipped => format!("skipped: {}", r.replace('|', "\\|")),
                _ => {
                    serde_json::to_value(s.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
                }
            };
            out.push_str(&format!(
                "| {} | {}{} | {} | {} | {} |\n",
                s.action,
                s.object,
                s.container.as_ref().map(|c| format!(" ({c})")).unwrap_or_default(),
                status,
                cell(s.before.as_ref()),
                cell(s.after.as_ref()),
            ));
        }
        let notes: Vec<String> = self
            .results
            .iter()
            .filter_map(|s| self.notes.get(&s.index).map(|n| format!("- {}: {}\n", s.object, n.replace('|', "\\|"))))
            .collect();
        if !notes.is_empty() {
            out.push_str("\nNotes:\n");
            for n in notes {
                if !out.contains(&n) {
                    out.push_str(&n);
                }
            }
        }
        if !self.drift.is_empty() {
            out.push_str("\nDrift from the state the plan observed:\n");
            for d in &self.drift {
                out.push_str(&format!("- {d}\n"));
            }
        }
        if let Some(e) = &self.error {
            out.push_str(&format!("\n```\n{e}\n```\n"));
        }
        if let Some(r) = &self.rollback {
            out.push_str(&format!(
                "\nAutomatic restore: {} ({})\n",
                if r.ok { "succeeded" } else { "failed" },
                r.counts()
            ));
        }
        out
    }
}

/// One-line JSON with `"` dropped, for table cells.
fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default().replace('"', "").replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(index: usize, object: &str) -> Step {
        Step {
            index,
            action: "update_resources",
            object: object.into(),
            status: Status::Applied,
            container: Some("app".into()),
            reason: None,
            before: None,
            desired: Value::Null,
            after: None,
            duration_ms: 1,
            op: None,
        }
    }

    #[test]
    fn a_note_is_serialized_on_its_result_only_and_listed_in_the_markdown() {
        let mut s = Summary::new(true, "ns", "ctx");
        s.results = vec![step(0, "Deployment/web"), step(1, "StatefulSet/db")];
        s.notes.insert(1, "template updated; updateStrategy OnDelete: running pods keep".into());
        let v: Value = serde_json::from_str(&s.to_json()).expect("JSON");
        assert!(v["results"][0].get("note").is_none(), "{v}");
        assert_eq!(v["results"][1]["note"], "template updated; updateStrategy OnDelete: running pods keep");
        assert_eq!(v["results"][1]["object"], "StatefulSet/db");
        assert!(v.get("notes").is_none() && v.get("drift").is_none(), "{v}");
        let keys: Vec<&String> = v.as_object().map(|o| o.keys().collect()).unwrap_or_default();
        assert!(keys.contains(&&"results".to_string()) && keys.contains(&&"ok".to_string()));
        let text = s.to_json();
        assert!(text.find("\"changed\"").is_none() && text.find("\"ok\"") < text.find("\"results\""));
        assert!(s.markdown().contains("\nNotes:\n- StatefulSet/db: template updated; updateStrategy OnDelete"));
    }
}
