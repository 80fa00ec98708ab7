//! The fault proxy in front of the real control plane, driven by the real kubectl: each fault
//! acts on the requests its rule selects and only on those, and the server's state shows what
//! got through.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use testkit::cluster::RealCluster;
use testkit::faults::{Fault, FaultProxy, Rule};

struct Setup {
    cluster: &'static RealCluster,
    proxy: FaultProxy,
    ns: String,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    static N: AtomicUsize = AtomicUsize::new(0);
    let cluster = RealCluster::shared();
    let ns = format!("f{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
    cluster.kubectl(&["create", "namespace", &ns], None);
    for name in ["a", "b", "c"] {
        cluster.kubectl(&["-n", &ns, "create", "configmap", name, "--from-literal=k=v"], None);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let proxy = FaultProxy::start(&cluster.kubeconfig);
    let kubeconfig = proxy.write_kubeconfig(dir.path(), &["proxied"], &ns);
    Setup { cluster, proxy, ns, kubeconfig, _dir: dir }
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new("kubectl").arg(format!("--kubeconfig={}", kubeconfig.display())).args(args).output().expect("kubectl")
}

fn text(out: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn a_status_fault_answers_only_the_selected_request_with_a_kubernetes_status() {
    let s = setup();
    let path = format!("/api/v1/namespaces/{}/configmaps/a", s.ns);
    s.proxy.add(Rule::new(Fault::status(500, "etcdserver: request timed out")).method("GET").path(&path).nth(2));
    let first = kubectl(&s.kubeconfig, &["get", "configmap", "a", "-o", "name"]);
    assert!(first.status.success(), "{}", text(&first));
    let second = kubectl(&s.kubeconfig, &["get", "configmap", "a", "-o", "name"]);
    assert!(!second.status.success());
    assert!(
        text(&second).contains("Error from server (InternalError)")
            && text(&second).contains("etcdserver: request timed out"),
        "{}",
        text(&second)
    );
    let third = kubectl(&s.kubeconfig, &["get", "configmap", "a", "-o", "name"]);
    assert!(third.status.success(), "{}", text(&third));
    let gets: Vec<_> = s.proxy.seen().into_iter().filter(|r| r.path == path).collect();
    assert_eq!(gets.iter().map(|r| r.status).collect::<Vec<_>>(), [Some(200), Some(500), Some(200)]);
    assert_eq!(gets.iter().map(|r| r.faulted).collect::<Vec<_>>(), [false, true, false]);
}

#[test]
fn a_dry_run_rule_rejects_the_dry_run_and_lets_the_real_patch_through() {
    let s = setup();
    let path = format!("/api/v1/namespaces/{}/configmaps/b", s.ns);
    s.proxy.add(
        Rule::new(Fault::status(403, "admission webhook denied the request")).method("PATCH").path(&path).dry_run(true),
    );
    let patch = ["patch", "configmap", "b", "--type=merge", "-p", r#"{"data":{"k":"changed"}}"#];
    let dry = kubectl(&s.kubeconfig, &[&patch[..], &["--dry-run=server"]].concat());
    assert!(!dry.status.success());
    assert!(text(&dry).contains("admission webhook denied the request"), "{}", text(&dry));
    assert_eq!(s.cluster.get(&s.ns, "configmap/b")["data"]["k"], "v", "the dry run was not forwarded");
    let real = kubectl(&s.kubeconfig, &patch);
    assert!(real.status.success(), "{}", text(&real));
    assert_eq!(s.cluster.get(&s.ns, "configmap/b")["data"]["k"], "changed");
    let patches: Vec<_> = s.proxy.seen().into_iter().filter(|r| r.path == path && r.method == "PATCH").collect();
    assert_eq!(patches.len(), 2, "{patches:?}");
    assert!(patches[0].dry_run() && patches[0].query.contains("dryRun=All") && patches[0].status == Some(403));
    assert!(!patches[1].dry_run() && patches[1].status == Some(200) && patches[1].is_write());
    assert_eq!(s.proxy.writes().len(), 1);
}

#[test]
fn a_dropped_connection_fails_the_write_and_nothing_is_stored() {
    let s = setup();
    let path = format!("/api/v1/namespaces/{}/configmaps/c", s.ns);
    s.proxy.add(Rule::new(Fault::Drop).method("PATCH").path(&path));
    let out = kubectl(&s.kubeconfig, &["patch", "configmap", "c", "--type=merge", "-p", r#"{"data":{"k":"x"}}"#]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("EOF"), "{}", text(&out));
    assert_eq!(s.cluster.get(&s.ns, "configmap/c")["data"]["k"], "v");
    assert!(s.proxy.seen().iter().any(|r| r.path == path && r.status.is_none() && r.faulted));
}

#[test]
fn latency_delays_only_the_selected_requests() {
    let s = setup();
    s.proxy.add(
        Rule::new(Fault::Delay(Duration::from_millis(1500)))
            .method("GET")
            .path_pattern("/api/v1/namespaces/*/configmaps/a"),
    );
    let started = Instant::now();
    let slow = kubectl(&s.kubeconfig, &["get", "configmap", "a", "-o", "name"]);
    let slow_took = started.elapsed();
    assert!(slow.status.success(), "{}", text(&slow));
    assert!(slow_took >= Duration::from_millis(1500), "{slow_took:?}");
    let started = Instant::now();
    let fast = kubectl(&s.kubeconfig, &["get", "configmap", "b", "-o", "name"]);
    assert!(fast.status.success(), "{}", text(&fast));
    assert!(started.elapsed() < slow_took, "{:?} vs {slow_took:?}", started.elapsed());
}

#[test]
fn a_watch_streams_and_ends_after_n_events() {
    let s = setup();
    let path = format!("/api/v1/namespaces/{}/configmaps", s.ns);
    s.proxy.add(Rule::new(Fault::EndWatchAfterEvents(2)).method("GET").path(&path).watch(true));
    let started = Instant::now();
    let out = kubectl(&s.kubeconfig, &["get", "--raw", &format!("{path}?watch=true")]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let events: Vec<serde_json::Value> =
        stdout.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("an event")).collect();
    assert_eq!(events.len(), 2, "{stdout}");
    assert!(events.iter().all(|e| e["type"] == "ADDED"), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_watch_ends_after_a_duration_with_the_events_forwarded_as_they_came() {
    let s = setup();
    let path = format!("/api/v1/namespaces/{}/configmaps", s.ns);
    s.proxy.add(Rule::new(Fault::EndWatchAfter(Duration::from_secs(3))).path_prefix(&path).watch(true));
    let child = Command::new("kubectl")
        .arg(format!("--kubeconfig={}", s.kubeconfig.display()))
        .args(["get", "--raw", &format!("{path}?watch=true")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl");
    // An event that happens while the watch is open arrives through the proxy.
    std::thread::sleep(Duration::from_millis(1200));
    s.cluster.kubectl(&["-n", &s.ns, "create", "configmap", "late", "--from-literal=k=v"], None);
    let started = Instant::now();
    let out = child.wait_with_output().expect("kubectl");
    assert!(out.status.success());
    assert!(started.elapsed() < Duration::from_secs(10));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // a, b, c (and kube-root-ca.crt once its controller wrote it) from the start, then `late`.
    for name in ["a", "b", "c", "late"] {
        assert!(stdout.contains(&format!("\"name\":\"{name}\"")), "{name}: {stdout}");
    }
}

#[test]
fn the_proxy_kubeconfig_holds_no_credentials_and_stops_on_drop() {
    let s = setup();
    let text = std::fs::read_to_string(&s.kubeconfig).expect("kubeconfig");
    assert!(text.contains(&format!("server: '{}'", s.proxy.url())), "{text}");
    for secret in ["token", "client-key", "client-certificate", "password"] {
        assert!(!text.contains(secret), "{text}");
    }
    let url = s.proxy.url();
    let addr = url.trim_start_matches("http://").to_string();
    assert!(std::net::TcpStream::connect(&addr).is_ok());
    drop(s.proxy);
    assert!(std::net::TcpStream::connect(&addr).is_err(), "still listening on {addr}");
}

/// A test binary killed without unwinding (SIGKILL) leaves no `kubectl proxy` behind: the
/// proxy's watchdog stops it once the owning process is gone.
#[test]
fn the_upstream_kubectl_proxy_dies_with_a_killed_owner() {
    if let Some(kubeconfig) = std::env::var_os("FAULTS_TEST_CHILD_KUBECONFIG") {
        let proxy = FaultProxy::start(Path::new(&kubeconfig));
        println!("proxy={}", proxy.url());
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    use std::io::BufRead;
    let cluster = RealCluster::shared();
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "the_upstream_kubectl_proxy_dies_with_a_killed_owner", "--nocapture"])
        .env("FAULTS_TEST_CHILD_KUBECONFIG", &cluster.kubeconfig)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the test binary");
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let url = lines.find_map(|l| l.ok()?.strip_prefix("proxy=").map(str::to_string)).expect("the child's proxy");
    let addr = url.trim_start_matches("http://").to_string();
    // The proxy answers (through its kubectl proxy child).
    let probe = |addr: &str| -> Option<String> {
        let mut s = std::net::TcpStream::connect(addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        std::io::Write::write_all(&mut s, b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
        let mut out = String::new();
        std::io::Read::read_to_string(&mut s, &mut out).ok()?;
        Some(out)
    };
    let answer = probe(&addr).expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200") && answer.contains("gitVersion"), "{answer}");
    // Find the child's `kubectl proxy` by its parent before the kill.
    let ps = |pid: u32| -> Vec<u32> {
        let out = Command::new("ps").args(["-o", "pid=", "--ppid", &pid.to_string()]).output().expect("ps");
        String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect()
    };
    let kids = ps(child.id());
    assert!(!kids.is_empty(), "the child has a kubectl proxy and a watchdog");
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let deadline = Instant::now() + Duration::from_secs(10);
    let alive = |pid: u32| {
        Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ")
    };
    while kids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(kids.iter().all(|p| !alive(*p)), "left behind: {kids:?}");
}
