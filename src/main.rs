//! The `infra-scale` binary: parse the command line, run it, map the outcome to an exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    infra_scale::cli::main()
}
