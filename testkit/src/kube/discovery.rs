//! The resource types the fake serves, and the documents kubectl reads before it acts: legacy discovery
//! (`/api`, `/apis`, one APIResourceList per group/version) and the OpenAPI v3 index plus per-group-version
//! documents that let kubectl ≥1.28 leave `--validate=strict` to the server (`fieldValidation`).

use serde_json::{Value, json};

/// One served resource type (a group/version/plural with its kind).
#[derive(Debug)]
pub struct ResourceType {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// Subresources served (`scale`, `status`).
    pub subresources: &'static [&'static str],
    /// Verbs on the main resource.
    pub verbs: &'static [&'static str],
    /// Objects live in one storage per group + plural: autoscaling/v1 and v2 share the HPAs (stored as v2).
    pub storage: &'static str,
}

const ALL_VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/// Every type served. Only these appear in discovery: kubectl fetches every group/version listed.
pub static TYPES: &[ResourceType] = &[
    ResourceType {
        group: "",
        version: "v1",
        plural: "namespaces",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        subresources: &["status"],
        verbs: &["create", "delete", "get", "list", "patch", "update", "watch"],
        storage: "namespaces",
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "resourcequotas",
        kind: "ResourceQuota",
        namespaced: true,
        short_names: &["quota"],
        subresources: &["status"],
        verbs: ALL_VERBS,
        storage: "resourcequotas",
    },
    // Pods: only a dry-run create is served (infra-scale's admission check), answered as admitted.
    ResourceType {
        group: "",
        version: "v1",
        plural: "pods",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        subresources: &[],
        verbs: &["create"],
        storage: "pods",
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "limitranges",
        kind: "LimitRange",
        namespaced: true,
        short_names: &["limits"],
        subresources: &[],
        verbs: ALL_VERBS,
        storage: "limitranges",
    },
    ResourceType {
        group: "apps",
        version: "v1",
        plural: "deployments",
        kind: "Deployment",
        namespaced: true,
        short_names: &["deploy"],
        subresources: &["scale", "status"],
        verbs: ALL_VERBS,
        storage: "apps/deployments",
    },
    ResourceType {
        group: "apps",
        version: "v1",
        plural: "statefulsets",
        kind: "StatefulSet",
        namespaced: true,
        short_names: &["sts"],
        subresources: &["scale", "status"],
        verbs: ALL_VERBS,
        storage: "apps/statefulsets",
    },
    ResourceType {
        group: "autoscaling",
        version: "v2",
        plural: "horizontalpodautoscalers",
        kind: "HorizontalPodAutoscaler",
        namespaced: true,
        short_names: &["hpa"],
        subresources: &["status"],
        verbs: ALL_VERBS,
        storage: "autoscaling/horizontalpodautoscalers",
    },
    ResourceType {
        group: "autoscaling",
        version: "v1",
        plural: "horizontalpodautoscalers",
        kind: "HorizontalPodAutoscaler",
        namespaced: true,
        short_names: &["hpa"],
        subresources: &["status"],
        verbs: ALL_VERBS,
        storage: "autoscaling/horizontalpodautoscalers",
    },
    ResourceType {
        group: "policy",
        version: "v1",
        plural: "poddisruptionbudgets",
        kind: "PodDisruptionBudget",
        namespaced: true,
        short_names: &["pdb"],
        subresources: &["status"],
        verbs: ALL_VERBS,
        storage: "policy/poddisruptionbudgets",
    },
    ResourceType {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectaccessreviews",
        kind: "SelfSubjectAccessReview",
        namespaced: false,
        short_names: &[],
        subresources: &[],
        verbs: &["create"],
        storage: "authorization.k8s.io/selfsubjectaccessreviews",
    },
];

/// Groups in the order `/apis` lists them, with their preferred version first.
const GROUPS: &[(&str, &[&str])] =
    &[("apps", &["v1"]), ("autoscaling", &["v2", "v1"]), ("policy", &["v1"]), ("authorization.k8s.io", &["v1"])];

impl ResourceType {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }

    /// `deployments.apps`, or `namespaces` for the core group: the resource name used in Status messages.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() { self.plural.to_string() } else { format!("{}.{}", self.plural, self.group) }
    }

    /// `Deployment.apps`: the kind name used in `… is invalid` messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() { self.kind.to_string() } else { format!("{}.{}", self.kind, self.group) }
    }
}

/// The served type for a group/version/plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    TYPES.iter().find(|t| t.group == group && t.version == version && t.plural == plural)
}

/// The preferred served type for a kind or resource name as a person writes it: `Deployment`,
/// `deployment`, `deployments`, `deploy`, `hpa`, `HorizontalPodAutoscaler`, `statefulsets.apps`…
pub fn by_kind(name: &str) -> Option<&'static ResourceType> {
    let lower = name.to_ascii_lowercase();
    let base = lower.split('.').next().unwrap_or("");
    TYPES.iter().find(|t| {
        t.kind.eq_ignore_ascii_case(base)
            || t.plural == base
            || t.short_names.contains(&base)
            || t.kind.to_ascii_lowercase() + "s" == base
    })
}

/// `GET /version` for a server of version 1.`minor`.0.
pub fn version(minor: u32) -> Value {
    json!({
        "major": "1",
        "minor": minor.to_string(),
        "gitVersion": format!("v1.{minor}.0"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `GET /api` (legacy discovery, APIVersions).
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

/// `GET /apis` (legacy discovery, APIGroupList).
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = GROUPS
        .iter()
        .map(|(group, versions)| {
            let versions: Vec<Value> =
                versions.iter().map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v})).collect();
            json!({"name": group, "versions": versions, "preferredVersion": versions[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/<group>` (APIGroup), or None when the group is not served.
pub fn api_group(group: &str) -> Option<Value> {
    let list = api_group_list();
    let found = list["groups"].as_array()?.iter().find(|g| g["name"] == group)?.clone();
    let mut found = found;
    found["kind"] = json!("APIGroup");
    found["apiVersion"] = json!("v1");
    Some(found)
}

/// `GET /api/v1` or `/apis/<group>/<version>` (APIResourceList), or None when not served.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let types: Vec<&ResourceType> = TYPES.iter().filter(|t| t.group == group && t.version == version).collect();
    if types.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for t in &types {
        let mut r = json!({
            "name": t.plural,
            "singularName": t.kind.to_ascii_lowercase(),
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": t.verbs,
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if t.group == "apps" || t.group == "autoscaling" {
            r["categories"] = json!(["all"]);
        }
        resources.push(r);
        for sub in t.subresources {
            let r = match *sub {
                "scale" => json!({
                    "name": format!("{}/scale", t.plural),
                    "singularName": "",
                    "namespaced": t.namespaced,
                    "group": "autoscaling",
                    "version": "v1",
                    "kind": "Scale",
                    "verbs": ["get", "patch", "update"]
                }),
                _ => json!({
                    "name": format!("{}/{sub}", t.plural),
                    "singularName": "",
                    "namespaced": t.namespaced,
                    "kind": t.kind,
                    "verbs": ["get", "patch", "update"]
                }),
            };
            resources.push(r);
        }
    }
    let group_version = types[0].api_version();
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}))
}

/// Every served group/version as the OpenAPI v3 path key (`api/v1`, `apis/apps/v1`).
fn openapi_paths() -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    for t in TYPES {
        let key =
            if t.group.is_empty() { format!("api/{}", t.version) } else { format!("apis/{}/{}", t.group, t.version) };
        if !out.iter().any(|(k, _, _)| *k == key) {
            out.push((key, t.group.to_string(), t.version.to_string()));
        }
    }
    out
}

/// `GET /openapi/v3`: the index of per-group-version documents.
pub fn openapi_v3_index() -> Value {
    let mut paths = serde_json::Map::new();
    for (key, _, _) in openapi_paths() {
        let hash = format!("{:016X}", fnv(&key));
        paths.insert(key.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")}));
    }
    json!({ "paths": paths })
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `GET /openapi/v3/<key>`: a document with one PATCH operation per served type carrying
/// `x-kubernetes-group-version-kind` and the `fieldValidation` query parameter. That is what kubectl
/// (1.28+) looks for to decide that the server validates fields itself; no schemas are needed then.
pub fn openapi_v3_document(key: &str) -> Option<Value> {
    let (_, group, version) = openapi_paths().into_iter().find(|(k, _, _)| k == key)?;
    let mut paths = serde_json::Map::new();
    let field_validation = json!({
        "name": "fieldValidation",
        "in": "query",
        "description": "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields.",
        "schema": {"type": "string", "uniqueItems": true}
    });
    let mut schemas = serde_json::Map::new();
    for t in TYPES.iter().filter(|t| t.group == group && t.version == version) {
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        let item = if t.namespaced {
            format!("/{key}/namespaces/{{namespace}}/{}/{{name}}", t.plural)
        } else {
            format!("/{key}/{}/{{name}}", t.plural)
        };
        let schema_name =
            format!("io.k8s.fake.{}.{}.{}", if t.group.is_empty() { "core" } else { t.group }, t.version, t.kind);
        let op = |verb: &str| {
            json!({
                "operationId": format!("{verb}{}", t.kind),
                "parameters": [field_validation.clone()],
                "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema_name}")}}}}},
                "x-kubernetes-action": verb,
                "x-kubernetes-group-version-kind": gvk.clone()
            })
        };
        paths.insert(item, json!({"patch": op("patch"), "put": op("put")}));
        schemas.insert(
            schema_name,
            json!({
                "type": "object",
                "x-kubernetes-group-version-kind": [gvk.clone()],
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "spec": {"type": "object"},
                    "status": {"type": "object"}
                }
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas}
    }))
}
