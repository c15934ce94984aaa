//! The accept loop every HTTP service outside the CVM shares (the transparency log, the
//! token issuer, the OHTTP gateway and relay).
//!
//! * HTTP/1.1 with keep-alive;
//! * at most [`Limits::max_connections`] connections at once: a connection beyond the
//!   bound is closed at once (nothing queues without bound);
//! * a request's header must arrive within [`Limits::header_timeout`] (slow-loris);
//! * returns when `shutdown` completes.

#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Bounds of a service's connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; more are closed on accept.
    pub max_connections: usize,
    /// How long a request's header may take to arrive.
    pub header_timeout: Duration,
}

/// Serves `service` (whose `handle` answers every request) on `listener` until `shutdown`
/// completes.
pub async fn serve<S, F, Fut>(
    listener: TcpListener,
    limits: Limits,
    service: Arc<S>,
    handle: F,
    shutdown: impl Future<Output = ()>,
) where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Request<Incoming>) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => { tracing::warn!(error = %e, "accept failed"); continue; }
            },
            _ = &mut shutdown => return,
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = Arc::clone(&service);
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(Arc::clone(&service), req));
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
            drop(permit);
        });
    }
}
