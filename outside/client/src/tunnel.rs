//! RA-TLS over flights: a TLS session whose records travel as HTTP bodies, to the host's
//! tunnel endpoint either directly ([`DirectTransport`], for operators and tests) or
//! through an Oblivious HTTP relay and gateway (`crate::oblivious`). See `cloister_tunnel`
//! for the path.
//!
//! 1. The client picks a random session id and sends its ClientHello (flight 1).
//! 2. The host answers with a certificate made for this session: its evidence binds the
//!    session id, the certificate's key and the measurement log. The client's
//!    [`TunnelCertVerifier`] checks it during the handshake under the policy; the handshake
//!    signature proves the host holds that key. Nothing is sent if this fails.
//! 3. Only then does the client send a request: its Finished and the first Binary HTTP
//!    request go in flight 2, and the response comes back in the same round trip. Every
//!    later request is one more flight.
//!
//! The connection offers TLS 1.3 only, no resumption and no tickets (they would link
//! sessions), and ALPN `cloister-tunnel/1`.

use std::future::Future;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloister_tunnel::{
    SessionId, HOST_TUNNEL_PREFIX, MAX_FLIGHT_BYTES, TLS_RECORDS_TYPE, TUNNEL_ALPN,
};
use cloister_verifier::VerifiedEvidence;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::ClientConnection;

use crate::verifier::TunnelCertVerifier;
use crate::{certificate_rejection_of, Client, ClientError, Response, MAX_RESPONSE_BYTES};

/// Why a flight did not come back.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The HTTP exchange failed (connection, protocol, timeout).
    #[error("the flight's HTTP exchange failed: {0}")]
    Http(String),
    /// The session is gone (its host died or it expired): start a new session. Retryable.
    #[error("the session was lost (its host is gone or it expired): start a new session")]
    SessionLost,
    /// A key (the gateway's or the issuer's) is not published in the transparency log, or
    /// its proof did not verify: possibly a key for this client alone.
    #[error("key consistency: {0}")]
    KeyNotPublished(String),
    /// No token could be obtained for a new session.
    #[error("cannot obtain a token for the session: {0}")]
    Token(String),
    /// A hop refused the flight.
    #[error("the flight was refused: HTTP {status} {code}: {detail}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The problem's title or type.
        code: String,
        /// The problem's detail, escaped and truncated.
        detail: String,
    },
}

/// Carries one flight of TLS records for a session and returns the answering records.
pub trait FlightTransport: Send + Sync {
    /// Sends `records` for `session` and returns the records the host produced.
    fn exchange(
        &self,
        session: &SessionId,
        records: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, TransportError>> + Send;
}

/// A shared transport carries flights for several sessions (a retry on a new session, or
/// sessions in parallel).
impl<T: FlightTransport> FlightTransport for Arc<T> {
    fn exchange(
        &self,
        session: &SessionId,
        records: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, TransportError>> + Send {
        (**self).exchange(session, records)
    }
}

/// How long one flight may take (the host's feature deadline plus slack).
pub const FLIGHT_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads a problem document (RFC 9457) or an error body into (code, detail).
pub(crate) fn problem_of(body: &[u8]) -> (String, String) {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    let pick = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .map(cloister_display::excerpt)
            .unwrap_or_default()
    };
    let code = match pick("title") {
        t if !t.is_empty() => t,
        _ => pick("type"),
    };
    (code, pick("detail"))
}

/// One kept-alive HTTP/1.1 connection to `http://HOST:PORT` (reopened when it drops).
pub(crate) struct HttpConn {
    pub(crate) authority: String,
    sender: tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>,
}

/// An HTTP answer: status, content type, body.
pub(crate) struct HttpAnswer {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: Bytes,
}

impl HttpConn {
    /// A connection to `http://HOST:PORT` (no path).
    pub(crate) fn new(url: &str, what: &'static str) -> Result<HttpConn, ClientError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| ClientError::Url {
                url: url.to_owned(),
                reason: what,
            })?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(ClientError::Url {
                url: url.to_owned(),
                reason: what,
            });
        }
        Ok(HttpConn {
            authority: authority.to_owned(),
            sender: tokio::sync::Mutex::new(None),
        })
    }

    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
        max_answer: usize,
    ) -> Result<HttpAnswer, TransportError> {
        let http = |e: String| TransportError::Http(e);
        let mut guard = self.sender.lock().await;
        let reusable = match guard.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            let tcp = tokio::net::TcpStream::connect(&self.authority)
                .await
                .map_err(|e| http(format!("cannot connect to {}: {e}", self.authority)))?;
            let _ = tcp.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(|e| http(e.to_string()))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            *guard = Some(sender);
        }
        let Some(sender) = guard.as_mut() else {
            return Err(http("no connection".into()));
        };
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.authority);
        if let Some(ct) = content_type {
            req = req.header(hyper::header::CONTENT_TYPE, ct);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| http(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| http(e.to_string()))?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = Limited::new(resp.into_body(), max_answer)
            .collect()
            .await
            .map_err(|e| http(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok(HttpAnswer {
            status,
            content_type,
            body,
        })
    }
}

/// Flights straight to a host's tunnel endpoint (`http://HOST:PORT`), over one kept-alive
/// HTTP/1.1 connection. For operators and tests: the host sees the client's address.
pub struct DirectTransport {
    conn: HttpConn,
}

impl std::fmt::Debug for DirectTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectTransport")
            .field("authority", &self.conn.authority)
            .finish_non_exhaustive()
    }
}

impl DirectTransport {
    /// A transport to the tunnel endpoint at `http://HOST:PORT`.
    pub fn new(url: &str) -> Result<DirectTransport, ClientError> {
        Ok(DirectTransport {
            conn: HttpConn::new(url, "a tunnel endpoint URL is http://HOST:PORT")?,
        })
    }
}

impl FlightTransport for DirectTransport {
    async fn exchange(
        &self,
        session: &SessionId,
        records: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        let path = format!("{HOST_TUNNEL_PREFIX}{}", session.to_hex());
        let HttpAnswer { status, body, .. } = self
            .conn
            .send(
                "POST",
                &path,
                Some(TLS_RECORDS_TYPE),
                records,
                MAX_FLIGHT_BYTES + 4096,
            )
            .await?;
        match status {
            200 => Ok(body.to_vec()),
            404 => Err(TransportError::SessionLost),
            _ => {
                let (code, detail) = problem_of(&body);
                Err(TransportError::Refused {
                    status,
                    code,
                    detail,
                })
            }
        }
    }
}

/// Statistics of a tunneled session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunnelStats {
    /// Flights sent (each one round trip).
    pub round_trips: u32,
    /// TLS-record bytes sent.
    pub bytes_out: usize,
    /// TLS-record bytes received.
    pub bytes_in: usize,
    /// Time of the handshake flight, certificate verification included.
    pub handshake: Duration,
}

/// A tunneled RA-TLS session whose host passed attestation for this session id.
pub struct TunnelSession<T: FlightTransport> {
    id: SessionId,
    conn: ClientConnection,
    transport: T,
    /// The verified evidence of the certificate the host made for this session.
    pub evidence: VerifiedEvidence,
    /// Round trips and bytes so far.
    pub stats: TunnelStats,
}

impl<T: FlightTransport> std::fmt::Debug for TunnelSession<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelSession")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn feed(conn: &mut ClientConnection, records: &[u8]) -> Result<(), ClientError> {
    let mut input = records;
    while !input.is_empty() {
        match conn.read_tls(&mut input) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(ClientError::Handshake(format!("reading TLS records: {e}"))),
        }
        conn.process_new_packets()
            .map_err(|e| match certificate_rejection_of(&e) {
                Some(rejection) => ClientError::CertificateRejected(rejection),
                None => ClientError::Handshake(e.to_string()),
            })?;
    }
    Ok(())
}

fn drain(conn: &mut ClientConnection) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    while conn.wants_write() {
        match conn.write_tls(&mut out) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(ClientError::Handshake(format!("writing TLS records: {e}"))),
        }
    }
    Ok(out)
}

impl Client {
    /// Starts a tunneled RA-TLS session over `transport` and attests the host during the
    /// handshake, for a fresh random session id (one round trip). No user data is sent
    /// before this returns `Ok`.
    pub async fn connect_tunnel<T: FlightTransport>(
        &self,
        transport: T,
    ) -> Result<TunnelSession<T>, ClientError> {
        let id = SessionId::random().map_err(|e| {
            ClientError::Handshake(format!("no randomness for the session id: {e}"))
        })?;
        self.connect_tunnel_with_id(transport, id).await
    }

    /// As [`Client::connect_tunnel`] with a given session id (tests; a real client always
    /// takes a fresh random one).
    pub async fn connect_tunnel_with_id<T: FlightTransport>(
        &self,
        transport: T,
        id: SessionId,
    ) -> Result<TunnelSession<T>, ClientError> {
        let verifier = Arc::new(TunnelCertVerifier::new(Arc::clone(&self.verifier), id.0));
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
        config.alpn_protocols = vec![TUNNEL_ALPN.to_vec()];
        config.resumption = rustls::client::Resumption::disabled();
        config.enable_early_data = false;
        // The name is only used for SNI; trust comes from the evidence.
        let name = ServerName::try_from("cloister-host")
            .map_err(|_| ClientError::Handshake("invalid server name".into()))?;
        let mut conn = ClientConnection::new(Arc::new(config), name)?;
        let started = Instant::now();
        let hello = drain(&mut conn)?;
        let mut stats = TunnelStats {
            bytes_out: hello.len(),
            ..TunnelStats::default()
        };
        let answer = tokio::time::timeout(FLIGHT_TIMEOUT, transport.exchange(&id, hello))
            .await
            .map_err(|_| ClientError::Timeout(FLIGHT_TIMEOUT))?
            .map_err(ClientError::Tunnel)?;
        stats.round_trips = 1;
        stats.bytes_in = answer.len();
        feed(&mut conn, &answer)?;
        if conn.is_handshaking() {
            return Err(ClientError::Handshake(
                "the host's answer did not complete the TLS handshake".into(),
            ));
        }
        if conn.alpn_protocol() != Some(TUNNEL_ALPN) {
            return Err(ClientError::Handshake(
                "the host did not agree to the tunnel protocol (ALPN cloister-tunnel/1)".into(),
            ));
        }
        let evidence = verifier.verified().ok_or_else(|| {
            ClientError::Handshake("the handshake completed without a verified certificate".into())
        })?;
        stats.handshake = started.elapsed();
        Ok(TunnelSession {
            id,
            conn,
            transport,
            evidence,
            stats,
        })
    }
}

impl<T: FlightTransport> TunnelSession<T> {
    /// Sends one request (as Binary HTTP inside TLS, one flight) and returns the response.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Response, ClientError> {
        let mut msg = bhttp::Message::request(
            method.as_bytes().to_vec(),
            b"https".to_vec(),
            b"cloister-host".to_vec(),
            path.as_bytes().to_vec(),
        );
        if body.is_some() {
            msg.put_header("content-type", "application/json");
        }
        msg.write_content(body.unwrap_or_default());
        let mut encoded = Vec::new();
        msg.write_bhttp(bhttp::Mode::KnownLength, &mut encoded)
            .map_err(|e| ClientError::Http(format!("cannot encode the request: {e}")))?;
        self.conn
            .writer()
            .write_all(&encoded)
            .map_err(|e| ClientError::Http(format!("cannot queue the request: {e}")))?;
        let flight = drain(&mut self.conn)?;
        if flight.len() > MAX_FLIGHT_BYTES {
            return Err(ClientError::Http(format!(
                "the request takes {} bytes of TLS records, more than a flight carries ({MAX_FLIGHT_BYTES})",
                flight.len()
            )));
        }
        self.stats.bytes_out += flight.len();
        let answer =
            tokio::time::timeout(FLIGHT_TIMEOUT, self.transport.exchange(&self.id, flight))
                .await
                .map_err(|_| ClientError::Timeout(FLIGHT_TIMEOUT))?
                .map_err(ClientError::Tunnel)?;
        self.stats.round_trips += 1;
        self.stats.bytes_in += answer.len();
        feed(&mut self.conn, &answer)?;
        let mut plaintext = Vec::new();
        match self.conn.reader().read_to_end(&mut plaintext) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(ClientError::Http(format!("reading the response: {e}"))),
        }
        if plaintext.is_empty() {
            return Err(ClientError::Http(
                "the host's answer carried no response".into(),
            ));
        }
        if plaintext.len() > MAX_RESPONSE_BYTES {
            return Err(ClientError::Http("the response is too large".into()));
        }
        let mut cursor = std::io::Cursor::new(plaintext.as_slice());
        let msg = bhttp::Message::read_bhttp(&mut cursor)
            .map_err(|e| ClientError::Http(format!("the response is not Binary HTTP: {e}")))?;
        if usize::try_from(cursor.position()).ok() != Some(plaintext.len()) {
            return Err(ClientError::Http(
                "the answer carried more than one response".into(),
            ));
        }
        let status = msg
            .control()
            .status()
            .map(|s| s.code())
            .ok_or_else(|| ClientError::Http("the answer is not a response".into()))?;
        Ok(Response {
            status,
            body: Bytes::copy_from_slice(msg.content()),
        })
    }

    /// `GET path` over the session.
    pub async fn get(&mut self, path: &str) -> Result<Response, ClientError> {
        self.request("GET", path, None).await
    }

    /// Calls feature `name` with a JSON `input` over the session.
    pub async fn call_feature(
        &mut self,
        name: &str,
        input: Bytes,
    ) -> Result<Response, ClientError> {
        self.request("POST", &format!("/v1/features/{name}"), Some(input))
            .await
    }

    /// The session id (never log it).
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }
}
