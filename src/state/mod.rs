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
use crate::context::SymRef;
use crate::input::search::FileSpec;
use crate::input::{ArchivedFileIdentity, FileIdentity, KnownInputs};
use crate::resolve::{LoadedObject, Resolution};
use anyhow::{bail, Context as _, Result};
use rayon::prelude::*;
use rkyv::{Archive, Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Bumped whenever the archived types change.
pub const FORMAT_VERSION: u32 = 15;

#[derive(Archive, Serialize, Deserialize, Debug, Clone)]
pub struct InputRecord {
    pub path: String,
    pub identity: FileIdentity,
    pub hash: [u8; 32],
    /// A relocatable object: one that may come or go between links (rustc adds and drops
    /// codegen units), unlike archives and shared libraries, which anchor the input list.
    pub object: bool,
    /// Hash of the modifiers and group it was named with.
    pub attrs: u64,
    /// An archive: a hash of its symbol index (which member defines which name), on which
    /// the choice of members depends (see `incremental::armap_hash`); 0 for other inputs.
    pub armap: u64,
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
    /// What the relocation scan found in it.
    pub scan: ScanRecord,
    /// Its local symbols in the output's `.symtab`: first entry, number of entries, and
    /// its names' range in `.strtab` (start, length). An update copies them from the old
    /// output when the object and its slots stayed as they were.
    pub symtab: [u32; 4],
    /// Index of its first global symbol.
    pub first_global: u32,
    /// Per global symbol, in symbol table order, its entry in `State::globals`.
    pub globals: Vec<u32>,
    /// What resolution sees of it: its global symbols (names, binding, type, visibility,
    /// defined or not), COMDAT groups, `.comment` and `.note.gnu.property` (see `incremental::interface_hash`).
    pub interface: u64,
}

/// One object's relocation scan results, by symbol index in the object: an update takes
/// them instead of scanning an unchanged object again, as long as every global symbol it
/// names resolves to the same kind of definition (`classes`).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct ScanRecord {
    /// GOT, PLT, IPLT and canonical-entry requests in scan order: (request kind, symbol
    /// index (`u32::MAX`: the module's own TLS block), argument).
    pub requests: Vec<(u8, u32, u8)>,
    /// Symbols defined by shared objects that it refers to.
    pub used_shared: Vec<u32>,
    /// Symbols that its symbolic dynamic relocations name.
    pub dynsym_refs: Vec<u32>,
    pub n_relative: u64,
    pub n_symbolic: u64,
    /// References to undefined symbols: (symbol index, section, offset).
    pub undefined: Vec<(u32, u32, u64)>,
    /// Per global symbol of the object, in symbol table order, the kind of its definition
    /// (see `layout::scan_class`).
    pub classes: Vec<u8>,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone)]
pub struct SlotRecord {
    /// Index of the object in `State::objects`.
    pub file: u32,
    pub start: u64,
    pub capacity: u64,
    /// What its input sections make of the output section's header: their largest
    /// alignment, their flags (or'ed), whether one of them has contents (not SHT_NOBITS).
    /// An empty slot (its file lost its sections here) has alignment 0.
    pub align: u64,
    pub flags: u64,
    pub progbits: bool,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone)]
pub struct SectionRecord {
    pub name: String,
    pub size: u64,
    pub slots: Vec<SlotRecord>,
    pub addr: u64,
    pub offset: u64,
    pub sh_type: u32,
    pub sh_flags: u64,
    pub align: u64,
    /// Made by the linker (GOT, PLT, dynamic tables, ...), not of input sections.
    pub synthetic: bool,
}

/// A global symbol as the recorded link resolved it, by its `SymbolId` then: what an
/// update that reads only some objects needs to know of the symbols the others define.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
pub struct GlobalRecord {
    /// Hash of its name (`incremental::name_hash`).
    pub key: u64,
    /// The address a reference resolves to (`layout::Layout::symbol_address`).
    pub addr: u64,
    /// The object that defines it (`u32::MAX`: none).
    pub file: u32,
    /// Its `.dynsym` index (0: none).
    pub dynsym: u32,
    /// Its entry among `.symtab`'s global symbols (`write::Tail::symtab_globals`).
    pub symtab: u32,
    /// How it is defined: one of the `GLOBAL_*` constants.
    pub kind: u8,
    pub st_type: u8,
    /// `layout::scan_class`.
    pub class: u8,
    /// `GLOBAL_COPY`, `GLOBAL_NO_ADDRESS`.
    pub flags: u8,
}

pub const GLOBAL_DEFINED: u8 = 0;
pub const GLOBAL_ABS: u8 = 1;
pub const GLOBAL_COMMON: u8 = 2;
pub const GLOBAL_SYNTHETIC: u8 = 3;
pub const GLOBAL_SHARED: u8 = 4;
pub const GLOBAL_UNDEFINED: u8 = 5;
/// A copy relocation (or an alias of one) holds it.
pub const GLOBAL_COPY: u8 = 1;
/// It has no address in the output (defined in a discarded section).
pub const GLOBAL_NO_ADDRESS: u8 = 2;

/// What of the layout is not per section: the output kind and where the linker's tables
/// and the TLS block are.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq)]
pub struct LayoutRecord {
    /// `crate::context::OutputKind` as a number (see `incremental::kind_number`).
    pub kind: u8,
    pub tls_start: u64,
    pub tls_memsz: u64,
    pub tls_align: u64,
    pub got: u64,
    pub got_plt: u64,
    pub plt: u64,
    pub iplt: u64,
    /// `SyntheticAddrs::plt_header`.
    pub plt_header: u64,
    pub file_size: u64,
    pub build_id_size: u64,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone)]
pub struct State {
    pub format: u32,
    /// The weld version and the identity of the weld binary that wrote the state.
    pub build: String,
    /// Hash of the options (everything on the command line except input file paths).
    pub options_hash: [u8; 32],
    pub inputs: Vec<InputRecord>,
    /// The output as this link left it. (Known once the output is written, after the
    /// archive: it is kept in the file's header, see `MAGIC`.)
    #[rkyv(with = rkyv::with::Skip)]
    pub output: FileIdentity,
    pub objects: Vec<ObjectRecord>,
    pub sections: Vec<SectionRecord>,
    /// Fingerprint of the GOT, PLT, copy relocations and dynamic symbols.
    pub needs: [u8; 32],
    /// The order of the GOT, PLT and IPLT entries.
    pub order: NeedsOrder,
    /// The resolved global symbols, by `SymbolId`.
    pub globals: Vec<GlobalRecord>,
    pub layout: LayoutRecord,
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
    ensure_own(&path)?;
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

/// Checks that a path weld names after the output (`.weld-state`, `.weld-base`, ...) is a
/// regular file or nothing: anything else there was not made by weld and is left alone.
fn ensure_own(path: &Path) -> Result<()> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| !m.file_type().is_file()) {
        bail!(
            "{} is not a regular file; weld keeps its incremental state there (remove it, or link without --incremental)",
            path.display()
        );
    }
    Ok(())
}

/// Removes a regular file that weld names after the output (see [`ensure_own`]).
fn remove_own_file(path: &Path) -> Result<()> {
    ensure_own(path)?;
    let _ = std::fs::remove_file(path);
    Ok(())
}

/// Points the output's second name at the output just written.
pub fn keep_base(output: &Path) -> Result<()> {
    let base = crate::output::base_path(output);
    remove_own_file(&base)?;
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
    Ok(FileIdentity::of(&m))
}

/// The weld that wrote a state must be this weld: version plus the binary's identity.
/// The state file starts with a plain header, so that a state from another weld build is
/// recognised as such (and said so) without validating an archive whose layout may differ:
/// `WELDSTAT`, the format version (u32 LE), the build id's length (u32 LE) and the build id,
/// zero-padded to a multiple of 16 bytes (rkyv's archive alignment); then the archive's
/// XXH3-64 (u64 LE), a check (u64 LE: the XXH3-64 of the output's identity and the
/// archive's hash) and the output's identity as the link left it (size, mtime, inode,
/// device: u64 LE each). The archive follows.
///
/// The archive is written while the output is patched; the output's identity, known after,
/// goes into the header, written last. The checksum is what lets the state be written
/// without an fsync: a state torn by a crash (its blocks not yet on disk when the rename
/// was) does not match it, and the next link is a full one. (The old state was renamed
/// away durably before the output was patched, and the patched output was synced before
/// this state was renamed into place.)
const MAGIC: &[u8; 8] = b"WELDSTAT";

/// The header's length (see [`MAGIC`]): the build id's part, then the checksums and the
/// output's identity.
fn header_len() -> usize {
    (16 + build_id().len()).next_multiple_of(16) + 48
}

/// The bytes of the output's identity in the header.
fn identity_words(i: &FileIdentity) -> [u8; 32] {
    let mut b = [0u8; 32];
    for (k, v) in [i.size, i.mtime_ns, i.inode, i.device]
        .into_iter()
        .enumerate()
    {
        b[8 * k..8 * k + 8].copy_from_slice(&v.to_le_bytes());
    }
    b
}

/// The check of the header's output identity and archive hash.
fn header_check(identity: &[u8], archive_sum: u64) -> u64 {
    let mut both = identity.to_vec();
    both.extend_from_slice(&archive_sum.to_le_bytes());
    twox_hash::XxHash3_64::oneshot(&both)
}

fn header(archive_sum: u64, output: &FileIdentity) -> Vec<u8> {
    let build = build_id();
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    h.extend_from_slice(&(build.len() as u32).to_le_bytes());
    h.extend_from_slice(build.as_bytes());
    h.resize(h.len().next_multiple_of(16), 0);
    let identity = identity_words(output);
    h.extend_from_slice(&archive_sum.to_le_bytes());
    h.extend_from_slice(&header_check(&identity, archive_sum).to_le_bytes());
    h.extend_from_slice(&identity);
    h
}

/// Checks the header; returns the archive that follows it and the output's identity as the
/// link left it, or why they cannot be used.
fn payload(bytes: &[u8]) -> std::result::Result<(&[u8], FileIdentity), String> {
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
    let at = (16 + len).next_multiple_of(16);
    let fields = bytes.get(at..at + 48).ok_or_else(corrupt)?;
    let word = |i: usize| u64::from_le_bytes(fields[8 * i..8 * i + 8].try_into().unwrap());
    let archive = &bytes[at + 48..];
    let sum = twox_hash::XxHash3_64::oneshot(archive);
    if sum != word(0) || header_check(&fields[16..], sum) != word(1) {
        return Err("the state is corrupt: its checksum does not match".into());
    }
    let output = FileIdentity {
        size: word(2),
        mtime_ns: word(3),
        inode: word(4),
        device: word(5),
    };
    Ok((archive, output))
}

/// Asked for 4-5 times by an incremental link (reading, planning, writing): found once.
fn build_id() -> &'static str {
    static BUILD: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BUILD.get_or_init(|| {
        let exe = std::env::current_exe()
            .ok()
            .and_then(|p| identity(&p).ok())
            .map(|i| format!("{}-{}", i.size, i.mtime_ns))
            .unwrap_or_default();
        format!("{} {exe}", env!("CARGO_PKG_VERSION"))
    })
}

/// "The arguments changed" means the options changed: input files are left out (rustc
/// names its objects per session and adds or drops some between builds); they are matched
/// one by one (`match_inputs`).
pub fn options_hash(config: &Config) -> [u8; 32] {
    let mut normalized = config.clone();
    normalized
        .inputs
        .retain(|input| !matches!(input, InputArg::File { .. }));
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
    Ok(hash_input(path)?.hash)
}

/// What the state knows of an input's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputHash {
    pub hash: [u8; 32],
    /// An ELF relocatable object.
    pub object: bool,
}

pub fn hash_input(path: &Path) -> Result<InputHash> {
    let data = crate::input::map_file(path)?;
    let mut hasher = blake3::Hasher::new();
    if data.len() > 1 << 20 {
        hasher.update_rayon(data);
    } else {
        hasher.update(data);
    }
    let object = data.len() >= 18
        && data.starts_with(b"\x7fELF")
        && u16::from_le_bytes([data[16], data[17]]) == object::elf::ET_REL;
    Ok(InputHash {
        hash: *hasher.finalize().as_bytes(),
        object,
    })
}

/// An input's modifiers and group, as [`InputRecord::attrs`].
fn input_attrs(spec: &FileSpec) -> u64 {
    let text = format!("{:?} {:?}", spec.modifiers, spec.group);
    u64::from_le_bytes(
        blake3::hash(text.as_bytes()).as_bytes()[..8]
            .try_into()
            .unwrap(),
    )
}

/// [`input_attrs`] of every input (neighbours mostly share their modifiers and group).
fn all_input_attrs(specs: &[FileSpec]) -> Vec<u64> {
    let mut last: Option<(&FileSpec, u64)> = None;
    specs
        .iter()
        .map(|spec| match last {
            Some((prev, attrs)) if (prev.modifiers, prev.group) == (spec.modifiers, spec.group) => {
                attrs
            }
            _ => {
                let attrs = input_attrs(spec);
                last = Some((spec, attrs));
                attrs
            }
        })
        .collect()
}

/// One input as `match_inputs` sees it.
#[derive(Clone, Copy, Debug)]
pub struct InputKey {
    pub hash: [u8; 32],
    pub object: bool,
    pub attrs: u64,
}

/// How this link's inputs correspond to the recorded link's.
#[derive(Debug, PartialEq, Eq)]
pub struct InputMatch {
    /// Per recorded input, its position now (`u32::MAX`: gone).
    pub new_of_old: Vec<u32>,
    /// Positions now of inputs whose contents differ from their recorded counterpart's.
    pub changed: Vec<usize>,
    /// Positions now of inputs with no recorded counterpart.
    pub added: Vec<usize>,
}

/// Matches this link's inputs to the recorded ones. Inputs other than relocatable objects
/// (archives, shared libraries) must be the same list, with the same modifiers: they
/// anchor the match. Between two anchors, objects with the same contents are the same
/// object (rustc renames them per session); the rest are paired in order as changed
/// objects, and what is left over was added or removed. Objects found again must keep
/// their order.
pub fn match_inputs(old: &[InputKey], now: &[InputKey]) -> std::result::Result<InputMatch, String> {
    let anchors = |keys: &[InputKey]| -> Vec<usize> {
        (0..keys.len()).filter(|&i| !keys[i].object).collect()
    };
    let (old_anchors, new_anchors) = (anchors(old), anchors(now));
    if old_anchors.len() != new_anchors.len() {
        return Err(format!(
            "archives or shared libraries added or removed ({} then, {} now)",
            old_anchors.len(),
            new_anchors.len()
        ));
    }
    let mut m = InputMatch {
        new_of_old: vec![u32::MAX; old.len()],
        changed: Vec::new(),
        added: Vec::new(),
    };
    for (&o, &n) in old_anchors.iter().zip(&new_anchors) {
        if old[o].attrs != now[n].attrs {
            return Err("the inputs' modifiers changed".into());
        }
        m.new_of_old[o] = n as u32;
        if old[o].hash != now[n].hash {
            m.changed.push(n);
        }
    }
    // The runs of objects before, between and after the anchors.
    let bounds = |anchors: &[usize], len: usize| -> Vec<(usize, usize)> {
        let mut start = 0;
        let mut runs = Vec::new();
        for &a in anchors.iter().chain(std::iter::once(&len)) {
            runs.push((start, a));
            start = a + 1;
        }
        runs
    };
    for ((o0, o1), (n0, n1)) in bounds(&old_anchors, old.len())
        .into_iter()
        .zip(bounds(&new_anchors, now.len()))
    {
        let mut by_hash: std::collections::HashMap<[u8; 32], std::collections::VecDeque<usize>> =
            Default::default();
        for (o, key) in old.iter().enumerate().take(o1).skip(o0) {
            by_hash.entry(key.hash).or_default().push_back(o);
        }
        // Objects found again by contents, in order now.
        let mut found: Vec<(usize, usize)> = Vec::new();
        for (n, key) in now.iter().enumerate().take(n1).skip(n0) {
            if let Some(o) = by_hash.get_mut(&key.hash).and_then(|q| q.pop_front()) {
                if found.last().is_some_and(|&(last, _)| last > o) {
                    return Err("inputs reordered".into());
                }
                found.push((o, n));
            }
        }
        // Between two objects found again (and at the run's ends), the objects not found
        // are paired in order: changed; the rest were removed or added.
        let mut prev = (o0, n0);
        for &(o, n) in found.iter().chain(std::iter::once(&(o1, n1))) {
            let mut olds = prev.0..o;
            let mut news = prev.1..n;
            loop {
                match (olds.next(), news.next()) {
                    (Some(a), Some(b)) if old[a].attrs == now[b].attrs => {
                        m.new_of_old[a] = b as u32;
                        m.changed.push(b);
                    }
                    (Some(_), Some(b)) => m.added.push(b),
                    (None, Some(b)) => m.added.push(b),
                    (_, None) => break,
                }
            }
            if o < o1 {
                if old[o].attrs != now[n].attrs {
                    return Err("the inputs' modifiers changed".into());
                }
                m.new_of_old[o] = n as u32;
            }
            prev = (o + 1, n + 1);
        }
    }
    m.changed.sort_unstable();
    m.added.sort_unstable();
    Ok(m)
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
        /// Every input now.
        inputs: Inputs,
        /// How they correspond to the recorded ones.
        matched: InputMatch,
        state: Box<State>,
    },
}

/// The state file beside an output, mapped, with its checksum checked and its archive
/// validated once. It is read before the input search, which takes an input the recorded
/// link had, with the identity it had, for the binary it was (without opening it), and
/// planned from once the output's lock is held.
pub struct Prior {
    /// The map, the archive's range in it and the output's identity as the recorded link
    /// left it; or why there is no usable state.
    found: std::result::Result<(memmap2::Mmap, std::ops::Range<usize>, FileIdentity), String>,
    /// The state file's identity when it was read.
    identity: Option<FileIdentity>,
}

impl Prior {
    pub fn read(output: &Path) -> Prior {
        let path = state_path(output);
        let file = std::fs::File::open(&path);
        let identity = file.as_ref().ok().and_then(|f| f.metadata().ok());
        let found = match file {
            Ok(file) => map_state(&file),
            Err(_) => Err("no state from an earlier link".into()),
        };
        Prior {
            found,
            identity: identity.as_ref().map(FileIdentity::of),
        }
    }

    /// This state, or the one beside `output` now if another link replaced it since it was
    /// read (the caller holds the output's lock now).
    pub fn current(self, output: &Path) -> Prior {
        let now = std::fs::metadata(state_path(output)).ok();
        if now.as_ref().map(FileIdentity::of) == self.identity {
            return self;
        }
        Prior::read(output)
    }

    fn state(&self) -> std::result::Result<&ArchivedState, String> {
        let (map, range, _) = self.found.as_ref().map_err(Clone::clone)?;
        // SAFETY: `map_state` validated these bytes as an `ArchivedState` (rkyv::access);
        // the map is read-only, of a file that is only ever replaced by rename, never
        // written in place, so they are the bytes it validated.
        Ok(unsafe { rkyv::access_unchecked::<ArchivedState>(&map[range.clone()]) })
    }

    /// The identities of the recorded inputs (each an object, an archive or a shared
    /// library: scripts are recorded expanded).
    pub fn known_inputs(&self) -> KnownInputs {
        let Ok(state) = self.state() else {
            return KnownInputs::new(std::iter::empty());
        };
        KnownInputs::new(
            (state.inputs.iter())
                .map(|r| identity_of(&r.identity))
                .filter(|i| i.inode != 0),
        )
    }

    /// The output's identity as the recorded link left it.
    fn output(&self) -> Option<FileIdentity> {
        self.found.as_ref().ok().map(|f| f.2)
    }
}

/// Maps a state file and checks it: its header and checksum, then the archive.
#[allow(clippy::type_complexity)]
fn map_state(
    file: &std::fs::File,
) -> std::result::Result<(memmap2::Mmap, std::ops::Range<usize>, FileIdentity), String> {
    // SAFETY: the state file is only ever replaced by rename, never modified in place, so
    // the mapping sees one complete version; its contents are validated below before use.
    let map =
        unsafe { memmap2::Mmap::map(file) }.map_err(|e| format!("cannot map the state: {e}"))?;
    let (archive, output) = payload(&map)?;
    rkyv::access::<ArchivedState, rkyv::rancor::Error>(archive)
        .map_err(|_| "the state is corrupt: it does not validate".to_string())?;
    let start = archive.as_ptr() as usize - map.as_ptr() as usize;
    let range = start..start + archive.len();
    Ok((map, range, output))
}

fn identity_of(i: &ArchivedFileIdentity) -> FileIdentity {
    FileIdentity {
        size: i.size.to_native(),
        mtime_ns: i.mtime_ns.to_native(),
        inode: i.inode.to_native(),
        device: i.device.to_native(),
    }
}

/// Decides, from the state on disk (`prior`), what this link must do. Never trusts a state
/// it has not validated; any problem with the state is a reason for a full link, not an
/// error.
pub fn plan(config: &Config, specs: &[FileSpec], prior: &Prior) -> Plan {
    match plan_inner(config, specs, prior) {
        Ok(plan) => plan,
        Err(e) => Plan::Full(format!("{e:#}")),
    }
}

fn plan_inner(config: &Config, specs: &[FileSpec], prior: &Prior) -> Result<Plan> {
    let state = match prior.state() {
        Ok(state) => state,
        Err(reason) => return Ok(Plan::Full(reason)),
    };
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
        let _ = std::fs::hard_link(crate::output::base_path(&config.output), &config.output);
    }
    let output = match identity(&config.output) {
        Ok(i) => i,
        Err(_) => return Ok(Plan::Full("the output is missing".into())),
    };
    let recorded = prior.output().unwrap_or_default();
    if (output.size, output.mtime_ns, output.inode)
        != (recorded.size, recorded.mtime_ns, recorded.inode)
    {
        return Ok(Plan::Full(
            "the output was changed by something else".into(),
        ));
    }
    // Stat first, hash only what looks different. rustc names its objects anew in every
    // build, but an object of a codegen unit it reused is a hard link to the file in its
    // incremental cache, and that file to the last build's: the same inode, size and
    // modification time under another name is the same file.
    let by_path: std::collections::HashMap<&str, usize> = state
        .inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(i, r)| (r.path.as_str(), i))
        .collect();
    let key = |i: &ArchivedFileIdentity| {
        (
            i.size.to_native(),
            i.mtime_ns.to_native(),
            i.inode.to_native(),
            i.device.to_native(),
        )
    };
    let by_identity: std::collections::HashMap<(u64, u64, u64, u64), usize> = state
        .inputs
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, r)| r.identity.inode.to_native() != 0)
        .map(|(i, r)| (key(&r.identity), i))
        .collect();
    let attrs = all_input_attrs(specs);
    let now: Vec<(InputKey, bool)> = specs
        .par_iter()
        .zip(&attrs)
        .with_max_len(1)
        .map(|(spec, &attrs)| {
            let path = spec.path.as_os_str().to_string_lossy();
            let now = Some(spec.identity);
            let same = |old: &ArchivedInputRecord| {
                now.is_some_and(|now| {
                    (now.size, now.mtime_ns, now.inode, now.device) == key(&old.identity)
                })
            };
            let old = by_path
                .get(&*path)
                .map(|&i| &state.inputs[i])
                .filter(|old| same(old))
                .or_else(|| {
                    let now = now.filter(|n| n.inode != 0)?;
                    let i = by_identity.get(&(now.size, now.mtime_ns, now.inode, now.device))?;
                    Some(&state.inputs[*i])
                });
            if let Some(old) = old {
                let key = InputKey {
                    hash: old.hash,
                    object: old.object,
                    attrs,
                };
                return Ok((key, false));
            }
            let h = hash_input(&spec.path)?;
            let key = InputKey {
                hash: h.hash,
                object: h.object,
                attrs,
            };
            Ok((key, true))
        })
        .collect::<Result<_>>()?;
    let read = now.iter().filter(|k| k.1).count();
    let now: Vec<InputKey> = now.into_iter().map(|k| k.0).collect();
    let old: Vec<InputKey> = state
        .inputs
        .iter()
        .map(|r| InputKey {
            hash: r.hash,
            object: r.object,
            attrs: r.attrs.to_native(),
        })
        .collect();
    let matched = match match_inputs(&old, &now) {
        Ok(m) => m,
        Err(reason) => return Ok(Plan::Full(reason)),
    };
    if matched.changed.is_empty()
        && matched.added.is_empty()
        && !matched.new_of_old.contains(&u32::MAX)
    {
        return Ok(Plan::Unchanged);
    }
    let mut state: State = rkyv::deserialize::<State, rkyv::rancor::Error>(state)
        .map_err(|e| anyhow::anyhow!("the state cannot be read: {e}"))?;
    state.output = recorded;
    Ok(Plan::Update {
        inputs: Inputs {
            hashes: now.iter().map(|k| k.hash).collect(),
            objects: now.iter().map(|k| k.object).collect(),
            read,
        },
        matched,
        state: Box::new(state),
    })
}

/// The contents of a link's inputs, by position: what the state records of them.
#[derive(Debug)]
pub struct Inputs {
    pub hashes: Vec<[u8; 32]>,
    pub objects: Vec<bool>,
    /// How many were read and hashed (the others' identity matched a recorded input's).
    pub read: usize,
}

/// Content hashes of the inputs, for a full link.
pub fn hash_inputs(specs: &[FileSpec]) -> Result<Inputs> {
    let all: Vec<InputHash> = specs
        .par_iter()
        .with_max_len(1)
        .map(|spec| hash_input(&spec.path))
        .collect::<Result<_>>()?;
    Ok(Inputs {
        hashes: all.iter().map(|h| h.hash).collect(),
        objects: all.iter().map(|h| h.object).collect(),
        read: all.len(),
    })
}

/// What a link knows about its layout, for the state.
pub struct Record {
    pub objects: Vec<ObjectRecord>,
    pub sections: Vec<SectionRecord>,
    pub needs: [u8; 32],
    pub order: NeedsOrder,
    pub globals: Vec<GlobalRecord>,
    pub layout: LayoutRecord,
    /// Per input, `InputRecord::armap`.
    pub armaps: Vec<u64>,
}

/// Records the state of a link that just wrote `config.output`.
pub fn save(config: &Config, specs: &[FileSpec], now: &Inputs, record: Record) -> Result<()> {
    let serialized = serialize(config, specs, now, record)?;
    write(config, serialized)
}

/// A state written to its temporary file before the output it describes is final: the
/// header, with the output's identity, is written by [`write`], which renames it into place.
pub struct Serialized {
    tmp: crate::temp::TempPath,
    file: std::fs::File,
    archive_sum: u64,
}

/// A writer that hashes what it writes (the state's archive, as it is written).
struct Hashing<W> {
    inner: W,
    hash: twox_hash::XxHash3_64,
}

impl<W: std::io::Write> std::io::Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        std::hash::Hasher::write(&mut self.hash, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Serialises the state of a link (see [`save`]); an update does this while it patches the
/// output.
pub fn serialize(
    config: &Config,
    specs: &[FileSpec],
    now: &Inputs,
    record: Record,
) -> Result<Serialized> {
    if specs.is_empty() {
        bail!("no inputs");
    }
    let attrs = all_input_attrs(specs);
    let inputs = specs
        .par_iter()
        .zip(now.hashes.par_iter().zip(now.objects.par_iter()))
        .zip(&attrs)
        .enumerate()
        .with_min_len(64)
        .map(|(i, ((spec, (hash, &object)), &attrs))| InputRecord {
            path: spec.path.display().to_string(),
            identity: spec.identity,
            hash: *hash,
            object,
            attrs,
            armap: record.armaps.get(i).copied().unwrap_or(0),
        })
        .collect();
    let state = State {
        format: FORMAT_VERSION,
        build: build_id().to_owned(),
        options_hash: options_hash(config),
        inputs,
        output: FileIdentity::default(),
        objects: record.objects,
        sections: record.sections,
        needs: record.needs,
        order: record.order,
        globals: record.globals,
        layout: record.layout,
    };
    let mut steps = crate::PhaseTimer::new(config.time);
    steps.step("records");
    // Streamed into the file (no 2-3 MB buffer of fresh pages), after room for the header.
    let path = state_path(&config.output);
    ensure_own(&path)?;
    let tmp_name = PathBuf::from(format!("{}.tmp-{}", path.display(), std::process::id()));
    let (tmp, file) = crate::temp::TempPath::create(tmp_name.clone())
        .with_context(|| format!("cannot create {}", tmp_name.display()))?;
    let cannot_write = || format!("cannot write {}", tmp.path().display());
    let archive_sum = {
        let mut out = std::io::BufWriter::with_capacity(256 << 10, &file);
        std::io::Write::write_all(&mut out, &vec![0; header_len()]).with_context(cannot_write)?;
        let hashing = Hashing {
            inner: out,
            hash: twox_hash::XxHash3_64::new(),
        };
        let writer = rkyv::ser::writer::IoWriter::new(hashing);
        let Hashing { inner, hash } =
            rkyv::api::high::to_bytes_in::<_, rkyv::rancor::Error>(&state, writer)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.path().display()))?
                .into_inner();
        inner
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(cannot_write)?;
        std::hash::Hasher::finish(&hash)
    };
    steps.step("serialise");
    Ok(Serialized {
        tmp,
        file,
        archive_sum,
    })
}

/// Writes a serialised state next to the output, which is final now: its identity is
/// filled in, the state written to a temporary file, synced and renamed into place.
pub fn write(config: &Config, serialized: Serialized) -> Result<()> {
    keep_base(&config.output)?;
    let output = identity(&config.output)?;
    let Serialized {
        tmp,
        file,
        archive_sum,
    } = serialized;
    use std::os::unix::fs::FileExt;
    // (No fsync: the header's checksum finds a state a crash tore; see `MAGIC`.)
    file.write_all_at(&header(archive_sum, &output), 0)
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    let path = state_path(&config.output);
    std::fs::rename(tmp.path(), &path).with_context(|| {
        format!(
            "cannot rename {} to {}",
            tmp.path().display(),
            path.display()
        )
    })?;
    tmp.keep();
    Ok(())
}

/// Marks the state untrustworthy, durably, before an output is patched in place: it is
/// renamed away (`<state>.old`) and its directory synced, so that a link killed mid-patch is
/// followed by a full link. The old file is removed on another thread (freeing a ripgrep
/// state's blocks took ~1.3 ms), which the caller joins once the patch is written.
pub fn invalidate(output: &Path) -> Result<Option<std::thread::JoinHandle<()>>> {
    let path = state_path(output);
    let old = PathBuf::from(format!("{}.old", path.display()));
    ensure_own(&path)?;
    ensure_own(&old)?;
    match std::fs::rename(&path, &old) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot rename {}", path.display())),
    }
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))?;
    Ok(Some(std::thread::spawn(move || {
        let _ = std::fs::remove_file(old);
    })))
}

// Keys: how the state names symbols, objects and archive members across links.

/// The state's key for a symbol name: XXH3-64, a stable, well-distributed hash that costs
/// a few nanoseconds for a symbol name (BLAKE3 took ~10 ms per ripgrep update over the GOT
/// entries' names alone).
pub fn name_hash(name: &[u8]) -> u64 {
    twox_hash::XxHash3_64::oneshot(name)
}

/// An object's identity within its input: `u64::MAX` for a plain object; for an archive
/// member, the hash of its name with rustc's per-session part left out
/// (`crate-hash.cgu.SESSION.rcgu.o` names every member anew in each build).
pub fn member_key(object: &LoadedObject) -> u64 {
    if object.origin.1 == u32::MAX {
        return u64::MAX;
    }
    let member = object
        .name
        .strip_suffix(')')
        .and_then(|n| n.rsplit_once('('))
        .map_or(object.name.as_str(), |(_, m)| m);
    member_name_key(member.as_bytes())
}

/// [`member_key`] of an archive member's name.
pub fn member_name_key(member: &[u8]) -> u64 {
    let stable = member
        .strip_suffix(b".rcgu.o")
        .and_then(|stem| stem.iter().rposition(|&b| b == b'.').map(|i| &stem[..i]))
        .unwrap_or(member);
    name_hash(stable)
}

/// The state's key for a GOT/PLT entry's symbol: its name's hash, or for a local symbol,
/// where it comes from (input position, archive member, symbol index).
pub fn symref_key(res: &Resolution, symref: SymRef) -> u64 {
    match symref {
        SymRef::Global(id) => name_hash(res.symbols.get(id).name),
        SymRef::Local(f, i) => {
            let origin = res
                .objects
                .get(f.0 as usize)
                .map_or((u32::MAX, 0), |o| (o.origin.0, member_key(o)));
            let mut key = [0u8; 21];
            key[..5].copy_from_slice(b"local");
            key[5..9].copy_from_slice(&origin.0.to_le_bytes());
            key[9..17].copy_from_slice(&origin.1.to_le_bytes());
            key[17..].copy_from_slice(&i.to_le_bytes());
            name_hash(&key)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An object (`o`) or archive (`a`) with content `c`.
    fn keys(spec: &str) -> Vec<InputKey> {
        spec.split_whitespace()
            .map(|k| InputKey {
                hash: [k.as_bytes()[1]; 32],
                object: k.starts_with('o'),
                attrs: 0,
            })
            .collect()
    }

    fn matched(old: &str, now: &str) -> std::result::Result<InputMatch, String> {
        match_inputs(&keys(old), &keys(now))
    }

    #[test]
    fn objects_are_matched_by_contents_between_archives() {
        // Same inputs, renamed: nothing changed.
        let m = matched("o1 o2 a1 o3", "o1 o2 a1 o3").unwrap();
        assert_eq!(m.new_of_old, vec![0, 1, 2, 3]);
        assert!(m.changed.is_empty() && m.added.is_empty());
        // One object changed.
        let m = matched("o1 o2 o3 a1", "o1 o9 o3 a1").unwrap();
        assert_eq!((m.new_of_old, m.changed), (vec![0, 1, 2, 3], vec![1]));
        // An object added in the middle, one changed after it.
        let m = matched("o1 o2 o3 a1", "o1 o8 o2 o9 a1").unwrap();
        assert_eq!(m.new_of_old, vec![0, 2, 3, 4]);
        assert_eq!((m.changed, m.added), (vec![3], vec![1]));
        // An object removed; an archive changed.
        let m = matched("o1 o2 o3 a1 a2", "o1 o3 a1 a7").unwrap();
        assert_eq!(m.new_of_old, vec![0, u32::MAX, 1, 2, 3]);
        assert_eq!((m.changed, m.added), (vec![3], vec![]));
        // Objects do not cross archives: moved past one, an object is removed and added.
        let m = matched("o1 o2 a1 o3", "o1 a1 o2 o3").unwrap();
        assert_eq!(m.new_of_old, vec![0, u32::MAX, 1, 3]);
        assert_eq!(m.added, vec![2]);
    }

    #[test]
    fn what_an_update_cannot_follow() {
        assert!(matched("o1 o2 a1", "o2 o1 a1")
            .unwrap_err()
            .contains("reordered"));
        assert!(matched("o1 a1", "o1 a1 a2")
            .unwrap_err()
            .contains("archives or shared libraries"));
        let mut now = keys("o1 a1");
        now[1].attrs = 1;
        assert!(match_inputs(&keys("o1 a1"), &now)
            .unwrap_err()
            .contains("modifiers"));
    }
}
