//! An Oblivious HTTP relay (RFC 9458 sections 6 and 7): it knows the client's address, the
//! gateway knows what the client asked; neither knows both.
//!
//! | request | forwarded as |
//! |---|---|
//! | `POST /ohttp`, `Content-Type: message/ohttp-req` | `POST {gateway}/ohttp` with only `Content-Type` (and the length) |
//! | `GET /ohttp-keys` | `GET {gateway}/ohttp-keys` with no header but `Host` |
//! | anything else | 404 (405 for another method on those paths), not forwarded |
//!
//! Nothing from the client's request is forwarded but the body and, for `/ohttp`, the fixed
//! content type: no cookies, `User-Agent`, `Authorization`, `Forwarded`/`X-Forwarded-For`,
//! `Via`, query strings or anything else; and the relay adds nothing that names the client.
//! From the gateway's answer only the status, `Content-Type`, `Cache-Control` and body come
//! back. Requests and answers are bounded ([`DEFAULT_MAX_BODY`]: 413 for a larger request,
//! 502 for a larger answer), a wrong content type is 415, an unreachable gateway 502 and a
//! slow one 504. Bodies are opaque (HPKE ciphertext): never parsed or logged; logs carry
//! the route, status, sizes and duration only.
//!
//! The connection to the gateway is plain HTTP (`http://` only): TLS to the gateway is out
//! of scope for this crate and belongs in front of it (see `docs/transport.md`). The relay
//! pools connections to the gateway, so requests of different clients share connections.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloister_tunnel::{KEYS_PATH, MAX_FLIGHT_BYTES, OHTTP_PATH, OHTTP_REQ_TYPE};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

/// Room for the encapsulation, the Binary HTTP framing, the session header and a token on
/// top of one flight of TLS records (the gateway allows the same).
pub const ENCAPSULATION_ALLOWANCE: usize = 16 * 1024;
/// Default bound on a request or response body.
pub const DEFAULT_MAX_BODY: usize = MAX_FLIGHT_BYTES + ENCAPSULATION_ALLOWANCE;
/// Most client connections served at once.
pub const MAX_CONNECTIONS: usize = 4096;
/// How long a client may take to send its request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The relay's configuration.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The gateway's base URL, `http://host:port[/prefix]`.
    pub gateway: String,
    /// Largest request and response body.
    pub max_body: usize,
    /// Connecting to the gateway.
    pub connect_timeout: Duration,
    /// One whole exchange: reading the client's body, the gateway's answer and its body.
    pub timeout: Duration,
}

impl RelayConfig {
    /// Defaults for `gateway`: [`DEFAULT_MAX_BODY`], 5 s to connect, 60 s in all.
    pub fn new(gateway: &str) -> RelayConfig {
        RelayConfig {
            gateway: gateway.to_owned(),
            max_body: DEFAULT_MAX_BODY,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
        }
    }
}

/// Why the relay cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The gateway URL is not usable.
    #[error("gateway url {url:?}: {why}")]
    GatewayUrl {
        /// The URL.
        url: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A zero body bound or timeout.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
}

/// The running relay.
pub struct Relay {
    ohttp: Uri,
    keys: Uri,
    max_body: usize,
    timeout: Duration,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("ohttp", &self.ohttp)
            .field("max_body", &self.max_body)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{body}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn is_limit(e: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    e.downcast_ref::<http_body_util::LengthLimitError>()
        .is_some()
}

impl Relay {
    /// A relay for `config`.
    pub fn new(config: &RelayConfig) -> Result<Arc<Relay>, RelayError> {
        let bad = |why| RelayError::GatewayUrl {
            url: config.gateway.clone(),
            why,
        };
        let base: Uri = config.gateway.parse().map_err(|_| bad("not a URL"))?;
        if base.scheme_str() != Some("http") {
            return Err(bad(
                "only http:// (put TLS in front of the gateway separately)",
            ));
        }
        let authority = base.authority().ok_or(bad("no host"))?;
        if base.query().is_some() {
            return Err(bad("no query string"));
        }
        let prefix = base.path().trim_end_matches('/');
        let at = |path: &str| -> Result<Uri, RelayError> {
            format!("http://{authority}{prefix}{path}")
                .parse()
                .map_err(|_| bad("cannot form the gateway's routes"))
        };
        if config.max_body == 0 {
            return Err(RelayError::Zero("--max-body"));
        }
        if config.timeout.is_zero() || config.connect_timeout.is_zero() {
            return Err(RelayError::Zero("the timeout"));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        Ok(Arc::new(Relay {
            ohttp: at(OHTTP_PATH)?,
            keys: at(KEYS_PATH)?,
            max_body: config.max_body,
            timeout: config.timeout,
            client: Client::builder(TokioExecutor::new()).build(connector),
        }))
    }

    /// Serves one client request.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let started = Instant::now();
        let (route, fut) = match (req.method(), req.uri().path()) {
            (&Method::POST, OHTTP_PATH) => (OHTTP_PATH, Some(req)),
            (&Method::GET, KEYS_PATH) => (KEYS_PATH, Some(req)),
            (_, OHTTP_PATH) => (OHTTP_PATH, None),
            (_, KEYS_PATH) => (KEYS_PATH, None),
            _ => ("other", None),
        };
        let (r, bytes_in) = match fut {
            None if route == "other" => (text(StatusCode::NOT_FOUND, "not found"), 0),
            None => (
                text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
                0,
            ),
            Some(req) => match tokio::time::timeout(self.timeout, self.relay(route, req)).await {
                Ok(r) => r,
                Err(_) => (
                    text(
                        StatusCode::GATEWAY_TIMEOUT,
                        "the gateway did not answer in time",
                    ),
                    0,
                ),
            },
        };
        let bytes_out = hyper::body::Body::size_hint(r.body()).exact().unwrap_or(0);
        tracing::info!(
            route,
            status = r.status().as_u16(),
            bytes_in,
            bytes_out,
            ms = started.elapsed().as_millis() as u64,
            "relayed"
        );
        Ok(r)
    }

    async fn relay(&self, route: &str, req: Request<Incoming>) -> (Response<Full<Bytes>>, usize) {
        let upstream = if route == OHTTP_PATH {
            if !content_type_is(req.headers().get(CONTENT_TYPE), OHTTP_REQ_TYPE) {
                return (
                    text(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        &format!("an encapsulated request is {OHTTP_REQ_TYPE}"),
                    ),
                    0,
                );
            }
            let declared = req
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > self.max_body as u64) {
                return (self.too_large(), 0);
            }
            let body = match Limited::new(req.into_body(), self.max_body).collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) if is_limit(&*e) => return (self.too_large(), 0),
                Err(_) => {
                    return (
                        text(
                            StatusCode::BAD_REQUEST,
                            "the request body could not be read",
                        ),
                        0,
                    )
                }
            };
            // A fresh request: the body and the fixed content type, nothing of the client's.
            Request::post(self.ohttp.clone())
                .header(CONTENT_TYPE, OHTTP_REQ_TYPE)
                .body(Full::new(body))
        } else {
            drop(req);
            Request::get(self.keys.clone()).body(Full::new(Bytes::new()))
        };
        let Ok(upstream) = upstream else {
            return (
                text(StatusCode::INTERNAL_SERVER_ERROR, "cannot form the request"),
                0,
            );
        };
        let bytes_in = hyper::body::Body::size_hint(upstream.body())
            .exact()
            .unwrap_or(0) as usize;
        let resp = match self.client.request(upstream).await {
            Ok(r) => r,
            Err(e) => {
                let why = if e.is_connect() {
                    "the gateway is unreachable"
                } else {
                    "the gateway failed"
                };
                return (text(StatusCode::BAD_GATEWAY, why), bytes_in);
            }
        };
        let status = resp.status();
        let content_type = resp.headers().get(CONTENT_TYPE).cloned();
        let cache_control = resp.headers().get(CACHE_CONTROL).cloned();
        let body = match Limited::new(resp.into_body(), self.max_body)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) if is_limit(&*e) => {
                return (
                    text(StatusCode::BAD_GATEWAY, "the gateway's answer is too large"),
                    bytes_in,
                )
            }
            Err(_) => {
                return (
                    text(StatusCode::BAD_GATEWAY, "the gateway's answer broke off"),
                    bytes_in,
                )
            }
        };
        let mut r = Response::new(Full::new(body));
        *r.status_mut() = status;
        if let Some(ct) = content_type {
            r.headers_mut().insert(CONTENT_TYPE, ct);
        }
        if let Some(cc) = cache_control {
            r.headers_mut().insert(CACHE_CONTROL, cc);
        }
        (r, bytes_in)
    }

    fn too_large(&self) -> Response<Full<Bytes>> {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("a request is at most {} bytes", self.max_body),
        )
    }
}

/// Whether a `Content-Type` value is `want` (case-insensitive, parameters ignored).
pub fn content_type_is(value: Option<&HeaderValue>, want: &str) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(want))
}

/// Serves the relay on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, relay: Arc<Relay>, shutdown: impl Future<Output = ()>) {
    cloister_http_serve::serve(
        listener,
        cloister_http_serve::Limits {
            max_connections: MAX_CONNECTIONS,
            header_timeout: HEADER_TIMEOUT,
        },
        relay,
        Relay::handle,
        shutdown,
    )
    .await
}
