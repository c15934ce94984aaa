//! The gateway as a client and hosts see it: OHTTP over loopback HTTP (the `ohttp` crate as
//! the client), fake host tunnel endpoints, the fake token check.

use std::sync::Arc;
use std::time::Duration;

use cloister_gateway::{RedbStore, SessionLimits, SpentTokens, PROBLEM_TOKEN_SPENT};
use cloister_tunnel::{
    SessionId, HOST_TUNNEL_PREFIX, MAX_FLIGHT_BYTES, OHTTP_PATH, OHTTP_REQ_TYPE, PROBLEM_OHTTP_KEY,
    PROBLEM_SESSION_LOST, SESSION_HEADER, TLS_RECORDS_TYPE,
};

use crate::common::{
    decode_inner, http, inner_request, ohttp_exchange, FakeHost, HostMode, TestGateway,
};

fn redb() -> (tempfile::TempDir, Arc<dyn SpentTokens>) {
    let dir = tempfile::tempdir().expect("tmp");
    let store = RedbStore::open(&dir.path().join("spent.redb"), Duration::ZERO).expect("store");
    (dir, Arc::new(store))
}

fn records(tag: &str) -> Vec<u8> {
    // Stand-in TLS records: the gateway treats them as opaque bytes.
    let mut r = vec![0x16, 0x03, 0x03];
    r.extend_from_slice(format!("records of {tag}").as_bytes());
    r
}

#[tokio::test]
async fn a_session_end_to_end() {
    let host = FakeHost::start(0).await;
    let (_dir, store) = redb();
    let gw = TestGateway::start(&[host.url()], store).await;
    let cfg = gw.config(1);
    let session = SessionId::random().expect("id");
    let token = gw.tokens.mint();

    // First flight, with a token.
    let a = ohttp_exchange(
        &gw.url,
        &cfg,
        &inner_request(&session, Some(&token), &records("hello")),
    )
    .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(
        a.headers.get("content-type").map(String::as_str),
        Some(TLS_RECORDS_TYPE)
    );
    let mut want = b"host0:".to_vec();
    want.extend_from_slice(&records("hello"));
    assert_eq!(a.body, want);
    // What the host got: exactly the records, on the session's route, with the content type
    // and session header and nothing of the client's (no token).
    let got = host.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].path,
        format!("{HOST_TUNNEL_PREFIX}{}", session.to_hex())
    );
    assert_eq!(got[0].body, records("hello"));
    let names: Vec<&str> = got[0].headers.iter().map(|(k, _)| k.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        vec!["cloister-session", "content-length", "content-type", "host"],
        "{names:?}"
    );
    let header = |n: &str| {
        got[0]
            .headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("content-type").as_deref(), Some(TLS_RECORDS_TYPE));
    assert_eq!(header(SESSION_HEADER), Some(session.to_hex()));

    // Later flights: no token needed, same host.
    for i in 0..3 {
        let a = ohttp_exchange(
            &gw.url,
            &gw.config(2),
            &inner_request(&session, None, &records(&format!("flight {i}"))),
        )
        .await;
        assert_eq!(a.status, 200);
    }
    assert_eq!(host.received().len(), 4);
    assert_eq!(gw.gateway.pool().session_count(), 1);

    // The same token for another session: a replay.
    let other = SessionId::random().expect("id");
    let a = ohttp_exchange(
        &gw.url,
        &cfg,
        &inner_request(&other, Some(&token), &records("replay")),
    )
    .await;
    assert_eq!(a.status, 401);
    assert_eq!(a.problem_type().as_deref(), Some(PROBLEM_TOKEN_SPENT));
    assert!(a
        .headers
        .get("www-authenticate")
        .is_some_and(|w| w.starts_with("PrivateToken ")));
    // No token, or a bad one: 401 with the challenge, nothing forwarded or mapped.
    for auth in [
        None,
        Some("PrivateToken token=00.00"),
        Some("Bearer x"),
        Some(&token[..token.len() - 1]),
    ] {
        let a = ohttp_exchange(&gw.url, &cfg, &inner_request(&other, auth, &records("no"))).await;
        assert_eq!(a.status, 401, "{auth:?}");
        assert!(a.headers.contains_key("www-authenticate"), "{auth:?}");
        assert_eq!(
            a.headers.get("content-type").map(String::as_str),
            Some("application/problem+json")
        );
    }
    assert_eq!(host.received().len(), 4);
    assert_eq!(gw.gateway.pool().session_count(), 1);
}

#[tokio::test]
async fn bad_input_is_refused_without_state_change() {
    let host = FakeHost::start(0).await;
    let (_dir, store) = redb();
    let gw = TestGateway::start(&[host.url()], store).await;
    let cfg = gw.config(1);
    let url = format!("{}{OHTTP_PATH}", gw.url);
    let token = gw.tokens.mint();
    let session = SessionId::random().expect("id");
    ohttp::init();

    // Outer: wrong content type, too large, malformed, not decrypting, unknown route.
    let enc = |inner: &[u8]| {
        ohttp::ClientRequest::from_encoded_config(&cfg)
            .expect("client")
            .encapsulate(inner)
            .expect("enc")
            .0
    };
    let good = enc(&inner_request(&session, Some(&token), b"x"));
    let a = http(
        "POST",
        &url,
        &[("content-type", "application/octet-stream")],
        good.clone(),
    )
    .await;
    assert_eq!(a.status, 415);
    let a = http(
        "POST",
        &url,
        &[("content-type", OHTTP_REQ_TYPE)],
        vec![1; MAX_FLIGHT_BYTES + 20_000],
    )
    .await;
    assert_eq!(a.status, 413);
    let a = http(
        "POST",
        &url,
        &[("content-type", OHTTP_REQ_TYPE)],
        good[..20].to_vec(),
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(
        String::from_utf8_lossy(&a.body).contains("malformed"),
        "{a:?}"
    );
    let mut flipped = good.clone();
    flipped[50] ^= 0x80;
    let a = http("POST", &url, &[("content-type", OHTTP_REQ_TYPE)], flipped).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["type"], PROBLEM_OHTTP_KEY);
    assert_eq!(http("GET", &url, &[], vec![]).await.status, 405);
    assert_eq!(
        http("GET", &format!("{}/other", gw.url), &[], vec![])
            .await
            .status,
        404
    );

    // Inner: not Binary HTTP, wrong path or method, bad session header, too large a flight.
    let a = ohttp_exchange(&gw.url, &cfg, b"\x07not bhttp").await;
    assert_eq!(a.status, 400);
    let mk = |method: &str, path: &str, session: Option<&str>, body: &[u8]| {
        let mut m =
            bhttp::Message::request(method.into(), b"https".to_vec(), b"g".to_vec(), path.into());
        if let Some(s) = session {
            m.put_header(SESSION_HEADER, s);
        }
        m.put_header("authorization", token.as_str());
        m.write_content(body);
        let mut out = Vec::new();
        m.write_bhttp(bhttp::Mode::KnownLength, &mut out)
            .expect("bhttp");
        out
    };
    let hexid = session.to_hex();
    for (inner, want) in [
        (mk("POST", "/v1/other", Some(&hexid), b"x"), 404),
        (mk("GET", "/v1/tunnel", Some(&hexid), b"x"), 405),
        (mk("POST", "/v1/tunnel", None, b"x"), 400),
        (mk("POST", "/v1/tunnel", Some("ABC"), b"x"), 400),
        (
            mk("POST", "/v1/tunnel", Some(&hexid.to_uppercase()), b"x"),
            400,
        ),
        (
            mk(
                "POST",
                "/v1/tunnel",
                Some(&hexid),
                &vec![0; MAX_FLIGHT_BYTES + 1],
            ),
            413,
        ),
    ] {
        let a = ohttp_exchange(&gw.url, &cfg, &inner).await;
        assert_eq!(a.status, want, "{}", String::from_utf8_lossy(&a.body));
        assert_eq!(
            a.headers.get("content-type").map(String::as_str),
            Some("application/problem+json")
        );
    }
    // Two session headers.
    let mut m = bhttp::Message::request(
        b"POST".to_vec(),
        b"https".to_vec(),
        b"g".to_vec(),
        b"/v1/tunnel".to_vec(),
    );
    m.put_header(SESSION_HEADER, hexid.as_str());
    m.put_header(SESSION_HEADER, SessionId::random().expect("id").to_hex());
    let mut two = Vec::new();
    m.write_bhttp(bhttp::Mode::KnownLength, &mut two)
        .expect("bhttp");
    assert_eq!(ohttp_exchange(&gw.url, &cfg, &two).await.status, 400);

    // None of it changed anything: no session, nothing forwarded, the token still unspent.
    assert_eq!(gw.gateway.pool().session_count(), 0);
    assert!(host.received().is_empty());
    let a = ohttp_exchange(&gw.url, &cfg, &inner_request(&session, Some(&token), b"x")).await;
    assert_eq!(a.status, 200);
    // A flight of exactly the maximum size goes through.
    let big = vec![0xab; MAX_FLIGHT_BYTES];
    let a = ohttp_exchange(&gw.url, &cfg, &inner_request(&session, None, &big)).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        host.received().last().map(|r| r.body.len()),
        Some(MAX_FLIGHT_BYTES)
    );
}

#[tokio::test]
async fn sticky_sessions_and_failover() {
    let h0 = FakeHost::start(0).await;
    let h1 = FakeHost::start(1).await;
    let (_dir, store) = redb();
    let gw = TestGateway::start(&[h0.url(), h1.url()], store).await;
    let cfg = gw.config(1);

    // New sessions spread over both hosts (fewest sessions first) and stay where they start.
    let mut sessions = Vec::new();
    for _ in 0..4 {
        let s = SessionId::random().expect("id");
        let a = ohttp_exchange(
            &gw.url,
            &cfg,
            &inner_request(&s, Some(&gw.tokens.mint()), b"first"),
        )
        .await;
        assert_eq!(a.status, 200);
        let host = if a.body.starts_with(b"host0:") { 0 } else { 1 };
        sessions.push((s, host));
    }
    assert_eq!(gw.gateway.pool().sessions_per_host(), vec![2, 2]);
    for (s, host) in &sessions {
        for _ in 0..2 {
            let a = ohttp_exchange(&gw.url, &cfg, &inner_request(s, None, b"more")).await;
            assert!(a.body.starts_with(format!("host{host}:").as_bytes()));
        }
    }

    // Host 0 dies: its sessions are lost (503, retryable problem type), their mappings
    // dropped; host 1's sessions carry on.
    h0.kill();
    for (s, host) in &sessions {
        let a = ohttp_exchange(&gw.url, &cfg, &inner_request(s, None, b"after")).await;
        if *host == 0 {
            assert_eq!(a.status, 503);
            assert_eq!(a.problem_type().as_deref(), Some(PROBLEM_SESSION_LOST));
        } else {
            assert_eq!(a.status, 200);
        }
    }
    assert_eq!(gw.gateway.pool().sessions_per_host(), vec![0, 2]);
    assert!(!gw.gateway.pool().is_healthy(0));
    // A lost session's next message needs a token again (it is a new session now), and new
    // sessions go to the live host.
    let (lost, _) = sessions
        .iter()
        .find(|(_, h)| *h == 0)
        .expect("one on host 0");
    let a = ohttp_exchange(&gw.url, &cfg, &inner_request(lost, None, b"again")).await;
    assert_eq!(a.status, 401);
    for _ in 0..3 {
        let s = SessionId::random().expect("id");
        let a = ohttp_exchange(
            &gw.url,
            &cfg,
            &inner_request(&s, Some(&gw.tokens.mint()), b"new"),
        )
        .await;
        assert_eq!(a.status, 200);
        assert!(a.body.starts_with(b"host1:"));
    }
}

#[tokio::test]
async fn health_checks_steer_new_sessions() {
    let h0 = FakeHost::start(0).await;
    let h1 = FakeHost::start(1).await;
    let (_dir, store) = redb();
    let gw = TestGateway::start(&[h0.url(), h1.url()], store).await;
    let cfg = gw.config(1);

    h1.healthy.store(false, std::sync::atomic::Ordering::SeqCst);
    gw.gateway.check_hosts().await;
    assert!(gw.gateway.pool().is_healthy(0));
    assert!(!gw.gateway.pool().is_healthy(1));
    for _ in 0..3 {
        let s = SessionId::random().expect("id");
        let a = ohttp_exchange(
            &gw.url,
            &cfg,
            &inner_request(&s, Some(&gw.tokens.mint()), b"x"),
        )
        .await;
        assert!(a.body.starts_with(b"host0:"));
    }
    // No healthy host: 503 before the token is spent; the same token works once one is back.
    h0.healthy.store(false, std::sync::atomic::Ordering::SeqCst);
    gw.gateway.check_hosts().await;
    let token = gw.tokens.mint();
    let s = SessionId::random().expect("id");
    let a = ohttp_exchange(&gw.url, &cfg, &inner_request(&s, Some(&token), b"x")).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.headers.get("retry-after").map(String::as_str), Some("5"));
    h1.healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    gw.gateway.check_hosts().await;
    let a = ohttp_exchange(&gw.url, &cfg, &inner_request(&s, Some(&token), b"x")).await;
    assert_eq!(a.status, 200);
    assert!(a.body.starts_with(b"host1:"));
    // The periodic checker does the same on its own (bounded polling, no sleeps).
    let checker = gw.gateway.spawn_health_checks(Duration::from_millis(20));
    h0.healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(crate::common::eventually(10, || gw.gateway.pool().is_healthy(0)).await);
    checker.abort();
}

#[tokio::test]
async fn a_host_that_forgot_the_session_loses_it() {
    let h0 = FakeHost::start(0).await;
    let (_dir, store) = redb();
    let gw = TestGateway::start(&[h0.url()], store).await;
    let cfg = gw.config(1);
    let s = SessionId::random().expect("id");
    let a = ohttp_exchange(
        &gw.url,
        &cfg,
        &inner_request(&s, Some(&gw.tokens.mint()), b"x"),
    )
    .await;
    assert_eq!(a.status, 200);
    *h0.mode.lock().expect("lock") = HostMode::Unknown;
    let a = ohttp_exchange(&gw.url, &cfg, &inner_request(&s, None, b"y")).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.problem_type().as_deref(), Some(PROBLEM_SESSION_LOST));
    assert_eq!(gw.gateway.pool().session_count(), 0);
    assert!(gw.gateway.pool().is_healthy(0), "a 404 is not a dead host");

    // A host answering more than a flight: lost too.
    *h0.mode.lock().expect("lock") = HostMode::Echo;
    let a = ohttp_exchange(
        &gw.url,
        &cfg,
        &inner_request(&s, Some(&gw.tokens.mint()), b"x"),
    )
    .await;
    assert_eq!(a.status, 200);
    *h0.mode.lock().expect("lock") = HostMode::Oversized;
    let a = ohttp_exchange(&gw.url, &cfg, &inner_request(&s, None, b"y")).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.problem_type().as_deref(), Some(PROBLEM_SESSION_LOST));
    assert_eq!(gw.gateway.pool().session_count(), 0);
}

#[tokio::test]
async fn the_session_table_is_bounded() {
    let h0 = FakeHost::start(0).await;
    let (_dir, store) = redb();
    let limits = SessionLimits {
        max_sessions: 2,
        idle: Duration::from_secs(600),
    };
    let gw = TestGateway::start_with(&[h0.url()], store, limits).await;
    let cfg = gw.config(1);
    for _ in 0..2 {
        let s = SessionId::random().expect("id");
        let a = ohttp_exchange(
            &gw.url,
            &cfg,
            &inner_request(&s, Some(&gw.tokens.mint()), b"x"),
        )
        .await;
        assert_eq!(a.status, 200);
    }
    let token = gw.tokens.mint();
    let s = SessionId::random().expect("id");
    let a = ohttp_exchange(&gw.url, &cfg, &inner_request(&s, Some(&token), b"x")).await;
    assert_eq!(a.status, 503);
    assert_eq!(gw.gateway.pool().session_count(), 2);
    // The refused token was not spent.
    let limits_idle = SessionLimits {
        max_sessions: 2,
        idle: Duration::ZERO,
    };
    drop(gw);
    let (_dir2, store2) = redb();
    let gw2 = TestGateway::start_with(&[h0.url()], store2, limits_idle).await;
    for _ in 0..3 {
        let s = SessionId::random().expect("id");
        let a = ohttp_exchange(
            &gw2.url,
            &gw2.config(1),
            &inner_request(&s, Some(&gw2.tokens.mint()), b"x"),
        )
        .await;
        assert_eq!(a.status, 200, "idle sessions make room");
    }
}

/// The outer response reveals nothing but its length: every inner outcome is a 200
/// `message/ohttp-res` that only the client can open.
#[tokio::test]
async fn inner_outcomes_are_sealed() {
    let h0 = FakeHost::start(0).await;
    let (_dir, store) = redb();
    let gw = TestGateway::start(&[h0.url()], store).await;
    ohttp::init();
    let s = SessionId::random().expect("id");
    let (enc, resp) = ohttp::ClientRequest::from_encoded_config(&gw.config(1))
        .expect("client")
        .encapsulate(&inner_request(&s, None, b"no token"))
        .expect("enc");
    let a = http(
        "POST",
        &format!("{}{OHTTP_PATH}", gw.url),
        &[("content-type", OHTTP_REQ_TYPE)],
        enc,
    )
    .await;
    assert_eq!(a.status, 200);
    assert!(!String::from_utf8_lossy(&a.body).contains("PrivateToken"));
    let inner = decode_inner(&resp.decapsulate(&a.body).expect("open"));
    assert_eq!(inner.status, 401);
}

/// Two gateways sharing one Redis: one token sent 16 times at once, half to each gateway,
/// each time for a new session, is accepted exactly once; the other 15 are refused as spent
/// and open no session.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_token_is_accepted_once_across_two_gateways_sharing_redis() {
    let redis = crate::common::RedisServer::start();
    let host = FakeHost::start(0).await;
    let mut gateways = Vec::new();
    for _ in 0..2 {
        let store: Arc<dyn SpentTokens> = Arc::new(
            cloister_gateway::RedisStore::connect(&redis.url, Duration::from_secs(3600))
                .await
                .expect("redis"),
        );
        gateways.push(TestGateway::start(&[host.url()], store).await);
    }
    let token = gateways[0].tokens.mint();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let gw = &gateways[i % 2];
        let (url, cfg) = (gw.url.clone(), gw.config(1));
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let session = SessionId::random().expect("id");
            ohttp_exchange(
                &url,
                &cfg,
                &inner_request(&session, Some(&token), &records("x")),
            )
            .await
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        let a = t.await.expect("task");
        match a.status {
            200 => accepted += 1,
            401 => assert_eq!(a.problem_type().as_deref(), Some(PROBLEM_TOKEN_SPENT)),
            other => panic!("unexpected inner status {other}"),
        }
    }
    assert_eq!(accepted, 1, "a token is spent exactly once across gateways");
    assert_eq!(
        host.received().len(),
        1,
        "only the accepted session reached a host"
    );
    let sessions: usize = gateways
        .iter()
        .map(|g| g.gateway.pool().session_count())
        .sum();
    assert_eq!(sessions, 1);
}
