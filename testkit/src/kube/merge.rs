//! Patch semantics: JSON merge patch (RFC 7386), a strategic merge patch that merges the lists the
//! Kubernetes types key by name (containers, env, volumes…), JSON patch (RFC 6902), and the merge half
//! of server-side apply. Simplified, but faithful for the fields infra-scale touches.

use serde_json::{Map, Value};

/// The merge key of a list field in the Kubernetes types the fake serves; lists without one are atomic.
pub fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "volumeClaimTemplates"
        | "hostAliases"
        | "resourceClaims" => Some("name"),
        "ports" => Some("containerPort"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "conditions" => Some("type"),
        "metrics" => None,
        _ => None,
    }
}

/// RFC 7386 JSON merge patch: maps merge, `null` deletes, everything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target_map) = target else { return };
    for (key, value) in patch_map {
        if value.is_null() {
            target_map.remove(key);
        } else {
            merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Strategic merge patch: like a merge patch, but lists with a merge key merge element by element,
/// `$patch: delete|replace` directives are honoured and `$setElementOrder`/`$retainKeys` are accepted.
pub fn strategic_merge(target: &mut Value, patch: &Value) -> Result<(), String> {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replaced = patch.clone();
        if let Value::Object(m) = &mut replaced {
            m.remove("$patch");
        }
        *target = replaced;
        return Ok(());
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target_map) = target else { return Ok(()) };
    for (key, value) in patch_map {
        if key.starts_with("$setElementOrder/") || key == "$retainKeys" || key == "$patch" {
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Value::Array(remove)) = (target_map.get_mut(field), value) {
                items.retain(|i| !remove.contains(i));
            }
            continue;
        }
        if key.starts_with('$') {
            return Err(format!("unknown patch directive {key}"));
        }
        if value.is_null() {
            target_map.remove(key);
            continue;
        }
        match (value, merge_key(key)) {
            (Value::Array(patch_items), Some(mkey)) => {
                let entry = target_map.entry(key.clone()).or_insert_with(|| Value::Array(Vec::new()));
                if !entry.is_array() {
                    *entry = Value::Array(Vec::new());
                }
                let Value::Array(items) = entry else { continue };
                for p in patch_items {
                    let Some(id) = p.get(mkey) else {
                        return Err(format!("map: {p} does not contain declared merge key: {mkey}"));
                    };
                    let pos = items.iter().position(|i| i.get(mkey) == Some(id));
                    let directive = p.get("$patch").and_then(Value::as_str);
                    match (pos, directive) {
                        (Some(i), Some("delete")) => {
                            items.remove(i);
                        }
                        (None, Some("delete")) => {}
                        (Some(i), _) => strategic_merge(&mut items[i], p)?,
                        (None, _) => {
                            let mut fresh = Value::Object(Map::new());
                            strategic_merge(&mut fresh, p)?;
                            items.push(fresh);
                        }
                    }
                }
            }
            (Value::Object(_), _) => {
                strategic_merge(target_map.entry(key.clone()).or_insert(Value::Null), value)?;
            }
            _ => {
                target_map.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(())
}

/// The merge half of server-side apply: the applied configuration is merged into the live object;
/// maps merge, keyed lists merge by key, other lists and scalars are replaced. Removal of fields the
/// manager stopped applying is done by the caller from the ownership records.
pub fn apply_merge(target: &mut Value, config: &Value) {
    match config {
        Value::Object(config_map) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let Value::Object(target_map) = target else { return };
            for (key, value) in config_map {
                if value.is_null() {
                    continue;
                }
                match (value, merge_key(key)) {
                    (Value::Array(config_items), Some(mkey)) => {
                        let entry = target_map.entry(key.clone()).or_insert_with(|| Value::Array(Vec::new()));
                        if !entry.is_array() {
                            *entry = Value::Array(Vec::new());
                        }
                        let Value::Array(items) = entry else { continue };
                        for c in config_items {
                            let id = c.get(mkey);
                            match items.iter().position(|i| id.is_some() && i.get(mkey) == id) {
                                Some(i) => apply_merge(&mut items[i], c),
                                None => items.push(c.clone()),
                            }
                        }
                    }
                    _ => apply_merge(target_map.entry(key.clone()).or_insert(Value::Null), value),
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// RFC 6902 JSON patch (`add`, `remove`, `replace`, `test`, `move`, `copy`).
pub fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    let Value::Array(ops) = ops else { return Err("json patch must be an array of operations".to_string()) };
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).ok_or("json patch operation without op")?;
        let path = op.get("path").and_then(Value::as_str).ok_or("json patch operation without path")?;
        match kind {
            "add" => add_at(target, path, op.get("value").cloned().unwrap_or(Value::Null))?,
            "remove" => {
                remove_at(target, path)?;
            }
            "replace" => {
                let slot = target
                    .pointer_mut(path)
                    .ok_or_else(|| format!("replace operation does not apply: doc is missing path: {path}"))?;
                *slot = op.get("value").cloned().unwrap_or(Value::Null);
            }
            "test" => {
                let want = op.get("value").cloned().unwrap_or(Value::Null);
                if target.pointer(path) != Some(&want) {
                    return Err(format!("testing value {path} failed: test failed"));
                }
            }
            "move" | "copy" => {
                let from = op.get("from").and_then(Value::as_str).ok_or("json patch move/copy without from")?;
                let value = if kind == "move" {
                    remove_at(target, from)?
                } else {
                    target.pointer(from).cloned().ok_or_else(|| format!("copy from missing path {from}"))?
                };
                add_at(target, path, value)?;
            }
            other => return Err(format!("unexpected json patch operation {other}")),
        }
    }
    Ok(())
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    let idx = path.rfind('/').ok_or_else(|| format!("invalid json pointer {path}"))?;
    let last = path[idx + 1..].replace("~1", "/").replace("~0", "~");
    Ok((path[..idx].to_string(), last))
}

fn add_at(target: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *target = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    match target.pointer_mut(&parent) {
        Some(Value::Object(m)) => {
            m.insert(last, value);
            Ok(())
        }
        Some(Value::Array(a)) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let i: usize = last.parse().map_err(|_| format!("invalid array index {last}"))?;
            if i > a.len() {
                return Err(format!("add operation does not apply: index {i} out of bounds"));
            }
            a.insert(i, value);
            Ok(())
        }
        _ => Err(format!("add operation does not apply: doc is missing path: {path}")),
    }
}

fn remove_at(target: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    let missing = || format!("remove operation does not apply: doc is missing path: {path}");
    match target.pointer_mut(&parent) {
        Some(Value::Object(m)) => m.remove(&last).ok_or_else(missing),
        Some(Value::Array(a)) => {
            let i: usize = last.parse().map_err(|_| missing())?;
            if i < a.len() { Ok(a.remove(i)) } else { Err(missing()) }
        }
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let mut live = json!({"spec": {"containers": [
            {"name": "app", "image": "a", "resources": {"requests": {"cpu": "1"}}},
            {"name": "side", "image": "s"}
        ]}});
        let patch = json!({"spec": {"$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
            "containers": [{"name": "app", "resources": {"limits": {"cpu": "2"}}}]}});
        strategic_merge(&mut live, &patch).unwrap();
        assert_eq!(
            live["spec"]["containers"][0]["resources"],
            json!({"requests": {"cpu": "1"}, "limits": {"cpu": "2"}})
        );
        assert_eq!(live["spec"]["containers"][1], json!({"name": "side", "image": "s"}));
    }

    #[test]
    fn merge_patch_null_deletes() {
        let mut live = json!({"a": {"b": 1, "c": 2}});
        merge_patch(&mut live, &json!({"a": {"b": null}}));
        assert_eq!(live, json!({"a": {"c": 2}}));
    }

    #[test]
    fn json_patch_test_guards() {
        let mut live = json!({"spec": {"replicas": 3}});
        assert!(json_patch(&mut live, &json!([{"op": "test", "path": "/spec/replicas", "value": 4}])).is_err());
        json_patch(
            &mut live,
            &json!([{"op": "test", "path": "/spec/replicas", "value": 3},
            {"op": "replace", "path": "/spec/replicas", "value": 5}]),
        )
        .unwrap();
        assert_eq!(live["spec"]["replicas"], 5);
    }
}
