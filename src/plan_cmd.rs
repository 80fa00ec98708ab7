//! `infra-scale plan`: request → (detect) → plan → files → (publish) → outputs.

use crate::cli::PlanOptions;
use crate::error::Result;

/// Runs `infra-scale plan`.
pub fn run(_options: &PlanOptions) -> Result<()> {
    Err(crate::error::Error::Failed(anyhow::anyhow!("plan: not built yet")))
}
