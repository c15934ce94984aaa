//! The log's HTTP API.
//!
//! | request | answer |
//! |---|---|
//! | `GET /checkpoint` | the cosigned checkpoint (`text/plain; charset=utf-8`, no caching) |
//! | `GET /tile/<L>/<N>[.p/<W>]`, `GET /tile/entries/…` | tiles and bundles (immutable) |
//! | `POST /add` + `Authorization: Bearer <token>`, body = one canonical statement | 200 with its `tlog-proof@v1`; 400 refused; 401; 413; 503 committed but not yet witnessed (retry: adds are idempotent) |
//! | `POST /cosign` + `Authorization` | asks the witnesses to cosign now (fresh cosignature times) |
//!
//! Adds from concurrent publishers are grouped into one append (up to
//! [`crate::state::MAX_BATCH`]), so one fsync'd checkpoint and one round of witnessing serve
//! them all. Logs say sizes, statuses and timings; never tokens.

use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloister_tlog::tiles::TileId;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::disk::read_optional;
use crate::publishers::Publishers;
use crate::state::{AddResult, Log, MAX_BATCH};

/// Largest `POST /add` body.
pub const MAX_ADD_BYTES: usize = cloister_transparency::statement::MAX_ENTRY_BYTES;
/// Most connections served at once.
pub const MAX_CONNECTIONS: usize = 512;
/// How long a client may take to send its request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

enum Command {
    Add(Vec<u8>, oneshot::Sender<AddResult>),
    Cosign(oneshot::Sender<Result<(), String>>),
}

/// A handle on the running log.
pub struct Server {
    dir: PathBuf,
    publishers: Publishers,
    tx: mpsc::Sender<Command>,
}

/// Starts the writer thread that owns `log`.
pub fn start(log: Log, dir: PathBuf, publishers: Publishers) -> Arc<Server> {
    let (tx, rx) = mpsc::channel::<Command>();
    std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || writer(log, rx))
        .map(|_| ())
        .unwrap_or_else(|e| tracing::error!(error = %e, "cannot start the writer thread"));
    Arc::new(Server {
        dir,
        publishers,
        tx,
    })
}

fn writer(mut log: Log, rx: mpsc::Receiver<Command>) {
    // Witness a committed checkpoint that was not yet served (after a crash or a failed
    // round): best effort, the next add or cosign retries.
    if log.served().is_none() || log.size() > 0 {
        if let Err(e) = log.cosign() {
            tracing::warn!(error = %e, "initial cosigning failed");
        }
    }
    while let Ok(first) = rx.recv() {
        let mut adds: Vec<(Vec<u8>, oneshot::Sender<AddResult>)> = Vec::new();
        let mut cosigns = Vec::new();
        let mut next = Some(first);
        while let Some(c) = next.take() {
            match c {
                Command::Add(e, reply) => adds.push((e, reply)),
                Command::Cosign(reply) => cosigns.push(reply),
            }
            if adds.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !adds.is_empty() {
            let started = Instant::now();
            let entries: Vec<Vec<u8>> = adds.iter().map(|(e, _)| e.clone()).collect();
            let results = log.add(&entries);
            tracing::info!(
                batch = entries.len(),
                size = log.size(),
                ms = started.elapsed().as_millis() as u64,
                "add batch"
            );
            for ((_, reply), r) in adds.into_iter().zip(results) {
                let _ = reply.send(r);
            }
        }
        for reply in cosigns {
            let _ = reply.send(log.cosign().map_err(|e| e.to_string()));
        }
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.into())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

impl Server {
    fn authorized(&self, req: &Request<Incoming>) -> bool {
        req.headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|t| self.publishers.authenticate(t))
            .is_some()
    }

    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        let r = match (method, path.as_str()) {
            (Method::GET, "/checkpoint") => self.get_file("checkpoint", false).await,
            (Method::GET, p) if p.starts_with("/tile/") => match TileId::parse(&p[1..]) {
                Ok(id) => self.get_file(&id.path(), true).await,
                Err(_) => text(StatusCode::NOT_FOUND, "not a tile path\n"),
            },
            (Method::POST, "/add") => self.add(req).await,
            (Method::POST, "/cosign") => self.cosign(req).await,
            (_, "/checkpoint" | "/add" | "/cosign") => {
                text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        };
        tracing::debug!(path = %cloister_display::Excerpt(&path), status = r.status().as_u16(), "request");
        Ok(r)
    }

    async fn get_file(&self, rel: &str, immutable: bool) -> Response<Full<Bytes>> {
        let path = self.dir.join(rel);
        match tokio::task::spawn_blocking(move || read_optional(&path)).await {
            Ok(Ok(Some(bytes))) => {
                let mut r = Response::new(Full::new(Bytes::from(bytes)));
                let ct = if immutable {
                    "application/octet-stream"
                } else {
                    "text/plain; charset=utf-8"
                };
                let cache = if immutable {
                    "public, max-age=604800, immutable"
                } else {
                    "no-cache"
                };
                r.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static(ct),
                );
                r.headers_mut().insert(
                    hyper::header::CACHE_CONTROL,
                    hyper::header::HeaderValue::from_static(cache),
                );
                r
            }
            Ok(Ok(None)) => text(StatusCode::NOT_FOUND, "not found\n"),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "read failed");
                text(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file\n")
            }
            Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n"),
        }
    }

    async fn add(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if !self.authorized(&req) {
            return text(
                StatusCode::UNAUTHORIZED,
                "a publisher token is required (Authorization: Bearer …)\n",
            );
        }
        let body = match tokio::time::timeout(
            BODY_TIMEOUT,
            Limited::new(req.into_body(), MAX_ADD_BYTES).collect(),
        )
        .await
        {
            Ok(Ok(b)) => b.to_bytes(),
            Ok(Err(_)) => {
                return text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("an entry is at most {MAX_ADD_BYTES} bytes\n"),
                )
            }
            Err(_) => return text(StatusCode::REQUEST_TIMEOUT, "the body took too long\n"),
        };
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Add(body.to_vec(), reply)).is_err() {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the log's writer has stopped\n",
            );
        }
        match rx.await {
            Ok(AddResult::Proven(p)) => {
                let mut r = text(StatusCode::OK, p.to_text());
                if let Ok(v) = hyper::header::HeaderValue::from_str(&p.index.to_string()) {
                    r.headers_mut().insert("cloister-log-index", v);
                }
                r
            }
            Ok(AddResult::Unwitnessed { index, reason }) => {
                let mut r = text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("entry #{index} is committed but not yet witnessed ({reason}); retry the same add\n"),
                );
                r.headers_mut().insert(
                    hyper::header::RETRY_AFTER,
                    hyper::header::HeaderValue::from_static("5"),
                );
                r
            }
            Ok(AddResult::Refused(why)) => text(StatusCode::BAD_REQUEST, format!("{why}\n")),
            Ok(AddResult::Failed(why)) => {
                tracing::error!(error = %why, "append failed");
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the log could not write the entry; nothing was committed, retry later\n",
                )
            }
            Err(_) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the log's writer has stopped\n",
            ),
        }
    }

    async fn cosign(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if !self.authorized(&req) {
            return text(StatusCode::UNAUTHORIZED, "a publisher token is required\n");
        }
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Cosign(reply)).is_err() {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the log's writer has stopped\n",
            );
        }
        match rx.await {
            Ok(Ok(())) => text(StatusCode::OK, "cosigned\n"),
            Ok(Err(e)) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{}\n", cloister_display::excerpt(&e)),
            ),
            Err(_) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the log's writer has stopped\n",
            ),
        }
    }

    /// Asks the writer to re-cosign (used by the periodic refresh).
    pub fn request_cosign(&self) {
        let (reply, _rx) = oneshot::channel();
        let _ = self.tx.send(Command::Cosign(reply));
    }
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, server: Arc<Server>, shutdown: impl Future<Output = ()>) {
    cloister_http_serve::serve(
        listener,
        cloister_http_serve::Limits {
            max_connections: MAX_CONNECTIONS,
            header_timeout: HEADER_TIMEOUT,
        },
        server,
        Server::handle,
        shutdown,
    )
    .await
}
