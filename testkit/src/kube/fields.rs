//! Field ownership, a small model of structured-merge-diff: which manager owns which leaf field, the
//! `managedFields` rendering, apply conflicts (409 without `force`), and removal of fields that an
//! apply manager stops applying when it is their sole owner (what makes an SSA rollback that omits a
//! leaf delete it). Lists with a merge key are keyed by it (`k:{"name":"app"}`); other lists are atomic.

use super::merge::merge_key;
use super::objects::now_rfc3339;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// A field path: `f:spec`, `k:{"name":"app"}`, and `.` for the existence of a keyed list item.
pub type Path = Vec<String>;

/// One conflict: the other manager, its API version, and the field (`.spec.replicas`).
#[derive(Clone, Debug)]
pub struct Conflict {
    pub manager: String,
    pub api_version: String,
    pub field: String,
}

#[derive(Clone, Debug)]
struct Entry {
    manager: String,
    operation: &'static str,
    api_version: String,
    subresource: Option<String>,
    time: String,
    fields: BTreeSet<Path>,
}

/// The ownership records of one object.
#[derive(Clone, Debug, Default)]
pub struct Ownership {
    entries: Vec<Entry>,
}

const SKIPPED_TOP: &[&str] = &["apiVersion", "kind", "status"];
const SKIPPED_META: &[&str] =
    &["name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink"];

/// Leaf paths of an object, without the fields nobody owns (type meta, name, server-set metadata, status).
pub fn field_set(obj: &Value) -> BTreeSet<Path> {
    let mut out = BTreeSet::new();
    if let Value::Object(m) = obj {
        for (k, v) in m {
            if SKIPPED_TOP.contains(&k.as_str()) {
                continue;
            }
            if k == "metadata" {
                if let Value::Object(meta) = v {
                    for (mk, mv) in meta {
                        if !SKIPPED_META.contains(&mk.as_str()) {
                            collect(mk, mv, &mut vec!["f:metadata".to_string(), format!("f:{mk}")], &mut out);
                        }
                    }
                }
                continue;
            }
            collect(k, v, &mut vec![format!("f:{k}")], &mut out);
        }
    }
    out
}

fn item_key(mkey: &str, item: &Value) -> Option<String> {
    let id = item.get(mkey)?;
    Some(format!("k:{}", json!({ mkey: id })))
}

fn collect(field: &str, v: &Value, prefix: &mut Path, out: &mut BTreeSet<Path>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                prefix.push(format!("f:{k}"));
                collect(k, child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) if merge_key(field).is_some() && !items.is_empty() => {
            let mkey = merge_key(field).unwrap_or("name");
            for item in items {
                let Some(ik) = item_key(mkey, item) else { continue };
                prefix.push(ik);
                prefix.push(".".to_string());
                out.insert(prefix.clone());
                prefix.pop();
                if let Value::Object(m) = item {
                    for (k, child) in m {
                        prefix.push(format!("f:{k}"));
                        collect(k, child, prefix, out);
                        prefix.pop();
                    }
                }
                prefix.pop();
            }
        }
        _ => {
            out.insert(prefix.clone());
        }
    }
}

/// The value at a path (`.` is the item itself).
pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for el in path {
        if el == "." {
            return Some(cur);
        }
        if let Some(f) = el.strip_prefix("f:") {
            cur = cur.get(f)?;
        } else if let Some(k) = el.strip_prefix("k:") {
            let want: Map<String, Value> = serde_json::from_str(k).ok()?;
            cur = cur.as_array()?.iter().find(|i| want.iter().all(|(wk, wv)| i.get(wk) == Some(wv)))?;
        }
    }
    Some(cur)
}

/// Removes the field at a path; a `.` path removes the list item.
fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else { return };
    if last == "." {
        let Some((item, list_path)) = parents.split_last() else { return };
        let Some(k) = item.strip_prefix("k:") else { return };
        let Ok(want) = serde_json::from_str::<Map<String, Value>>(k) else { return };
        if let Some(Value::Array(items)) = value_at_mut(obj, list_path) {
            items.retain(|i| !want.iter().all(|(wk, wv)| i.get(wk) == Some(wv)));
        }
        return;
    }
    if let (Some(f), Some(Value::Object(m))) = (last.strip_prefix("f:"), value_at_mut(obj, parents)) {
        m.remove(f);
    }
}

fn value_at_mut<'a>(obj: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut cur = obj;
    for el in path {
        if let Some(f) = el.strip_prefix("f:") {
            cur = cur.get_mut(f)?;
        } else if let Some(k) = el.strip_prefix("k:") {
            let want: Map<String, Value> = serde_json::from_str(k).ok()?;
            cur = cur.as_array_mut()?.iter_mut().find(|i| want.iter().all(|(wk, wv)| i.get(wk) == Some(wv)))?;
        }
    }
    Some(cur)
}

/// `.spec.template.spec.containers[name="app"].resources.limits.cpu`, as in conflict messages.
pub fn render_path(path: &[String]) -> String {
    let mut s = String::new();
    for el in path {
        if let Some(f) = el.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = el.strip_prefix("k:") {
            let want: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
            let parts: Vec<String> = want.iter().map(|(wk, wv)| format!("{wk}={wv}")).collect();
            s.push_str(&format!("[{}]", parts.join(",")));
        }
    }
    s
}

/// Leaf paths of an applied configuration, rendered, most specific `spec` fields first.
pub fn leaf_paths(config: &Value) -> Vec<String> {
    let set = field_set(config);
    let mut leaves: Vec<String> =
        set.iter().filter(|p| p.last().is_some_and(|l| l != ".")).map(|p| render_path(p)).collect();
    leaves.sort_by_key(|p| (!p.starts_with(".spec"), std::cmp::Reverse(p.len())));
    leaves
}

fn fields_v1(set: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for el in path {
            let next = cur.entry(el.clone()).or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(m) = next else { break };
            cur = m;
        }
    }
    Value::Object(root)
}

impl Ownership {
    /// Makes `manager` (operation Update) own every field of `obj`, as if it had written the object.
    pub fn own_all(&mut self, manager: &str, api_version: &str, obj: &Value) {
        let set = field_set(obj);
        for e in &mut self.entries {
            e.fields.retain(|p| !set.contains(p));
        }
        self.entries.retain(|e| !e.fields.is_empty());
        self.entries.push(Entry {
            manager: manager.to_string(),
            operation: "Update",
            api_version: api_version.to_string(),
            subresource: None,
            time: now_rfc3339(),
            fields: set,
        });
    }

    fn entry_mut(
        &mut self,
        manager: &str,
        operation: &'static str,
        api_version: &str,
        sub: Option<&str>,
    ) -> &mut Entry {
        let pos = self
            .entries
            .iter()
            .position(|e| e.manager == manager && e.operation == operation && e.subresource.as_deref() == sub);
        let i = match pos {
            Some(i) => i,
            None => {
                self.entries.push(Entry {
                    manager: manager.to_string(),
                    operation,
                    api_version: api_version.to_string(),
                    subresource: sub.map(str::to_string),
                    time: now_rfc3339(),
                    fields: BTreeSet::new(),
                });
                self.entries.len() - 1
            }
        };
        &mut self.entries[i]
    }

    /// Server-side apply by `manager` of `config` onto `live` (the object before the apply);
    /// `merged` is live ∪ config and gets the fields this manager stopped applying removed when no
    /// other manager owns them. Returns the conflicts (nothing is changed in ownership then).
    pub fn apply(
        &mut self,
        manager: &str,
        api_version: &str,
        config: &Value,
        live: &Value,
        merged: &mut Value,
        force: bool,
    ) -> Vec<Conflict> {
        let cfg = field_set(config);
        let mut conflicts = Vec::new();
        for e in self.entries.iter().filter(|e| e.manager != manager) {
            for p in cfg.iter().filter(|p| e.fields.contains(*p)) {
                if p.last().is_some_and(|l| l == ".") {
                    continue;
                }
                if value_at(live, p) != value_at(config, p) {
                    conflicts.push(Conflict {
                        manager: e.manager.clone(),
                        api_version: e.api_version.clone(),
                        field: render_path(p),
                    });
                }
            }
        }
        if !conflicts.is_empty() && !force {
            return conflicts;
        }
        if force {
            for e in self.entries.iter_mut().filter(|e| e.manager != manager) {
                for p in &cfg {
                    if p.last().is_some_and(|l| l != ".") && value_at(live, p) != value_at(config, p) {
                        e.fields.remove(p);
                    }
                }
            }
        }
        let previous =
            self.entries.iter().find(|e| e.manager == manager && e.operation == "Apply").map(|e| e.fields.clone());
        if let Some(previous) = previous {
            let others: BTreeSet<&Path> = self
                .entries
                .iter()
                .filter(|e| !(e.manager == manager && e.operation == "Apply"))
                .flat_map(|e| &e.fields)
                .collect();
            // Leaves first, then list items, so that an item the manager dropped goes as a whole.
            let mut dropped: Vec<&Path> = previous.iter().filter(|p| !cfg.contains(*p)).collect();
            dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in dropped {
                let shared = others.iter().any(|o| {
                    if p.last().is_some_and(|l| l == ".") { o.starts_with(&p[..p.len() - 1]) } else { o == &p }
                });
                if !shared {
                    remove_at(merged, p);
                    prune_empty_parents(merged, p, &others);
                }
            }
        }
        let changed_time = {
            let e = self.entry_mut(manager, "Apply", api_version, None);
            let changed = e.fields != cfg;
            e.fields = cfg;
            e.api_version = api_version.to_string();
            changed
        };
        if changed_time {
            self.entry_mut(manager, "Apply", api_version, None).time = now_rfc3339();
        }
        self.entries.retain(|e| !e.fields.is_empty());
        conflicts.clear();
        conflicts
    }

    /// A non-apply write by `manager`: the fields it changed become its own and leave other managers.
    pub fn update(&mut self, manager: &str, api_version: &str, sub: Option<&str>, before: &Value, after: &Value) {
        let fb = field_set(before);
        let fa = field_set(after);
        let changed: BTreeSet<Path> = fa
            .iter()
            .filter(|p| {
                !fb.contains(*p) || (p.last().is_some_and(|l| l != ".") && value_at(before, p) != value_at(after, p))
            })
            .cloned()
            .collect();
        let removed: BTreeSet<Path> = fb.difference(&fa).cloned().collect();
        if changed.is_empty() && removed.is_empty() {
            return;
        }
        for e in &mut self.entries {
            e.fields.retain(|p| !removed.contains(p));
            if e.manager != manager || e.operation != "Update" || e.subresource.as_deref() != sub {
                e.fields.retain(|p| !changed.contains(p));
            }
        }
        let e = self.entry_mut(manager, "Update", api_version, sub);
        e.fields.extend(changed);
        e.time = now_rfc3339();
        self.entries.retain(|e| !e.fields.is_empty());
    }

    /// `metadata.managedFields`.
    pub fn render(&self) -> Value {
        let entries: Vec<Value> = self
            .entries
            .iter()
            .map(|e| {
                let mut v = json!({
                    "manager": e.manager,
                    "operation": e.operation,
                    "apiVersion": e.api_version,
                    "time": e.time,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": fields_v1(&e.fields)
                });
                if let Some(s) = &e.subresource {
                    v["subresource"] = json!(s);
                }
                v
            })
            .collect();
        Value::Array(entries)
    }

    /// Managers with their operation, in order.
    #[cfg(test)]
    pub fn managers(&self) -> Vec<(String, String)> {
        self.entries.iter().map(|e| (e.manager.clone(), e.operation.to_string())).collect()
    }
}

fn prune_empty_parents(obj: &mut Value, path: &[String], owned: &BTreeSet<&Path>) {
    let mut end = path.len().saturating_sub(1);
    if path.last().is_some_and(|l| l == ".") {
        end = end.saturating_sub(1);
    }
    while end > 0 {
        let parent = &path[..end];
        if parent.last().is_some_and(|l| l.starts_with("k:")) {
            return;
        }
        let empty = value_at(obj, parent)
            .is_some_and(|v| v.as_object().is_some_and(Map::is_empty) || v.as_array().is_some_and(Vec::is_empty));
        if !empty || owned.iter().any(|o| o.as_slice() == parent) {
            return;
        }
        remove_at(obj, parent);
        end -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(cpu_limit: Option<&str>) -> Value {
        let mut resources = json!({"requests": {"cpu": "250m"}});
        if let Some(l) = cpu_limit {
            resources["limits"] = json!({"cpu": l});
        }
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"template": {"spec": {"containers": [{"name": "web", "resources": resources}]}}}})
    }

    #[test]
    fn sole_owner_dropping_a_leaf_removes_it() {
        let mut own = Ownership::default();
        let live = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "x"}]}}}});
        own.own_all(
            "fixture",
            "apps/v1",
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "x"}]}}}}),
        );
        let config = deployment(Some("1"));
        let mut merged = live.clone();
        super::super::merge::apply_merge(&mut merged, &config);
        assert!(own.apply("tool", "apps/v1", &config, &live, &mut merged, false).is_empty());
        assert_eq!(merged["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"], "1");
        // Re-apply without the limit: the tool was its only owner, so it goes; the container stays.
        let config2 = deployment(None);
        let live2 = merged.clone();
        let mut merged2 = live2.clone();
        super::super::merge::apply_merge(&mut merged2, &config2);
        assert!(own.apply("tool", "apps/v1", &config2, &live2, &mut merged2, false).is_empty());
        let c = &merged2["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["resources"], json!({"requests": {"cpu": "250m"}}));
        assert_eq!(c["image"], "x");
    }

    #[test]
    fn changing_a_field_owned_by_another_manager_conflicts_unless_forced() {
        let mut own = Ownership::default();
        let live = deployment(None);
        own.own_all("kubectl-client-side-apply", "apps/v1", &live);
        let config = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": [{"name": "web", "resources": {"requests": {"cpu": "500m"}}}]}}}});
        let mut merged = live.clone();
        let conflicts = own.apply("tool", "apps/v1", &config, &live, &mut merged, false);
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].field, ".spec.template.spec.containers[name=\"web\"].resources.requests.cpu");
        assert!(own.apply("tool", "apps/v1", &config, &live, &mut merged, true).is_empty());
        assert!(own.managers().iter().any(|(m, op)| m == "tool" && op == "Apply"));
    }
}
