//! Reading a shared object as a link input: its soname, its exported dynamic symbols with
//! their versions, and the symbols it leaves undefined.
//!
//! Only `.dynsym` matters for linking against a shared object; its sections and relocations
//! are never read. This module decides nothing about resolution.

use crate::input::elf::{read_str, Ehdr, Shdr, Sym, LE};
use anyhow::{bail, Context, Result};
use object::elf;
use object::read::elf::{FileHeader, SectionHeader};

const SHT_GNU_VERSYM: u32 = 0x6fff_ffff;
const SHT_GNU_VERDEF: u32 = 0x6fff_fffd;

#[derive(Clone, Debug)]
pub struct DsoSymbol {
    pub name: &'static [u8],
    pub value: u64,
    pub size: u64,
    pub st_info: u8,
    /// Index into `SharedObject::versions` (0 when unversioned).
    pub version: u16,
}

#[derive(Default)]
pub struct SharedObject {
    pub name: String,
    /// `DT_SONAME`, or the file name when there is none.
    pub soname: String,
    /// Defined symbols with their default version (hidden versions are not linkable by name).
    pub defined: Vec<DsoSymbol>,
    /// Names the object expects someone else to define.
    pub undefined: Vec<&'static [u8]>,
    /// Version names by version index (index 0 and 1 are the unversioned/base entries).
    pub versions: Vec<String>,
    /// Names defined only under a hidden (non-default) version: not linkable by name, but
    /// they do satisfy other shared objects' references.
    pub hidden_defined: Vec<&'static [u8]>,
    /// `DT_NEEDED` entries.
    pub needed: Vec<String>,
}

/// Reads a shared object; `needed_name` is its DT_NEEDED entry if it has no DT_SONAME.
pub fn parse(name: &str, needed_name: &str, data: &'static [u8]) -> Result<SharedObject> {
    let header = Ehdr::parse(data).context("bad ELF header")?;
    let sections = header
        .sections(LE, data)
        .context("bad section header table")?;
    let shdrs: &'static [Shdr] = sections.iter().as_slice();
    let find = |t: u32| shdrs.iter().find(|s| s.sh_type(LE) == t);
    let file_name = needed_name.to_string(); // DT_SONAME replaces it below if present
    let Some(dynsym) = find(elf::SHT_DYNSYM) else {
        return Ok(SharedObject {
            name: name.to_string(),
            soname: file_name,
            ..SharedObject::default()
        });
    };
    let symbols: &'static [Sym] = object::pod::slice_from_all_bytes(dynsym.data(LE, data)?)
        .map_err(|()| anyhow::anyhow!("bad .dynsym size"))?;
    let strtab = shdrs
        .get(dynsym.sh_link(LE) as usize)
        .context("bad .dynsym string table link")?
        .data(LE, data)
        .context("bad .dynstr")?;

    let mut soname = file_name;
    let mut needed = Vec::new();
    if let Some(dynamic) = find(elf::SHT_DYNAMIC) {
        let entries: &[object::elf::Dyn64<object::LittleEndian>] =
            object::pod::slice_from_all_bytes(dynamic.data(LE, data)?)
                .map_err(|()| anyhow::anyhow!("bad .dynamic size"))?;
        for d in entries {
            let tag = d.d_tag.get(LE);
            let string = || -> Result<String> {
                let s = read_str(strtab, d.d_val.get(LE) as u32).context("bad dynamic string")?;
                Ok(String::from_utf8_lossy(s).into_owned())
            };
            if tag == u64::from(elf::DT_SONAME) {
                soname = string()?;
            } else if tag == u64::from(elf::DT_NEEDED) {
                needed.push(string()?);
            }
        }
    }

    // Version definitions: index -> name.
    let mut versions = vec![String::new(), String::new()];
    if let Some(verdef) = find(SHT_GNU_VERDEF) {
        let bytes = verdef.data(LE, data)?;
        let vstr = shdrs
            .get(verdef.sh_link(LE) as usize)
            .context("bad version definition string table")?
            .data(LE, data)?;
        let mut off = 0usize;
        for _ in 0..verdef.sh_info(LE) {
            let Some(d) = bytes.get(off..off + 20) else {
                bail!("truncated version definition");
            };
            let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
            let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
            let index = u16_at(d, 4) as usize;
            let aux = u32_at(d, 12) as usize;
            let next = u32_at(d, 16) as usize;
            if let Some(a) = bytes.get(off + aux..off + aux + 8) {
                let name = read_str(vstr, u32_at(a, 0))?;
                if versions.len() <= index {
                    versions.resize(index + 1, String::new());
                }
                versions[index] = String::from_utf8_lossy(name).into_owned();
            }
            if next == 0 {
                break;
            }
            off += next;
        }
    }
    let versym: &[object::U16<object::LittleEndian>] = match find(SHT_GNU_VERSYM) {
        Some(s) => object::pod::slice_from_all_bytes(s.data(LE, data)?)
            .map_err(|()| anyhow::anyhow!("bad .gnu.version size"))?,
        None => &[],
    };

    let mut defined = Vec::new();
    let mut undefined = Vec::new();
    let mut hidden_defined = Vec::new();
    for (i, sym) in symbols.iter().enumerate().skip(1) {
        let bind = sym.st_bind();
        if bind == elf::STB_LOCAL {
            continue;
        }
        let sym_name = read_str(strtab, sym.st_name.get(LE)).context("bad dynamic symbol name")?;
        let shndx = sym.st_shndx.get(LE);
        if shndx == elf::SHN_UNDEF {
            if bind != elf::STB_WEAK {
                undefined.push(sym_name);
            }
            continue;
        }
        let v = versym.get(i).map_or(0, |v| v.get(LE));
        if v & 0x8000 != 0 {
            // A hidden (non-default) version: only `name@VER` references reach it.
            hidden_defined.push(sym_name);
            continue;
        }
        let version = v & 0x7fff;
        defined.push(DsoSymbol {
            name: sym_name,
            value: sym.st_value.get(LE),
            size: sym.st_size.get(LE),
            st_info: sym.st_info,
            version: if (version as usize) < versions.len() && version > 1 {
                version
            } else {
                0
            },
        });
    }
    Ok(SharedObject {
        name: name.to_string(),
        soname,
        defined,
        undefined,
        versions,
        hidden_defined,
        needed,
    })
}

/// Names defined by the shared objects `roots` depend on (their `DT_NEEDED` closure, found
/// as the dynamic linker would find them, plus `-rpath-link`/`-L`), for checking that an
/// executable's libraries have everything they need. Libraries that cannot be found are
/// returned by name: nothing can be said about symbols they might define.
pub fn dependency_names(
    roots: &[&SharedObject],
    search: &[std::path::PathBuf],
) -> (std::collections::HashSet<&'static [u8]>, Vec<String>) {
    let mut names = std::collections::HashSet::new();
    let mut missing = Vec::new();
    let mut seen: std::collections::HashSet<String> =
        roots.iter().map(|d| d.soname.clone()).collect();
    let mut queue: Vec<(String, Option<std::path::PathBuf>)> = Vec::new();
    for d in roots {
        let dir = std::path::Path::new(&d.name)
            .parent()
            .map(|p| p.to_path_buf());
        for n in &d.needed {
            queue.push((n.clone(), dir.clone()));
        }
        for s in d
            .defined
            .iter()
            .map(|s| s.name)
            .chain(d.hidden_defined.iter().copied())
        {
            names.insert(s);
        }
    }
    while let Some((needed, origin)) = queue.pop() {
        if !seen.insert(needed.clone()) {
            continue;
        }
        let found = search
            .iter()
            .cloned()
            .chain(origin.clone())
            .map(|dir| dir.join(&needed))
            .find(|p| p.is_file());
        let Some(path) = found else {
            missing.push(needed);
            continue;
        };
        let Ok(data) = crate::input::map_file(&path) else {
            missing.push(needed);
            continue;
        };
        let Ok(dso) = parse(&path.to_string_lossy(), &needed, data) else {
            missing.push(needed);
            continue;
        };
        for s in dso
            .defined
            .iter()
            .map(|s| s.name)
            .chain(dso.hidden_defined.iter().copied())
        {
            names.insert(s);
        }
        let dir = path.parent().map(|p| p.to_path_buf());
        for n in &dso.needed {
            queue.push((n.clone(), dir.clone()));
        }
    }
    (names, missing)
}
