//! `infra-scale apply`: load and re-validate a plan, gate on the approval, preview or execute, report.

use crate::cli::ApplyOptions;
use crate::error::Result;

/// Runs `infra-scale apply`.
pub fn run(_options: &ApplyOptions) -> Result<()> {
    Err(crate::error::Error::Failed(anyhow::anyhow!("apply: not built yet")))
}
