//! The output file of a full link: a temporary file next to the output, memory-mapped so
//! that sections are copied and relocated straight into the page cache (no second copy
//! through `write(2)`), then renamed over the output. A failed link leaves no temporary file
//! behind and the old output as the caller decided.
//!
//! An existing output is reused when that is safe (mold does the same): its pages are in
//! the page cache already, and writing them costs a fraction of allocating and zeroing new
//! ones (measured on a 94 MB output: 28 ms against 47-68 ms on one thread). Safe means
//! that no process can be running it: Linux refuses to open a running executable for
//! writing (ETXTBSY), except kernels 6.11 and 6.12; a shared library in use can be opened,
//! so a shared output is always a new file, and so is an output with other names (hard
//! links), whose bytes must stay as they were.
//!
//! What `-o` names is looked at first ([`locate`]), and treated as GNU ld treats it: a
//! symbolic link to a program is replaced, one to an empty file or to nothing is written
//! through; a device, FIFO or socket is written in order as it is and never removed or
//! replaced (`-o /dev/null` as root must leave /dev/null a device); a file in a directory
//! weld cannot write is written in place.

use crate::temp::TempPath;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What `-o` names, found before the link starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputNode {
    /// Nothing yet, or a regular file: written under a temporary name and renamed over it.
    #[default]
    Regular,
    /// A character or block device, a FIFO or a socket (`-o /dev/null`, a pipe): opened and
    /// written in order as it is, never removed, renamed over, truncated by a rename or
    /// memory-mapped. GNU ld writes into such a node too (it fails on a FIFO: "Illegal
    /// seek"; weld writes the FIFO in order instead).
    Special,
}

/// Looks at what `-o` names, as GNU ld does before it opens its output (binutils 2.40,
/// `bfd_open_file`: it unlinks the output first only if `stat`, which follows symbolic
/// links, finds a regular file of non-zero size), and returns the path to write and what it
/// is:
/// - nothing, or a regular file: the path, written as a new file renamed over it;
/// - a symbolic link to a non-empty regular file: the link is replaced by the new output
///   (its target is left as it was), as GNU ld and lld do;
/// - a symbolic link to an empty file, or one that names nothing yet: written through, the
///   target's path is returned (GNU ld writes into or creates the target);
/// - a device, FIFO or socket, directly or through links (`/dev/stdout`): written in order
///   as it is ([`OutputNode::Special`]); so is a regular file reached through a link under
///   `/dev` or `/proc` (`/dev/stdout` redirected to a file), whose link is not weld's to
///   replace;
/// - a directory: an error.
pub fn locate(path: &Path) -> Result<(PathBuf, OutputNode)> {
    let Ok(link_meta) = std::fs::symlink_metadata(path) else {
        // Nothing there (or an unreadable directory): creating it will say what is wrong.
        return Ok((path.to_path_buf(), OutputNode::Regular));
    };
    if !link_meta.file_type().is_symlink() {
        return Ok((path.to_path_buf(), node_of(path, &link_meta)?));
    }
    let (target, through_system) = link_target(path)?;
    match std::fs::metadata(path) {
        Ok(meta) if meta.file_type().is_file() && through_system => {
            Ok((path.to_path_buf(), OutputNode::Special))
        }
        Ok(meta) if meta.file_type().is_file() && meta.len() > 0 => {
            Ok((path.to_path_buf(), OutputNode::Regular))
        }
        Ok(meta) if meta.file_type().is_file() => Ok((target, OutputNode::Regular)),
        Ok(meta) => Ok((path.to_path_buf(), node_of(path, &meta)?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((target, OutputNode::Regular)),
        Err(e) => Err(e).with_context(|| format!("cannot open output file {}", path.display())),
    }
}

fn node_of(path: &Path, meta: &std::fs::Metadata) -> Result<OutputNode> {
    if meta.is_dir() {
        bail!("cannot open output file {}: is a directory", path.display());
    }
    Ok(if meta.is_file() {
        OutputNode::Regular
    } else {
        OutputNode::Special
    })
}

/// Where a chain of symbolic links ends (the path need not exist), and whether the chain
/// passes through `/dev` or `/proc` (the system's links: `/dev/stdout`, `/proc/self/fd/N`).
fn link_target(path: &Path) -> Result<(PathBuf, bool)> {
    let mut current = path.to_path_buf();
    let mut through_system = false;
    // Linux gives up after 40 links (ELOOP); so does this.
    for _ in 0..40 {
        let absolute = std::path::absolute(&current).unwrap_or_else(|_| current.clone());
        through_system |= absolute.starts_with("/dev") || absolute.starts_with("/proc");
        match std::fs::read_link(&current) {
            Ok(target) => {
                let dir = current.parent().unwrap_or(Path::new(""));
                current = dir.join(target);
            }
            Err(_) => return Ok((current, through_system)),
        }
    }
    bail!(
        "cannot open output file {}: too many levels of symbolic links",
        path.display()
    )
}

/// Removes the output of a failed link, as GNU ld does (`unlink_if_ordinary` on `-o` as
/// written): a regular file, or a symbolic link itself (never the file it points to, which
/// weld only ever replaces by a rename after a successful link); never a device or a FIFO.
pub fn remove_failed(path: &Path, node: OutputNode) {
    if node == OutputNode::Regular
        && std::fs::symlink_metadata(path)
            .is_ok_and(|m| m.file_type().is_file() || m.file_type().is_symlink())
    {
        let _ = std::fs::remove_file(path);
    }
}

/// Where the output's bytes go until [`OutputFile::finish`].
enum Sink {
    /// A new file, or the old output renamed, under a temporary name in the output's
    /// directory; renamed over the output at the end.
    Temp(Option<TempPath>),
    /// The output itself, truncated and written in place: its directory cannot be written
    /// (no temporary file can be made there), the file can. Emptied if the link fails.
    InPlace { done: bool },
    /// A special node: the output is built in anonymous memory and written to it in order.
    Stream,
}

pub struct OutputFile {
    sink: Sink,
    file: std::fs::File,
    map: Option<memmap2::MmapMut>,
    /// A new file or anonymous memory: every byte reads as zero until written. A reused
    /// file holds the old output's bytes.
    zeroed: bool,
}

impl OutputFile {
    /// Prepares `size` bytes for the output at `path` (as [`locate`] found it): a new
    /// temporary file (all zeros), or if `reuse` and it is safe, the old output renamed (see
    /// the module's comment); memory for a special node.
    pub fn create(path: &Path, node: OutputNode, size: u64, reuse: bool) -> Result<OutputFile> {
        let (sink, file, zeroed) = match node {
            OutputNode::Special => {
                // No O_CREAT: the node exists; O_TRUNC is ignored by devices and FIFOs and
                // empties a regular file reached through a /proc link.
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(path)
                    .with_context(|| format!("cannot open output file {}", path.display()))?;
                (Sink::Stream, file, true)
            }
            OutputNode::Regular => Self::open_regular(path, reuse)?,
        };
        let mut out = OutputFile {
            sink,
            file,
            map: None,
            zeroed,
        };
        let map = match out.sink {
            Sink::Stream => memmap2::MmapMut::map_anon(size as usize)
                .with_context(|| format!("cannot allocate {size} bytes for the output"))?,
            _ => {
                let name = out.name(path);
                out.file
                    .set_len(size)
                    .with_context(|| format!("cannot size {}", name.display()))?;
                if size > 0 {
                    reserve(&out.file, size)
                        .with_context(|| format!("cannot write {}", name.display()))?;
                }
                // SAFETY: the file is a temporary one under a name unique to this process, or
                // the output itself while this process holds it open for writing; it is
                // written only through this mapping until `finish`, and nothing in weld maps
                // or truncates it meanwhile.
                unsafe { memmap2::MmapMut::map_mut(&out.file) }
                    .with_context(|| format!("cannot map {}", name.display()))?
            }
        };
        out.map = Some(map);
        Ok(out)
    }

    fn open_regular(path: &Path, reuse: bool) -> Result<(Sink, std::fs::File, bool)> {
        // The old output under a temporary name, if it may be rewritten in place.
        if let Some((tmp, old)) = reuse.then(|| take_old(path)).flatten() {
            return Ok((Sink::Temp(Some(tmp)), old, false));
        }
        match TempPath::create(temp_path(path)) {
            Ok((tmp, file)) => Ok((Sink::Temp(Some(tmp)), file, true)),
            Err(e) if unwritable_directory(&e) && path.is_file() => {
                // As GNU ld, which opens the output itself: a file the user may write in a
                // directory they may not (a shared build tree, a read-only bind mount's file).
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .truncate(true)
                    .open(path)
                    .with_context(|| format!("cannot open output file {}", path.display()))?;
                Ok((Sink::InPlace { done: false }, file, true))
            }
            Err(e) => {
                Err(e).with_context(|| format!("cannot create {}", temp_path(path).display()))
            }
        }
    }

    /// The name the file being written has now, for messages.
    fn name(&self, path: &Path) -> PathBuf {
        match &self.sink {
            Sink::Temp(Some(tmp)) => tmp.path().to_path_buf(),
            _ => path.to_path_buf(),
        }
    }

    /// The output's bytes: all zero at first if [`OutputFile::zeroed`], else the old output's.
    pub fn bytes(&mut self) -> &mut [u8] {
        self.map.as_deref_mut().unwrap_or_default()
    }

    pub fn zeroed(&self) -> bool {
        self.zeroed
    }

    /// Ends the output at `tail_offset` with `tail`: unmaps, appends the tail, makes the file
    /// executable and renames it to `path` (a special node is written in order instead).
    pub fn finish(mut self, tail_offset: u64, tail: &[u8], path: &Path) -> Result<()> {
        let map = self.map.take();
        if let Sink::Stream = self.sink {
            let head: &[u8] = map
                .as_deref()
                .map_or(&[], |m| &m[..(tail_offset as usize).min(m.len())]);
            return self
                .file
                .write_all(head)
                .and_then(|()| self.file.write_all(tail))
                .and_then(|()| self.file.flush())
                .with_context(|| format!("cannot write {}", path.display()));
        }
        drop(map);
        let name = self.name(path);
        self.file
            .write_all_at(tail, tail_offset)
            .with_context(|| format!("cannot write {}", name.display()))?;
        self.file
            .set_len(tail_offset + tail.len() as u64)
            .with_context(|| format!("cannot size {}", name.display()))?;
        use std::os::unix::fs::PermissionsExt;
        let executable = self
            .file
            .set_permissions(std::fs::Permissions::from_mode(0o755));
        match &mut self.sink {
            Sink::Temp(tmp) => {
                executable.with_context(|| format!("cannot make {} executable", name.display()))?;
                std::fs::rename(&name, path).with_context(|| {
                    format!("cannot rename {} to {}", name.display(), path.display())
                })?;
                if let Some(tmp) = tmp.take() {
                    tmp.keep();
                }
            }
            // Another user's file keeps its mode, as with GNU ld's in-place write.
            Sink::InPlace { done } => *done = true,
            Sink::Stream => {}
        }
        Ok(())
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        drop(self.map.take());
        // A temporary file is removed by its TempPath; a half-written output is emptied.
        if let Sink::InPlace { done: false } = self.sink {
            let _ = self.file.set_len(0);
        }
    }
}

/// Whether creating a file failed because its directory cannot be written.
fn unwritable_directory(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(libc::EROFS)
}

/// Writes `bytes` as the whole output at `path` (a relocatable link's, built in memory).
pub fn write_whole(path: &Path, node: OutputNode, bytes: &[u8]) -> Result<()> {
    let mut file = OutputFile::create(path, node, bytes.len() as u64, false)?;
    file.bytes().copy_from_slice(bytes);
    file.finish(bytes.len() as u64, &[], path)
}

/// Whether no process can be running an output of this kind while it is rewritten in
/// place: not a shared object, and a kernel that refuses to open a running executable for
/// writing (all but 6.11 and 6.12, where that check was gone; mold checks the same).
pub fn in_place_is_safe(shared: bool) -> bool {
    !shared && kernel_refuses_busy_text()
}

fn kernel_refuses_busy_text() -> bool {
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return false;
    };
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let version = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    !((6, 11, 0)..(6, 13, 0)).contains(&version)
}

/// The old output at `path`, opened for writing and renamed to a temporary name; `None` if there is
/// none, it is not a regular file, it has other names than weld's own `<output>.weld-base`
/// (writing it would change what they hold: GNU ld leaves a hard link's bytes alone), or it
/// cannot be opened for writing (ETXTBSY: it is running).
fn take_old(path: &Path) -> Option<(TempPath, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;
    // Opened first (never through a symbolic link), then checked as opened.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.file_type().is_file() {
        return None;
    }
    let only_weld_names = meta.nlink() == 1
        || (meta.nlink() == 2
            && std::fs::symlink_metadata(base_path(path))
                .is_ok_and(|b| (b.dev(), b.ino()) == (meta.dev(), meta.ino())));
    if !only_weld_names {
        return None;
    }
    let tmp = TempPath::rename_from(path, temp_path(path)).ok()?;
    Some((tmp, file))
}

/// Allocates the file's blocks up front: a store through the mapping into a block the file
/// system cannot allocate (a full disk, a quota) would kill the process with SIGBUS instead
/// of failing. File systems without fallocate (EOPNOTSUPP) are left as they are.
fn reserve(file: &std::fs::File, size: u64) -> Result<()> {
    use std::os::fd::AsRawFd;
    let Ok(len) = libc::off_t::try_from(size) else {
        anyhow::bail!("{size} bytes is too large");
    };
    // SAFETY: plain system call on an open file descriptor we own; no memory is passed.
    let r = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    match r {
        0 | libc::EOPNOTSUPP | libc::ENOSYS => Ok(()),
        e => Err(std::io::Error::from_raw_os_error(e).into()),
    }
}

/// `.<name>.weld-tmp-<pid>` in the output's directory (same file system, so the rename is
/// atomic).
pub fn temp_path(path: &Path) -> PathBuf {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!(".{file_name}.weld-tmp-{}", std::process::id()))
}

/// A second name (hard link) of the output as weld last wrote it: `<output>.weld-base`.
pub fn base_path(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".weld-base");
    PathBuf::from(name)
}
