//! Reading one ELF64 x86_64 relocatable object: headers, sections, symbols, relocations.
//!
//! Borrowing only: everything here points into the mapped file and is validated once, so
//! later phases index these tables without re-checking bounds. This module decides nothing
//! about the link (which sections are kept, where symbols resolve).

use anyhow::{bail, Context, Result};
use object::elf;
use object::read::elf::{FileHeader, SectionHeader, SectionTable};
use object::LittleEndian;

pub const LE: LittleEndian = LittleEndian;
pub type Sym = elf::Sym64<LittleEndian>;
pub type Rela = elf::Rela64<LittleEndian>;
pub type Shdr = elf::SectionHeader64<LittleEndian>;
pub type Ehdr = elf::FileHeader64<LittleEndian>;

/// `SHT_X86_64_UNWIND`: gcc's `.eh_frame` may carry this type.
pub const SHT_X86_64_UNWIND: u32 = 0x7000_0001;

/// What kind of ELF file a mapped file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfKind {
    Relocatable,
    Shared,
}

/// Checks class, data encoding, machine and type; the error names what is wrong.
pub fn classify(data: &[u8]) -> Result<ElfKind> {
    if data.len() < 64 {
        bail!(
            "file is truncated: {} bytes is smaller than an ELF header",
            data.len()
        );
    }
    if data[4] != elf::ELFCLASS64 {
        bail!("incompatible architecture: not a 64-bit ELF file (x86_64 expected)");
    }
    if data[5] != elf::ELFDATA2LSB {
        bail!("incompatible architecture: big-endian ELF file (x86_64 expected)");
    }
    let machine = u16::from_le_bytes([data[18], data[19]]);
    if machine != <crate::arch::Current as crate::arch::Arch>::E_MACHINE {
        bail!(
            "incompatible architecture: ELF machine {} ({}), x86_64 expected",
            machine,
            machine_name(machine)
        );
    }
    match u16::from_le_bytes([data[16], data[17]]) {
        elf::ET_REL => Ok(ElfKind::Relocatable),
        elf::ET_DYN => Ok(ElfKind::Shared),
        elf::ET_EXEC => bail!("cannot link an executable (ET_EXEC) as an input"),
        other => bail!("unsupported ELF file type {other}"),
    }
}

fn machine_name(machine: u16) -> &'static str {
    match machine {
        elf::EM_386 => "i386",
        elf::EM_AARCH64 => "aarch64",
        elf::EM_ARM => "arm",
        elf::EM_RISCV => "riscv",
        elf::EM_PPC64 => "ppc64",
        elf::EM_S390 => "s390",
        _ => "unknown",
    }
}

/// A parsed relocatable object. Indexes are ELF section and symbol indexes.
pub struct ObjectFile {
    pub data: &'static [u8],
    pub shdrs: &'static [Shdr],
    /// Section names (empty for SHT_RELA sections: nothing reads them).
    pub section_names: Vec<&'static [u8]>,
    /// Sections that are content by their header and name ([`content_by_header`]).
    pub by_header: Vec<bool>,
    /// Where each alloc section goes by its name ([`output_index`]; 0 for the
    /// others: they keep their own name).
    pub output_index: Vec<u8>,
    pub symbols: &'static [Sym],
    pub strtab: &'static [u8],
    /// Index of the first non-local symbol (`sh_info` of `.symtab`).
    pub first_global: usize,
    /// Relocations that apply to each section, by target section index.
    pub relocs: Vec<&'static [Rela]>,
    /// COMDAT groups: signature and member section indexes.
    pub comdat_groups: Vec<(&'static [u8], Vec<u32>)>,
    /// Section index of the SHT_SYMTAB_SHNDX table entries, if any.
    pub symtab_shndx: &'static [object::U32<LittleEndian>],
    /// Decompressed contents of SHF_COMPRESSED sections, by section index.
    pub decompressed: Vec<(usize, &'static [u8])>,
    /// Names of the non-local symbols (from `first_global`) with their
    /// `symbols::name_hash`, read at parse time so that resolution only probes.
    pub global_names: Vec<(&'static [u8], u64)>,
    /// Some non-local symbol has a versioned name (`name@@VERSION`, `name@VERSION`).
    pub versioned: bool,
    /// It holds LTO intermediate code (a `.gnu.lto_*` or `.llvm.lto` section).
    pub lto: bool,
    /// Its `.note.gnu.property` (empty without one): see [`crate::property`].
    pub properties: crate::property::Properties,
}

impl ObjectFile {
    /// Parses and validates an object, in steps: the ELF header and the section header
    /// table; one pass over the sections (`Found::read`: names, checks, tables by type);
    /// the COMDAT groups; the compressed sections; the non-local symbols' names. The first
    /// problem found is the error.
    pub fn parse(data: &'static [u8]) -> Result<ObjectFile> {
        let header = Ehdr::parse(data).context("bad ELF header")?;
        let sections = header
            .sections(LE, data)
            .context("bad section header table")?;
        let shdrs: &'static [Shdr] = sections.iter().as_slice();
        let found = Found::read(&sections, data)?;
        let comdat_groups = found.comdat_groups(shdrs, data)?;
        let decompressed = found.decompress(shdrs, data)?;
        let (global_names, versioned) = found.global_names()?;
        Ok(ObjectFile {
            by_header: found.by_header,
            output_index: found.output_index,
            global_names,
            versioned,
            lto: found.lto,
            properties: found.properties,
            decompressed,
            data,
            shdrs,
            section_names: found.section_names,
            symbols: found.symbols,
            strtab: found.strtab,
            first_global: found.first_global,
            relocs: found.relocs,
            comdat_groups,
            symtab_shndx: found.symtab_shndx,
        })
    }

    /// A section's size in memory (decompressed size for SHF_COMPRESSED sections).
    pub fn section_size(&self, index: usize) -> u64 {
        match self.decompressed.iter().find(|(i, _)| *i == index) {
            Some(&(_, bytes)) => bytes.len() as u64,
            None => self.shdrs[index].sh_size(LE),
        }
    }

    pub fn symbol_name(&self, index: usize) -> Result<&'static [u8]> {
        let Some(sym) = self.symbols.get(index) else {
            bail!("symbol index {index} is out of range");
        };
        read_str(self.strtab, sym.st_name.get(LE))
    }

    /// The section index a symbol is defined in, with SHN_XINDEX resolved; SHN_UNDEF for a
    /// symbol index past the table (a corrupt relocation's: the callers' checks report it).
    pub fn symbol_shndx(&self, index: usize) -> u32 {
        let Some(sym) = self.symbols.get(index) else {
            return u32::from(elf::SHN_UNDEF);
        };
        let shndx = sym.st_shndx.get(LE);
        if shndx == elf::SHN_XINDEX {
            self.symtab_shndx.get(index).map_or(0, |v| v.get(LE))
        } else {
            u32::from(shndx)
        }
    }

    pub fn section_data(&self, index: usize) -> &'static [u8] {
        let shdr = &self.shdrs[index];
        if shdr.sh_type(LE) == elf::SHT_NOBITS {
            return &[];
        }
        if let Some(&(_, bytes)) = self.decompressed.iter().find(|(i, _)| *i == index) {
            return bytes;
        }
        // Checked in `parse`.
        shdr.data(LE, self.data).unwrap_or(&[])
    }
}

/// `ObjectFile::global_names`.
type GlobalNames = Vec<(&'static [u8], u64)>;

/// What [`ObjectFile::parse`]'s one pass over the section headers finds: each section's
/// name and what its header and name say, and the tables found by type.
struct Found {
    section_names: Vec<&'static [u8]>,
    by_header: Vec<bool>,
    output_index: Vec<u8>,
    symbols: &'static [Sym],
    strtab: &'static [u8],
    first_global: usize,
    symtab_shndx: &'static [object::U32<LittleEndian>],
    relocs: Vec<&'static [Rela]>,
    symtab_index: Option<usize>,
    /// SHF_COMPRESSED sections, decompressed after the pass.
    compressed: Vec<usize>,
    /// SHT_GROUP sections, read after the pass (they need the symbol table).
    groups: Vec<usize>,
    lto: bool,
    properties: crate::property::Properties,
}

impl Found {
    /// The pass: names, checks, and the tables found by type.
    fn read(sections: &SectionTable<'static, Ehdr>, data: &'static [u8]) -> Result<Found> {
        let shdrs: &'static [Shdr] = sections.iter().as_slice();
        let mut found = Found {
            section_names: Vec::with_capacity(shdrs.len()),
            by_header: Vec::with_capacity(shdrs.len()),
            output_index: Vec::with_capacity(shdrs.len()),
            symbols: &[],
            strtab: &[],
            first_global: 0,
            symtab_shndx: &[],
            relocs: vec![&[]; shdrs.len()],
            symtab_index: None,
            compressed: Vec::new(),
            groups: Vec::new(),
            lto: false,
            properties: Vec::new(),
        };
        for (i, shdr) in shdrs.iter().enumerate() {
            // Relocation sections are found by type and target; their names (half of a Rust
            // object's section names) are not read.
            let name = if shdr.sh_type(LE) == elf::SHT_RELA {
                &[]
            } else {
                sections
                    .section_name(LE, shdr)
                    .context("bad section name")?
            };
            found.section_names.push(name);
            found.by_header.push(content_by_header(shdr, name));
            found
                .output_index
                .push(if shdr.sh_flags(LE) & u64::from(elf::SHF_ALLOC) != 0 {
                    output_index(name)
                } else {
                    0
                });
            // Checked here, where the name is in cache (the serial resolution loop paid a
            // miss per section for it).
            found.lto |= name.starts_with(b".gnu.lto_") || name.starts_with(b".llvm.lto");
            if !check_section(i, shdr, name, data)? {
                continue;
            }
            if shdr.sh_flags(LE) & u64::from(elf::SHF_COMPRESSED) != 0 {
                found.compressed.push(i);
            }
            found.table(i, shdr, name, shdrs, data)?;
        }
        Ok(found)
    }

    /// Notes section `i` if its type makes it a table: the symbol table (with its string
    /// table), relocations (RELA or CREL, by target section), a group, the property note,
    /// the extended section indexes.
    fn table(
        &mut self,
        i: usize,
        shdr: &Shdr,
        name: &[u8],
        shdrs: &'static [Shdr],
        data: &'static [u8],
    ) -> Result<()> {
        match shdr.sh_type(LE) {
            elf::SHT_SYMTAB => {
                self.symbols = object::pod::slice_from_all_bytes(shdr.data(LE, data)?)
                    .map_err(|()| anyhow::anyhow!("bad symbol table size"))?;
                let link = shdr.sh_link(LE) as usize;
                let Some(strtab_shdr) = shdrs.get(link) else {
                    bail!("symbol table's string table {link} does not exist");
                };
                self.strtab = strtab_shdr
                    .data(LE, data)
                    .context("bad symbol string table")?;
                self.first_global = shdr.sh_info(LE) as usize;
                if self.first_global > self.symbols.len() {
                    bail!("symbol table's first global index is out of range");
                }
                self.symtab_index = Some(i);
            }
            elf::SHT_RELA => {
                let target = relocation_target(i, shdr, shdrs)?;
                let (rela, _) = shdr
                    .rela(LE, data)
                    .context("bad relocation section")?
                    .context("bad relocation section")?;
                self.relocs[target] = rela;
            }
            elf::SHT_REL => bail!("SHT_REL relocation sections are not used on x86_64"),
            SHT_CREL => {
                let target = relocation_target(i, shdr, shdrs)?;
                let decoded = decode_crel(shdr.data(LE, data)?)
                    .with_context(|| format!("bad CREL relocation section {i}"))?;
                self.relocs[target] = Box::leak(decoded.into_boxed_slice());
            }
            elf::SHT_GROUP => self.groups.push(i),
            elf::SHT_NOTE if name == b".note.gnu.property" => {
                self.properties = crate::property::parse(shdr.data(LE, data)?)
                    .context("bad .note.gnu.property section")?;
            }
            elf::SHT_SYMTAB_SHNDX => {
                let bytes = shdr.data(LE, data)?;
                self.symtab_shndx = object::pod::slice_from_all_bytes(bytes)
                    .map_err(|()| anyhow::anyhow!("bad SHT_SYMTAB_SHNDX section"))?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The COMDAT groups among the SHT_GROUP sections: signature and member sections. (None
    /// without a symbol table.)
    fn comdat_groups(
        &self,
        shdrs: &'static [Shdr],
        data: &'static [u8],
    ) -> Result<Vec<(&'static [u8], Vec<u32>)>> {
        let mut comdat_groups = Vec::new();
        let Some(symtab_index) = self.symtab_index else {
            return Ok(comdat_groups);
        };
        for &i in &self.groups {
            let shdr = &shdrs[i];
            if shdr.sh_link(LE) as usize != symtab_index {
                bail!("group section {i} does not use the symbol table");
            }
            let words: &[object::U32<LittleEndian>] =
                object::pod::slice_from_all_bytes(shdr.data(LE, data)?)
                    .map_err(|()| anyhow::anyhow!("bad group section {i}"))?;
            let Some((flags, members)) = words.split_first() else {
                continue;
            };
            if flags.get(LE) & elf::GRP_COMDAT == 0 {
                continue;
            }
            let sig_index = shdr.sh_info(LE) as usize;
            let Some(sig_sym) = self.symbols.get(sig_index) else {
                bail!("group section {i} names symbol {sig_index}, which does not exist");
            };
            let name = read_str(self.strtab, sig_sym.st_name.get(LE))
                .with_context(|| format!("bad group signature in section {i}"))?;
            let mut member_indexes = Vec::with_capacity(members.len());
            for m in members {
                let m = m.get(LE);
                if m as usize >= shdrs.len() {
                    bail!("group section {i} names section {m}, which does not exist");
                }
                member_indexes.push(m);
            }
            comdat_groups.push((name, member_indexes));
        }
        Ok(comdat_groups)
    }

    /// The contents of the SHF_COMPRESSED sections, by section index.
    fn decompress(
        &self,
        shdrs: &'static [Shdr],
        data: &'static [u8],
    ) -> Result<Vec<(usize, &'static [u8])>> {
        let mut decompressed = Vec::new();
        for &i in &self.compressed {
            let shdr = &shdrs[i];
            let bytes = decompress(shdr.data(LE, data)?).with_context(|| {
                format!(
                    "cannot decompress section {}",
                    String::from_utf8_lossy(self.section_names[i])
                )
            })?;
            decompressed.push((i, &*Box::leak(bytes.into_boxed_slice())));
        }
        Ok(decompressed)
    }

    /// The names of the non-local symbols with their hashes, and whether one is versioned.
    fn global_names(&self) -> Result<(GlobalNames, bool)> {
        let symbols = self.symbols;
        let mut global_names = Vec::with_capacity(symbols.len().saturating_sub(self.first_global));
        let mut versioned = false;
        for sym in symbols.iter().skip(self.first_global) {
            let (name, at_sign) =
                read_str_noting_at(self.strtab, sym.st_name.get(LE)).context("bad symbol name")?;
            global_names.push((name, crate::symbols::name_hash(name)));
            versioned |= at_sign;
        }
        Ok((global_names, versioned))
    }
}

/// Checks section `i`'s data range once, so later phases can slice without checks;
/// alignments and sizes are bounded so that layout arithmetic cannot overflow. Whether the
/// section has data in the file (not SHT_NOBITS).
fn check_section(i: usize, shdr: &Shdr, name: &[u8], data: &'static [u8]) -> Result<bool> {
    let name = || String::from_utf8_lossy(name).into_owned();
    let align = shdr.sh_addralign(LE);
    if align > 1 << 30 || (align != 0 && !align.is_power_of_two()) {
        bail!(
            "section {i} ({}) has an invalid alignment {align:#x}",
            name()
        );
    }
    if shdr.sh_size(LE) > 1 << 40 {
        bail!(
            "section {i} ({}) has an impossible size {:#x}",
            name(),
            shdr.sh_size(LE)
        );
    }
    if shdr.sh_type(LE) == elf::SHT_NOBITS {
        return Ok(false);
    }
    shdr.data(LE, data)
        .with_context(|| format!("section {i} ({}) extends past the end of the file", name()))?;
    Ok(true)
}

/// The section a relocation section `i` applies to (`sh_info`), checked to exist.
fn relocation_target(i: usize, shdr: &Shdr, shdrs: &[Shdr]) -> Result<usize> {
    let target = shdr.sh_info(LE) as usize;
    if target >= shdrs.len() {
        bail!("relocation section {i} applies to a section that does not exist");
    }
    Ok(target)
}

pub fn read_str(table: &'static [u8], offset: u32) -> Result<&'static [u8]> {
    let Some(rest) = table.get(offset as usize..) else {
        bail!("string offset {offset} is outside the string table");
    };
    let Some(end) = memchr::memchr(0, rest) else {
        bail!("string at offset {offset} is not terminated");
    };
    Ok(&rest[..end])
}

/// Whether a section is content by its header and name: not a table the linker consumes
/// (symbols, strings, relocations, groups, LLVM's address-significance table), not
/// `SHF_EXCLUDE`, not a GNU note the linker makes or drops, not a `.gnu.warning` section.
/// Checked while parsing, where the header and the name are in cache.
fn content_by_header(shdr: &Shdr, name: &[u8]) -> bool {
    let sh_type = shdr.sh_type(LE);
    let flags = shdr.sh_flags(LE);
    match sh_type {
        elf::SHT_NULL
        | elf::SHT_SYMTAB
        | elf::SHT_RELA
        | elf::SHT_REL
        | elf::SHT_GROUP
        | elf::SHT_SYMTAB_SHNDX
        | SHT_CREL => return false,
        elf::SHT_STRTAB if flags & u64::from(elf::SHF_ALLOC) == 0 => return false,
        0x6fff_4c03 /* SHT_LLVM_ADDRSIG */ => return false,
        _ => {}
    }
    // (LTO intermediate code is the plugin's, never output: GNU ld's default script
    // discards `.gnu.lto_*`.)
    flags & u64::from(elf::SHF_EXCLUDE) == 0
        && !name.starts_with(b".gnu.lto_")
        && !name.starts_with(b".llvm.lto")
        && name != b".note.GNU-stack"
        && name != b".note.gnu.property"
        && !name.starts_with(b".gnu.warning")
}

/// `SHT_CREL`: compact relocations (LLVM 19's `-Wa,--crel`, binutils 2.45's `as --crel`),
/// a type code from the generic range the proposal uses until one is assigned.
pub const SHT_CREL: u32 = 0x4000_0014;

/// Decodes a CREL section into RELA entries. The format (the CREL proposal, as LLVM's
/// `decodeCrel` reads it): a ULEB128 header `count * 8 | explicit_addends << 2 | shift`,
/// then per relocation a byte whose low 2 bits (3 with addends) are flags and the rest
/// the start of the offset delta (continued as ULEB128 if the byte's top bit is set),
/// then SLEB128 deltas of the symbol index, type and addend where the flags say so.
pub fn decode_crel(mut bytes: &[u8]) -> Result<Vec<Rela>> {
    fn uleb(bytes: &mut &[u8]) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some((&b, rest)) = bytes.split_first() else {
                bail!("truncated ULEB128");
            };
            *bytes = rest;
            value |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(value);
            }
        }
        bail!("ULEB128 too long")
    }
    fn sleb(bytes: &mut &[u8]) -> Result<i64> {
        let mut value = 0i64;
        let mut shift = 0;
        loop {
            let Some((&b, rest)) = bytes.split_first() else {
                bail!("truncated SLEB128");
            };
            *bytes = rest;
            if shift >= 64 {
                bail!("SLEB128 too long");
            }
            value |= i64::from(b & 0x7f) << shift;
            shift += 7;
            if b < 0x80 {
                if shift < 64 && b & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                return Ok(value);
            }
        }
    }
    let header = uleb(&mut bytes)?;
    let count = header / 8;
    let addends = header & 4 != 0;
    if !addends {
        bail!("CREL without explicit addends (x86-64 relocations carry them)");
    }
    let flag_bits = 3;
    let shift = header & 3;
    // Each entry takes a byte at least: a count past the data is corrupt.
    if count > bytes.len() as u64 {
        bail!("{count} relocations in {} bytes", bytes.len());
    }
    let (mut offset, mut symbol, mut r_type, mut addend) = (0u64, 0i64, 0i64, 0i64);
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let Some((&b, rest)) = bytes.split_first() else {
            bail!("truncated relocation");
        };
        bytes = rest;
        offset = offset.wrapping_add(u64::from(b >> flag_bits));
        if b >= 0x80 {
            let more = uleb(&mut bytes)?;
            offset = offset
                .wrapping_add(more << (7 - flag_bits))
                .wrapping_sub(0x80 >> flag_bits);
        }
        if b & 1 != 0 {
            symbol = symbol.wrapping_add(sleb(&mut bytes)?);
        }
        if b & 2 != 0 {
            r_type = r_type.wrapping_add(sleb(&mut bytes)?);
        }
        if b & 4 != 0 {
            addend = addend.wrapping_add(sleb(&mut bytes)?);
        }
        let (Ok(sym), Ok(ty)) = (u32::try_from(symbol), u32::try_from(r_type)) else {
            bail!("relocation with symbol {symbol} or type {r_type} out of range");
        };
        out.push(Rela {
            r_offset: object::U64::new(LE, offset << shift),
            r_info: object::U64::new(LE, (u64::from(sym) << 32) | u64::from(ty)),
            r_addend: object::I64::new(LE, addend),
        });
    }
    Ok(out)
}

/// [`read_str`], and whether the string has an `@` (a versioned symbol name), in one pass.
fn read_str_noting_at(table: &'static [u8], offset: u32) -> Result<(&'static [u8], bool)> {
    let Some(rest) = table.get(offset as usize..) else {
        bail!("string offset {offset} is outside the string table");
    };
    match memchr::memchr2(0, b'@', rest) {
        Some(end) if rest[end] == 0 => Ok((&rest[..end], false)),
        Some(at) => match memchr::memchr(0, &rest[at..]) {
            Some(end) => Ok((&rest[..at + end], true)),
            None => bail!("string at offset {offset} is not terminated"),
        },
        None => bail!("string at offset {offset} is not terminated"),
    }
}

/// `ELFCOMPRESS_ZLIB` / `ELFCOMPRESS_ZSTD` section contents: an `Elf64_Chdr` then the stream.
pub fn decompress(data: &[u8]) -> Result<Vec<u8>> {
    if data.len() < 24 {
        bail!("compressed section is shorter than its header");
    }
    let ch_type = u32::from_le_bytes(data[0..4].try_into().unwrap());
    let size = u64::from_le_bytes(data[8..16].try_into().unwrap());
    if size > 1 << 34 {
        bail!("compressed section claims {size} bytes");
    }
    let stream = &data[24..];
    let out = match ch_type {
        elf::ELFCOMPRESS_ZLIB => {
            use std::io::Read;
            let mut out = Vec::with_capacity(size as usize);
            flate2::read::ZlibDecoder::new(stream)
                .read_to_end(&mut out)
                .context("bad zlib stream")?;
            out
        }
        elf::ELFCOMPRESS_ZSTD => {
            zstd::bulk::decompress(stream, size as usize).context("bad zstd stream")?
        }
        other => bail!("unknown compression type {other}"),
    };
    if out.len() as u64 != size {
        bail!("decompressed to {} bytes, header says {size}", out.len());
    }
    Ok(out)
}

/// Compresses `data` as a SHF_COMPRESSED section body (header + stream).
pub fn compress(data: &[u8], zstd: bool, align: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 3 + 24);
    let ch_type = if zstd {
        elf::ELFCOMPRESS_ZSTD
    } else {
        elf::ELFCOMPRESS_ZLIB
    };
    out.extend_from_slice(&ch_type.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(&align.to_le_bytes());
    if zstd {
        out.extend_from_slice(&zstd::bulk::compress(data, 1).unwrap_or_default());
    } else {
        use std::io::Write;
        let mut enc = flate2::write::ZlibEncoder::new(out, flate2::Compression::fast());
        let _ = enc.write_all(data);
        out = enc.finish().unwrap_or_default();
    }
    out
}

fn name_matches(name: &[u8], prefix: &str) -> bool {
    name == prefix.as_bytes()
        || (name.len() > prefix.len()
            && name.starts_with(prefix.as_bytes())
            && name[prefix.len()] == b'.')
}

/// Where GNU ld's default script sends alloc input sections by name: (prefix, output
/// section). A section named `prefix` or `prefix.anything` goes to the output section.
pub(crate) const OUTPUT_NAMES: &[(&str, &str)] = &[
    (".text", ".text"),
    (".rodata", ".rodata"),
    (".data.rel.ro", ".data.rel.ro"),
    (".data", ".data"),
    (".bss", ".bss"),
    (".tdata", ".tdata"),
    (".tbss", ".tbss"),
    (".init_array", ".init_array"),
    (".fini_array", ".fini_array"),
    (".preinit_array", ".preinit_array"),
    (".gcc_except_table", ".gcc_except_table"),
    (".gnu.linkonce.t", ".text"),
    (".gnu.linkonce.r", ".rodata"),
    (".gnu.linkonce.d", ".data"),
    (".gnu.linkonce.b", ".bss"),
    (".ldata", ".ldata"),
    (".lrodata", ".lrodata"),
    (".lbss", ".lbss"),
];

/// For an alloc input section's name: 1 + the index of its entry in [`OUTPUT_NAMES`], or
/// 0 if it keeps its own name. (Found while parsing: `ObjectFile::output_index`.)
pub(crate) fn output_index(name: &[u8]) -> u8 {
    OUTPUT_NAMES
        .iter()
        .position(|(prefix, _)| name_matches(name, prefix))
        .map_or(0, |i| i as u8 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crel_decodes_and_rejects_corruption() {
        // One relocation with addends, offset 11, symbol 2, type 4 (PLT32), addend -4.
        let one = decode_crel(&[0x0c, 0x5f, 0x02, 0x04, 0x7c]).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].r_offset.get(LE), 11);
        assert_eq!(one[0].r_info.get(LE), (2 << 32) | 4);
        assert_eq!(one[0].r_addend.get(LE), -4);
        // Without addends; a truncated offset; a count past the data.
        for bad in [&[0x08, 0x00][..], &[0x0c, 0x80][..], &[0x0c][..]] {
            assert!(decode_crel(bad).is_err(), "{bad:?} decoded");
        }
    }
}
