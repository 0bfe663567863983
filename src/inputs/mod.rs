//! Phase 1: inputs. Finds, maps and classifies input files; splits archives into members.
//!
//! Nothing here decides which archive members are linked: `resolve` asks for members by
//! index. Mapped files live until the process exits (see [`map_file`]).

pub mod dso;
pub mod elf;
pub mod script;
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
    Ok(Box::leak(Box::new(map)))
}

/// One member of an archive.
pub struct ArchiveMember {
    /// `archive.a(member.o)`, for messages and the symbol table's file symbols.
    pub display_name: String,
    pub data: &'static [u8],
}

/// An archive: its members in order and its symbol index.
pub struct Archive {
    pub display_name: String,
    pub members: Vec<ArchiveMember>,
    /// Symbol name -> member index, in index order, with the name's `symbols::name_hash`.
    pub index: Vec<(&'static [u8], u32, u64)>,
}

impl Archive {
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
            let name = String::from_utf8_lossy(member.name()).into_owned();
            let (offset, _) = member.file_range();
            let member_data = if thin {
                let member_path = dir.join(&name);
                map_file(&member_path)
                    .with_context(|| format!("thin archive member {name} of {display_name}"))?
            } else {
                member
                    .data(data)
                    .map_err(|e| anyhow::anyhow!("bad archive member {name}: {e}"))?
            };
            by_offset.insert(header_offset(offset, data), members.len() as u32);
            members.push(ArchiveMember {
                display_name: format!("{display_name}({name})"),
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
        })
    }
}

/// The archive symbol table records the offset of a member's header; `file_range` gives the
/// offset of its data. Headers are 60 bytes, followed by the data (the BSD `#1/` long-name
/// form is not used on Linux).
fn header_offset(data_offset: u64, _data: &[u8]) -> u64 {
    data_offset.saturating_sub(60)
}
