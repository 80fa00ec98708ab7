//! Just enough protobuf to read the HorizontalPodAutoscaler that `kubectl autoscale` POSTs as
//! `application/vnd.kubernetes.protobuf` (kubectl 1.28+), and the SelfSubjectAccessReview of `kubectl
//! auth can-i`: the `k8s\0` envelope (`runtime.Unknown`),
//! ObjectMeta name/namespace/labels/annotations, and the v1 or v2 spec. Field numbers are those of
//! `k8s.io/api/autoscaling/v{1,2}/generated.proto`.

use serde_json::{Map, Value, json};

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long".to_string())
}

fn fields(buf: &[u8]) -> Result<Vec<(u64, Field<'_>)>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let tag = varint(buf, &mut pos)?;
        let (number, wire) = (tag >> 3, tag & 7);
        match wire {
            0 => out.push((number, Field::Varint(varint(buf, &mut pos)?))),
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|_| "length overflow")?;
                let end = pos.checked_add(len).filter(|e| *e <= buf.len()).ok_or("truncated field")?;
                out.push((number, Field::Bytes(&buf[pos..end])));
                pos = end;
            }
            1 => pos += 8,
            5 => pos += 4,
            other => return Err(format!("unsupported wire type {other}")),
        }
    }
    Ok(out)
}

fn string(f: &Field<'_>) -> String {
    match f {
        Field::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Field::Varint(_) => String::new(),
    }
}

fn int(f: &Field<'_>) -> i64 {
    match f {
        Field::Varint(v) => *v as i32 as i64,
        Field::Bytes(_) => 0,
    }
}

fn message<'a>(f: &Field<'a>) -> Result<Vec<(u64, Field<'a>)>, String> {
    match f {
        Field::Bytes(b) => fields(b),
        Field::Varint(_) => Err("expected a message".to_string()),
    }
}

fn string_map(entries: &[&Field<'_>]) -> Result<Map<String, Value>, String> {
    let mut m = Map::new();
    for e in entries {
        let kv = message(e)?;
        let k = kv.iter().find(|(n, _)| *n == 1).map(|(_, f)| string(f)).unwrap_or_default();
        let v = kv.iter().find(|(n, _)| *n == 2).map(|(_, f)| string(f)).unwrap_or_default();
        m.insert(k, json!(v));
    }
    Ok(m)
}

fn object_meta(buf: &Field<'_>) -> Result<Value, String> {
    let fs = message(buf)?;
    let mut meta = Map::new();
    for (n, f) in &fs {
        match n {
            1 if !string(f).is_empty() => {
                meta.insert("name".into(), json!(string(f)));
            }
            3 if !string(f).is_empty() => {
                meta.insert("namespace".into(), json!(string(f)));
            }
            _ => {}
        }
    }
    let labels: Vec<&Field<'_>> = fs.iter().filter(|(n, _)| *n == 11).map(|(_, f)| f).collect();
    if !labels.is_empty() {
        meta.insert("labels".into(), Value::Object(string_map(&labels)?));
    }
    let annotations: Vec<&Field<'_>> = fs.iter().filter(|(n, _)| *n == 12).map(|(_, f)| f).collect();
    if !annotations.is_empty() {
        meta.insert("annotations".into(), Value::Object(string_map(&annotations)?));
    }
    Ok(Value::Object(meta))
}

fn target_ref(f: &Field<'_>) -> Result<Value, String> {
    let mut r = Map::new();
    for (n, f) in message(f)? {
        let name = match n {
            1 => "kind",
            2 => "name",
            3 => "apiVersion",
            _ => continue,
        };
        r.insert(name.into(), json!(string(&f)));
    }
    Ok(Value::Object(r))
}

fn quantity(f: &Field<'_>) -> Result<Value, String> {
    let fs = message(f)?;
    Ok(json!(fs.iter().find(|(n, _)| *n == 1).map(|(_, f)| string(f)).unwrap_or_default()))
}

fn metric_v2(f: &Field<'_>) -> Result<Value, String> {
    let mut m = Map::new();
    for (n, f) in message(f)? {
        match n {
            1 => {
                m.insert("type".into(), json!(string(&f)));
            }
            4 => {
                let mut res = Map::new();
                for (rn, rf) in message(&f)? {
                    match rn {
                        1 => {
                            res.insert("name".into(), json!(string(&rf)));
                        }
                        2 => {
                            let mut target = Map::new();
                            for (tn, tf) in message(&rf)? {
                                match tn {
                                    1 => target.insert("type".into(), json!(string(&tf))),
                                    2 => target.insert("value".into(), quantity(&tf)?),
                                    3 => target.insert("averageValue".into(), quantity(&tf)?),
                                    4 => target.insert("averageUtilization".into(), json!(int(&tf))),
                                    _ => None,
                                };
                            }
                            res.insert("target".into(), Value::Object(target));
                        }
                        _ => {}
                    }
                }
                m.insert("resource".into(), Value::Object(res));
            }
            _ => {}
        }
    }
    Ok(Value::Object(m))
}

/// Decodes a protobuf request body (`k8s\0` envelope) to JSON: HorizontalPodAutoscalers (autoscaling
/// v1 and v2) and SelfSubjectAccessReviews; other kinds are an error.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let inner = body.strip_prefix(b"k8s\0").ok_or("missing k8s protobuf envelope")?;
    let envelope = fields(inner)?;
    let (mut api_version, mut kind) = (String::new(), String::new());
    if let Some((_, tm)) = envelope.iter().find(|(n, _)| *n == 1) {
        for (n, f) in message(tm)? {
            match n {
                1 => api_version = string(&f),
                2 => kind = string(&f),
                _ => {}
            }
        }
    }
    let raw = envelope.iter().find(|(n, _)| *n == 2).ok_or("envelope without raw object")?;
    let obj = message(&raw.1)?;
    match kind.as_str() {
        "HorizontalPodAutoscaler" => {
            let version = api_version.strip_prefix("autoscaling/").unwrap_or("v1").to_string();
            decode_hpa(&obj, &version)
        }
        "SelfSubjectAccessReview" => decode_ssar(&obj, &api_version),
        other => Err(format!("the fake API server cannot decode protobuf {api_version} {other}")),
    }
}

fn decode_ssar(obj: &[(u64, Field<'_>)], api_version: &str) -> Result<Value, String> {
    let mut attrs = Map::new();
    for (n, f) in obj {
        if *n != 2 {
            continue;
        }
        for (sn, sf) in message(f)? {
            if sn != 1 {
                continue;
            }
            for (an, af) in message(&sf)? {
                let name = match an {
                    1 => "namespace",
                    2 => "verb",
                    3 => "group",
                    4 => "version",
                    5 => "resource",
                    6 => "subresource",
                    7 => "name",
                    _ => continue,
                };
                attrs.insert(name.into(), json!(string(&af)));
            }
        }
    }
    Ok(json!({"apiVersion": api_version, "kind": "SelfSubjectAccessReview", "metadata": {},
              "spec": {"resourceAttributes": attrs}}))
}

fn decode_hpa(obj: &[(u64, Field<'_>)], version: &str) -> Result<Value, String> {
    let mut out = json!({"apiVersion": format!("autoscaling/{version}"), "kind": "HorizontalPodAutoscaler"});
    for (n, f) in obj {
        match n {
            1 => out["metadata"] = object_meta(f)?,
            2 => {
                let mut spec = Map::new();
                let mut metrics = Vec::new();
                for (sn, sf) in message(f)? {
                    match (sn, version) {
                        (1, _) => {
                            spec.insert("scaleTargetRef".into(), target_ref(&sf)?);
                        }
                        (2, _) => {
                            spec.insert("minReplicas".into(), json!(int(&sf)));
                        }
                        (3, _) => {
                            spec.insert("maxReplicas".into(), json!(int(&sf)));
                        }
                        (4, "v1") => {
                            spec.insert("targetCPUUtilizationPercentage".into(), json!(int(&sf)));
                        }
                        (4, _) => metrics.push(metric_v2(&sf)?),
                        _ => {}
                    }
                }
                if !metrics.is_empty() {
                    spec.insert("metrics".into(), Value::Array(metrics));
                }
                out["spec"] = Value::Object(spec);
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::decode;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn decodes_what_kubectl_autoscale_sends() {
        // Captured from kubectl 1.33 `autoscale deployment web --min=2 --max=5 --cpu-percent=70`.
        let v2 = hex(
            "6b3873000a290a0e6175746f7363616c696e672f76321217486f72697a6f6e74616c506f644175746f7363616c657212610a130a0377656212001a0022002a0032003800420012440a1a0a0a4465706c6f796d656e7412037765621a07617070732f76311002180522220a085265736f7572636522160a03637075120f0a0b5574696c697a6174696f6e20461a04180020001a002200",
        );
        let obj = decode(&v2).unwrap();
        assert_eq!(obj["metadata"], serde_json::json!({"name": "web"}));
        assert_eq!(obj["spec"]["minReplicas"], 2);
        assert_eq!(obj["spec"]["maxReplicas"], 5);
        assert_eq!(obj["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 70);
        // kubectl 1.32 posts autoscaling/v1.
        let v1 = hex(
            "6b3873000a290a0e6175746f7363616c696e672f76311217486f72697a6f6e74616c506f644175746f7363616c6572123f0a130a0377656212001a0022002a0032003800420012220a1a0a0a4465706c6f796d656e7412037765621a07617070732f76311002180520461a04180020001a002200",
        );
        let obj = decode(&v1).unwrap();
        assert_eq!(obj["apiVersion"], "autoscaling/v1");
        assert_eq!(obj["spec"]["targetCPUUtilizationPercentage"], 70);
        assert_eq!(obj["spec"]["scaleTargetRef"]["kind"], "Deployment");
    }
}
