//! Copying an input section into the output and applying its relocations: per relocation,
//! the target's description of its type, where its field is, what its symbol's address is,
//! and what it comes to (a value, a rewritten code sequence, a dynamic relocation, an error).

use super::DynReloc;
use crate::arch::{Arch, Current as A, Expr};
use crate::context::{Context, GotKind, SymRef, Target};
use crate::eh_frame;
use crate::encode::{put_u16, put_u32, put_u64};
use crate::input::elf::LE;
use crate::layout::{Layout, OutputSection};
use crate::symbols::{Def, FileId};
use object::elf;

/// The size of symbol `index` of `file` (what `Expr::Size` adds to A).
fn symbol_size(ctx: &Context, file: FileId, index: usize) -> u64 {
    let object = &ctx.res.objects[file.0 as usize];
    if let Some(id) = object.global_id(index) {
        return match ctx.res.symbols.get(id).def {
            Def::Defined { file, sym, .. } => ctx.res.objects[file.0 as usize].obj.symbols
                [sym as usize]
                .st_size
                .get(LE),
            Def::Common { size, .. } => size,
            _ => 0,
        };
    }
    object.obj.symbols[index].st_size.get(LE)
}

/// A section name, decoded only when a message needs it.
#[derive(Clone, Copy)]
struct SectionName(&'static [u8]);

impl std::fmt::Display for SectionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.0))
    }
}

impl PartialEq<&str> for SectionName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

/// What relocating one input section produced besides its bytes.
#[derive(Default)]
pub(crate) struct SectionOutput {
    pub(crate) dyn_relocs: Vec<DynReloc>,
    /// Addresses of the RELATIVE relocations that go to `.relr.dyn`.
    pub(crate) relr: Vec<u64>,
    pub(crate) fde_table: Vec<(u64, u64)>,
    pub(crate) errors: Vec<String>,
}

/// Copies an input section's bytes `data` into `buf`, all of it (it may hold an old
/// output's bytes): for `.eh_frame`, the live `records` at their output offsets with their
/// CIE pointers made anew, zeros between; otherwise the bytes, then zeros (a NOBITS input
/// in a PROGBITS section).
fn copy_section(data: &[u8], records: Option<&[eh_frame::Record]>, buf: &mut [u8]) {
    match records {
        Some(records) => {
            buf.fill(0);
            for r in records {
                let Some(out) = r.out_offset else { continue };
                let src = &data[r.in_offset as usize..(r.in_offset + r.size) as usize];
                let dst = out as usize;
                buf[dst..dst + src.len()].copy_from_slice(src);
                if !r.is_cie {
                    put_u32(buf, dst + 4, eh_frame::cie_pointer(records, r));
                }
            }
        }
        None => {
            buf[..data.len()].copy_from_slice(data);
            buf[data.len()..].fill(0);
        }
    }
}

/// The input section being relocated.
struct InputSection<'a> {
    object: &'a crate::resolve::LoadedObject,
    data: &'a [u8],
    file: FileId,
    sec: u32,
    name: SectionName,
    alloc: bool,
    writable: bool,
    /// `.eh_frame`: its records move, so its relocations are found through them.
    records: Option<&'a [eh_frame::Record]>,
}

/// A relocation being applied: what it computes, where, and what it refers to.
#[derive(Clone, Copy)]
struct Site {
    r_type: u32,
    expr: Expr,
    width: usize,
    /// The field's offset in the input section, and in the output bytes being written.
    in_off: u64,
    off: usize,
    /// The place's address, and the address of the section's first byte.
    p: u64,
    base_addr: u64,
    a: i64,
    /// The symbol's address (0 when it has none), and S + A.
    s: u64,
    sa: u64,
    sym_index: usize,
    symref: SymRef,
    target: Target,
    st_type: u8,
    preemptible: bool,
}

/// What applying a relocation came to.
enum Applied {
    /// The field's value, to check against the field's range and store.
    Value(u64),
    /// A value stored as it is (a tombstone, an undefined symbol's 0 + A).
    Store(u64),
    /// Nothing more to write (the code was rewritten, or there is nothing to do).
    Done,
    /// The code was rewritten with the call that follows: the next relocation is void if
    /// it is this far after this one (`None`: whatever its place).
    VoidNext(Option<u64>),
    /// What is wrong, for the message.
    Error(String),
}

/// Copies input section (`file`, `sec`) into `buf` (exactly its contribution to the output)
/// and applies its relocations.
pub(super) fn copy_and_relocate(
    ctx: &Context,
    layout: &Layout,
    os: &OutputSection,
    file: FileId,
    sec: u32,
    buf: &mut [u8],
) -> SectionOutput {
    let mut result = SectionOutput::default();
    let object = &ctx.res.objects[file.0 as usize];
    let data = object.obj.section_data(sec as usize);
    let placement = layout.placements[file.0 as usize][sec as usize];
    let base_addr = os.addr + placement.offset;
    let relocs = object.obj.relocs[sec as usize];
    let input = InputSection {
        object,
        data,
        file,
        sec,
        name: SectionName(object.obj.section_names[sec as usize]),
        alloc: os.sh_flags & u64::from(elf::SHF_ALLOC) != 0,
        writable: object.obj.shdrs[sec as usize].sh_flags.get(LE) & u64::from(elf::SHF_WRITE) != 0,
        records: layout.eh_records.get(&(file, sec)).map(|r| &r[..]),
    };
    copy_section(data, input.records, buf);
    let section_len = match input.records {
        Some(_) => os.size as usize, // bounds are checked per write below
        None => data.len(),
    };
    let out = buf;
    let mut skip_next = false;
    // Relocations name few symbols many times (debug sections: the section symbols of
    // .debug_str, .debug_line, ...): symbol lookups are remembered, by symbol index.
    const MEMO: usize = 32;
    let mut memo = [(usize::MAX, (SymRef::Local(file, 0), Target::Undefined, 0u8)); MEMO];
    let message =
        |in_off: u64, what: &str| format!("{}:({}+{:#x}): {what}", object.name, input.name, in_off);
    for (i, r) in relocs.iter().enumerate() {
        if skip_next {
            skip_next = false;
            continue;
        }
        let r_type = r.r_type(LE, false);
        let kind = A::describe(r_type);
        let expr = kind.expr;
        if expr == Expr::None {
            continue;
        }
        let in_off = r.r_offset.get(LE);
        let Some((off, is_fde_start)) = output_offset(input.records, in_off) else {
            continue;
        };
        let width = usize::from(kind.width);
        // (A corrupt r_offset may be near 2^64: the end is computed without overflow.)
        let end = off.saturating_add(width);
        if end > section_len.max(data.len()) || end > out.len() {
            let what = "relocation is outside its section";
            result.errors.push(message(in_off, what));
            continue;
        }
        let sym_index = r.r_sym(LE, false) as usize;
        let slot = &mut memo[sym_index % MEMO];
        if slot.0 != sym_index {
            *slot = (sym_index, ctx.target(file, sym_index));
        }
        let (symref, target, st_type) = slot.1;
        let (target, a) = layout.merged_reference(target, st_type, r.r_addend.get(LE));
        let p = base_addr + off as u64;
        let mut site = Site {
            r_type,
            expr,
            width,
            in_off,
            off,
            p,
            base_addr,
            a,
            s: 0,
            sa: 0,
            sym_index,
            symref,
            target,
            st_type,
            preemptible: ctx.preemptible(layout.kind, symref),
        };
        let applied = match symbol_address(layout, symref, target, st_type) {
            Some(s) => {
                if is_fde_start {
                    // (The FDE starts 8 bytes before its initial location.)
                    result.fde_table.push((s.wrapping_add(a as u64), p - 8));
                }
                (site.s, site.sa) = (s, s.wrapping_add(a as u64));
                value_of(ctx, layout, &input, &site, out, &mut result)
            }
            None => without_address(ctx, &input, &site),
        };
        match applied {
            Applied::Value(value) => match kind.range.check(value) {
                Ok(()) => write_value(out, off, width, value),
                Err(range) => result.errors.push(message(
                    in_off,
                    &format!(
                        "relocation {} out of range: {} is not in {}; references {}",
                        A::reloc_name(r_type),
                        value as i64,
                        range,
                        ctx.display(symref)
                    ),
                )),
            },
            Applied::Store(value) => write_value(out, off, width, value),
            Applied::Done => {}
            Applied::VoidNext(delta) => {
                skip_next = match delta {
                    None => true,
                    Some(d) => relocs
                        .get(i + 1)
                        .is_some_and(|n| n.r_offset.get(LE) == in_off + d),
                };
            }
            Applied::Error(what) => result.errors.push(message(in_off, &what)),
        }
    }
    result
}

/// Where the field at input offset `in_off` is in the output bytes, and whether it is an
/// FDE's initial location; None for a dropped `.eh_frame` record.
#[inline]
fn output_offset(records: Option<&[eh_frame::Record]>, in_off: u64) -> Option<(usize, bool)> {
    let Some(records) = records else {
        return Some((in_off as usize, false));
    };
    let rec = eh_frame::record_at(records, in_off)?;
    let out = rec.out_offset?;
    let off = u64::from(out) + (in_off - u64::from(rec.in_offset));
    let is_fde_start = !rec.is_cie && in_off == u64::from(rec.in_offset) + 8;
    Some((off as usize, is_fde_start))
}

/// The address a reference reaches: an IFUNC's IPLT entry, or the target's address.
#[inline]
fn symbol_address(layout: &Layout, symref: SymRef, target: Target, st_type: u8) -> Option<u64> {
    if st_type == elf::STT_GNU_IFUNC {
        if let Some(&i) = layout.needs.iplt_index.get(&symref) {
            return Some(layout.iplt_address(i));
        }
    }
    layout.target_address(target)
}

/// A reference to a symbol with no address (undefined, or in a discarded section).
#[inline(always)]
fn without_address(ctx: &Context, input: &InputSection, site: &Site) -> Applied {
    let Site {
        expr, p, a, target, ..
    } = *site;
    let undefined = matches!(target, Target::Undefined);
    if !input.alloc {
        // Debug info about discarded code: a tombstone GDB and addr2line ignore.
        let ranges = input.name == ".debug_ranges" || input.name == ".debug_loc";
        return Applied::Store(u64::from(ranges));
    }
    if undefined && !ctx.config.undefined_in_objects_are_errors() {
        // An undefined symbol the command line lets pass is 0, as in GNU ld, with no
        // dynamic relocation (the scan reserved none); GOT-relative references to it are
        // left as they are.
        return match expr {
            Expr::Pc | Expr::PltPc => Applied::Store((a as u64).wrapping_sub(p)),
            Expr::AbsWord | Expr::Abs => Applied::Store(a as u64),
            _ => Applied::Done,
        };
    }
    if undefined {
        return Applied::Done; // reported by the layout's scan
    }
    Applied::Error("relocation refers to a symbol in a discarded section".into())
}

/// The value a relocation stores (with the dynamic relocation it needs, into `result`), or
/// what else applying it came to: a GOT load or TLS code rewritten.
#[inline(always)]
fn value_of(
    ctx: &Context,
    layout: &Layout,
    input: &InputSection,
    site: &Site,
    out: &mut [u8],
    result: &mut SectionOutput,
) -> Applied {
    let Site {
        r_type,
        expr,
        width,
        in_off,
        off,
        p,
        a,
        sa,
        sym_index,
        symref,
        target,
        st_type,
        preemptible,
        ..
    } = *site;
    let kind = layout.kind;
    let got = |kind| {
        let g = layout.needs.got_index.get(&(symref, kind))?;
        Some(layout.got_address(*g))
    };
    let got_base = layout.got_plt_base();
    let tpoff = |v: u64| v.wrapping_sub(layout.tp_address());
    // (Relaxable GOT loads compute G + A - P.)
    if expr == Expr::GotPc
        && !ctx.config.no_relax
        && crate::layout::relaxable_got_load(
            preemptible,
            r_type,
            target,
            st_type,
            input.data,
            in_off,
        )
        && input.records.is_none()
    {
        let pcrel = sa.wrapping_sub(p) as i64;
        if i32::try_from(pcrel).is_ok() {
            A::relax_got_load(out, off, pcrel as i32);
            return Applied::Done;
        }
    }
    let value: u64 = match expr {
        // (An executable's undefined weak symbol referred to directly is 0: the scan
        // imports it only for GOT and PLT references.)
        Expr::AbsWord
            if input.alloc
                && preemptible
                && (input.writable || !ctx.config.z.text)
                && !(kind == crate::context::OutputKind::DynExe
                    && matches!(target, Target::UndefWeak)) =>
        {
            let dynsym = match symref {
                SymRef::Global(id) => layout.dynamic.dynsym_index.get(&id).copied().unwrap_or(0),
                SymRef::Local(..) => 0,
            };
            let reloc = DynReloc::new(p, A::DYNAMIC.abs, dynsym, a as u64);
            result.dyn_relocs.push(reloc);
            0
        }
        Expr::AbsWord => {
            if kind.is_pic() && input.alloc && crate::context::relocatable(target) {
                let (object, sec) = (input.object, input.sec as usize);
                if crate::layout::packs_relative(ctx.config, object, sec, in_off) {
                    result.relr.push(p);
                } else {
                    let reloc = DynReloc::new(p, A::DYNAMIC.relative, 0, sa);
                    result.dyn_relocs.push(reloc);
                }
            }
            sa
        }
        // A call to a function someone else may define (a shared object's exported
        // function) goes through its PLT entry, so that the loader's binding decides.
        Expr::PltPc if preemptible => {
            let plt = match symref {
                SymRef::Global(id) => layout.needs.plt_index.get(&id),
                SymRef::Local(..) => None,
            };
            plt.map_or(sa, |&i| layout.plt_address(i).wrapping_add(a as u64))
                .wrapping_sub(p)
        }
        Expr::Pc | Expr::PltPc => sa.wrapping_sub(p),
        Expr::Abs => sa,
        Expr::GotPc => match got(GotKind::Address) {
            Some(g) => g.wrapping_add(a as u64).wrapping_sub(p),
            None => return Applied::Done,
        },
        Expr::GotFromBase => match got(GotKind::Address) {
            Some(g) => g.wrapping_sub(got_base).wrapping_add(a as u64),
            None => return Applied::Done,
        },
        Expr::FromGotBase => sa.wrapping_sub(got_base),
        // The large code model's call: the PLT entry (or the function itself when
        // nothing can preempt it) relative to the GOT.
        Expr::PltFromGotBase => {
            let plt = match symref {
                SymRef::Global(id) if preemptible => layout.needs.plt_index.get(&id),
                _ => None,
            };
            plt.map_or(sa, |&i| layout.plt_address(i).wrapping_add(a as u64))
                .wrapping_sub(got_base)
        }
        Expr::GotBasePc => got_base.wrapping_add(a as u64).wrapping_sub(p),
        Expr::Size => symbol_size(ctx, input.file, sym_index).wrapping_add(a as u64),
        Expr::TpOff => tpoff(sa),
        // After local-dynamic code is rewritten to local exec, @dtpoff becomes @tpoff
        // (in code; a word of debug information keeps the offset in the block).
        Expr::DtpOff if kind.is_executable() && (width == 4 || input.alloc) => tpoff(sa),
        Expr::DtpOff => sa.wrapping_sub(layout.tls_start),
        Expr::DtpMod => 1,
        Expr::GotTpOffPc | Expr::TlsGd | Expr::TlsLd | Expr::TlsDesc | Expr::TlsDescCall => {
            // (A copy: the caller's `Site` stays in registers.)
            let tls = *site;
            return apply_tls(ctx, layout, &tls, out);
        }
        Expr::None | Expr::Unsupported => {
            return Applied::Error(format!("unsupported relocation {}", A::reloc_name(r_type)));
        }
    };
    Applied::Value(value)
}

/// A TLS relocation: its GOT entry's offset, or, in an executable, the code rewritten to
/// a cheaper model (the psABI's relaxations, done by the target).
fn apply_tls(ctx: &Context, layout: &Layout, site: &Site, out: &mut [u8]) -> Applied {
    let Site {
        expr,
        off,
        p,
        a,
        s,
        sa,
        symref,
        preemptible,
        base_addr,
        ..
    } = *site;
    let exe = layout.kind.is_executable();
    let tpoff = |v: u64| v.wrapping_sub(layout.tp_address()) as i64;
    let got = |kind| {
        let g = layout.needs.got_index.get(&(symref, kind))?;
        Some(layout.got_address(*g))
    };
    let got_pc = |g: Option<u64>| match g {
        Some(g) => Applied::Value(g.wrapping_add(a as u64).wrapping_sub(p)),
        None => Applied::Done,
    };
    let gd_unsupported = || {
        Applied::Error(format!(
            "unsupported general-dynamic TLS code sequence for {}",
            ctx.display(symref)
        ))
    };
    let desc_unsupported = || Applied::Error("unsupported TLS descriptor code sequence".into());
    match expr {
        Expr::GotTpOffPc if exe && !preemptible && A::relax_ie_to_le(out, off, tpoff(s)) => {
            Applied::Done
        }
        Expr::GotTpOffPc => got_pc(got(GotKind::TpOff)),
        Expr::TlsGd if !exe => got_pc(got(GotKind::TlsGd)),
        Expr::TlsGd if preemptible => {
            let g = got(GotKind::TpOff).unwrap_or(0);
            let got_pcrel = |at: usize| g.wrapping_sub(base_addr + at as u64);
            match A::relax_gd_to_ie(out, off, got_pcrel) {
                Some(delta) => Applied::VoidNext(Some(delta)),
                None => gd_unsupported(),
            }
        }
        Expr::TlsGd => match A::relax_gd_to_le(out, off, tpoff(sa)) {
            Some(delta) => Applied::VoidNext(Some(delta)),
            None => gd_unsupported(),
        },
        Expr::TlsLd if !exe => {
            let module = (SymRef::Local(FileId(u32::MAX), 0), GotKind::TlsLd);
            got_pc(
                layout
                    .needs
                    .got_index
                    .get(&module)
                    .map(|&g| layout.got_address(g)),
            )
        }
        Expr::TlsLd if A::relax_ld_to_le(out, off) => Applied::VoidNext(None),
        Expr::TlsLd => Applied::Error("unsupported local-dynamic TLS code sequence".into()),
        Expr::TlsDesc if !exe => got_pc(got(GotKind::TlsDesc)),
        Expr::TlsDesc if preemptible => match A::relax_tlsdesc_to_ie(out, off) {
            true => got_pc(Some(got(GotKind::TpOff).unwrap_or(0))),
            false => desc_unsupported(),
        },
        Expr::TlsDesc if A::relax_tlsdesc_to_le(out, off, tpoff(sa)) => Applied::Done,
        Expr::TlsDesc => desc_unsupported(),
        Expr::TlsDescCall if !exe || A::relax_tlsdesc_call(out, off) => Applied::Done,
        Expr::TlsDescCall => Applied::Error("unsupported TLS descriptor call".into()),
        _ => unreachable!("apply_tls is called for TLS relocations only"),
    }
}

fn write_value(out: &mut [u8], off: usize, width: usize, value: u64) {
    match width {
        8 => put_u64(out, off, value),
        4 => put_u32(out, off, value as u32),
        2 => put_u16(out, off, value as u16),
        1 => out[off] = value as u8,
        _ => {}
    }
}
