//! Warnings: printed as GNU ld prints them (`weld: warning: ...`) and counted, so that
//! `--fatal-warnings` can fail the link after the fact, as GNU ld does (it reports every
//! warning, then exits 1 and removes the output). Errors are `anyhow` errors returned up
//! to `main_entry`; this module knows nothing of them.

use std::sync::atomic::{AtomicUsize, Ordering};

static WARNINGS: AtomicUsize = AtomicUsize::new(0);

/// Prints `weld: warning: {message}` and counts it.
pub fn warn(message: impl std::fmt::Display) {
    WARNINGS.fetch_add(1, Ordering::Relaxed);
    eprintln!("weld: warning: {message}");
}

/// How many warnings this process has printed.
pub fn warnings() -> usize {
    WARNINGS.load(Ordering::Relaxed)
}
