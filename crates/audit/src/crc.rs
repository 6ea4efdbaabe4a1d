//! CRC-32C (Castagnoli), table-driven slicing-by-8, used to detect torn or damaged frames.
//!
//! The CRC is not a security mechanism (an attacker recomputes it); it tells a torn tail left
//! by a crash apart from a complete record, and gives the verifier a precise message when a
//! record was edited without care. Tamper evidence comes from the Merkle tree and the hash
//! chain.

use std::sync::LazyLock;

const POLY: u32 = 0x82F6_3B78;

fn make_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut base = [0u32; 256];
    for (i, slot) in (0u32..).zip(base.iter_mut()) {
        let mut c = i;
        for _ in 0..8 {
            c = if c & 1 == 1 { (c >> 1) ^ POLY } else { c >> 1 };
        }
        *slot = c;
    }
    let mut prev = base;
    for row in &mut t {
        *row = prev;
        for (p, out) in prev.iter_mut().zip(row.iter()) {
            let low = base.get((*out & 0xff) as usize).copied().unwrap_or(0);
            *p = (*out >> 8) ^ low;
        }
    }
    t
}

static TABLES: LazyLock<[[u32; 256]; 8]> = LazyLock::new(make_tables);

#[inline(always)]
fn t(tables: &[[u32; 256]; 8], table: usize, byte: u32) -> u32 {
    // `byte` is always < 256 and `table` < 8: the `get`s never fail and compile to plain loads.
    tables
        .get(table)
        .and_then(|row| row.get((byte & 0xff) as usize))
        .copied()
        .unwrap_or(0)
}

/// CRC-32C of `data`.
#[must_use]
pub fn crc32c(data: &[u8]) -> u32 {
    let tables: &[[u32; 256]; 8] = &TABLES;
    let mut crc = !0u32;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let Ok(w) = <[u8; 8]>::try_from(c) else {
            continue;
        };
        let v = u64::from_le_bytes(w);
        let lo = (v as u32) ^ crc;
        let hi = (v >> 32) as u32;
        crc = t(tables, 7, lo)
            ^ t(tables, 6, lo >> 8)
            ^ t(tables, 5, lo >> 16)
            ^ t(tables, 4, lo >> 24)
            ^ t(tables, 3, hi)
            ^ t(tables, 2, hi >> 8)
            ^ t(tables, 1, hi >> 16)
            ^ t(tables, 0, hi >> 24);
    }
    for &b in chunks.remainder() {
        crc = (crc >> 8) ^ t(tables, 0, (crc ^ u32::from(b)) & 0xff);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        // RFC 3720 B.4: 32 bytes of zeros.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
    }
}
