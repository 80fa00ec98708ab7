//! The fake Kubernetes API server at the HTTP level (no kubectl): watch streams, shutdown,
//! preconditions, no-op writes, dry-run creates and the Status bodies.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use testkit::kube::{Container, FakeKube};

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

fn host_port(kube: &FakeKube) -> String {
    kube.url().trim_start_matches("http://").to_string()
}

/// Reads a chunked or Content-Length body after the headers.
fn read_body(reader: &mut BufReader<TcpStream>, headers: &[(String, String)]) -> Vec<u8> {
    let header = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if header("Transfer-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(len) = header("Content-Length") {
        body = vec![0; len.parse().unwrap()];
        reader.read_exact(&mut body).unwrap();
    }
    body
}

fn read_head(reader: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>) {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status = status_line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap();
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    (status, headers)
}

fn send(kube: &FakeKube, method: &str, path: &str, content_type: &str, body: &str) -> Response {
    let stream = TcpStream::connect(host_port(kube)).unwrap();
    let mut w = stream.try_clone().unwrap();
    write!(
        w,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader);
    let raw = read_body(&mut reader, &headers);
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Response { status, headers, body }
}

fn get(kube: &FakeKube, path: &str) -> Response {
    send(kube, "GET", path, "application/json", "")
}

const WEB: &str = "/apis/apps/v1/namespaces/assistant/deployments/web";

fn kube_with_web() -> FakeKube {
    let kube = FakeKube::start();
    kube.add_deployment("assistant", "web", 3, &[Container::new("web").request("cpu", "250m")]);
    kube
}

#[test]
fn watch_streams_changes_and_ends_when_the_server_is_dropped() {
    let kube = kube_with_web();
    let rv = kube.resource_version();
    let stream = TcpStream::connect(host_port(&kube)).unwrap();
    let mut w = stream.try_clone().unwrap();
    write!(
        w,
        "GET /apis/apps/v1/namespaces/assistant/deployments?watch=true&fieldSelector=metadata.name%3Dweb&resourceVersion={rv} HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader);
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(k, v)| k == "Transfer-Encoding" && v == "chunked"));
    let patch =
        send(&kube, "PATCH", &format!("{WEB}/scale"), "application/merge-patch+json", r#"{"spec":{"replicas":5}}"#);
    assert_eq!(patch.status, 200);
    assert_eq!(patch.body["kind"], "Scale");
    let mut size = String::new();
    reader.read_line(&mut size).unwrap();
    let n = usize::from_str_radix(size.trim(), 16).unwrap();
    let mut chunk = vec![0; n + 2];
    reader.read_exact(&mut chunk).unwrap();
    let event: Value = serde_json::from_slice(&chunk[..n]).unwrap();
    assert_eq!(event["type"], "MODIFIED");
    assert_eq!(event["object"]["spec"]["replicas"], 5);
    assert_eq!(event["object"]["status"]["availableReplicas"], 5);
    // Dropping the server ends the stream promptly with the terminating chunk.
    let started = Instant::now();
    drop(kube);
    reader.get_mut().set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    let mut byte = [0u8; 1];
    while !rest.ends_with(b"0\r\n\r\n") && reader.read(&mut byte).unwrap_or(0) == 1 {
        rest.push(byte[0]);
    }
    assert!(rest.ends_with(b"0\r\n\r\n"), "no terminating chunk: {}", String::from_utf8_lossy(&rest));
    assert!(started.elapsed() < Duration::from_secs(2), "watch ended after {:?}", started.elapsed());
}

#[test]
fn scale_put_checks_the_resource_version() {
    let kube = kube_with_web();
    let scale = get(&kube, &format!("{WEB}/scale"));
    assert_eq!(scale.body["spec"]["replicas"], 3);
    assert_eq!(scale.body["status"]["selector"], "app=web");
    let mut stale = scale.body.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    stale["spec"]["replicas"] = json!(9);
    let r = send(&kube, "PUT", &format!("{WEB}/scale"), "application/json", &stale.to_string());
    assert_eq!(r.status, 409);
    assert_eq!(r.body["reason"], "Conflict");
    assert!(r.body["message"].as_str().unwrap().contains("the object has been modified"));
    let mut fresh = scale.body.clone();
    fresh["spec"]["replicas"] = json!(9);
    let r = send(&kube, "PUT", &format!("{WEB}/scale"), "application/json", &fresh.to_string());
    assert_eq!(r.status, 200);
    assert_eq!(kube.deployment("assistant", "web").unwrap()["spec"]["replicas"], 9);
}

#[test]
fn a_write_that_changes_nothing_keeps_the_resource_version() {
    let kube = kube_with_web();
    let before = kube.deployment("assistant", "web").unwrap();
    let body =
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","resources":{"requests":{"cpu":"0.25"}}}]}}}}"#;
    let r = send(&kube, "PATCH", WEB, "application/strategic-merge-patch+json", body);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"], "0.25 == 250m");
    assert_eq!(kube.deployment("assistant", "web").unwrap(), before);
}

#[test]
fn dry_run_create_answers_201_and_stores_nothing() {
    let kube = kube_with_web();
    let hpa = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "assistant"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5}});
    let path = "/apis/autoscaling/v2/namespaces/assistant/horizontalpodautoscalers";
    let r = send(&kube, "POST", &format!("{path}?dryRun=All"), "application/json", &hpa.to_string());
    assert_eq!(r.status, 201);
    assert_eq!(r.body["spec"]["minReplicas"], 1, "defaulted");
    assert!(r.body["metadata"]["resourceVersion"].is_null());
    assert!(kube.hpa("assistant", "web").is_none());
    let r = send(&kube, "POST", path, "application/json", &hpa.to_string());
    assert_eq!(r.status, 201);
    let again = send(&kube, "POST", path, "application/json", &hpa.to_string());
    assert_eq!(again.status, 409);
    assert_eq!(again.body["reason"], "AlreadyExists");
    let log = kube.requests();
    assert_eq!(log.iter().filter(|r| r.is_write()).count(), 2);
    assert_eq!(log[0].param("dryRun").as_deref(), Some("All"));
    assert_eq!(log[0].content_type.as_deref(), Some("application/json"));
    assert!(log[0].body.contains("\"maxReplicas\":5"));
}

#[test]
fn status_bodies_have_the_apiserver_shape() {
    let kube = kube_with_web();
    let r = get(&kube, "/apis/apps/v1/namespaces/assistant/deployments/nope");
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "deployments.apps \"nope\" not found", "reason": "NotFound",
               "details": {"name": "nope", "group": "apps", "kind": "deployments"}, "code": 404})
    );
    let body =
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","resources":{"limits":{"cpu":"100m"}}}]}}}}"#;
    let r = send(&kube, "PATCH", WEB, "application/strategic-merge-patch+json", body);
    assert_eq!(r.status, 422);
    assert_eq!(r.body["reason"], "Invalid");
    assert_eq!(r.body["details"]["causes"][0]["field"], "spec.template.spec.containers[0].resources.requests[cpu]");
    assert_eq!(
        r.body["message"],
        "Deployment.apps \"web\" is invalid: spec.template.spec.containers[0].resources.requests[cpu]: Invalid value: \"250m\": must be less than or equal to cpu limit of 100m"
    );
    let r = get(&kube, "/apis/batch/v1/namespaces/assistant/jobs");
    assert_eq!(r.status, 404);
    let r = send(&kube, "PATCH", WEB, "application/merge-patch+json", r#"{"spec":{"replica":2}}"#);
    assert_eq!(r.status, 200);
    assert!(r.headers.iter().any(|(k, v)| k == "Warning" && v.contains("unknown field \\\"spec.replica\\\"")));
}

#[test]
fn discovery_lists_only_what_is_served() {
    let kube = FakeKube::start();
    let groups = get(&kube, "/apis").body;
    let names: Vec<&str> = groups["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["apps", "autoscaling", "policy", "authorization.k8s.io"]);
    assert_eq!(groups["groups"][1]["preferredVersion"]["version"], "v2");
    let apps = get(&kube, "/apis/apps/v1").body;
    let scale =
        apps["resources"].as_array().unwrap().iter().find(|r| r["name"] == "deployments/scale").unwrap().clone();
    assert_eq!(scale["group"], "autoscaling");
    assert_eq!(scale["kind"], "Scale");
    let index = get(&kube, "/openapi/v3").body;
    let url = index["paths"]["apis/autoscaling/v2"]["serverRelativeURL"].as_str().unwrap().to_string();
    let doc = get(&kube, &url).body;
    let op = &doc["paths"]["/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers/{name}"]["patch"];
    assert_eq!(op["x-kubernetes-group-version-kind"]["kind"], "HorizontalPodAutoscaler");
    assert_eq!(op["parameters"][0]["name"], "fieldValidation");
    assert_eq!(get(&kube, "/openapi/v2").status, 404);
}

#[test]
fn latency_delays_every_answer() {
    let kube = FakeKube::start();
    kube.set_latency(Duration::from_millis(120));
    let started = Instant::now();
    assert_eq!(get(&kube, "/version").status, 200);
    assert!(started.elapsed() >= Duration::from_millis(120));
}

/// Regression: tiny_http wrote headers and body in separate segments, and with Nagle on the body
/// waited for the client's delayed ACK: ~40 ms per response on a kept-alive connection, as kubectl
/// uses. Twenty requests must take far less than 20 × 40 ms.
#[test]
fn kept_alive_responses_are_not_delayed_by_nagle() {
    let kube = kube_with_web();
    let stream = TcpStream::connect(host_port(&kube)).unwrap();
    stream.set_nodelay(true).unwrap(); // as Go's HTTP client (kubectl) does
    let mut w = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let body = r#"{"metadata":{"labels":{"tier":"web"}}}"#;
    let started = Instant::now();
    for _ in 0..20 {
        let request = format!(
            "PATCH {WEB}?dryRun=All HTTP/1.1\r\nHost: x\r\nContent-Type: application/merge-patch+json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        w.write_all(request.as_bytes()).unwrap();
        let (status, headers) = read_head(&mut reader);
        assert_eq!(status, 200);
        assert!(read_body(&mut reader, &headers).len() > 1024);
    }
    assert!(started.elapsed() < Duration::from_millis(400), "20 responses took {:?}", started.elapsed());
}
