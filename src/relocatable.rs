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
use crate::inputs::elf::{Rela, LE};
use crate::layout::is_content;
use crate::resolve::Resolution;
use crate::symbols::Def;
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

struct Group {
    /// (file, symbol index) of the signature.
    signature: (usize, usize),
    /// The input SHT_GROUP section (gcc may define the signature as a local symbol in it).
    input_section: usize,
    members: Vec<usize>,
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes);
}

pub fn link_relocatable(config: &Config, res: &Resolution) -> Result<Vec<u8>> {
    let mut sections: Vec<OutSection> = Vec::new();
    let mut by_key: HashMap<(Vec<u8>, u32, u64), usize> = HashMap::default();
    // (out section, offset) per input section.
    let mut placement: Vec<Vec<Option<(usize, u64)>>> = Vec::new();
    let mut eh: HashMap<(usize, usize), Vec<Record>> = HashMap::default();
    let mut groups: Vec<Group> = Vec::new();

    for (f, object) in res.objects.iter().enumerate() {
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
            groups.push(Group {
                signature: (f, group_shdr.sh_info.get(LE) as usize),
                input_section: group_sec,
                members: Vec::new(),
            });
            for &m in members {
                in_group.insert(m as usize, groups.len() - 1);
            }
        }
        let mut places = vec![None; obj.shdrs.len()];
        for (s, shdr) in obj.shdrs.iter().enumerate() {
            if !is_content(object, s, config) {
                continue;
            }
            let name = obj.section_names[s];
            let sh_type = shdr.sh_type.get(LE);
            let flags = shdr.sh_flags.get(LE) & !u64::from(elf::SHF_GROUP);
            let group = in_group.get(&s).copied();
            let out = match group {
                Some(g) => {
                    sections.push(OutSection {
                        name: name.to_vec(),
                        sh_type,
                        flags: flags | u64::from(elf::SHF_GROUP),
                        align: 1,
                        entsize: shdr.sh_entsize.get(LE),
                        data: Vec::new(),
                        relocs: Vec::new(),
                        nobits_size: 0,
                    });
                    groups[g].members.push(sections.len() - 1);
                    sections.len() - 1
                }
                None => *by_key
                    .entry((name.to_vec(), sh_type, flags))
                    .or_insert_with(|| {
                        sections.push(OutSection {
                            name: name.to_vec(),
                            sh_type,
                            flags,
                            align: 1,
                            entsize: shdr.sh_entsize.get(LE),
                            data: Vec::new(),
                            relocs: Vec::new(),
                            nobits_size: 0,
                        });
                        sections.len() - 1
                    }),
            };
            let os = &mut sections[out];
            let align = shdr.sh_addralign.get(LE).max(1);
            os.align = os.align.max(align);
            if sh_type == elf::SHT_NOBITS {
                os.nobits_size = os.nobits_size.next_multiple_of(align);
                places[s] = Some((out, os.nobits_size));
                os.nobits_size += obj.section_size(s);
                continue;
            }
            let at = os.data.len().next_multiple_of(if is_eh_frame(object, s) {
                4
            } else {
                align as usize
            });
            os.data.resize(at, 0);
            places[s] = Some((out, at as u64));
            let data = obj.section_data(s);
            if is_eh_frame(object, s) {
                let mut records = eh_frame::split(data, obj.relocs[s])
                    .map_err(|e| anyhow::anyhow!("{}: {e}", object.name))?;
                let mut out_off = 0u32;
                for r in records.iter_mut() {
                    let keep = r.is_cie || {
                        let target = obj.relocs[s][r.relocs.clone()]
                            .iter()
                            .find(|x| x.r_offset.get(LE) == u64::from(r.in_offset) + 8)
                            .map(|x| x.r_sym(LE, false) as usize)
                            .map(|k| obj.symbol_shndx(k) as usize);
                        target.is_some_and(|t| {
                            t < obj.shdrs.len()
                                && !object.comdat_discarded[t]
                                && is_content(object, t, config)
                        })
                    };
                    if keep {
                        r.out_offset = Some(out_off);
                        out_off += r.size;
                    }
                }
                for r in records.iter().filter(|r| r.out_offset.is_some()) {
                    let start = os.data.len();
                    os.data.extend_from_slice(
                        &data[r.in_offset as usize..(r.in_offset + r.size) as usize],
                    );
                    if !r.is_cie {
                        let ptr = crate::eh_frame::cie_pointer(&records, r);
                        os.data[start + 4..start + 8].copy_from_slice(&ptr.to_le_bytes());
                    }
                }
                eh.insert((f, s), records);
            } else {
                os.data.extend_from_slice(data);
            }
        }
        placement.push(places);
    }

    // The objects' properties, merged as in a final link, for the next link to merge again.
    let properties = crate::layout::output_properties(config, res, true)?;
    if !properties.is_empty() {
        sections.push(OutSection {
            name: b".note.gnu.property".to_vec(),
            sh_type: elf::SHT_NOTE,
            flags: u64::from(elf::SHF_ALLOC),
            align: 8,
            entsize: 0,
            data: crate::property::encode(&properties),
            relocs: Vec::new(),
            nobits_size: 0,
        });
    }

    // The stack stays non-executable for the next link (an absent note would mean the opposite).
    sections.push(OutSection {
        name: b".note.GNU-stack".to_vec(),
        sh_type: elf::SHT_PROGBITS,
        flags: if crate::layout::executable_stack(config, res, false) {
            u64::from(elf::SHF_EXECINSTR)
        } else {
            0
        },
        align: 1,
        entsize: 0,
        data: Vec::new(),
        relocs: Vec::new(),
        nobits_size: 0,
    });

    // Symbols: null, one section symbol per output section, locals, then globals.
    let mut strtab = vec![0u8];
    let mut symtab: Vec<[u8; 24]> = vec![[0; 24]];
    let mut add_sym = |symtab: &mut Vec<[u8; 24]>,
                       name: &[u8],
                       info: u8,
                       other: u8,
                       shndx: u16,
                       value: u64,
                       size: u64| {
        let e = crate::write::symtab_entry(&mut strtab, name, info, other, shndx, value, size);
        symtab.push(e);
        (symtab.len() - 1) as u32
    };
    // Output section header indexes: null, groups, content sections.
    let shndx_of = |out: usize| (1 + groups.len() + out) as u16;
    let mut section_sym = Vec::with_capacity(sections.len());
    for out in 0..sections.len() {
        section_sym.push(add_sym(
            &mut symtab,
            b"",
            elf::STT_SECTION,
            0,
            shndx_of(out),
            0,
            0,
        ));
    }
    let mut local_index: Vec<Vec<u32>> = Vec::with_capacity(res.objects.len());
    for (f, object) in res.objects.iter().enumerate() {
        let obj = &object.obj;
        let mut map = vec![0u32; obj.first_global.min(obj.symbols.len())];
        for (i, slot) in map.iter_mut().enumerate().skip(1) {
            let sym = &obj.symbols[i];
            let st_type = sym.st_type();
            if st_type == elf::STT_SECTION {
                continue;
            }
            let name = obj.symbol_name(i).unwrap_or(b"");
            let shndx = obj.symbol_shndx(i);
            let group = groups
                .iter()
                .position(|g| g.signature.0 == f && g.input_section == shndx as usize);
            let (out_shndx, value) = match shndx {
                0 => (elf::SHN_UNDEF, 0),
                _ if group.is_some() => ((1 + group.unwrap_or(0)) as u16, 0),
                s if s == u32::from(elf::SHN_ABS) => (elf::SHN_ABS, sym.st_value.get(LE)),
                s => match placement[f].get(s as usize).copied().flatten() {
                    Some((out, off)) => {
                        let v = sym.st_value.get(LE);
                        let v = match eh.get(&(f, s as usize)) {
                            Some(records) => match eh_frame::record_at(records, v) {
                                Some(r) => r
                                    .out_offset
                                    .map_or(0, |o| u64::from(o) + v - u64::from(r.in_offset)),
                                None => 0,
                            },
                            None => v,
                        };
                        (shndx_of(out), off + v)
                    }
                    None => continue, // in a discarded section
                },
            };
            *slot = add_sym(
                &mut symtab,
                name,
                sym.st_info,
                sym.st_other,
                out_shndx,
                value,
                sym.st_size.get(LE),
            );
        }
        local_index.push(map);
    }
    let first_global = symtab.len() as u32;
    let mut global_index: HashMap<u32, u32> = HashMap::default();
    for (i, symbol) in res.symbols.symbols.iter().enumerate() {
        let (info, other, shndx, value, size) = match symbol.def {
            Def::Defined { file, sym, .. } => {
                let obj = &res.objects[file.0 as usize].obj;
                let st = &obj.symbols[sym as usize];
                let s = obj.symbol_shndx(sym as usize);
                let (shndx, value) = if s == u32::from(elf::SHN_ABS) {
                    (elf::SHN_ABS, st.st_value.get(LE))
                } else {
                    match placement[file.0 as usize]
                        .get(s as usize)
                        .copied()
                        .flatten()
                    {
                        Some((out, off)) => (shndx_of(out), off + st.st_value.get(LE)),
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
        };
        let index = add_sym(&mut symtab, symbol.name, info, other, shndx, value, size);
        global_index.insert(i as u32, index);
    }

    // Relocations.
    for (f, object) in res.objects.iter().enumerate() {
        let obj = &object.obj;
        for (s, relocs) in obj.relocs.iter().enumerate() {
            let Some((out, base)) = placement[f].get(s).copied().flatten() else {
                continue;
            };
            let records = eh.get(&(f, s));
            for r in relocs.iter() {
                let r_sym = r.r_sym(LE, false) as usize;
                if r.r_offset.get(LE) >= obj.section_size(s) {
                    bail!(
                        "{}: relocation at {}+{:#x} is outside its section",
                        object.name,
                        String::from_utf8_lossy(
                            obj.section_names.get(s).copied().unwrap_or_default()
                        ),
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
                let mut offset = r.r_offset.get(LE);
                if let Some(records) = records {
                    match eh_frame::record_at(records, offset) {
                        Some(rec) if rec.out_offset.is_some() => {
                            offset = u64::from(rec.out_offset.unwrap_or(0)) + offset
                                - u64::from(rec.in_offset);
                        }
                        _ => continue,
                    }
                }
                let (sym, addend) = rewrite_symbol(
                    res,
                    f,
                    r,
                    &placement,
                    &section_sym,
                    &local_index,
                    &global_index,
                );
                let r_type = if sym.is_none() {
                    <crate::arch::Current as crate::arch::Arch>::NONE
                } else {
                    r.r_type(LE, false)
                };
                sections[out]
                    .relocs
                    .push((base + offset, r_type, sym.unwrap_or(0), addend));
            }
        }
    }

    // Layout of the file: header, section data, then tables and headers.
    let mut buf = vec![0u8; 64];
    let mut shdrs: Vec<[u8; 64]> = vec![[0; 64]];
    let mut shstrtab = vec![0u8];
    let mut name_of = |n: &[u8]| {
        let o = shstrtab.len() as u32;
        shstrtab.extend_from_slice(n);
        shstrtab.push(0);
        o
    };
    let n_groups = groups.len();
    let n_content = sections.len();
    let rela_targets: Vec<usize> = (0..n_content)
        .filter(|&o| !sections[o].relocs.is_empty())
        .collect();
    let symtab_index = (1 + n_groups + n_content + rela_targets.len()) as u32;
    // (sh_addr 0: a relocatable object's.)
    let shdr = |name, sh_type, flags, offset, size, link, info, align, entsize| {
        crate::encode::section_header(
            name, sh_type, flags, 0, offset, size, link, info, align, entsize,
        )
    };
    let group_name = name_of(b".group");
    for g in &groups {
        let (f, k) = g.signature;
        let obj = &res.objects[f].obj;
        let sig = if k < obj.first_global {
            local_index[f].get(k).copied().unwrap_or(0)
        } else {
            res.objects[f]
                .global_id(k)
                .and_then(|id| global_index.get(&id.0).copied())
                .unwrap_or(0)
        };
        let at = buf.len().next_multiple_of(4);
        buf.resize(at, 0);
        put(&mut buf, &elf::GRP_COMDAT.to_le_bytes());
        let mut members: Vec<u32> = g.members.iter().map(|&m| u32::from(shndx_of(m))).collect();
        // The group's relocation sections belong to it too.
        for &m in &g.members {
            if let Some(p) = rela_targets.iter().position(|&t| t == m) {
                members.push((1 + n_groups + n_content + p) as u32);
            }
        }
        for m in &members {
            put(&mut buf, &m.to_le_bytes());
        }
        shdrs.push(shdr(
            group_name,
            elf::SHT_GROUP,
            0,
            at as u64,
            4 * (1 + members.len() as u64),
            symtab_index,
            sig,
            4,
            4,
        ));
    }
    for os in &sections {
        let name = name_of(&os.name);
        let at = buf.len().next_multiple_of(os.align as usize);
        if os.sh_type == elf::SHT_NOBITS {
            shdrs.push(shdr(
                name,
                os.sh_type,
                os.flags,
                at as u64,
                os.nobits_size,
                0,
                0,
                os.align,
                os.entsize,
            ));
            continue;
        }
        buf.resize(at, 0);
        put(&mut buf, &os.data);
        shdrs.push(shdr(
            name,
            os.sh_type,
            os.flags,
            at as u64,
            os.data.len() as u64,
            0,
            0,
            os.align,
            os.entsize,
        ));
    }
    for &t in &rela_targets {
        let os = &sections[t];
        let mut rela_name = b".rela".to_vec();
        rela_name.extend_from_slice(&os.name);
        let name = name_of(&rela_name);
        let at = buf.len().next_multiple_of(8);
        buf.resize(at, 0);
        for &(offset, r_type, sym, addend) in &os.relocs {
            put(
                &mut buf,
                &crate::encode::rela(offset, r_type, sym, addend as u64),
            );
        }
        let flags = u64::from(elf::SHF_INFO_LINK) | (os.flags & u64::from(elf::SHF_GROUP));
        shdrs.push(shdr(
            name,
            elf::SHT_RELA,
            flags,
            at as u64,
            24 * os.relocs.len() as u64,
            symtab_index,
            u32::from(shndx_of(t)),
            8,
            24,
        ));
    }
    let at = buf.len().next_multiple_of(8);
    buf.resize(at, 0);
    for e in &symtab {
        put(&mut buf, e);
    }
    let symtab_name = name_of(b".symtab");
    let strtab_name = name_of(b".strtab");
    let shstrtab_name = name_of(b".shstrtab");
    shdrs.push(shdr(
        symtab_name,
        elf::SHT_SYMTAB,
        0,
        at as u64,
        24 * symtab.len() as u64,
        symtab_index + 1,
        first_global,
        8,
        24,
    ));
    let at = buf.len();
    put(&mut buf, &strtab);
    shdrs.push(shdr(
        strtab_name,
        elf::SHT_STRTAB,
        0,
        at as u64,
        strtab.len() as u64,
        0,
        0,
        1,
        0,
    ));
    let at = buf.len();
    put(&mut buf, &shstrtab);
    shdrs.push(shdr(
        shstrtab_name,
        elf::SHT_STRTAB,
        0,
        at as u64,
        shstrtab.len() as u64,
        0,
        0,
        1,
        0,
    ));
    let shoff = buf.len().next_multiple_of(8);
    buf.resize(shoff, 0);
    for h in &shdrs {
        put(&mut buf, h);
    }
    if shdrs.len() >= usize::from(elf::SHN_LORESERVE) {
        bail!(
            "-r output would have {} sections; more than 65279 is not supported",
            shdrs.len()
        );
    }
    let shnum = shdrs.len() as u16;
    crate::write::write_elf_header(&mut buf, res, elf::ET_REL, 0, 0, shoff as u64, shnum);
    Ok(buf)
}

/// The output symbol and addend a relocation's symbol becomes. `None` when it pointed into a
/// discarded section (the relocation becomes a NONE one).
fn rewrite_symbol(
    res: &Resolution,
    f: usize,
    r: &Rela,
    placement: &[Vec<Option<(usize, u64)>>],
    section_sym: &[u32],
    local_index: &[Vec<u32>],
    global_index: &HashMap<u32, u32>,
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
                Some((out, off)) => (Some(section_sym[out]), addend + off as i64),
                None => (None, addend),
            };
        }
        return match local_index[f].get(k).copied() {
            Some(i) if i != 0 => (Some(i), addend),
            _ => (None, addend),
        };
    }
    match object
        .global_id(k)
        .and_then(|id| global_index.get(&id.0).copied())
    {
        Some(i) => (Some(i), addend),
        None => (None, addend),
    }
}
