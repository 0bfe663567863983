//! ELF records as bytes: the little-endian stores and the section header, shared by every
//! writer (the output's, `-r`'s and the LTO plugin's stand-in objects).

pub(crate) fn put_u16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// An ELF64 section header, as bytes (the one encoder: the output's, `-r`'s and the LTO
/// stand-in object's).
#[allow(clippy::too_many_arguments)]
pub(crate) fn section_header(
    name: u32,
    sh_type: u32,
    flags: u64,
    addr: u64,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
    align: u64,
    entsize: u64,
) -> [u8; 64] {
    let mut h = [0u8; 64];
    put_u32(&mut h, 0, name);
    put_u32(&mut h, 4, sh_type);
    put_u64(&mut h, 8, flags);
    put_u64(&mut h, 16, addr);
    put_u64(&mut h, 24, offset);
    put_u64(&mut h, 32, size);
    put_u32(&mut h, 40, link);
    put_u32(&mut h, 44, info);
    put_u64(&mut h, 48, align);
    put_u64(&mut h, 56, entsize);
    h
}

/// An `Elf64_Rela` entry, as bytes: the one encoder of `.rela.dyn`, `-r`'s and
/// `--emit-relocs`' relocation sections.
pub(crate) fn rela(offset: u64, r_type: u32, sym: u32, addend: u64) -> [u8; 24] {
    let mut e = [0u8; 24];
    put_u64(&mut e, 0, offset);
    put_u64(&mut e, 8, (u64::from(sym) << 32) | u64::from(r_type));
    put_u64(&mut e, 16, addend);
    e
}

/// An `Elf64_Rela` entry read back: (offset, type, symbol, addend). `e` is 24 bytes.
pub(crate) fn read_rela(e: &[u8]) -> (u64, u32, u32, u64) {
    let word = |i: usize| u64::from_le_bytes(e[i..i + 8].try_into().unwrap());
    let info = word(8);
    (word(0), info as u32, (info >> 32) as u32, word(16))
}

/// The header of a `.note.gnu.build-id` note with an `id_len`-byte descriptor, at `at`
/// (the descriptor follows at `at + 16`).
pub(crate) fn build_id_note_header(buf: &mut [u8], at: usize, id_len: usize) {
    put_u32(buf, at, 4);
    put_u32(buf, at + 4, id_len as u32);
    put_u32(buf, at + 8, object::elf::NT_GNU_BUILD_ID);
    buf[at + 12..at + 16].copy_from_slice(b"GNU\0");
}

#[cfg(test)]
mod tests {
    #[test]
    fn rela_round_trips() {
        let e = super::rela(0x1234, 8, 7, u64::MAX - 3);
        assert_eq!(super::read_rela(&e), (0x1234, 8, 7, u64::MAX - 3));
    }
}
