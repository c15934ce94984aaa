//! The RA-TLS listener's identity and attestation (inside the CVM).
//!
//! * At start-up, and then on a schedule, the host generates a **fresh ECDSA P-256 key
//!   pair** in memory, asks the TEE for a report whose REPORT_DATA binds the key's SPKI and
//!   the measurement log (cert mode, [`cloister_protocol::binding`]), and puts the
//!   resulting evidence bundle into a **self-signed certificate** (extension
//!   `2.23.133.5.4.9`, encoded as [`cloister_protocol::ratls`] describes). The private key
//!   never leaves the process. [`RotatingCertificate`] serves the current identity to
//!   rustls; a rotation swaps it atomically, and connections already established keep
//!   their session.
//! * For each TLS session, [`session_exporter`] computes the RFC 8446 §7.5 exporter value;
//!   `GET /v1/attestation` answers with **session-bound evidence** for it
//!   ([`Attestor::session_bundle`]), which a client verifies before it sends user data.
//!
//! Only TLS 1.3 is offered (the exporter binding is defined for it), with the `ring`
//! provider.

use cloister_evidence::{EvidenceError, EvidenceProvider, TeeKind};
use cloister_measurement::MeasurementLog;
use cloister_protocol::binding::{
    report_data_cert_mode, report_data_session_mode, report_data_tunnel_mode, spki_sha256,
    EXPORTER_CONTEXT, EXPORTER_LABEL, EXPORTER_LEN,
};
use cloister_protocol::ratls::{encode_evidence_extension, EVIDENCE_EXTENSION_OID};
use cloister_protocol::{BundleBinding, Evidence, EvidenceBundle};
use rcgen::PublicKeyData;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Why the RA-TLS identity or configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RaTlsError {
    /// The TEE did not produce evidence.
    #[error("cannot obtain attestation evidence")]
    Evidence(#[from] EvidenceError),
    /// Key or certificate generation failed.
    #[error("cannot generate the RA-TLS certificate")]
    Certificate(#[from] rcgen::Error),
    /// rustls refused the key or the configuration.
    #[error("cannot configure TLS")]
    Tls(#[from] rustls::Error),
    /// The system clock is unusable for certificate validity.
    #[error("cannot compute the certificate validity: {0}")]
    Clock(String),
}

/// Produces evidence bound to TLS keys and sessions for one loaded host.
pub struct Attestor {
    provider: Arc<dyn EvidenceProvider>,
    log_bytes: Vec<u8>,
    log_digest: [u8; 32],
    /// The current transparency-log proofs (refreshed in place), if the host has a log.
    transparency: RwLock<Option<cloister_protocol::BundleTransparency>>,
}

impl std::fmt::Debug for Attestor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attestor")
            .field("tee", &self.provider.kind())
            .field("log_digest", &hex::encode(self.log_digest))
            .finish()
    }
}

impl Attestor {
    /// An attestor for the host whose plugins and models are recorded in `log`.
    pub fn new(provider: Arc<dyn EvidenceProvider>, log: &MeasurementLog) -> Attestor {
        Attestor {
            provider,
            log_bytes: log.canonical_bytes(),
            log_digest: log.digest(),
            transparency: RwLock::new(None),
        }
    }

    /// Replaces the transparency-log proofs every later bundle carries.
    pub fn set_transparency(&self, proofs: cloister_protocol::BundleTransparency) {
        match self.transparency.write() {
            Ok(mut t) => *t = Some(proofs),
            Err(poisoned) => *poisoned.into_inner() = Some(proofs),
        }
    }

    /// The launch measurement of this host (from a fresh report).
    pub fn launch_measurement(&self) -> Result<[u8; 48], EvidenceError> {
        let evidence = self.provider.evidence([0u8; 64])?;
        crate::transparency::launch_measurement(&evidence.report).ok_or_else(|| {
            EvidenceError::Firmware("the report is too short to hold MEASUREMENT".into())
        })
    }

    /// Which TEE the evidence comes from.
    pub fn tee(&self) -> TeeKind {
        self.provider.kind()
    }

    fn bundle(&self, evidence: Evidence, binding: BundleBinding) -> EvidenceBundle {
        EvidenceBundle {
            report: evidence.report,
            vek_der: evidence.vek_der,
            ask_der: evidence.intermediate_der,
            ark_der: evidence.ark_der,
            measurement_log: self.log_bytes.clone(),
            binding,
            transparency: match self.transparency.read() {
                Ok(t) => t.clone(),
                Err(poisoned) => poisoned.into_inner().clone(),
            },
        }
    }

    /// Cert-bound evidence for a TLS key with this DER SubjectPublicKeyInfo.
    pub fn cert_bundle(&self, spki_der: &[u8]) -> Result<EvidenceBundle, EvidenceError> {
        let spki_hash = spki_sha256(spki_der);
        let evidence = self
            .provider
            .evidence(report_data_cert_mode(&spki_hash, &self.log_digest))?;
        Ok(self.bundle(
            evidence,
            BundleBinding::Cert {
                spki_sha256: spki_hash,
            },
        ))
    }

    /// Fresh session-bound evidence for the TLS session with this exporter value.
    pub fn session_bundle(
        &self,
        exporter: &[u8; EXPORTER_LEN],
    ) -> Result<EvidenceBundle, EvidenceError> {
        let evidence = self
            .provider
            .evidence(report_data_session_mode(exporter, &self.log_digest))?;
        Ok(self.bundle(evidence, BundleBinding::Session))
    }

    /// Tunnel-bound evidence for the session `session_id` and the TLS key made for it, with
    /// this DER SubjectPublicKeyInfo.
    pub fn tunnel_bundle(
        &self,
        session_id: &[u8; 32],
        spki_der: &[u8],
    ) -> Result<EvidenceBundle, EvidenceError> {
        let spki_hash = spki_sha256(spki_der);
        let evidence = self.provider.evidence(report_data_tunnel_mode(
            session_id,
            &spki_hash,
            &self.log_digest,
        ))?;
        Ok(self.bundle(
            evidence,
            BundleBinding::Tunnel {
                spki_sha256: spki_hash,
                session_id: *session_id,
            },
        ))
    }

    /// Generates a key pair and a self-signed certificate for one tunneled session: its
    /// evidence binds the session id, the key and the measurement log, so it proves
    /// freshness to the client that chose the id (see `cloister_tunnel`). Valid from one
    /// minute ago for `validity`.
    pub fn tunnel_identity(
        &self,
        session_id: &[u8; 32],
        validity: Duration,
    ) -> Result<Arc<CertifiedKey>, RaTlsError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let bundle = self.tunnel_bundle(session_id, &key.subject_public_key_info())?;
        let now = time::OffsetDateTime::now_utc();
        let validity = time::Duration::try_from(validity)
            .map_err(|e| RaTlsError::Clock(format!("validity out of range: {e}")))?;
        certified_key(
            key,
            &bundle,
            now - time::Duration::minutes(1),
            now + validity,
        )
    }

    /// Generates a fresh key pair and a self-signed certificate carrying cert-bound
    /// evidence for it, valid from one minute ago for `validity`.
    pub fn new_identity(&self, validity: Duration) -> Result<Arc<CertifiedKey>, RaTlsError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let bundle = self.cert_bundle(&key.subject_public_key_info())?;
        let now = time::OffsetDateTime::now_utc();
        let validity = time::Duration::try_from(validity)
            .map_err(|e| RaTlsError::Clock(format!("validity out of range: {e}")))?;
        certified_key(
            key,
            &bundle,
            now - time::Duration::minutes(1),
            now + validity,
        )
    }
}

/// A self-signed RA-TLS certificate for `key` carrying `bundle` in the evidence extension,
/// valid from `not_before` to `not_after`, with the key loaded for rustls.
///
/// [`Attestor::new_identity`] is the only caller in the host; it is public so that tests
/// can build hostile certificates (tampered or stale evidence) the way an attacker would.
pub fn certified_key(
    key: rcgen::KeyPair,
    bundle: &EvidenceBundle,
    not_before: time::OffsetDateTime,
    not_after: time::OffsetDateTime,
) -> Result<Arc<CertifiedKey>, RaTlsError> {
    let mut params = rcgen::CertificateParams::new(vec!["cloister-host".to_owned()])?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Cloister host (RA-TLS)");
    params.not_before = not_before;
    params.not_after = not_after;
    params
        .custom_extensions
        .push(rcgen::CustomExtension::from_oid_content(
            EVIDENCE_EXTENSION_OID,
            encode_evidence_extension(bundle),
        ));
    let cert = params.self_signed(&key)?;
    let provider = rustls::crypto::ring::default_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key.serialize_der(),
        )))?;
    Ok(Arc::new(CertifiedKey::new(
        vec![CertificateDer::from(cert.der().to_vec())],
        signing_key,
    )))
}

/// The current RA-TLS identity, swapped atomically on rotation.
#[derive(Debug)]
pub struct RotatingCertificate {
    current: RwLock<Arc<CertifiedKey>>,
}

impl RotatingCertificate {
    /// Starts with `identity`.
    pub fn new(identity: Arc<CertifiedKey>) -> RotatingCertificate {
        RotatingCertificate {
            current: RwLock::new(identity),
        }
    }

    /// Replaces the identity; new handshakes use it.
    pub fn rotate(&self, identity: Arc<CertifiedKey>) {
        match self.current.write() {
            Ok(mut guard) => *guard = identity,
            Err(poisoned) => *poisoned.into_inner() = identity,
        }
    }

    /// The current certificate (DER).
    pub fn certificate(&self) -> Option<CertificateDer<'static>> {
        self.get().cert.first().cloned()
    }

    fn get(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

impl ResolvesServerCert for RotatingCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// The rustls server configuration: TLS 1.3 only, `ring`, no client authentication,
/// HTTP/1.1 over ALPN, the certificate from `resolver`.
pub fn server_config(
    resolver: Arc<RotatingCertificate>,
) -> Result<Arc<rustls::ServerConfig>, RaTlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])?
    .with_no_client_auth()
    .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The session's exporter value for the session-mode binding (label
/// `EXPORTER-cloister-attestation-v1`, empty context, 32 bytes).
pub fn session_exporter(
    conn: &rustls::ServerConnection,
) -> Result<[u8; EXPORTER_LEN], rustls::Error> {
    conn.export_keying_material([0u8; EXPORTER_LEN], EXPORTER_LABEL, Some(EXPORTER_CONTEXT))
}

/// Rotates the identity every `every`, in the background, until the process ends. A failed
/// rotation keeps the current identity (still valid for another rotation period) and is
/// logged.
pub fn spawn_rotation(
    attestor: Arc<Attestor>,
    resolver: Arc<RotatingCertificate>,
    every: Duration,
    validity: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.tick().await; // the first tick is immediate; the identity is fresh
        loop {
            ticker.tick().await;
            let attestor = Arc::clone(&attestor);
            match tokio::task::spawn_blocking(move || attestor.new_identity(validity)).await {
                Ok(Ok(identity)) => {
                    resolver.rotate(identity);
                    tracing::info!("RA-TLS key pair and certificate rotated");
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %crate::error_chain(&e), "RA-TLS rotation failed; keeping the current identity")
                }
                Err(e) => tracing::error!(error = %e, "RA-TLS rotation task failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloister_protocol::Product;
    use cloister_snp_sim::SimulatedSnp;
    use cloister_verifier::ratls::evidence_from_certificate;

    fn attestor() -> Arc<Attestor> {
        let chip = SimulatedSnp::new(Product::Genoa, [3; 48], std::time::SystemTime::now())
            .expect("simulator");
        Arc::new(Attestor::new(Arc::new(chip), &MeasurementLog::new()))
    }

    #[test]
    fn each_identity_has_a_fresh_key_bound_by_its_evidence() {
        let attestor = attestor();
        let a = attestor
            .new_identity(Duration::from_secs(120))
            .expect("identity");
        let b = attestor
            .new_identity(Duration::from_secs(120))
            .expect("identity");
        let a = evidence_from_certificate(a.cert[0].as_ref()).expect("evidence");
        let b = evidence_from_certificate(b.cert[0].as_ref()).expect("evidence");
        assert_ne!(a.spki_der, b.spki_der, "a rotation must generate a new key");
        assert!(a.not_after - a.not_before >= 120);
    }

    #[test]
    fn rotation_swaps_the_served_certificate() {
        let attestor = attestor();
        let first = attestor
            .new_identity(Duration::from_secs(120))
            .expect("identity");
        let resolver = RotatingCertificate::new(Arc::clone(&first));
        assert_eq!(resolver.certificate(), first.cert.first().cloned());
        let second = attestor
            .new_identity(Duration::from_secs(120))
            .expect("identity");
        resolver.rotate(Arc::clone(&second));
        assert_eq!(resolver.certificate(), second.cert.first().cloned());
        assert_ne!(resolver.certificate(), first.cert.first().cloned());
    }
}
