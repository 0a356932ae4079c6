//! Strict base64url without padding (RFC 7515 §2): the alphabet `A–Z a–z 0–9 - _`, no
//! `=`, no whitespace, and canonical — a final group's unused bits are zero, and no
//! length leaves a single character over. What `base64`'s `URL_SAFE_NO_PAD` accepts,
//! decoded in one table lookup per character into a caller's buffer (the token path
//! decodes every segment of every call; this is a third of its cost otherwise).

/// Each byte's 6-bit value, or `INVALID`.
const INVALID: u8 = 0xff;
const TABLE: [u8; 256] = {
    let mut t = [INVALID; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut i = 0;
    while i < 64 {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// The decoded length of `n` characters (`None` for a length no encoding has).
pub fn decoded_len(n: usize) -> Option<usize> {
    match n % 4 {
        1 => None,
        r => Some(n / 4 * 3 + r.saturating_sub(1)),
    }
}

/// Decodes `input` into the front of `out`; `None` when `input` is not canonical
/// base64url without padding, or `out` is too short.
pub fn decode(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let len = decoded_len(input.len())?;
    let out = out.get_mut(..len)?;
    let whole = input.len() / 4;
    let (body, tail) = out.split_at_mut(whole * 3);
    let mut bad = 0u8;
    // Eight characters to six bytes at a time, then the last group of four, if any.
    let mut eights = input[..whole * 4].chunks_exact(8);
    let mut sixes = body.chunks_exact_mut(6);
    for (c, o) in (&mut eights).zip(&mut sixes) {
        let mut n: u64 = 0;
        for &ch in c {
            let v = TABLE[ch as usize];
            bad |= v;
            n = (n << 6) | u64::from(v);
        }
        o.copy_from_slice(&n.to_be_bytes()[2..]);
    }
    if let ([a, b, d, e], o) = (eights.remainder(), sixes.into_remainder()) {
        let [a, b, d, e] = [*a, *b, *d, *e].map(|ch| TABLE[ch as usize]);
        bad |= a | b | d | e;
        let n = (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(d) << 6) | u32::from(e);
        o.copy_from_slice(&n.to_be_bytes()[1..]);
    }
    // An invalid character has the top bits set: checked once, after the loop.
    if bad & 0xc0 != 0 {
        return None;
    }
    match input[whole * 4..] {
        [] => {}
        [x, y] => {
            let (a, b) = (TABLE[x as usize], TABLE[y as usize]);
            // Two characters carry one byte: the last 4 bits must be zero.
            if (a | b) & 0xc0 != 0 || b & 0x0f != 0 {
                return None;
            }
            tail[0] = (a << 2) | (b >> 4);
        }
        [x, y, z] => {
            let (a, b, d) = (TABLE[x as usize], TABLE[y as usize], TABLE[z as usize]);
            // Three characters carry two bytes: the last 2 bits must be zero.
            if (a | b | d) & 0xc0 != 0 || d & 0x03 != 0 {
                return None;
            }
            tail[0] = (a << 2) | (b >> 4);
            tail[1] = (b << 4) | (d >> 2);
        }
        _ => return None,
    }
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use proptest::prelude::*;

    fn ours(input: &[u8]) -> Option<Vec<u8>> {
        let mut out = vec![0; input.len()];
        decode(input, &mut out).map(|n| out[..n].to_vec())
    }

    #[test]
    fn non_canonical_forms_are_refused() {
        for bad in ["QQ=", "QR", "QUF", "Q", "QUJD=", "QU JD", "QUJD\n", "+/8"] {
            assert_eq!(ours(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(ours(b"QUI").as_deref(), Some(&b"AB"[..]));
        assert_eq!(ours(b"QUJD").as_deref(), Some(&b"ABC"[..]));
        assert_eq!(ours(b"").as_deref(), Some(&b""[..]));
    }

    proptest! {
        /// Any bytes encoded: decoded back exactly.
        #[test]
        fn round_trips(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(ours(URL_SAFE_NO_PAD.encode(&bytes).as_bytes()), Some(bytes));
        }

        /// Any text, valid or not: accepted exactly when the `base64` crate's strict
        /// engine accepts it, with the same bytes.
        #[test]
        fn agrees_with_the_base64_crate(text in "[A-Za-z0-9_=+/. -]{0,24}") {
            prop_assert_eq!(ours(text.as_bytes()), URL_SAFE_NO_PAD.decode(&text).ok());
        }
    }
}
