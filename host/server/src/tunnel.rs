//! The tunnel endpoint (inside the CVM): RA-TLS sessions whose TLS records arrive as
//! HTTP request bodies, through the operator's Oblivious HTTP gateway
//! (`cloister_tunnel` describes the whole path).
//!
//! * `POST /v1/tunnel/{session id}` carries one flight of TLS records from the client. The
//!   endpoint feeds them to that session's rustls server connection and answers with the
//!   records the connection produced. `GET /healthz` is the gateway's health check.
//! * A session starts with a ClientHello for an unknown id. The host then makes a key pair
//!   and a certificate **for that session** ([`Attestor::tunnel_identity`]): its evidence
//!   binds the client-chosen session id, the key and the measurement log, so the client
//!   verifies a fresh, session-bound attestation during the handshake, before it sends any
//!   user data, and the handshake plus one request take two round trips.
//! * Inside TLS, each flight carries one Binary HTTP request (RFC 9292, known length),
//!   served by the same [`Api`] as the direct listener (with the session's exporter value,
//!   so `GET /v1/attestation` answers session-mode evidence here too), and the response goes
//!   back as one Binary HTTP message.
//! * Session tickets and resumption are off: they would let the host link sessions.
//! * At most [`TunnelLimits::max_sessions`] sessions live at once; a session unused for
//!   [`TunnelLimits::idle`] is dropped.
//! * A flight that is not a whole number of TLS records is refused before rustls sees it,
//!   so it changes nothing. A record that fails TLS (bad MAC, unexpected message) ends the
//!   session, as TLS requires; the alert goes back to the client.
//!
//! The endpoint sees the gateway's address only, never the client's. It logs sizes,
//! timings and outcomes, never a session id, records or plaintext.

use crate::api::{Api, Connection};
use crate::ratls::{session_exporter, Attestor, RaTlsError};
use bytes::Bytes;
use cloister_tunnel::{
    SessionId, HOST_TUNNEL_PREFIX, MAX_FLIGHT_BYTES, TLS_RECORDS_TYPE, TUNNEL_ALPN,
};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConnection;
use std::collections::HashMap;
use std::future::Future;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// The largest TLS record (RFC 8446 section 5.2: 2^14 + 256 bytes of ciphertext).
const MAX_RECORD_LEN: usize = (1 << 14) + 256;

/// Bounds on the tunnel endpoint's sessions.
#[derive(Debug, Clone, Copy)]
pub struct TunnelLimits {
    /// How many sessions may live at once.
    pub max_sessions: usize,
    /// How long a session may go unused before it is dropped.
    pub idle: Duration,
    /// How long a session's certificate is valid.
    pub cert_validity: Duration,
}

impl Default for TunnelLimits {
    fn default() -> Self {
        TunnelLimits {
            max_sessions: 1024,
            idle: Duration::from_secs(60),
            cert_validity: Duration::from_secs(600),
        }
    }
}

/// Why a flight was refused. Each names what failed; none carries session data.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// The body is empty.
    #[error("the flight is empty: a flight carries at least one TLS record")]
    Empty,
    /// The body is not a sequence of TLS records.
    #[error("the flight is not TLS records: {0}")]
    NotTls(&'static str),
    /// The last record is cut short.
    #[error("the flight ends inside a TLS record: {needed} more bytes were expected")]
    TruncatedRecord {
        /// How many bytes the last record still lacks.
        needed: usize,
    },
    /// The session id is unknown (never started, expired, or ended) and the flight does not
    /// start a handshake.
    #[error("no such session (it expired or ended): start a new one")]
    UnknownSession,
    /// Too many sessions are live.
    #[error("the host has {0} live sessions, its limit: retry later")]
    TooManySessions(usize),
    /// Two flights tried to start the same session at once.
    #[error("the session already exists")]
    SessionExists,
    /// The session's certificate could not be made.
    #[error("cannot make the session's certificate")]
    Identity(#[source] RaTlsError),
    /// The certificate task failed.
    #[error("the certificate task failed")]
    IdentityTask,
}

impl TunnelError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            TunnelError::Empty | TunnelError::NotTls(_) => (StatusCode::BAD_REQUEST, "not_tls"),
            TunnelError::TruncatedRecord { .. } => {
                (StatusCode::BAD_REQUEST, "truncated_tls_record")
            }
            TunnelError::UnknownSession => (StatusCode::NOT_FOUND, "session_lost"),
            TunnelError::TooManySessions(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "too_many_sessions")
            }
            TunnelError::SessionExists => (StatusCode::CONFLICT, "session_exists"),
            TunnelError::Identity(_) | TunnelError::IdentityTask => {
                (StatusCode::SERVICE_UNAVAILABLE, "attestation_failed")
            }
        }
    }
}

/// Checks that `flight` is a whole, non-empty sequence of TLS records (RFC 8446 section
/// 5.1: content type, legacy version, 16-bit length), before rustls sees any of it.
pub fn check_records(flight: &[u8]) -> Result<usize, TunnelError> {
    if flight.is_empty() {
        return Err(TunnelError::Empty);
    }
    let mut rest = flight;
    let mut records = 0;
    while !rest.is_empty() {
        if rest.len() < 5 {
            return Err(TunnelError::TruncatedRecord {
                needed: 5 - rest.len(),
            });
        }
        if !matches!(rest[0], 20..=23) {
            return Err(TunnelError::NotTls("unknown record content type"));
        }
        if rest[1] != 3 || !matches!(rest[2], 1 | 3) {
            return Err(TunnelError::NotTls("unknown record version"));
        }
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        if len == 0 || len > MAX_RECORD_LEN {
            return Err(TunnelError::NotTls("record length out of range"));
        }
        if rest.len() < 5 + len {
            return Err(TunnelError::TruncatedRecord {
                needed: 5 + len - rest.len(),
            });
        }
        rest = &rest[5 + len..];
        records += 1;
    }
    Ok(records)
}

struct Session {
    conn: ServerConnection,
    exporter: Option<[u8; cloister_protocol::binding::EXPORTER_LEN]>,
}

struct Entry {
    session: Arc<tokio::sync::Mutex<Session>>,
    last_used: Instant,
}

/// Serves one certificate: the one made for the session.
#[derive(Debug)]
struct SessionCertificate(Arc<CertifiedKey>);

impl ResolvesServerCert for SessionCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// The outcome of one flight: the records to send back, and whether the session ended.
#[derive(Debug)]
pub struct FlightResult {
    /// TLS records for the client (possibly an alert).
    pub records: Vec<u8>,
    /// The session ended (TLS error, or the client closed it) and was removed.
    pub closed: bool,
}

/// The tunnel endpoint's sessions.
pub struct Tunnel {
    api: Arc<Api>,
    attestor: Arc<Attestor>,
    limits: TunnelLimits,
    sessions: Mutex<HashMap<SessionId, Entry>>,
}

impl std::fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnel")
            .field("limits", &self.limits)
            .field("sessions", &self.live_sessions())
            .finish()
    }
}

impl Tunnel {
    /// A tunnel endpoint serving `api`, attesting with `attestor`.
    pub fn new(api: Arc<Api>, attestor: Arc<Attestor>, limits: TunnelLimits) -> Tunnel {
        Tunnel {
            api,
            attestor,
            limits,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<SessionId, Entry>> {
        match self.sessions.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// How many sessions are live.
    pub fn live_sessions(&self) -> usize {
        self.sessions().len()
    }

    /// Drops every session unused since `now - idle`; returns how many were dropped.
    pub fn sweep(&self, now: Instant) -> usize {
        let idle = self.limits.idle;
        let mut sessions = self.sessions();
        let before = sessions.len();
        sessions.retain(|_, e| now.saturating_duration_since(e.last_used) < idle);
        before - sessions.len()
    }

    fn remove(&self, id: &SessionId) {
        self.sessions().remove(id);
    }

    /// Feeds one flight of TLS records to session `id` and returns what the session
    /// produced. Starts the session if `id` is unknown and the flight starts a handshake.
    pub async fn exchange(
        &self,
        id: SessionId,
        flight: &[u8],
    ) -> Result<FlightResult, TunnelError> {
        check_records(flight)?;
        let existing = {
            let mut sessions = self.sessions();
            sessions.get_mut(&id).map(|e| {
                e.last_used = Instant::now();
                Arc::clone(&e.session)
            })
        };
        match existing {
            Some(session) => {
                let mut session = session.lock().await;
                let result = self.drive(&mut session, flight).await;
                if result.closed {
                    self.remove(&id);
                }
                Ok(result)
            }
            None => self.start(id, flight).await,
        }
    }

    async fn start(&self, id: SessionId, flight: &[u8]) -> Result<FlightResult, TunnelError> {
        // A new session starts with a handshake record (the ClientHello).
        if flight[0] != 22 {
            return Err(TunnelError::UnknownSession);
        }
        if self.live_sessions() >= self.limits.max_sessions {
            // Make room from idle sessions first; refuse only if none is idle.
            self.sweep(Instant::now());
            let live = self.live_sessions();
            if live >= self.limits.max_sessions {
                return Err(TunnelError::TooManySessions(live));
            }
        }
        let started = Instant::now();
        let identity = {
            let attestor = Arc::clone(&self.attestor);
            let validity = self.limits.cert_validity;
            tokio::task::spawn_blocking(move || attestor.tunnel_identity(&id.0, validity))
                .await
                .map_err(|_| TunnelError::IdentityTask)?
                .map_err(TunnelError::Identity)?
        };
        let identity_micros = started.elapsed().as_micros() as u64;
        let config = session_config(identity).map_err(TunnelError::Identity)?;
        let conn =
            ServerConnection::new(config).map_err(|e| TunnelError::Identity(RaTlsError::Tls(e)))?;
        let mut session = Session {
            conn,
            exporter: None,
        };
        let result = self.drive(&mut session, flight).await;
        if result.closed {
            // A flight that fails TLS starts nothing.
            return Ok(result);
        }
        let mut sessions = self.sessions();
        if sessions.contains_key(&id) {
            return Err(TunnelError::SessionExists);
        }
        if sessions.len() >= self.limits.max_sessions {
            return Err(TunnelError::TooManySessions(sessions.len()));
        }
        sessions.insert(
            id,
            Entry {
                session: Arc::new(tokio::sync::Mutex::new(session)),
                last_used: Instant::now(),
            },
        );
        tracing::debug!(
            identity_micros,
            live = sessions.len(),
            "tunnel session started"
        );
        Ok(result)
    }

    /// Runs one flight through the session's TLS connection, serves the request it
    /// completes (if any), and collects the records to send back.
    async fn drive(&self, session: &mut Session, flight: &[u8]) -> FlightResult {
        let mut input = flight;
        let mut closed = false;
        while !input.is_empty() {
            match session.conn.read_tls(&mut input) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "tunnel: reading TLS records failed");
                    closed = true;
                    break;
                }
            }
            match session.conn.process_new_packets() {
                Ok(state) => {
                    if state.peer_has_closed() {
                        closed = true;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "tunnel: TLS error; the session ends");
                    closed = true;
                    break;
                }
            }
        }
        if !closed && !session.conn.is_handshaking() && session.exporter.is_none() {
            match session_exporter(&session.conn) {
                Ok(e) => session.exporter = Some(e),
                Err(e) => {
                    tracing::warn!(error = %e, "tunnel: cannot compute the TLS exporter");
                    closed = true;
                }
            }
        }
        if !closed {
            let mut plaintext = Vec::new();
            match session.conn.reader().read_to_end(&mut plaintext) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    tracing::debug!(error = %e, "tunnel: reading plaintext failed");
                    closed = true;
                }
            }
            if !plaintext.is_empty() && !closed {
                let response = self.serve_plaintext(&plaintext, session.exporter).await;
                if let Err(e) = session.conn.writer().write_all(&response) {
                    tracing::warn!(error = %e, "tunnel: cannot queue the response");
                    closed = true;
                }
            }
        }
        if closed {
            session.conn.send_close_notify();
        }
        let mut records = Vec::new();
        while session.conn.wants_write() {
            match session.conn.write_tls(&mut records) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "tunnel: writing TLS records failed");
                    closed = true;
                    break;
                }
            }
        }
        FlightResult { records, closed }
    }

    /// Decodes one Binary HTTP request, serves it with the API and encodes the response.
    async fn serve_plaintext(
        &self,
        plaintext: &[u8],
        exporter: Option<[u8; cloister_protocol::binding::EXPORTER_LEN]>,
    ) -> Vec<u8> {
        let started = Instant::now();
        let resp = match decode_request(plaintext) {
            Ok(req) => {
                let conn = Connection { exporter };
                self.api.handle(req, &conn).await
            }
            Err(message) => bad_request(message),
        };
        let status = resp.status().as_u16();
        let encoded = encode_response(resp).await;
        tracing::debug!(
            in_bytes = plaintext.len(),
            out_bytes = encoded.len(),
            status,
            micros = started.elapsed().as_micros() as u64,
            "tunnel request"
        );
        encoded
    }
}

fn session_config(identity: Arc<CertifiedKey>) -> Result<Arc<rustls::ServerConfig>, RaTlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])?
    .with_no_client_auth()
    .with_cert_resolver(Arc::new(SessionCertificate(identity)));
    config.alpn_protocols = vec![TUNNEL_ALPN.to_vec()];
    // Tickets and a session cache would let the host recognise a client's next session.
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.max_early_data_size = 0;
    Ok(Arc::new(config))
}

/// A Binary HTTP request (known or indeterminate length) as an HTTP request for the API.
/// The whole plaintext must be exactly one message.
fn decode_request(plaintext: &[u8]) -> Result<Request<Full<Bytes>>, &'static str> {
    let mut cursor = std::io::Cursor::new(plaintext);
    let msg = bhttp::Message::read_bhttp(&mut cursor)
        .map_err(|_| "the tunneled request is not a Binary HTTP message")?;
    if usize::try_from(cursor.position()).ok() != Some(plaintext.len()) {
        return Err("a flight carries exactly one Binary HTTP request");
    }
    let control = msg.control();
    let (Some(method), Some(path)) = (control.method(), control.path()) else {
        return Err("the tunneled message is not a request");
    };
    let method =
        Method::from_bytes(method).map_err(|_| "the tunneled request's method is invalid")?;
    let path = std::str::from_utf8(path).map_err(|_| "the tunneled request's path is not UTF-8")?;
    let mut builder = Request::builder().method(method).uri(path);
    for field in msg.header().iter() {
        builder = builder.header(field.name(), field.value());
    }
    builder
        .body(Full::new(Bytes::copy_from_slice(msg.content())))
        .map_err(|_| "the tunneled request's path or headers are invalid")
}

fn bad_request(message: &str) -> crate::api::Resp {
    let body =
        serde_json::json!({ "error": { "code": "bad_tunneled_request", "message": message } })
            .to_string();
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::BAD_REQUEST;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

async fn encode_response(resp: crate::api::Resp) -> Vec<u8> {
    let (parts, body) = resp.into_parts();
    // `Full` cannot fail.
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(never) => match never {},
    };
    // The API answers 200..=599 only, all of which Binary HTTP encodes.
    let status =
        bhttp::StatusCode::try_from(parts.status.as_u16()).unwrap_or(bhttp::StatusCode::OK);
    let mut msg = bhttp::Message::response(status);
    for (name, value) in parts.headers.iter() {
        msg.put_header(name.as_str(), value.as_bytes());
    }
    msg.write_content(&body);
    let mut out = Vec::with_capacity(body.len() + 64);
    // Writing into a Vec cannot fail.
    let _ = msg.write_bhttp(bhttp::Mode::KnownLength, &mut out);
    out
}

/// Serves the tunnel endpoint on `listener` (plain HTTP: the bodies are TLS records) until
/// `shutdown` completes, sweeping idle sessions every `idle / 2`.
pub async fn run(listener: TcpListener, tunnel: Arc<Tunnel>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let sweeper = {
        let tunnel = Arc::clone(&tunnel);
        let every = (tunnel.limits.idle / 2).max(Duration::from_millis(100));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            loop {
                ticker.tick().await;
                let dropped = tunnel.sweep(Instant::now());
                if dropped > 0 {
                    tracing::debug!(dropped, "idle tunnel sessions dropped");
                }
            }
        })
    };
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "tunnel accept failed");
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let tunnel = Arc::clone(&tunnel);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let tunnel = Arc::clone(&tunnel);
                async move { Ok::<_, std::convert::Infallible>(serve(&tunnel, req).await) }
            });
            if let Err(e) = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "tunnel connection ended with an error");
            }
        });
    }
    sweeper.abort();
}

fn problem(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let ty = match code {
        "session_lost" => cloister_tunnel::PROBLEM_SESSION_LOST,
        _ => "about:blank",
    };
    let body = serde_json::json!({ "type": ty, "title": code, "detail": message }).to_string();
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    resp
}

async fn serve(tunnel: &Tunnel, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    if path == "/healthz" {
        return if req.method() == Method::GET {
            let mut resp = Response::new(Full::new(Bytes::from_static(b"{\"status\":\"ok\"}")));
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        } else {
            problem(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "GET only",
            )
        };
    }
    let Some(id) = path.strip_prefix(HOST_TUNNEL_PREFIX) else {
        return problem(StatusCode::NOT_FOUND, "not_found", "no such route");
    };
    if req.method() != Method::POST {
        return problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "POST only",
        );
    }
    let id: SessionId = match id.parse() {
        Ok(id) => id,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "bad_session_id", &e.to_string()),
    };
    let content_type = req.headers().get(CONTENT_TYPE).map(|v| v.as_bytes());
    if content_type != Some(TLS_RECORDS_TYPE.as_bytes()) {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be application/cloister-tls-records",
        );
    }
    let body = match Limited::new(req.into_body(), MAX_FLIGHT_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "flight_too_large",
                &format!("a flight carries at most {MAX_FLIGHT_BYTES} bytes"),
            )
        }
        Err(_) => return problem(StatusCode::BAD_REQUEST, "bad_body", "cannot read the body"),
    };
    let started = Instant::now();
    match tunnel.exchange(id, &body).await {
        Ok(result) => {
            tracing::debug!(
                in_bytes = body.len(),
                out_bytes = result.records.len(),
                closed = result.closed,
                micros = started.elapsed().as_micros() as u64,
                "tunnel flight"
            );
            let mut resp = Response::new(Full::new(Bytes::from(result.records)));
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(TLS_RECORDS_TYPE));
            resp
        }
        Err(e) => {
            let (status, code) = e.status_and_code();
            tracing::debug!(in_bytes = body.len(), code, "tunnel flight refused");
            problem(status, code, &crate::error_chain(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_framing_is_checked_before_tls() {
        let hello = [22u8, 3, 1, 0, 2, 1, 0];
        assert_eq!(check_records(&hello).ok(), Some(1));
        let two = [hello.as_slice(), &[23, 3, 3, 0, 1, 9]].concat();
        assert_eq!(check_records(&two).ok(), Some(2));
        assert!(matches!(check_records(&[]), Err(TunnelError::Empty)));
        assert!(matches!(
            check_records(&hello[..6]),
            Err(TunnelError::TruncatedRecord { needed: 1 })
        ));
        assert!(matches!(
            check_records(&hello[..3]),
            Err(TunnelError::TruncatedRecord { needed: 2 })
        ));
        assert!(matches!(
            check_records(b"POST / HTTP/1.1\r\n"),
            Err(TunnelError::NotTls(_))
        ));
        assert!(matches!(
            check_records(&[22, 3, 1, 0, 0]),
            Err(TunnelError::NotTls(_))
        ));
        assert!(matches!(
            check_records(&[22, 3, 1, 0x48, 0x01]),
            Err(TunnelError::NotTls(_))
        ));
        assert!(matches!(
            check_records(&[22, 2, 0, 0, 1, 0]),
            Err(TunnelError::NotTls(_))
        ));
    }

    #[test]
    fn binary_http_requests_decode_exactly_once() {
        let mut msg = bhttp::Message::request(
            b"POST".to_vec(),
            b"https".to_vec(),
            b"cloister-host".to_vec(),
            b"/v1/features/summarize".to_vec(),
        );
        msg.put_header("content-type", "application/json");
        msg.write_content(b"{}");
        let mut bytes = Vec::new();
        msg.write_bhttp(bhttp::Mode::KnownLength, &mut bytes)
            .expect("encode");
        let req = decode_request(&bytes).expect("decodes");
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri().path(), "/v1/features/summarize");
        assert_eq!(req.headers()[CONTENT_TYPE], "application/json");
        // Two messages in one flight, garbage, and a response are refused.
        let twice = [bytes.as_slice(), &bytes].concat();
        assert!(decode_request(&twice).is_err());
        assert!(decode_request(b"\xff\xff").is_err());
        let mut resp = Vec::new();
        bhttp::Message::response(bhttp::StatusCode::OK)
            .write_bhttp(bhttp::Mode::KnownLength, &mut resp)
            .expect("encode");
        assert!(decode_request(&resp).is_err());
    }
}
