//! Helpers for the gateway's tests: a fake token check (tests only), a fake host tunnel
//! endpoint, a real `redis-server`, an OHTTP client (the `ohttp` crate) and HTTP calls.
//!
//! The relay's end-to-end test includes this file too (`#[path]`), so keep it free of
//! anything specific to this package's binaries.

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Cursor;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cloister_gateway::{
    Gateway, GatewayConfig, HostPool, KeySet, KeySpec, Seed, SessionLimits, SpentTokens,
    TokenCheck, TokenError,
};
use cloister_tunnel::{SessionId, INNER_TUNNEL_PATH, OHTTP_PATH, OHTTP_REQ_TYPE, SESSION_HEADER};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A FAKE token check for tests only: `PrivateToken token=<nonce hex>.<sha256(key||nonce) hex>`.
/// It is not Privacy Pass; the real verifier comes from the issuer crate.
pub struct FakeTokensForTests {
    key: [u8; 32],
}

impl FakeTokensForTests {
    pub fn new() -> FakeTokensForTests {
        FakeTokensForTests { key: [0x5a; 32] }
    }

    fn tag(&self, nonce: &[u8; 32]) -> String {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(nonce);
        hex::encode(h.finalize())
    }

    /// A token for a fresh random nonce.
    pub fn mint(&self) -> String {
        let mut nonce = [0u8; 32];
        getrandom::fill(&mut nonce).expect("random");
        format!(
            "PrivateToken token={}.{}",
            hex::encode(nonce),
            self.tag(&nonce)
        )
    }
}

impl TokenCheck for FakeTokensForTests {
    fn check(&self, authorization: &str) -> Result<[u8; 32], TokenError> {
        let t = authorization
            .strip_prefix("PrivateToken token=")
            .ok_or_else(|| TokenError::Malformed("not a PrivateToken".into()))?;
        let (n, tag) = t
            .split_once('.')
            .ok_or_else(|| TokenError::Malformed("no tag".into()))?;
        let mut nonce = [0u8; 32];
        hex::decode_to_slice(n, &mut nonce).map_err(|_| TokenError::Malformed("nonce".into()))?;
        if tag != self.tag(&nonce) {
            return Err(TokenError::Invalid("bad tag".into()));
        }
        Ok(nonce)
    }

    fn challenge_header(&self) -> String {
        "PrivateToken challenge=\"AAIAAA\", token-key=\"fake-for-tests\"".into()
    }
}

/// What a fake host received on its tunnel route.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// How a fake host answers tunnel requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostMode {
    /// 200 with `host<i>:` + the body's first KiB.
    Echo,
    /// 200 with one byte more than a flight.
    Oversized,
    /// 404 (it does not know the session).
    Unknown,
}

/// A fake host tunnel endpoint: `GET /healthz`, `POST /v1/tunnel/{hex}`.
pub struct FakeHost {
    pub index: usize,
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub healthy: Arc<AtomicBool>,
    pub mode: Arc<Mutex<HostMode>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl FakeHost {
    pub async fn start(index: usize) -> FakeHost {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let healthy = Arc::new(AtomicBool::new(true));
        let mode = Arc::new(Mutex::new(HostMode::Echo));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::new(Mutex::new(Vec::new()));
        let (r, h, m, c) = (
            received.clone(),
            healthy.clone(),
            mode.clone(),
            conns.clone(),
        );
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (r, h, m) = (r.clone(), h.clone(), m.clone());
                let task = tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (r, h, m) = (r.clone(), h.clone(), m.clone());
                        async move { Ok::<_, Infallible>(host_answer(index, req, r, h, m).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
                c.lock().expect("lock").push(task);
            }
        });
        FakeHost {
            index,
            addr,
            received,
            healthy,
            mode,
            conns,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// Stops listening and drops every connection: the host is gone.
    pub fn kill(&self) {
        self.accept.abort();
        for c in self.conns.lock().expect("lock").drain(..) {
            c.abort();
        }
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn host_answer(
    index: usize,
    req: Request<hyper::body::Incoming>,
    received: Arc<Mutex<Vec<Received>>>,
    healthy: Arc<AtomicBool>,
    mode: Arc<Mutex<HostMode>>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    if path == "/healthz" {
        let ok = healthy.load(Ordering::SeqCst);
        let mut r = Response::new(Full::new(Bytes::from_static(b"ok")));
        if !ok {
            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        }
        return r;
    }
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("?").to_owned()))
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    received.lock().expect("lock").push(Received {
        path,
        headers,
        body: body.clone(),
    });
    let m = *mode.lock().expect("lock");
    match m {
        HostMode::Echo => {
            let mut out = format!("host{index}:").into_bytes();
            out.extend_from_slice(&body[..body.len().min(1024)]);
            let mut r = Response::new(Full::new(Bytes::from(out)));
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(cloister_tunnel::TLS_RECORDS_TYPE),
            );
            r
        }
        HostMode::Oversized => Response::new(Full::new(Bytes::from(vec![
            0u8;
            cloister_tunnel::MAX_FLIGHT_BYTES
                + 1
        ]))),
        HostMode::Unknown => {
            let mut r = Response::new(Full::new(Bytes::from_static(b"unknown session")));
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
    }
}

/// A gateway served on loopback, with its parts.
pub struct TestGateway {
    pub url: String,
    pub gateway: Arc<Gateway>,
    pub tokens: Arc<FakeTokensForTests>,
    pub keys_seed: [u8; 32],
    task: JoinHandle<()>,
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn test_seed() -> [u8; 32] {
    let mut s = [0u8; 32];
    for (i, b) in s.iter_mut().enumerate() {
        *b = i as u8;
    }
    s
}

/// Key 1 valid now, key 2 valid now, key 3 expired, key 4 not yet valid.
pub fn test_specs() -> Vec<KeySpec> {
    let t = now();
    vec![
        KeySpec {
            id: 1,
            not_before: t - 3600,
            not_after: t + 3600,
        },
        KeySpec {
            id: 2,
            not_before: t - 60,
            not_after: t + 7200,
        },
        KeySpec {
            id: 3,
            not_before: t - 7200,
            not_after: t - 3600,
        },
        KeySpec {
            id: 4,
            not_before: t + 3600,
            not_after: t + 7200,
        },
    ]
}

impl TestGateway {
    pub async fn start(hosts: &[String], store: Arc<dyn SpentTokens>) -> TestGateway {
        TestGateway::start_with(hosts, store, SessionLimits::default()).await
    }

    pub async fn start_with(
        hosts: &[String],
        store: Arc<dyn SpentTokens>,
        limits: SessionLimits,
    ) -> TestGateway {
        let seed = test_seed();
        let keys = KeySet::derive(&Seed::from_bytes(seed), &test_specs()).expect("keys");
        let pool = Arc::new(HostPool::new(hosts, limits).expect("pool"));
        let tokens = Arc::new(FakeTokensForTests::new());
        let config = GatewayConfig {
            host_connect_timeout: Duration::from_secs(2),
            host_timeout: Duration::from_secs(5),
            health_timeout: Duration::from_secs(2),
        };
        let gateway = Gateway::new(keys, tokens.clone(), store, pool, config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let g = gateway.clone();
        let task = tokio::spawn(async move {
            cloister_gateway::serve(listener, g, std::future::pending()).await;
        });
        TestGateway {
            url,
            gateway,
            tokens,
            keys_seed: seed,
            task,
        }
    }

    /// The encoded configuration of key `id` (from the served list or derived).
    pub fn config(&self, id: u8) -> Vec<u8> {
        let spec = test_specs().into_iter().find(|s| s.id == id).expect("spec");
        cloister_gateway::GatewayKey::derive(&Seed::from_bytes(self.keys_seed), spec)
            .config()
            .to_vec()
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

pub async fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut b = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = client
        .request(b.body(Full::new(Bytes::from(body))).expect("request"))
        .await
        .expect("http");
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("?").to_owned()))
        .collect();
    let body = resp
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

/// The inner Binary HTTP request of one flight.
pub fn inner_request(session: &SessionId, token: Option<&str>, records: &[u8]) -> Vec<u8> {
    let mut m = bhttp::Message::request(
        b"POST".to_vec(),
        b"https".to_vec(),
        b"gateway.example".to_vec(),
        INNER_TUNNEL_PATH.as_bytes().to_vec(),
    );
    m.put_header(SESSION_HEADER, session.to_hex());
    if let Some(t) = token {
        m.put_header("authorization", t);
    }
    m.write_content(records);
    let mut out = Vec::new();
    m.write_bhttp(bhttp::Mode::KnownLength, &mut out)
        .expect("bhttp");
    out
}

/// An inner response, decoded.
#[derive(Debug)]
pub struct InnerAnswer {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl InnerAnswer {
    pub fn problem_type(&self) -> Option<String> {
        if self.headers.get("content-type").map(String::as_str) != Some("application/problem+json")
        {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        v.get("type").and_then(|t| t.as_str()).map(str::to_owned)
    }
}

pub fn decode_inner(bytes: &[u8]) -> InnerAnswer {
    let m = bhttp::Message::read_bhttp(&mut Cursor::new(bytes)).expect("inner bhttp response");
    let status = m.control().status().expect("a response").code();
    let headers = m
        .header()
        .iter()
        .map(|f| {
            (
                String::from_utf8_lossy(f.name()).into_owned(),
                String::from_utf8_lossy(f.value()).into_owned(),
            )
        })
        .collect();
    InnerAnswer {
        status,
        headers,
        body: m.content().to_vec(),
    }
}

/// Encapsulates `inner` to `config` with the `ohttp` crate, posts it, opens the answer.
pub async fn ohttp_exchange(url: &str, config: &[u8], inner: &[u8]) -> InnerAnswer {
    ohttp::init();
    let client = ohttp::ClientRequest::from_encoded_config(config).expect("config");
    let (enc, response) = client.encapsulate(inner).expect("encapsulate");
    let a = http(
        "POST",
        &format!("{url}{OHTTP_PATH}"),
        &[("content-type", OHTTP_REQ_TYPE)],
        enc,
    )
    .await;
    assert_eq!(a.status, 200, "outer: {}", String::from_utf8_lossy(&a.body));
    assert_eq!(
        a.header("content-type"),
        Some(cloister_tunnel::OHTTP_RES_TYPE)
    );
    let plain = response.decapsulate(&a.body).expect("decapsulate response");
    decode_inner(&plain)
}

/// A real `redis-server` on a free loopback port, killed on drop.
pub struct RedisServer {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "redis-server is not installed: the RedisStore tests need a real Redis \
             (Debian: apt-get install -y redis-server)"
        );
        let dir = tempfile::tempdir().expect("tmp");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let s = RedisServer {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
            _dir: dir,
        };
        // Bounded polling until it answers PING.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                use std::io::{Read, Write};
                let _ = c.set_read_timeout(Some(Duration::from_millis(500)));
                if c.write_all(b"PING\r\n").is_ok() {
                    let mut buf = [0u8; 7];
                    if c.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n" {
                        return s;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {port}"
            );
            std::thread::yield_now();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it is true, at most `secs` seconds.
pub async fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    f()
}
