//! Real processes for the log's tests: witnesses and the log, each its own binary, talking
//! HTTP over loopback.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use cloister_tlog::note::VerifierKey;
use cloister_tlog::Policy;

/// A binary of this workspace, next to the test's own executable.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is not built (cargo build --workspace builds it)",
        p.display()
    );
    p
}

/// Runs a command and returns its stdout, trimmed.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// A child process killed on drop.
pub struct Proc {
    pub child: Child,
    pub url: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `cmd`, waits for its `listening on <addr>` line.
pub fn spawn_listening(mut cmd: Command) -> Proc {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Proc {
        child,
        url: format!("http://{addr}"),
    }
}

/// A witness: its key, state dir and process.
pub struct Witness {
    pub name: String,
    pub vkey: VerifierKey,
    pub key_file: PathBuf,
    pub state: PathBuf,
    pub proc: Option<Proc>,
}

impl Witness {
    pub fn new(dir: &Path, name: &str) -> Self {
        let key_file = dir.join(format!("{name}.key"));
        let vkey = run(Command::new(bin("cloister-witness"))
            .args(["keygen", "--name", name, "--out"])
            .arg(&key_file));
        Self {
            name: name.to_owned(),
            vkey: VerifierKey::parse(&vkey).expect("witness vkey"),
            key_file,
            state: dir.join(format!("{name}-state")),
            proc: None,
        }
    }

    pub fn start(&mut self, log_vkey: &str) {
        let mut cmd = Command::new(bin("cloister-witness"));
        cmd.arg("serve")
            .arg("--key")
            .arg(&self.key_file)
            .args(["--log", log_vkey, "--listen", "127.0.0.1:0", "--state"])
            .arg(&self.state);
        self.proc = Some(spawn_listening(cmd));
    }

    pub fn stop(&mut self) {
        self.proc = None;
    }

    pub fn url(&self) -> String {
        self.proc.as_ref().expect("running").url.clone()
    }
}

/// A log with its witnesses and one publisher.
pub struct TestLog {
    pub dir: PathBuf,
    pub key_file: PathBuf,
    pub vkey: String,
    pub witnesses: Vec<Witness>,
    pub token: String,
    pub proc: Option<Proc>,
    /// The client's policy: the log and the witnesses, 2 of 3.
    pub policy: Policy,
    policy_file: PathBuf,
    publishers_file: PathBuf,
}

impl TestLog {
    pub fn new(tmp: &Path, origin: &str) -> Self {
        let key_file = tmp.join("log.key");
        let vkey = run(Command::new(bin("cloister-log"))
            .args(["keygen", "--origin", origin, "--out"])
            .arg(&key_file));
        let mut witnesses: Vec<Witness> = (0..3)
            .map(|i| Witness::new(tmp, &format!("witness{i}.test")))
            .collect();
        for w in &mut witnesses {
            w.start(&vkey);
        }
        let token_file = tmp.join("publisher.token");
        let line = run(Command::new(bin("cloister-log"))
            .args(["new-publisher", "--name", "team-a", "--token-out"])
            .arg(&token_file));
        let publishers_file = tmp.join("publishers");
        std::fs::write(&publishers_file, format!("# test\n{line}\n")).expect("write");
        let token = std::fs::read_to_string(&token_file)
            .expect("token")
            .trim()
            .to_owned();
        let policy_file = tmp.join("witnesses.policy");
        let mut t = Self {
            dir: tmp.join("log"),
            key_file,
            vkey,
            witnesses,
            token,
            proc: None,
            policy: Policy::parse("quorum none\n").expect("placeholder"),
            policy_file,
            publishers_file,
        };
        t.write_policy();
        t
    }

    /// Writes the policy with the witnesses' current URLs.
    pub fn write_policy(&mut self) {
        let mut text = format!("log {}\n", self.vkey);
        for (i, w) in self.witnesses.iter().enumerate() {
            let url = w
                .proc
                .as_ref()
                .map(|p| p.url.clone())
                .unwrap_or_else(|| "http://127.0.0.1:9".into());
            text.push_str(&format!("witness w{i} {} {url}\n", w.vkey.to_vkey()));
        }
        text.push_str("group q 2 w0 w1 w2\nquorum q\n");
        std::fs::write(&self.policy_file, &text).expect("write policy");
        self.policy = Policy::parse(&text).expect("policy");
    }

    pub fn start(&mut self) {
        let mut cmd = Command::new(bin("cloister-log"));
        cmd.arg("serve")
            .arg("--key")
            .arg(&self.key_file)
            .arg("--dir")
            .arg(&self.dir)
            .arg("--witnesses")
            .arg(&self.policy_file)
            .arg("--publishers")
            .arg(&self.publishers_file)
            .args(["--listen", "127.0.0.1:0"]);
        self.proc = Some(spawn_listening(cmd));
    }

    pub fn url(&self) -> String {
        self.proc.as_ref().expect("running").url.clone()
    }

    /// POST /add; returns (status, body).
    pub fn add(&self, entry: &[u8], token: &str) -> (u16, String) {
        post(&format!("{}/add", self.url()), entry, Some(token))
    }

    pub fn get(&self, path: &str) -> (u16, Vec<u8>) {
        get(&format!("{}/{path}", self.url()))
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into()
}

pub fn post(url: &str, body: &[u8], token: Option<&str>) -> (u16, String) {
    let mut req = agent().post(url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.send(body).expect("request");
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (status, text)
}

pub fn get(url: &str) -> (u16, Vec<u8>) {
    let mut resp = agent().get(url).call().expect("request");
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(10 << 20)
        .read_to_vec()
        .unwrap_or_default();
    (status, body)
}
