//! Local fake servers for tests: a Kubernetes API server that real kubectl talks to, and a GitHub REST API.
pub mod actions;
pub mod cluster;
pub mod github;
pub mod kube;
