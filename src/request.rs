//! The scaling request: flags and the config file merged (flags win) and validated, with every
//! problem reported at once. The planner consumes a [`ScaleRequest`] and never sees flags.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::config::{self, ConfigFile, HpaConfig, TargetConfig};
use crate::error::{Error, Problems, Result};
use crate::names;
use crate::plan::{self, HpaSpec, ResourceList, WorkloadKind};
use crate::quantity::Resource;

/// `--fail-on` levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    Warning,
    Error,
}

/// Everything `infra-scale plan` was asked to do, free of clap.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    pub publish: bool,
    pub target: Option<String>,
    pub config: Option<PathBuf>,
    pub namespace: Option<String>,
    pub context: Option<String>,
    pub workloads: Vec<String>,
    pub hpa: Vec<String>,
    pub requests: Vec<String>,
    pub limits: Vec<String>,
    pub detect: bool,
    pub fail_on: Option<FailOn>,
    pub replicas_threshold: Option<u32>,
    pub out: Option<PathBuf>,
    pub require_pr: bool,
    pub reviewers: Vec<String>,
}

/// A validated request for one target.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleRequest {
    pub target: String,
    pub kube_context: String,
    pub namespace: String,
    /// The GitHub environment guarding the target's execution (config `environment`, default
    /// `infra-scale-<target>`).
    pub environment: String,
    /// Whether scheduled planning reads the live state (config `detect`, default true).
    pub detect_nightly: bool,
    pub workloads: Vec<WorkloadRequest>,
    pub replicas_threshold: u32,
    pub fail_on: Option<FailOn>,
}

/// What is asked of one workload.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadRequest {
    pub kind: WorkloadKind,
    pub name: String,
    pub replicas: Option<u32>,
    pub container: Option<String>,
    pub requests: ResourceList,
    pub limits: ResourceList,
    pub hpa: Option<HpaSpec>,
}

impl WorkloadRequest {
    fn new(kind: WorkloadKind, name: &str) -> Self {
        WorkloadRequest {
            kind,
            name: name.to_string(),
            replicas: None,
            container: None,
            requests: ResourceList::default(),
            limits: ResourceList::default(),
            hpa: None,
        }
    }
}

const WORKLOAD_HELP: &str =
    "--workload=KIND:NAME:REPLICAS with KIND Deployment or StatefulSet, e.g. --workload=Deployment:web:6";
const HPA_HELP: &str = "--hpa=min:N,max:N,cpu:P for every workload, or --hpa=NAME=min:N,max:N,cpu:P for one, e.g. --hpa=min:4,max:12,cpu:65";
const RES_HELP: &str = "NAME[/CONTAINER]:cpu=Q,memory=Q (mem is accepted for memory), e.g. web:cpu=500m,memory=1Gi";

/// Builds the request from the command line and the config file, reporting every problem.
pub fn build(opts: &PlanOptions) -> Result<ScaleRequest> {
    let config = load_config(opts)?;
    build_with(opts, config.as_ref().map(|(path, file)| (path.as_str(), file)))
}

/// Like [`build`], with the config file already read (`(shown path, file)`).
pub fn build_with(opts: &PlanOptions, config: Option<(&str, &ConfigFile)>) -> Result<ScaleRequest> {
    let mut p = Problems::default();
    let target = match &opts.target {
        Some(t) => t.clone(),
        None => {
            return Err(Error::invalid(
                "--target",
                "no target given",
                "--target=NAME (e.g. prod or staging); it names the plan, its branch and the config section",
            ));
        }
    };
    if let Err(e) = names::dns1123_label(&target) {
        p.push(format!("--target={target}"), format!("`{target}` {e}"), names::LABEL_HELP);
    }
    let empty = TargetConfig::default();
    let file_target = match config {
        Some((path, file)) => match file.targets.get(&target) {
            Some(t) => Some((path, t)),
            None if opts.config.is_some() || (opts.workloads.is_empty() && opts.namespace.is_none()) => {
                let known: Vec<&str> = file.targets.keys().map(String::as_str).collect();
                return Err(Error::invalid(
                    format!("--target={target}"),
                    format!("{path} has no target `{target}`"),
                    format!("one of: {}", known.join(", ")),
                ));
            }
            None => None,
        },
        None => None,
    };
    let (source, t) = file_target.unwrap_or(("", &empty));
    let at = |key: &str| format!("{source}: targets.{target}.{key}");

    // Namespace and context: flags override the file.
    let namespace = match (&opts.namespace, &t.namespace) {
        (Some(ns), _) => Some((ns.clone(), format!("--namespace={ns}"))),
        (None, Some(ns)) => Some((ns.clone(), at("namespace"))),
        (None, None) => None,
    };
    let namespace = match namespace {
        Some((ns, input)) => {
            if let Err(e) = names::dns1123_label(&ns) {
                p.push(input, format!("namespace `{ns}` {e}"), names::LABEL_HELP);
            }
            ns
        }
        None => {
            p.push("--namespace", "no namespace given", "--namespace=NAME or `namespace:` in the config target");
            String::new()
        }
    };
    let kube_context = opts
        .context
        .clone()
        .or_else(|| t.kube_context.clone())
        .unwrap_or_else(|| if target == "prod" { "production".into() } else { target.clone() });
    if kube_context.is_empty() || kube_context.chars().any(|c| c.is_control() || c.is_whitespace()) {
        p.push(
            "--context",
            format!("`{}` is not a kube context name", kube_context.escape_debug()),
            "a context name from your kubeconfig",
        );
    }

    let environment = t.environment_for(&target);
    if let Err(e) = config::check_environment(&environment) {
        p.push(at("environment"), format!("environment {e}"), config::ENVIRONMENT_HELP);
    }
    let detect_nightly = t.detect.unwrap_or(true);

    let mut workloads: Vec<WorkloadRequest> = Vec::new();
    // name → position in `workloads`: lookups stay O(1) for plans of thousands of workloads.
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut default_hpa: Option<HpaSpec> = None;
    // Workloads with their own HPA (file or named --hpa): an unnamed --hpa does not replace it.
    let mut hpa_from_file: HashSet<String> = HashSet::new();

    // The file first ...
    if let Some(h) = &t.hpa {
        plan::check_hpa(&mut p, &at("hpa"), &hpa_spec(h));
        default_hpa = Some(hpa_spec(h));
    }
    for (i, w) in t.workloads.iter().enumerate() {
        let input = at(&format!("workloads[{i}]"));
        let Some(kind) = parse_kind(&mut p, &input, &w.kind) else { continue };
        if !check_name(&mut p, &input, kind, &w.name) {
            continue;
        }
        if index.contains_key(&w.name) {
            p.push(&input, format!("workload `{}` is listed twice", w.name), "list each workload once");
            continue;
        }
        let mut wr = WorkloadRequest::new(kind, &w.name);
        wr.replicas = w.replicas;
        if let Some(c) = &w.container {
            if let Err(e) = names::dns1123_label(c) {
                p.push(&input, format!("container `{c}` {e}"), names::LABEL_HELP);
            }
            wr.container = Some(c.clone());
        }
        for (key, q) in &w.requests {
            set_quantity(&mut p, &format!("{input}.requests.{key}"), &mut wr.requests, key, &q.0);
        }
        for (key, q) in &w.limits {
            set_quantity(&mut p, &format!("{input}.limits.{key}"), &mut wr.limits, key, &q.0);
        }
        if let Some(h) = &w.hpa {
            plan::check_hpa(&mut p, &format!("{input}.hpa"), &hpa_spec(h));
            hpa_from_file.insert(w.name.clone());
            wr.hpa = Some(hpa_spec(h));
        }
        index.insert(wr.name.clone(), workloads.len());
        workloads.push(wr);
    }

    // ... then the flags, which override it.
    let mut flag_names: HashSet<String> = HashSet::new();
    for raw in &opts.workloads {
        let input = format!("--workload={raw}");
        let parts: Vec<&str> = raw.split(':').collect();
        if parts.len() < 2 || parts.len() > 3 {
            p.push(&input, format!("`{raw}` is not KIND:NAME:REPLICAS"), WORKLOAD_HELP);
            continue;
        }
        let Some(kind) = parse_kind(&mut p, &input, parts[0]) else { continue };
        let name = parts[1];
        if !check_name(&mut p, &input, kind, name) {
            continue;
        }
        let replicas = match parts.get(2) {
            None => None,
            Some(r) => match r.parse::<u32>() {
                Ok(n) if n <= 100_000 => Some(n),
                _ => {
                    p.push(&input, format!("replicas `{r}` is not a whole number from 0 to 100000"), WORKLOAD_HELP);
                    continue;
                }
            },
        };
        if !flag_names.insert(name.to_string()) {
            p.push(&input, format!("workload `{name}` is given twice"), "give each workload once");
            continue;
        }
        match index.get(name).map(|&i| &mut workloads[i]) {
            Some(w) => {
                w.kind = kind;
                if replicas.is_some() {
                    w.replicas = replicas;
                }
            }
            None => {
                let mut wr = WorkloadRequest::new(kind, name);
                wr.replicas = replicas;
                index.insert(wr.name.clone(), workloads.len());
                workloads.push(wr);
            }
        }
    }

    let mut flag_containers: HashMap<String, String> = HashMap::new();
    for (flag, raws) in [("--req", &opts.requests), ("--lim", &opts.limits)] {
        let mut seen: HashSet<String> = HashSet::new();
        for raw in raws {
            let input = format!("{flag}={raw}");
            let Some((who, pairs)) = raw.split_once(':') else {
                p.push(&input, format!("`{raw}` has no `NAME:` before the quantities"), RES_HELP);
                continue;
            };
            let (name, container) = match who.split_once('/') {
                Some((n, c)) => (n, Some(c)),
                None => (who, None),
            };
            if !seen.insert(name.to_string()) {
                p.push(
                    &input,
                    format!("{flag} for `{name}` is given twice"),
                    "put all of a workload's quantities in one flag",
                );
                continue;
            }
            let Some(w) = index.get(name).map(|&i| &mut workloads[i]) else {
                p.push(
                    &input,
                    format!("`{name}` is not one of the requested workloads"),
                    "add it with --workload=KIND:NAME:REPLICAS (or in the config target), or fix the name",
                );
                continue;
            };
            if let Some(c) = container {
                if let Err(e) = names::dns1123_label(c) {
                    p.push(&input, format!("container `{c}` {e}"), names::LABEL_HELP);
                } else if let Some(prev) = flag_containers.get(name).filter(|prev| prev.as_str() != c) {
                    p.push(
                        &input,
                        format!("container `{c}` differs from `{prev}` named for `{name}` in another flag"),
                        "one container per workload per plan",
                    );
                } else {
                    flag_containers.insert(name.to_string(), c.to_string());
                    w.container = Some(c.to_string());
                }
            }
            let list = if flag == "--req" { &mut w.requests } else { &mut w.limits };
            let mut keys_seen: Vec<Resource> = Vec::new();
            for pair in pairs.split(',') {
                let Some((key, value)) = pair.split_once('=') else {
                    p.push(&input, format!("`{pair}` is not KEY=QUANTITY"), RES_HELP);
                    continue;
                };
                if let Some(r) = Resource::parse(key) {
                    if keys_seen.contains(&r) {
                        p.push(&input, format!("{} is given twice", r.name()), RES_HELP);
                        continue;
                    }
                    keys_seen.push(r);
                }
                set_quantity(&mut p, &input, list, key, value);
            }
        }
    }

    for raw in &opts.hpa {
        let input = format!("--hpa={raw}");
        let (name, spec) = match raw.split_once('=') {
            Some((n, s)) => (Some(n), s),
            None => (None, raw.as_str()),
        };
        let Some(spec) = parse_hpa(&mut p, &input, spec) else { continue };
        match name {
            None => {
                default_hpa = Some(spec);
                for w in &mut workloads {
                    if !hpa_from_file.contains(&w.name) {
                        w.hpa = None;
                    }
                }
            }
            Some(n) => match index.get(n).map(|&i| &mut workloads[i]) {
                Some(w) => {
                    w.hpa = Some(spec);
                    hpa_from_file.insert(n.to_string());
                }
                None => p.push(
                    &input,
                    format!("`{n}` is not one of the requested workloads"),
                    "add it with --workload=KIND:NAME:REPLICAS, or fix the name",
                ),
            },
        }
    }
    if let Some(d) = &default_hpa {
        for w in &mut workloads {
            if w.hpa.is_none() {
                w.hpa = Some(d.clone());
            }
        }
    }

    // Cross-field rules.
    for w in &workloads {
        let input = format!("workload `{}`", w.name);
        plan::check_resources(&mut p, &input, &w.requests, &w.limits);
        if w.replicas.is_none() && w.requests.is_empty() && w.limits.is_empty() && w.hpa.is_none() {
            p.push(&input, "nothing is requested for it", "give replicas (KIND:NAME:REPLICAS), --req, --lim or --hpa");
        }
    }
    if workloads.is_empty() {
        p.push("--workload", "no workload given", WORKLOAD_HELP);
    }

    let fail_on = match (opts.fail_on, &t.fail_on) {
        (Some(f), _) => Some(f),
        (None, Some(f)) => match f.as_str() {
            "warning" => Some(FailOn::Warning),
            "error" => Some(FailOn::Error),
            other => {
                p.push(at("failOn"), format!("`{other}` is not a severity"), "failOn: warning or failOn: error");
                None
            }
        },
        (None, None) => None,
    };
    let replicas_threshold = opts.replicas_threshold.or(t.replicas_threshold).unwrap_or(10);

    p.finish(ScaleRequest {
        target,
        kube_context,
        namespace,
        environment,
        detect_nightly,
        workloads,
        replicas_threshold,
        fail_on,
    })
}

/// The config file named by `--config`, else `infra-scale.yaml` when it exists, with its shown path.
pub fn load_config(opts: &PlanOptions) -> Result<Option<(String, ConfigFile)>> {
    match &opts.config {
        Some(path) => Ok(Some((path.display().to_string(), config::load(path)?))),
        None if Path::new(config::DEFAULT_PATH).is_file() => {
            Ok(Some((config::DEFAULT_PATH.to_string(), config::load(Path::new(config::DEFAULT_PATH))?)))
        }
        None => Ok(None),
    }
}

fn parse_kind(p: &mut Problems, input: &str, text: &str) -> Option<WorkloadKind> {
    match WorkloadKind::parse(text) {
        Ok(k) => Some(k),
        Err(why) => {
            p.push(input, format!("kind `{text}` is refused: {why}"), "Deployment or StatefulSet");
            None
        }
    }
}

fn check_name(p: &mut Problems, input: &str, kind: WorkloadKind, name: &str) -> bool {
    match kind.check_name(name) {
        Ok(()) => true,
        Err((e, help)) => {
            p.push(input, format!("{kind} name `{name}` {e}"), help);
            false
        }
    }
}

fn set_quantity(p: &mut Problems, input: &str, list: &mut ResourceList, key: &str, value: &str) {
    let Some(r) = Resource::parse(key) else {
        p.push(input, format!("`{key}` is not a resource infra-scale sets"), "cpu, memory (or mem)");
        return;
    };
    match r.quantity(value) {
        Ok(q) => list.set(r, q),
        Err((message, help)) => p.push(input, message, help),
    }
}

fn hpa_spec(h: &HpaConfig) -> HpaSpec {
    HpaSpec { min: h.min, max: h.max, target_cpu: Some(h.cpu) }
}

fn parse_hpa(p: &mut Problems, input: &str, spec: &str) -> Option<HpaSpec> {
    let (mut min, mut max, mut cpu) = (None, None, None);
    let mut ok = true;
    for part in spec.split(',') {
        let Some((key, value)) = part.split_once(':') else {
            p.push(input, format!("`{part}` is not KEY:VALUE"), HPA_HELP);
            ok = false;
            continue;
        };
        let slot = match key {
            "min" => &mut min,
            "max" => &mut max,
            "cpu" => &mut cpu,
            _ => {
                p.push(input, format!("`{key}` is not an HPA setting"), HPA_HELP);
                ok = false;
                continue;
            }
        };
        if slot.is_some() {
            p.push(input, format!("`{key}` is given twice"), HPA_HELP);
            ok = false;
            continue;
        }
        let value = value.strip_suffix('%').unwrap_or(value);
        match value.parse::<u32>() {
            Ok(n) => *slot = Some(n),
            Err(_) => {
                p.push(input, format!("{key} `{value}` is not a whole number"), HPA_HELP);
                ok = false;
            }
        }
    }
    for (key, slot) in [("min", min), ("max", max), ("cpu", cpu)] {
        if slot.is_none() && ok {
            p.push(input, format!("`{key}` is missing"), HPA_HELP);
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    let spec = HpaSpec { min: min.unwrap_or_default(), max: max.unwrap_or_default(), target_cpu: cpu };
    let before = p.0.len();
    plan::check_hpa(p, input, &spec);
    (p.0.len() == before).then_some(spec)
}
