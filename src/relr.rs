//! `.relr.dyn` (DT_RELR, `-z pack-relative-relocs`): the compact form of RELATIVE
//! relocations that glibc 2.36 and later apply.
//!
//! The format (gABI proposal "Relative relocations", adopted by glibc, FreeBSD, Android):
//! a sequence of 64-bit words. An even word is an address: the word there gets the load
//! bias added, and the next address to consider is the one after it. An odd word is a
//! bitmap of the 63 words that follow: bit `i` (counting from bit 1) set means the word at
//! `next + 8 * (i - 1)` gets the bias; then `next` moves on by 63 words. A word `1` is a
//! bitmap with no bit set: it relocates nothing, which lets a reserved section end in
//! padding (as lld pads it).
//!
//! weld encodes each output section's relocations on its own (as mold does): the encoding
//! of one section depends only on the distances between its relocations, so the layout
//! knows the size before it assigns addresses, and the writer fills in exactly that.

/// Words a bitmap covers after the address before it.
const BITS: u64 = 63;

/// Encodes `addrs` (sorted, even, distinct) into `out`.
pub fn encode(addrs: &[u64], out: &mut Vec<u64>) {
    let mut i = 0;
    while i < addrs.len() {
        let start = addrs[i];
        out.push(start);
        i += 1;
        let mut next = start + 8;
        loop {
            let mut bitmap = 0u64;
            while i < addrs.len() {
                let delta = addrs[i].wrapping_sub(next);
                if addrs[i] < next || !delta.is_multiple_of(8) || delta / 8 >= BITS {
                    break;
                }
                bitmap |= 1 << (delta / 8);
                i += 1;
            }
            if bitmap == 0 {
                break;
            }
            out.push((bitmap << 1) | 1);
            next += 8 * BITS;
        }
    }
}

/// How many words [`encode`] writes for `addrs` (sorted, even, distinct); the same for
/// every even shift of all of them.
pub fn encoded_len(addrs: &[u64]) -> usize {
    let mut out = Vec::new();
    encode(addrs, &mut out);
    out.len()
}

/// The addresses `words` relocate (for the tests).
#[cfg(test)]
pub fn decode(words: &[u64]) -> Vec<u64> {
    let mut addrs = Vec::new();
    let mut next = 0u64;
    for &w in words {
        if w & 1 == 0 {
            addrs.push(w);
            next = w + 8;
        } else {
            for bit in 0..BITS {
                if (w >> (bit + 1)) & 1 != 0 {
                    addrs.push(next + 8 * bit);
                }
            }
            next += 8 * BITS;
        }
    }
    addrs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_shift() {
        let mut addrs: Vec<u64> = vec![0x1000, 0x1008, 0x1010, 0x1100, 0x1102, 0x2000];
        addrs.extend((0..200).map(|i| 0x3000 + 8 * i));
        addrs.extend((0..50).map(|i| 0x9000 + 24 * i));
        addrs.sort();
        let mut words = Vec::new();
        encode(&addrs, &mut words);
        assert_eq!(decode(&words), addrs);
        // 200 consecutive words: one address and ceil(199 / 63) = 4 bitmaps.
        let run: Vec<u64> = (0..200).map(|i| 0x3000 + 8 * i).collect();
        assert_eq!(encoded_len(&run), 5);
        // Shifting by an even amount keeps the size (the layout counts on it).
        for shift in [2u64, 4, 6, 8, 0x1234] {
            let moved: Vec<u64> = addrs.iter().map(|a| a + shift).collect();
            assert_eq!(encoded_len(&moved), words.len());
            let mut w = Vec::new();
            encode(&moved, &mut w);
            assert_eq!(decode(&w), moved);
        }
        // Padding words relocate nothing.
        words.extend([1, 1]);
        assert_eq!(decode(&words), addrs);
    }
}
