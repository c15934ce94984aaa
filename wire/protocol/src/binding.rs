//! The REPORT_DATA binding: what a Cloister host puts in the 64 bytes of REPORT_DATA, and
//! what every verifier (client, CLI, auditor) recomputes.
//!
//! REPORT_DATA binds the report to two things at once: the TLS connection the evidence is
//! delivered over, and the measurement log (every plugin and model the host loaded,
//! `cloister_measurement::MeasurementLog::digest`, a SHA-256 over its canonical bytes).
//! There are two modes, each with its own versioned domain-separation label, so a value
//! computed for one mode can never be mistaken for the other.
//!
//! # Exact bytes
//!
//! ```text
//! cert mode:     REPORT_DATA = SHA-512( "cloister/report-data/cert/v1" 0x00      (29 bytes)
//!                                       || SHA-256(SubjectPublicKeyInfo DER)    (32 bytes)
//!                                       || measurement-log digest               (32 bytes) )
//!
//! session mode:  REPORT_DATA = SHA-512( "cloister/report-data/session/v1" 0x00   (32 bytes)
//!                                       || TLS exporter value                   (32 bytes)
//!                                       || measurement-log digest               (32 bytes) )
//!
//! tunnel mode:   REPORT_DATA = SHA-512( "cloister/report-data/tunnel/v1" 0x00    (31 bytes)
//!                                       || session id                           (32 bytes)
//!                                       || SHA-256(SubjectPublicKeyInfo DER)    (32 bytes)
//!                                       || measurement-log digest               (32 bytes) )
//! ```
//!
//! * The labels are ASCII, followed by one zero byte ([`CERT_LABEL`], [`SESSION_LABEL`]).
//!   No length prefixes are needed: every field has a fixed length.
//! * *SubjectPublicKeyInfo DER* is the complete DER `SubjectPublicKeyInfo` of the TLS
//!   certificate's key (algorithm identifier included), as it appears in the certificate.
//! * *TLS exporter value* is the RFC 8446 section 7.5 exporter of the session (RFC 5705 for
//!   the interface) with label [`EXPORTER_LABEL`] (`EXPORTER-cloister-attestation-v1`), an
//!   **empty** context and length [`EXPORTER_LEN`] (32). In TLS 1.3 an absent context and an
//!   empty one give the same value; use the empty one.
//! * The SHA-512 output (64 bytes) is REPORT_DATA, bytes 0x50..0x90 of the report.
//!
//! Cert mode is for interoperable RA-TLS (the evidence travels in the certificate, bound to
//! the key). Session mode is what a Cloister client relies on before it sends user data: it
//! is bound to this very TLS session, so it cannot be relayed from another session even if
//! another genuine TEE's TLS key leaked.
//!
//! Tunnel mode is for sessions tunneled through an Oblivious HTTP gateway
//! (`cloister_tunnel`): the client picks a random 32-byte session id, and the host makes a
//! fresh key pair and certificate **for that session**, whose evidence binds the session id,
//! the key and the measurement log. The client checks the evidence during the handshake, and
//! the handshake signature proves that the peer holds the key, so the evidence is fresh (the
//! client's own random id) and bound to this TLS session (its key exists for no other)
//! before the client sends anything: the handshake and a request then take two round trips
//! instead of three.

use std::fmt;

use sha2::{Digest, Sha512};

/// Domain label of the cert-mode binding: `"cloister/report-data/cert/v1"` and a zero byte.
pub const CERT_LABEL: &[u8] = b"cloister/report-data/cert/v1\0";
/// Domain label of the session-mode binding: `"cloister/report-data/session/v1"` and a zero
/// byte.
pub const SESSION_LABEL: &[u8] = b"cloister/report-data/session/v1\0";
/// Domain label of the tunnel-mode binding: `"cloister/report-data/tunnel/v1"` and a zero
/// byte.
pub const TUNNEL_LABEL: &[u8] = b"cloister/report-data/tunnel/v1\0";
/// The TLS exporter label (RFC 8446 section 7.5) of the session-mode binding. The context is
/// empty.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-cloister-attestation-v1";
/// The TLS exporter context of the session-mode binding: empty.
pub const EXPORTER_CONTEXT: &[u8] = b"";
/// The length of the TLS exporter value of the session-mode binding, in bytes.
pub const EXPORTER_LEN: usize = 32;

/// Which REPORT_DATA binding (or plain comparison) was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BindingMode {
    /// A caller-supplied 64-byte value (the verifier's `ReportDataExpectation::Exact`).
    Exact,
    /// The cert-mode binding: TLS key SPKI hash and measurement-log digest.
    Cert,
    /// The session-mode binding: TLS exporter and measurement-log digest.
    Session,
    /// The tunnel-mode binding: session id, TLS key SPKI hash and measurement-log digest.
    Tunnel,
}

impl fmt::Display for BindingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BindingMode::Exact => "exact value",
            BindingMode::Cert => "cert-mode binding (TLS key SPKI + measurement log)",
            BindingMode::Session => "session-mode binding (TLS exporter + measurement log)",
            BindingMode::Tunnel => {
                "tunnel-mode binding (session id + TLS key SPKI + measurement log)"
            }
        })
    }
}

fn bind(label: &[u8], first: &[u8; 32], log_digest: &[u8; 32]) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(label);
    h.update(first);
    h.update(log_digest);
    let mut out = [0u8; 64];
    out.copy_from_slice(&h.finalize());
    out
}

/// REPORT_DATA in cert mode: SHA-512([`CERT_LABEL`] ‖ `spki_sha256` ‖ `log_digest`), where
/// `spki_sha256` is SHA-256 of the TLS key's DER SubjectPublicKeyInfo and `log_digest` the
/// measurement-log digest.
pub fn report_data_cert_mode(spki_sha256: &[u8; 32], log_digest: &[u8; 32]) -> [u8; 64] {
    bind(CERT_LABEL, spki_sha256, log_digest)
}

/// REPORT_DATA in session mode: SHA-512([`SESSION_LABEL`] ‖ `exporter` ‖ `log_digest`), where
/// `exporter` is the session's TLS exporter value for [`EXPORTER_LABEL`], empty context,
/// [`EXPORTER_LEN`] bytes, and `log_digest` the measurement-log digest.
pub fn report_data_session_mode(exporter: &[u8; EXPORTER_LEN], log_digest: &[u8; 32]) -> [u8; 64] {
    bind(SESSION_LABEL, exporter, log_digest)
}

/// REPORT_DATA in tunnel mode: SHA-512([`TUNNEL_LABEL`] ‖ `session_id` ‖ `spki_sha256` ‖
/// `log_digest`), where `session_id` is the client-chosen id of the tunneled session,
/// `spki_sha256` SHA-256 of the session certificate's DER SubjectPublicKeyInfo and
/// `log_digest` the measurement-log digest.
pub fn report_data_tunnel_mode(
    session_id: &[u8; 32],
    spki_sha256: &[u8; 32],
    log_digest: &[u8; 32],
) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(TUNNEL_LABEL);
    h.update(session_id);
    h.update(spki_sha256);
    h.update(log_digest);
    let mut out = [0u8; 64];
    out.copy_from_slice(&h.finalize());
    out
}

/// SHA-256 of a DER SubjectPublicKeyInfo: the first field of the cert-mode binding.
pub fn spki_sha256(spki_der: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&sha2::Sha256::digest(spki_der));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex<const N: usize>(s: &str) -> [u8; N] {
        let v = hex::decode(s).expect("hex");
        v.try_into().expect("length")
    }

    fn counting<const N: usize>(start: u8) -> [u8; N] {
        core::array::from_fn(|i| start.wrapping_add(i as u8))
    }

    // Expected values computed independently with Python's hashlib:
    //   hashlib.sha512(b'cloister/report-data/cert/v1\0' + bytes(range(32))
    //                  + bytes(range(0x40, 0x60))).hexdigest()
    #[test]
    fn cert_mode_known_answer() {
        let expected: [u8; 64] = unhex(
            "04055e8b03f2d65a36a51e74814838cffa95b0da8e5438ebe7dd4ac48c91fd0c\
             bd595db49c809cc0cb281bc1b65dfe6924db79af2a5336a2df1de1191a81fa83",
        );
        assert_eq!(
            report_data_cert_mode(&counting(0), &counting(0x40)),
            expected
        );
    }

    //   hashlib.sha512(b'cloister/report-data/session/v1\0' + bytes([0xA5]*32)
    //                  + bytes(range(0x40, 0x60))).hexdigest()
    #[test]
    fn session_mode_known_answer() {
        let expected: [u8; 64] = unhex(
            "e48255d43c8fc53d36ffaf8f7dee129a86791891836a60cd332e1cef312a6467\
             c96a3a5745f42b680f2b65ceef692fa1235a5338b459ee1ff3ace80c07cbb871",
        );
        assert_eq!(
            report_data_session_mode(&[0xA5; 32], &counting(0x40)),
            expected
        );
    }

    // The empty measurement log's digest (SHA-256 of
    // {"entries":[],"format":"cloister-measurement-log/v1"}) with an all-zero SPKI hash:
    //   hashlib.sha512(b'cloister/report-data/cert/v1\0' + bytes(32) + empty).hexdigest()
    #[test]
    fn cert_mode_empty_log_known_answer() {
        let empty_log: [u8; 32] =
            unhex("2d781560f19d55830e852de56129b1bc7370dfcff938a3a5e0f39429ad6e94d8");
        let expected: [u8; 64] = unhex(
            "df825e930188bfe19a84226d766b2a6621a1eab016d7ac2675a71248dcfbb078\
             48b9d675d424f7b2ec2accfb692882dd796d84132a3d16fa4e63748f225cc181",
        );
        assert_eq!(report_data_cert_mode(&[0; 32], &empty_log), expected);
    }

    //   hashlib.sha512(b'cloister/report-data/tunnel/v1\0' + bytes([0x11]*32)
    //                  + bytes(range(32)) + bytes(range(0x40, 0x60))).hexdigest()
    const TUNNEL_KAT: &str = "b00105feb98954aebdec331c8975d92feccf74e4666df50e50d47eac88f1e867\
                              a09de594ae8c8f0f9fbebfeb0f6b083a3a5e84a388db0d08107a8400b80df389";

    #[test]
    fn tunnel_mode_known_answer() {
        let expected: [u8; 64] = unhex(TUNNEL_KAT);
        assert_eq!(
            report_data_tunnel_mode(&[0x11; 32], &counting(0), &counting(0x40)),
            expected
        );
        // Each field matters.
        assert_ne!(
            report_data_tunnel_mode(&[0x12; 32], &counting(0), &counting(0x40)),
            expected
        );
        assert_ne!(
            report_data_tunnel_mode(&[0x11; 32], &counting(1), &counting(0x40)),
            expected
        );
    }

    #[test]
    fn modes_are_domain_separated() {
        let a = [7u8; 32];
        let b = [9u8; 32];
        assert_ne!(
            report_data_cert_mode(&a, &b),
            report_data_session_mode(&a, &b)
        );
        assert_ne!(report_data_cert_mode(&a, &b), report_data_cert_mode(&b, &a));
        assert_eq!(CERT_LABEL.len(), 29);
        assert_eq!(SESSION_LABEL.len(), 32);
        assert_eq!(TUNNEL_LABEL.len(), 31);
        assert_eq!(EXPORTER_LABEL, b"EXPORTER-cloister-attestation-v1");
    }
}
