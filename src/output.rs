//! stdout: the contract lines. A closed stdout (`infra-scale plan … | head -1`) is not an error
//! of the run: `println!` would panic on the broken pipe (Rust ignores SIGPIPE, so the write
//! fails with EPIPE); here the line is dropped, later lines too, and the run goes on to its usual
//! end and exit status, its files and pull request written as without the pipe.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Prints one line to stdout (flushed); dropped once stdout is closed.
pub fn line(text: &str) {
    write(text, "\n");
}

/// Prints text to stdout as it is (flushed); dropped once stdout is closed.
pub fn text(text: &str) {
    write(text, "");
}

fn write(text: &str, end: &str) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let result = write!(out, "{text}{end}").and_then(|()| out.flush());
    if let Err(e) = result {
        CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("warning: cannot write to stdout ({e}); the remaining output lines are dropped");
        }
    }
}
