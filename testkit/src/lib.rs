//! Test support: the real control plane of `scripts/cluster.sh` ([`cluster`]), a fault-injecting
//! proxy in front of it ([`faults`]), and a fake GitHub REST API ([`github`]).
pub mod actions;
pub mod cluster;
pub mod faults;
pub mod github;
