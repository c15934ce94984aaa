//! The oblivious path's outside hops, in one process over loopback HTTP —
//! `cargo bench -p cloister-gateway --bench gateway`.
//!
//! ```sh
//! cargo bench -p cloister-gateway --bench gateway                     # release build of the bench
//! cargo bench -p cloister-gateway --bench gateway -- --concurrency 8 --requests 2000 --flights 1000
//! cargo bench -p cloister-gateway --bench gateway --profile dev -- --bench --quick
//! ```
//!
//! Every party is a separate tokio task on one multi-threaded runtime (one worker per core),
//! talking real HTTP/1.1 over loopback with keep-alive connections: the clients, an
//! in-process `cloister-relay`, the gateway (`cloister_gateway::serve`) and a fake host
//! tunnel endpoint (a small hyper server answering every `POST /v1/tunnel/{id}` with a fixed
//! 1 KiB body). Clients send 1 KiB of "TLS records" per flight, OHTTP-encapsulated with the
//! `ohttp` crate (the client in the gateway's tests).
//!
//! 1. **Gateway throughput** (client → gateway → fake host, `--concurrency` clients at once):
//!    flights of existing sessions (no token) and first flights of new sessions (token check,
//!    spend, forward), with the embedded redb store and with a real `redis-server` (started
//!    on a free port in a temporary directory, as the gateway's tests do). Requests are
//!    encapsulated before the clock starts and their answers opened after it stops, so the
//!    figure is the gateway's (plus the fake host's and the HTTP client's, on the same cores).
//!    Token checking uses the tests' **fake** `FakeTokensForTests` (a SHA-256 tag): a real
//!    type-2 token costs an RSA-2048 signature verification more per new session, measured
//!    on its own in 2.
//! 2. **Token verification**: `cloister_issuer::redeem::TokenVerifier::check_authorization`
//!    on a real token minted in-process (issuer key, `client::begin`, `Issuer::issue`,
//!    `PendingToken::finish`), per call on one thread; the fake check alongside.
//! 3. **Added latency per flight**, one flight at a time on an existing session: client →
//!    fake host directly, client → gateway → fake host, and client → relay → gateway → fake
//!    host (the client's encapsulation and decapsulation included), interleaved; p50/p90/p99
//!    and the difference to the direct path.

#[path = "../tests/it/common.rs"]
mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloister_gateway::{RedbStore, RedisStore, SpentTokens, TokenCheck};
use cloister_relay::{Relay, RelayConfig};
use cloister_tunnel::{
    SessionId, HOST_TUNNEL_PREFIX, OHTTP_PATH, OHTTP_REQ_TYPE, TLS_RECORDS_TYPE,
};
use common::{decode_inner, inner_request, FakeTokensForTests, RedisServer, TestGateway};
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the fake host answers to every flight.
static HOST_REPLY: [u8; 1024] = [0x17; 1024];
/// What a client sends in every flight.
const FLIGHT_BYTES: usize = 1024;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// `--name N` (or the default).
fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number, got {v:?}"))
        })
        .unwrap_or(default)
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

/// A fake host tunnel endpoint: `POST /v1/tunnel/{id}` → 200 with [`HOST_REPLY`], `GET
/// /healthz` → 200, anything else 404. It keeps nothing.
struct FixedHost {
    url: String,
    task: JoinHandle<()>,
}

impl Drop for FixedHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FixedHost {
    async fn start() -> FixedHost {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                conns.spawn(async move {
                    let svc = service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let tunnel = req.method() == hyper::Method::POST
                            && req.uri().path().starts_with(HOST_TUNNEL_PREFIX);
                        let health = req.uri().path() == "/healthz";
                        // Read the whole flight, as a host does.
                        let _ = req.into_body().collect().await;
                        let mut r = if tunnel {
                            let mut r = Response::new(Full::new(Bytes::from_static(&HOST_REPLY)));
                            r.headers_mut()
                                .insert(CONTENT_TYPE, HeaderValue::from_static(TLS_RECORDS_TYPE));
                            r
                        } else {
                            Response::new(Full::new(Bytes::from_static(b"ok")))
                        };
                        if !tunnel && !health {
                            *r.status_mut() = StatusCode::NOT_FOUND;
                        }
                        Ok::<_, Infallible>(r)
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
                // Reap finished connections without waiting.
                while conns.try_join_next().is_some() {}
            }
        });
        FixedHost { url, task }
    }
}

/// A pooled keep-alive HTTP/1.1 client with `TCP_NODELAY`, as the relay's and gateway's.
fn http_client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(connector)
}

async fn post(
    client: &HttpClient,
    url: &str,
    content_type: &'static str,
    body: Bytes,
) -> (u16, Bytes) {
    let req = Request::post(url)
        .header(CONTENT_TYPE, content_type)
        .body(Full::new(body))
        .expect("request");
    let resp = client.request(req).await.expect("http");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, body)
}

/// One flight's records (opaque to every hop but the host).
fn records() -> Vec<u8> {
    (0..FLIGHT_BYTES).map(|i| (i % 251) as u8).collect()
}

/// Encapsulates, posts to `{base}/ohttp`, opens the answer: the inner status, the inner
/// body's length, and the time spent encapsulating and opening (the client's own work).
async fn ohttp_flight(
    client: &HttpClient,
    base: &str,
    config: &[u8],
    inner: &[u8],
) -> (u16, usize, Duration) {
    let t = Instant::now();
    let (enc, pending) = ohttp::ClientRequest::from_encoded_config(config)
        .expect("config")
        .encapsulate(inner)
        .expect("encapsulate");
    let mut work = t.elapsed();
    let (status, body) = post(
        client,
        &format!("{base}{OHTTP_PATH}"),
        OHTTP_REQ_TYPE,
        Bytes::from(enc),
    )
    .await;
    assert_eq!(status, 200, "outer: {}", String::from_utf8_lossy(&body));
    let t = Instant::now();
    let plain = pending.decapsulate(&body).expect("decapsulate");
    work += t.elapsed();
    let inner = decode_inner(&plain);
    (inner.status, inner.body.len(), work)
}

/// Opens a session through `base` with a fresh fake token.
async fn open_session(
    client: &HttpClient,
    base: &str,
    config: &[u8],
    tokens: &FakeTokensForTests,
) -> SessionId {
    let session = SessionId::random().expect("random");
    let token = tokens.mint();
    let (status, len, _) = ohttp_flight(
        client,
        base,
        config,
        &inner_request(&session, Some(&token), &records()),
    )
    .await;
    assert_eq!((status, len), (200, HOST_REPLY.len()), "opening a session");
    session
}

/// Percentile `p` (0..=100) of sorted durations, in milliseconds.
fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

/// CPU time of this process so far, all threads, user + system (`/proc/self/stat`, in
/// clock ticks of 10 ms: Linux's `USER_HZ` is 100).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

struct Throughput {
    requests: usize,
    secs: f64,
    cpu: Option<Duration>,
    latencies: Vec<Duration>,
}

/// Posts every worker's pre-encapsulated requests (one worker per entry of `work`, each
/// sequentially), then opens every answer and checks it is the host's 200.
async fn run_throughput(
    client: &HttpClient,
    url: &str,
    config: &[u8],
    work: Vec<Vec<Vec<u8>>>,
) -> Throughput {
    let url = format!("{url}{OHTTP_PATH}");
    // Encapsulate before the clock starts.
    let work: Vec<Vec<(Bytes, ohttp::ClientResponse)>> = work
        .into_iter()
        .map(|inners| {
            inners
                .iter()
                .map(|inner| {
                    let (enc, pending) = ohttp::ClientRequest::from_encoded_config(config)
                        .expect("config")
                        .encapsulate(inner)
                        .expect("encapsulate");
                    (Bytes::from(enc), pending)
                })
                .collect()
        })
        .collect();
    let requests = work.iter().map(Vec::len).sum();
    let cpu_before = cpu_time();
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for jobs in work {
        let client = client.clone();
        let url = url.clone();
        set.spawn(async move {
            let mut out = Vec::with_capacity(jobs.len());
            for (enc, pending) in jobs {
                let t = Instant::now();
                let (status, body) = post(&client, &url, OHTTP_REQ_TYPE, enc).await;
                out.push((t.elapsed(), status, body, pending));
            }
            out
        });
    }
    let mut answers = Vec::with_capacity(requests);
    while let Some(r) = set.join_next().await {
        answers.extend(r.expect("worker"));
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    // Open the answers after the clock stopped: all must be the host's reply.
    let mut latencies = Vec::with_capacity(requests);
    for (d, status, body, pending) in answers {
        assert_eq!(status, 200, "outer: {}", String::from_utf8_lossy(&body));
        let inner = decode_inner(&pending.decapsulate(&body).expect("decapsulate"));
        assert_eq!(
            inner.status,
            200,
            "inner: {}",
            String::from_utf8_lossy(&inner.body)
        );
        assert_eq!(inner.body.len(), HOST_REPLY.len());
        latencies.push(d);
    }
    latencies.sort();
    Throughput {
        requests,
        secs,
        cpu,
        latencies,
    }
}

/// Splits `total` requests over `workers` as evenly as possible.
fn shares(total: usize, workers: usize) -> impl Iterator<Item = usize> {
    (0..workers).map(move |w| total / workers + usize::from(w < total % workers))
}

/// Existing sessions (one per worker, opened beforehand) and new sessions, on one gateway.
async fn gateway_throughput(
    store_name: &str,
    store: Arc<dyn SpentTokens>,
    host: &FixedHost,
    client: &HttpClient,
    concurrency: usize,
    requests: usize,
) -> Vec<(String, Throughput)> {
    let gw = TestGateway::start(std::slice::from_ref(&host.url), store).await;
    let config = gw.config(1);
    let records = records();
    let mut sessions = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        sessions.push(open_session(client, &gw.url, &config, &gw.tokens).await);
    }
    let flights = |n: usize| -> Vec<Vec<Vec<u8>>> {
        sessions
            .iter()
            .zip(shares(n, concurrency))
            .map(|(s, k)| (0..k).map(|_| inner_request(s, None, &records)).collect())
            .collect()
    };
    // Warm up: connections from the client and to the host, allocator, session table.
    run_throughput(client, &gw.url, &config, flights(concurrency * 8)).await;
    let existing = run_throughput(client, &gw.url, &config, flights(requests)).await;
    let fresh_work: Vec<Vec<Vec<u8>>> = shares(requests, concurrency)
        .map(|k| {
            (0..k)
                .map(|_| {
                    let s = SessionId::random().expect("random");
                    inner_request(&s, Some(&gw.tokens.mint()), &records)
                })
                .collect()
        })
        .collect();
    let fresh = run_throughput(client, &gw.url, &config, fresh_work).await;
    vec![
        (
            format!("{store_name:<6} existing session, no token"),
            existing,
        ),
        (
            format!("{store_name:<6} new session: fake token check + spend"),
            fresh,
        ),
    ]
}

/// A real type-2 token, minted in-process; the verifier for it.
fn real_token() -> (cloister_issuer::redeem::TokenVerifier, String) {
    use cloister_issuer::redeem::{header, Challenge, TokenVerifier};
    let key = cloister_issuer::keys::IssuerKey::generate(0).expect("issuer key");
    let public = key.public().clone();
    let issuer = cloister_issuer::issuer::Issuer::new(key);
    let challenge = Challenge::new("issuer.example", &[]).expect("challenge");
    let (request, pending) =
        cloister_issuer::client::begin(&challenge, &public).expect("token request");
    let response = issuer.issue(&request).expect("issue");
    let token = pending.finish(&response).expect("finalize");
    (
        TokenVerifier::new(public, challenge),
        header::format_authorization(&token),
    )
}

/// Mean time per call of `f`, over `n` calls after `n / 10` warm-up calls.
fn per_call(n: usize, mut f: impl FnMut()) -> Duration {
    for _ in 0..n / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed() / n as u32
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn latency(host: &FixedHost, client: &HttpClient, flights: usize) {
    let dir = tempfile::tempdir().expect("tmp");
    let store: Arc<dyn SpentTokens> = Arc::new(
        RedbStore::open(&dir.path().join("spent.redb"), Duration::from_secs(3600)).expect("redb"),
    );
    let gw = TestGateway::start(std::slice::from_ref(&host.url), store).await;
    let config = gw.config(1);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let relay_url = format!("http://{}", listener.local_addr().expect("addr"));
    let relay = Relay::new(&RelayConfig::new(&gw.url)).expect("relay");
    let relay_task = tokio::spawn(cloister_relay::serve(
        listener,
        relay,
        std::future::pending(),
    ));
    let session = open_session(client, &relay_url, &config, &gw.tokens).await;
    let records = records();
    let inner = inner_request(&session, None, &records);
    let direct_url = format!("{}{HOST_TUNNEL_PREFIX}{}", host.url, session.to_hex());
    let direct_body = Bytes::from(records.clone());

    let mut direct = Vec::with_capacity(flights);
    let mut via_gateway = Vec::with_capacity(flights);
    let mut via_relay = Vec::with_capacity(flights);
    let mut client_ohttp = Duration::ZERO;
    let warmup = (flights / 10).max(10);
    for i in 0..warmup + flights {
        let t = Instant::now();
        let (status, body) = post(client, &direct_url, TLS_RECORDS_TYPE, direct_body.clone()).await;
        let d = t.elapsed();
        assert_eq!((status, body.len()), (200, HOST_REPLY.len()));

        let t = Instant::now();
        let (status, len, _) = ohttp_flight(client, &gw.url, &config, &inner).await;
        let g = t.elapsed();
        assert_eq!((status, len), (200, HOST_REPLY.len()));

        let t = Instant::now();
        let (status, len, work) = ohttp_flight(client, &relay_url, &config, &inner).await;
        let rl = t.elapsed();
        assert_eq!((status, len), (200, HOST_REPLY.len()));

        if i >= warmup {
            direct.push(d);
            via_gateway.push(g);
            via_relay.push(rl);
            client_ohttp += work;
        }
    }
    relay_task.abort();

    for v in [&mut direct, &mut via_gateway, &mut via_relay] {
        v.sort();
    }
    println!();
    println!(
        "latency per flight, one at a time on an existing session ({flights} flights after {warmup} warm-up, interleaved; 1 KiB each way)"
    );
    println!(
        "{:<52} {:>8} {:>8} {:>8} {:>13} {:>13}",
        "path", "p50 ms", "p90 ms", "p99 ms", "+p50 ms", "+p90 ms"
    );
    let (d50, d90) = (pct(&direct, 50.0), pct(&direct, 90.0));
    for (name, v) in [
        ("client -> fake host (direct)", &direct),
        ("client -> gateway -> fake host (OHTTP)", &via_gateway),
        (
            "client -> relay -> gateway -> fake host (OHTTP)",
            &via_relay,
        ),
    ] {
        let (p50, p90, p99) = (pct(v, 50.0), pct(v, 90.0), pct(v, 99.0));
        println!(
            "{name:<52} {p50:>8.3} {p90:>8.3} {p99:>8.3} {:>13.3} {:>13.3}",
            p50 - d50,
            p90 - d90
        );
    }
    println!(
        "(+ = over the direct path; the OHTTP rows include the client's own encapsulation and \
         opening of the answer: {:.0} µs per flight on average)",
        us(client_ohttp / flights as u32)
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and only checks
    // that this builds.
    if !flag("--bench") {
        println!("gateway bench: run with `cargo bench -p cloister-gateway --bench gateway`");
        return;
    }
    let quick = flag("--quick");
    let concurrency = arg("--concurrency", 32).max(1);
    let requests = arg("--requests", if quick { 500 } else { 20_000 }).max(concurrency);
    let flights = arg("--flights", if quick { 100 } else { 500 }).max(1);
    let verifies = arg("--verifies", if quick { 200 } else { 2000 }).max(10);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    ohttp::init();

    println!(
        "cloister-gateway bench: {cores} cores, {} build; every party in this process on one tokio runtime ({cores} workers), loopback HTTP/1.1 with keep-alive",
        if cfg!(debug_assertions) { "dev (debug)" } else { "release" }
    );

    // 2 first: it needs no runtime, and the RSA key generation is best done on a quiet machine.
    let (verifier, authorization) = real_token();
    let nonce = verifier.check_authorization(&authorization).expect("valid");
    let real = per_call(verifies, || {
        let n = verifier.check_authorization(&authorization).expect("valid");
        assert_eq!(n, nonce);
    });
    let fake = FakeTokensForTests::new();
    let fake_auth = fake.mint();
    let fake_t = per_call(verifies * 50, || {
        fake.check(&fake_auth).expect("valid");
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let host = FixedHost::start().await;
        let client = http_client();

        let mut rows = Vec::new();
        let dir = tempfile::tempdir().expect("tmp");
        let redb: Arc<dyn SpentTokens> = Arc::new(
            RedbStore::open(&dir.path().join("spent.redb"), Duration::from_secs(3600))
                .expect("redb"),
        );
        rows.extend(gateway_throughput("redb", redb, &host, &client, concurrency, requests).await);
        let redis_server = RedisServer::start();
        let redis: Arc<dyn SpentTokens> = Arc::new(
            RedisStore::connect(&redis_server.url, Duration::from_secs(3600))
                .await
                .expect("redis"),
        );
        rows.extend(
            gateway_throughput("redis", redis, &host, &client, concurrency, requests).await,
        );
        drop(redis_server);

        println!();
        println!(
            "gateway throughput: client -> gateway -> fake host, {concurrency} concurrent clients, 1 KiB flights each way, requests encapsulated beforehand"
        );
        println!(
            "{:<52} {:>8} {:>8} {:>11} {:>8} {:>8} {:>12}",
            "store  case", "requests", "seconds", "requests/s", "p50 ms", "p90 ms", "CPU µs/req"
        );
        for (name, t) in &rows {
            let cpu = t.cpu.map_or("n/a".to_owned(), |c| {
                format!("{:.0}", us(c) / t.requests as f64)
            });
            println!(
                "{name:<52} {:>8} {:>8.2} {:>11.0} {:>8.2} {:>8.2} {cpu:>12}",
                t.requests,
                t.secs,
                t.requests as f64 / t.secs,
                pct(&t.latencies, 50.0),
                pct(&t.latencies, 90.0)
            );
        }
        println!(
            "(CPU µs/req: this process's user + system time over the run, all parties in it: client, gateway, fake host, redb writer; not redis-server)"
        );

        println!();
        println!("token check per call, one thread ({verifies} real calls)");
        println!("{:<52} {:>10} {:>14}", "check", "µs/call", "calls/s/core");
        for (name, d) in [
            (
                "TokenVerifier::check_authorization (type 2, RSA-2048)",
                real,
            ),
            ("FakeTokensForTests::check (SHA-256 tag; bench only)", fake_t),
        ] {
            println!(
                "{name:<52} {:>10.1} {:>14.0}",
                us(d),
                1.0 / d.as_secs_f64()
            );
        }

        latency(&host, &client, flights).await;
    });
}
