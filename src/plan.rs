//! The ScalePlan file (`apiVersion: infra.scale/v1`, `kind: ScalePlan`): its types, its YAML
//! form, strict parsing of untrusted plan files, re-validation, and digests.
//!
//! The shape is the prototype's (metadata, context, assumptions, actions, rollbackHints, risks,
//! notes) with `memory` instead of `mem`. Extensions, all optional on input:
//! - `scale_workload.hpa`: the HPA that governs the workload (then the executor does not set
//!   `spec.replicas`, see the notes) and `effective`: the live current count clamped into that
//!   HPA's bounds, which is what its controller does (the requested count is never sent).
//! - `update_resources.container`: the container whose resources change; when absent the executor
//!   picks it by [`CONTAINER_RULE`]. `update_resources.from`: the container's observed resources.
//! - `apply_hpa.target`: the scale target (kind + name); `apply_hpa.from`: the observed HPA or `absent`.
//! - `observed`: what `--detect` read (uid, resourceVersion, generation, containers, HPA) so that
//!   execution can refuse a plan whose cluster has drifted.
//! - risks and notes are objects with a `severity` (`info`, `warning`, `error`) and a `code`.
//! - restore plans (written by `infra-scale apply`) also use `delete_hpa` and `restore_resources`.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::error::{Error, Problems, Result};
use crate::names;
use crate::quantity::{Quantity, Resource};

pub const API_VERSION: &str = "infra.scale/v1";
pub const KIND: &str = "ScalePlan";
/// The placeholder the prototype wrote while the live value is unknown.
pub const DETECT: &str = "${detect}";
/// How the executor chooses a container when the plan names none.
pub const CONTAINER_RULE: &str =
    "the workload's only container; otherwise the container named like the workload; otherwise execution refuses";
/// Plans larger than this are refused before parsing.
pub const MAX_PLAN_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScalePlan {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub context: Context,
    pub assumptions: Assumptions,
    pub actions: Vec<Action>,
    pub rollback_hints: Vec<String>,
    pub risks: Vec<Finding>,
    pub notes: Vec<Finding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<Observed>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    /// RFC 3339 UTC time the plan was made (pinned by SOURCE_DATE_EPOCH).
    pub created_at: String,
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Context {
    pub kube_context: String,
    pub namespace: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Assumptions {
    /// `hpa` when an HPA governs at least one workload, otherwise `none`.
    pub autoscaling: String,
    /// `detected` when `from:` values were read from the cluster, `unknown` otherwise.
    #[serde(default = "unknown")]
    pub live_state: String,
    /// Replica counts above this raise a warning.
    #[serde(default = "default_threshold")]
    pub replicas_threshold: u32,
    /// How a container is chosen when an action names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_rule: Option<String>,
}

fn unknown() -> String {
    "unknown".into()
}

fn default_threshold() -> u32 {
    10
}

/// Workload kinds infra-scale scales (both expose `/scale` and `rollout status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
}

impl WorkloadKind {
    /// Parses a kind as written on the command line (case-insensitive, short names accepted).
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "deployment" | "deploy" | "deployments" => Ok(WorkloadKind::Deployment),
            "statefulset" | "sts" | "statefulsets" => Ok(WorkloadKind::StatefulSet),
            "daemonset" | "ds" => Err("a DaemonSet runs one pod per node and has no replica count to scale".into()),
            "job" | "cronjob" => Err(format!("a {text} runs to completion; it has no replica count to scale")),
            "replicaset" | "rs" => Err("a ReplicaSet is owned by its Deployment; scale the Deployment instead".into()),
            "pod" => Err("a bare Pod cannot be scaled; scale the Deployment or StatefulSet that owns it".into()),
            _ => Err(format!("`{text}` is not a workload kind infra-scale scales")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
        }
    }

    /// kubectl's resource name (`deployment`, `statefulset`).
    pub fn resource(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
        }
    }

    /// The fully qualified resource (`deployments.apps`, `statefulsets.apps`).
    pub fn qualified_resource(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployments.apps",
            WorkloadKind::StatefulSet => "statefulsets.apps",
        }
    }

    /// Checks a name with the rule for this kind.
    pub fn check_name(self, name: &str) -> std::result::Result<(), (String, &'static str)> {
        match self {
            // ValidateDeploymentName = NameIsDNSSubdomain
            WorkloadKind::Deployment => names::dns1123_subdomain(name).map_err(|e| (e, names::SUBDOMAIN_HELP)),
            // StatefulSet names become pod host names: DNS-1123 labels.
            WorkloadKind::StatefulSet => names::dns1123_label(name).map_err(|e| (e, names::LABEL_HELP)),
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one kind an `apply_hpa` action has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HpaKind {
    HorizontalPodAutoscaler,
}

/// A value read from the cluster, or the `${detect}` placeholder while it is unknown.
#[derive(Debug, Clone, PartialEq)]
pub enum Live<T> {
    Detect,
    Known(T),
}

impl<T> Live<T> {
    pub fn known(&self) -> Option<&T> {
        match self {
            Live::Detect => None,
            Live::Known(v) => Some(v),
        }
    }
}

impl<T: Serialize> Serialize for Live<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Live::Detect => s.serialize_str(DETECT),
            Live::Known(v) => v.serialize(s),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Live<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let value = serde_yaml::Value::deserialize(d)?;
        if value.as_str() == Some(DETECT) {
            return Ok(Live::Detect);
        }
        T::deserialize(value).map(Live::Known).map_err(serde::de::Error::custom)
    }
}

/// The observed HPA of an `apply_hpa` action: absent, or its bounds.
#[derive(Debug, Clone, PartialEq)]
pub enum ObservedHpa {
    Absent,
    Present(HpaSpec),
}

impl Serialize for ObservedHpa {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            ObservedHpa::Absent => s.serialize_str("absent"),
            ObservedHpa::Present(spec) => spec.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ObservedHpa {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let value = serde_yaml::Value::deserialize(d)?;
        if value.as_str() == Some("absent") {
            return Ok(ObservedHpa::Absent);
        }
        HpaSpec::deserialize(value).map(ObservedHpa::Present).map_err(serde::de::Error::custom)
    }
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    ScaleWorkload(ScaleWorkload),
    UpdateResources(UpdateResources),
    ApplyHpa(ApplyHpa),
    /// Only in restore plans: remove an HPA that did not exist before execution.
    DeleteHpa(DeleteHpa),
    /// Only in restore plans: set one container's cpu/memory requests and limits back to exactly
    /// the snapshot's values (keys not listed are released, so the API server removes the ones
    /// infra-scale added), where `update_resources` only ever adds or changes keys.
    RestoreResources(RestoreResources),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RestoreResources {
    pub kind: WorkloadKind,
    pub name: String,
    pub namespace: String,
    pub container: String,
    #[serde(default, skip_serializing_if = "ResourceList::is_empty")]
    pub requests: ResourceList,
    #[serde(default, skip_serializing_if = "ResourceList::is_empty")]
    pub limits: ResourceList,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeleteHpa {
    pub kind: HpaKind,
    pub name: String,
    pub namespace: String,
}

impl Action {
    /// `Deployment/web`, `HorizontalPodAutoscaler/web`.
    pub fn object(&self) -> String {
        match self {
            Action::ScaleWorkload(a) => format!("{}/{}", a.kind, a.name),
            Action::UpdateResources(a) => format!("{}/{}", a.kind, a.name),
            Action::ApplyHpa(a) => format!("HorizontalPodAutoscaler/{}", a.name),
            Action::DeleteHpa(a) => format!("HorizontalPodAutoscaler/{}", a.name),
            Action::RestoreResources(a) => format!("{}/{}", a.kind, a.name),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Action::ScaleWorkload(_) => "scale_workload",
            Action::UpdateResources(_) => "update_resources",
            Action::ApplyHpa(_) => "apply_hpa",
            Action::DeleteHpa(_) => "delete_hpa",
            Action::RestoreResources(_) => "restore_resources",
        }
    }

    pub fn namespace(&self) -> &str {
        match self {
            Action::ScaleWorkload(a) => &a.namespace,
            Action::UpdateResources(a) => &a.namespace,
            Action::ApplyHpa(a) => &a.namespace,
            Action::DeleteHpa(a) => &a.namespace,
            Action::RestoreResources(a) => &a.namespace,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScaleWorkload {
    pub kind: WorkloadKind,
    pub name: String,
    pub namespace: String,
    pub from: Live<u32>,
    pub to: u32,
    pub reason: String,
    /// The HPA that governs this workload; the executor then leaves `spec.replicas` to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa: Option<String>,
    /// The replica count the governing HPA sets right after the change: the live current count
    /// clamped into its bounds (the HPA controller's reconcileAutoscaler clamps only the current
    /// replicas; the requested count is never sent under an HPA); absent when the current count
    /// was not detected. Metrics move it within the bounds afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateResources {
    pub kind: WorkloadKind,
    pub name: String,
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Live<Resources>>,
    #[serde(default, skip_serializing_if = "ResourceList::is_empty")]
    pub requests: ResourceList,
    #[serde(default, skip_serializing_if = "ResourceList::is_empty")]
    pub limits: ResourceList,
}

/// A container's requests and limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "ResourceList::is_empty")]
    pub requests: ResourceList,
    #[serde(default, skip_serializing_if = "ResourceList::is_empty")]
    pub limits: ResourceList,
}

/// `cpu` and `memory` quantities; `mem` is read as `memory` and never written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceList {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "mem")]
    pub memory: Option<Quantity>,
}

impl ResourceList {
    pub fn is_empty(&self) -> bool {
        self.cpu.is_none() && self.memory.is_none()
    }

    pub fn get(&self, r: Resource) -> Option<&Quantity> {
        match r {
            Resource::Cpu => self.cpu.as_ref(),
            Resource::Memory => self.memory.as_ref(),
        }
    }

    pub fn set(&mut self, r: Resource, q: Quantity) {
        match r {
            Resource::Cpu => self.cpu = Some(q),
            Resource::Memory => self.memory = Some(q),
        }
    }

    /// `cpu=500m,memory=1Gi` (kubectl's form).
    pub fn to_kubectl(&self) -> String {
        let mut parts = Vec::new();
        for r in [Resource::Cpu, Resource::Memory] {
            if let Some(q) = self.get(r) {
                parts.push(format!("{}={}", r.name(), q));
            }
        }
        parts.join(",")
    }

    /// [`to_kubectl`](Self::to_kubectl), or `none` for an empty list (for messages).
    pub fn describe(&self) -> String {
        if self.is_empty() { "none".into() } else { self.to_kubectl() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApplyHpa {
    pub kind: HpaKind,
    pub name: String,
    pub namespace: String,
    /// The workload the HPA scales (`scaleTargetRef`); defaults to a Deployment named like the HPA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetRef>,
    pub hpa: HpaSpec,
    /// Restore plans: the HPA's `spec.metrics` list exactly as it was (autoscaling/v2 shape; an
    /// atomic list, restored whole, other metrics included). Excludes `hpa.targetCPU`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Live<ObservedHpa>>,
}

impl ApplyHpa {
    /// The scale target, defaulting to the prototype's implicit Deployment of the same name.
    pub fn target(&self) -> TargetRef {
        self.target.clone().unwrap_or(TargetRef { kind: WorkloadKind::Deployment, name: self.name.clone() })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetRef {
    pub kind: WorkloadKind,
    pub name: String,
}

/// HPA bounds: `min`/`max` replicas and the CPU utilization target in percent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HpaSpec {
    pub min: u32,
    pub max: u32,
    #[serde(rename = "targetCPU", default, skip_serializing_if = "Option::is_none")]
    pub target_cpu: Option<u32>,
}

impl HpaSpec {
    /// A replica count clamped into [min, max].
    pub fn clamp(&self, replicas: u32) -> u32 {
        replicas.clamp(self.min, self.max.max(self.min))
    }

    /// What the HPA controller does with the workload's current replica count before looking at
    /// metrics (horizontal.go reconcileAutoscaler): 0 disables autoscaling (it stays 0), above
    /// max becomes max, below min becomes min, otherwise it stays until the metrics move it.
    pub fn reconcile_current(&self, current: u32) -> u32 {
        if current == 0 && self.min > 0 { 0 } else { self.clamp(current) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// A risk or note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    pub severity: Severity,
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    pub message: String,
}

/// What `--detect` read from the cluster, for drift checks at execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Observed {
    pub workloads: Vec<ObservedWorkload>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quotas: Vec<ObservedQuota>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObservedWorkload {
    pub kind: WorkloadKind,
    pub name: String,
    pub uid: String,
    pub resource_version: String,
    pub generation: i64,
    pub replicas: u32,
    /// Rolling-update surge, as written on the workload (`25%` or a count); Deployments only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<String>,
    /// A Deployment's `spec.paused`: template changes do not roll until `kubectl rollout resume`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// `Recreate` (Deployment `strategy.type`) or `OnDelete` (StatefulSet `updateStrategy.type`);
    /// absent for the default RollingUpdate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_strategy: Option<String>,
    /// A StatefulSet's `updateStrategy.rollingUpdate.partition` when above 0: pods with a lower
    /// ordinal keep the old template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
    pub containers: Vec<ObservedContainer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<ObservedContainer>,
    /// The HPA whose scaleTargetRef is this workload, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa: Option<ObservedHpaObject>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObservedContainer {
    pub name: String,
    #[serde(default, skip_serializing_if = "ResourceList::is_empty")]
    pub requests: ResourceList,
    #[serde(default, skip_serializing_if = "ResourceList::is_empty")]
    pub limits: ResourceList,
    /// `Always` for a native sidecar (an init container that keeps running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObservedHpaObject {
    pub name: String,
    pub resource_version: String,
    #[serde(flatten)]
    pub spec: HpaSpec,
    /// Metrics other than CPU utilization (a server-side apply of infra-scale's HPA replaces them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_metrics: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObservedQuota {
    pub name: String,
    /// `status.hard` for the keys infra-scale checks (requests.cpu, limits.memory, cpu, memory, pods, …).
    pub hard: std::collections::BTreeMap<String, String>,
    pub used: std::collections::BTreeMap<String, String>,
}

impl ScalePlan {
    /// The plan as YAML, the exact bytes written to plan.yaml.
    pub fn to_yaml(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_yaml::to_string(self).unwrap_or_default()
    }

    /// Parses a plan from an untrusted source (a pull request): size-capped, aliases and tags
    /// refused, unknown fields refused, then every name and quantity re-validated.
    pub fn parse_untrusted(text: &str, source: &str) -> Result<ScalePlan> {
        if text.len() > MAX_PLAN_BYTES {
            return Err(Error::invalid(
                source,
                format!("the plan is {} bytes; the limit is {MAX_PLAN_BYTES}", text.len()),
                "a ScalePlan written by `infra-scale plan` is a few kilobytes per workload",
            ));
        }
        if let Some((line, token)) = find_alias_or_anchor(text) {
            return Err(Error::invalid(
                format!("{source}:{line}"),
                format!("YAML anchors, aliases and tags are not accepted in a plan (found `{token}`)"),
                "write the plan as plain YAML, as `infra-scale plan` does",
            ));
        }
        let plan: ScalePlan = serde_yaml::from_str(text).map_err(|e| {
            let location = e.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
            Error::invalid(
                format!("{source}{location}"),
                format!("not a valid ScalePlan: {e}"),
                "a ScalePlan (apiVersion infra.scale/v1) as written by `infra-scale plan`; unknown fields are refused",
            )
        })?;
        plan.validate(source)?;
        Ok(plan)
    }

    /// Re-validates every name, quantity and bound with the planner's rules.
    pub fn validate(&self, source: &str) -> Result<()> {
        let mut p = Problems::default();
        if self.api_version != API_VERSION {
            p.push(
                format!("{source}: apiVersion"),
                format!("`{}` is not supported", self.api_version),
                format!("apiVersion: {API_VERSION}"),
            );
        }
        if self.kind != KIND {
            p.push(format!("{source}: kind"), format!("`{}` is not a ScalePlan", self.kind), format!("kind: {KIND}"));
        }
        if let Err(e) = names::dns1123_label(&self.metadata.target) {
            p.push(format!("{source}: metadata.target"), format!("`{}` {e}", self.metadata.target), names::LABEL_HELP);
        }
        let ns = &self.context.namespace;
        if let Err(e) = names::dns1123_label(ns) {
            p.push(format!("{source}: context.namespace"), format!("`{ns}` {e}"), names::LABEL_HELP);
        }
        if self.context.kube_context.is_empty() || self.context.kube_context.chars().any(|c| c.is_control()) {
            p.push(
                format!("{source}: context.kubeContext"),
                format!("`{}` is not a kube context name", self.context.kube_context.escape_debug()),
                "the name of a context in your kubeconfig",
            );
        }
        if self.actions.is_empty() {
            p.push(format!("{source}: actions"), "the plan has no actions", "at least one action");
        }
        let mut seen = BTreeSet::new();
        for (i, action) in self.actions.iter().enumerate() {
            let at = format!("{source}: actions[{i}] ({})", action.name());
            if action.namespace() != ns {
                p.push(
                    &at,
                    format!("namespace `{}` differs from context.namespace `{ns}`", action.namespace()),
                    "every action of a plan targets the plan's namespace",
                );
            }
            if !seen.insert((action.name(), action.object())) {
                p.push(&at, format!("{} appears twice", action.object()), "one action of each type per object");
            }
            // The restore-plan actions set the same fields as their forward counterparts.
            let twin = match action {
                Action::RestoreResources(_) => Some("update_resources"),
                Action::DeleteHpa(_) => Some("apply_hpa"),
                _ => None,
            };
            if let Some(twin) = twin
                && self.actions.iter().any(|a| a.name() == twin && a.object() == action.object())
            {
                p.push(
                    &at,
                    format!("{} also has a {twin} action; both would set the same fields", action.object()),
                    format!("keep either {} or {twin} for an object", action.name()),
                );
            }
            match action {
                Action::ScaleWorkload(a) => {
                    check_workload_name(&mut p, &at, a.kind, &a.name);
                    if a.reason.is_empty() {
                        p.push(&at, "reason is empty", "a reason such as requested_scale");
                    }
                }
                Action::UpdateResources(a) => {
                    check_workload_name(&mut p, &at, a.kind, &a.name);
                    if let Some(c) = &a.container
                        && let Err(e) = names::dns1123_label(c)
                    {
                        p.push(&at, format!("container `{c}` {e}"), names::LABEL_HELP);
                    }
                    if a.requests.is_empty() && a.limits.is_empty() {
                        p.push(&at, "neither requests nor limits are set", "requests and/or limits with cpu/memory");
                    }
                    check_resources(&mut p, &at, &a.requests, &a.limits);
                }
                Action::ApplyHpa(a) => {
                    if let Err(e) = names::dns1123_subdomain(&a.name) {
                        p.push(&at, format!("HPA name `{}` {e}", a.name), names::SUBDOMAIN_HELP);
                    }
                    let target = a.target();
                    check_workload_name(&mut p, &at, target.kind, &target.name);
                    check_hpa(&mut p, &at, &a.hpa);
                    if let Some(metrics) = &a.metrics {
                        if a.hpa.target_cpu.is_some() {
                            p.push(
                                &at,
                                "both `hpa.targetCPU` and `metrics` are set",
                                "one of them: `metrics` (the whole autoscaling/v2 list) or `hpa.targetCPU`",
                            );
                        }
                        for (j, m) in metrics.iter().enumerate() {
                            if m.get("type").and_then(serde_json::Value::as_str).is_none() {
                                p.push(
                                    format!("{at}.metrics[{j}]"),
                                    "is not an autoscaling/v2 metric",
                                    "a mapping with a `type` (Resource, Pods, Object, External, ContainerResource)",
                                );
                            }
                        }
                    }
                }
                Action::DeleteHpa(a) => {
                    if let Err(e) = names::dns1123_subdomain(&a.name) {
                        p.push(&at, format!("HPA name `{}` {e}", a.name), names::SUBDOMAIN_HELP);
                    }
                }
                Action::RestoreResources(a) => {
                    check_workload_name(&mut p, &at, a.kind, &a.name);
                    if let Err(e) = names::dns1123_label(&a.container) {
                        p.push(&at, format!("container `{}` {e}", a.container), names::LABEL_HELP);
                    }
                    check_resources(&mut p, &at, &a.requests, &a.limits);
                }
            }
        }
        p.finish(())
    }

    /// Workloads named by the plan's actions, in first-seen order.
    pub fn workloads(&self) -> Vec<(WorkloadKind, String)> {
        let mut out: Vec<(WorkloadKind, String)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for action in &self.actions {
            let w = match action {
                Action::ScaleWorkload(a) => (a.kind, a.name.clone()),
                Action::UpdateResources(a) => (a.kind, a.name.clone()),
                Action::RestoreResources(a) => (a.kind, a.name.clone()),
                Action::ApplyHpa(a) => {
                    let t = a.target();
                    (t.kind, t.name)
                }
                Action::DeleteHpa(_) => continue,
            };
            if seen.insert(w.clone()) {
                out.push(w);
            }
        }
        out
    }
}

fn check_workload_name(p: &mut Problems, at: &str, kind: WorkloadKind, name: &str) {
    if let Err((e, help)) = kind.check_name(name) {
        p.push(at, format!("{kind} name `{name}` {e}"), help);
    }
}

/// Per-resource checks shared by the request validator and the plan re-validator.
pub fn check_resources(p: &mut Problems, at: &str, requests: &ResourceList, limits: &ResourceList) {
    for r in [Resource::Cpu, Resource::Memory] {
        for (which, list) in [("request", requests), ("limit", limits)] {
            if let Some(q) = list.get(r)
                && let Err((message, help)) = r.quantity(q.as_str())
            {
                p.push(at, format!("{which}: {message}"), help);
            }
        }
        if let (Some(req), Some(lim)) = (requests.get(r), limits.get(r))
            && lim < req
        {
            p.push(
                at,
                format!("{r} limit {lim} is below the {r} request {req}; the API server rejects it"),
                format!("set the {r} limit to at least the request"),
            );
        }
    }
}

/// HPA bound checks (autoscaling/v2 validation).
pub fn check_hpa(p: &mut Problems, at: &str, hpa: &HpaSpec) {
    if hpa.min < 1 {
        p.push(at, format!("HPA min {} is below 1", hpa.min), "min:N with N ≥ 1");
    }
    if hpa.max < hpa.min {
        p.push(at, format!("HPA max {} is below min {}", hpa.max, hpa.min), "max:N with N ≥ min");
    }
    if let Some(cpu) = hpa.target_cpu
        && cpu < 1
    {
        p.push(at, format!("HPA CPU target {cpu}% is below 1%"), "cpu:P with P ≥ 1 (percent of the CPU request)");
    }
}

/// Finds the first YAML anchor (`&a`), alias (`*a`) or tag (`!t`) at the start of a node.
fn find_alias_or_anchor(text: &str) -> Option<(usize, String)> {
    for (n, line) in text.lines().enumerate() {
        let mut in_single = false;
        let mut in_double = false;
        let mut prev = ' ';
        let mut at_node_start = true;
        let chars: Vec<char> = line.chars().collect();
        for (i, &c) in chars.iter().enumerate() {
            match c {
                '\'' if !in_double => in_single = !in_single,
                '"' if !in_single && prev != '\\' => in_double = !in_double,
                '#' if !in_single && !in_double && (prev == ' ' || i == 0) => break,
                '&' | '*' | '!' if !in_single && !in_double && at_node_start => {
                    let token: String = chars[i..].iter().take_while(|c| !c.is_whitespace()).collect();
                    if token.len() > 1 {
                        return Some((n + 1, token));
                    }
                }
                _ => {}
            }
            if !in_single && !in_double {
                at_node_start = match c {
                    ' ' => at_node_start || matches!(prev, ':' | '-' | ',' | '[' | '{' | '?'),
                    '[' | '{' | ',' => true,
                    _ => false,
                };
            }
            prev = c;
        }
    }
    None
}

/// sha256 of bytes, as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_aliases_and_tags_are_found_but_not_in_text() {
        assert!(find_alias_or_anchor("a: &x 1\nb: *x\n").is_some());
        assert!(find_alias_or_anchor("- *x\n").is_some());
        assert!(find_alias_or_anchor("a: !!binary abc\n").is_some());
        assert!(find_alias_or_anchor("a: [*x]\n").is_some());
        assert!(find_alias_or_anchor("message: 2× up & 3 * 4\n").is_none());
        assert!(find_alias_or_anchor("message: 'a: *b'\n").is_none());
        assert!(find_alias_or_anchor("a: 1 # &x\n").is_none());
    }
}
