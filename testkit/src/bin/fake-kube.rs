//! `fake-kube`: runs the fake Kubernetes API server with a demo fixture until killed, for the
//! benchmark and the action harness.
//!
//! Usage: `fake-kube --kubeconfig PATH [--context NAME] [--workloads N] [--latency-ms MS]`
//! Fixture: namespace `assistant` with Deployments `web` and `api` (3 replicas, one container named
//! like the workload, requests cpu 250m / memory 256Mi, limit memory 512Mi); `--workloads N` adds
//! Deployments `app-001` … `app-N` of the same shape; `--latency-ms MS` delays every answer by MS
//! milliseconds (a remote API server's round trip). Prints `url=<server URL>` and
//! `kubeconfig=<path>` on stdout once ready, then serves until killed.

use std::io::Write;
use std::path::PathBuf;
use testkit::kube::{Container, FakeKube};

fn usage(message: &str) -> ! {
    eprintln!("error: {message}");
    eprintln!("usage: fake-kube --kubeconfig PATH [--context NAME] [--workloads N] [--latency-ms MS]");
    std::process::exit(2);
}

fn main() {
    let mut kubeconfig: Option<PathBuf> = None;
    let mut context = "fake".to_string();
    let mut workloads = 0usize;
    let mut latency_ms = 0u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value =
            || inline.clone().or_else(|| args.next()).unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(value())),
            "--context" => context = value(),
            "--workloads" => {
                let v = value();
                workloads = v.parse().unwrap_or_else(|_| usage(&format!("--workloads must be a number, got `{v}`")));
            }
            "--latency-ms" => {
                let v = value();
                latency_ms = v.parse().unwrap_or_else(|_| usage(&format!("--latency-ms must be a number, got `{v}`")));
            }
            "-h" | "--help" => {
                println!("usage: fake-kube --kubeconfig PATH [--context NAME] [--workloads N] [--latency-ms MS]");
                return;
            }
            other => usage(&format!("unknown argument `{other}`")),
        }
    }
    let Some(kubeconfig) = kubeconfig else { usage("--kubeconfig PATH is required") };
    let kube = FakeKube::start();
    kube.set_latency(std::time::Duration::from_millis(latency_ms));
    let container =
        |name: &str| Container::new(name).request("cpu", "250m").request("memory", "256Mi").limit("memory", "512Mi");
    kube.add_namespace("assistant");
    for name in ["web", "api"] {
        kube.add_deployment("assistant", name, 3, &[container(name)]);
    }
    for i in 1..=workloads {
        let name = format!("app-{i:03}");
        kube.add_deployment("assistant", &name, 3, &[container(&name)]);
    }
    std::fs::write(&kubeconfig, kube.kubeconfig(&[&context], &context))
        .unwrap_or_else(|e| usage(&format!("cannot write {}: {e}", kubeconfig.display())));
    let mut out = std::io::stdout();
    let _ = writeln!(out, "url={}", kube.url());
    let _ = writeln!(out, "kubeconfig={}", kubeconfig.display());
    let _ = out.flush();
    loop {
        std::thread::park();
    }
}
