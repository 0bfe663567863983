//! `-r`: a relocatable object made of the inputs, for a later link (`ld -r -o all.o a.o b.o`).
//!
//! Sections with the same name, type and flags are concatenated; members of COMDAT groups
//! stay separate sections and their groups are written again, so that a later link can
//! still keep one copy. Symbols keep their binding (commons stay common), relocations are
//! rewritten against the output's sections and symbols. `.eh_frame` records of discarded
//! COMDAT functions are dropped. Nothing is resolved to an address here.

use crate::args::Config;
use crate::context::is_eh_frame;
use crate::eh_frame::{self, Record};
use crate::input::elf::{Rela, Shdr, LE};
use crate::layout::is_content;
use crate::resolve::{LoadedObject, Resolution};
use crate::symbols::{Def, Symbol};
use anyhow::{bail, Result};
use object::elf;
use rustc_hash::FxHashMap as HashMap;

struct OutSection {
    name: Vec<u8>,
    sh_type: u32,
    flags: u64,
    align: u64,
    entsize: u64,
    data: Vec<u8>,
    relocs: Vec<(u64, u32, u32, i64)>, // offset, type, output symbol, addend
    nobits_size: u64,
}

impl OutSection {
    /// An empty output section, aligned to 1 until something is placed in it.
    fn new(name: &[u8], sh_type: u32, flags: u64, entsize: u64) -> OutSection {
        OutSection {
            name: name.to_vec(),
            sh_type,
            flags,
            align: 1,
            entsize,
            data: Vec::new(),
            relocs: Vec::new(),
            nobits_size: 0,
        }
    }
}

struct Group {
    /// (file, symbol index) of the signature.
    signature: (usize, usize),
    /// The input SHT_GROUP section (gcc may define the signature as a local symbol in it).
    input_section: usize,
    members: Vec<usize>,
}

/// Where each of a file's input sections went: (output section, offset), `None` for those
/// not in the output.
type Placement = Vec<Option<(usize, u64)>>;

/// A symbol table entry but its name: (info, other, section index, value, size).
type Entry = (u8, u8, u16, u64, u64);

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes);
}

pub fn link_relocatable(config: &Config, res: &Resolution) -> Result<Vec<u8>> {
    let mut sections = Sections::place(config, res)?;
    sections.add_notes(config, res)?;
    let symbols = SymbolTable::new(res, &sections);
    sections.add_relocations(res, &symbols)?;
    // Layout of the file: header, section data, then tables and headers.
    let mut file = File::new(&sections);
    file.write_groups(res, &sections, &symbols);
    file.write_contents(&sections);
    file.write_relas(&sections);
    file.write_tables(&symbols);
    file.finish(res)
}

/// The output's sections and where the inputs' sections went in them.
struct Sections {
    /// The content sections, in order.
    out: Vec<OutSection>,
    /// The content section of each (name, type, flags) outside COMDAT groups.
    by_key: HashMap<(Vec<u8>, u32, u64), usize>,
    /// (out section, offset) per input section, by file.
    placement: Vec<Placement>,
    /// The records of each input `.eh_frame`, by (file, section), with where the kept ones
    /// went.
    eh: HashMap<(usize, usize), Vec<Record>>,
    /// The COMDAT groups written again, in order.
    groups: Vec<Group>,
}

impl Sections {
    /// Places the inputs' sections with contents, in input order: each appended (aligned) to
    /// the output section of its name, type and flags, or, a member of a kept COMDAT group,
    /// to a section of its own.
    fn place(config: &Config, res: &Resolution) -> Result<Sections> {
        let mut sections = Sections {
            out: Vec::new(),
            by_key: HashMap::default(),
            placement: Vec::new(),
            eh: HashMap::default(),
            groups: Vec::new(),
        };
        for (f, object) in res.objects.iter().enumerate() {
            let in_group = sections.add_groups(f, object);
            let mut places = vec![None; object.obj.shdrs.len()];
            for (s, place) in places.iter_mut().enumerate() {
                if !is_content(object, s, config) {
                    continue;
                }
                let group = in_group.get(&s).copied();
                *place = Some(sections.place_section(config, f, object, s, group)?);
            }
            sections.placement.push(places);
        }
        Ok(sections)
    }

    /// Adds the COMDAT groups of file `f` that are kept (no member discarded), and returns
    /// the group of each of their members (by input section).
    fn add_groups(&mut self, f: usize, object: &LoadedObject) -> HashMap<usize, usize> {
        let obj = &object.obj;
        let mut in_group: HashMap<usize, usize> = HashMap::default();
        for (group_index, (_, members)) in obj.comdat_groups.iter().enumerate() {
            if members.iter().any(|&m| object.comdat_discarded[m as usize]) {
                continue;
            }
            let shdr = obj
                .shdrs
                .iter()
                .enumerate()
                .filter(|(_, s)| s.sh_type.get(LE) == elf::SHT_GROUP)
                .nth(group_index);
            let Some((group_sec, group_shdr)) = shdr else {
                continue;
            };
            self.groups.push(Group {
                signature: (f, group_shdr.sh_info.get(LE) as usize),
                input_section: group_sec,
                members: Vec::new(),
            });
            for &m in members {
                in_group.insert(m as usize, self.groups.len() - 1);
            }
        }
        in_group
    }

    /// Appends input section `s` of file `f` (a member of group `group`, if any) to its
    /// output section, and returns (output section, offset). Of an `.eh_frame`, only the
    /// records kept are copied.
    fn place_section(
        &mut self,
        config: &Config,
        f: usize,
        object: &LoadedObject,
        s: usize,
        group: Option<usize>,
    ) -> Result<(usize, u64)> {
        let obj = &object.obj;
        let shdr = &obj.shdrs[s];
        let out = self.output_section(obj.section_names[s], shdr, group);
        let os = &mut self.out[out];
        let align = shdr.sh_addralign.get(LE).max(1);
        os.align = os.align.max(align);
        if shdr.sh_type.get(LE) == elf::SHT_NOBITS {
            os.nobits_size = os.nobits_size.next_multiple_of(align);
            let at = os.nobits_size;
            os.nobits_size += obj.section_size(s);
            return Ok((out, at));
        }
        let at = os.data.len().next_multiple_of(if is_eh_frame(object, s) {
            4
        } else {
            align as usize
        });
        os.data.resize(at, 0);
        if is_eh_frame(object, s) {
            let records = copy_eh_frame(config, object, s, &mut os.data)?;
            self.eh.insert((f, s), records);
        } else {
            os.data.extend_from_slice(obj.section_data(s));
        }
        Ok((out, at as u64))
    }

    /// The output section of an input section named `name` with header `shdr`: a new one
    /// for a member of group `group`, else the one of its name, type and flags.
    fn output_section(&mut self, name: &[u8], shdr: &Shdr, group: Option<usize>) -> usize {
        let sh_type = shdr.sh_type.get(LE);
        let flags = shdr.sh_flags.get(LE) & !u64::from(elf::SHF_GROUP);
        let entsize = shdr.sh_entsize.get(LE);
        match group {
            Some(g) => {
                let flags = flags | u64::from(elf::SHF_GROUP);
                self.out
                    .push(OutSection::new(name, sh_type, flags, entsize));
                self.groups[g].members.push(self.out.len() - 1);
                self.out.len() - 1
            }
            None => *self
                .by_key
                .entry((name.to_vec(), sh_type, flags))
                .or_insert_with(|| {
                    self.out
                        .push(OutSection::new(name, sh_type, flags, entsize));
                    self.out.len() - 1
                }),
        }
    }

    /// Adds `.note.gnu.property` (if there are properties) and `.note.GNU-stack`.
    fn add_notes(&mut self, config: &Config, res: &Resolution) -> Result<()> {
        // The objects' properties, merged as in a final link, for the next link to merge again.
        let properties = crate::layout::output_properties(config, res, true)?;
        if !properties.is_empty() {
            self.out.push(OutSection {
                align: 8,
                data: crate::property::encode(&properties),
                ..OutSection::new(
                    b".note.gnu.property",
                    elf::SHT_NOTE,
                    u64::from(elf::SHF_ALLOC),
                    0,
                )
            });
        }

        // The stack stays non-executable for the next link (an absent note would mean the opposite).
        let flags = if crate::layout::executable_stack(config, res, false) {
            u64::from(elf::SHF_EXECINSTR)
        } else {
            0
        };
        self.out.push(OutSection::new(
            b".note.GNU-stack",
            elf::SHT_PROGBITS,
            flags,
            0,
        ));
        Ok(())
    }

    /// The section header index of content section `out`. Output section header indexes:
    /// null, groups, content sections.
    fn shndx(&self, out: usize) -> u16 {
        (1 + self.groups.len() + out) as u16
    }

    /// The section index and value in the output of local symbol `i` of file `f`; `None`
    /// when it is in a discarded section.
    fn local_symbol(&self, f: usize, object: &LoadedObject, i: usize) -> Option<(u16, u64)> {
        let obj = &object.obj;
        let sym = &obj.symbols[i];
        let shndx = obj.symbol_shndx(i);
        let group = self
            .groups
            .iter()
            .position(|g| g.signature.0 == f && g.input_section == shndx as usize);
        Some(match shndx {
            0 => (elf::SHN_UNDEF, 0),
            _ if group.is_some() => ((1 + group.unwrap_or(0)) as u16, 0),
            s if s == u32::from(elf::SHN_ABS) => (elf::SHN_ABS, sym.st_value.get(LE)),
            s => {
                let (out, off) = self.placement[f].get(s as usize).copied().flatten()?;
                let v = sym.st_value.get(LE);
                let v = match self.eh.get(&(f, s as usize)) {
                    Some(records) => match eh_frame::record_at(records, v) {
                        Some(r) => r
                            .out_offset
                            .map_or(0, |o| u64::from(o) + v - u64::from(r.in_offset)),
                        None => 0,
                    },
                    None => v,
                };
                (self.shndx(out), off + v)
            }
        })
    }

    /// The entry of global symbol `symbol`: where it is defined in the output, common, or
    /// undefined (weak if no reference to it is strong).
    fn global_symbol(&self, res: &Resolution, symbol: &Symbol) -> Entry {
        match symbol.def {
            Def::Defined { file, sym, .. } => {
                let obj = &res.objects[file.0 as usize].obj;
                let st = &obj.symbols[sym as usize];
                let s = obj.symbol_shndx(sym as usize);
                let (shndx, value) = if s == u32::from(elf::SHN_ABS) {
                    (elf::SHN_ABS, st.st_value.get(LE))
                } else {
                    match self.placement[file.0 as usize]
                        .get(s as usize)
                        .copied()
                        .flatten()
                    {
                        Some((out, off)) => (self.shndx(out), off + st.st_value.get(LE)),
                        None => (elf::SHN_UNDEF, 0),
                    }
                };
                (st.st_info, st.st_other, shndx, value, st.st_size.get(LE))
            }
            Def::Common {
                file,
                sym,
                size,
                align,
            } => {
                let st = &res.objects[file.0 as usize].obj.symbols[sym as usize];
                (st.st_info, st.st_other, elf::SHN_COMMON, align, size)
            }
            Def::Undefined | Def::Synthetic | Def::Shared { .. } => {
                let bind = if symbol.strong_ref {
                    elf::STB_GLOBAL
                } else {
                    elf::STB_WEAK
                };
                (bind << 4, symbol.visibility, elf::SHN_UNDEF, 0, 0)
            }
        }
    }

    /// Adds the relocations of the placed input sections to their output sections, rewritten
    /// against the output's sections and `symbols`. Those of dropped `.eh_frame` records are
    /// left out; those against a discarded section become NONE ones.
    fn add_relocations(&mut self, res: &Resolution, symbols: &SymbolTable) -> Result<()> {
        for (f, object) in res.objects.iter().enumerate() {
            let obj = &object.obj;
            for (s, relocs) in obj.relocs.iter().enumerate() {
                let Some((out, base)) = self.placement[f].get(s).copied().flatten() else {
                    continue;
                };
                let records = self.eh.get(&(f, s)).map(Vec::as_slice);
                for r in relocs.iter() {
                    check_relocation(object, s, r)?;
                    let Some(offset) = placed_offset(records, r.r_offset.get(LE)) else {
                        continue;
                    };
                    let (sym, addend) = rewrite_symbol(res, f, r, &self.placement, symbols);
                    let r_type = if sym.is_none() {
                        <crate::arch::Current as crate::arch::Arch>::NONE
                    } else {
                        r.r_type(LE, false)
                    };
                    self.out[out]
                        .relocs
                        .push((base + offset, r_type, sym.unwrap_or(0), addend));
                }
            }
        }
        Ok(())
    }
}

/// Copies the records of input `.eh_frame` section `s` that are kept to `data` (the end of
/// its output section), with their CIE pointers rewritten, and returns them all with their
/// output offsets.
fn copy_eh_frame(
    config: &Config,
    object: &LoadedObject,
    s: usize,
    data: &mut Vec<u8>,
) -> Result<Vec<Record>> {
    let obj = &object.obj;
    let input = obj.section_data(s);
    let mut records = eh_frame::split(input, obj.relocs[s])
        .map_err(|e| anyhow::anyhow!("{}: {e}", object.name))?;
    let mut out_off = 0u32;
    for r in records.iter_mut() {
        if r.is_cie || fde_is_kept(config, object, s, r) {
            r.out_offset = Some(out_off);
            out_off += r.size;
        }
    }
    for r in records.iter().filter(|r| r.out_offset.is_some()) {
        let start = data.len();
        data.extend_from_slice(&input[r.in_offset as usize..(r.in_offset + r.size) as usize]);
        if !r.is_cie {
            let ptr = crate::eh_frame::cie_pointer(&records, r);
            data[start + 4..start + 8].copy_from_slice(&ptr.to_le_bytes());
        }
    }
    Ok(records)
}

/// Whether FDE `r` of input `.eh_frame` section `s` is kept: its function is in a section
/// that is in the output.
fn fde_is_kept(config: &Config, object: &LoadedObject, s: usize, r: &Record) -> bool {
    let obj = &object.obj;
    let target = obj.relocs[s][r.relocs.clone()]
        .iter()
        .find(|x| x.r_offset.get(LE) == u64::from(r.in_offset) + 8)
        .map(|x| x.r_sym(LE, false) as usize)
        .map(|k| obj.symbol_shndx(k) as usize);
    target.is_some_and(|t| {
        t < obj.shdrs.len() && !object.comdat_discarded[t] && is_content(object, t, config)
    })
}

/// Fails for a relocation of input section `s` that is outside the section or refers past
/// the symbol table.
fn check_relocation(object: &LoadedObject, s: usize, r: &Rela) -> Result<()> {
    let obj = &object.obj;
    let r_sym = r.r_sym(LE, false) as usize;
    if r.r_offset.get(LE) >= obj.section_size(s) {
        bail!(
            "{}: relocation at {}+{:#x} is outside its section",
            object.name,
            String::from_utf8_lossy(obj.section_names.get(s).copied().unwrap_or_default()),
            r.r_offset.get(LE)
        );
    }
    if r_sym >= obj.symbols.len() {
        bail!(
            "{}: relocation at {}+{:#x} refers to symbol {r_sym}, past the symbol table ({} symbols)",
            object.name,
            String::from_utf8_lossy(obj.section_names.get(s).copied().unwrap_or_default()),
            r.r_offset.get(LE),
            obj.symbols.len()
        );
    }
    Ok(())
}

/// Where `offset` of an input section is in its placed copy: the same, or, in an
/// `.eh_frame` (`records`), moved with its record; `None` if the record was dropped.
fn placed_offset(records: Option<&[Record]>, offset: u64) -> Option<u64> {
    let Some(records) = records else {
        return Some(offset);
    };
    match eh_frame::record_at(records, offset) {
        Some(rec) if rec.out_offset.is_some() => {
            Some(u64::from(rec.out_offset.unwrap_or(0)) + offset - u64::from(rec.in_offset))
        }
        _ => None,
    }
}

/// The output's symbol table (null, one section symbol per output section, locals, then
/// globals) and the index each input symbol got in it.
struct SymbolTable {
    entries: Vec<[u8; 24]>,
    strtab: Vec<u8>,
    /// The index of the first global symbol.
    first_global: u32,
    /// The section symbol of each content section.
    section_sym: Vec<u32>,
    /// By file, the index of each local symbol (0 for those not in the output).
    local_index: Vec<Vec<u32>>,
    /// The index of each global symbol, by its id.
    global_index: HashMap<u32, u32>,
}

impl SymbolTable {
    /// The symbol table of the output of `sections`.
    fn new(res: &Resolution, sections: &Sections) -> SymbolTable {
        let mut table = SymbolTable {
            entries: vec![[0; 24]],
            strtab: vec![0u8],
            first_global: 0,
            section_sym: Vec::with_capacity(sections.out.len()),
            local_index: Vec::with_capacity(res.objects.len()),
            global_index: HashMap::default(),
        };
        for out in 0..sections.out.len() {
            let index = table.add(b"", elf::STT_SECTION, 0, sections.shndx(out), 0, 0);
            table.section_sym.push(index);
        }
        for (f, object) in res.objects.iter().enumerate() {
            let map = table.add_locals(sections, f, object);
            table.local_index.push(map);
        }
        table.first_global = table.entries.len() as u32;
        for (i, symbol) in res.symbols.symbols.iter().enumerate() {
            let (info, other, shndx, value, size) = sections.global_symbol(res, symbol);
            let index = table.add(symbol.name, info, other, shndx, value, size);
            table.global_index.insert(i as u32, index);
        }
        table
    }

    /// Adds an entry and returns its index.
    fn add(&mut self, name: &[u8], info: u8, other: u8, shndx: u16, value: u64, size: u64) -> u32 {
        let e = crate::write::symtab_entry(&mut self.strtab, name, info, other, shndx, value, size);
        self.entries.push(e);
        (self.entries.len() - 1) as u32
    }

    /// Adds the local symbols of file `f` but its section symbols and those in discarded
    /// sections, and returns the index of each (0 for those not added).
    fn add_locals(&mut self, sections: &Sections, f: usize, object: &LoadedObject) -> Vec<u32> {
        let obj = &object.obj;
        let mut map = vec![0u32; obj.first_global.min(obj.symbols.len())];
        for (i, slot) in map.iter_mut().enumerate().skip(1) {
            let sym = &obj.symbols[i];
            if sym.st_type() == elf::STT_SECTION {
                continue;
            }
            let Some((out_shndx, value)) = sections.local_symbol(f, object, i) else {
                continue; // in a discarded section
            };
            let name = obj.symbol_name(i).unwrap_or(b"");
            *slot = self.add(
                name,
                sym.st_info,
                sym.st_other,
                out_shndx,
                value,
                sym.st_size.get(LE),
            );
        }
        map
    }

    /// The output symbol of group `g`'s signature.
    fn signature(&self, res: &Resolution, g: &Group) -> u32 {
        let (f, k) = g.signature;
        let obj = &res.objects[f].obj;
        if k < obj.first_global {
            self.local_index[f].get(k).copied().unwrap_or(0)
        } else {
            res.objects[f]
                .global_id(k)
                .and_then(|id| self.global_index.get(&id.0).copied())
                .unwrap_or(0)
        }
    }
}

/// The output file as it is written: its bytes, its section headers (null, groups, content
/// sections, their relocation sections, `.symtab`, `.strtab`, `.shstrtab`) and their names.
/// (sh_addr 0: a relocatable object's.)
struct File {
    buf: Vec<u8>,
    shdrs: Vec<[u8; 64]>,
    shstrtab: Vec<u8>,
    /// The content sections with relocations, in order: one `.rela` section each.
    rela_targets: Vec<usize>,
    /// The section header index of `.symtab`.
    symtab_index: u32,
}

impl File {
    /// The file of `sections` before anything is written: room for the ELF header.
    fn new(sections: &Sections) -> File {
        let rela_targets: Vec<usize> = (0..sections.out.len())
            .filter(|&o| !sections.out[o].relocs.is_empty())
            .collect();
        let symtab_index =
            (1 + sections.groups.len() + sections.out.len() + rela_targets.len()) as u32;
        File {
            buf: vec![0u8; 64],
            shdrs: vec![[0; 64]],
            shstrtab: vec![0u8],
            rela_targets,
            symtab_index,
        }
    }

    /// Adds a section name to `.shstrtab` and returns its offset there.
    fn name_of(&mut self, n: &[u8]) -> u32 {
        let o = self.shstrtab.len() as u32;
        self.shstrtab.extend_from_slice(n);
        self.shstrtab.push(0);
        o
    }

    /// Pads the file with zeros to a multiple of `align` and returns its length.
    fn pad(&mut self, align: usize) -> usize {
        let at = self.buf.len().next_multiple_of(align);
        self.buf.resize(at, 0);
        at
    }

    /// Writes the COMDAT groups: their signatures and members, with the members' relocation
    /// sections.
    fn write_groups(&mut self, res: &Resolution, sections: &Sections, symbols: &SymbolTable) {
        let group_name = self.name_of(b".group");
        let n_groups = sections.groups.len();
        let n_content = sections.out.len();
        for g in &sections.groups {
            let sig = symbols.signature(res, g);
            let at = self.pad(4);
            put(&mut self.buf, &elf::GRP_COMDAT.to_le_bytes());
            let mut members: Vec<u32> = g
                .members
                .iter()
                .map(|&m| u32::from(sections.shndx(m)))
                .collect();
            // The group's relocation sections belong to it too.
            for &m in &g.members {
                if let Some(p) = self.rela_targets.iter().position(|&t| t == m) {
                    members.push((1 + n_groups + n_content + p) as u32);
                }
            }
            for m in &members {
                put(&mut self.buf, &m.to_le_bytes());
            }
            self.shdrs.push(crate::encode::section_header(
                group_name,
                elf::SHT_GROUP,
                0,
                0,
                at as u64,
                4 * (1 + members.len() as u64),
                self.symtab_index,
                sig,
                4,
                4,
            ));
        }
    }

    /// Writes the content sections (a NOBITS one takes no room in the file).
    fn write_contents(&mut self, sections: &Sections) {
        for os in &sections.out {
            let name = self.name_of(&os.name);
            let at = self.buf.len().next_multiple_of(os.align as usize);
            let size = if os.sh_type == elf::SHT_NOBITS {
                os.nobits_size
            } else {
                self.buf.resize(at, 0);
                put(&mut self.buf, &os.data);
                os.data.len() as u64
            };
            self.shdrs.push(crate::encode::section_header(
                name, os.sh_type, os.flags, 0, at as u64, size, 0, 0, os.align, os.entsize,
            ));
        }
    }

    /// Writes a `.rela` section for each content section with relocations.
    fn write_relas(&mut self, sections: &Sections) {
        for t in self.rela_targets.clone() {
            let os = &sections.out[t];
            let mut rela_name = b".rela".to_vec();
            rela_name.extend_from_slice(&os.name);
            let name = self.name_of(&rela_name);
            let at = self.pad(8);
            for &(offset, r_type, sym, addend) in &os.relocs {
                put(
                    &mut self.buf,
                    &crate::encode::rela(offset, r_type, sym, addend as u64),
                );
            }
            let flags = u64::from(elf::SHF_INFO_LINK) | (os.flags & u64::from(elf::SHF_GROUP));
            self.shdrs.push(crate::encode::section_header(
                name,
                elf::SHT_RELA,
                flags,
                0,
                at as u64,
                24 * os.relocs.len() as u64,
                self.symtab_index,
                u32::from(sections.shndx(t)),
                8,
                24,
            ));
        }
    }

    /// Writes `.symtab`, `.strtab` and `.shstrtab`.
    fn write_tables(&mut self, symbols: &SymbolTable) {
        let at = self.pad(8);
        for e in &symbols.entries {
            put(&mut self.buf, e);
        }
        let symtab_name = self.name_of(b".symtab");
        let strtab_name = self.name_of(b".strtab");
        let shstrtab_name = self.name_of(b".shstrtab");
        self.shdrs.push(crate::encode::section_header(
            symtab_name,
            elf::SHT_SYMTAB,
            0,
            0,
            at as u64,
            24 * symbols.entries.len() as u64,
            self.symtab_index + 1,
            symbols.first_global,
            8,
            24,
        ));
        self.add_string_table(strtab_name, &symbols.strtab);
        let shstrtab = std::mem::take(&mut self.shstrtab);
        self.add_string_table(shstrtab_name, &shstrtab);
        self.shstrtab = shstrtab;
    }

    /// Appends a string table named `name` (its `.shstrtab` offset) and its header.
    fn add_string_table(&mut self, name: u32, bytes: &[u8]) {
        let at = self.buf.len();
        put(&mut self.buf, bytes);
        let (offset, size) = (at as u64, bytes.len() as u64);
        self.shdrs.push(crate::encode::section_header(
            name,
            elf::SHT_STRTAB,
            0,
            0,
            offset,
            size,
            0,
            0,
            1,
            0,
        ));
    }

    /// Writes the section headers and the ELF header, and returns the file.
    fn finish(mut self, res: &Resolution) -> Result<Vec<u8>> {
        let shoff = self.pad(8);
        for h in &self.shdrs {
            put(&mut self.buf, h);
        }
        if self.shdrs.len() >= usize::from(elf::SHN_LORESERVE) {
            bail!(
                "-r output would have {} sections; more than 65279 is not supported",
                self.shdrs.len()
            );
        }
        let shnum = self.shdrs.len() as u16;
        crate::write::write_elf_header(&mut self.buf, res, elf::ET_REL, 0, 0, shoff as u64, shnum);
        Ok(self.buf)
    }
}

/// The output symbol and addend a relocation's symbol becomes. `None` when it pointed into a
/// discarded section (the relocation becomes a NONE one).
fn rewrite_symbol(
    res: &Resolution,
    f: usize,
    r: &Rela,
    placement: &[Placement],
    symbols: &SymbolTable,
) -> (Option<u32>, i64) {
    let object = &res.objects[f];
    let obj = &object.obj;
    let k = r.r_sym(LE, false) as usize;
    let addend = r.r_addend.get(LE);
    if k == 0 {
        return (Some(0), addend);
    }
    if k < obj.first_global {
        let Some(sym) = obj.symbols.get(k) else {
            return (None, addend);
        };
        if sym.st_type() == elf::STT_SECTION {
            let s = obj.symbol_shndx(k) as usize;
            return match placement[f].get(s).copied().flatten() {
                Some((out, off)) => (Some(symbols.section_sym[out]), addend + off as i64),
                None => (None, addend),
            };
        }
        return match symbols.local_index[f].get(k).copied() {
            Some(i) if i != 0 => (Some(i), addend),
            _ => (None, addend),
        };
    }
    match object
        .global_id(k)
        .and_then(|id| symbols.global_index.get(&id.0).copied())
    {
        Some(i) => (Some(i), addend),
        None => (None, addend),
    }
}
