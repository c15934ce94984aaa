//! RA-TLS handshake and verification against a plain rustls TLS 1.3 handshake, in one run.
//!
//! Both servers run the host's real accept loop ([`cloister_host::listener::run`]) on
//! loopback in this process, with the same rustls configuration (TLS 1.3, ring, P-256);
//! only the certificate differs. The RA-TLS host uses the simulated SNP chip.
//!
//! * `plain_tls13_handshake`: TCP + handshake, the client verifying a self-signed
//!   certificate against itself as trust anchor (webpki).
//! * `ratls_handshake/{cached,cold}`: TCP + handshake, the client verifying the
//!   certificate's SNP evidence (cold: every time from scratch; cached: the verified
//!   certificate is remembered).
//! * `ratls_connect/{cached,cold}`: what `Client::connect` does before any user data:
//!   handshake + `GET /v1/attestation` (a fresh session-bound report) + its verification.
//! * `verify/{certificate_cold,session_chain_cached}`: the pure verification alone.
//!
//! Run: `cargo bench -p cloister-host --bench handshake` (unset RUST_BACKTRACE).
use cloister_client::{AttestingVerifier, Client};
use cloister_host::api::Api;
use cloister_host::load::LoadedHost;
use cloister_host::ratls::{server_config, Attestor, RotatingCertificate};
use cloister_measurement::{Entry, EntryKind, MeasurementLog};
use cloister_snp_sim::SimulatedSnp;
use cloister_verifier::{Policy, Product, TrustedRoots};
use criterion::{criterion_group, criterion_main, Criterion};
use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

fn log() -> MeasurementLog {
    let mut log = MeasurementLog::new();
    for (kind, name) in [
        (EntryKind::Model, "all-minilm-l6-v2"),
        (EntryKind::Plugin, "summarize"),
        (EntryKind::Plugin, "writing-help"),
    ] {
        log.push(Entry {
            kind,
            name: name.into(),
            version: "0.1.0".into(),
            sha256: "ab".repeat(32),
            signer_key_id: (kind == EntryKind::Plugin).then(|| "cd".repeat(32)),
        })
        .expect("valid entry");
    }
    log
}

struct Setup {
    rt: tokio::runtime::Runtime,
    ratls_url: String,
    ratls_addr: String,
    plain_addr: String,
    plain_client: Arc<rustls::ClientConfig>,
    policy: Policy,
    roots: TrustedRoots,
    cert_der: Vec<u8>,
    attestor: Arc<Attestor>,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let measurement = [7u8; 48];
    let chip = SimulatedSnp::new(Product::Genoa, measurement, SystemTime::now()).expect("sim");
    let root = cloister_test_support::simulator_root(&chip);
    let log = log();
    let attestor = Arc::new(Attestor::new(Arc::new(chip), &log));
    let identity = attestor
        .new_identity(Duration::from_secs(3600))
        .expect("identity");
    let cert_der = identity.cert[0].as_ref().to_vec();
    let ratls = server_config(Arc::new(RotatingCertificate::new(identity))).expect("config");

    // The plain server: same rustls configuration, an ordinary self-signed certificate.
    let plain_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let plain_cert = rcgen::CertificateParams::new(vec!["cloister-host".to_owned()])
        .expect("params")
        .self_signed(&plain_key)
        .expect("cert");
    let plain_identity = Arc::new(rustls::sign::CertifiedKey::new(
        vec![plain_cert.der().clone()],
        rustls::crypto::ring::default_provider()
            .key_provider
            .load_private_key(rustls::pki_types::PrivateKeyDer::Pkcs8(
                plain_key.serialize_der().into(),
            ))
            .expect("key"),
    ));
    let plain = server_config(Arc::new(RotatingCertificate::new(plain_identity))).expect("config");
    let mut roots_store = rustls::RootCertStore::empty();
    roots_store
        .add(plain_cert.der().clone())
        .expect("trust anchor");
    let plain_client = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("tls13")
        .with_root_certificates(roots_store)
        .with_no_client_auth(),
    );

    let host = LoadedHost {
        models: Vec::new(),
        plugins: Default::default(),
        log,
        load_time: Duration::ZERO,
    };
    let api = Arc::new(Api::new(host, 1 << 20, Some(Arc::clone(&attestor))));
    let (ratls_addr, plain_addr) = rt.block_on(async {
        let mut addrs = Vec::new();
        for config in [ratls, plain] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            addrs.push(listener.local_addr().expect("addr").to_string());
            let api = Arc::clone(&api);
            tokio::spawn(cloister_host::listener::run(
                listener,
                api,
                Some(tokio_rustls::TlsAcceptor::from(config)),
                std::future::pending(),
            ));
        }
        (addrs[0].clone(), addrs[1].clone())
    });
    let mut policy = Policy::default();
    policy.artifacts.allow_any_plugin = true;
    policy.artifacts.allow_any_model = true;
    Setup {
        rt,
        ratls_url: format!("https://{ratls_addr}"),
        ratls_addr,
        plain_addr,
        plain_client,
        policy,
        roots: TrustedRoots::amd().with(root),
        cert_der,
        attestor,
    }
}

async fn handshake(config: Arc<rustls::ClientConfig>, addr: &str) {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let name = ServerName::try_from("cloister-host").expect("name");
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .expect("handshake");
    drop(tls);
}

fn attesting_config(verifier: Arc<AttestingVerifier>) -> Arc<rustls::ClientConfig> {
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("tls13")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth(),
    )
}

fn bench(c: &mut Criterion) {
    let s = setup();
    let mut g = c.benchmark_group("handshake");
    g.measurement_time(Duration::from_secs(4));

    g.bench_function("plain_tls13_handshake", |b| {
        b.to_async(&s.rt)
            .iter(|| handshake(Arc::clone(&s.plain_client), &s.plain_addr))
    });
    let cached = attesting_config(Arc::new(AttestingVerifier::new(
        s.policy.clone(),
        s.roots.clone(),
        true,
    )));
    g.bench_function("ratls_handshake/cached", |b| {
        b.to_async(&s.rt)
            .iter(|| handshake(Arc::clone(&cached), &s.ratls_addr))
    });
    let cold = attesting_config(Arc::new(AttestingVerifier::new(
        s.policy.clone(),
        s.roots.clone(),
        false,
    )));
    g.bench_function("ratls_handshake/cold", |b| {
        b.to_async(&s.rt)
            .iter(|| handshake(Arc::clone(&cold), &s.ratls_addr))
    });
    let client = Client::new(s.policy.clone(), s.roots.clone()).expect("client");
    g.bench_function("ratls_connect/cached", |b| {
        b.to_async(&s.rt)
            .iter(|| async { client.connect(&s.ratls_url).await.expect("attested") })
    });
    let cold_client =
        Client::with_caching(s.policy.clone(), s.roots.clone(), false).expect("client");
    g.bench_function("ratls_connect/cold", |b| {
        b.to_async(&s.rt)
            .iter(|| async { cold_client.connect(&s.ratls_url).await.expect("attested") })
    });
    g.finish();

    let mut g = c.benchmark_group("verify");
    let verifier = AttestingVerifier::new(s.policy.clone(), s.roots.clone(), false);
    g.bench_function("certificate_cold", |b| {
        b.iter(|| {
            verifier
                .verify_certificate(&s.cert_der, SystemTime::now())
                .expect("verified")
        })
    });
    let exporter = [9u8; 32];
    let bundle = s.attestor.session_bundle(&exporter).expect("bundle");
    let warm = AttestingVerifier::new(s.policy.clone(), s.roots.clone(), true);
    warm.verify_session(&bundle, exporter, SystemTime::now())
        .expect("verified");
    g.bench_function("session_chain_cached", |b| {
        b.iter(|| {
            warm.verify_session(&bundle, exporter, SystemTime::now())
                .expect("verified")
        })
    });
    g.bench_function("session_evidence_generation_sim", |b| {
        b.iter(|| s.attestor.session_bundle(&exporter).expect("bundle"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
