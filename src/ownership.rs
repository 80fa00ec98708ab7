//! Who owns the fields a plan changes: reading `metadata.managedFields` (FieldsV1) and the
//! Helm / Argo CD / Flux labels and annotations of a live object, and deciding whether the
//! change may take those fields over or whether a sync would revert it. Pure: no I/O.
//!
//! FieldsV1 (structured-merge-diff `fieldpath/serialize.go`) is a JSON tree: `f:NAME` is a
//! struct or map field, `k:{"name":"app"}` a list element by its key fields (JSON, keys
//! sorted), `v:VALUE` a set element, `i:N` an index, and `.` marks that the node itself is
//! owned when it also has children. A leaf node (`{}`) owns the whole value at that path:
//! `resources: {}` is written as `"f:resources": {}`.
//!
//! infra-scale writes with `kubectl patch --type=json --field-manager=infra-scale` (an Update
//! operation), which never conflicts; so ownership is decided here, from managedFields, before
//! anything is sent.

use serde_json::Value;

use crate::quantity::Resource;

/// `resources.requests` or `resources.limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Section {
    Requests,
    Limits,
}

impl Section {
    pub fn name(self) -> &'static str {
        match self {
            Section::Requests => "requests",
            Section::Limits => "limits",
        }
    }
}

/// A field infra-scale changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    /// A workload's `spec.replicas`.
    Replicas,
    /// One resource key of one container of a workload's pod template.
    Resource { init: bool, container: &'a str, section: Section, resource: Resource },
    /// An HPA's `spec.minReplicas`.
    HpaMin,
    /// An HPA's `spec.maxReplicas`.
    HpaMax,
    /// An HPA's `spec.metrics` (an atomic list: whoever owns `f:spec.f:metrics` owns all of it).
    HpaMetrics,
}

/// One step of a FieldsV1 path.
enum Step<'a> {
    /// `f:NAME`
    Field(&'static str),
    /// `k:{"name":NAME}` (containers and initContainers are keyed by name)
    Named(&'a str),
    /// `f:NAME` with a runtime name (a resource key)
    Key(&'static str),
}

impl<'a> Field<'a> {
    /// The field as a person reads it: `spec.template.spec.containers[app].resources.requests.cpu`.
    pub fn describe(&self) -> String {
        match self {
            Field::Replicas => "spec.replicas".into(),
            Field::Resource { init, container, section, resource } => format!(
                "spec.template.spec.{}[{container}].resources.{}.{}",
                if *init { "initContainers" } else { "containers" },
                section.name(),
                resource.name()
            ),
            Field::HpaMin => "spec.minReplicas".into(),
            Field::HpaMax => "spec.maxReplicas".into(),
            Field::HpaMetrics => "spec.metrics".into(),
        }
    }

    fn path(&self) -> Vec<Step<'a>> {
        match *self {
            Field::Replicas => vec![Step::Field("spec"), Step::Field("replicas")],
            Field::Resource { init, container, section, resource } => vec![
                Step::Field("spec"),
                Step::Field("template"),
                Step::Field("spec"),
                Step::Field(if init { "initContainers" } else { "containers" }),
                Step::Named(container),
                Step::Field("resources"),
                Step::Key(section.name()),
                Step::Key(resource.name()),
            ],
            Field::HpaMin => vec![Step::Field("spec"), Step::Field("minReplicas")],
            Field::HpaMax => vec![Step::Field("spec"), Step::Field("maxReplicas")],
            Field::HpaMetrics => vec![Step::Field("spec"), Step::Field("metrics")],
        }
    }

    /// Prefix lengths of the parents that, owned as a whole (a leaf), own this field too:
    /// `f:requests` then `f:resources` for a resource key.
    fn whole_parents(&self) -> &'static [usize] {
        match self {
            Field::Resource { .. } => &[7, 6],
            _ => &[],
        }
    }
}

/// What kind of tool a field manager is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OwnerClass {
    /// infra-scale itself (`--field-manager=infra-scale`).
    InfraScale,
    /// A person's one-off kubectl command: `kubectl`, `kubectl-client-side-apply`, `kubectl-edit`,
    /// `kubectl-patch`, `kubectl-create`, `kubectl-set`, `kubectl-scale`, `kubectl-replace`, …
    OneOff,
    /// Helm 3 (`helm`).
    Helm,
    /// Argo CD (`argocd-controller`, `argocd-application-controller`, any `argocd*`).
    ArgoCd,
    /// Flux (`kustomize-controller`, `helm-controller`, any `flux*`).
    Flux,
    /// Anything else: operators, `keda-operator`, `kube-controller-manager` (the HPA writes
    /// `spec.replicas` through `/scale`), … They may write the field back, so they count too.
    Other,
}

impl OwnerClass {
    /// Classifies a field manager name.
    ///
    /// `helm-controller` is Flux's HelmRelease controller: it runs Helm, but what puts the
    /// values back is Flux reconciling the HelmRelease from Git (and a manual `helm upgrade`
    /// would itself be reverted by it), so it is classed Flux and accepted by `flux`.
    pub fn of_manager(manager: &str) -> OwnerClass {
        let m = manager.to_ascii_lowercase();
        match m.as_str() {
            "infra-scale" => OwnerClass::InfraScale,
            "kubectl" => OwnerClass::OneOff,
            "helm" => OwnerClass::Helm,
            "helm-controller" | "kustomize-controller" => OwnerClass::Flux,
            // `kubectl scale` and other commands without `--field-manager` are recorded under the
            // client's user agent, i.e. kubectl's file name: `kubectl`, `kubectl.1.33`, `kubectl.exe`.
            _ if m.starts_with("kubectl-") || m.starts_with("kubectl.") => OwnerClass::OneOff,
            _ if m.starts_with("argocd") => OwnerClass::ArgoCd,
            _ if m.starts_with("flux") => OwnerClass::Flux,
            _ => OwnerClass::Other,
        }
    }

    /// The word `--allow-owner` accepts for the whole tool (`helm`, `argocd`, `flux`).
    pub fn tool_word(self) -> Option<&'static str> {
        match self {
            OwnerClass::Helm => Some("helm"),
            OwnerClass::ArgoCd => Some("argocd"),
            OwnerClass::Flux => Some("flux"),
            _ => None,
        }
    }

    /// The tool's name as written in findings.
    pub fn label(self) -> &'static str {
        match self {
            OwnerClass::InfraScale => "infra-scale",
            OwnerClass::OneOff => "one-off kubectl",
            OwnerClass::Helm => "Helm",
            OwnerClass::ArgoCd => "Argo CD",
            OwnerClass::Flux => "Flux",
            OwnerClass::Other => "a controller or operator",
        }
    }
}

/// One managedFields entry that owns a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub manager: String,
    /// `Update` or `Apply`.
    pub operation: String,
    /// `scale`, `status`, or none for the main resource.
    pub subresource: Option<String>,
    pub class: OwnerClass,
}

/// A label or annotation set that says a GitOps tool or Helm manages the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub tool: OwnerClass,
    /// e.g. "Helm release `web` (label app.kubernetes.io/managed-by=Helm, annotation meta.helm.sh/release-name=web)"
    pub detail: String,
}

/// Managers owning `field` in `object` (raw JSON with metadata.managedFields; FieldsV1 `f:`/`k:{"name":"app"}` paths).
///
/// A resource key that no manager owns exactly is owned by whoever owns its `f:requests` /
/// `f:limits` or `f:resources` parent as a whole (a leaf). A field nobody owns (a key that does
/// not exist yet) has no owners.
pub fn field_owners(object: &Value, field: &Field) -> Vec<Owner> {
    let Some(Value::Array(entries)) = object.pointer("/metadata/managedFields") else { return Vec::new() };
    let path = field.path();
    let mut out: Vec<Owner> = Vec::new();
    for entry in entries {
        if entry.get("fieldsType").and_then(Value::as_str).is_some_and(|t| t != "FieldsV1") {
            continue;
        }
        let Some(root) = entry.get("fieldsV1") else { continue };
        let owns = lookup(root, &path).is_some()
            || field.whole_parents().iter().any(|&len| lookup(root, &path[..len]).is_some_and(is_leaf));
        if !owns {
            continue;
        }
        let manager = entry.get("manager").and_then(Value::as_str).unwrap_or_default().to_string();
        let owner = Owner {
            class: OwnerClass::of_manager(&manager),
            manager,
            operation: entry.get("operation").and_then(Value::as_str).unwrap_or_default().to_string(),
            subresource: entry.get("subresource").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string),
        };
        if !out.contains(&owner) {
            out.push(owner);
        }
    }
    out
}

fn lookup<'v>(root: &'v Value, path: &[Step]) -> Option<&'v Value> {
    let mut node = root;
    for step in path {
        let map = node.as_object()?;
        node = match step {
            Step::Field(name) | Step::Key(name) => map.get(&format!("f:{name}"))?,
            // `k:` keys are the JSON of the key fields; compare parsed, not as text.
            Step::Named(name) => map.iter().find_map(|(k, v)| {
                let key: Value = serde_json::from_str(k.strip_prefix("k:")?).ok()?;
                (key.as_object()?.len() == 1 && key.get("name")?.as_str()? == *name).then_some(v)
            })?,
        };
    }
    Some(node)
}

/// A node owned as a whole: no children besides `.`.
fn is_leaf(node: &Value) -> bool {
    node.as_object().is_some_and(|m| m.keys().all(|k| k == "."))
}

/// Helm / Argo CD / Flux labels and annotations on the object.
pub fn markers(object: &Value) -> Vec<Marker> {
    let label = |k: &str| object.pointer("/metadata/labels").and_then(|m| m.get(k)).and_then(Value::as_str);
    let annotation = |k: &str| object.pointer("/metadata/annotations").and_then(|m| m.get(k)).and_then(Value::as_str);
    let mut out = Vec::new();

    let managed_by = label("app.kubernetes.io/managed-by").filter(|v| v.eq_ignore_ascii_case("helm"));
    let release = annotation("meta.helm.sh/release-name");
    let release_ns = annotation("meta.helm.sh/release-namespace");
    if managed_by.is_some() || release.is_some() || release_ns.is_some() {
        let mut evidence = Vec::new();
        if let Some(v) = managed_by {
            evidence.push(format!("label app.kubernetes.io/managed-by={v}"));
        }
        if let Some(v) = release {
            evidence.push(format!("annotation meta.helm.sh/release-name={v}"));
        }
        if let Some(v) = release_ns {
            evidence.push(format!("annotation meta.helm.sh/release-namespace={v}"));
        }
        let what = match (release, release_ns) {
            (Some(r), Some(ns)) => format!("Helm release `{r}` in namespace `{ns}`"),
            (Some(r), None) => format!("Helm release `{r}`"),
            _ => "a Helm release".to_string(),
        };
        out.push(Marker { tool: OwnerClass::Helm, detail: format!("{what} ({})", evidence.join(", ")) });
    }

    // `app.kubernetes.io/instance` alone is ambiguous: it is the recommended label for any
    // app instance (Helm charts set it to the release name), and only Argo CD's default
    // label-based tracking uses it. It counts only next to an Argo CD manager or annotation.
    let tracking = annotation("argocd.argoproj.io/tracking-id");
    let argo_manager = object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("manager").and_then(Value::as_str))
        .any(|m| OwnerClass::of_manager(m) == OwnerClass::ArgoCd);
    let instance = label("app.kubernetes.io/instance").filter(|_| tracking.is_some() || argo_manager);
    if tracking.is_some() || instance.is_some() {
        let mut evidence = Vec::new();
        if let Some(v) = tracking {
            evidence.push(format!("annotation argocd.argoproj.io/tracking-id={v}"));
        }
        if let Some(v) = instance {
            evidence.push(format!("label app.kubernetes.io/instance={v}"));
        }
        // tracking-id is `<application>:<group>/<kind>:<namespace>/<name>`.
        let app = tracking.and_then(|t| t.split(':').next()).filter(|a| !a.is_empty()).or(instance);
        let what = app.map(|a| format!("Argo CD application `{a}`")).unwrap_or_else(|| "an Argo CD application".into());
        out.push(Marker { tool: OwnerClass::ArgoCd, detail: format!("{what} ({})", evidence.join(", ")) });
    }

    for (prefix, kind) in [("kustomize.toolkit.fluxcd.io", "Kustomization"), ("helm.toolkit.fluxcd.io", "HelmRelease")]
    {
        let name = label(&format!("{prefix}/name"));
        let ns = label(&format!("{prefix}/namespace"));
        if name.is_none() && ns.is_none() {
            continue;
        }
        let mut evidence = Vec::new();
        if let Some(v) = name {
            evidence.push(format!("label {prefix}/name={v}"));
        }
        if let Some(v) = ns {
            evidence.push(format!("label {prefix}/namespace={v}"));
        }
        let what = match (name, ns) {
            (Some(n), Some(ns)) => format!("Flux {kind} `{ns}/{n}`"),
            (Some(n), None) => format!("Flux {kind} `{n}`"),
            _ => format!("a Flux {kind}"),
        };
        out.push(Marker { tool: OwnerClass::Flux, detail: format!("{what} ({})", evidence.join(", ")) });
    }
    out
}

/// The manager the HPA controller writes as.
const HPA_CONTROLLER: &str = "kube-controller-manager";

/// Whether a change to some fields of one object may go ahead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assessment {
    /// (field description like `spec.template.spec.containers[app].resources.requests.cpu`, manager) taken over from one-off human managers.
    pub takeovers: Vec<(String, String)>,
    /// One sentence per reason a sync would revert the change: who owns which field, or which markers; empty = fine.
    pub owned_by_gitops: Vec<String>,
}

/// `allowed`: manager names or tool words (`helm`, `argocd`, `flux`) the user explicitly accepts.
///
/// - fields owned by nobody, or by infra-scale, are fine;
/// - fields owned by a one-off kubectl manager are taken over, unless the object carries GitOps
///   markers (Argo CD's client-side sync writes as `kubectl-client-side-apply`): then it is a reason;
/// - fields owned by Helm, Argo CD, Flux or any other manager are a reason.
pub fn assess(object: &Value, fields: &[Field], allowed: &[String]) -> Assessment {
    let accepts = |manager: &str, class: OwnerClass| {
        allowed.iter().any(|a| a == manager || class.tool_word().is_some_and(|w| a.eq_ignore_ascii_case(w)))
    };
    let markers: Vec<Marker> = markers(object)
        .into_iter()
        .filter(|m| !m.tool.tool_word().is_some_and(|w| allowed.iter().any(|a| a.eq_ignore_ascii_case(w))))
        .collect();
    let mut takeovers = Vec::new();
    // (manager, class, fields) in order of first appearance.
    let mut reasons: Vec<(String, OwnerClass, Vec<String>)> = Vec::new();
    for field in fields {
        let desc = field.describe();
        for owner in field_owners(object, field) {
            // The HPA controller records its writes of spec.replicas (through /scale) as
            // kube-controller-manager. Replicas are only assessed where no HPA governs the
            // workload any more, so that record syncs nothing back.
            if *field == Field::Replicas && owner.manager == HPA_CONTROLLER {
                continue;
            }
            if owner.class == OwnerClass::InfraScale || accepts(&owner.manager, owner.class) {
                if owner.class == OwnerClass::OneOff {
                    takeovers.push((desc.clone(), owner.manager.clone()));
                }
                continue;
            }
            if owner.class == OwnerClass::OneOff && markers.is_empty() {
                if !takeovers.contains(&(desc.clone(), owner.manager.clone())) {
                    takeovers.push((desc.clone(), owner.manager.clone()));
                }
                continue;
            }
            match reasons.iter_mut().find(|(m, _, _)| *m == owner.manager) {
                Some((_, _, list)) if list.contains(&desc) => {}
                Some((_, _, list)) => list.push(desc.clone()),
                None => reasons.push((owner.manager.clone(), owner.class, vec![desc.clone()])),
            }
        }
    }
    let owned_by_gitops = reasons
        .into_iter()
        .map(|(manager, class, fields)| {
            let fields = fields.join(", ");
            match class {
                OwnerClass::OneOff => format!(
                    "field manager `{manager}` owns {fields} and the object carries {}; a GitOps tool that syncs \
                     client-side writes as `{manager}` (Argo CD's client-side sync writes as kubectl-client-side-apply)",
                    markers.iter().map(|m| m.detail.as_str()).collect::<Vec<_>>().join("; ")
                ),
                OwnerClass::Other => {
                    format!("field manager `{manager}` ({}, which may write its own values back) owns {fields}", class.label())
                }
                _ => {
                    let of_tool: Vec<&str> =
                        markers.iter().filter(|m| m.tool == class).map(|m| m.detail.as_str()).collect();
                    let known = if of_tool.is_empty() { String::new() } else { format!(", {}", of_tool.join("; ")) };
                    format!("field manager `{manager}` ({}{known}) owns {fields}", class.label())
                }
            }
        })
        .collect();
    Assessment { takeovers, owned_by_gitops }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/ownership/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn res(section: Section, resource: Resource) -> Field<'static> {
        Field::Resource { init: false, container: "app", section, resource }
    }

    fn managers(object: &Value, field: &Field) -> Vec<String> {
        field_owners(object, field).into_iter().map(|o| o.manager).collect()
    }

    #[test]
    fn classifies_managers() {
        use OwnerClass::*;
        for (m, c) in [
            ("infra-scale", InfraScale),
            ("kubectl", OneOff),
            ("kubectl-client-side-apply", OneOff),
            ("kubectl-edit", OneOff),
            ("kubectl-patch", OneOff),
            ("kubectl-create", OneOff),
            ("kubectl-set", OneOff),
            ("kubectl-rollout", OneOff),
            // kubectl 1.33 installed as `kubectl.1.33`: `kubectl scale` is recorded under that name
            // (kube-apiserver v1.34.4).
            ("kubectl.1.33", OneOff),
            ("helm", Helm),
            ("helm-controller", Flux),
            ("argocd-controller", ArgoCd),
            ("argocd-application-controller", ArgoCd),
            ("kustomize-controller", Flux),
            ("flux-client-side-apply", Flux),
            ("keda-operator", Other),
            ("kube-controller-manager", Other),
            ("kubectlish", Other),
        ] {
            assert_eq!(OwnerClass::of_manager(m), c, "{m}");
        }
    }

    /// `kubectl create` then `kubectl patch` of requests.cpu then `kubectl scale`, as the real
    /// API server recorded them: each field has exactly the manager that wrote it last.
    #[test]
    fn owners_of_a_patched_deployment() {
        let o = fixture("deployment-patched");
        assert_eq!(managers(&o, &res(Section::Requests, Resource::Cpu)), ["kubectl-patch"]);
        assert_eq!(managers(&o, &res(Section::Requests, Resource::Memory)), ["kubectl-create"]);
        // A key that does not exist yet has no owner.
        assert!(managers(&o, &res(Section::Limits, Resource::Cpu)).is_empty());
        let replicas = field_owners(&o, &Field::Replicas);
        assert_eq!(replicas.len(), 1);
        assert_eq!(replicas[0].manager, "kubectl");
        assert_eq!(replicas[0].subresource.as_deref(), Some("scale"));
        assert_eq!(replicas[0].class, OwnerClass::OneOff);
        // Another container name matches nothing.
        let other =
            Field::Resource { init: false, container: "sidecar", section: Section::Requests, resource: Resource::Cpu };
        assert!(field_owners(&o, &other).is_empty());
        let a = assess(&o, &[Field::Replicas, res(Section::Requests, Resource::Cpu)], &[]);
        assert!(a.owned_by_gitops.is_empty(), "{a:?}");
        assert_eq!(
            a.takeovers,
            [
                ("spec.replicas".to_string(), "kubectl".to_string()),
                ("spec.template.spec.containers[app].resources.requests.cpu".to_string(), "kubectl-patch".to_string())
            ]
        );
    }

    #[test]
    fn client_side_apply_is_taken_over() {
        let o = fixture("deployment-csa");
        assert!(markers(&o).is_empty());
        let a = assess(&o, &[Field::Replicas, res(Section::Requests, Resource::Cpu)], &[]);
        assert!(a.owned_by_gitops.is_empty(), "{a:?}");
        assert_eq!(a.takeovers.len(), 2);
        assert!(a.takeovers.iter().all(|(_, m)| m == "kubectl-client-side-apply"));
    }

    #[test]
    fn helm_owned_fields_are_a_reason() {
        let o = fixture("deployment-helm");
        let m = markers(&o);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0].tool, OwnerClass::Helm);
        assert!(
            m[0].detail.starts_with("Helm release `web` in namespace `fx` (label app.kubernetes.io/managed-by=Helm"),
            "{}",
            m[0].detail
        );
        let a = assess(&o, &[res(Section::Requests, Resource::Cpu), res(Section::Limits, Resource::Cpu)], &[]);
        assert!(a.takeovers.is_empty());
        assert_eq!(a.owned_by_gitops.len(), 1, "{a:?}");
        let s = &a.owned_by_gitops[0];
        assert!(s.contains("`helm` (Helm, Helm release `web`"), "{s}");
        assert!(s.contains("containers[app].resources.requests.cpu"), "{s}");
        // limits.cpu does not exist: nobody owns it.
        assert!(!s.contains("limits"), "{s}");
        // Accepted by the tool word or by the manager name.
        assert!(assess(&o, &[res(Section::Requests, Resource::Cpu)], &["helm".into()]).owned_by_gitops.is_empty());
        assert!(assess(&o, &[Field::Replicas], &["helm".into()]).owned_by_gitops.is_empty());
        assert!(!assess(&o, &[Field::Replicas], &["argocd".into()]).owned_by_gitops.is_empty());
    }

    #[test]
    fn argo_cd_server_side_apply_is_a_reason() {
        let o = fixture("deployment-argo");
        let m = markers(&o);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0].tool, OwnerClass::ArgoCd);
        assert!(m[0].detail.starts_with("Argo CD application `shop`"), "{}", m[0].detail);
        let a = assess(&o, &[Field::Replicas], &[]);
        assert_eq!(a.owned_by_gitops.len(), 1);
        assert!(a.owned_by_gitops[0].contains("`argocd-controller` (Argo CD"), "{a:?}");
        assert!(assess(&o, &[Field::Replicas], &["argocd-controller".into()]).owned_by_gitops.is_empty());
    }

    /// Argo CD's client-side sync writes as kubectl-client-side-apply: with its markers on the
    /// object, that one-off manager is no longer one-off.
    #[test]
    fn one_off_manager_with_gitops_markers_is_a_reason() {
        let mut o = fixture("deployment-csa");
        o["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"] = "shop:apps/Deployment:fx/csa".into();
        let a = assess(&o, &[Field::Replicas], &[]);
        assert!(a.takeovers.is_empty());
        assert_eq!(a.owned_by_gitops.len(), 1);
        assert!(
            a.owned_by_gitops[0].contains(
                "`kubectl-client-side-apply` owns spec.replicas and the object carries Argo CD application `shop`"
            ),
            "{a:?}"
        );
        assert_eq!(assess(&o, &[Field::Replicas], &["argocd".into()]).owned_by_gitops, Vec::<String>::new());
    }

    #[test]
    fn instance_label_alone_is_not_argo_cd() {
        let mut o = fixture("deployment-csa");
        o["metadata"]["labels"]["app.kubernetes.io/instance"] = "shop".into();
        assert!(markers(&o).is_empty());
        // With an Argo CD manager it is.
        let argo = fixture("deployment-argo");
        let mut a = argo.clone();
        a["metadata"]["annotations"].as_object_mut().map(|m| m.remove("argocd.argoproj.io/tracking-id"));
        let m = markers(&a);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].detail, "Argo CD application `shop` (label app.kubernetes.io/instance=shop)");
    }

    /// `resources: {}` applied by kustomize-controller is recorded as the leaf `"f:resources": {}`:
    /// the whole resources value is Flux's, so a new key in it is Flux's too.
    #[test]
    fn parent_owned_as_a_whole_owns_the_key() {
        let o = fixture("deployment-flux");
        assert_eq!(managers(&o, &res(Section::Requests, Resource::Cpu)), ["kustomize-controller"]);
        let m = markers(&o);
        assert_eq!(m.len(), 1);
        assert_eq!(
            m[0].detail,
            "Flux Kustomization `flux-system/apps` (label kustomize.toolkit.fluxcd.io/name=apps, label kustomize.toolkit.fluxcd.io/namespace=flux-system)"
        );
        let a = assess(&o, &[res(Section::Limits, Resource::Memory)], &[]);
        assert_eq!(a.owned_by_gitops.len(), 1, "{a:?}");
        assert!(a.owned_by_gitops[0].contains("`kustomize-controller` (Flux, Flux Kustomization"), "{a:?}");
        // A parent with children (`.` plus keys) does not own a missing key.
        let patched = fixture("deployment-patched");
        assert!(managers(&patched, &res(Section::Limits, Resource::Memory)).is_empty());
    }

    #[test]
    fn hpa_fields_of_an_operator_are_a_reason() {
        let o = fixture("hpa-keda");
        for f in [Field::HpaMin, Field::HpaMax, Field::HpaMetrics] {
            assert_eq!(managers(&o, &f), ["keda-operator"], "{f:?}");
        }
        let a = assess(&o, &[Field::HpaMin, Field::HpaMetrics], &[]);
        assert_eq!(
            a.owned_by_gitops,
            [
                "field manager `keda-operator` (a controller or operator, which may write its own values back) owns spec.minReplicas, spec.metrics"
            ]
        );
        assert!(assess(&o, &[Field::HpaMin], &["keda-operator".into()]).owned_by_gitops.is_empty());
    }

    #[test]
    fn infra_scale_and_no_managed_fields_are_fine() {
        let mut o = fixture("deployment-patched");
        for e in o["metadata"]["managedFields"].as_array_mut().into_iter().flatten() {
            e["manager"] = "infra-scale".into();
        }
        assert_eq!(assess(&o, &[Field::Replicas, res(Section::Requests, Resource::Cpu)], &[]), Assessment::default());
        let bare = serde_json::json!({"metadata": {"name": "x"}});
        assert_eq!(assess(&bare, &[Field::Replicas], &[]), Assessment::default());
    }
}
