//! The Cloister client: runs **outside the CVM** (the CLI, applications, tests).
//!
//! [`Client::connect`] opens a TLS 1.3 connection to a Cloister host and refuses to return
//! it unless, in this order:
//!
//! 1. the host's self-signed certificate carries SNP evidence that verifies under the
//!    client's [`Policy`] (AMD chain, report signature, TCB, guest policy, launch
//!    measurement, every plugin and model in the measurement log allowed) and whose
//!    REPORT_DATA binds the certificate's key ([`verifier::AttestingVerifier`], during the
//!    handshake);
//! 2. the handshake signature proves the host holds that key;
//! 3. `GET /v1/attestation`, sent over the established session, returns **fresh evidence
//!    bound to this session's TLS exporter value**, which verifies under the same policy;
//! 4. both pieces of evidence come from the same chip, with the same launch measurement and
//!    the same measurement log.
//!
//! Only then does [`AttestedSession`] let the caller send requests that carry user data.
//! Step 3 defeats relays: evidence fetched over another session (a leaked key replayed by a
//! proxy, or a second machine) carries another exporter value and is rejected.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod log_reader;
pub mod oblivious;
pub mod policy;
pub mod published_keys;
pub mod tunnel;
pub mod verifier;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use cloister_display::{Excerpt, Quoted};
use cloister_verifier::binding::{EXPORTER_CONTEXT, EXPORTER_LABEL, EXPORTER_LEN};
use cloister_verifier::ratls::RaTlsError;
use cloister_verifier::{
    BundleError, BundleVerifyError, EvidenceBundle, Policy, TrustedRoots, VerifiedEvidence,
};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;

pub use verifier::AttestingVerifier;

/// The largest response body the client reads.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// How long connecting, the handshake and attestation may take together.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a connection or a request failed. Every attestation failure is its own variant.
///
/// As every error type of Cloister, a variant's message does not repeat its cause: the
/// cause is its [`source`](std::error::Error::source), which `anyhow`'s `{:#}` (and any
/// chain printer) prints after it. Text from the host is escaped and truncated
/// ([`cloister_display`]).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not `https://HOST:PORT[/]`.
    #[error("invalid host URL {}: {reason}", Quoted(.url))]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The TCP connection failed.
    #[error("cannot connect to {}", Excerpt(.addr))]
    Connect {
        /// HOST:PORT.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The host's certificate and its attestation evidence were rejected.
    #[error("the host's RA-TLS certificate was REJECTED")]
    CertificateRejected(#[source] RaTlsError),
    /// The TLS handshake failed for another reason.
    #[error("TLS handshake failed: {}", Excerpt(.0))]
    Handshake(String),
    /// The host did not serve session-bound evidence.
    #[error("the host did not serve session-bound evidence: HTTP {status}: {}", Excerpt(.detail))]
    SessionEvidenceUnavailable {
        /// HTTP status.
        status: u16,
        /// The host's error code, if any.
        detail: String,
    },
    /// The session-bound evidence does not decode.
    #[error("the session-bound evidence does not decode")]
    SessionEvidenceMalformed(#[source] BundleError),
    /// The session-bound evidence was rejected (includes evidence bound to another session).
    #[error("the session-bound evidence was REJECTED")]
    SessionEvidenceRejected(#[source] BundleVerifyError),
    /// The certificate's and the session's evidence disagree.
    #[error("the certificate's and the session's evidence disagree on the {0}")]
    EvidenceMismatch(&'static str),
    /// An HTTP exchange failed.
    #[error("HTTP exchange with the host failed: {}", Excerpt(.0))]
    Http(String),
    /// Connecting and attesting took longer than [`CONNECT_TIMEOUT`].
    #[error("connecting to and attesting the host timed out after {0:?}")]
    Timeout(Duration),
    /// TLS could not be configured.
    #[error("cannot configure TLS")]
    Tls(#[from] rustls::Error),
    /// A flight of a tunneled session did not come back.
    #[error("the tunneled session failed")]
    Tunnel(#[source] tunnel::TransportError),
}

/// A configured client: the policy and trusted roots every connection is verified
/// against, and the verifier's caches.
#[derive(Debug, Clone)]
pub struct Client {
    tls: Arc<rustls::ClientConfig>,
    verifier: Arc<AttestingVerifier>,
}

/// Where the time of [`Client::connect`] went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectTimings {
    /// TCP connect.
    pub tcp: Duration,
    /// TLS handshake, including the certificate's evidence verification.
    pub handshake: Duration,
    /// Fetching and verifying the session-bound evidence.
    pub session_attestation: Duration,
}

/// A connection whose host passed attestation for this very session.
pub struct AttestedSession {
    sender: SendRequest<Full<Bytes>>,
    authority: String,
    /// The verified evidence from the host's certificate.
    pub certificate: VerifiedEvidence,
    /// The verified evidence bound to this session.
    pub session: VerifiedEvidence,
    /// Where the connection time went.
    pub timings: ConnectTimings,
}

impl std::fmt::Debug for AttestedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttestedSession")
            .field("authority", &self.authority)
            .field("timings", &self.timings)
            .finish_non_exhaustive()
    }
}

/// An HTTP response from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Bytes,
}

/// Splits `https://HOST:PORT[/]` into (HOST, PORT).
pub fn parse_host_url(url: &str) -> Result<(String, u16), ClientError> {
    let bad = |reason| ClientError::Url {
        url: url.to_owned(),
        reason,
    };
    let rest = url
        .strip_prefix("https://")
        .ok_or(bad("must start with https:// (RA-TLS only)"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') || rest.contains('@') || rest.contains('?') {
        return Err(bad("must be https://HOST:PORT with no path, user or query"));
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, p) = v6.split_once("]:").ok_or(bad("needs :PORT"))?;
        (h.to_owned(), p)
    } else {
        let (h, p) = rest.rsplit_once(':').ok_or(bad("needs :PORT"))?;
        (h.to_owned(), p)
    };
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    let port = port.parse::<u16>().map_err(|_| bad("invalid port"))?;
    Ok((host, port))
}

fn certificate_rejection(e: &std::io::Error) -> Option<RaTlsError> {
    certificate_rejection_of(e.get_ref()?.downcast_ref::<rustls::Error>()?)
}

pub(crate) fn certificate_rejection_of(tls: &rustls::Error) -> Option<RaTlsError> {
    match tls {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
            other.0.downcast_ref::<RaTlsError>().cloned()
        }
        _ => None,
    }
}

impl Client {
    /// A client verifying hosts against `policy` with `roots` as trusted roots, caching
    /// verified certificates and chains.
    pub fn new(policy: Policy, roots: TrustedRoots) -> Result<Client, ClientError> {
        Client::with_caching(policy, roots, true)
    }

    /// As [`Client::new`]; with `caching` off every connection verifies everything from
    /// scratch (benchmarks, audits).
    pub fn with_caching(
        policy: Policy,
        roots: TrustedRoots,
        caching: bool,
    ) -> Result<Client, ClientError> {
        let verifier = Arc::new(AttestingVerifier::new(policy, roots, caching));
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Client {
            tls: Arc::new(tls),
            verifier,
        })
    }

    /// The verifier (its policy and cache statistics).
    pub fn verifier(&self) -> &AttestingVerifier {
        &self.verifier
    }

    /// Connects to `https://HOST:PORT` and attests the host for this session (see the
    /// crate documentation). No user data is sent before this returns `Ok`.
    pub async fn connect(&self, url: &str) -> Result<AttestedSession, ClientError> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.connect_inner(url)).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout(CONNECT_TIMEOUT)),
        }
    }

    async fn connect_inner(&self, url: &str) -> Result<AttestedSession, ClientError> {
        let (host, port) = parse_host_url(url)?;
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let started = Instant::now();
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|source| ClientError::Connect {
                addr: authority.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let tcp_time = started.elapsed();

        // The name is only used for SNI; trust comes from the evidence.
        let server_name = ServerName::try_from(host.clone())
            .or_else(|_| ServerName::try_from("cloister-host".to_owned()))
            .map_err(|_| ClientError::Url {
                url: url.to_owned(),
                reason: "invalid host name",
            })?;
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls));
        let handshake_started = Instant::now();
        let tls =
            connector.connect(server_name, tcp).await.map_err(|e| {
                match certificate_rejection(&e) {
                    Some(rejection) => ClientError::CertificateRejected(rejection),
                    None => ClientError::Handshake(e.to_string()),
                }
            })?;
        let handshake_time = handshake_started.elapsed();

        let (_, conn) = tls.get_ref();
        let cert_der = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or_else(|| ClientError::Handshake("the host sent no certificate".into()))?
            .as_ref()
            .to_vec();
        let exporter: [u8; EXPORTER_LEN] = conn
            .export_keying_material([0u8; EXPORTER_LEN], EXPORTER_LABEL, Some(EXPORTER_CONTEXT))
            .map_err(|e| ClientError::Handshake(format!("cannot compute the exporter: {e}")))?;
        // Verified during the handshake; this is a cache hit unless caching is off.
        let certificate = self
            .verifier
            .verify_certificate(&cert_der, SystemTime::now())
            .map_err(ClientError::CertificateRejected)?;

        let session_started = Instant::now();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection to the host ended with an error");
            }
        });
        let resp = request(&mut sender, &authority, "GET", "/v1/attestation", None).await?;
        if resp.status != 200 {
            let detail = serde_code(&resp.body);
            return Err(ClientError::SessionEvidenceUnavailable {
                status: resp.status,
                detail,
            });
        }
        let bundle =
            EvidenceBundle::from_json(&resp.body).map_err(ClientError::SessionEvidenceMalformed)?;
        let session = self
            .verifier
            .verify_session(&bundle, exporter, SystemTime::now())
            .map_err(ClientError::SessionEvidenceRejected)?;
        check_same_vm(&certificate, &session)?;
        let session_time = session_started.elapsed();
        Ok(AttestedSession {
            sender,
            authority,
            certificate,
            session,
            timings: ConnectTimings {
                tcp: tcp_time,
                handshake: handshake_time,
                session_attestation: session_time,
            },
        })
    }
}

/// The certificate's and the session's evidence must describe the same VM: signed by the
/// same endorsement key (the same VCEK, i.e. the same chip at the same TCB, or the same
/// VLEK), with the same CHIP_ID, launch measurement and measurement log.
///
/// The endorsement key is what identifies the machine: CHIP_ID alone does not, since it is
/// all zero when the guest masks the chip key and in every VLEK-signed report, so two
/// masked reports from different chips have equal CHIP_IDs.
pub fn check_same_vm(
    certificate: &VerifiedEvidence,
    session: &VerifiedEvidence,
) -> Result<(), ClientError> {
    if certificate.report.signer() != session.report.signer()
        || certificate.report.endorsement_key() != session.report.endorsement_key()
    {
        return Err(ClientError::EvidenceMismatch("endorsement key (VCEK/VLEK)"));
    }
    if certificate.report.chip_id() != session.report.chip_id() {
        return Err(ClientError::EvidenceMismatch("chip id"));
    }
    if certificate.report.measurement() != session.report.measurement() {
        return Err(ClientError::EvidenceMismatch("launch measurement"));
    }
    if certificate.log_digest != session.log_digest {
        return Err(ClientError::EvidenceMismatch("measurement log"));
    }
    Ok(())
}

/// The `code` of a host's JSON error body (`{"error":{"code":…}}`), quoted and sanitized
/// (it comes from a host that is not trusted yet), or a placeholder.
fn serde_code(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/code")?
                .as_str()
                .map(cloister_display::quoted)
        })
        .unwrap_or_else(|| "no error code".to_owned())
}

async fn request(
    sender: &mut SendRequest<Full<Bytes>>,
    authority: &str,
    method: &str,
    path: &str,
    body: Option<Bytes>,
) -> Result<Response, ClientError> {
    let http = |e: String| ClientError::Http(e);
    sender
        .ready()
        .await
        .map_err(|e| http(format!("connection not ready: {e}")))?;
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, authority);
    if body.is_some() {
        builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
    }
    let req = builder
        .body(Full::new(body.unwrap_or_default()))
        .map_err(|e| http(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| http(format!("{method} {path}: {e}")))?;
    let status = resp.status().as_u16();
    let body = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| http(format!("{method} {path}: reading the body: {e}")))?
        .to_bytes();
    Ok(Response { status, body })
}

impl AttestedSession {
    /// `GET path` over the attested session.
    pub async fn get(&mut self, path: &str) -> Result<Response, ClientError> {
        request(&mut self.sender, &self.authority, "GET", path, None).await
    }

    /// Calls feature `name` with a JSON `input` over the attested session.
    pub async fn call_feature(
        &mut self,
        name: &str,
        input: Bytes,
    ) -> Result<Response, ClientError> {
        let path = format!("/v1/features/{name}");
        request(
            &mut self.sender,
            &self.authority,
            "POST",
            &path,
            Some(input),
        )
        .await
    }
}
