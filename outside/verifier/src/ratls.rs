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
//! [`encode_evidence_extension`] produces the extnValue, [`evidence_from_certificate`]
//! extracts and decodes it, and [`verify_certificate`] verifies it against a policy.

use std::time::SystemTime;

use cloister_display::Excerpt;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use cloister_protocol::ratls::{self, ExtensionError};
pub use cloister_protocol::ratls::{
    encode_evidence_extension, CMW_MEDIA_TYPE, EVIDENCE_EXTENSION_OID, EVIDENCE_EXTENSION_OID_STR,
    MAX_EXTENSION_LEN,
};

use crate::binding::spki_sha256;
use crate::bundle::{verify_bundle, BundleBinding, BundleError, BundleVerifyError};
use crate::{EvidenceBundle, Policy, TrustedRoots, VerifiedEvidence};

/// Why a certificate does not carry usable evidence. Every variant names what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RaTlsError {
    /// The certificate is not DER X.509.
    #[error("the TLS certificate is not a valid X.509 certificate: {}", Excerpt(.0))]
    Certificate(String),
    /// The certificate has no evidence extension.
    #[error(
        "the TLS certificate has no attestation evidence extension ({EVIDENCE_EXTENSION_OID_STR})"
    )]
    MissingExtension,
    /// The certificate has the extension more than once.
    #[error("the TLS certificate carries the evidence extension ({EVIDENCE_EXTENSION_OID_STR}) more than once")]
    DuplicateExtension,
    /// The extension's value is not a CMW JSON record of the expected type.
    #[error("the evidence extension ({EVIDENCE_EXTENSION_OID_STR}) is malformed: {}", Excerpt(.0))]
    MalformedExtension(String),
    /// The wrapped bundle does not decode.
    #[error("the evidence in the TLS certificate does not decode")]
    Bundle(#[from] BundleError),
    /// The bundle in a certificate must be cert-bound.
    #[error("the evidence in the TLS certificate is session-bound; a certificate must carry cert-bound evidence")]
    NotCertBound,
    /// The bundle is bound to another key than the certificate's.
    #[error("the evidence in the TLS certificate is bound to key sha256:{bound}, but the certificate's key is sha256:{actual}")]
    KeyMismatch {
        /// SHA-256 of the SPKI named by the bundle.
        bound: String,
        /// SHA-256 of the certificate's SPKI.
        actual: String,
    },
    /// The certificate is not valid at the verification time (stale or not yet valid).
    #[error("the TLS certificate is valid from {not_before} to {not_after} (Unix seconds), not at {now}")]
    CertificateNotValidNow {
        /// notBefore, Unix seconds.
        not_before: i64,
        /// notAfter, Unix seconds.
        not_after: i64,
        /// The verification time, Unix seconds.
        now: i64,
    },
    /// The evidence failed verification.
    #[error(transparent)]
    Verify(#[from] BundleVerifyError),
}

impl From<ExtensionError> for RaTlsError {
    fn from(e: ExtensionError) -> Self {
        match e {
            ExtensionError::Malformed(m) => RaTlsError::MalformedExtension(m),
            ExtensionError::Bundle(b) => RaTlsError::Bundle(b),
            // ExtensionError is non_exhaustive; a future variant is still malformed.
            other => RaTlsError::MalformedExtension(other.to_string()),
        }
    }
}

/// The evidence extracted from an RA-TLS certificate, decoded but not verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateEvidence {
    /// The cert-bound bundle.
    pub bundle: EvidenceBundle,
    /// The certificate's DER SubjectPublicKeyInfo.
    pub spki_der: Vec<u8>,
    /// The certificate's notBefore, Unix seconds.
    pub not_before: i64,
    /// The certificate's notAfter, Unix seconds.
    pub not_after: i64,
}

/// Decodes the extnValue of the evidence extension into a bundle
/// ([`cloister_protocol::ratls::decode_evidence_extension`]).
pub fn decode_evidence_extension(value: &[u8]) -> Result<EvidenceBundle, RaTlsError> {
    Ok(ratls::decode_evidence_extension(value)?)
}

/// Extracts the cert-bound evidence of an RA-TLS certificate and checks that it is bound
/// to this certificate's key. Does not verify the evidence itself.
pub fn evidence_from_certificate(cert_der: &[u8]) -> Result<CertificateEvidence, RaTlsError> {
    let (rest, cert) =
        X509Certificate::from_der(cert_der).map_err(|e| RaTlsError::Certificate(e.to_string()))?;
    if !rest.is_empty() {
        return Err(RaTlsError::Certificate(
            "trailing bytes after the certificate".into(),
        ));
    }
    let oid = x509_parser::der_parser::oid::Oid::from(EVIDENCE_EXTENSION_OID)
        .map_err(|_| RaTlsError::MalformedExtension("bad OID constant".into()))?;
    let mut found = cert.extensions().iter().filter(|e| e.oid == oid);
    let ext = found.next().ok_or(RaTlsError::MissingExtension)?;
    if found.next().is_some() {
        return Err(RaTlsError::DuplicateExtension);
    }
    let bundle = decode_evidence_extension(ext.value)?;
    let spki_der = cert.public_key().raw.to_vec();
    let actual = spki_sha256(&spki_der);
    match bundle.binding {
        BundleBinding::Cert { spki_sha256: bound } if bound == actual => {}
        BundleBinding::Cert { spki_sha256: bound } => {
            return Err(RaTlsError::KeyMismatch {
                bound: hex::encode(bound),
                actual: hex::encode(actual),
            })
        }
        // Tunnel-bound evidence is bound to the certificate's key too (and to a session,
        // which only `verify_tunnel_bundle_with_cache` can check).
        BundleBinding::Tunnel {
            spki_sha256: bound, ..
        } if bound == actual => {}
        BundleBinding::Tunnel {
            spki_sha256: bound, ..
        } => {
            return Err(RaTlsError::KeyMismatch {
                bound: hex::encode(bound),
                actual: hex::encode(actual),
            })
        }
        BundleBinding::Session => return Err(RaTlsError::NotCertBound),
    }
    Ok(CertificateEvidence {
        bundle,
        spki_der,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// Verifies an RA-TLS certificate: extracts the evidence, checks it is bound to the
/// certificate's key and that the certificate is valid at `now`, and verifies it (chain, signature, TCB, policy, REPORT_DATA in cert
/// mode, measurement-log replay) with [`verify_bundle`].
///
/// This proves that the certificate's key was generated inside an attested VM running the
/// logged plugins. It does not prove that a given TLS session ends there (a leaked key
/// could be replayed): for that, verify session-bound evidence over the session.
pub fn verify_certificate(
    cert_der: &[u8],
    policy: &Policy,
    roots: &TrustedRoots,
    now: SystemTime,
) -> Result<VerifiedEvidence, RaTlsError> {
    let evidence = evidence_from_certificate(cert_der)?;
    let now_s = match now.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    };
    if !(evidence.not_before <= now_s && now_s <= evidence.not_after) {
        return Err(RaTlsError::CertificateNotValidNow {
            not_before: evidence.not_before,
            not_after: evidence.not_after,
            now: now_s,
        });
    }
    Ok(verify_bundle(&evidence.bundle, policy, roots, now, None)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_a_certificate() {
        assert!(matches!(
            evidence_from_certificate(b"nope"),
            Err(RaTlsError::Certificate(_))
        ));
    }
}
