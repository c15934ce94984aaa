//! The rustls certificate verifier of an RA-TLS client.
//!
//! There is no certificate authority: the server's certificate is self-signed and is
//! accepted only if it carries SNP evidence that verifies under the client's policy and is
//! bound to the certificate's key ([`cloister_verifier::ratls`]). The handshake signature
//! then proves that the server holds that key. Host names play no part: what the client
//! trusts is the attested VM, not a name.
//!
//! Verified certificates are remembered (by SHA-256 of their DER, until they or their
//! VCEK expire), and so are verified VCEK chains ([`ChainCache`]): a client reconnecting to
//! the same host only checks the handshake signature and the session-bound evidence's
//! report signature and policy.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cloister_verifier::bundle::{verify_bundle_with_cache, verify_tunnel_bundle_with_cache};
use cloister_verifier::ratls::{evidence_from_certificate, CertificateEvidence, RaTlsError};
use cloister_verifier::{ChainCache, Policy, TrustedRoots, VerifiedEvidence};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use sha2::{Digest, Sha256};

/// How many verified certificates are remembered.
const CERT_CACHE_CAPACITY: usize = 64;

struct CachedCert {
    der_sha256: [u8; 32],
    not_after: i64,
    evidence: VerifiedEvidence,
}

#[derive(Default)]
struct State {
    chains: ChainCache,
    certs: VecDeque<CachedCert>,
    cold_verifications: u64,
}

/// Accepts a server certificate only if its RA-TLS evidence verifies.
pub struct AttestingVerifier {
    policy: Policy,
    roots: TrustedRoots,
    algorithms: WebPkiSupportedAlgorithms,
    caching: bool,
    state: Mutex<State>,
}

impl std::fmt::Debug for AttestingVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttestingVerifier")
            .field("caching", &self.caching)
            .finish_non_exhaustive()
    }
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// The certificate's evidence (bound to its key) and the certificate valid at `now_s`.
fn valid_certificate(cert_der: &[u8], now_s: i64) -> Result<CertificateEvidence, RaTlsError> {
    let cert = evidence_from_certificate(cert_der)?;
    if !(cert.not_before <= now_s && now_s <= cert.not_after) {
        return Err(RaTlsError::CertificateNotValidNow {
            not_before: cert.not_before,
            not_after: cert.not_after,
            now: now_s,
        });
    }
    Ok(cert)
}

/// A rejected certificate as the rustls error that carries it (callers downcast it back).
fn rejected(e: RaTlsError) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
}

impl AttestingVerifier {
    /// A verifier for `policy` with `roots` as the trusted roots. With `caching` off, every
    /// handshake verifies the certificate's evidence and chain from scratch.
    pub fn new(policy: Policy, roots: TrustedRoots, caching: bool) -> AttestingVerifier {
        AttestingVerifier {
            policy,
            roots,
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
            caching,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The chain cache, when caching is on.
    fn chains<'a>(&self, state: &'a mut State) -> Option<&'a mut ChainCache> {
        if self.caching {
            Some(&mut state.chains)
        } else {
            None
        }
    }

    /// The policy evidence is checked against.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// How many certificates were verified without the cache.
    pub fn cold_verifications(&self) -> u64 {
        self.state().cold_verifications
    }

    /// Verifies a certificate's RA-TLS evidence at `now`, through the caches.
    pub fn verify_certificate(
        &self,
        cert_der: &[u8],
        now: SystemTime,
    ) -> Result<VerifiedEvidence, RaTlsError> {
        let der_sha256: [u8; 32] = Sha256::digest(cert_der).into();
        let now_s = unix_seconds(now);
        let mut state = self.state();
        if self.caching {
            if let Some(hit) = state
                .certs
                .iter()
                .find(|c| c.der_sha256 == der_sha256 && now_s <= c.not_after)
            {
                return Ok(hit.evidence.clone());
            }
        }
        let cert = valid_certificate(cert_der, now_s)?;
        let chains = self.chains(&mut state);
        let evidence =
            verify_bundle_with_cache(&cert.bundle, &self.policy, &self.roots, now, None, chains)?;
        state.cold_verifications += 1;
        if self.caching {
            let not_after = cert.not_after.min(evidence.report.vek.not_after);
            if state.certs.len() == CERT_CACHE_CAPACITY {
                state.certs.pop_front();
            }
            state.certs.push_back(CachedCert {
                der_sha256,
                not_after,
                evidence: evidence.clone(),
            });
        }
        Ok(evidence)
    }

    /// Verifies the certificate a host made for the tunneled session `session_id` (see
    /// `cloister_tunnel`): its evidence must be tunnel-bound to that session id and to the
    /// certificate's key, and verify under the policy. Each such certificate is new, so only
    /// the chain cache helps.
    pub fn verify_tunnel_certificate(
        &self,
        cert_der: &[u8],
        session_id: &[u8; 32],
        now: SystemTime,
    ) -> Result<VerifiedEvidence, RaTlsError> {
        let cert = valid_certificate(cert_der, unix_seconds(now))?;
        let spki: [u8; 32] = Sha256::digest(&cert.spki_der).into();
        let mut state = self.state();
        let chains = self.chains(&mut state);
        let evidence = verify_tunnel_bundle_with_cache(
            &cert.bundle,
            &self.policy,
            &self.roots,
            now,
            session_id,
            &spki,
            chains,
        )?;
        state.cold_verifications += 1;
        Ok(evidence)
    }

    /// Verifies session-bound evidence received over a session with this exporter value,
    /// reusing the chain cache.
    pub fn verify_session(
        &self,
        bundle: &cloister_verifier::EvidenceBundle,
        exporter: [u8; cloister_verifier::binding::EXPORTER_LEN],
        now: SystemTime,
    ) -> Result<VerifiedEvidence, cloister_verifier::BundleVerifyError> {
        let mut state = self.state();
        let chains = self.chains(&mut state);
        verify_bundle_with_cache(
            bundle,
            &self.policy,
            &self.roots,
            now,
            Some(exporter),
            chains,
        )
    }
}

impl ServerCertVerifier for AttestingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let now = UNIX_EPOCH + Duration::from_secs(now.as_secs());
        match self.verify_certificate(end_entity.as_ref(), now) {
            Ok(_) => Ok(ServerCertVerified::assertion()),
            Err(e) => {
                tracing::debug!(error = %e, "RA-TLS certificate rejected");
                Err(rejected(e))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Only TLS 1.3 is configured; the exporter binding is defined for it.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The certificate verifier of one tunneled session: accepts only a certificate made for
/// this session id (tunnel-bound evidence, [`AttestingVerifier::verify_tunnel_certificate`])
/// and remembers what it verified.
pub struct TunnelCertVerifier {
    inner: Arc<AttestingVerifier>,
    session_id: [u8; 32],
    verified: Mutex<Option<VerifiedEvidence>>,
}

impl std::fmt::Debug for TunnelCertVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelCertVerifier").finish_non_exhaustive()
    }
}

impl TunnelCertVerifier {
    /// A verifier for the session `session_id`, with `inner`'s policy, roots and chain cache.
    pub fn new(inner: Arc<AttestingVerifier>, session_id: [u8; 32]) -> TunnelCertVerifier {
        TunnelCertVerifier {
            inner,
            session_id,
            verified: Mutex::new(None),
        }
    }

    /// The evidence of the certificate accepted in the handshake, if any.
    pub fn verified(&self) -> Option<VerifiedEvidence> {
        match self.verified.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl ServerCertVerifier for TunnelCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let now = UNIX_EPOCH + Duration::from_secs(now.as_secs());
        match self
            .inner
            .verify_tunnel_certificate(end_entity.as_ref(), &self.session_id, now)
        {
            Ok(evidence) => {
                match self.verified.lock() {
                    Ok(mut g) => *g = Some(evidence),
                    Err(poisoned) => *poisoned.into_inner() = Some(evidence),
                }
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => {
                tracing::debug!(error = %e, "tunneled RA-TLS certificate rejected");
                Err(rejected(e))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
