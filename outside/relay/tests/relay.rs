//! The `cloister-relay` process: what it forwards (byte for byte, captured on raw TCP), what it
//! refuses, and a whole exchange client → relay → gateway → host.

#[path = "../../gateway/tests/it/common.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloister_gateway::{RedbStore, SpentTokens};
use cloister_tunnel::{
    SessionId, KEYS_PATH, OHTTP_KEYS_TYPE, OHTTP_PATH, OHTTP_REQ_TYPE, OHTTP_RES_TYPE,
};
use common::{decode_inner, http, inner_request, Answer, FakeHost, TestGateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The relay process, killed on drop.
struct RelayProc {
    child: Child,
    url: String,
}

impl Drop for RelayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn relay(gateway: &str, extra: &[&str]) -> RelayProc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cloister-relay"))
        .args(["--listen", "127.0.0.1:0", "--gateway", gateway])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn relay");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    RelayProc {
        child,
        url: format!("http://{addr}"),
    }
}

/// How the capture server answers.
#[derive(Clone)]
enum Reply {
    /// These raw response bytes.
    Raw(Vec<u8>),
    /// Never (holds the connection).
    Never,
}

/// A raw TCP "gateway" that records every byte it receives, request by request.
struct Capture {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Capture {
    async fn start(reply: Reply) -> Capture {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let r = requests.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                conns.spawn(serve_raw(stream, r.clone(), reply.clone()));
            }
        });
        Capture {
            addr,
            requests,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<Vec<u8>> {
        self.requests.lock().expect("lock").clone()
    }
}

async fn serve_raw(mut s: TcpStream, requests: Arc<Mutex<Vec<Vec<u8>>>>, reply: Reply) {
    let mut buf = Vec::new();
    loop {
        // One request: headers, then Content-Length bytes.
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 65536];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let request: Vec<u8> = buf.drain(..head_end + len).collect();
        requests.lock().expect("lock").push(request);
        match &reply {
            Reply::Raw(bytes) => {
                if s.write_all(bytes).await.is_err() {
                    return;
                }
            }
            Reply::Never => std::future::pending::<()>().await,
        }
    }
}

fn raw_response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    let mut out = r.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Header names (lower case) and body of a captured request.
fn parse(req: &[u8]) -> (String, Vec<String>, Vec<u8>) {
    let end = find(req, b"\r\n\r\n").expect("head") + 4;
    let head = String::from_utf8_lossy(&req[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().expect("request line").to_owned();
    let names = lines
        .filter(|l| !l.is_empty())
        .map(|l| l.split(':').next().expect("name").to_ascii_lowercase())
        .collect();
    (request_line, names, req[end..].to_vec())
}

/// Headers a client might send that name or fingerprint it.
const CLIENT_HEADERS: &[(&str, &str)] = &[
    ("user-agent", "Mozilla/5.0 (alice-laptop)"),
    ("cookie", "session=alice-cookie"),
    ("authorization", "Bearer alice-secret"),
    ("x-forwarded-for", "203.0.113.7"),
    ("forwarded", "for=203.0.113.7"),
    ("via", "1.1 alice-proxy"),
    ("x-real-ip", "203.0.113.7"),
    ("true-client-ip", "203.0.113.7"),
    ("accept-language", "nl-BE"),
    ("origin", "https://alice.example"),
    ("referer", "https://alice.example/page"),
    ("x-client-id", "alice-client-id"),
    ("sec-ch-ua", "\"AliceBrowser\";v=\"9\""),
];

fn assert_no_client_trace(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes).to_ascii_lowercase();
    for (name, value) in CLIENT_HEADERS {
        assert!(
            !text.contains(&format!("{name}:")),
            "forwarded {name}: {text}"
        );
        assert!(
            !text.contains(&value.to_ascii_lowercase()),
            "forwarded a value of {name}: {text}"
        );
    }
    for word in ["alice", "203.0.113"] {
        assert!(!text.contains(word), "{word} in {text}");
    }
}

async fn post_with_client_headers(url: &str, body: Vec<u8>) -> Answer {
    let mut h: Vec<(&str, &str)> = CLIENT_HEADERS.to_vec();
    h.push(("content-type", OHTTP_REQ_TYPE));
    http("POST", &format!("{url}{OHTTP_PATH}?user=alice"), &h, body).await
}

#[tokio::test]
async fn forwards_only_the_body_and_its_content_type() {
    let answer = raw_response(
        "200 OK",
        &[
            ("content-type", OHTTP_RES_TYPE),
            ("set-cookie", "gw=tracking"),
            ("x-gateway-internal", "node-7"),
        ],
        b"sealed response",
    );
    let cap = Capture::start(Reply::Raw(answer)).await;
    let r = relay(&cap.url(), &[]);

    let body = b"\x01\x00\x20opaque encapsulated request".to_vec();
    let a = post_with_client_headers(&r.url, body.clone()).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some(OHTTP_RES_TYPE));
    assert_eq!(a.body, b"sealed response");
    assert!(a.header("set-cookie").is_none() && a.header("x-gateway-internal").is_none());

    let reqs = cap.requests();
    assert_eq!(reqs.len(), 1);
    let (line, mut names, fwd_body) = parse(&reqs[0]);
    assert_eq!(
        line,
        format!("POST {OHTTP_PATH} HTTP/1.1"),
        "no query string"
    );
    names.sort();
    assert_eq!(names, vec!["content-length", "content-type", "host"]);
    assert!(
        String::from_utf8_lossy(&reqs[0]).contains(&format!("content-type: {OHTTP_REQ_TYPE}\r\n"))
    );
    assert_eq!(fwd_body, body);
    assert_no_client_trace(&reqs[0]);

    // The keys route: a bare GET.
    let mut h: Vec<(&str, &str)> = CLIENT_HEADERS.to_vec();
    h.push(("accept", OHTTP_KEYS_TYPE));
    let a = http("GET", &format!("{}{KEYS_PATH}", r.url), &h, vec![]).await;
    assert_eq!(a.status, 200);
    let reqs = cap.requests();
    assert_eq!(reqs.len(), 2);
    let (line, names, fwd_body) = parse(&reqs[1]);
    assert_eq!(line, format!("GET {KEYS_PATH} HTTP/1.1"));
    assert_eq!(names, vec!["host"]);
    assert!(fwd_body.is_empty());
    assert_no_client_trace(&reqs[1]);
}

#[tokio::test]
async fn refuses_without_forwarding() {
    let ok = raw_response("200 OK", &[("content-type", OHTTP_RES_TYPE)], b"r");
    let cap = Capture::start(Reply::Raw(ok)).await;
    let r = relay(&cap.url(), &["--max-body", "1000"]);
    let ohttp = format!("{}{OHTTP_PATH}", r.url);
    let ct = [("content-type", OHTTP_REQ_TYPE)];
    assert_eq!(
        http("GET", &format!("{}/", r.url), &[], vec![])
            .await
            .status,
        404
    );
    assert_eq!(
        http("POST", &format!("{}/other", r.url), &ct, vec![1])
            .await
            .status,
        404
    );
    assert_eq!(
        http("POST", &format!("{}/ohttp/x", r.url), &ct, vec![1])
            .await
            .status,
        404
    );
    assert_eq!(http("GET", &ohttp, &[], vec![]).await.status, 405);
    assert_eq!(
        http("POST", &format!("{}{KEYS_PATH}", r.url), &ct, vec![1])
            .await
            .status,
        405
    );
    assert_eq!(http("POST", &ohttp, &[], vec![1]).await.status, 415);
    assert_eq!(
        http("POST", &ohttp, &[("content-type", "text/plain")], vec![1])
            .await
            .status,
        415
    );
    assert_eq!(
        http(
            "POST",
            &ohttp,
            &[("content-type", "message/ohttp-res")],
            vec![1]
        )
        .await
        .status,
        415
    );
    assert_eq!(http("POST", &ohttp, &ct, vec![0; 1001]).await.status, 413);
    assert!(
        cap.requests().is_empty(),
        "nothing refused reached the gateway"
    );
    // At the limit it goes through; a parameter on the media type is fine.
    let a = http(
        "POST",
        &ohttp,
        &[("content-type", "Message/OHTTP-req; x=1")],
        vec![0; 1000],
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(cap.requests().len(), 1);

    // A gateway answer over the limit: 502, not passed on.
    let big = raw_response("200 OK", &[("content-type", OHTTP_RES_TYPE)], &[7; 1001]);
    let cap2 = Capture::start(Reply::Raw(big)).await;
    let r2 = relay(&cap2.url(), &["--max-body", "1000"]);
    let a = http("POST", &format!("{}{OHTTP_PATH}", r2.url), &ct, vec![1]).await;
    assert_eq!(a.status, 502);
    assert!(!a.body.contains(&7));
}

#[tokio::test]
async fn times_out_and_reports_an_unreachable_gateway() {
    let cap = Capture::start(Reply::Never).await;
    let r = relay(&cap.url(), &["--timeout-ms", "300"]);
    let ct = [("content-type", OHTTP_REQ_TYPE)];
    let started = std::time::Instant::now();
    let a = http("POST", &format!("{}{OHTTP_PATH}", r.url), &ct, vec![1]).await;
    assert_eq!(a.status, 504);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        http("GET", &format!("{}{KEYS_PATH}", r.url), &[], vec![])
            .await
            .status,
        504
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let r2 = relay(&format!("http://127.0.0.1:{port}"), &[]);
    let a = http("POST", &format!("{}{OHTTP_PATH}", r2.url), &ct, vec![1]).await;
    assert_eq!(a.status, 502);
    assert!(String::from_utf8_lossy(&a.body).contains("unreachable"));
}

#[test]
fn refuses_bad_configuration() {
    for (gateway, want) in [
        ("https://gw.example", "only http://"),
        ("gw.example:80", "only http://"),
        ("http://gw.example/?q=1", "no query"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_cloister-relay"))
            .args(["--gateway", gateway])
            .output()
            .expect("run");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{gateway}: {err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_cloister-relay"))
        .args(["--gateway", "http://127.0.0.1:1", "--max-body", "0"])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-body"));
}

/// A TCP tap between the relay and the gateway: forwards both ways, records what the relay
/// sent.
async fn tap(to: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<u8>>>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let Ok((inbound, _)) = listener.accept().await else {
                continue;
            };
            let seen = s2.clone();
            conns.spawn(async move {
                let Ok(outbound) = TcpStream::connect(to).await else {
                    return;
                };
                let (mut ir, mut iw) = inbound.into_split();
                let (mut or, mut ow) = outbound.into_split();
                let up = async {
                    let mut buf = [0u8; 65536];
                    loop {
                        match ir.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                seen.lock().expect("lock").extend_from_slice(&buf[..n]);
                                if ow.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = ow.shutdown().await;
                };
                let down = async {
                    let _ = tokio::io::copy(&mut or, &mut iw).await;
                    let _ = iw.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    (addr, seen, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_relay_gateway_host_end_to_end() {
    let host = FakeHost::start(0).await;
    let dir = tempfile::tempdir().expect("tmp");
    let store: Arc<dyn SpentTokens> =
        Arc::new(RedbStore::open(&dir.path().join("spent.redb"), Duration::ZERO).expect("store"));
    let gw = TestGateway::start(&[host.url()], store).await;
    let gw_addr: SocketAddr = gw.url.trim_start_matches("http://").parse().expect("addr");
    let (tap_addr, seen, tap_task) = tap(gw_addr).await;
    let r = relay(&format!("http://{tap_addr}"), &[]);

    // Keys through the relay.
    let keys = http("GET", &format!("{}{KEYS_PATH}", r.url), &[], vec![]).await;
    assert_eq!(keys.status, 200);
    assert_eq!(keys.header("content-type"), Some(OHTTP_KEYS_TYPE));
    ohttp::init();
    let configs = ohttp::KeyConfig::decode_list(&keys.body).expect("configs");
    assert_eq!(configs.len(), 2);
    let first_len = u16::from_be_bytes([keys.body[0], keys.body[1]]) as usize;
    let config = keys.body[2..2 + first_len].to_vec();

    let session = SessionId::random().expect("id");
    let token = gw.tokens.mint();
    let records = b"\x16\x03\x03client hello: secret plaintext of the flight".to_vec();
    let mut answers = Vec::new();
    for (i, auth) in [Some(token.as_str()), None].into_iter().enumerate() {
        let client = ohttp::ClientRequest::from_encoded_config(&config).expect("client");
        let mut flight = records.clone();
        flight.push(b'0' + i as u8);
        let (enc, response) = client
            .encapsulate(&inner_request(&session, auth, &flight))
            .expect("enc");
        let a = post_with_client_headers(&r.url, enc).await;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        assert_eq!(a.header("content-type"), Some(OHTTP_RES_TYPE));
        let inner = decode_inner(&response.decapsulate(&a.body).expect("open"));
        assert_eq!(inner.status, 200);
        let mut want = b"host0:".to_vec();
        want.extend_from_slice(&flight);
        assert_eq!(inner.body, want);
        answers.push(flight);
    }
    // The host got exactly the flights' records.
    let got: Vec<Vec<u8>> = host.received().into_iter().map(|r| r.body).collect();
    assert_eq!(got, answers);

    // Everything the relay sent the gateway: no client header, no plaintext of the inner
    // request (records, session id, token, inner path or header names).
    let sent = seen.lock().expect("lock").clone();
    assert!(!sent.is_empty());
    assert_no_client_trace(&sent);
    let token_value = token.trim_start_matches("PrivateToken token=");
    for secret in [
        &b"secret plaintext"[..],
        session.to_hex().as_bytes(),
        &session.0[..],
        token_value.as_bytes(),
        b"cloister-session",
        b"/v1/tunnel",
        b"PrivateToken",
    ] {
        assert!(
            find(&sent, secret).is_none(),
            "{:?} reached the gateway in clear",
            String::from_utf8_lossy(secret)
        );
    }
    tap_task.abort();
}
