//! Temporary files that weld makes next to its output (the new output before its rename,
//! a patched copy, the state before its rename): each one is removed when its
//! [`TempPath`] is dropped without [`TempPath::keep`], and also when a fatal signal
//! (SIGINT, SIGTERM, SIGHUP, SIGQUIT) ends the link, so that Ctrl-C or a build system's
//! kill leaves no `.weld-tmp-*` files behind.
//!
//! The signal handler may run at any moment on any thread, so it reads only a fixed table
//! of atomic pointers to NUL-terminated paths and calls `unlink(2)`, which POSIX lists as
//! async-signal-safe. The paths are never freed (a link makes a handful), so a handler that
//! loaded a pointer just before the slot was cleared still reads valid memory. This module
//! knows nothing of what the files hold; it never removes a path it did not register.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, Ordering};

/// How many temporary files may be registered at once; a link has at most three.
const SLOTS: usize = 16;

static REGISTERED: [AtomicPtr<libc::c_char>; SLOTS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; SLOTS];

const FATAL_SIGNALS: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// Installs the handler that removes registered temporary files on a fatal signal, then
/// lets the signal end the process as it would have. A signal that was ignored when weld
/// started (`nohup`, a shell's background job) stays ignored.
pub fn install_signal_cleanup() {
    for signal in FATAL_SIGNALS {
        // SAFETY: sigaction with a zeroed struct that names a handler which only performs
        // async-signal-safe calls (see `on_fatal_signal`); the old action is read first so
        // an ignored signal is left ignored.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut old) != 0
                || old.sa_sigaction == libc::SIG_IGN
            {
                continue;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_fatal_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = libc::SA_RESETHAND;
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

extern "C" fn on_fatal_signal(signal: libc::c_int) {
    for slot in &REGISTERED {
        let path = slot.swap(std::ptr::null_mut(), Ordering::SeqCst);
        if !path.is_null() {
            // SAFETY: registered pointers come from `CString::into_raw` and are never freed;
            // unlink is async-signal-safe.
            unsafe {
                libc::unlink(path);
            }
        }
    }
    // SA_RESETHAND restored the default action: raising the signal again ends the process
    // with it, so the parent sees "killed by SIGINT" as it would without weld's handler.
    // SAFETY: raise is async-signal-safe.
    unsafe {
        libc::raise(signal);
    }
}

/// A temporary file's path, registered for removal on a fatal signal. Dropping it removes
/// the file (if it is still there and weld has not kept it).
pub struct TempPath {
    path: PathBuf,
    slot: Option<usize>,
    kept: bool,
}

impl TempPath {
    /// Registers `path` (which need not exist yet). If every slot is taken, the file is
    /// still removed on drop, just not on a signal.
    pub fn new(path: PathBuf) -> TempPath {
        let slot = CString::new(path.as_os_str().as_bytes())
            .ok()
            .and_then(|c_path| {
                let raw = c_path.into_raw();
                let slot = REGISTERED.iter().position(|slot| {
                    slot.compare_exchange(
                        std::ptr::null_mut(),
                        raw,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    )
                    .is_ok()
                });
                if slot.is_none() {
                    // SAFETY: `raw` came from `into_raw` just above and was not published.
                    drop(unsafe { CString::from_raw(raw) });
                }
                slot
            });
        TempPath {
            path,
            slot,
            kept: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file now has its final name (it was renamed): nothing to remove.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            // The CString is leaked on purpose: a signal handler may have loaded it.
            REGISTERED[slot].store(std::ptr::null_mut(), Ordering::SeqCst);
        }
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_temp_path_is_removed_and_kept_one_is_not() {
        let dir = std::env::temp_dir().join(format!("weld-temp-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let removed = dir.join("removed");
        let kept = dir.join("kept");
        std::fs::write(&removed, b"x").unwrap();
        std::fs::write(&kept, b"x").unwrap();
        drop(TempPath::new(removed.clone()));
        TempPath::new(kept.clone()).keep();
        assert!(!removed.exists());
        assert!(kept.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
