//! Lower-case hexadecimal for hashes, key ids and public key files (too small for a crate).

/// `bytes` as lower-case hex, two digits per byte.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * bytes.len());
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xF)] as char);
    }
    s
}

/// Decodes exactly `N` bytes from `2·N` hex digits (either case); `None` otherwise.
pub fn decode<const N: usize>(s: &str) -> Option<[u8; N]> {
    let digits = s.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_bad_input() {
        let b = [0x00, 0x7f, 0x80, 0xff, 0x1a];
        assert_eq!(encode(&b), "007f80ff1a");
        assert_eq!(decode::<5>("007F80ff1A"), Some(b));
        assert_eq!(decode::<5>("007f80ff1"), None);
        assert_eq!(decode::<2>("0g00"), None);
        assert_eq!(decode::<1>("é"), None);
    }
}
