//! The real `cloister-issuer` binary, as separate processes: `keygen`, `add-account`,
//! `serve`; tokens obtained through [`cloister_issuer::client`] and verified as the gateway
//! does; refusals (401, 400, 413, 415, 422, 429) change nothing; the log holds no secrets.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cloister_issuer::client::{ClientError, IssuerClient};
use cloister_issuer::directory::Directory;
use cloister_issuer::keys::{IssuerPublicKey, PUBLIC_FILE};
use cloister_issuer::redeem::header::{format_authorization, parse_authorization};
use cloister_issuer::redeem::{verify_token, Challenge, RedeemError};
use cloister_issuer::{DIRECTORY_PATH, DIRECTORY_TYPE, REQUEST_PATH, REQUEST_TYPE, TOKEN_TYPE};

const BIN: &str = env!("CARGO_BIN_EXE_cloister-issuer");

fn run(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().expect("runs");
    assert!(
        out.status.success(),
        "cloister-issuer {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// A running `serve`; killed on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(key: &Path, accounts: &Path, rate: &str) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--key"])
            .arg(key)
            .arg("--accounts")
            .arg(accounts)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--name",
                "issuer.example",
                "--rate",
                rate,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns");
        let mut line = String::new();
        // Blocks until the line is printed, or returns 0 at EOF if the server died.
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("reads stdout");
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let mut err = String::new();
            let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
            panic!("serve did not start: {line:?} {err}");
        };
        Server {
            addr: addr.to_owned(),
            child,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the server and returns what it logged.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut err = String::new();
        let _ = self
            .child
            .stderr
            .take()
            .map(|mut e| e.read_to_string(&mut err));
        err
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// A raw POST to the token endpoint: (status, body).
fn post(url: &str, key: Option<&str>, content_type: &str, body: &[u8]) -> (u16, String) {
    let mut req = agent().post(url).header("Content-Type", content_type);
    if let Some(k) = key {
        req = req.header("Authorization", &format!("Bearer {k}"));
    }
    let mut resp = req.send(body).expect("request");
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap_or_default())
}

fn status_of(r: Result<Vec<u8>, ClientError>) -> (u16, Option<u64>) {
    match r {
        Err(ClientError::Status {
            status,
            retry_after,
            ..
        }) => (status, retry_after),
        other => panic!("expected an HTTP error, got {other:?}"),
    }
}

#[test]
fn issuer_binary_end_to_end() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key_dir = tmp.path().join("key");
    let accounts = tmp.path().join("accounts");
    let key_id = run(&["keygen", "--out", key_dir.to_str().expect("utf-8")]);
    assert_eq!(
        key_id.len(),
        64,
        "keygen prints the token key id: {key_id:?}"
    );
    let acc = accounts.to_str().expect("utf-8");
    let alice = run(&["add-account", "--accounts", acc, "--name", "alice"]);
    let bob = run(&["add-account", "--accounts", acc, "--name", "bob"]);
    assert_eq!(alice.len(), 64);
    assert_ne!(alice, bob);
    let stored = std::fs::read_to_string(&accounts).expect("accounts file");
    assert!(
        !stored.contains(&alice) && !stored.contains(&bob),
        "only hashes are stored"
    );
    // A duplicate name is refused.
    let dup = Command::new(BIN)
        .args(["add-account", "--accounts", acc, "--name", "alice"])
        .output()
        .expect("runs");
    assert!(!dup.status.success());

    let server = Server::start(&key_dir, &accounts, "3/3600");
    let client = IssuerClient::new(&server.url(DIRECTORY_PATH), Duration::from_secs(30));

    // The directory: RFC 9578 section 4, the key keygen wrote.
    let directory = client.fetch_directory().expect("directory");
    assert_eq!(directory.issuer_request_uri, REQUEST_PATH);
    assert_eq!(directory.token_keys.len(), 1);
    assert_eq!(directory.token_keys[0].token_type, u64::from(TOKEN_TYPE));
    assert!(directory.token_keys[0].not_before.is_some());
    let published: serde_json::Value =
        serde_json::from_slice(&std::fs::read(key_dir.join(PUBLIC_FILE)).expect("public file"))
            .expect("json");
    assert_eq!(
        published["token-key"].as_str(),
        Some(directory.token_keys[0].token_key.as_str())
    );
    let (key, request_url) = client.fetch_key().expect("key");
    assert_eq!(hex::encode(key.token_key_id()), key_id);
    assert_eq!(request_url, server.url(REQUEST_PATH));
    let mut resp = agent()
        .get(&server.url(DIRECTORY_PATH))
        .call()
        .expect("get");
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some(DIRECTORY_TYPE)
    );
    let raw = resp.body_mut().read_to_vec().expect("body");
    let parsed: serde_json::Value = serde_json::from_slice(&raw).expect("json");
    assert_eq!(parsed["token-keys"][0]["token-type"], 2);
    assert_eq!(Directory::parse(&raw).expect("directory"), directory);

    let challenge = Challenge::new("issuer.example", &["gateway.example"]).expect("challenge");
    let (good_request, _pending) =
        cloister_issuer::client::begin(&challenge, &key).expect("request");

    // Refusals, none of which counts against alice's 3 tokens.
    assert_eq!(
        status_of(client.send_request(&request_url, "wrong", &good_request)).0,
        401
    );
    assert_eq!(
        status_of(client.send_request(&request_url, &alice[1..], &good_request)).0,
        401
    );
    assert_eq!(post(&request_url, None, REQUEST_TYPE, &good_request).0, 401);
    assert_eq!(
        post(
            &request_url,
            Some(&alice),
            "application/octet-stream",
            &good_request
        )
        .0,
        415
    );
    assert_eq!(
        post(&request_url, Some(&alice), REQUEST_TYPE, &[0u8; 5000]).0,
        413
    );
    let (status, body) = post(&request_url, Some(&alice), REQUEST_TYPE, &[0, 2]);
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        status_of(client.send_request(&request_url, &alice, b"")).0,
        400
    );
    let mut wrong_type = good_request.clone();
    wrong_type[1] = 1;
    assert_eq!(
        status_of(client.send_request(&request_url, &alice, &wrong_type)).0,
        422
    );
    let mut wrong_key = good_request.clone();
    wrong_key[2] ^= 0x55;
    let (status, body) = post(&request_url, Some(&alice), REQUEST_TYPE, &wrong_key);
    assert_eq!(status, 422);
    assert!(body.contains("key"), "{body}");
    assert_eq!(
        status_of(client.send_request(&request_url, &alice, &good_request[..100])).0,
        422
    );
    assert_eq!(
        agent()
            .put(&server.url(REQUEST_PATH))
            .send(&b""[..])
            .expect("put")
            .status()
            .as_u16(),
        405
    );
    assert_eq!(
        agent()
            .get(&server.url("/nope"))
            .call()
            .expect("get")
            .status()
            .as_u16(),
        404
    );

    // Alice's three tokens, each verifying as the gateway checks it, all distinct.
    let mut nonces = Vec::new();
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let token = client.fetch_token(&alice, &challenge).expect("token");
        // Through the Authorization header, as the gateway receives it.
        let header = format_authorization(&token);
        let received = parse_authorization(&header).expect("header parses");
        nonces.push(verify_token(&received, &challenge.digest(), &key).expect("verifies"));
        tokens.push(token);
    }
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), 3);
    // A token is bound to its challenge.
    let other = Challenge::new("issuer.example", &["elsewhere.example"]).expect("challenge");
    assert_eq!(
        verify_token(&tokens[0], &other.digest(), &key),
        Err(RedeemError::ChallengeMismatch)
    );

    // The fourth is over the rate: 429 with Retry-After (one token per 1200 s).
    let (status, retry_after) = status_of(client.fetch_token(&alice, &challenge).map(|_| vec![]));
    assert_eq!(status, 429);
    let retry_after = retry_after.expect("Retry-After");
    assert!((1..=1200).contains(&retry_after), "{retry_after}");
    // Bob's bucket is his own; he insists on the key the gateway announced.
    let token = client
        .fetch_token_for_key(&bob, &challenge, &key)
        .expect("bob's token");
    verify_token(&token, &challenge.digest(), &key).expect("verifies");
    let elsewhere = cloister_issuer::keys::IssuerKey::generate(0).expect("keygen");
    assert!(matches!(
        client.fetch_token_for_key(&bob, &challenge, elsewhere.public()),
        Err(ClientError::KeyNotListed(_))
    ));
    // The key the directory announced is the one in the key directory.
    let from_file =
        IssuerPublicKey::from_base64url(published["token-key"].as_str().expect("token-key"))
            .expect("parses");
    assert_eq!(from_file, key);

    // The log holds no API key, account name, token or request bytes.
    let log = server.stop();
    assert!(log.contains("issuer starting"), "{log}");
    for secret in [alice.clone(), bob.clone(), "alice".into(), "bob".into()] {
        assert!(
            !log.contains(&secret),
            "the log contains {secret:?}:\n{log}"
        );
    }
    for t in &tokens {
        let b64 = format_authorization(t);
        assert!(!log.contains(&hex::encode(&t[2..34])) && !log.contains(&b64[20..60]));
    }
    assert!(!log.contains(&hex::encode(&good_request[3..40])));
}

#[test]
fn serve_refuses_bad_configuration() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key_dir = tmp.path().join("key");
    let accounts = tmp.path().join("accounts");
    run(&["keygen", "--out", key_dir.to_str().expect("utf-8")]);
    // keygen does not overwrite an existing key.
    let again = Command::new(BIN)
        .args(["keygen", "--out"])
        .arg(&key_dir)
        .output()
        .expect("runs");
    assert!(!again.status.success());
    std::fs::write(&accounts, "").expect("write");
    let serve = |extra: &[&str]| {
        Command::new(BIN)
            .args(["serve", "--key"])
            .arg(&key_dir)
            .arg("--accounts")
            .arg(&accounts)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .output()
            .expect("runs")
    };
    for (args, why) in [
        (&["--name", "issuer.example", "--rate", "0/10"][..], "rate"),
        (&["--name", "issuer.example", "--rate", "abc"][..], "rate"),
        (&["--name", "bad name", "--rate", "1/1"][..], "name"),
    ] {
        let out = serve(args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
    }
    std::fs::write(&accounts, "alice nothex\n").expect("write");
    let out = serve(&["--name", "issuer.example"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("accounts line 1"));
}
