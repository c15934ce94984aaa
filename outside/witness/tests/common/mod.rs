//! Helpers of the witness's end-to-end tests: a test log (leaves, checkpoints, proofs) and
//! the `cloister-witness` binary run as a separate process on loopback.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloister_tlog::merkle::{consistency_proof, leaf_hash, root_from_leaf_hashes};
use cloister_tlog::{Checkpoint, Hash, KeyType, Note, NoteSigner, VerifierKey};

pub const TIMEOUT: Duration = Duration::from_secs(20);

/// A log: a signing key whose name is the origin, and its leaves.
pub struct TestLog {
    pub origin: String,
    pub signer: NoteSigner,
    pub leaves: Vec<Hash>,
}

impl TestLog {
    /// A log of `n` leaves with a fresh key.
    pub fn new(origin: &str, n: usize) -> Self {
        let signer = NoteSigner::generate(origin, KeyType::Ed25519).expect("log key");
        Self::with_signer(origin, signer, n, "main")
    }

    fn with_signer(origin: &str, signer: NoteSigner, n: usize, tag: &str) -> Self {
        let leaves = (0..n)
            .map(|i| leaf_hash(format!("{origin} {tag} leaf {i}").as_bytes()))
            .collect();
        Self {
            origin: origin.to_owned(),
            signer,
            leaves,
        }
    }

    /// The same log (same key) that agrees on the first `keep` leaves and then differs:
    /// a fork, `n` leaves long.
    pub fn fork(&self, keep: usize, n: usize, tag: &str) -> TestLog {
        let signer = NoteSigner::parse(&self.signer.to_skey()).expect("same key");
        let mut fork = Self::with_signer(&self.origin, signer, n, tag);
        fork.leaves[..keep].copy_from_slice(&self.leaves[..keep]);
        fork
    }

    /// Another key with the same name (the witness does not trust it).
    pub fn impostor(&self) -> TestLog {
        let signer = NoteSigner::generate(&self.origin, KeyType::Ed25519).expect("key");
        let mut log = Self::with_signer(&self.origin, signer, 0, "impostor");
        log.leaves = self.leaves.clone();
        log
    }

    pub fn vkey(&self) -> String {
        self.signer.verifier().to_vkey()
    }

    pub fn root(&self, size: usize) -> Hash {
        root_from_leaf_hashes(&self.leaves[..size])
    }

    /// The signed checkpoint note of the first `size` leaves.
    pub fn checkpoint(&self, size: usize) -> String {
        self.sign(size as u64, self.root(size))
    }

    /// A signed checkpoint note of any size and root.
    pub fn sign(&self, size: u64, root: Hash) -> String {
        let cp = Checkpoint {
            origin: self.origin.clone(),
            size,
            root,
            extensions: vec![],
        };
        let mut note = Note::unsigned(&cp.to_text()).expect("note");
        note.sign(&self.signer, 0).expect("sign");
        note.to_text()
    }

    /// The consistency proof from `old` to `new` leaves.
    pub fn proof(&self, old: usize, new: usize) -> Vec<Hash> {
        let mut src: &[Hash] = &self.leaves[..new];
        consistency_proof(&mut src, old as u64, new as u64).expect("proof")
    }
}

/// A witness key written to `dir/<file>`.
pub fn witness_key(dir: &Path, file: &str, name: &str) -> (PathBuf, VerifierKey) {
    let signer = NoteSigner::generate(name, KeyType::Cosignature).expect("witness key");
    let path = dir.join(file);
    std::fs::write(&path, format!("{}\n", signer.to_skey().as_str())).expect("write key");
    (path, signer.verifier().clone())
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cloister-witness")
}

/// A running `cloister-witness serve`.
pub struct WitnessProc {
    pub child: Child,
    pub addr: String,
    pub url: String,
    stderr: Arc<Mutex<String>>,
}

/// Reads a child's stderr into a buffer (so that it never blocks on a full pipe).
fn drain(mut r: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let buf = Arc::new(Mutex::new(String::new()));
    let b = Arc::clone(&buf);
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => b
                    .lock()
                    .expect("stderr buffer")
                    .push_str(&String::from_utf8_lossy(&chunk[..n])),
            }
        }
    });
    buf
}

/// The arguments of `serve` for a key, a state directory and log vkeys.
pub fn serve_args(key: &Path, state: &Path, logs: &[String]) -> Vec<String> {
    let mut args = vec![
        "serve".to_owned(),
        "--key".to_owned(),
        key.display().to_string(),
        "--state".to_owned(),
        state.display().to_string(),
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
    ];
    for l in logs {
        args.push("--log".to_owned());
        args.push(l.clone());
    }
    args
}

impl WitnessProc {
    /// Starts the witness and waits for its `listening on` line; on failure, the exit
    /// status and stderr.
    pub fn try_start(args: &[String]) -> Result<WitnessProc, String> {
        let mut child = Command::new(bin())
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cloister-witness");
        let stderr = drain(child.stderr.take().expect("stderr"));
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read stdout");
        let Some(addr) = line.trim_end().strip_prefix("listening on ") else {
            let status = child.wait().expect("wait");
            // Let the drain thread finish.
            std::thread::sleep(Duration::from_millis(100));
            let err = stderr.lock().expect("stderr").clone();
            return Err(format!("{status}: stdout {line:?}, stderr:\n{err}"));
        };
        let addr = addr.to_owned();
        // Keep the pipe open (and drained) for the life of the child.
        drain(stdout);
        Ok(WitnessProc {
            child,
            url: format!("http://{addr}"),
            addr,
            stderr,
        })
    }

    pub fn start(args: &[String]) -> WitnessProc {
        Self::try_start(args).unwrap_or_else(|e| panic!("the witness did not start: {e}"))
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr").clone()
    }

    /// SIGKILL, as a crash would.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// SIGTERM, and the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill -TERM");
        assert!(ok.success());
        self.child.wait().expect("wait")
    }
}

impl Drop for WitnessProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer: status, content type, body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into()
}

fn answer(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut resp = resp.expect("HTTP exchange");
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Answer {
        status: resp.status().as_u16(),
        content_type,
        body: resp.body_mut().read_to_string().expect("body"),
    }
}

pub fn post(url: &str, body: &[u8]) -> Answer {
    answer(agent().post(url).send(body))
}

pub fn get(url: &str) -> Answer {
    answer(agent().get(url).call())
}

pub fn put(url: &str, body: &[u8]) -> Answer {
    answer(agent().put(url).send(body))
}

pub fn delete(url: &str) -> Answer {
    answer(agent().delete(url).call())
}

/// A raw HTTP/1.1 exchange: sends `request` as is, reads until the server closes.
pub fn raw(addr: &str, request: &[u8]) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    s.write_all(request).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The `add-checkpoint` body.
pub fn body(old: u64, proof: &[Hash], note: &str) -> String {
    cloister_witness::request::encode_add_checkpoint(old, proof, note)
}
