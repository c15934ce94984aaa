//! RA-TLS: attestation evidence carried in the TLS certificate.
//!
//! A Cloister host's TLS certificate is self-signed and carries a cert-bound
//! [`EvidenceBundle`] in an X.509 extension. Its REPORT_DATA binds the certificate's
//! key (SHA-256 of the SubjectPublicKeyInfo) and the measurement log
//! ([`crate::binding::report_data_cert_mode`]), so the evidence authenticates the key that
//! signs the TLS handshake. Session-bound evidence, fetched over the established session,
//! then proves that this very session ends inside the attested VM (see
//! [`crate::binding`]); this module only deals with the certificate.
//!
//! # Exact encoding of the extension
//!
//! * **OID** `2.23.133.5.4.9` ([`EVIDENCE_EXTENSION_OID`]): TCG DICE
//!   `tcg-dice-conceptual-message-wrapper`, as used by the CCC interoperable RA-TLS.
//!   Not critical.
//! * **extnValue** (the OCTET STRING's content) is the DER encoding of the CMW in its JSON
//!   form (the `json UTF8String` choice of the RATS conceptual message wrapper,
//!   draft-ietf-rats-msg-wrap): a DER `UTF8String` (tag `0x0C`) whose text is the JSON
//!   record
//!
//!   ```text
//!   ["application/vnd.cloister.evidence+json", "<base64url, no padding, of the bundle JSON>"]
//!   ```
//!
//!   where the bundle is a `cloister-evidence/v1` document ([`EvidenceBundle::to_json`])
//!   with `"binding": {"mode": "cert", "spki_sha256": ...}`.
//!
//! [`encode_evidence_extension`] produces the extnValue and [`decode_evidence_extension`]
//! decodes it; the verifier (`cloister_verifier::ratls`) extracts it from a certificate and
//! verifies it against a policy.

use base64::Engine;
use cloister_display::{Excerpt, Quoted};

use crate::bundle::{BundleError, EvidenceBundle};

/// The OID of the evidence extension, as arcs: `2.23.133.5.4.9`.
pub const EVIDENCE_EXTENSION_OID: &[u64] = &[2, 23, 133, 5, 4, 9];
/// The OID of the evidence extension in dotted form.
pub const EVIDENCE_EXTENSION_OID_STR: &str = "2.23.133.5.4.9";
/// The CMW media type of the wrapped evidence.
pub const CMW_MEDIA_TYPE: &str = "application/vnd.cloister.evidence+json";
/// Upper bound on the size of the extension's value accepted by [`decode_evidence_extension`].
pub const MAX_EXTENSION_LEN: usize = 64 * 1024;

/// Why the value of an evidence extension does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtensionError {
    /// The extension's value is not a CMW JSON record of the expected type.
    #[error("the evidence extension ({EVIDENCE_EXTENSION_OID_STR}) is malformed: {}", Excerpt(.0))]
    Malformed(String),
    /// The wrapped bundle does not decode.
    #[error("the evidence in the TLS certificate does not decode")]
    Bundle(#[from] BundleError),
}

fn der_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// The extnValue of the evidence extension for `bundle` (see the module documentation).
pub fn encode_evidence_extension(bundle: &EvidenceBundle) -> Vec<u8> {
    let payload =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bundle.to_json().as_bytes());
    // Both strings are plain ASCII without characters that need escaping.
    let record = format!("[\"{CMW_MEDIA_TYPE}\",\"{payload}\"]");
    let mut out = Vec::with_capacity(record.len() + 6);
    out.push(0x0C); // UTF8String
    der_length(record.len(), &mut out);
    out.extend_from_slice(record.as_bytes());
    out
}

/// Decodes the extnValue of the evidence extension into a bundle.
pub fn decode_evidence_extension(value: &[u8]) -> Result<EvidenceBundle, ExtensionError> {
    let bad = |m: &str| ExtensionError::Malformed(m.to_owned());
    if value.len() > MAX_EXTENSION_LEN {
        return Err(bad("larger than 64 KiB"));
    }
    let text = der_utf8_string(value)?;
    let record: Vec<String> =
        serde_json::from_str(text).map_err(|_| bad("not a JSON CMW record [type, value]"))?;
    let [media_type, value] = <[String; 2]>::try_from(record)
        .map_err(|_| bad("the CMW record must have exactly two members"))?;
    if media_type != CMW_MEDIA_TYPE {
        return Err(ExtensionError::Malformed(format!(
            "CMW type {}, expected {CMW_MEDIA_TYPE:?}",
            Quoted(&media_type)
        )));
    }
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value.as_bytes())
        .map_err(|_| bad("the CMW value is not base64url without padding"))?;
    Ok(EvidenceBundle::from_json(&json)?)
}

/// The text of a DER `UTF8String` that is the whole of `value`: tag 0x0C, a definite length in
/// its shortest form, exactly that many bytes of UTF-8, nothing after.
///
/// Written here rather than taken from an ASN.1 crate: it is one fixed TLV, and this crate
/// is linked into the host, which should carry no X.509 or ASN.1 parser.
fn der_utf8_string(value: &[u8]) -> Result<&str, ExtensionError> {
    let bad = |m: &str| ExtensionError::Malformed(m.to_owned());
    let not_utf8 = || bad("not a DER UTF8String");
    let (&tag, rest) = value.split_first().ok_or_else(not_utf8)?;
    if tag != 0x0C {
        return Err(not_utf8());
    }
    let (&first, rest) = rest.split_first().ok_or_else(not_utf8)?;
    let (len, body) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7F);
        // 0x80 is BER's indefinite length; DER allows only what fits our bound.
        if n == 0 || n > 3 || rest.len() < n {
            return Err(not_utf8());
        }
        let (len_bytes, body) = rest.split_at(n);
        if len_bytes[0] == 0 {
            return Err(bad("non-minimal DER length"));
        }
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if len < 0x80 {
            return Err(bad("non-minimal DER length"));
        }
        (len, body)
    };
    if body.len() < len {
        return Err(bad("truncated UTF8String"));
    }
    if body.len() > len {
        return Err(bad("trailing bytes after the UTF8String"));
    }
    std::str::from_utf8(body).map_err(|_| bad("the UTF8String is not valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::BundleBinding;

    fn bundle() -> EvidenceBundle {
        EvidenceBundle {
            report: vec![1; 10],
            vek_der: vec![2; 3],
            ask_der: None,
            ark_der: None,
            measurement_log: br#"{"entries":[],"format":"cloister-measurement-log/v1"}"#.to_vec(),
            binding: BundleBinding::Cert {
                spki_sha256: [7; 32],
            },
            transparency: None,
        }
    }

    #[test]
    fn extension_round_trip() -> Result<(), ExtensionError> {
        let b = bundle();
        let ext = encode_evidence_extension(&b);
        assert_eq!(ext[0], 0x0C);
        // Long-form length: the record is longer than 127 bytes.
        assert_eq!(ext[1], 0x82);
        assert_eq!(decode_evidence_extension(&ext)?, b);
        Ok(())
    }

    #[test]
    fn malformed_extensions_are_named() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![0x04, 0x01, 0x00], "UTF8String"),
            (vec![0x0C, 0x02, b'[', b']'], "two members"),
            (vec![0x0C, 0x01, b'x'], "JSON CMW record"),
            (
                {
                    let mut v = vec![0x0C, 0x07];
                    v.extend_from_slice(b"[\"a\",1]");
                    v
                },
                "JSON CMW record",
            ),
            (
                {
                    let text = b"[\"text/plain\",\"AA\"]";
                    let mut v = vec![0x0C, text.len() as u8];
                    v.extend_from_slice(text);
                    v
                },
                "CMW type",
            ),
            (
                {
                    let text = format!("[\"{CMW_MEDIA_TYPE}\",\"!!\"]");
                    let mut v = vec![0x0C, text.len() as u8];
                    v.extend_from_slice(text.as_bytes());
                    v
                },
                "base64url",
            ),
        ];
        for (value, expected) in cases {
            match decode_evidence_extension(&value) {
                Err(e) => assert!(e.to_string().contains(expected), "{e} vs {expected}"),
                Ok(_) => panic!("accepted malformed extension {value:?}"),
            }
        }
        let mut trailing = encode_evidence_extension(&bundle());
        trailing.push(0);
        assert!(matches!(
            decode_evidence_extension(&trailing),
            Err(ExtensionError::Malformed(m)) if m.contains("trailing")
        ));
    }

    #[test]
    fn der_lengths_must_be_definite_minimal_and_exact() {
        let ext = encode_evidence_extension(&bundle());
        // Indefinite (BER) and non-minimal long-form lengths.
        for bad in [
            vec![0x0C, 0x80, b'a'],
            vec![0x0C, 0x81, 0x01, b'a'],
            vec![0x0C, 0x82, 0x00, 0x81],
        ] {
            assert!(
                matches!(
                    decode_evidence_extension(&bad),
                    Err(ExtensionError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
        // Truncated.
        assert!(matches!(
            decode_evidence_extension(&ext[..ext.len() - 1]),
            Err(ExtensionError::Malformed(m)) if m.contains("truncated")
        ));
        // Not UTF-8.
        assert!(matches!(
            decode_evidence_extension(&[0x0C, 0x02, 0xC3, 0x28]),
            Err(ExtensionError::Malformed(m)) if m.contains("UTF-8")
        ));
        assert!(decode_evidence_extension(&[]).is_err());
        assert!(decode_evidence_extension(&[0x0C]).is_err());
    }
}
