//! The command line: the only module that knows clap.

use std::process::ExitCode;

/// Parses the command line, runs it and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}
