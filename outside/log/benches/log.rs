//! Log throughput and tile serving — `cargo bench -p cloister-log --bench log`.
//!
//! 1. Appends through `Log::add` on a real directory (every append fsyncs its tiles and the
//!    signed checkpoint), with no witnesses (`quorum none`: this measures the log itself):
//!    one entry per append, then 256 per append (what concurrent publishers are grouped into).
//! 2. Tile serving by a plain static file server (Python's `http.server` over the log's
//!    directory): a client building the proofs of a bundle and replaying the whole log.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use cloister_log::state::{AddResult, Log};
use cloister_tlog::note::{KeyType, NoteSigner};
use cloister_tlog::{Checkpoint, Note, Policy};
use cloister_transparency::replay;
use cloister_transparency::Statement;

fn release(i: usize) -> Vec<u8> {
    use sha2::Digest;
    let h = |t: &str| hex::encode(sha2::Sha256::digest(format!("{t}{i}").as_bytes()));
    Statement::PluginRelease {
        name: format!("p{i}"),
        version: "1".into(),
        component_sha256: h("c"),
        signer_key_id: h("k"),
        envelope_sha256: h("e"),
    }
    .to_entry()
    .expect("entry")
}

fn main() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("log");
    let signer = NoteSigner::generate("log.bench/cloister", KeyType::Ed25519).expect("key");
    let policy = Policy::parse(&format!(
        "log {}\nquorum none\n",
        signer.verifier().to_vkey()
    ))
    .expect("policy");
    let mut log = Log::open(&dir, signer, policy).expect("open");
    let mut n = 0usize;

    let singles = 200;
    let t = Instant::now();
    for _ in 0..singles {
        let r = log.add(&[release(n)]);
        n += 1;
        assert!(matches!(r[0], AddResult::Proven(_)));
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "append, 1 entry per append:   {singles} appends in {:.2} s = {:.0} appends/s ({:.2} ms each)",
        s,
        singles as f64 / s,
        s * 1e3 / singles as f64
    );

    let batches = 40;
    let t = Instant::now();
    for _ in 0..batches {
        let batch: Vec<Vec<u8>> = (n..n + 256).map(release).collect();
        n += 256;
        let r = log.add(&batch);
        assert!(r.iter().all(|r| matches!(r, AddResult::Proven(_))));
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "append, 256 entries per append: {} entries in {:.2} s = {:.0} entries/s ({:.1} ms per append)",
        batches * 256,
        s,
        (batches * 256) as f64 / s,
        s * 1e3 / batches as f64
    );
    println!(
        "log size: {} entries (each append adds a revocation list)",
        log.size()
    );
    drop(log);

    // A plain static file server over the log's directory.
    let mut server = Command::new("python3")
        .args([
            "-u",
            "-m",
            "http.server",
            "0",
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m http.server");
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    // "Serving HTTP on 127.0.0.1 port NNNN (http://127.0.0.1:NNNN/) ..."
    let port = line
        .split("port ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("port")
        .to_owned();
    let base = format!("http://127.0.0.1:{port}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let requests = std::cell::Cell::new(0usize);
    let mut fetch = |p: &str| {
        requests.set(requests.get() + 1);
        let mut r = agent
            .get(format!("{base}/{p}"))
            .call()
            .map_err(|e| e.to_string())?;
        if r.status().as_u16() != 200 {
            return Err(format!("HTTP {}", r.status().as_u16()));
        }
        r.body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .map_err(|e| e.to_string())
    };
    let note = Note::parse(&fetch("checkpoint").expect("checkpoint")).expect("note");
    let c = Checkpoint::parse(note.text()).expect("checkpoint");
    let entries = replay::read_entries(&mut fetch, 0, c.size).expect("entries");
    let t = Instant::now();
    requests.set(0);
    let picked = [1usize, 100, 2_000, 5_000, 9_000, c.size as usize - 1];
    for &i in &picked {
        replay::build_proof(&mut fetch, &note, i as u64, &entries[i]).expect("proof");
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "proofs from a static server: 6 proofs, {} tile requests, {:.1} ms ({:.0} requests/s, no cache)",
        requests.get(),
        s * 1e3,
        requests.get() as f64 / s
    );
    let t = Instant::now();
    requests.set(0);
    let report = replay::audit(&mut fetch, &c, &[]).expect("audit");
    let s = t.elapsed().as_secs_f64();
    println!(
        "audit from a static server: {} entries, {} requests, {:.2} s",
        report.statements.len(),
        requests.get(),
        s
    );
    let _ = server.kill();
    let _ = server.wait();
}
