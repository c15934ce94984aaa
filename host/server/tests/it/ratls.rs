//! RA-TLS end to end: the real host binary with the simulated TEE, the real client, and
//! the attacks the client must detect.

use cloister_client::{Client, ClientError};
use cloister_evidence::EvidenceProvider;
use cloister_host::ratls::{certified_key, server_config, Attestor, RotatingCertificate};
use cloister_measurement::MeasurementLog;
use cloister_snp_sim::SimulatedSnp;
use cloister_test_support::host::{canonical_log, Fixture, Server};
use cloister_test_support::simulator_root;
use cloister_verifier::ratls::RaTlsError;
use cloister_verifier::{
    BindingMode, BundleBinding, BundleVerifyError, PolicyFile, Product, TrustedRoots, VerifyError,
};
use rcgen::PublicKeyData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub(crate) fn sim_measurement() -> [u8; 48] {
    cloister_protocol::SIMULATED_LAUNCH_MEASUREMENT
}

pub(crate) struct PolicyOptions<'a> {
    pub trust_sim_root: bool,
    pub measurement: [u8; 48],
    /// Plugin names to allow (with the sha256 and signer the host measured).
    pub allow: &'a [&'a str],
}

/// Writes policy.toml next to the fixture's config, from what the host measured (the
/// policy `cloister policy init` writes, narrowed to `allow`), and returns its path.
pub(crate) fn write_policy(f: &Fixture, o: &PolicyOptions<'_>) -> PathBuf {
    let log = canonical_log(&f.config());
    let mut file = PolicyFile::for_measured_host(&[o.measurement], &log);
    file.plugin.retain(|p| o.allow.contains(&p.name.as_str()));
    if o.trust_sim_root {
        file.trust_simulator_root = Some("sim-ark.pem".into());
    }
    let path = f.path("policy.toml");
    std::fs::write(&path, file.to_toml()).unwrap();
    path
}

fn start(f: &Fixture) -> (Server, String) {
    let server = Server::start_sim(&f.config(), &f.path("sim-ark.pem"), &[]);
    let url = format!("https://{}", server.addr);
    (server, url)
}

pub(crate) fn client(policy: &Path) -> Client {
    let loaded = cloister_client::policy::load_policy(Some(policy)).unwrap();
    Client::new(loaded.policy, loaded.roots).unwrap()
}

pub(crate) fn good_policy(f: &Fixture) -> PathBuf {
    write_policy(
        f,
        &PolicyOptions {
            trust_sim_root: true,
            measurement: sim_measurement(),
            allow: &["echo"],
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_attests_the_session_before_any_request() {
    let f = Fixture::new(&["echo"]);
    let (server, url) = start(&f);
    let client = client(&good_policy(&f));
    let mut session = client.connect(&url).await.unwrap();
    assert_eq!(session.session.binding, BundleBinding::Session);
    assert!(matches!(
        session.certificate.binding,
        BundleBinding::Cert { .. }
    ));
    assert_eq!(session.session.report.measurement(), &sim_measurement());
    let names: Vec<_> = session
        .session
        .log
        .entries()
        .iter()
        .map(|e| e.name.clone())
        .collect();
    assert_eq!(names, ["echo"]);
    let resp = session
        .call_feature("echo", bytes::Bytes::from_static(b"{\"x\":1}"))
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{:?}", resp.body);
    // A second connection to the same host reuses the verified certificate.
    let again = client.connect(&url).await.unwrap();
    assert_eq!(again.certificate, session.certificate);
    assert_eq!(client.verifier().cold_verifications(), 1);
    let out = server.stop();
    assert!(
        out.contains("SIMULATED"),
        "the host must say it simulates: {out}"
    );
}

#[test]
fn host_requires_an_explicit_tee_choice() {
    let f = Fixture::new(&["echo"]);
    let out = std::process::Command::new(cloister_test_support::host::host_bin())
        .args(["serve", "--config"])
        .arg(f.config())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tee"));
    let out = std::process::Command::new(cloister_test_support::host::host_bin())
        .args(["serve", "--tee", "tdx", "--config"])
        .arg(f.config())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown TEE `tdx`"));
}

#[test]
fn without_a_tee_there_is_no_attestation() {
    let f = Fixture::new(&["echo"]);
    let server = Server::start(&f.config());
    let (status, body) = server.request("GET", "/v1/attestation", b"");
    assert_eq!(status, 404);
    assert!(body.contains("attestation_unavailable"), "{body}");
    let out = server.stop();
    assert!(out.contains("NO TEE"), "{out}");
}

fn rejected_certificate(e: ClientError) -> RaTlsError {
    match e {
        ClientError::CertificateRejected(r) => r,
        other => panic!("expected the certificate to be rejected, got: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_root_without_explicit_trust_is_refused() {
    let f = Fixture::new(&["echo"]);
    let (_server, url) = start(&f);
    let policy = write_policy(
        &f,
        &PolicyOptions {
            trust_sim_root: false,
            measurement: sim_measurement(),
            allow: &["echo"],
        },
    );
    let e = rejected_certificate(client(&policy).connect(&url).await.unwrap_err());
    assert!(
        matches!(
            e,
            RaTlsError::Verify(BundleVerifyError::Verify(
                VerifyError::UntrustedRoot { .. } | VerifyError::NoTrustedRoot { .. }
            ))
        ),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_launch_measurement_is_refused() {
    let f = Fixture::new(&["echo"]);
    let (_server, url) = start(&f);
    let policy = write_policy(
        &f,
        &PolicyOptions {
            trust_sim_root: true,
            measurement: [0x42; 48],
            allow: &["echo"],
        },
    );
    let e = rejected_certificate(client(&policy).connect(&url).await.unwrap_err());
    assert!(
        matches!(
            e,
            RaTlsError::Verify(BundleVerifyError::Verify(
                VerifyError::MeasurementNotAllowed { .. }
            ))
        ),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_plugin_is_refused() {
    let f = Fixture::new(&["echo", "hostile-trap"]);
    let (_server, url) = start(&f);
    let policy = write_policy(
        &f,
        &PolicyOptions {
            trust_sim_root: true,
            measurement: sim_measurement(),
            allow: &["echo"],
        },
    );
    let e = rejected_certificate(client(&policy).connect(&url).await.unwrap_err());
    assert!(
        matches!(&e, RaTlsError::Verify(BundleVerifyError::ArtifactNotAllowed { name, .. }) if name == "hostile-trap"),
        "{e:?}"
    );
}

// ---------------------------------------------------------------------------
// Attackers: a TLS endpoint with its own (hostile) certificate that relays the
// bytes of each connection to the genuine host.

#[derive(Debug)]
struct AcceptAnything;

impl rustls::client::danger::ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Serves `identity` on a loopback port and relays every connection's bytes to the host
/// at `upstream` over the attacker's own TLS session with it. Returns the relay's URL.
async fn spawn_relay(identity: Arc<rustls::sign::CertifiedKey>, upstream: String) -> String {
    let acceptor = tokio_rustls::TlsAcceptor::from(
        server_config(Arc::new(RotatingCertificate::new(identity))).unwrap(),
    );
    let upstream_tls = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnything))
        .with_no_client_auth(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((victim, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let upstream = upstream.clone();
            let upstream_tls = Arc::clone(&upstream_tls);
            tokio::spawn(async move {
                let Ok(mut victim) = acceptor.accept(victim).await else {
                    return;
                };
                let tcp = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                let name = rustls::pki_types::ServerName::try_from("cloister-host").unwrap();
                let mut genuine = tokio_rustls::TlsConnector::from(upstream_tls)
                    .connect(name, tcp)
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut victim, &mut genuine).await;
            });
        }
    });
    format!("https://{addr}")
}

/// A second genuine (simulated) chip running the same image, whose attestor the attacker
/// can use: a leaked RA-TLS key, or a compromised second machine.
fn second_chip() -> SimulatedSnp {
    SimulatedSnp::new(Product::Genoa, sim_measurement(), SystemTime::now()).unwrap()
}

fn trusting_both(policy: &Path, other: &SimulatedSnp) -> Client {
    let loaded = cloister_client::policy::load_policy(Some(policy)).unwrap();
    let roots: TrustedRoots = loaded.roots.with(simulator_root(other));
    Client::new(loaded.policy, roots).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_to_a_second_genuine_chip_is_detected() {
    let f = Fixture::new(&["echo"]);
    let (server, _url) = start(&f);
    let policy = good_policy(&f);
    let chip_b = leak(second_chip());
    let client = trusting_both(&policy, chip_b);
    // The attacker's certificate is genuine: chip B, same image, same plugins.
    let attestor_b = Attestor::new(Arc::new(ChipHandle(chip_b)), &canonical_log(&f.config()));
    let identity = attestor_b.new_identity(Duration::from_secs(600)).unwrap();
    let relay = spawn_relay(identity, server.addr.clone()).await;
    let e = client.connect(&relay).await.unwrap_err();
    // The certificate passes; the session evidence, produced by the genuine host for the
    // attacker's own session, does not match the victim's session.
    assert!(
        matches!(
            e,
            ClientError::SessionEvidenceRejected(BundleVerifyError::Verify(
                VerifyError::ReportDataMismatch {
                    mode: BindingMode::Session
                }
            ))
        ),
        "{e:?}"
    );
    assert_eq!(client.verifier().cold_verifications(), 1);
}

/// A shared handle on a simulated chip, so the test keeps its root while the attacker's
/// attestor uses it.
struct ChipHandle(&'static SimulatedSnp);

/// Tests leak their chips (a few KiB each), which live until the test process ends.
fn leak(chip: SimulatedSnp) -> &'static SimulatedSnp {
    Box::leak(Box::new(chip))
}

impl EvidenceProvider for ChipHandle {
    fn kind(&self) -> cloister_evidence::TeeKind {
        self.0.kind()
    }
    fn evidence(
        &self,
        report_data: [u8; 64],
    ) -> Result<cloister_verifier::Evidence, cloister_evidence::EvidenceError> {
        self.0.evidence(report_data)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_measurement_log_in_the_certificate_is_refused() {
    let f = Fixture::new(&["echo", "hostile-trap"]);
    let (server, _url) = start(&f);
    let policy = good_policy(&f); // allows echo only
    let chip_b = leak(second_chip());
    let client = trusting_both(&policy, chip_b);
    // Genuine evidence for the real log (echo + trap), with `trap` removed from the log
    // carried next to it.
    let real = canonical_log(&f.config());
    let attestor = Attestor::new(Arc::new(ChipHandle(chip_b)), &real);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut bundle = attestor
        .cert_bundle(&key.subject_public_key_info())
        .unwrap();
    let mut hidden = MeasurementLog::new();
    for e in real.entries().iter().filter(|e| e.name != "hostile-trap") {
        hidden.push(e.clone()).unwrap();
    }
    bundle.measurement_log = hidden.canonical_bytes();
    let now = time::OffsetDateTime::now_utc();
    let identity = certified_key(
        key,
        &bundle,
        now - time::Duration::minutes(1),
        now + time::Duration::hours(1),
    )
    .unwrap();
    let relay = spawn_relay(identity, server.addr.clone()).await;
    let e = rejected_certificate(client.connect(&relay).await.unwrap_err());
    assert!(
        matches!(
            e,
            RaTlsError::Verify(BundleVerifyError::Verify(VerifyError::ReportDataMismatch {
                mode: BindingMode::Cert
            }))
        ),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_and_foreign_evidence_is_refused() {
    let f = Fixture::new(&["echo"]);
    let (server, _url) = start(&f);
    let policy = good_policy(&f);
    let chip_b = leak(second_chip());
    let client = trusting_both(&policy, chip_b);
    let attestor = Attestor::new(Arc::new(ChipHandle(chip_b)), &canonical_log(&f.config()));
    let now = time::OffsetDateTime::now_utc();

    // Stale: genuine evidence in a certificate that expired yesterday.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let bundle = attestor
        .cert_bundle(&key.subject_public_key_info())
        .unwrap();
    let stale = certified_key(
        key,
        &bundle,
        now - time::Duration::days(3),
        now - time::Duration::days(1),
    )
    .unwrap();
    let relay = spawn_relay(stale, server.addr.clone()).await;
    let e = rejected_certificate(client.connect(&relay).await.unwrap_err());
    assert!(
        matches!(e, RaTlsError::CertificateNotValidNow { .. }),
        "{e:?}"
    );

    // Foreign: genuine evidence bound to another key, in a certificate for the attacker's.
    let victim_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let bundle = attestor
        .cert_bundle(&victim_key.subject_public_key_info())
        .unwrap();
    let attacker_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let foreign = certified_key(
        attacker_key,
        &bundle,
        now - time::Duration::minutes(1),
        now + time::Duration::hours(1),
    )
    .unwrap();
    let relay = spawn_relay(foreign, server.addr.clone()).await;
    let e = rejected_certificate(client.connect(&relay).await.unwrap_err());
    assert!(matches!(e, RaTlsError::KeyMismatch { .. }), "{e:?}");

    // Stale endorsement: a chip whose VCEK expired years ago.
    let old_chip = leak(
        SimulatedSnp::new(
            Product::Genoa,
            sim_measurement(),
            SystemTime::now() - Duration::from_secs(40 * 365 * 24 * 3600),
        )
        .unwrap(),
    );
    let client = trusting_both(&policy, old_chip);
    let old = Attestor::new(Arc::new(ChipHandle(old_chip)), &canonical_log(&f.config()));
    let identity = old.new_identity(Duration::from_secs(600)).unwrap();
    let relay = spawn_relay(identity, server.addr.clone()).await;
    let e = rejected_certificate(client.connect(&relay).await.unwrap_err());
    assert!(
        matches!(e, RaTlsError::Verify(BundleVerifyError::Verify(_))),
        "{e:?}"
    );
    assert!(e.to_string().contains("expired"), "{e}");
}
