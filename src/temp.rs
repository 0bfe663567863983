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
//!
//! A file exists a moment before it is registered (the `open` or `rename` returns, then the
//! slot is written). That gap is closed rather than made small: the thread that creates
//! and registers blocks the fatal signals on itself for the gap and counts itself in
//! [`IN_GAP`]; a handler running on another thread waits for the count to drop, so it sees
//! the file registered. The gap makes no allocation (the path's C string is made before),
//! so a handler that interrupted a thread holding the allocator's lock cannot keep the
//! gap from ending. A thread that would enter the gap after the handler has looked at the
//! count (and so after its look at the slots, perhaps) finds [`DYING`] set and creates
//! nothing: the process is ending. Both sides use sequentially consistent atomics (the
//! handler sets `DYING` then reads `IN_GAP`; a thread adds to `IN_GAP` then reads
//! `DYING`), so one of them always sees the other.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

/// How many temporary files may be registered at once; a link has at most three.
const SLOTS: usize = 16;

static REGISTERED: [AtomicPtr<libc::c_char>; SLOTS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; SLOTS];

const FATAL_SIGNALS: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// Threads between creating a temporary file and registering it (see the module's text).
static IN_GAP: AtomicUsize = AtomicUsize::new(0);

/// Set by the signal handler before it waits for [`IN_GAP`]: no file is created after.
static DYING: AtomicBool = AtomicBool::new(false);

/// A thread's way into the gap: counted in `in_gap`, unless `dying` is set (then it must not
/// create the file, and is not counted).
fn enter_gap(in_gap: &AtomicUsize, dying: &AtomicBool) -> bool {
    in_gap.fetch_add(1, Ordering::SeqCst);
    if dying.load(Ordering::SeqCst) {
        in_gap.fetch_sub(1, Ordering::SeqCst);
        return false;
    }
    true
}

/// Runs `step` (a system call that creates a file, then its registration) with the fatal
/// signals blocked on this thread and [`IN_GAP`] counted; `None` without running it if a
/// fatal signal is ending the process. `step` must not allocate.
fn in_gap<T>(step: impl FnOnce() -> T) -> Option<T> {
    // SAFETY: sigset_t is plain data initialised by sigemptyset/sigaddset; pthread_sigmask
    // changes only this thread's mask, restored below.
    let old = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in FATAL_SIGNALS {
            libc::sigaddset(&mut set, signal);
        }
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        old
    };
    let result = enter_gap(&IN_GAP, &DYING).then(|| {
        let result = step();
        IN_GAP.fetch_sub(1, Ordering::SeqCst);
        result
    });
    // SAFETY: restores the mask read above; a signal that came meanwhile is delivered now,
    // with the file registered.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
    result
}

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
    // No thread creates a file from now on; one that created a file and has not registered
    // it yet will in a moment (it cannot be this thread: it blocks these signals meanwhile).
    DYING.store(true, Ordering::SeqCst);
    while IN_GAP.load(Ordering::SeqCst) != 0 {
        std::hint::spin_loop();
    }
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

/// The error of a file not created because a fatal signal is ending the process.
fn ending() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::Interrupted,
        "not created: a signal is ending the link",
    )
}

/// `make(path)`, or while it fails because the name is taken, `make(path-1)`, `make(path-2)`...
/// (a hundred variants at most).
fn first_free_name<T>(
    path: &Path,
    mut make: impl FnMut(PathBuf) -> std::io::Result<T>,
) -> std::io::Result<T> {
    let mut candidate = path.to_path_buf();
    for n in 1..=100 {
        match make(candidate) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let mut name = path.as_os_str().to_owned();
                name.push(format!("-{n}"));
                candidate = PathBuf::from(name);
            }
            done => return done,
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!("{} and 100 variants of it exist", path.display()),
    ))
}

/// A path's C string made ready to register before the file exists (so that registering
/// allocates nothing); freed unless published.
struct Prepared {
    raw: *mut libc::c_char,
    published: bool,
}

impl Prepared {
    fn new(path: &Path) -> std::io::Result<Prepared> {
        Ok(Prepared {
            raw: CString::new(path.as_os_str().as_bytes())?.into_raw(),
            published: false,
        })
    }

    /// Puts the path in a free slot for the signal handler; `None` if every slot is taken
    /// (the file is still removed on drop, just not on a signal). Allocates nothing.
    fn publish(&self) -> Option<usize> {
        REGISTERED.iter().position(|slot| {
            slot.compare_exchange(
                std::ptr::null_mut(),
                self.raw,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok()
        })
    }

    fn into_temp_path(mut self, path: PathBuf, slot: Option<usize>) -> TempPath {
        // A published string is never freed: a signal handler may have loaded it.
        self.published = slot.is_some();
        TempPath {
            path,
            slot,
            kept: false,
        }
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if !self.published {
            // SAFETY: `raw` came from `into_raw` in `new` and was not published.
            drop(unsafe { CString::from_raw(self.raw) });
        }
    }
}

/// A temporary file's path, registered for removal on a fatal signal. Dropping it removes
/// the file (if weld has not kept it).
pub struct TempPath {
    path: PathBuf,
    slot: Option<usize>,
    kept: bool,
}

impl TempPath {
    /// Creates a new file for reading and writing at `path`, or, if something is there
    /// already (a stale file of a process with the same id, another user's file or link),
    /// at `path` with `-1`, `-2`... appended: never opening, truncating or later removing
    /// a file weld did not create (`O_EXCL`, `O_NOFOLLOW`). Registers it once it exists.
    pub fn create(path: PathBuf) -> std::io::Result<(TempPath, std::fs::File)> {
        use std::os::fd::FromRawFd;
        // Test support: `WELD_TEST_PAUSE_AT=temp-gap` holds the link for 3 seconds between
        // creating the file and registering it, for a test to send a signal then.
        let pause = std::env::var("WELD_TEST_PAUSE_AT").is_ok_and(|v| v == "temp-gap");
        first_free_name(&path, |candidate| {
            let c_path = Prepared::new(&candidate)?;
            let flags =
                libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
            let (fd, error, slot) = in_gap(|| {
                // SAFETY: a NUL-terminated path that lives across the call.
                let fd = unsafe { libc::open(c_path.raw, flags, 0o666) };
                let error = std::io::Error::last_os_error();
                if pause && fd >= 0 {
                    let three = libc::timespec {
                        tv_sec: 3,
                        tv_nsec: 0,
                    };
                    // SAFETY: nanosleep with a valid timespec and no remainder wanted.
                    unsafe { libc::nanosleep(&three, std::ptr::null_mut()) };
                }
                (fd, error, (fd >= 0).then(|| c_path.publish()).flatten())
            })
            .ok_or_else(ending)?;
            if fd < 0 {
                return Err(error);
            }
            // SAFETY: `fd` was just opened and is owned by nothing else.
            let file = unsafe { std::fs::File::from_raw_fd(fd) };
            Ok((c_path.into_temp_path(candidate, slot), file))
        })
    }

    /// Gives the existing file `source` the temporary name `path` (or `path-1`, ... if
    /// something is there: the rename never replaces a file, `RENAME_NOREPLACE`), and
    /// registers it. A rename that replaced a file would also be slower: ext4 then writes
    /// the renamed file's data out at once (auto_da_alloc), ~20 ms for a 43 MB output.
    pub fn rename_from(source: &Path, path: PathBuf) -> std::io::Result<TempPath> {
        let c_source = CString::new(source.as_os_str().as_bytes())?;
        first_free_name(&path, |candidate| {
            let c_candidate = Prepared::new(&candidate)?;
            let (r, error, slot) = in_gap(|| {
                // SAFETY: two NUL-terminated paths that live across the call.
                let r = unsafe {
                    libc::renameat2(
                        libc::AT_FDCWD,
                        c_source.as_ptr(),
                        libc::AT_FDCWD,
                        c_candidate.raw,
                        libc::RENAME_NOREPLACE,
                    )
                };
                let error = std::io::Error::last_os_error();
                (r, error, (r == 0).then(|| c_candidate.publish()).flatten())
            })
            .ok_or_else(ending)?;
            if r != 0 {
                return Err(error);
            }
            Ok(c_candidate.into_temp_path(candidate, slot))
        })
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
        // Removed before it is unregistered, so that a signal in between finds no file
        // rather than leaving one behind.
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
        if let Some(slot) = self.slot {
            // The CString is leaked on purpose: a signal handler may have loaded it.
            REGISTERED[slot].store(std::ptr::null_mut(), Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gap's protocol on atomics of its own: once the handler has set `dying`, no
    /// thread enters (nor stays counted); before, an entering thread is counted, so the
    /// handler waits for it.
    #[test]
    fn no_thread_enters_the_gap_once_dying() {
        let (in_gap, dying) = (AtomicUsize::new(0), AtomicBool::new(false));
        assert!(enter_gap(&in_gap, &dying));
        assert_eq!(in_gap.load(Ordering::SeqCst), 1);
        in_gap.fetch_sub(1, Ordering::SeqCst);
        dying.store(true, Ordering::SeqCst);
        assert!(!enter_gap(&in_gap, &dying));
        assert_eq!(in_gap.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn dropped_temp_path_is_removed_and_kept_one_is_not() {
        let dir = std::env::temp_dir().join(format!("weld-temp-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let removed = dir.join("removed");
        let kept = dir.join("kept");
        drop(TempPath::create(removed.clone()).unwrap());
        TempPath::create(kept.clone()).unwrap().0.keep();
        assert!(!removed.exists());
        assert!(kept.exists());
        // Something already there is left alone: the temporary file gets another name.
        let (again, _) = TempPath::create(kept.clone()).unwrap();
        assert_ne!(again.path(), kept.as_path());
        drop(again);
        assert!(kept.exists());
        // A symbolic link there is not followed: its target keeps its bytes.
        let target = dir.join("target");
        std::fs::write(&target, b"precious").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let (other, mut file) = TempPath::create(link.clone()).unwrap();
        std::io::Write::write_all(&mut file, b"temporary").unwrap();
        assert_ne!(other.path(), link.as_path());
        drop(other);
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        assert!(std::fs::symlink_metadata(&link).is_ok());
        // A rename to a temporary name never replaces what is there either.
        let source = dir.join("source");
        std::fs::write(&source, b"old output").unwrap();
        let renamed = TempPath::rename_from(&source, target.clone()).unwrap();
        assert_ne!(renamed.path(), target.as_path());
        assert_eq!(std::fs::read(renamed.path()).unwrap(), b"old output");
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        drop(renamed);
        assert!(!source.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
