//! Waiting for rollouts: every changed workload is polled with ONE kubectl call per poll (the
//! snapshot read), and judged the way `kubectl rollout status` judges it (R27):
//! - Deployment: `status.observedGeneration ≥ metadata.generation`, no `ProgressDeadlineExceeded`,
//!   `updatedReplicas ≥ spec.replicas`, no old replicas left, `availableReplicas ≥ updatedReplicas`.
//! - StatefulSet (RollingUpdate): observed generation, `readyReplicas ≥ spec.replicas`, then the
//!   partition's `updatedReplicas`, else `currentRevision == updateRevision`. `OnDelete`
//!   StatefulSets do not roll on their own: nothing to wait for.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::plan::WorkloadKind;

use super::Session;
use super::snapshot::{self, Snapshot};

/// A workload's rollout, as `kubectl rollout status` would report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    Done,
    Waiting(String),
    Failed(String),
}

fn int(v: &Value, ptr: &str) -> i64 {
    v.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

/// The rollout state of a Deployment or StatefulSet object.
pub fn rollout(kind: WorkloadKind, obj: &Value) -> Rollout {
    let generation = int(obj, "/metadata/generation");
    let observed = int(obj, "/status/observedGeneration");
    let replicas = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    match kind {
        WorkloadKind::Deployment => {
            if generation > observed {
                return Rollout::Waiting("waiting for the spec update to be observed".into());
            }
            let deadline = obj.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.get("type").and_then(Value::as_str) == Some("Progressing")
                        && c.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded")
                })
            });
            if deadline {
                return Rollout::Failed("exceeded its progress deadline (ProgressDeadlineExceeded)".into());
            }
            let updated = int(obj, "/status/updatedReplicas");
            let total = int(obj, "/status/replicas");
            let available = int(obj, "/status/availableReplicas");
            if updated < replicas {
                Rollout::Waiting(format!("{updated} of {replicas} new replicas updated"))
            } else if total > updated {
                Rollout::Waiting(format!("{} old replicas pending termination", total - updated))
            } else if available < updated {
                Rollout::Waiting(format!("{available} of {updated} updated replicas available"))
            } else {
                Rollout::Done
            }
        }
        WorkloadKind::StatefulSet => {
            let strategy = obj.pointer("/spec/updateStrategy/type").and_then(Value::as_str).unwrap_or("RollingUpdate");
            if strategy != "RollingUpdate" {
                return Rollout::Done;
            }
            if observed == 0 || generation > observed {
                return Rollout::Waiting("waiting for the spec update to be observed".into());
            }
            let ready = int(obj, "/status/readyReplicas");
            if ready < replicas {
                return Rollout::Waiting(format!("{ready} of {replicas} pods ready"));
            }
            let partition = int(obj, "/spec/updateStrategy/rollingUpdate/partition");
            if partition > 0 {
                let updated = int(obj, "/status/updatedReplicas");
                let needed = replicas - partition;
                return if updated < needed {
                    Rollout::Waiting(format!("partitioned roll out: {updated} of {needed} new pods updated"))
                } else {
                    Rollout::Done
                };
            }
            let current = obj.pointer("/status/currentRevision").and_then(Value::as_str);
            let update = obj.pointer("/status/updateRevision").and_then(Value::as_str);
            if current != update {
                Rollout::Waiting(format!("rolling update to revision {} in progress", update.unwrap_or("?")))
            } else {
                Rollout::Done
            }
        }
    }
}

/// Why the wait ended without every rollout complete.
#[derive(Debug)]
pub struct WaitFailure {
    /// `Deployment/web: 1 of 6 updated replicas available`, one per unfinished workload.
    pub pending: Vec<String>,
    /// A rollout failed outright (rather than the timeout passing).
    pub failed: bool,
    pub polls: usize,
}

/// Polls until every target rolled out, one failed, or `timeout` passed.
pub fn wait(
    session: &Session,
    namespace: &str,
    targets: &[(WorkloadKind, String)],
    timeout: Duration,
) -> Result<(Snapshot, usize), WaitFailure> {
    let deadline = Instant::now() + timeout;
    let mut interval = Duration::from_millis(250);
    let mut polls = 0;
    let mut pending: Vec<String>;
    loop {
        polls += 1;
        match snapshot::read(session, namespace, "waiting for rollouts") {
            Ok(snap) => {
                pending = Vec::new();
                let mut failed = false;
                for (kind, name) in targets {
                    let state = match snap.raw(*kind, name) {
                        Some(obj) => rollout(*kind, obj),
                        None => Rollout::Failed("was deleted during the rollout".into()),
                    };
                    match state {
                        Rollout::Done => {}
                        Rollout::Waiting(why) => pending.push(format!("{kind}/{name}: {why}")),
                        Rollout::Failed(why) => {
                            failed = true;
                            pending.push(format!("{kind}/{name}: {why}"));
                        }
                    }
                }
                if pending.is_empty() {
                    return Ok((snap, polls));
                }
                if failed {
                    return Err(WaitFailure { pending, failed: true, polls });
                }
            }
            // A failed read is retried until the deadline (API servers blip during rollouts).
            Err(e) => pending = vec![format!("the last poll failed: {e}")],
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(WaitFailure { pending, failed: false, polls });
        }
        std::thread::sleep(interval.min(deadline - now));
        interval = (interval * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_rollout_follows_kubectl() {
        let done = json!({"metadata": {"generation": 3}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        assert_eq!(rollout(WorkloadKind::Deployment, &done), Rollout::Done);
        let unobserved = json!({"metadata": {"generation": 4}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        assert!(matches!(rollout(WorkloadKind::Deployment, &unobserved), Rollout::Waiting(_)));
        let old_left = json!({"metadata": {"generation": 3}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 3, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2}});
        assert!(matches!(rollout(WorkloadKind::Deployment, &old_left), Rollout::Waiting(_)));
        let stuck = json!({"metadata": {"generation": 3}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 3, "conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]}});
        assert!(matches!(rollout(WorkloadKind::Deployment, &stuck), Rollout::Failed(_)));
    }

    #[test]
    fn statefulset_rollout_compares_revisions() {
        let rolling = json!({"metadata": {"generation": 2}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "readyReplicas": 2, "currentRevision": "a", "updateRevision": "b"}});
        assert!(matches!(rollout(WorkloadKind::StatefulSet, &rolling), Rollout::Waiting(_)));
        let done = json!({"metadata": {"generation": 2}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "readyReplicas": 2, "currentRevision": "b", "updateRevision": "b"}});
        assert_eq!(rollout(WorkloadKind::StatefulSet, &done), Rollout::Done);
        let on_delete = json!({"spec": {"updateStrategy": {"type": "OnDelete"}}});
        assert_eq!(rollout(WorkloadKind::StatefulSet, &on_delete), Rollout::Done);
    }
}
