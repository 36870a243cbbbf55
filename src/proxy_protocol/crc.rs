//! CRC32C (Castagnoli), the checksum a v2 header may carry in a TLV: reflected polynomial
//! 0x82F63B78, initial value and final XOR 0xFFFFFFFF. A byte-wise table built at compile
//! time; headers are at most a few KiB, so nothing faster is needed.

const TABLE: [u32; 256] = table();

const fn table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// The CRC32C of the concatenation of `parts`.
pub fn crc32c(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for part in parts {
        for &byte in *part {
            crc = TABLE[((crc ^ u32::from(byte)) & 0xFF) as usize] ^ (crc >> 8);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::crc32c;

    #[test]
    fn known_vectors() {
        assert_eq!(crc32c(&[b"123456789"]), 0xE306_9283);
        assert_eq!(
            crc32c(&[b"1234", b"56789"]),
            0xE306_9283,
            "parts concatenate"
        );
        assert_eq!(crc32c(&[&[0u8; 32]]), 0x8A91_36AA);
        assert_eq!(crc32c(&[]), 0);
    }
}
