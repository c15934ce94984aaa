//! The accept loop: plain HTTP (no TEE) or RA-TLS, each connection served by the
//! [`Api`] with what it knows about the connection (the TLS exporter).

use crate::api::{Api, Connection};
use crate::ratls::session_exporter;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections on `listener` until `shutdown` completes. With an `acceptor`, every
/// connection must complete a TLS handshake first and its exporter value is handed to the
/// API (for `GET /v1/attestation`); without one, connections are plain HTTP.
pub async fn run(
    listener: TcpListener,
    api: Arc<Api>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = &mut shutdown => {
                tracing::info!("shutting down");
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        let api = Arc::clone(&api);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => serve_connection(stream, api, Arc::new(Connection::default())).await,
                Some(acceptor) => {
                    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            return;
                        }
                    };
                    let exporter = match session_exporter(tls.get_ref().1) {
                        Ok(e) => e,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot compute the TLS exporter");
                            return;
                        }
                    };
                    let conn = Arc::new(Connection {
                        exporter: Some(exporter),
                    });
                    serve_connection(tls, api, conn).await
                }
            }
        });
    }
}

async fn serve_connection<S>(stream: S, api: Arc<Api>, conn: Arc<Connection>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| Arc::clone(&api).serve(req, Arc::clone(&conn)));
    if let Err(e) = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
