//! Masking (RFC 6455 §5.3), applied a machine word at a time.

/// XORs `buf` in place with the 4-byte `mask`, starting at mask offset 0.
///
/// Works on 8-byte words (LLVM vectorises the loop further); only the tail
/// shorter than a word is handled byte by byte. Masking and unmasking are the
/// same operation.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let word = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        let value = u64::from_ne_bytes(bytes) ^ word;
        chunk.copy_from_slice(&value.to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::apply_mask;

    fn naive(buf: &mut [u8], mask: [u8; 4]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }

    #[test]
    fn word_mask_matches_byte_mask_for_every_length() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        for len in 0..100 {
            let original: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut fast = original.clone();
            let mut slow = original.clone();
            apply_mask(&mut fast, mask);
            naive(&mut slow, mask);
            assert_eq!(fast, slow, "length {len}");
            apply_mask(&mut fast, mask);
            assert_eq!(fast, original, "masking twice restores length {len}");
        }
    }
}
