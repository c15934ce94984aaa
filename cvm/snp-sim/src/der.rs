//! A minimal DER writer: just what the simulator's X.509 certificates need.

/// Tags used here.
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const BIT_STRING: u8 = 0x03;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const OID: u8 = 0x06;
pub(crate) const UTF8_STRING: u8 = 0x0C;
pub(crate) const PRINTABLE_STRING: u8 = 0x13;
pub(crate) const IA5_STRING: u8 = 0x16;
pub(crate) const UTC_TIME: u8 = 0x17;
pub(crate) const GENERALIZED_TIME: u8 = 0x18;
pub(crate) const BOOLEAN: u8 = 0x01;
pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;

/// One TLV with a definite, minimal length.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = Vec::with_capacity(len + 6);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        let significant = &bytes[skip..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

/// A SEQUENCE of already-encoded elements.
pub(crate) fn seq(items: &[&[u8]]) -> Vec<u8> {
    tlv(SEQUENCE, &items.concat())
}

/// An OBJECT IDENTIFIER from its arcs (the first two must be valid: 0..=2, and < 40 unless 2).
pub(crate) fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut content = Vec::new();
    let (first, rest) = match arcs {
        [a, b, rest @ ..] => (a * 40 + b, rest),
        _ => (0, &[][..]),
    };
    for arc in std::iter::once(first).chain(rest.iter().copied()) {
        let mut groups = vec![(arc & 0x7F) as u8];
        let mut v = arc >> 7;
        while v > 0 {
            groups.push(0x80 | (v & 0x7F) as u8);
            v >>= 7;
        }
        content.extend(groups.iter().rev());
    }
    tlv(OID, &content)
}

/// A non-negative INTEGER from big-endian magnitude bytes (minimal encoding).
pub(crate) fn uint(be: &[u8]) -> Vec<u8> {
    let skip = be.iter().take_while(|&&b| b == 0).count();
    let mag = &be[skip..];
    let mut content = Vec::with_capacity(mag.len() + 1);
    if mag.first().is_none_or(|&b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(mag);
    tlv(INTEGER, &content)
}

/// A BIT STRING with no unused bits.
pub(crate) fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(bytes.len() + 1);
    content.push(0);
    content.extend_from_slice(bytes);
    tlv(BIT_STRING, &content)
}

/// `[n] EXPLICIT` around one encoded element.
pub(crate) fn explicit(n: u8, inner: &[u8]) -> Vec<u8> {
    tlv(0xA0 | n, inner)
}

/// An X.509 Time for Unix seconds: UTCTime for 1950..=2049, GeneralizedTime otherwise
/// (RFC 5280 section 4.1.2.5). Seconds before 0000-01-01 or after 9999 are clamped.
pub(crate) fn time(unix: i64) -> Vec<u8> {
    let (y, mo, d, h, mi, s) = civil(unix);
    if (1950..2050).contains(&y) {
        let text = format!("{:02}{:02}{:02}{:02}{:02}{:02}Z", y % 100, mo, d, h, mi, s);
        tlv(UTC_TIME, text.as_bytes())
    } else {
        let text = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z");
        tlv(GENERALIZED_TIME, text.as_bytes())
    }
}

/// Unix seconds to (year, month, day, hour, minute, second), proleptic Gregorian, UTC
/// (H. Hinnant's `civil_from_days`).
fn civil(unix: i64) -> (i64, u32, u32, u32, u32, u32) {
    // Clamp to 0000-01-01 .. 9999-12-31T23:59:59.
    let unix = unix.clamp(-62_167_219_200, 253_402_300_799);
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        m,
        d,
        (secs / 3600) as u32,
        ((secs % 3600) / 60) as u32,
        (secs % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        assert_eq!(tlv(OCTET_STRING, &[]), vec![0x04, 0x00]);
        assert_eq!(&tlv(OCTET_STRING, &[0; 0x80])[..3], &[0x04, 0x81, 0x80]);
        assert_eq!(
            &tlv(OCTET_STRING, &[0; 0x1234])[..4],
            &[0x04, 0x82, 0x12, 0x34]
        );
    }

    #[test]
    fn oids_and_integers() {
        // 1.2.840.10045.4.3.3 ecdsa-with-SHA384
        assert_eq!(
            oid(&[1, 2, 840, 10045, 4, 3, 3]),
            vec![0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x03]
        );
        // 1.3.6.1.4.1.3704.1.3.1
        assert_eq!(
            oid(&[1, 3, 6, 1, 4, 1, 3704, 1, 3, 1]),
            vec![0x06, 0x0A, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x9C, 0x78, 0x01, 0x03, 0x01]
        );
        assert_eq!(uint(&[0]), vec![0x02, 0x01, 0x00]);
        assert_eq!(uint(&[]), vec![0x02, 0x01, 0x00]);
        assert_eq!(uint(&[0, 0, 0x7F]), vec![0x02, 0x01, 0x7F]);
        assert_eq!(uint(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
    }

    #[test]
    fn times() {
        assert_eq!(time(0), tlv(UTC_TIME, b"700101000000Z"));
        // 2025-09-01T00:00:00Z
        assert_eq!(time(1_756_684_800), tlv(UTC_TIME, b"250901000000Z"));
        // 2050-01-01T00:00:00Z
        assert_eq!(
            time(2_524_608_000),
            tlv(GENERALIZED_TIME, b"20500101000000Z")
        );
        // 2024-02-29T12:34:56Z
        assert_eq!(time(1_709_210_096), tlv(UTC_TIME, b"240229123456Z"));
    }
}
