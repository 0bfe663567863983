//! Everything that knows x86-64 relocation numbers and instruction bytes.
//!
//! The psABI in brief, as far as a static link needs it: the thread pointer is %fs:0 and
//! points to the *end* of the TLS block (variant II), so TLS offsets are negative; PLT entries
//! jump through a GOT slot with `jmp *slot(%rip)`; and TLS access models written by the
//! compiler for shared code (general and local dynamic, TLS descriptors) can be rewritten to
//! local-exec when the output is an executable, because the offset is then known. The
//! rewrites are small pure functions on the bytes around the relocation.

use super::{Arch, DynTypes, Expr, FieldRange, RelocKind};
use object::elf;

/// `jmp *slot(%rip)` followed by padding. The rel32 at offset 2 is filled in by the writer.
const IPLT_ENTRY: [u8; 16] = [
    0xff, 0x25, 0, 0, 0, 0, // jmp *slot(%rip)
    0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, // int3 padding
];
const _: () = assert!(IPLT_ENTRY.len() as u64 == X86_64::PLT_ENTRY_SIZE);

/// A type weld does not know.
const UNSUPPORTED: RelocKind = RelocKind {
    expr: Expr::Unsupported,
    width: 4,
    range: FieldRange::Any,
};

/// Every relocation type weld knows: what it computes, its field's width and range (psABI
/// table 4.9 and the TLS document); other types are `Unsupported`.
static KINDS: [RelocKind; 44] = {
    use FieldRange::{Any, Either16, Either8, Signed16, Signed32, Signed8, Unsigned32};
    const fn k(expr: Expr, width: u8, range: FieldRange) -> RelocKind {
        RelocKind { expr, width, range }
    }
    let mut t = [UNSUPPORTED; 44];
    t[elf::R_X86_64_NONE as usize] = k(Expr::None, 4, Any);
    t[elf::R_X86_64_64 as usize] = k(Expr::AbsWord, 8, Any);
    t[elf::R_X86_64_32 as usize] = k(Expr::Abs, 4, Unsigned32);
    t[elf::R_X86_64_32S as usize] = k(Expr::Abs, 4, Signed32);
    t[elf::R_X86_64_16 as usize] = k(Expr::Abs, 2, Either16);
    t[elf::R_X86_64_8 as usize] = k(Expr::Abs, 1, Either8);
    t[elf::R_X86_64_PC32 as usize] = k(Expr::Pc, 4, Signed32);
    t[elf::R_X86_64_PC64 as usize] = k(Expr::Pc, 8, Any);
    t[elf::R_X86_64_PC16 as usize] = k(Expr::Pc, 2, Signed16);
    t[elf::R_X86_64_PC8 as usize] = k(Expr::Pc, 1, Signed8);
    t[elf::R_X86_64_PLT32 as usize] = k(Expr::PltPc, 4, Signed32);
    t[elf::R_X86_64_GOTPCREL as usize] = k(Expr::GotPc, 4, Signed32);
    t[elf::R_X86_64_GOTPCRELX as usize] = k(Expr::GotPc, 4, Signed32);
    t[elf::R_X86_64_REX_GOTPCRELX as usize] = k(Expr::GotPc, 4, Signed32);
    t[elf::R_X86_64_GOTPCREL64 as usize] = k(Expr::GotPc, 8, Any);
    t[elf::R_X86_64_GOT32 as usize] = k(Expr::GotFromBase, 4, Signed32);
    t[elf::R_X86_64_GOT64 as usize] = k(Expr::GotFromBase, 8, Any);
    t[elf::R_X86_64_GOTPLT64 as usize] = k(Expr::GotFromBase, 8, Any);
    t[elf::R_X86_64_GOTOFF64 as usize] = k(Expr::FromGotBase, 8, Any);
    t[elf::R_X86_64_PLTOFF64 as usize] = k(Expr::PltFromGotBase, 8, Any);
    t[elf::R_X86_64_GOTPC32 as usize] = k(Expr::GotBasePc, 4, Signed32);
    t[elf::R_X86_64_GOTPC64 as usize] = k(Expr::GotBasePc, 8, Any);
    t[elf::R_X86_64_SIZE32 as usize] = k(Expr::Size, 4, Any);
    t[elf::R_X86_64_SIZE64 as usize] = k(Expr::Size, 8, Any);
    t[elf::R_X86_64_TPOFF32 as usize] = k(Expr::TpOff, 4, Signed32);
    t[elf::R_X86_64_TPOFF64 as usize] = k(Expr::TpOff, 8, Any);
    t[elf::R_X86_64_DTPOFF32 as usize] = k(Expr::DtpOff, 4, Signed32);
    t[elf::R_X86_64_DTPOFF64 as usize] = k(Expr::DtpOff, 8, Any);
    t[elf::R_X86_64_DTPMOD64 as usize] = k(Expr::DtpMod, 8, Any);
    t[elf::R_X86_64_GOTTPOFF as usize] = k(Expr::GotTpOffPc, 4, Signed32);
    t[elf::R_X86_64_TLSGD as usize] = k(Expr::TlsGd, 4, Signed32);
    t[elf::R_X86_64_TLSLD as usize] = k(Expr::TlsLd, 4, Signed32);
    t[elf::R_X86_64_GOTPC32_TLSDESC as usize] = k(Expr::TlsDesc, 4, Signed32);
    t[elf::R_X86_64_TLSDESC_CALL as usize] = k(Expr::TlsDescCall, 0, Any);
    t
};

/// What relocation `r_type` is.
#[inline]
fn describe(r_type: u32) -> RelocKind {
    KINDS.get(r_type as usize).copied().unwrap_or(UNSUPPORTED)
}

/// Whether `r_type` marks a GOT load the linker may turn into an address computation
/// (`mov foo@GOTPCREL(%rip)` to `lea foo(%rip)`).
#[inline]
fn relaxable_got_load_type(r_type: u32) -> bool {
    matches!(
        r_type,
        elf::R_X86_64_GOTPCRELX | elf::R_X86_64_REX_GOTPCRELX
    )
}

/// The NOPs of each length from 1 to 10 bytes that GNU ld fills code gaps with (longer
/// gaps: 10-byte ones, then the rest).
const NOPS: [&[u8]; 10] = [
    &[0x90],
    &[0x66, 0x90],
    &[0x0f, 0x1f, 0x00],
    &[0x0f, 0x1f, 0x40, 0x00],
    &[0x0f, 0x1f, 0x44, 0x00, 0x00],
    &[0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00],
    &[0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00],
    &[0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
    &[0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
    &[0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
];

/// Fills `gap` with NOP instructions, the longest first.
fn fill_nops(gap: &mut [u8]) {
    let mut rest = gap;
    while !rest.is_empty() {
        let nop = NOPS[rest.len().min(NOPS.len()) - 1];
        let (head, tail) = rest.split_at_mut(nop.len());
        head.copy_from_slice(nop);
        rest = tail;
    }
}

fn reloc_name(r_type: u32) -> String {
    let name = match r_type {
        elf::R_X86_64_NONE => "R_X86_64_NONE",
        elf::R_X86_64_64 => "R_X86_64_64",
        elf::R_X86_64_PC32 => "R_X86_64_PC32",
        elf::R_X86_64_GOT32 => "R_X86_64_GOT32",
        elf::R_X86_64_PLT32 => "R_X86_64_PLT32",
        elf::R_X86_64_GOTPCREL => "R_X86_64_GOTPCREL",
        elf::R_X86_64_32 => "R_X86_64_32",
        elf::R_X86_64_32S => "R_X86_64_32S",
        elf::R_X86_64_16 => "R_X86_64_16",
        elf::R_X86_64_PC16 => "R_X86_64_PC16",
        elf::R_X86_64_8 => "R_X86_64_8",
        elf::R_X86_64_PC8 => "R_X86_64_PC8",
        elf::R_X86_64_DTPMOD64 => "R_X86_64_DTPMOD64",
        elf::R_X86_64_DTPOFF64 => "R_X86_64_DTPOFF64",
        elf::R_X86_64_TPOFF64 => "R_X86_64_TPOFF64",
        elf::R_X86_64_TLSGD => "R_X86_64_TLSGD",
        elf::R_X86_64_TLSLD => "R_X86_64_TLSLD",
        elf::R_X86_64_DTPOFF32 => "R_X86_64_DTPOFF32",
        elf::R_X86_64_GOTTPOFF => "R_X86_64_GOTTPOFF",
        elf::R_X86_64_TPOFF32 => "R_X86_64_TPOFF32",
        elf::R_X86_64_PC64 => "R_X86_64_PC64",
        elf::R_X86_64_GOTOFF64 => "R_X86_64_GOTOFF64",
        elf::R_X86_64_GOTPC32 => "R_X86_64_GOTPC32",
        elf::R_X86_64_GOT64 => "R_X86_64_GOT64",
        elf::R_X86_64_PLTOFF64 => "R_X86_64_PLTOFF64",
        elf::R_X86_64_GOTPLT64 => "R_X86_64_GOTPLT64",
        elf::R_X86_64_GOTPCREL64 => "R_X86_64_GOTPCREL64",
        elf::R_X86_64_GOTPC64 => "R_X86_64_GOTPC64",
        elf::R_X86_64_SIZE32 => "R_X86_64_SIZE32",
        elf::R_X86_64_SIZE64 => "R_X86_64_SIZE64",
        elf::R_X86_64_GOTPC32_TLSDESC => "R_X86_64_GOTPC32_TLSDESC",
        elf::R_X86_64_TLSDESC_CALL => "R_X86_64_TLSDESC_CALL",
        elf::R_X86_64_IRELATIVE => "R_X86_64_IRELATIVE",
        elf::R_X86_64_GOTPCRELX => "R_X86_64_GOTPCRELX",
        elf::R_X86_64_REX_GOTPCRELX => "R_X86_64_REX_GOTPCRELX",
        _ => return format!("type {r_type}"),
    };
    name.to_string()
}

/// The general-dynamic sequence whose TLSGD displacement is at `off`, if that is what the
/// bytes are: the small code model's 16 bytes from `off - 4`,
/// `66 48 8d 3d <tlsgd>` (data16 lea x@tlsgd(%rip),%rdi) and
/// `66 66 48 e8 <plt32>` (data16 data16 rex64 call __tls_get_addr@PLT);
/// or the large code model's 22 bytes from `off - 3`, `48 8d 3d <tlsgd>` (lea),
/// `48 b8 <pltoff64>` (movabs $__tls_get_addr@pltoff,%rax), `48 01 d8` or another base
/// register (add %rbx,%rax: the GOT) and `ff d0` (call *%rax). Returns its start.
/// Either way the rewrite puts 12 bytes of code and a 32-bit field at `start + 12`; the
/// large sequence's last 6 bytes become a nop.
fn gd_sequence(buf: &[u8], off: usize) -> Option<GdSequence> {
    if let Some(code) = off.checked_sub(4).and_then(|at| buf.get(at..at + 16)) {
        if code[..4] == [0x66, 0x48, 0x8d, 0x3d] && code[8..12] == [0x66, 0x66, 0x48, 0xe8] {
            return Some(GdSequence {
                start: off - 4,
                large: false,
            });
        }
    }
    let code = off.checked_sub(3).and_then(|at| buf.get(at..at + 22))?;
    (code[..3] == [0x48, 0x8d, 0x3d] && code[7..9] == [0x48, 0xb8] && large_call_tail(&code[17..]))
        .then_some(GdSequence {
            start: off - 3,
            large: true,
        })
}

/// The end of a large-model `__tls_get_addr` call: `add %reg,%rax` (REX.W 01 /r with
/// %rax as the destination: the GOT base, %rbx or another register) and `call *%rax`.
fn large_call_tail(code: &[u8]) -> bool {
    code.len() >= 5
        && matches!(code[0], 0x48 | 0x4c)
        && code[1] == 0x01
        && code[2] & 0xc7 == 0xc0
        && code[3..5] == [0xff, 0xd0]
}

/// Where a general-dynamic sequence is (see [`gd_sequence`]).
#[derive(Clone, Copy, Debug)]
struct GdSequence {
    start: usize,
    /// The large code model's form: the call's relocation (PLTOFF64) is at `start + 9`,
    /// not `start + 12`.
    large: bool,
}

impl GdSequence {
    /// Offset from the TLSGD relocation to the call's (`__tls_get_addr`) relocation.
    fn call_reloc_delta(self) -> u64 {
        if self.large {
            6
        } else {
            8
        }
    }
}

/// `nopw 0x0(%rax,%rax,1)`: the 6 bytes after a rewritten large-model sequence.
const NOP6: [u8; 6] = [0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00];

/// General dynamic -> local exec: the sequence becomes
/// `mov %fs:0,%rax; lea x@tpoff(%rax),%rax` (then a nop in the large model).
fn relax_gd_to_le(buf: &mut [u8], seq: GdSequence, tpoff: i32) {
    let code = &mut buf[seq.start..];
    code[..12].copy_from_slice(&[
        0x64, 0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0, // mov %fs:0,%rax
        0x48, 0x8d, 0x80, // lea tpoff(%rax),%rax
    ]);
    code[12..16].copy_from_slice(&tpoff.to_le_bytes());
    if seq.large {
        code[16..22].copy_from_slice(&NOP6);
    }
}

/// Local dynamic -> local exec. `buf[at..]` holds `48 8d 3d <tlsld>` (lea x@tlsld(%rip),%rdi)
/// then `e8 <plt32>` (call __tls_get_addr@PLT) or `ff 15 <gotpcrel>` (the -fno-plt call), with
/// `at` = r_offset - 3. Rewritten to load %fs:0 into %rax, padded with prefixes.
/// Returns the number of bytes rewritten (0 when the sequence is not recognised).
fn relax_ld_to_le(buf: &mut [u8], at: usize) -> usize {
    let Some(code) = buf.get_mut(at..) else {
        return 0;
    };
    if code.len() < 12 || code[..3] != [0x48, 0x8d, 0x3d] {
        return 0;
    }
    if code[7] == 0xe8 {
        code[..12].copy_from_slice(&[0x66, 0x66, 0x66, 0x64, 0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0]);
        12
    } else if code.len() >= 22 && code[7..9] == [0x48, 0xb8] && large_call_tail(&code[17..]) {
        // The large code model: movabs $__tls_get_addr@pltoff,%rax; add %rbx,%rax;
        // call *%rax. The load of %fs:0, then a 10-byte nop.
        code[..12].copy_from_slice(&[0x66, 0x66, 0x66, 0x64, 0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0]);
        code[12..22].copy_from_slice(&[0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0]);
        22
    } else if code.len() >= 13 && code[7..9] == [0xff, 0x15] {
        code[..13].copy_from_slice(&[
            0x66, 0x66, 0x66, 0x66, 0x64, 0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0,
        ]);
        13
    } else {
        0
    }
}

/// TLS descriptor -> local exec, first half: `lea x@tlsdesc(%rip),%reg` (REX.W 8d modrm) at
/// `at` = r_offset - 3 becomes `mov $tpoff,%reg` (REX.W c7 /0).
fn relax_tlsdesc_lea_to_le(buf: &mut [u8], at: usize, tpoff: i32) -> bool {
    let Some(code) = buf.get_mut(at..at + 7) else {
        return false;
    };
    let (rex, opcode, modrm) = (code[0], code[1], code[2]);
    if rex & 0xf8 != 0x48 || opcode != 0x8d || modrm & 0xc7 != 0x05 {
        return false;
    }
    let reg = (modrm >> 3) & 7;
    let rex_b = (rex >> 2) & 1; // REX.R of the lea becomes REX.B of the mov
    code[0] = 0x48 | rex_b;
    code[1] = 0xc7;
    code[2] = 0xc0 | reg;
    code[3..7].copy_from_slice(&tpoff.to_le_bytes());
    true
}

/// TLS descriptor -> local exec, second half: `call *x@tlsdesc(%rax)` (ff 10) becomes a
/// two-byte nop.
fn relax_tlsdesc_call(buf: &mut [u8], at: usize) -> bool {
    match buf.get_mut(at..at + 2) {
        Some(code) if code == [0xff, 0x10] => {
            code.copy_from_slice(&[0x66, 0x90]);
            true
        }
        _ => false,
    }
}

/// Initial exec -> local exec: `mov x@gottpoff(%rip),%reg` (REX 8b modrm) at
/// `at` = r_offset - 3 becomes `mov $tpoff,%reg`; `add x@gottpoff(%rip),%reg` becomes
/// `add $tpoff,%reg`. Returns false for forms it does not know (the GOT entry is used then).
fn relax_gottpoff_to_le(buf: &mut [u8], at: usize, tpoff: i32) -> bool {
    let Some(code) = buf.get_mut(at..at + 7) else {
        return false;
    };
    let (rex, opcode, modrm) = (code[0], code[1], code[2]);
    if rex & 0xf0 != 0x40 || modrm & 0xc7 != 0x05 {
        return false;
    }
    let reg = (modrm >> 3) & 7;
    let rex_b = (rex >> 2) & 1;
    match opcode {
        0x8b => {
            code[0] = (rex & 0xf8) | rex_b;
            code[1] = 0xc7;
            code[2] = 0xc0 | reg;
        }
        0x03 => {
            code[0] = (rex & 0xf8) | rex_b;
            code[1] = 0x81;
            code[2] = 0xc0 | reg;
        }
        _ => return false,
    }
    code[3..7].copy_from_slice(&tpoff.to_le_bytes());
    true
}

/// Whether a GOTPCRELX/REX_GOTPCRELX load at `off` (the disp32) can be rewritten to use the
/// symbol's address directly: `mov foo@GOTPCREL(%rip),%reg`, `call *foo@GOTPCREL(%rip)` and
/// `jmp *foo@GOTPCREL(%rip)`. The caller checks that the symbol is defined in the output.
#[inline]
fn can_relax_gotpcrelx(data: &[u8], off: usize) -> bool {
    if off < 2 || off + 4 > data.len() {
        return false;
    }
    match (data[off - 2], data[off - 1]) {
        (0x8b, modrm) => modrm & 0xc7 == 0x05,
        (0xff, 0x15) | (0xff, 0x25) => true,
        _ => false,
    }
}

/// Rewrites a relaxable GOT load (see [`can_relax_gotpcrelx`]) and its displacement.
/// `pcrel` is S + A - P for the original displacement field.
fn relax_gotpcrelx(buf: &mut [u8], off: usize, pcrel: i32) {
    match buf[off - 2] {
        0x8b => {
            buf[off - 2] = 0x8d; // mov -> lea
            buf[off..off + 4].copy_from_slice(&pcrel.to_le_bytes());
        }
        _ if buf[off - 1] == 0x15 => {
            buf[off - 2] = 0x67; // addr32 prefix keeps the length
            buf[off - 1] = 0xe8; // call rel32
            buf[off..off + 4].copy_from_slice(&pcrel.to_le_bytes());
        }
        _ => {
            buf[off - 2] = 0xe9; // jmp rel32, then a nop
            buf[off - 1..off + 3].copy_from_slice(&(pcrel.wrapping_add(1)).to_le_bytes());
            buf[off + 3] = 0x90;
        }
    }
}

/// The lazy-binding PLT header: pushes GOT[1] (the link map) and jumps to GOT[2] (the
/// resolver). The rel32 fields at 2 and 8 are filled in by the writer.
const PLT0: [u8; 16] = [
    0xff, 0x35, 0, 0, 0, 0, // push GOT+8(%rip)
    0xff, 0x25, 0, 0, 0, 0, // jmp *GOT+16(%rip)
    0x0f, 0x1f, 0x40, 0x00, // nopl 0(%rax)
];

/// A lazy PLT entry: jumps through its GOT slot, which first points back at the push.
/// Filled in: slot rel32 at 2, relocation index at 7, PLT0 rel32 at 12.
const PLT_ENTRY: [u8; 16] = [
    0xff, 0x25, 0, 0, 0, 0, // jmp *slot(%rip)
    0x68, 0, 0, 0, 0, // push $index
    0xe9, 0, 0, 0, 0, // jmp PLT0
];

/// The PLT of an output marked IBT (or `-z ibtplt`), as mold writes it: every entry and
/// the header start with `endbr64`, the indirect jumps' landing pad. An entry loads its
/// relocation index into %r11 (scratch at a call) rather than pushing it, so that after
/// binding the same entry jumps straight to the function; the lazy GOT slot points at the
/// header, which pushes %r11 and the link map for `_dl_runtime_resolve`. Filled in: GOT+8
/// rel32 at 8, GOT+16 rel32 at 14.
const IBT_PLT0: [u8; 32] = [
    0xf3, 0x0f, 0x1e, 0xfa, // endbr64
    0x41, 0x53, // push %r11
    0xff, 0x35, 0, 0, 0, 0, // push GOT+8(%rip)
    0xff, 0x25, 0, 0, 0, 0, // jmp *GOT+16(%rip)
    0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
];

/// An IBT PLT entry. Filled in: relocation index at 6, slot rel32 at 12.
const IBT_PLT_ENTRY: [u8; 16] = [
    0xf3, 0x0f, 0x1e, 0xfa, // endbr64
    0x41, 0xbb, 0, 0, 0, 0, // mov $index,%r11d
    0xff, 0x25, 0, 0, 0, 0, // jmp *slot(%rip)
];

/// An IBT IPLT entry. Filled in: slot rel32 at 6.
const IBT_IPLT_ENTRY: [u8; 16] = [
    0xf3, 0x0f, 0x1e, 0xfa, // endbr64
    0xff, 0x25, 0, 0, 0, 0, // jmp *slot(%rip)
    0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, // int3 padding
];

/// General dynamic -> initial exec (the symbol lives in another module of an executable):
/// `mov %fs:0,%rax; add x@gottpoff(%rip),%rax` (then a nop in the large model). The rel32
/// at `start + 12` is filled in by the caller relative to `start + 16`.
fn relax_gd_to_ie(buf: &mut [u8], seq: GdSequence) {
    let code = &mut buf[seq.start..];
    code[..12].copy_from_slice(&[
        0x64, 0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0, // mov %fs:0,%rax
        0x48, 0x03, 0x05, // add x@gottpoff(%rip),%rax
    ]);
    if seq.large {
        code[16..22].copy_from_slice(&NOP6);
    }
}

/// TLS descriptor -> initial exec: `lea x@tlsdesc(%rip),%reg` becomes
/// `mov x@gottpoff(%rip),%reg` (only the opcode changes).
fn relax_tlsdesc_lea_to_ie(buf: &mut [u8], at: usize) -> bool {
    match buf.get_mut(at..at + 3) {
        Some(code) if code[0] & 0xf8 == 0x48 && code[1] == 0x8d && code[2] & 0xc7 == 0x05 => {
            code[1] = 0x8b;
            true
        }
        _ => false,
    }
}

/// The x86-64 psABI's target.
pub(crate) struct X86_64;

impl Arch for X86_64 {
    const E_MACHINE: u16 = elf::EM_X86_64;
    const NONE: u32 = elf::R_X86_64_NONE;
    const DYNAMIC: DynTypes = DynTypes {
        abs: elf::R_X86_64_64,
        relative: elf::R_X86_64_RELATIVE,
        glob_dat: elf::R_X86_64_GLOB_DAT,
        jump_slot: elf::R_X86_64_JUMP_SLOT,
        irelative: elf::R_X86_64_IRELATIVE,
        copy: elf::R_X86_64_COPY,
        tpoff: elf::R_X86_64_TPOFF64,
        dtpmod: elf::R_X86_64_DTPMOD64,
        dtpoff: elf::R_X86_64_DTPOFF64,
        tlsdesc: elf::R_X86_64_TLSDESC,
    };
    const PLT_ENTRY_SIZE: u64 = 16;

    #[inline]
    fn describe(r_type: u32) -> RelocKind {
        describe(r_type)
    }

    #[inline]
    fn reloc_name(r_type: u32) -> String {
        reloc_name(r_type)
    }

    #[inline]
    fn fill_nops(gap: &mut [u8]) {
        fill_nops(gap)
    }

    #[inline]
    fn plt_header_size(ibt: bool) -> u64 {
        if ibt {
            IBT_PLT0.len() as u64
        } else {
            PLT0.len() as u64
        }
    }

    #[inline]
    fn write_plt_header(buf: &mut [u8], plt: u64, got_plt: u64, ibt: bool) {
        let rel = |to: u64, from: u64| to.wrapping_sub(plt + from) as u32;
        if ibt {
            buf[..32].copy_from_slice(&IBT_PLT0);
            put_u32(buf, 8, rel(got_plt + 8, 12));
            put_u32(buf, 14, rel(got_plt + 16, 18));
        } else {
            buf[..16].copy_from_slice(&PLT0);
            put_u32(buf, 2, rel(got_plt + 8, 6));
            put_u32(buf, 8, rel(got_plt + 16, 12));
        }
    }

    #[inline]
    fn write_plt_entry(
        buf: &mut [u8],
        entry: u64,
        slot: u64,
        index: u32,
        plt: u64,
        ibt: bool,
    ) -> u64 {
        if ibt {
            buf[..16].copy_from_slice(&IBT_PLT_ENTRY);
            put_u32(buf, 6, index);
            put_u32(buf, 12, slot.wrapping_sub(entry + 16) as u32);
            plt
        } else {
            buf[..16].copy_from_slice(&PLT_ENTRY);
            put_u32(buf, 2, slot.wrapping_sub(entry + 6) as u32);
            put_u32(buf, 7, index);
            put_u32(buf, 12, plt.wrapping_sub(entry + 16) as u32);
            entry + 6
        }
    }

    #[inline]
    fn write_iplt_entry(buf: &mut [u8], entry: u64, slot: u64, ibt: bool) {
        if ibt {
            buf[..16].copy_from_slice(&IBT_IPLT_ENTRY);
            put_u32(buf, 6, slot.wrapping_sub(entry + 10) as u32);
        } else {
            buf[..16].copy_from_slice(&IPLT_ENTRY);
            put_u32(buf, 2, slot.wrapping_sub(entry + 6) as u32);
        }
    }

    #[inline]
    fn can_relax_got_load(r_type: u32, code: &[u8], off: usize) -> bool {
        relaxable_got_load_type(r_type) && can_relax_gotpcrelx(code, off)
    }

    #[inline]
    fn relax_got_load(buf: &mut [u8], off: usize, pcrel: i32) {
        relax_gotpcrelx(buf, off, pcrel)
    }

    #[inline]
    fn relaxed_got_load(r_type: u32, before: &[u8], now: &[u8]) -> Option<(u32, u64)> {
        // The opcode changed (mov -> lea, call/jmp through the GOT -> direct); the jump's
        // displacement moved one byte back.
        let opcode = |code: &[u8]| {
            code.len()
                .checked_sub(2)
                .and_then(|at| code.get(at).copied())
        };
        let (before, now) = (opcode(before)?, opcode(now)?);
        (relaxable_got_load_type(r_type) && now != before)
            .then_some((elf::R_X86_64_PC32, u64::from(now == 0xe9)))
    }

    #[inline]
    fn can_relax_ie_to_le(code: &[u8], off: usize) -> bool {
        if off < 3 || off + 4 > code.len() {
            return false;
        }
        let (rex, opcode, modrm) = (code[off - 3], code[off - 2], code[off - 1]);
        rex & 0xf0 == 0x40 && modrm & 0xc7 == 0x05 && (opcode == 0x8b || opcode == 0x03)
    }

    #[inline]
    fn relax_ie_to_le(buf: &mut [u8], off: usize, tpoff: i64) -> bool {
        Self::can_relax_ie_to_le(buf, off) && relax_gottpoff_to_le(buf, off - 3, tpoff as i32)
    }

    #[inline]
    fn relax_gd_to_ie(buf: &mut [u8], off: usize, got_pcrel: impl Fn(usize) -> u64) -> Option<u64> {
        let seq = gd_sequence(buf, off)?;
        relax_gd_to_ie(buf, seq);
        // The add's rel32, at 12, relative to the end of the instruction.
        put_u32(buf, seq.start + 12, got_pcrel(seq.start + 16) as u32);
        Some(seq.call_reloc_delta())
    }

    #[inline]
    fn relax_gd_to_le(buf: &mut [u8], off: usize, tpoff: i64) -> Option<u64> {
        let seq = gd_sequence(buf, off)?;
        // (The addend is the field's -4 from the end of the lea.)
        relax_gd_to_le(buf, seq, tpoff.wrapping_add(4) as i32);
        Some(seq.call_reloc_delta())
    }

    #[inline]
    fn relax_ld_to_le(buf: &mut [u8], off: usize) -> bool {
        off >= 3 && relax_ld_to_le(buf, off - 3) != 0
    }

    #[inline]
    fn relax_tlsdesc_to_ie(buf: &mut [u8], off: usize) -> bool {
        off >= 3 && relax_tlsdesc_lea_to_ie(buf, off - 3)
    }

    #[inline]
    fn relax_tlsdesc_to_le(buf: &mut [u8], off: usize, tpoff: i64) -> bool {
        off >= 3 && relax_tlsdesc_lea_to_le(buf, off - 3, tpoff.wrapping_add(4) as i32)
    }

    #[inline]
    fn relax_tlsdesc_call(buf: &mut [u8], off: usize) -> bool {
        relax_tlsdesc_call(buf, off)
    }
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
