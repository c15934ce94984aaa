//! The HTTP API (hyper 1.x).
//!
//! | route | answer |
//! |---|---|
//! | `GET /healthz` | `{"status":"ok"}` |
//! | `GET /v1/features` | the loaded plugins: name, version, description, models, sha256 |
//! | `POST /v1/features/{name}` | JSON in, the plugin's JSON out |
//! | `GET /v1/measurement` | the measurement log and its SHA-256 digest |
//! | `GET /v1/attestation` | fresh evidence bound to this TLS session (RA-TLS only) |
//!
//! Errors are `{"error":{"code":"…","message":"…"}}` with a stable `code`;
//! messages never echo the input. Logs carry the route, plugin name, status,
//! sizes and timings only.

use crate::load::LoadedHost;
use crate::ratls::Attestor;
use bytes::Bytes;
use cloister_runtime::RequestError;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

/// The shared state of the API.
pub struct Api {
    host: LoadedHost,
    features: Bytes,
    measurement: Bytes,
    max_input_bytes: usize,
    attestor: Option<Arc<Attestor>>,
}

/// What the API knows about the connection a request arrived on.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// The TLS session's exporter value for the session-mode binding; `None`
    /// on plain HTTP.
    pub exporter: Option<[u8; cloister_protocol::binding::EXPORTER_LEN]>,
}

/// A response of the API.
pub type Resp = Response<Full<Bytes>>;

impl Api {
    /// Builds the API over a loaded host. The feature list and the
    /// measurement document are rendered once here.
    /// `attestor` is `None` on a host without a TEE: `/v1/attestation` then
    /// answers `attestation_unavailable`.
    pub fn new(host: LoadedHost, max_input_bytes: usize, attestor: Option<Arc<Attestor>>) -> Api {
        let features: Vec<_> = host
            .plugins
            .values()
            .map(|p| {
                let info = p.plugin.info();
                json!({
                    "name": info.name,
                    "version": info.version,
                    "description": info.description,
                    "models": p.plugin.granted_models(),
                    "sha256": p.release.sha256_hex(),
                    "signer_key_id": p.release.signer_key_id,
                })
            })
            .collect();
        let features = Bytes::from(json!({ "features": features }).to_string());
        let measurement = Bytes::from(measurement_document(&host.log));
        Api {
            host,
            features,
            measurement,
            max_input_bytes,
            attestor,
        }
    }

    /// Serves one HTTP request. Never fails at the HTTP level: every error
    /// becomes a JSON error response.
    pub async fn serve(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn: Arc<Connection>,
    ) -> Result<Resp, Infallible> {
        Ok(self.handle(req, &conn).await)
    }

    /// Serves one request whatever its transport (a TCP connection, or a tunneled TLS
    /// session, [`crate::tunnel`]): every error becomes a JSON error response.
    pub async fn handle<B>(&self, req: Request<B>, conn: &Connection) -> Resp
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let resp = self.route(req, conn).await;
        tracing::debug!(
            %method,
            route = route_label(&path),
            status = resp.status().as_u16(),
            micros = started.elapsed().as_micros() as u64,
            "request"
        );
        resp
    }

    async fn route<B>(&self, req: Request<B>, conn: &Connection) -> Resp
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = req.uri().path();
        match (req.method(), path) {
            (&Method::GET, "/healthz") => json_ok(Bytes::from_static(b"{\"status\":\"ok\"}")),
            (&Method::GET, "/v1/features") => json_ok(self.features.clone()),
            (&Method::GET, "/v1/measurement") => json_ok(self.measurement.clone()),
            (&Method::GET, "/v1/attestation") => self.attestation(conn).await,
            (&Method::POST, p) if p.starts_with("/v1/features/") => {
                let name = p["/v1/features/".len()..].to_owned();
                self.call_feature(&name, req).await
            }
            (_, "/healthz" | "/v1/features" | "/v1/measurement" | "/v1/attestation") => error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route only answers GET",
            ),
            (_, p) if p.starts_with("/v1/features/") => error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "features are called with POST",
            ),
            _ => error(StatusCode::NOT_FOUND, "not_found", "no such route"),
        }
    }

    /// Fresh evidence whose REPORT_DATA binds this TLS session's exporter
    /// value and the measurement log.
    async fn attestation(&self, conn: &Connection) -> Resp {
        let Some(attestor) = self.attestor.clone() else {
            return error(
                StatusCode::NOT_FOUND,
                "attestation_unavailable",
                "this host runs without a TEE (--tee none) and cannot attest",
            );
        };
        let Some(exporter) = conn.exporter else {
            return error(
                StatusCode::BAD_REQUEST,
                "attestation_requires_tls",
                "session-bound evidence is only served over the RA-TLS listener",
            );
        };
        let started = Instant::now();
        match tokio::task::spawn_blocking(move || attestor.session_bundle(&exporter)).await {
            Ok(Ok(bundle)) => {
                tracing::debug!(
                    micros = started.elapsed().as_micros() as u64,
                    "session-bound evidence produced"
                );
                json_ok(Bytes::from(bundle.to_json()))
            }
            Ok(Err(e)) => {
                tracing::error!(error = %crate::error_chain(&e), "cannot produce session-bound evidence");
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "attestation_failed",
                    "the TEE did not produce evidence for this session",
                )
            }
            Err(e) => {
                tracing::error!(error = %e, "attestation task failed");
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "attestation_failed",
                    "the attestation task failed",
                )
            }
        }
    }

    async fn call_feature<B>(&self, name: &str, req: Request<B>) -> Resp
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let Some(loaded) = self.host.plugins.get(name) else {
            return error(
                StatusCode::NOT_FOUND,
                "unknown_feature",
                "no feature of that name is loaded",
            );
        };
        let body = match Limited::new(req.into_body(), self.max_input_bytes)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "input_too_large",
                    &format!(
                        "request body exceeds the limit of {} bytes",
                        self.max_input_bytes
                    ),
                )
            }
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_body",
                    "could not read the request body",
                )
            }
        };
        let Ok(input) = std::str::from_utf8(&body) else {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                "request body is not UTF-8",
            );
        };
        // The runtime checks the JSON (syntax, nesting, surrogates) before
        // any plugin instance exists: `invalid_json`, 400.
        let started = Instant::now();
        let result = loaded.plugin.handle(input).await;
        let micros = started.elapsed().as_micros() as u64;
        match result {
            Ok(output) => {
                tracing::debug!(
                    feature = name,
                    in_bytes = input.len(),
                    out_bytes = output.len(),
                    micros,
                    "feature ok"
                );
                json_ok(Bytes::from(output))
            }
            Err(e) => {
                tracing::debug!(
                    feature = name,
                    in_bytes = input.len(),
                    micros,
                    code = e.code(),
                    "feature failed"
                );
                request_error(&e)
            }
        }
    }
}

/// The measurement document: `{"log":<the log's canonical bytes, verbatim>,
/// "sha256":"<lowercase hex SHA-256 of those bytes>"}`. The log is embedded
/// byte for byte, so a client can hash the `log` member's text as received.
pub fn measurement_document(log: &cloister_measurement::MeasurementLog) -> String {
    let canonical = String::from_utf8_lossy(&log.canonical_bytes()).into_owned();
    format!(
        "{{\"log\":{canonical},\"sha256\":\"{}\"}}",
        log.digest_hex()
    )
}

fn route_label(path: &str) -> &'static str {
    match path {
        "/healthz" => "/healthz",
        "/v1/features" => "/v1/features",
        "/v1/measurement" => "/v1/measurement",
        "/v1/attestation" => "/v1/attestation",
        p if p.starts_with("/v1/features/") => "/v1/features/{name}",
        _ => "other",
    }
}

fn json_ok(body: Bytes) -> Resp {
    with_json(Response::new(Full::new(body)))
}

fn with_json(mut resp: Resp) -> Resp {
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn error(status: StatusCode, code: &str, message: &str) -> Resp {
    let body = json!({ "error": { "code": code, "message": message } }).to_string();
    let mut resp = with_json(Response::new(Full::new(Bytes::from(body))));
    *resp.status_mut() = status;
    resp
}

fn request_error(e: &RequestError) -> Resp {
    use cloister_runtime::FeatureError;
    let status = match e {
        RequestError::InputTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        RequestError::InvalidInputJson(_) => StatusCode::BAD_REQUEST,
        RequestError::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
        RequestError::DeadlineExceeded { .. } => StatusCode::GATEWAY_TIMEOUT,
        RequestError::Plugin(FeatureError::InvalidInput(_)) => StatusCode::BAD_REQUEST,
        RequestError::Plugin(FeatureError::Inference(_)) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    // The plugin's own error message goes back to the client that sent the
    // request (it is part of its answer); host errors use their Display text,
    // which never contains input.
    let message = match e {
        RequestError::Plugin(
            FeatureError::InvalidInput(m) | FeatureError::Inference(m) | FeatureError::Internal(m),
        ) => m.clone(),
        other => other.to_string(),
    };
    error(status, e.code(), &message)
}
