//! Server-side printing: the `meta.k8s.io/v1` Table that `kubectl get` (without `-o`) asks for with
//! `Accept: application/json;as=Table;…`, with the apiserver's default columns for the served kinds.

use super::discovery::ResourceType;
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

/// Whether the client asked for a Table.
pub fn wanted(accept: &str) -> bool {
    accept.contains("as=Table")
}

fn column(name: &str, kind: &str, priority: i64) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": kind, "format": format, "description": "", "priority": priority})
}

/// Seconds since the Unix epoch of an RFC 3339 UTC timestamp (`2026-01-01T00:00:00Z`).
fn epoch_seconds(ts: &str) -> Option<i64> {
    let (date, time) = ts.trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':').map(|p| p.parse::<i64>());
    let (hh, mm, ss) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// `kubectl`-style age: `45s`, `3m`, `5h`, `2d`.
fn age(obj: &Value) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let Some(created) = obj["metadata"]["creationTimestamp"].as_str().and_then(epoch_seconds) else {
        return "<unknown>".to_string();
    };
    let s = (now - created).max(0);
    match s {
        0..120 => format!("{s}s"),
        120..7_200 => format!("{}m", s / 60),
        7_200..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn containers(obj: &Value, field: &str) -> String {
    let list = obj["spec"]["template"]["spec"]["containers"].as_array().cloned().unwrap_or_default();
    list.iter().filter_map(|c| c[field].as_str()).collect::<Vec<_>>().join(",")
}

fn columns_and_cells(t: &ResourceType, obj: &Value) -> (Vec<Value>, Vec<Value>) {
    let name = json!(obj["metadata"]["name"]);
    let s = &obj["status"];
    match t.kind {
        "Deployment" => (
            vec![
                column("Name", "string", 0),
                column("Ready", "string", 0),
                column("Up-to-date", "integer", 0),
                column("Available", "integer", 0),
                column("Age", "string", 0),
                column("Containers", "string", 1),
                column("Images", "string", 1),
            ],
            vec![
                name,
                json!(format!("{}/{}", int(&s["readyReplicas"]), int(&obj["spec"]["replicas"]))),
                json!(int(&s["updatedReplicas"])),
                json!(int(&s["availableReplicas"])),
                json!(age(obj)),
                json!(containers(obj, "name")),
                json!(containers(obj, "image")),
            ],
        ),
        "StatefulSet" => (
            vec![column("Name", "string", 0), column("Ready", "string", 0), column("Age", "string", 0)],
            vec![
                name,
                json!(format!("{}/{}", int(&s["readyReplicas"]), int(&obj["spec"]["replicas"]))),
                json!(age(obj)),
            ],
        ),
        "HorizontalPodAutoscaler" => {
            let target = &obj["spec"]["scaleTargetRef"];
            let targets: Vec<String> = obj["spec"]["metrics"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|m| m["resource"]["target"]["averageUtilization"].as_i64())
                .map(|u| format!("cpu: <unknown>/{u}%"))
                .collect();
            let targets = if targets.is_empty() {
                obj["spec"]["targetCPUUtilizationPercentage"]
                    .as_i64()
                    .map_or_else(|| "<none>".to_string(), |u| format!("<unknown>/{u}%"))
            } else {
                targets.join(", ")
            };
            (
                vec![
                    column("Name", "string", 0),
                    column("Reference", "string", 0),
                    column("Targets", "string", 0),
                    column("MinPods", "string", 0),
                    column("MaxPods", "integer", 0),
                    column("Replicas", "integer", 0),
                    column("Age", "string", 0),
                ],
                vec![
                    name,
                    json!(format!(
                        "{}/{}",
                        target["kind"].as_str().unwrap_or(""),
                        target["name"].as_str().unwrap_or("")
                    )),
                    json!(targets),
                    json!(int(&obj["spec"]["minReplicas"]).to_string()),
                    json!(int(&obj["spec"]["maxReplicas"])),
                    json!(int(&s["currentReplicas"])),
                    json!(age(obj)),
                ],
            )
        }
        "Namespace" => (
            vec![column("Name", "string", 0), column("Status", "string", 0), column("Age", "string", 0)],
            vec![name, json!(s["phase"].as_str().unwrap_or("Active")), json!(age(obj))],
        ),
        _ => (vec![column("Name", "string", 0), column("Age", "string", 0)], vec![name, json!(age(obj))]),
    }
}

/// A Table of `items` (already presented as type `t`).
pub fn table(t: &ResourceType, items: &[Value], resource_version: u64) -> Value {
    let mut columns = None;
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let (cols, cells) = columns_and_cells(t, obj);
            columns.get_or_insert(cols);
            json!({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                               "metadata": obj["metadata"]}})
        })
        .collect();
    let columns = columns.unwrap_or_else(|| columns_and_cells(t, &json!({})).0);
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version.to_string()},
           "columnDefinitions": columns, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::epoch_seconds;

    #[test]
    fn parses_timestamps() {
        assert_eq!(epoch_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(epoch_seconds("2026-01-01T00:00:10Z"), Some(1_767_225_610));
    }
}
