//! The HTTP server (hyper 1, HTTP/1.1 with keep-alive).
//!
//! | route | answer |
//! |---|---|
//! | `POST <prefix>/add-checkpoint` | the cosignature line(s), or the tlog-witness status |
//! | `GET <prefix>/<origin hash>/checkpoint` | the latest cosigned checkpoint, 404 if none |
//!
//! Other paths are 404, other methods on these paths 405. Request bodies are bounded
//! ([`ServerConfig::max_body_bytes`], 413 past it); a request's head must arrive within
//! [`ServerConfig::header_timeout`] (which also closes idle keep-alive connections) and
//! its body within [`ServerConfig::body_timeout`] (408); at most
//! [`ServerConfig::max_connections`] connections are served at once (further ones wait
//! in the kernel's accept queue).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cloister_display::Excerpt;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::witness::{AddError, Witness};

/// Content type of a 409 answer (tlog-witness).
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";
/// Content type of every other answer.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// Limits and routes of the server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The URL prefix of both routes: empty, or `/` followed by a path without a final `/`.
    pub prefix: String,
    /// Largest request body accepted, in bytes (413 past it).
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's head (and how long an idle
    /// keep-alive connection is kept).
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body (408 past it).
    pub body_timeout: Duration,
    /// Most connections served at once.
    pub max_connections: u32,
    /// How long in-flight requests may take to finish after the shutdown signal.
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            max_body_bytes: 64 * 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_connections: 256,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Checks a URL prefix: empty, or starting with `/`, not ending with `/`, printable ASCII
/// without `?` or `#`.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() {
        return Ok(());
    }
    if !prefix.starts_with('/') || prefix.ends_with('/') {
        return Err("a prefix starts with '/' and does not end with '/' (or is empty)".into());
    }
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#')
    {
        return Err("a prefix is printable ASCII without '?' or '#'".into());
    }
    Ok(())
}

/// Serves `witness` on `listener` until `shutdown` completes, then lets in-flight requests
/// finish (up to [`ServerConfig::shutdown_grace`]).
pub async fn serve(
    listener: TcpListener,
    witness: Arc<Witness>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) {
    let config = Arc::new(config);
    let permits = Arc::new(Semaphore::new(config.max_connections as usize));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    // Out of descriptors and the like: do not spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let witness = Arc::clone(&witness);
        let config = Arc::clone(&config);
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let svc_config = Arc::clone(&config);
            let service =
                service_fn(move |req| handle(Arc::clone(&witness), Arc::clone(&svc_config), req));
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(config.header_timeout)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                _ = async { stop.wait_for(|s| *s).await.map(|_| ()) } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    // Every connection holds a permit: all of them back means all connections ended.
    let _ = tokio::time::timeout(
        config.shutdown_grace,
        permits.acquire_many(config.max_connections),
    )
    .await;
}

type Resp = Response<Full<Bytes>>;

fn text(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_CONTENT_TYPE));
    resp
}

fn method_not_allowed(allow: &'static str) -> Resp {
    let mut resp = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("this route only answers {allow}\n"),
    );
    resp.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    resp
}

enum Route<'a> {
    AddCheckpoint,
    Checkpoint(&'a str),
    None,
}

fn route<'a>(prefix: &str, path: &'a str) -> Route<'a> {
    let Some(rest) = path.strip_prefix(prefix) else {
        return Route::None;
    };
    if rest == "/add-checkpoint" {
        return Route::AddCheckpoint;
    }
    if let Some(hash) = rest
        .strip_prefix('/')
        .and_then(|r| r.strip_suffix("/checkpoint"))
    {
        if hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Route::Checkpoint(hash);
        }
    }
    Route::None
}

async fn handle(
    witness: Arc<Witness>,
    config: Arc<ServerConfig>,
    req: Request<Incoming>,
) -> Result<Resp, Infallible> {
    let started = Instant::now();
    let resp = match route(&config.prefix, req.uri().path()) {
        Route::AddCheckpoint if req.method() == Method::POST => {
            add_checkpoint(witness, &config, req, started).await
        }
        Route::AddCheckpoint => method_not_allowed("POST"),
        Route::Checkpoint(hash) if req.method() == Method::GET => {
            let resp = match witness.checkpoint(hash) {
                Some(note) => text(StatusCode::OK, Bytes::from(note.as_bytes().to_vec())),
                None => text(
                    StatusCode::NOT_FOUND,
                    "this witness never cosigned a checkpoint of that log\n",
                ),
            };
            tracing::debug!(
                route = "checkpoint",
                status = resp.status().as_u16(),
                micros = started.elapsed().as_micros() as u64,
                "request"
            );
            resp
        }
        Route::Checkpoint(_) => method_not_allowed("GET"),
        Route::None => text(StatusCode::NOT_FOUND, "no such route\n"),
    };
    Ok(resp)
}

async fn add_checkpoint(
    witness: Arc<Witness>,
    config: &ServerConfig,
    req: Request<Incoming>,
    started: Instant,
) -> Resp {
    let too_large = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is larger than {} bytes\n",
                config.max_body_bytes
            ),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > config.max_body_bytes as u64) {
        log_add(None, 413, started);
        return too_large();
    }
    let body = Limited::new(req.into_body(), config.max_body_bytes);
    let body = match tokio::time::timeout(config.body_timeout, body.collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            log_add(None, 413, started);
            return too_large();
        }
        Ok(Err(e)) => {
            log_add(None, 400, started);
            return text(
                StatusCode::BAD_REQUEST,
                format!(
                    "cannot read the request body: {}\n",
                    Excerpt(&e.to_string())
                ),
            );
        }
        Err(_) => {
            log_add(None, 408, started);
            return text(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time\n",
            );
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let outcome = tokio::task::spawn_blocking(move || witness.add_checkpoint(&body, now)).await;
    match outcome {
        Ok(Ok(cosigned)) => {
            tracing::info!(
                origin = %Excerpt(&cosigned.origin),
                old_size = cosigned.old_size,
                size = cosigned.size,
                status = 200,
                micros = started.elapsed().as_micros() as u64,
                "cosigned"
            );
            text(StatusCode::OK, cosigned.lines)
        }
        Ok(Err(e)) => {
            let status = e.status();
            log_add(Some(&e), status, started);
            match e {
                AddError::Conflict { witness_size, .. } => {
                    let mut resp = text(StatusCode::CONFLICT, format!("{witness_size}\n"));
                    resp.headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static(SIZE_CONTENT_TYPE));
                    resp
                }
                e => text(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    format!("{e}\n"),
                ),
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "the add-checkpoint task failed");
            log_add(None, 500, started);
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error; nothing was cosigned\n",
            )
        }
    }
}

fn log_add(error: Option<&AddError>, status: u16, started: Instant) {
    let micros = started.elapsed().as_micros() as u64;
    match error {
        Some(e @ (AddError::Persist(_) | AddError::Internal(_))) => {
            tracing::error!(error = %e, status, micros, "add-checkpoint failed")
        }
        _ => tracing::info!(status, micros, "add-checkpoint refused"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let h = "a".repeat(64);
        assert!(matches!(route("", "/add-checkpoint"), Route::AddCheckpoint));
        assert!(matches!(
            route("/w", "/w/add-checkpoint"),
            Route::AddCheckpoint
        ));
        assert!(matches!(route("/w", "/add-checkpoint"), Route::None));
        assert!(matches!(route("/w", "/wadd-checkpoint"), Route::None));
        assert!(matches!(route("", &format!("/{h}/checkpoint")), Route::Checkpoint(x) if x == h));
        let upper = "A".repeat(64);
        assert!(matches!(
            route("", &format!("/{upper}/checkpoint")),
            Route::None
        ));
        assert!(matches!(
            route("", &format!("/{}/checkpoint", "a".repeat(63))),
            Route::None
        ));
        assert!(matches!(route("", "/"), Route::None));
    }

    #[test]
    fn prefixes() {
        assert!(check_prefix("").is_ok());
        assert!(check_prefix("/witness").is_ok());
        assert!(check_prefix("witness").is_err());
        assert!(check_prefix("/witness/").is_err());
        assert!(check_prefix("/w?x").is_err());
    }
}
