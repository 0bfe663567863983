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
