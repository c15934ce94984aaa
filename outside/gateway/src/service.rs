//! The gateway's HTTP service.
//!
//! | request | answer |
//! |---|---|
//! | `GET /ohttp-keys` | `application/ohttp-keys`: the configurations valid now |
//! | `POST /ohttp`, `message/ohttp-req` | `200 message/ohttp-res` (the inner response, below), or an outer error |
//!
//! **Outer errors** (plain, readable by the relay; they concern only the encapsulation):
//! 415 wrong content type; 413 more than [`MAX_OHTTP_REQUEST_BYTES`]; 400 text for a request
//! too short to parse; 400 `application/problem+json` of type
//! [`cloister_tunnel::PROBLEM_OHTTP_KEY`] for an unknown or expired key id, algorithms the
//! configuration does not offer, or a request that does not decrypt (RFC 9458 section 5.3:
//! the client refetches the keys); 500 if the response cannot be sealed.
//!
//! **Inner responses** (Binary HTTP, known-length, sealed to the client): everything about
//! the inner request, so that the relay learns nothing from the status. The inner request
//! must be `POST /v1/tunnel` with one `cloister-session` header.
//!
//! * malformed Binary HTTP, bad session header: 400; other paths: 404; other methods: 405;
//!   a body over [`cloister_tunnel::MAX_FLIGHT_BYTES`]: 413;
//! * a session not mapped yet needs `Authorization` with a token the [`TokenCheck`] accepts:
//!   missing or invalid → 401 with `WWW-Authenticate`; spent before → 401 with problem type
//!   [`PROBLEM_TOKEN_SPENT`]. The token is spent only after it verified and a live host was
//!   chosen (no live host → 503, token kept). Later messages of a mapped session carry no
//!   token. A session whose mapping idled out looks new: its next message gets 401, which
//!   a client mid-session treats as a lost session;
//! * the body (TLS records, opaque here: never parsed or logged) goes to `POST
//!   {host}/v1/tunnel/{session hex}`; the host's status and body (and content type) come
//!   back as the inner response;
//! * the host unreachable, timing out, answering 404 (it does not know the session) or a
//!   body over the flight limit → 503 with problem type
//!   [`cloister_tunnel::PROBLEM_SESSION_LOST`], and the mapping is dropped.
//!
//! Someone else's session id: only the gateway and the client see session ids (the relay
//! sees ciphertext). A message naming an existing session is forwarded to that session's
//! host without a token; the host feeds it to that session's TLS connection, which rejects
//! records it did not produce keys for (a decryption failure and an alert), so a foreign
//! sender can end a session it learned the id of but cannot read or inject data.
//!
//! Logs: route, statuses, sizes, durations, key id, host index. Never session ids, tokens
//! or bodies.

use std::convert::Infallible;
use std::future::Future;
use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cloister_tunnel::{
    SessionId, HOST_TUNNEL_PREFIX, INNER_TUNNEL_PATH, KEYS_PATH, MAX_FLIGHT_BYTES, OHTTP_KEYS_TYPE,
    OHTTP_PATH, OHTTP_REQ_TYPE, OHTTP_RES_TYPE, PROBLEM_OHTTP_KEY, PROBLEM_SESSION_LOST,
    SESSION_HEADER, TLS_RECORDS_TYPE,
};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::encap::{decapsulate, DecapError};
use crate::keys::KeySet;
use crate::route::{HostPool, RouteError};
use crate::store::{Spend, SpentTokens};
use crate::tokens::TokenCheck;

/// Room for the encapsulation, the Binary HTTP framing, the session header and a token on
/// top of one flight of TLS records.
pub const ENCAPSULATION_ALLOWANCE: usize = 16 * 1024;
/// Largest `POST /ohttp` body.
pub const MAX_OHTTP_REQUEST_BYTES: usize = MAX_FLIGHT_BYTES + ENCAPSULATION_ALLOWANCE;
/// Problem type of a token that was already spent (a replay).
pub const PROBLEM_TOKEN_SPENT: &str = "https://cloister.dev/problems/token-spent";
/// `Content-Type` of problem details (RFC 9457).
pub const PROBLEM_TYPE: &str = "application/problem+json";
/// Most connections served at once.
pub const MAX_CONNECTIONS: usize = 1024;
/// How long a client (the relay) may take to send request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Timeouts toward the hosts.
#[derive(Debug, Clone, Copy)]
pub struct GatewayConfig {
    /// Connecting to a host.
    pub host_connect_timeout: Duration,
    /// One forwarded flight, request and response.
    pub host_timeout: Duration,
    /// One health check.
    pub health_timeout: Duration,
}

impl Default for GatewayConfig {
    fn default() -> GatewayConfig {
        GatewayConfig {
            host_connect_timeout: Duration::from_secs(3),
            host_timeout: Duration::from_secs(60),
            health_timeout: Duration::from_secs(3),
        }
    }
}

type HostClient = Client<HttpConnector, Full<Bytes>>;

/// The gateway: keys, token check, spent-token store and hosts.
pub struct Gateway {
    keys: KeySet,
    tokens: Arc<dyn TokenCheck>,
    store: Arc<dyn SpentTokens>,
    pool: Arc<HostPool>,
    client: HostClient,
    config: GatewayConfig,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("pool", &self.pool)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// An inner (Binary HTTP) response before encoding.
#[derive(Debug)]
struct Inner {
    status: u16,
    content_type: Option<String>,
    www_authenticate: Option<String>,
    retry_after: Option<u32>,
    body: Vec<u8>,
    host: Option<usize>,
}

impl Inner {
    fn problem(status: u16, kind: &str, title: &str, detail: &str) -> Inner {
        Inner {
            status,
            content_type: Some(PROBLEM_TYPE.to_owned()),
            www_authenticate: None,
            retry_after: None,
            body: problem_json(kind, title, status, detail),
            host: None,
        }
    }

    fn encode(&self) -> Vec<u8> {
        // A host status bhttp cannot carry (a final 1xx, or above 599) becomes 502.
        let status = match self.status {
            200..=599 => bhttp::StatusCode::try_from(self.status).ok(),
            _ => None,
        }
        .or_else(|| bhttp::StatusCode::try_from(502u16).ok())
        .unwrap_or(bhttp::StatusCode::OK);
        let mut m = bhttp::Message::response(status);
        if let Some(ct) = &self.content_type {
            m.put_header("content-type", ct.as_bytes());
        }
        if let Some(w) = &self.www_authenticate {
            m.put_header("www-authenticate", w.as_bytes());
        }
        if let Some(r) = self.retry_after {
            m.put_header("retry-after", r.to_string());
        }
        m.write_content(&self.body);
        let mut out = Vec::with_capacity(self.body.len() + 64);
        // Writing to a Vec fails only on lengths over 2^62.
        let _ = m.write_bhttp(bhttp::Mode::KnownLength, &mut out);
        out
    }
}

fn problem_json(kind: &str, title: &str, status: u16, detail: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "type": kind,
        "title": title,
        "status": status,
        "detail": detail,
    }))
    .unwrap_or_default()
}

fn response(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    response(
        status,
        "text/plain; charset=utf-8",
        format!("{body}\n").into_bytes(),
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whether a `Content-Type` value is `want` (case-insensitive, parameters ignored).
pub fn content_type_is(value: Option<&HeaderValue>, want: &str) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(want))
}

enum HostError {
    /// Could not connect: the host is down.
    Connect,
    /// Connected but failed or timed out.
    Failed,
    /// Answered with more than a flight.
    TooLarge,
}

impl Gateway {
    /// A gateway over these parts.
    pub fn new(
        keys: KeySet,
        tokens: Arc<dyn TokenCheck>,
        store: Arc<dyn SpentTokens>,
        pool: Arc<HostPool>,
        config: GatewayConfig,
    ) -> Arc<Gateway> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.host_connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Arc::new(Gateway {
            keys,
            tokens,
            store,
            pool,
            client,
            config,
        })
    }

    /// The host pool.
    pub fn pool(&self) -> &Arc<HostPool> {
        &self.pool
    }

    /// Checks every host now: `GET {host}/healthz` answering 200 within the health timeout.
    pub async fn check_hosts(&self) {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..self.pool.len() {
            let Some(base) = self.pool.base(i) else {
                continue;
            };
            let uri = format!("{base}/healthz");
            let client = self.client.clone();
            let timeout = self.config.health_timeout;
            set.spawn(async move {
                let ok = match hyper::Request::get(uri.as_str()).body(Full::new(Bytes::new())) {
                    Ok(req) => match tokio::time::timeout(timeout, client.request(req)).await {
                        Ok(Ok(resp)) => resp.status() == StatusCode::OK,
                        _ => false,
                    },
                    Err(_) => false,
                };
                (i, ok)
            });
        }
        while let Some(r) = set.join_next().await {
            if let Ok((i, ok)) = r {
                self.pool.set_healthy(i, ok);
            }
        }
        self.pool.purge_idle();
    }

    /// Checks the hosts every `interval` (the first time at once) until the handle is
    /// aborted.
    pub fn spawn_health_checks(self: &Arc<Self>, interval: Duration) -> JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                me.check_hosts().await;
            }
        })
    }

    /// Serves one HTTP request.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let started = Instant::now();
        let path = req.uri().path().to_owned();
        let r = match (req.method(), path.as_str()) {
            (&Method::GET, KEYS_PATH) => self.keys_response(),
            (&Method::POST, OHTTP_PATH) => {
                if !content_type_is(req.headers().get(CONTENT_TYPE), OHTTP_REQ_TYPE) {
                    text(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        &format!("an encapsulated request is {OHTTP_REQ_TYPE}"),
                    )
                } else {
                    match read_body(req.into_body(), MAX_OHTTP_REQUEST_BYTES).await {
                        Ok(body) => return Ok(self.ohttp(&body).await),
                        Err(r) => r,
                    }
                }
            }
            (_, KEYS_PATH | OHTTP_PATH) => {
                text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
            }
            _ => text(StatusCode::NOT_FOUND, "not found"),
        };
        tracing::info!(
            route = route_name(&path),
            status = r.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "request"
        );
        Ok(r)
    }

    /// `GET /ohttp-keys`.
    pub fn keys_response(&self) -> Response<Full<Bytes>> {
        let body = self.keys.encoded_configs(unix_now());
        if body.is_empty() {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "no key configuration is valid now",
            );
        }
        let mut r = response(StatusCode::OK, OHTTP_KEYS_TYPE, body);
        r.headers_mut().insert(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        );
        r
    }

    /// `POST /ohttp` with the body read: decapsulate, serve the inner request, encapsulate.
    pub async fn ohttp(&self, enc_request: &[u8]) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let opened = match decapsulate(&self.keys, unix_now(), enc_request) {
            Ok(d) => d,
            Err(e) => {
                let key_id = enc_request.first().copied();
                tracing::info!(route = OHTTP_PATH, status = 400, bytes_in = enc_request.len(), ?key_id, error = %e, "refused");
                return outer_decap_error(&e);
            }
        };
        let key_id = opened.key_id;
        let inner = self.inner(&opened.request).await;
        let encoded = inner.encode();
        let r = match opened.response.encapsulate(&encoded) {
            Ok(sealed) => {
                let mut r = response(StatusCode::OK, OHTTP_RES_TYPE, sealed);
                r.headers_mut()
                    .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                r
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot seal a response");
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the response could not be sealed",
                )
            }
        };
        tracing::info!(
            route = OHTTP_PATH,
            status = r.status().as_u16(),
            inner_status = inner.status,
            key_id,
            host = inner.host,
            bytes_in = enc_request.len(),
            bytes_out = encoded.len(),
            ms = started.elapsed().as_millis() as u64,
            "request"
        );
        r
    }

    async fn inner(&self, request: &[u8]) -> Inner {
        let msg = match bhttp::Message::read_bhttp(&mut Cursor::new(request)) {
            Ok(m) => m,
            Err(_) => {
                return Inner::problem(
                    400,
                    "about:blank",
                    "Bad Request",
                    "the inner request is not Binary HTTP (RFC 9292)",
                )
            }
        };
        let control = msg.control();
        if !control.is_request() {
            return Inner::problem(
                400,
                "about:blank",
                "Bad Request",
                "the inner message is not a request",
            );
        }
        if control.path() != Some(INNER_TUNNEL_PATH.as_bytes()) {
            return Inner::problem(
                404,
                "about:blank",
                "Not Found",
                "the gateway serves POST /v1/tunnel only",
            );
        }
        if control.method() != Some(b"POST".as_slice()) {
            return Inner::problem(
                405,
                "about:blank",
                "Method Not Allowed",
                "POST /v1/tunnel only",
            );
        }
        let mut values = msg.header().get_all(SESSION_HEADER.as_bytes());
        let session = match (values.next(), values.next()) {
            (Some(v), None) => std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<SessionId>().ok()),
            _ => None,
        };
        let Some(session) = session else {
            return Inner::problem(
                400,
                "about:blank",
                "Bad Request",
                "one cloister-session header with 64 lower-case hex digits is required",
            );
        };
        let body = msg.content();
        if body.len() > MAX_FLIGHT_BYTES {
            return Inner::problem(
                413,
                "about:blank",
                "Content Too Large",
                &format!("a flight is at most {MAX_FLIGHT_BYTES} bytes"),
            );
        }
        let host = match self.pool.lookup(&session) {
            Some(h) => h,
            None => {
                let auth = msg.header().get(b"authorization");
                match self.admit(auth).await {
                    Ok(h) => self.pool.bind(session, h),
                    Err(r) => return r,
                }
            }
        };
        let mut r = match self.forward(host, &session, body).await {
            Ok(r) => r,
            Err(e) => {
                self.pool.drop_session(&session, host);
                if matches!(e, HostError::Connect) {
                    self.pool.set_healthy(host, false);
                }
                let why = match e {
                    HostError::Connect => "the session's host is unreachable",
                    HostError::Failed => "the session's host failed or does not know the session",
                    HostError::TooLarge => "the session's host answered more than a flight",
                };
                let mut r = Inner::problem(
                    503,
                    PROBLEM_SESSION_LOST,
                    "Session Lost",
                    &format!("{why}; start a new session"),
                );
                r.retry_after = Some(0);
                r
            }
        };
        r.host = Some(host);
        r
    }

    /// A new session: check the token, choose a host, then spend the token.
    async fn admit(&self, auth: Option<&[u8]>) -> Result<usize, Inner> {
        let challenge = || Some(self.tokens.challenge_header());
        let Some(auth) = auth.and_then(|a| std::str::from_utf8(a).ok()) else {
            let mut r = Inner::problem(
                401,
                "about:blank",
                "Unauthorized",
                "a new session needs a token (Authorization: PrivateToken token=...)",
            );
            r.www_authenticate = challenge();
            return Err(r);
        };
        let nonce = match self.tokens.check(auth) {
            Ok(n) => n,
            Err(e) => {
                let mut r = Inner::problem(401, "about:blank", "Unauthorized", &e.to_string());
                r.www_authenticate = challenge();
                return Err(r);
            }
        };
        let host = match self.pool.choose() {
            Ok(h) => h,
            Err(e) => {
                let mut r = Inner::problem(
                    503,
                    "about:blank",
                    "Service Unavailable",
                    &match e {
                        RouteError::Full(_) => {
                            "too many sessions; retry later (the token was not spent)".to_owned()
                        }
                        _ => {
                            "no host is available; retry later (the token was not spent)".to_owned()
                        }
                    },
                );
                r.retry_after = Some(5);
                return Err(r);
            }
        };
        match self.store.spend(&nonce).await {
            Ok(Spend::Fresh) => Ok(host),
            Ok(Spend::AlreadySpent) => {
                let mut r = Inner::problem(
                    401,
                    PROBLEM_TOKEN_SPENT,
                    "Token Already Spent",
                    "this token was spent before; present a new one",
                );
                r.www_authenticate = challenge();
                Err(r)
            }
            Err(e) => {
                tracing::error!(error = %e, "spent-token store failed");
                let mut r = Inner::problem(
                    503,
                    "about:blank",
                    "Service Unavailable",
                    "the token could not be checked for reuse; retry later",
                );
                r.retry_after = Some(5);
                Err(r)
            }
        }
    }

    /// `POST {host}/v1/tunnel/{session hex}` with the records; the host's answer.
    async fn forward(
        &self,
        host: usize,
        session: &SessionId,
        records: &[u8],
    ) -> Result<Inner, HostError> {
        let base = self.pool.base(host).ok_or(HostError::Failed)?;
        let hex = session.to_hex();
        let req = hyper::Request::post(format!("{base}{HOST_TUNNEL_PREFIX}{hex}"))
            .header(CONTENT_TYPE, TLS_RECORDS_TYPE)
            .header(SESSION_HEADER, hex.as_str())
            .body(Full::new(Bytes::copy_from_slice(records)))
            .map_err(|_| HostError::Failed)?;
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| {
                if e.is_connect() {
                    HostError::Connect
                } else {
                    HostError::Failed
                }
            })?;
            let status = resp.status().as_u16();
            let content_type = resp
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = Limited::new(resp.into_body(), MAX_FLIGHT_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        HostError::TooLarge
                    } else {
                        HostError::Failed
                    }
                })?
                .to_bytes();
            Ok::<_, HostError>((status, content_type, body))
        };
        let (status, content_type, body) = tokio::time::timeout(self.config.host_timeout, exchange)
            .await
            .map_err(|_| HostError::Failed)??;
        if status == 404 {
            return Err(HostError::Failed);
        }
        Ok(Inner {
            status,
            content_type,
            www_authenticate: None,
            retry_after: None,
            body: body.to_vec(),
            host: Some(host),
        })
    }
}

fn route_name(path: &str) -> &'static str {
    match path {
        KEYS_PATH => KEYS_PATH,
        OHTTP_PATH => OHTTP_PATH,
        _ => "other",
    }
}

fn outer_decap_error(e: &DecapError) -> Response<Full<Bytes>> {
    if e.is_key_problem() {
        response(
            StatusCode::BAD_REQUEST,
            PROBLEM_TYPE,
            problem_json(
                PROBLEM_OHTTP_KEY,
                "Oblivious HTTP key configuration not acceptable",
                400,
                &e.to_string(),
            ),
        )
    } else {
        text(
            StatusCode::BAD_REQUEST,
            &format!("malformed encapsulated request: {e}"),
        )
    }
}

async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, Response<Full<Bytes>>> {
    match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, limit).collect()).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("an encapsulated request is at most {limit} bytes"),
            ))
        }
        Ok(Err(_)) => Err(text(
            StatusCode::BAD_REQUEST,
            "the request body could not be read",
        )),
        Err(_) => Err(text(StatusCode::REQUEST_TIMEOUT, "the body took too long")),
    }
}

/// Serves the gateway on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()>,
) {
    cloister_http_serve::serve(
        listener,
        cloister_http_serve::Limits {
            max_connections: MAX_CONNECTIONS,
            header_timeout: HEADER_TIMEOUT,
        },
        gateway,
        Gateway::handle,
        shutdown,
    )
    .await
}
