//! The incremental state: what a link records next to its output (`<output>.weld-state`) so
//! that the next link of the same output can tell what changed.
//!
//! The only module that knows rkyv. The archive holds no pointers: paths and names are
//! stored in it, everything else is numbers. It is read in place from a memory map and
//! validated (rkyv's checked access) before anything in it is believed; a state that fails
//! validation, comes from another format or weld build, or does not match the output on disk
//! means a full link. It is written to a temporary file, synced and renamed into place.
//!
//! Change detection is here (stat first, BLAKE3 only for inputs whose identity changed;
//! inputs matched by command-line position and content, not path); what to do about a
//! change is `crate::incremental`'s business. Besides the inputs the state records the
//! slotted layout (every output section's size and every file's slot in it), per loaded
//! object its content hash, common symbols, COMDAT groups and global symbols' addresses,
//! and a fingerprint of the GOT/PLT/dynamic-symbol needs.

use crate::args::{Config, InputArg};
use crate::inputs::search::FileSpec;
use anyhow::{bail, Context as _, Result};
use rayon::prelude::*;
use rkyv::{Archive, Deserialize, Serialize};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Bumped whenever the archived types change.
pub const FORMAT_VERSION: u32 = 6;

#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileIdentity {
    pub size: u64,
    pub mtime_ns: u64,
    pub inode: u64,
    pub device: u64,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone)]
pub struct InputRecord {
    pub path: String,
    pub identity: FileIdentity,
    pub hash: [u8; 32],
}

/// One loaded object (a plain input or an archive member), in link order.
#[derive(Archive, Serialize, Deserialize, Debug, Clone)]
pub struct ObjectRecord {
    /// Position of its input on the command line.
    pub input: u32,
    /// Index in its archive, `u32::MAX` for a plain object.
    pub member: u32,
    /// Hash of its member name, rustc's per-session part left out (`u64::MAX` for a plain
    /// object): how an update finds it when members were added or dropped ahead of it.
    pub key: u64,
    pub hash: [u8; 32],
    /// Hash of its common symbols (names, sizes, alignments).
    pub commons: [u8; 32],
    /// (name hash, address) of each global symbol it defines, sorted (`u64::MAX`: no
    /// address).
    pub symbols: Vec<(u64, u64)>,
    /// Name hashes of its COMDAT group signatures, sorted.
    pub groups: Vec<u64>,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone)]
pub struct SlotRecord {
    /// Index of the object in `State::objects`.
    pub file: u32,
    pub start: u64,
    pub capacity: u64,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone)]
pub struct SectionRecord {
    pub name: String,
    pub size: u64,
    pub slots: Vec<SlotRecord>,
}

#[derive(Archive, Serialize, Deserialize, Debug)]
pub struct State {
    pub format: u32,
    /// The weld version and the identity of the weld binary that wrote the state.
    pub build: String,
    /// Hash of the options (everything on the command line except input file paths).
    pub options_hash: [u8; 32],
    pub inputs: Vec<InputRecord>,
    /// The output as this link left it.
    pub output: FileIdentity,
    pub objects: Vec<ObjectRecord>,
    pub sections: Vec<SectionRecord>,
    /// Fingerprint of the GOT, PLT, copy relocations and dynamic symbols.
    pub needs: [u8; 32],
    /// The order of the GOT, PLT and IPLT entries.
    pub order: NeedsOrder,
}

/// The order of the linker-made table entries, by symbol key: an update keeps each entry
/// where it was, whichever object happens to be scanned first now.
#[derive(Archive, Serialize, Deserialize, Clone, Default, Debug, PartialEq)]
pub struct NeedsOrder {
    /// (symbol key, GOT kind as u8) per GOT entry.
    pub got: Vec<(u64, u8)>,
    pub plt: Vec<u64>,
    pub iplt: Vec<u64>,
}

/// Takes the output's lock file (`<output>.weld-lock`), waiting for another weld that holds
/// it. Released when the returned file is dropped (or the process ends).
pub fn lock(output: &Path) -> Result<std::fs::File> {
    let mut name = output.as_os_str().to_owned();
    name.push(".weld-lock");
    let path = PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    file.lock()
        .with_context(|| format!("cannot lock {}", path.display()))?;
    Ok(file)
}

/// A second name (hard link) of the output as weld last wrote it: `<output>.weld-base`.
pub fn base_path(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".weld-base");
    PathBuf::from(name)
}

/// Points the output's second name at the output just written.
pub fn keep_base(output: &Path) -> Result<()> {
    let base = base_path(output);
    let _ = std::fs::remove_file(&base);
    std::fs::hard_link(output, &base)
        .with_context(|| format!("cannot link {} to {}", base.display(), output.display()))
}

pub fn state_path(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".weld-state");
    PathBuf::from(name)
}

pub fn identity(path: &Path) -> Result<FileIdentity> {
    let m = std::fs::metadata(path).with_context(|| format!("cannot stat {}", path.display()))?;
    Ok(FileIdentity {
        size: m.size(),
        mtime_ns: (m.mtime() as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(m.mtime_nsec() as u64),
        inode: m.ino(),
        device: m.dev(),
    })
}

/// The weld that wrote a state must be this weld: version plus the binary's identity.
/// The state file starts with a plain header, so that a state from another weld build is
/// recognised as such (and said so) without validating an archive whose layout may differ:
/// `WELDSTAT`, the format version (u32 LE), the build id's length (u32 LE) and the build id,
/// zero-padded to a multiple of 16 bytes (rkyv's archive alignment). The archive follows.
const MAGIC: &[u8; 8] = b"WELDSTAT";

fn header() -> Vec<u8> {
    let build = build_id();
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    h.extend_from_slice(&(build.len() as u32).to_le_bytes());
    h.extend_from_slice(build.as_bytes());
    h.resize(h.len().next_multiple_of(16), 0);
    h
}

/// Checks the header; returns the archive that follows it, or why it cannot be used.
fn payload(bytes: &[u8]) -> std::result::Result<&[u8], String> {
    let corrupt = || "the state is corrupt: no weld state header".to_string();
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        return Err(corrupt());
    }
    let format = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    let len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    if format != FORMAT_VERSION {
        return Err(format!(
            "the state has format {format}, this weld reads format {FORMAT_VERSION}"
        ));
    }
    let build = bytes.get(16..16 + len).ok_or_else(corrupt)?;
    if build != build_id().as_bytes() {
        return Err("the state was written by another weld build".into());
    }
    Ok(bytes.get((16 + len).next_multiple_of(16)..).unwrap_or(&[]))
}

fn build_id() -> String {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| identity(&p).ok())
        .map(|i| format!("{}-{}", i.size, i.mtime_ns))
        .unwrap_or_default();
    format!("{} {exe}", env!("CARGO_PKG_VERSION"))
}

/// "The arguments changed" means the options changed: input paths are left out (rustc
/// names its objects per session), their kinds and positions are kept.
pub fn options_hash(config: &Config) -> [u8; 32] {
    let mut normalized = config.clone();
    for input in &mut normalized.inputs {
        if let InputArg::File { path, .. } = input {
            *path = PathBuf::new();
        }
    }
    // Search directories only matter through the files found in them, which are compared
    // by content; rustc adds a per-session temporary one.
    normalized.library_paths.clear();
    // Scripts and lists count by content: rustc writes them into per-session directories.
    for list in [
        &mut normalized.version_scripts,
        &mut normalized.dynamic_lists,
        &mut normalized.linker_scripts,
    ] {
        for path in list.iter_mut() {
            if let Ok(hash) = hash_file(path) {
                *path = PathBuf::from(blake3::Hash::from(hash).to_hex().as_str());
            }
        }
    }
    normalized.verbose = false;
    normalized.stats = false;
    normalized.time = false;
    normalized.threads = None;
    normalized.incremental = None;
    // gcc passes plugin options naming per-run temporary files; weld runs no plugins.
    normalized.plugins.clear();
    normalized.plugin_opts.clear();
    *blake3::hash(format!("{normalized:?}").as_bytes()).as_bytes()
}

pub fn hash_file(path: &Path) -> Result<[u8; 32]> {
    let data = crate::inputs::map_file(path)?;
    let mut hasher = blake3::Hasher::new();
    if data.len() > 1 << 20 {
        hasher.update_rayon(data);
    } else {
        hasher.update(data);
    }
    Ok(*hasher.finalize().as_bytes())
}

/// What the next link has to do.
#[derive(Debug)]
pub enum Plan {
    /// Nothing that the output depends on changed: leave it as it is.
    Unchanged,
    /// Link from scratch, for this reason.
    Full(String),
    /// These inputs (by position) changed; the state says how the output was laid out.
    Update {
        changed: Vec<usize>,
        /// Content hash of every input now.
        hashes: Vec<[u8; 32]>,
        state: Box<State>,
    },
}

/// Decides, from the state on disk, what this link must do. Never trusts a state it has not
/// validated; any problem with the state is a reason for a full link, not an error.
pub fn plan(config: &Config, specs: &[FileSpec]) -> Plan {
    match plan_inner(config, specs) {
        Ok(plan) => plan,
        Err(e) => Plan::Full(format!("{e:#}")),
    }
}

fn plan_inner(config: &Config, specs: &[FileSpec]) -> Result<Plan> {
    let path = state_path(&config.output);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(_) => return Ok(Plan::Full("no state from an earlier link".into())),
    };
    // SAFETY: the state file is only ever replaced by rename, never modified in place, so
    // the mapping sees one complete version; its contents are validated below before use.
    let map = unsafe { memmap2::Mmap::map(&file) }.context("cannot map the state")?;
    let archive = match payload(&map) {
        Ok(archive) => archive,
        Err(reason) => return Ok(Plan::Full(reason)),
    };
    let state = rkyv::access::<ArchivedState, rkyv::rancor::Error>(archive)
        .map_err(|_| anyhow::anyhow!("the state is corrupt: it does not validate"))?;
    if state.format != FORMAT_VERSION || state.build.as_str() != build_id() {
        return Ok(Plan::Full(
            "the state was written by another weld build".into(),
        ));
    }
    if state.options_hash != options_hash(config) {
        return Ok(Plan::Full("the options changed".into()));
    }
    // rustc deletes the output before it runs the linker: the output weld wrote lives on
    // under a second name, and comes back from there.
    if !config.output.exists() {
        let _ = std::fs::hard_link(base_path(&config.output), &config.output);
    }
    let output = match identity(&config.output) {
        Ok(i) => i,
        Err(_) => return Ok(Plan::Full("the output is missing".into())),
    };
    let recorded = &state.output;
    if output.size != recorded.size.to_native()
        || output.mtime_ns != recorded.mtime_ns.to_native()
        || output.inode != recorded.inode.to_native()
    {
        return Ok(Plan::Full(
            "the output was changed by something else".into(),
        ));
    }
    if state.inputs.len() != specs.len() {
        return Ok(Plan::Full(format!(
            "inputs added or removed ({} then, {} now)",
            state.inputs.len(),
            specs.len()
        )));
    }
    // Inputs are matched by position: stat first, hash only what looks different.
    let hashes: Vec<([u8; 32], bool)> = specs
        .par_iter()
        .zip(state.inputs.as_slice().par_iter())
        .with_max_len(1)
        .map(|(spec, old)| {
            let now = identity(&spec.path).ok();
            let same_identity = now.is_some_and(|now| {
                now.size == old.identity.size.to_native()
                    && now.mtime_ns == old.identity.mtime_ns.to_native()
                    && now.inode == old.identity.inode.to_native()
                    && now.device == old.identity.device.to_native()
            }) && spec.path.as_os_str().to_string_lossy() == old.path.as_str();
            if same_identity {
                return Ok((old.hash, false));
            }
            let h = hash_file(&spec.path)?;
            Ok((h, h != old.hash))
        })
        .collect::<Result<_>>()?;
    let changed: Vec<usize> = (0..specs.len()).filter(|&i| hashes[i].1).collect();
    if changed.is_empty() {
        return Ok(Plan::Unchanged);
    }
    let state: State = rkyv::deserialize::<State, rkyv::rancor::Error>(state)
        .map_err(|e| anyhow::anyhow!("the state cannot be read: {e}"))?;
    Ok(Plan::Update {
        changed,
        hashes: hashes.into_iter().map(|h| h.0).collect(),
        state: Box::new(state),
    })
}

/// Content hashes of the inputs, for a full link.
pub fn hash_inputs(specs: &[FileSpec]) -> Result<Vec<[u8; 32]>> {
    specs
        .par_iter()
        .with_max_len(1)
        .map(|spec| hash_file(&spec.path))
        .collect()
}

/// What a link knows about its layout, for the state.
pub struct Record {
    pub objects: Vec<ObjectRecord>,
    pub sections: Vec<SectionRecord>,
    pub needs: [u8; 32],
    pub order: NeedsOrder,
}

/// Records the state of a link that just wrote `config.output`.
pub fn save(
    config: &Config,
    specs: &[FileSpec],
    hashes: &[[u8; 32]],
    record: Record,
) -> Result<()> {
    if specs.is_empty() {
        bail!("no inputs");
    }
    let inputs = specs
        .par_iter()
        .zip(hashes.par_iter())
        .with_max_len(1)
        .map(|(spec, hash)| {
            Ok(InputRecord {
                path: spec.path.display().to_string(),
                identity: identity(&spec.path)?,
                hash: *hash,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    keep_base(&config.output)?;
    let state = State {
        format: FORMAT_VERSION,
        build: build_id(),
        options_hash: options_hash(config),
        inputs,
        output: identity(&config.output)?,
        objects: record.objects,
        sections: record.sections,
        needs: record.needs,
        order: record.order,
    };
    let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&state)
        .map_err(|e| anyhow::anyhow!("cannot serialise the state: {e}"))?;
    let path = state_path(&config.output);
    let tmp = PathBuf::from(format!("{}.tmp-{}", path.display(), std::process::id()));
    let result = (|| -> Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(&header())?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Marks the state untrustworthy, durably, before an output is patched in place: the state
/// is removed and its directory synced, so that a link killed mid-patch is followed by a
/// full link.
pub fn invalidate(output: &Path) -> Result<()> {
    let path = state_path(output);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}
