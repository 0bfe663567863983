//! Per-architecture knowledge, behind one trait ([`Arch`]): relocation numbers and what
//! each computes ([`Expr`]), field widths and ranges, dynamic relocation types, PLT entries,
//! and the code rewrites (relaxations) the psABI allows. Layout and the writer ask the
//! target through [`Current`] and decide by `Expr`; no relocation number appears outside
//! this folder (a tidy test holds it). One target today: x86_64. ARCHITECTURE.md plans
//! aarch64 against this trait.

pub(crate) mod x86_64;

/// The target weld links for.
pub(crate) type Current = x86_64::X86_64;

/// What a relocation asks the linker to compute, whatever the architecture (lld's
/// `RelExpr`). S is the symbol's address, A the addend, P the place, G the symbol's GOT
/// entry, GOT the `.got.plt` base, TP the thread pointer. The scan and the writer decide
/// by these; the relocation numbers stay in the target's module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expr {
    /// Nothing.
    None,
    /// S + A in a word: an address the loader may have to relocate.
    AbsWord,
    /// S + A in fewer bytes than a word: never relocated at run time.
    Abs,
    /// S + A - P.
    Pc,
    /// A call: the PLT entry + A - P when the symbol may be preempted, else S + A - P.
    PltPc,
    /// G + A - P (GOT loads, relaxable or not).
    GotPc,
    /// G + A - GOT.
    GotFromBase,
    /// S + A - GOT.
    FromGotBase,
    /// The PLT entry (or S when nothing preempts it) + A - GOT: the large model's call.
    PltFromGotBase,
    /// GOT + A - P.
    GotBasePc,
    /// The symbol's size + A.
    Size,
    /// S + A - TP (local exec).
    TpOff,
    /// S + A - the TLS block's start (TP-relative in an executable's code).
    DtpOff,
    /// The module id (1 in an executable).
    DtpMod,
    /// Initial exec: the GOT entry holding the TP offset, PC-relative (or local exec).
    GotTpOffPc,
    /// General dynamic: `__tls_get_addr` with a GOT pair (or relaxed to IE or LE).
    TlsGd,
    /// Local dynamic (or relaxed to LE).
    TlsLd,
    /// A TLS descriptor's GOT entry, PC-relative (or relaxed to IE or LE).
    TlsDesc,
    /// The call through a TLS descriptor (a NOP after relaxation).
    TlsDescCall,
    /// A type weld does not handle.
    Unsupported,
}

/// What a relocation type is, for the scan and the writer: what it computes, how many
/// bytes its field has, and which values fit it. A target describes each of its types once
/// (a table, so that the writer's question costs one load).
#[derive(Clone, Copy, Debug)]
pub struct RelocKind {
    pub expr: Expr,
    pub width: u8,
    pub range: FieldRange,
}

/// The values a relocation's field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldRange {
    /// Any (a word, or a field the psABI lets wrap).
    Any,
    /// [0, 2^32).
    Unsigned32,
    /// [-2^31, 2^31).
    Signed32,
    /// 16 bits, signed or unsigned.
    Either16,
    /// [-2^15, 2^15).
    Signed16,
    /// 8 bits, signed or unsigned.
    Either8,
    /// [-2^7, 2^7).
    Signed8,
}

impl FieldRange {
    /// Whether `value` fits (`Err`: the range it must be in, for the message).
    #[inline]
    pub fn check(self, value: u64) -> Result<(), &'static str> {
        let v = value as i64;
        let (ok, range) = match self {
            FieldRange::Any => return Ok(()),
            FieldRange::Unsigned32 => (value <= u64::from(u32::MAX), "[0, 2^32)"),
            FieldRange::Signed32 => (i32::try_from(v).is_ok(), "[-2^31, 2^31)"),
            FieldRange::Either16 => (
                value <= u64::from(u16::MAX) || (-32768..0).contains(&v),
                "16 bits",
            ),
            FieldRange::Signed16 => (i16::try_from(v).is_ok(), "16 bits"),
            FieldRange::Either8 => (
                value <= u64::from(u8::MAX) || (-128..0).contains(&v),
                "8 bits",
            ),
            FieldRange::Signed8 => (i8::try_from(v).is_ok(), "8 bits"),
        };
        if ok {
            Ok(())
        } else {
            Err(range)
        }
    }
}

/// The dynamic relocation types a target's outputs carry.
pub struct DynTypes {
    /// A word: the symbol's address + A.
    pub abs: u32,
    /// A word: the load bias + A.
    pub relative: u32,
    /// A GOT entry: the symbol's address.
    pub glob_dat: u32,
    /// A `.got.plt` entry: the function's address, bound lazily or now.
    pub jump_slot: u32,
    /// A word: what the IFUNC resolver at the load bias + A returns.
    pub irelative: u32,
    /// The symbol's bytes copied into the executable.
    pub copy: u32,
    /// The symbol's offset from the thread pointer.
    pub tpoff: u32,
    /// The symbol's module id.
    pub dtpmod: u32,
    /// The symbol's offset in its module's TLS block.
    pub dtpoff: u32,
    /// A TLS descriptor.
    pub tlsdesc: u32,
}

/// A target. Every function is a pure computation on numbers and bytes: none knows about
/// layout, symbols or files. `off` arguments are the relocated field's offset in `buf`
/// (the relocation's `r_offset` in the section's bytes).
pub trait Arch {
    /// `e_machine` of the inputs it reads and the output it writes.
    const E_MACHINE: u16;
    /// The relocation that does nothing (a dropped one, or padding).
    const NONE: u32;
    const DYNAMIC: DynTypes;
    /// The size of a PLT entry, and of an IPLT one.
    const PLT_ENTRY_SIZE: u64;

    /// What relocation `r_type` computes, its field's width and range.
    fn describe(r_type: u32) -> RelocKind;
    /// What relocation `r_type` computes.
    #[inline]
    fn classify(r_type: u32) -> Expr {
        Self::describe(r_type).expr
    }
    /// How many bytes relocation `r_type` writes.
    #[inline]
    fn width(r_type: u32) -> usize {
        usize::from(Self::describe(r_type).width)
    }
    /// The relocation's name, for messages.
    fn reloc_name(r_type: u32) -> String;
    /// Fills a gap in code with no-ops.
    fn fill_nops(gap: &mut [u8]);

    /// The size of the PLT's header (`ibt`: the form with landing pads).
    fn plt_header_size(ibt: bool) -> u64;
    /// Writes the PLT header at `buf[0..]`, at address `plt`, for `.got.plt` at `got_plt`.
    fn write_plt_header(buf: &mut [u8], plt: u64, got_plt: u64, ibt: bool);
    /// Writes PLT entry `index` (address `entry`, GOT slot at `slot`) at `buf[0..]`;
    /// returns what the slot holds until the symbol is bound.
    fn write_plt_entry(
        buf: &mut [u8],
        entry: u64,
        slot: u64,
        index: u32,
        plt: u64,
        ibt: bool,
    ) -> u64;
    /// Writes an IPLT entry (address `entry`, GOT slot at `slot`) at `buf[0..]`.
    fn write_iplt_entry(buf: &mut [u8], entry: u64, slot: u64, ibt: bool);

    /// Whether the GOT load of type `r_type` at `off` in `code` may become an address
    /// computation (the caller checks that the symbol is defined in the output).
    fn can_relax_got_load(r_type: u32, code: &[u8], off: usize) -> bool;
    /// Rewrites such a load; `pcrel` is S + A - P for the original field.
    fn relax_got_load(buf: &mut [u8], off: usize, pcrel: i32);
    /// `--emit-relocs`: if the GOT load whose field starts at the end of `now` was relaxed
    /// (the code before the field differs from `before`, the input's), the relocation type
    /// it became and how many bytes earlier its field starts now.
    fn relaxed_got_load(r_type: u32, before: &[u8], now: &[u8]) -> Option<(u32, u64)>;
    /// Whether the initial-exec access at `off` can become local exec.
    fn can_relax_ie_to_le(code: &[u8], off: usize) -> bool;
    /// Initial exec -> local exec; `tpoff` is S - TP. False if the code is not known.
    fn relax_ie_to_le(buf: &mut [u8], off: usize, tpoff: i64) -> bool;
    /// General dynamic -> initial exec; `got_pcrel(at)` is the TP-offset GOT entry relative
    /// to `buf[at]`'s address. Returns how far after this relocation the call's
    /// relocation (now void) is, or None if the code is not known.
    fn relax_gd_to_ie(buf: &mut [u8], off: usize, got_pcrel: impl Fn(usize) -> u64) -> Option<u64>;
    /// General dynamic -> local exec; `tpoff` is S + A - TP. As [`Arch::relax_gd_to_ie`].
    fn relax_gd_to_le(buf: &mut [u8], off: usize, tpoff: i64) -> Option<u64>;
    /// Local dynamic -> local exec. True if rewritten (the call's relocation, next, is
    /// void then).
    fn relax_ld_to_le(buf: &mut [u8], off: usize) -> bool;
    /// TLS descriptor -> initial exec (the field then takes the GOT entry's offset).
    fn relax_tlsdesc_to_ie(buf: &mut [u8], off: usize) -> bool;
    /// TLS descriptor -> local exec; `tpoff` is S + A - TP.
    fn relax_tlsdesc_to_le(buf: &mut [u8], off: usize, tpoff: i64) -> bool;
    /// The call through a TLS descriptor, made a no-op.
    fn relax_tlsdesc_call(buf: &mut [u8], off: usize) -> bool;
}

#[cfg(test)]
mod tests {
    use super::{Arch, Current, Expr, FieldRange};
    use object::elf;

    #[test]
    fn field_ranges() {
        let neg = |v: i64| v as u64;
        assert!(FieldRange::Unsigned32.check(u64::from(u32::MAX)).is_ok());
        assert_eq!(FieldRange::Unsigned32.check(1 << 32), Err("[0, 2^32)"));
        assert!(FieldRange::Signed32.check(neg(-(1 << 31))).is_ok());
        assert!(FieldRange::Signed32.check(1 << 31).is_err());
        assert!(FieldRange::Either16.check(0xffff).is_ok());
        assert!(FieldRange::Either16.check(neg(-32768)).is_ok());
        assert!(FieldRange::Either16.check(0x10000).is_err());
        assert!(FieldRange::Signed16.check(0x8000).is_err());
        assert!(FieldRange::Signed8.check(neg(-128)).is_ok());
        assert!(FieldRange::Signed8.check(128).is_err());
        assert!(FieldRange::Either8.check(0xff).is_ok());
        assert!(FieldRange::Any.check(u64::MAX).is_ok());
    }

    #[test]
    fn x86_64_kinds() {
        let pc32 = Current::describe(elf::R_X86_64_PC32);
        assert_eq!(
            (pc32.expr, pc32.width, pc32.range),
            (Expr::Pc, 4, FieldRange::Signed32)
        );
        assert_eq!(Current::width(elf::R_X86_64_TLSDESC_CALL), 0);
        assert_eq!(
            Current::describe(elf::R_X86_64_32).range,
            FieldRange::Unsigned32
        );
        assert_eq!(
            Current::describe(elf::R_X86_64_SIZE32).range,
            FieldRange::Any
        );
        let unknown = Current::describe(200);
        assert_eq!((unknown.expr, unknown.width), (Expr::Unsupported, 4));
    }
}
