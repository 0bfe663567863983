//! Phase 1: inputs. Finds, maps and classifies input files; splits archives into members.
//!
//! Nothing here decides which archive members are linked: `resolve` asks for members by
//! index. Mapped files live until the process exits (see [`map_file`]).

pub mod dso;
pub mod elf;
pub mod search;

use anyhow::{bail, Context, Result};
use rustc_hash::FxHashMap as HashMap;
use std::path::Path;

/// Maps a file read-only for the rest of the process.
///
/// Mappings are leaked on purpose: every later phase borrows section data, names and tables
/// from them, and a link is one process, so `'static` borrows keep the types simple.
pub fn map_file(path: &Path) -> Result<&'static [u8]> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = file
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?
        .len();
    if len == 0 {
        return Ok(&[]);
    }
    // SAFETY: the mapping is read-only and private. Another process truncating or rewriting an
    // input while we link is outside what a linker can defend against (GNU ld and lld have the
    // same exposure); the contents are validated as ELF/archive data before use.
    let map = unsafe { memmap2::Mmap::map(&file) }
        .with_context(|| format!("cannot map {}", path.display()))?;
    let data: &'static [u8] = Box::leak(Box::new(map));
    if let Ok(mut mapped) = MAPPED.lock() {
        mapped.push((data.as_ptr() as usize, data.len(), path.to_path_buf()));
    }
    Ok(data)
}

/// Every mapping [`map_file`] made: (address, length, path). An LTO plugin is given an
/// input as a file and an offset in it (an archive member's is inside its archive).
static MAPPED: std::sync::Mutex<Vec<(usize, usize, std::path::PathBuf)>> =
    std::sync::Mutex::new(Vec::new());

/// The file `data` (part of a mapping from [`map_file`]) was read from, and its offset there.
pub fn source_of(data: &[u8]) -> Option<(std::path::PathBuf, u64)> {
    let at = data.as_ptr() as usize;
    let mapped = MAPPED.lock().ok()?;
    mapped
        .iter()
        .find(|(start, len, _)| *start <= at && at + data.len() <= start + len)
        .map(|(start, _, path)| (path.clone(), (at - start) as u64))
}

/// Lets the kernel drop the pages of `data` (part of a mapping from [`map_file`]) from this
/// process: the link will not read them again, and they would count in its peak memory. The
/// partial pages at either end are kept. Only a hint: if they are read after all, they are
/// read again from the file.
pub fn release(data: &[u8]) {
    const PAGE: usize = 4096;
    let start = (data.as_ptr() as usize).next_multiple_of(PAGE);
    let end = (data.as_ptr() as usize + data.len()) & !(PAGE - 1);
    if end > start {
        // SAFETY: the range lies inside a read-only private file mapping that stays mapped
        // (`map_file` leaks it); MADV_DONTNEED on such a mapping only drops page table
        // entries, and the next access reads the same file pages again. No memory becomes
        // invalid, nothing that was written is lost (nothing was).
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

/// One member of an archive.
pub struct ArchiveMember {
    /// Its name in the archive ([`Archive::member_name`] makes `archive.a(member.o)` of it
    /// for the members that are used).
    pub name: &'static [u8],
    pub data: &'static [u8],
}

/// An archive: its members in order and its symbol index.
pub struct Archive {
    pub display_name: String,
    pub members: Vec<ArchiveMember>,
    /// Symbol name -> member index, in index order, with the name's `symbols::name_hash`.
    pub index: Vec<(&'static [u8], u32, u64)>,
    /// The archive's bytes; a thin archive's members are separate mappings.
    data: &'static [u8],
    thin: bool,
}

impl Archive {
    /// `archive.a(member.o)`, for messages and the symbol table's file symbols.
    pub fn member_name(&self, m: usize) -> String {
        format!(
            "{}({})",
            self.display_name,
            String::from_utf8_lossy(self.members[m].name)
        )
    }

    /// [`release`]s the members `used` says are not used: in runs of neighbours (one system
    /// call per run), or one by one for a thin archive.
    pub fn release_unused(&self, used: &[bool]) {
        if self.thin {
            for (member, _) in self.members.iter().zip(used).filter(|(_, &u)| !u) {
                release(member.data);
            }
            return;
        }
        let base = self.data.as_ptr() as usize;
        let range = |m: &ArchiveMember| {
            let start = m.data.as_ptr() as usize - base;
            (start, start + m.data.len())
        };
        let mut run: Option<(usize, usize)> = None;
        for (member, &u) in self.members.iter().zip(used) {
            if u {
                if let Some((s, e)) = run.take() {
                    release(&self.data[s..e]);
                }
            } else {
                let (start, end) = range(member);
                run = Some(match run {
                    Some((s, _)) if start >= s => (s, end),
                    Some((s, e)) => {
                        release(&self.data[s..e]);
                        (start, end)
                    }
                    None => (start, end),
                });
            }
        }
        if let Some((s, e)) = run {
            release(&self.data[s..e]);
        }
    }

    pub fn parse(path: &Path, data: &'static [u8]) -> Result<Archive> {
        let display_name = path.display().to_string();
        let archive = object::read::archive::ArchiveFile::parse(data)
            .map_err(|e| anyhow::anyhow!("bad archive: {e}"))?;
        let thin = archive.is_thin();
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut members = Vec::new();
        let mut by_offset = HashMap::default();
        for member in archive.members() {
            let member = member.map_err(|e| anyhow::anyhow!("bad archive member header: {e}"))?;
            let raw_name: &'static [u8] = member.name();
            let name = || String::from_utf8_lossy(raw_name);
            let (offset, _) = member.file_range();
            let member_data = if thin {
                let member_path = dir.join(&*name());
                map_file(&member_path)
                    .with_context(|| format!("thin archive member {} of {display_name}", name()))?
            } else {
                member
                    .data(data)
                    .map_err(|e| anyhow::anyhow!("bad archive member {}: {e}", name()))?
            };
            by_offset.insert(header_offset(offset, data), members.len() as u32);
            members.push(ArchiveMember {
                name: raw_name,
                data: member_data,
            });
        }
        let mut index = Vec::new();
        match archive
            .symbols()
            .map_err(|e| anyhow::anyhow!("bad archive symbol table: {e}"))?
        {
            Some(symbols) => {
                for symbol in symbols {
                    let symbol =
                        symbol.map_err(|e| anyhow::anyhow!("bad archive symbol table: {e}"))?;
                    let Some(&member) = by_offset.get(&symbol.offset().0) else {
                        bail!(
                            "archive symbol table names a member at offset {} that does not exist",
                            symbol.offset().0
                        );
                    };
                    let name = symbol.name();
                    index.push((name, member, crate::symbols::name_hash(name)));
                }
            }
            None => {
                // No index (an archive made without `s`): build one from the members, as lld
                // does, rather than refusing as GNU ld does.
                for (i, member) in members.iter().enumerate() {
                    if !member.data.starts_with(b"\x7fELF") {
                        continue;
                    }
                    let Ok(obj) = elf::ObjectFile::parse(member.data) else {
                        continue;
                    };
                    for sym_index in obj.first_global..obj.symbols.len() {
                        if obj.symbol_shndx(sym_index) == 0 {
                            continue;
                        }
                        if let Ok(name) = obj.symbol_name(sym_index) {
                            index.push((name, i as u32, crate::symbols::name_hash(name)));
                        }
                    }
                }
            }
        }
        Ok(Archive {
            display_name,
            members,
            index,
            data,
            thin,
        })
    }
}

/// The archive symbol table records the offset of a member's header; `file_range` gives the
/// offset of its data. Headers are 60 bytes, followed by the data (the BSD `#1/` long-name
/// form is not used on Linux).
fn header_offset(data_offset: u64, _data: &[u8]) -> u64 {
    data_offset.saturating_sub(60)
}

/// What identifies an input file's version without reading it: size, modification time,
/// inode and device (the state records it; an unchanged identity means unchanged bytes).
#[derive(
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
)]
pub struct FileIdentity {
    pub size: u64,
    pub mtime_ns: u64,
    pub inode: u64,
    pub device: u64,
}

impl FileIdentity {
    pub fn of(m: &std::fs::Metadata) -> FileIdentity {
        use std::os::unix::fs::MetadataExt;
        FileIdentity {
            size: m.size(),
            mtime_ns: (m.mtime() as u64)
                .wrapping_mul(1_000_000_000)
                .wrapping_add(m.mtime_nsec() as u64),
            inode: m.ino(),
            device: m.dev(),
        }
    }
}

/// The inputs of a recorded link, by identity (see `state::Prior::known_inputs`).
pub struct KnownInputs(rustc_hash::FxHashSet<FileIdentity>);

impl KnownInputs {
    pub fn new(identities: impl Iterator<Item = FileIdentity>) -> KnownInputs {
        KnownInputs(identities.collect())
    }

    /// The identity of the file at `path` if the recorded link had a file with that
    /// identity as an input, under this name or another (rustc names the objects of the
    /// codegen units it reuses anew, as hard links): then it is the binary that one was
    /// (an unchanged identity means unchanged bytes). One `stat`, where telling a binary
    /// from a script opens and reads the file.
    pub fn binary(&self, path: &Path) -> Option<FileIdentity> {
        let now = FileIdentity::of(&std::fs::metadata(path).ok()?);
        self.0.contains(&now).then_some(now)
    }
}

/// Whether `data` starts as LLVM bitcode does (raw, or in its wrapper).
pub fn is_bitcode(data: &[u8]) -> bool {
    data.starts_with(b"BC\xc0\xde") || data.starts_with(&[0xde, 0xc0, 0x17, 0x0b])
}
