//! The issuer's HTTP API (RFC 9578 sections 4 and 6.1–6.2).
//!
//! | request | answer |
//! |---|---|
//! | `GET` [`DIRECTORY_PATH`] | the issuer directory (`application/private-token-issuer-directory`, cacheable for [`DIRECTORY_MAX_AGE`] s) |
//! | `POST` [`REQUEST_PATH`] + `Authorization: Bearer <API key>` + `Content-Type: application/private-token-request`, body = `TokenRequest` | 200 `application/private-token-response` (`TokenResponse`); 401 unknown key; 415 wrong content type; 413 body over [`MAX_REQUEST_BYTES`]; 400 not a token request; 422 wrong token type, size or key id (RFC 9578 section 6.2); 429 + `Retry-After` over the account's rate |
//!
//! Checks run in that order, and a request refused for its content does not count against
//! the account's rate: only a request that is about to be signed takes from its bucket (and
//! is refunded if signing fails). The rate is a token bucket per account: `N` tokens per
//! window, refilled continuously (one every window/`N`), starting full.
//!
//! **What is logged**: at start, the key id, the number of accounts and the rate; then, every
//! `stats_every`, aggregate counters for the interval (issued, unauthorized, refused,
//! rate-limited, failed) when any changed; internal signing failures (no request data).
//! Never API keys, account names, request or response bytes, or anything per request. The
//! rate limiter's in-memory state (one bucket level and time per account) is the only
//! per-account state, and it is not written anywhere.

use std::convert::Infallible;
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;

use crate::accounts::Accounts;
use crate::directory::Directory;
use crate::issuer::{IssueError, Issuer};
use crate::{DIRECTORY_PATH, DIRECTORY_TYPE, REQUEST_PATH, REQUEST_TYPE, RESPONSE_TYPE};

/// Largest `POST` [`REQUEST_PATH`] body (a type-2 request is 259 bytes).
pub const MAX_REQUEST_BYTES: usize = 4096;
/// Longest API key considered.
const MAX_API_KEY_LEN: usize = 256;
/// Most connections served at once.
pub const MAX_CONNECTIONS: usize = 512;
/// How long a client may take to send its request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the directory may be cached, in seconds.
pub const DIRECTORY_MAX_AGE: u32 = 3600;

/// An account's rate: `tokens` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Tokens per window (also the bucket's size: the largest burst).
    pub tokens: u32,
    /// The window.
    pub per: Duration,
}

impl FromStr for RateLimit {
    type Err = String;

    /// `N/SECS`, e.g. `100/86400`: 100 tokens a day.
    fn from_str(s: &str) -> Result<Self, String> {
        let err =
            || format!("a rate is N/SECS with N and SECS at least 1 (e.g. 100/86400), got {s:?}");
        let (n, secs) = s.split_once('/').ok_or_else(err)?;
        let tokens: u32 = n.trim().parse().map_err(|_| err())?;
        let secs: u64 = secs.trim().parse().map_err(|_| err())?;
        if tokens == 0 || secs == 0 {
            return Err(err());
        }
        Ok(Self {
            tokens,
            per: Duration::from_secs(secs),
        })
    }
}

/// Token buckets, one per account, kept as the generic cell rate algorithm: each token
/// costs `per / tokens` of time, and an account's "theoretical arrival time" may run at most
/// `per` ahead of now (a full bucket is a time at or before now). Exact integer arithmetic.
#[derive(Debug)]
struct Limiter {
    cost: Duration,
    burst: Duration,
    tat: Vec<Instant>,
}

impl Limiter {
    fn new(rate: RateLimit, accounts: usize, now: Instant) -> Self {
        let cost = rate.per / rate.tokens;
        Self {
            cost,
            // `tokens` costs (equal to `per` up to the division's rounding).
            burst: cost * rate.tokens,
            tat: vec![now; accounts],
        }
    }

    /// Takes one token, or says in how many seconds (at least 1) one will be there.
    fn take(&mut self, account: usize, now: Instant) -> Result<(), u64> {
        let Some(tat) = self.tat.get_mut(account) else {
            return Err(u64::MAX);
        };
        let next = (*tat).max(now) + self.cost;
        let limit = now + self.burst;
        if next > limit {
            let wait = next - limit;
            return Err((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1));
        }
        *tat = next;
        Ok(())
    }

    /// Gives back a token taken by [`Limiter::take`].
    fn refund(&mut self, account: usize) {
        if let Some(tat) = self.tat.get_mut(account) {
            if let Some(earlier) = tat.checked_sub(self.cost) {
                *tat = earlier;
            }
        }
    }
}

/// Aggregate counters (no per-account or per-request detail).
#[derive(Debug, Default)]
struct Stats {
    issued: AtomicU64,
    unauthorized: AtomicU64,
    refused: AtomicU64,
    rate_limited: AtomicU64,
    failed: AtomicU64,
}

/// A snapshot of the counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Token responses sent.
    pub issued: u64,
    /// Requests without a valid API key.
    pub unauthorized: u64,
    /// Requests refused for their content (type, size, key id, content type, body size).
    pub refused: u64,
    /// Requests refused by the rate limit.
    pub rate_limited: u64,
    /// Internal failures.
    pub failed: u64,
}

impl StatsSnapshot {
    fn minus(self, o: StatsSnapshot) -> StatsSnapshot {
        StatsSnapshot {
            issued: self.issued - o.issued,
            unauthorized: self.unauthorized - o.unauthorized,
            refused: self.refused - o.refused,
            rate_limited: self.rate_limited - o.rate_limited,
            failed: self.failed - o.failed,
        }
    }
}

/// The running issuer.
#[derive(Debug)]
pub struct Service {
    issuer: Arc<Issuer>,
    accounts: Accounts,
    directory: Bytes,
    limiter: Mutex<Limiter>,
    stats: Stats,
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.into())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Service {
    /// An issuer service for `issuer`, serving `accounts` at `rate` each.
    pub fn new(issuer: Issuer, accounts: Accounts, rate: RateLimit) -> Arc<Self> {
        let key = issuer.key();
        let directory = Directory::new(REQUEST_PATH, &[(key.public(), Some(key.not_before()))]);
        Arc::new(Self {
            limiter: Mutex::new(Limiter::new(rate, accounts.len(), Instant::now())),
            issuer: Arc::new(issuer),
            accounts,
            directory: Bytes::from(directory.to_json()),
            stats: Stats::default(),
        })
    }

    /// The counters since start.
    pub fn stats(&self) -> StatsSnapshot {
        let s = &self.stats;
        StatsSnapshot {
            issued: s.issued.load(Ordering::Relaxed),
            unauthorized: s.unauthorized.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
            rate_limited: s.rate_limited.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
        }
    }

    /// Logs the counters' increase every `every`, when there is one (aggregate only).
    pub async fn log_stats(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
        tick.tick().await;
        let mut last = StatsSnapshot::default();
        loop {
            tick.tick().await;
            let now = self.stats();
            let d = now.minus(last);
            if d != StatsSnapshot::default() {
                tracing::info!(
                    issued = d.issued,
                    unauthorized = d.unauthorized,
                    refused = d.refused,
                    rate_limited = d.rate_limited,
                    failed = d.failed,
                    interval_secs = every.as_secs(),
                    "issuance in the last interval"
                );
            }
            last = now;
        }
    }

    fn lock_limiter(&self) -> std::sync::MutexGuard<'_, Limiter> {
        self.limiter.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn account(&self, req: &Request<Incoming>) -> Option<usize> {
        let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
        let (scheme, key) = value.split_once(' ')?;
        let key = key.trim();
        if !scheme.eq_ignore_ascii_case("Bearer") || key.is_empty() || key.len() > MAX_API_KEY_LEN {
            return None;
        }
        self.accounts.authenticate(key)
    }

    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let r = match (req.method(), req.uri().path()) {
            (&Method::GET, DIRECTORY_PATH) => {
                let mut r = Response::new(Full::new(self.directory.clone()));
                r.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static(DIRECTORY_TYPE));
                if let Ok(v) =
                    HeaderValue::from_str(&format!("public, max-age={DIRECTORY_MAX_AGE}"))
                {
                    r.headers_mut().insert(CACHE_CONTROL, v);
                }
                r
            }
            (&Method::POST, REQUEST_PATH) => self.token_request(req).await,
            (_, DIRECTORY_PATH | REQUEST_PATH) => {
                text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        };
        Ok(r)
    }

    async fn token_request(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let Some(account) = self.account(&req) else {
            bump(&self.stats.unauthorized);
            let mut r = text(
                StatusCode::UNAUTHORIZED,
                "an account API key is required (Authorization: Bearer <key>)\n",
            );
            r.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"cloister-issuer\""),
            );
            return r;
        };
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::trim);
        if !content_type.is_some_and(|t| t.eq_ignore_ascii_case(REQUEST_TYPE)) {
            bump(&self.stats.refused);
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("a token request has Content-Type: {REQUEST_TYPE}\n"),
            );
        }
        let body = match tokio::time::timeout(
            BODY_TIMEOUT,
            Limited::new(req.into_body(), MAX_REQUEST_BYTES).collect(),
        )
        .await
        {
            Ok(Ok(b)) => b.to_bytes(),
            Ok(Err(e)) => {
                bump(&self.stats.refused);
                return if e.is::<http_body_util::LengthLimitError>() {
                    text(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("a token request is at most {MAX_REQUEST_BYTES} bytes\n"),
                    )
                } else {
                    text(
                        StatusCode::BAD_REQUEST,
                        "the request body could not be read\n",
                    )
                };
            }
            Err(_) => {
                bump(&self.stats.refused);
                return text(StatusCode::REQUEST_TIMEOUT, "the body took too long\n");
            }
        };
        if let Err(e) = self.issuer.check(&body) {
            bump(&self.stats.refused);
            // RFC 9578 section 6.2: an unsupported type, an unknown key id or a wrong size is
            // 422; a body that cannot even hold a type and a key id is not a token request.
            let status = match e {
                IssueError::Truncated(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            return text(status, format!("{e}\n"));
        }
        let taken = self.lock_limiter().take(account, Instant::now());
        if let Err(retry_after) = taken {
            bump(&self.stats.rate_limited);
            let mut r = text(
                StatusCode::TOO_MANY_REQUESTS,
                "this account's token rate is exhausted; retry later\n",
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                r.headers_mut().insert(RETRY_AFTER, v);
            }
            return r;
        }
        let issuer = Arc::clone(&self.issuer);
        let signed = tokio::task::spawn_blocking(move || issuer.issue(&body)).await;
        match signed {
            Ok(Ok(response)) => {
                bump(&self.stats.issued);
                let mut r = Response::new(Full::new(Bytes::from(response)));
                r.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static(RESPONSE_TYPE));
                r.headers_mut()
                    .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                r
            }
            failed => {
                self.lock_limiter().refund(account);
                bump(&self.stats.failed);
                match failed {
                    Ok(Err(e)) => tracing::error!(error = %e, "token signing failed"),
                    _ => tracing::error!("the signing task failed"),
                }
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the issuer could not sign; nothing was counted, retry later\n",
                )
            }
        }
    }
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    service: Arc<Service>,
    shutdown: impl Future<Output = ()>,
) {
    cloister_http_serve::serve(
        listener,
        cloister_http_serve::Limits {
            max_connections: MAX_CONNECTIONS,
            header_timeout: HEADER_TIMEOUT,
        },
        service,
        Service::handle,
        shutdown,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(
            "100/86400".parse::<RateLimit>(),
            Ok(RateLimit {
                tokens: 100,
                per: Duration::from_secs(86400)
            })
        );
        for bad in ["", "100", "0/10", "10/0", "-1/10", "1/x", "1/2/3"] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn buckets_refill_continuously_and_refund() {
        let t0 = Instant::now();
        let rate = RateLimit {
            tokens: 2,
            per: Duration::from_secs(60),
        };
        let mut l = Limiter::new(rate, 2, t0);
        assert_eq!(l.take(0, t0), Ok(()));
        assert_eq!(l.take(0, t0), Ok(()));
        // Empty: one token every 30 s.
        assert_eq!(l.take(0, t0), Err(30));
        assert_eq!(l.take(0, t0 + Duration::from_secs(20)), Err(10));
        assert_eq!(l.take(0, t0 + Duration::from_secs(30)), Ok(()));
        // Other accounts are separate; unknown ones are refused.
        assert_eq!(l.take(1, t0), Ok(()));
        assert!(l.take(2, t0).is_err());
        // A refund gives the token back, but never beyond the bucket's size.
        l.refund(0);
        assert_eq!(l.take(0, t0 + Duration::from_secs(30)), Ok(()));
        let later = t0 + Duration::from_secs(3600);
        l.refund(1);
        assert_eq!(l.take(1, later), Ok(()));
        assert_eq!(l.take(1, later), Ok(()));
        assert!(l.take(1, later).is_err());
    }
}
