//! The tunnel endpoint: RA-TLS sessions carried as TLS records in HTTP bodies (what the
//! Oblivious HTTP gateway forwards), with a certificate made for each session.
//!
//! In-process tests drive [`Tunnel`] directly through a [`FlightTransport`]; the last test
//! runs the real host binary with `[tunnel]` and calls a plugin through it.

use crate::ratls::{client, good_policy, sim_measurement};
use cloister_client::tunnel::{DirectTransport, FlightTransport, TransportError};
use cloister_client::{Client, ClientError};
use cloister_host::api::Api;
use cloister_host::load::LoadedHost;
use cloister_host::ratls::Attestor;
use cloister_host::tunnel::{Tunnel, TunnelError, TunnelLimits};
use cloister_measurement::MeasurementLog;
use cloister_snp_sim::SimulatedSnp;
use cloister_test_support::host::{Fixture, Server};
use cloister_test_support::simulator_root;
use cloister_tunnel::SessionId;
use cloister_verifier::ratls::RaTlsError;
use cloister_verifier::{BundleBinding, BundleVerifyError, PolicyFile, Product};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Flights straight into an in-process [`Tunnel`], recording every byte in both
/// directions.
struct InProcess {
    tunnel: Arc<Tunnel>,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl FlightTransport for InProcess {
    async fn exchange(
        &self,
        session: &SessionId,
        records: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        self.seen.lock().unwrap().extend_from_slice(&records);
        match self.tunnel.exchange(*session, &records).await {
            Ok(r) => {
                self.seen.lock().unwrap().extend_from_slice(&r.records);
                Ok(r.records)
            }
            Err(TunnelError::UnknownSession) => Err(TransportError::SessionLost),
            Err(e) => Err(TransportError::Refused {
                status: 400,
                code: format!("{e:?}"),
                detail: e.to_string(),
            }),
        }
    }
}

struct Setup {
    tunnel: Arc<Tunnel>,
    client: Client,
    chip: Arc<SimulatedSnp>,
}

fn setup(limits: TunnelLimits) -> Setup {
    let chip =
        Arc::new(SimulatedSnp::new(Product::Genoa, sim_measurement(), SystemTime::now()).unwrap());
    let log = MeasurementLog::new();
    let attestor = Arc::new(Attestor::new(chip.clone(), &log));
    let host = LoadedHost {
        models: Vec::new(),
        plugins: Default::default(),
        log: log.clone(),
        load_time: Duration::ZERO,
    };
    let api = Arc::new(Api::new(host, 1 << 20, Some(Arc::clone(&attestor))));
    let tunnel = Arc::new(Tunnel::new(api, attestor, limits));
    let file = PolicyFile::for_measured_host(&[sim_measurement()], &log);
    let (policy, roots) = file.to_policy(None, None).unwrap();
    let client = Client::new(policy, roots.with(simulator_root(&chip))).unwrap();
    Setup {
        tunnel,
        client,
        chip,
    }
}

fn transport(s: &Setup) -> InProcess {
    InProcess {
        tunnel: Arc::clone(&s.tunnel),
        seen: Arc::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_and_a_request_take_two_round_trips_with_session_bound_evidence() {
    let s = setup(TunnelLimits::default());
    let mut session = s.client.connect_tunnel(transport(&s)).await.unwrap();
    // The certificate was made for this session: its evidence binds the session id.
    match session.evidence.binding {
        BundleBinding::Tunnel { session_id, .. } => assert_eq!(&session_id, &session.id().0),
        other => panic!("expected tunnel-bound evidence, got {other:?}"),
    }
    assert_eq!(session.evidence.report.measurement(), &sim_measurement());
    assert_eq!(session.stats.round_trips, 1);
    assert_eq!(s.tunnel.live_sessions(), 1);
    let resp = session.get("/v1/measurement").await.unwrap();
    assert_eq!(resp.status, 200, "{:?}", resp.body);
    assert!(std::str::from_utf8(&resp.body).unwrap().contains("sha256"));
    assert_eq!(session.stats.round_trips, 2, "handshake + one request");
    // The session also serves exporter-bound evidence, as the direct listener does.
    let resp = session.get("/v1/attestation").await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(session.stats.round_trips, 3);
    // Nothing in the records is plaintext: the path and the JSON never appear.
    let seen = session.transport().seen.lock().unwrap().clone();
    for needle in [
        &b"/v1/measurement"[..],
        b"sha256",
        b"cloister-measurement-log",
    ] {
        assert!(
            !seen.windows(needle.len()).any(|w| w == needle),
            "plaintext {:?} crossed the tunnel",
            String::from_utf8_lossy(needle)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_session_gets_its_own_key_and_no_tickets() {
    let s = setup(TunnelLimits::default());
    let mut a = s.client.connect_tunnel(transport(&s)).await.unwrap();
    let b = s.client.connect_tunnel(transport(&s)).await.unwrap();
    let key = |e: &cloister_verifier::VerifiedEvidence| match e.binding {
        BundleBinding::Tunnel { spki_sha256, .. } => spki_sha256,
        _ => panic!("not tunnel-bound"),
    };
    assert_ne!(key(&a.evidence), key(&b.evidence));
    assert_ne!(a.id(), b.id());
    // A request after the handshake yields exactly one response: no NewSessionTicket
    // arrives (rustls would queue it as a ticket for resumption).
    let resp = a.get("/healthz").await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(s.tunnel.live_sessions(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_made_for_another_session_is_refused() {
    let s = setup(TunnelLimits::default());
    // An attacker holding the certificate (and key) of session A presents it to a client
    // that chose session B: a leaked per-session key is worth nothing elsewhere.
    let attestor = Attestor::new(s.chip.clone(), &MeasurementLog::new());
    let a = SessionId::random().unwrap();
    let b = SessionId::random().unwrap();
    let identity = attestor
        .tunnel_identity(&a.0, Duration::from_secs(60))
        .unwrap();
    let cert = identity.cert[0].as_ref();
    let verifier = s.client.verifier();
    assert!(verifier
        .verify_tunnel_certificate(cert, &a.0, SystemTime::now())
        .is_ok());
    let e = verifier
        .verify_tunnel_certificate(cert, &b.0, SystemTime::now())
        .unwrap_err();
    assert!(
        matches!(
            e,
            RaTlsError::Verify(BundleVerifyError::TunnelSessionMismatch)
        ),
        "{e:?}"
    );
    // A tunnel certificate is no ordinary RA-TLS certificate either (it is only valid for
    // the client that chose its session) ...
    let e = verifier
        .verify_certificate(cert, SystemTime::now())
        .unwrap_err();
    assert!(
        matches!(
            e,
            RaTlsError::Verify(BundleVerifyError::TunnelSessionRequired)
        ),
        "{e:?}"
    );
    // ... and an ordinary certificate is refused for a tunneled session.
    let ordinary = attestor.new_identity(Duration::from_secs(60)).unwrap();
    let e = verifier
        .verify_tunnel_certificate(ordinary.cert[0].as_ref(), &a.0, SystemTime::now())
        .unwrap_err();
    assert!(
        matches!(
            e,
            RaTlsError::Verify(BundleVerifyError::TunnelBindingRequired { .. })
        ),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flights_are_refused_without_changing_the_session() {
    let s = setup(TunnelLimits::default());
    let t = transport(&s);
    let mut session = s.client.connect_tunnel(t).await.unwrap();
    let id = *session.id();
    // A flight cut inside a record, and bytes that are not TLS: refused before TLS sees
    // them, so the session goes on.
    let genuine_hello_prefix = [23u8, 3, 3, 0, 40, 1, 2, 3];
    for bad in [&genuine_hello_prefix[..], b"GET / HTTP/1.1\r\n\r\n", b""] {
        let e = s.tunnel.exchange(id, bad).await.unwrap_err();
        assert!(
            matches!(
                e,
                TunnelError::TruncatedRecord { .. } | TunnelError::NotTls(_) | TunnelError::Empty
            ),
            "{e:?}"
        );
    }
    assert_eq!(s.tunnel.live_sessions(), 1);
    let resp = session.get("/healthz").await.unwrap();
    assert_eq!(resp.status, 200);
    // Records for a session nobody started, other than a ClientHello: the session is lost.
    let stranger = SessionId::random().unwrap();
    let e = s
        .tunnel
        .exchange(stranger, &[23, 3, 3, 0, 1, 0])
        .await
        .unwrap_err();
    assert!(matches!(e, TunnelError::UnknownSession), "{e:?}");
    // A ClientHello that is garbage inside starts nothing.
    let r = s
        .tunnel
        .exchange(stranger, &[22, 3, 1, 0, 4, 1, 0, 0, 0])
        .await
        .unwrap();
    assert!(r.closed);
    assert_eq!(s.tunnel.live_sessions(), 1);
    // A forged application-data record in a live session fails TLS: the session ends (TLS
    // requires it), with an alert for the client.
    let r = s
        .tunnel
        .exchange(
            id,
            &[
                23, 3, 3, 0, 32, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
            ],
        )
        .await
        .unwrap();
    assert!(r.closed);
    // The alert is encrypted (TLS 1.3 after the handshake): an application-data record.
    assert_eq!(
        r.records.first(),
        Some(&23),
        "an (encrypted) alert goes back"
    );
    assert_eq!(s.tunnel.live_sessions(), 0);
    let e = session.get("/healthz").await.unwrap_err();
    assert!(
        matches!(e, ClientError::Tunnel(TransportError::SessionLost)),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_bounded_and_idle_ones_expire() {
    let s = setup(TunnelLimits {
        max_sessions: 2,
        idle: Duration::from_secs(30),
        ..TunnelLimits::default()
    });
    let _a = s.client.connect_tunnel(transport(&s)).await.unwrap();
    let mut b = s.client.connect_tunnel(transport(&s)).await.unwrap();
    let e = s.client.connect_tunnel(transport(&s)).await.unwrap_err();
    assert!(
        matches!(
            &e,
            ClientError::Tunnel(TransportError::Refused { detail, .. }) if detail.contains("limit")
        ),
        "{e:?}"
    );
    assert_eq!(s.tunnel.live_sessions(), 2);
    // Nothing is idle yet.
    assert_eq!(s.tunnel.sweep(Instant::now()), 0);
    // Seen from 31 s later, both are idle and dropped; a new session then starts.
    assert_eq!(s.tunnel.sweep(Instant::now() + Duration::from_secs(31)), 2);
    assert_eq!(s.tunnel.live_sessions(), 0);
    let e = b.get("/healthz").await.unwrap_err();
    assert!(
        matches!(e, ClientError::Tunnel(TransportError::SessionLost)),
        "{e:?}"
    );
    let mut c = s.client.connect_tunnel(transport(&s)).await.unwrap();
    assert_eq!(c.get("/healthz").await.unwrap().status, 200);
}

/// The real host binary with `[tunnel]`: a plugin call through the tunnel endpoint over
/// HTTP, two round trips, verified against the policy the operator publishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_binary_serves_a_feature_through_its_tunnel_endpoint() {
    let f = Fixture::new(&["echo"]);
    let mut config = std::fs::read_to_string(f.config()).unwrap();
    config.push_str("\n[tunnel]\nlisten = \"127.0.0.1:0\"\nmax_sessions = 8\n");
    std::fs::write(f.config(), config).unwrap();
    let server = Server::start_sim(&f.config(), &f.path("sim-ark.pem"), &[]);
    let tunnel = server.tunnel_addr();
    let client = client(&good_policy(&f));
    let transport = DirectTransport::new(&format!("http://{tunnel}")).unwrap();
    let mut session = client.connect_tunnel(transport).await.unwrap();
    let names: Vec<_> = session
        .evidence
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
    assert_eq!(session.stats.round_trips, 2);
    // A policy that does not allow the plugin refuses the host during the handshake: no
    // request is ever sent.
    let strict = crate::ratls::write_policy(
        &f,
        &crate::ratls::PolicyOptions {
            trust_sim_root: true,
            measurement: sim_measurement(),
            allow: &[],
        },
    );
    let transport = DirectTransport::new(&format!("http://{tunnel}")).unwrap();
    let e = crate::ratls::client(&strict)
        .connect_tunnel(transport)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::CertificateRejected(_)), "{e:?}");
    // The tunnel listener refuses what is not a flight.
    let (status, body) = post_raw(
        &tunnel,
        "/v1/tunnel/zz",
        "application/cloister-tls-records",
        b"x",
    );
    assert_eq!(status, 400, "{body}");
    let path = format!("/v1/tunnel/{}", SessionId::random().unwrap().to_hex());
    let (status, body) = post_raw(&tunnel, &path, "text/plain", b"x");
    assert_eq!(status, 415, "{body}");
    let (status, body) = post_raw(
        &tunnel,
        &path,
        "application/cloister-tls-records",
        &[22, 3, 1, 0, 9, 1],
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("truncated_tls_record"), "{body}");
    server.stop();
}

fn post_raw(addr: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}
