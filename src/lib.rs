//! infra-scale: plan, publish, approve and apply Kubernetes capacity changes.
//!
//! The modules follow the pipeline: a request (flags + config) is validated, the pure planner
//! turns it and the observed cluster state into a [`plan::ScalePlan`], the plan is rendered
//! (plan.yaml, SUMMARY.md), then either published as a pull request ([`github`]) or executed
//! with kubectl ([`execute`]).

pub mod apply_cmd;
pub mod artifacts;
pub mod capacity;
pub mod cli;
pub mod config;
pub mod error;
pub mod execute;
pub mod github;
pub mod kubectl;
pub mod names;
pub mod observed;
pub mod orchestrator;
pub mod output;
pub mod ownership;
pub mod plan;
pub mod plan_cmd;
pub mod planner;
pub mod quantity;
pub mod request;
pub mod runner;
pub mod summary;
pub mod targets_cmd;
