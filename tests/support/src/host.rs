//! Deployments and host processes: signed copies of the freshly built guest plugins and
//! host configurations pointing at them, in a temporary directory; `cloister-host measure`;
//! a running `cloister-host serve`.

use crate::{component, models_dir, workspace_bin, MODEL};
use cloister_signing::{sign_release, SigningKey};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A temporary deployment: a signing key, signed plugins and a config.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub key: SigningKey,
    pub plugins: Vec<String>,
    pub limits: String,
}

impl Fixture {
    pub fn new(plugins: &[&str]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate().unwrap();
        std::fs::write(
            dir.path().join("team.pub.pem"),
            key.public_key().to_spki_pem().unwrap(),
        )
        .unwrap();
        let f = Fixture {
            dir,
            key,
            plugins: plugins.iter().map(|s| s.to_string()).collect(),
            limits: "deadline_ms = 500\n".into(),
        };
        for p in plugins {
            f.install(p, &component(p));
        }
        f.write_config();
        f
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a component and its signature by the fixture's key.
    pub fn install(&self, name: &str, bytes: &[u8]) {
        self.install_signed_by(name, name, bytes, &self.key);
    }

    pub fn install_signed_by(&self, file: &str, signed_name: &str, bytes: &[u8], key: &SigningKey) {
        std::fs::write(self.path(&format!("{file}.wasm")), bytes).unwrap();
        let env = sign_release(key, signed_name, "0.1.0", bytes).unwrap();
        std::fs::write(
            self.path(&format!("{file}.wasm.dsse.json")),
            env.to_json_pretty(),
        )
        .unwrap();
    }

    pub fn write_config(&self) {
        let mut text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[limits]\n{}\n",
            self.limits
        );
        for p in &self.plugins {
            text.push_str(&format!(
                "[[plugin]]\nname = \"{p}\"\ncomponent = \"{p}.wasm\"\nsignature = \"{p}.wasm.dsse.json\"\nsigners = [\"team.pub.pem\"]\n\n"
            ));
        }
        std::fs::write(self.config(), text).unwrap();
    }

    /// Writes a config for feature plugins: each `(name, memory budget)` is
    /// allowed the model, `[models]` loads it from the fetched data
    /// directory with `threads` inference threads; `limits` is the body of
    /// `[limits]` (empty: the defaults).
    pub fn write_feature_config(
        &self,
        plugins: &[(&str, Option<usize>)],
        limits: &str,
        threads: usize,
    ) {
        let mut text = format!("[server]\nlisten = \"127.0.0.1:0\"\n\n[limits]\n{limits}\n");
        for (p, memory) in plugins {
            text.push_str(&format!(
                "[[plugin]]\nname = \"{p}\"\ncomponent = \"{p}.wasm\"\nsignature = \"{p}.wasm.dsse.json\"\nsigners = [\"team.pub.pem\"]\nmodels = [\"{MODEL}\"]\n"
            ));
            if let Some(bytes) = memory {
                text.push_str(&format!("max_memory_bytes = {bytes}\n"));
            }
            text.push('\n');
        }
        text.push_str(&format!(
            "[models]\ndir = {:?}\nload = [\"{MODEL}\"]\nthreads = {threads}\n",
            models_dir()
        ));
        std::fs::write(self.config(), text).unwrap();
    }

    pub fn config(&self) -> PathBuf {
        self.path("host.toml")
    }
}

/// The workspace's development host, `cloister-host-dev`: the production host plus
/// `--tee sim`, which the tests serve with. (`cloister-host`, the production binary,
/// refuses `sim`.)
pub fn host_bin() -> PathBuf {
    workspace_bin("cloister-host-dev")
}

/// Runs `cloister-host measure`; returns (success, stdout, stderr).
pub fn measure(config: &Path) -> (bool, String, String) {
    let out = Command::new(host_bin())
        .args(["measure", "--config"])
        .arg(config)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The canonical measurement log `cloister-host measure --canonical` prints for `config`
/// (the bytes a host hashes and serves); panics if the host refuses the configuration.
pub fn canonical_log(config: &Path) -> cloister_measurement::MeasurementLog {
    let out = Command::new(host_bin())
        .args(["measure", "--canonical", "--config"])
        .arg(config)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cloister-host measure failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    cloister_measurement::MeasurementLog::from_canonical_bytes(text.trim_end().as_bytes()).unwrap()
}

/// A running `cloister-host serve`, killed on drop. Everything it writes to
/// stdout and stderr is collected.
pub struct Server {
    child: Child,
    pub addr: String,
    readers: Vec<std::thread::JoinHandle<String>>,
    lines: std::sync::Mutex<std::sync::mpsc::Receiver<String>>,
}

impl Server {
    pub fn start(config: &Path) -> Server {
        Server::start_with_log(config, "warn")
    }

    /// Without a TEE (`--tee none`): plain HTTP on loopback.
    pub fn start_with_log(config: &Path, log: &str) -> Server {
        Server::start_with_args(config, log, &["--tee", "none"])
    }

    /// With the simulated TEE (`--tee sim`), writing the simulator's root to
    /// `sim_root_out`: RA-TLS on loopback.
    pub fn start_sim(config: &Path, sim_root_out: &Path, extra: &[&str]) -> Server {
        let root = sim_root_out.to_string_lossy().into_owned();
        let mut args = vec!["--tee", "sim", "--sim-root-out", root.as_str()];
        args.extend_from_slice(extra);
        Server::start_with_args(config, "warn", &args)
    }

    /// `cloister-host serve --config CONFIG ARGS...`; waits for the listening line.
    pub fn start_with_args(config: &Path, log: &str, args: &[&str]) -> Server {
        let mut child = Command::new(host_bin())
            .args(["serve", "--config"])
            .arg(config)
            .args(args)
            .env("CLOISTER_LOG", log)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let out_reader = std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let _ = tx.send(first.clone());
            // The second line (the tunnel listener's, when there is one) is handed over too.
            let mut second = String::new();
            let _ = reader.read_line(&mut second);
            let _ = tx.send(second.clone());
            let mut rest = String::new();
            let _ = reader.read_to_string(&mut rest);
            first + &second + &rest
        });
        let err_reader = std::thread::spawn(move || {
            let mut all = String::new();
            let _ = stderr.read_to_string(&mut all);
            all
        });
        let line = rx.recv().unwrap_or_default();
        let rest = line.trim();
        let addr = rest
            .strip_prefix("cloister-host listening on http://")
            .or_else(|| rest.strip_prefix("cloister-host listening on https://"))
            .and_then(|a| a.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line from the host: {line:?}"))
            .to_owned();
        Server {
            child,
            addr,
            readers: vec![out_reader, err_reader],
            lines: std::sync::Mutex::new(rx),
        }
    }

    /// The tunnel endpoint's address, from the host's second line (`[tunnel]` configured).
    pub fn tunnel_addr(&self) -> String {
        let line = self
            .lines
            .lock()
            .unwrap()
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_default();
        line.trim()
            .strip_prefix("cloister-host tunnel listening on http://")
            .unwrap_or_else(|| panic!("expected the tunnel line, got {line:?}"))
            .to_owned()
    }

    /// The host's process id (for `crate::proc::stats`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the host and returns everything it wrote (stdout, then stderr).
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.readers
            .drain(..)
            .map(|r| r.join().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// One HTTP/1.1 request on a fresh connection; returns (status, body).
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status: u16 = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"));
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
