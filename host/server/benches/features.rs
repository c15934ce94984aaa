//! Per-request latency of the two features **through the host's HTTP API**:
//! a real `cloister-host serve` (this profile's build), the freshly built and
//! signed `summarize` and `writing-help` components, the fetched and verified
//! all-MiniLM-L6-v2, one request per connection over loopback (`--tee none`:
//! the RA-TLS handshake is measured by the `handshake` bench; its per-request
//! cost after the handshake is symmetric encryption only).
//!
//! ```sh
//! cargo bench -p cloister-host --bench features            # 50 requests per case
//! cargo bench -p cloister-host --bench features -- --requests 200 --threads 2
//! ```
//!
//! Cases: `summarize` over every thread of `eval/summarize/threads.json`
//! (round-robin), and `writing-help` over `eval/writing-help/hundred-words.txt`
//! (100 words) with and without a target tone. Prints p50, p90, p99 and max in
//! milliseconds. Needs `scripts/build-plugins` and `cloister models fetch`.

use cloister_test_support::cli_arg as arg;
use cloister_test_support::host::{Fixture, Server};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn repo(rel: &str) -> PathBuf {
    cloister_test_support::repo_file(rel)
}

fn deploy(threads: usize) -> Fixture {
    let f = Fixture::new(&["summarize", "writing-help"]);
    f.write_feature_config(
        &[
            ("summarize", None),
            (
                "writing-help",
                Some(cloister_test_support::WRITING_HELP_MEMORY),
            ),
        ],
        "",
        threads,
    );
    f
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    cloister_test_support::percentile(sorted, p).as_secs_f64() * 1e3
}

fn run(server: &Server, name: &str, path: &str, bodies: &[Vec<u8>], requests: usize) {
    for body in bodies.iter().take(3) {
        let (status, out) = server.request("POST", path, body);
        assert_eq!(status, 200, "{name}: {out}");
    }
    let mut times = Vec::with_capacity(requests);
    for i in 0..requests {
        let body = &bodies[i % bodies.len()];
        let started = Instant::now();
        let (status, out) = server.request("POST", path, body);
        times.push(started.elapsed());
        assert_eq!(status, 200, "{name}: {out}");
    }
    times.sort();
    println!(
        "{name:<34} n={requests:<4} p50 {:>7.1} ms  p90 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
        percentile(&times, 0.5),
        percentile(&times, 0.9),
        percentile(&times, 0.99),
        times.last().map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0),
    );
}

/// `--sizes`: one request per input size, with a long deadline, to see how latency grows
/// with input and where the per-feature input limits must be so that a request is served
/// within the default 2 s deadline or refused at once.
fn sizes(threads: usize) {
    let f = Fixture::new(&["summarize", "writing-help"]);
    f.write_feature_config(
        &[
            ("summarize", None),
            (
                "writing-help",
                Some(cloister_test_support::WRITING_HELP_MEMORY),
            ),
        ],
        "deadline_ms = 120000\nmax_input_bytes = 4194304\n",
        threads,
    );
    let server = Server::start(&f.config());
    let text = std::fs::read_to_string(repo("eval/writing-help/hundred-words.txt"))
        .expect("eval/writing-help/hundred-words.txt");
    let text = text.trim();
    let time = |path: &str, body: Vec<u8>| {
        let started = Instant::now();
        let (status, out) = server.request("POST", path, &body);
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let code = if status == 200 {
            "200".to_owned()
        } else {
            format!("{status} {}", out.chars().take(120).collect::<String>())
        };
        (ms, code)
    };
    let _ = time(
        "/v1/features/writing-help",
        json!({ "text": text }).to_string().into_bytes(),
    );
    for chars in [2_000usize, 5_000, 10_000, 20_000, 50_000, 100_000] {
        let mut t = String::new();
        while t.chars().count() < chars {
            t.push_str(text);
            t.push(' ');
        }
        let t: String = t.chars().take(chars).collect();
        for (label, body) in [
            ("tone", json!({ "text": t })),
            ("no tone", json!({ "text": t, "detect_tone": false })),
        ] {
            let (ms, code) = time("/v1/features/writing-help", body.to_string().into_bytes());
            println!("writing-help {chars:>7} chars ({label:<7}) {ms:>9.1} ms  {code}");
        }
    }
    let _ = time(
        "/v1/features/summarize",
        json!({ "messages": [{"sender": "a", "text": "hello there"}] })
            .to_string()
            .into_bytes(),
    );
    for chars in [1_000usize, 5_000, 20_000, 50_000, 100_000] {
        let mut t = String::new();
        while t.chars().count() < chars {
            t.push_str(text);
            t.push(' ');
        }
        let t: String = t.chars().take(chars).collect();
        let body = json!({ "messages": [{"sender": "a", "text": "what happened?"}, {"sender": "b", "text": t}] });
        let (ms, code) = time("/v1/features/summarize", body.to_string().into_bytes());
        println!("summarize one message of {chars:>7} chars {ms:>9.1} ms  {code}");
    }
    for n in [100usize, 500, 1_000, 2_000, 5_000] {
        let messages: Vec<Value> = (0..n)
            .map(|i| json!({"sender": format!("p{}", i % 7), "text": format!("message {i}: {}", &text[..200.min(text.len())])}))
            .collect();
        let body = json!({ "messages": messages });
        let bytes = body.to_string().into_bytes();
        let len = bytes.len();
        let (ms, code) = time("/v1/features/summarize", bytes);
        println!("summarize {n:>5} messages ({len:>8} bytes) {ms:>9.1} ms  {code}");
    }
    server.stop();
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` run
    // passes nothing and should not spend minutes here.
    if !std::env::args().any(|a| a == "--bench") {
        println!("features bench: run with `cargo bench -p cloister-host --bench features`");
        return;
    }
    let requests = arg("--requests", 50).max(1);
    let inference_threads = arg("--threads", 1).clamp(1, 64);
    if std::env::args().any(|a| a == "--sizes") {
        sizes(inference_threads);
        return;
    }
    let f = deploy(inference_threads);
    let server = Server::start(&f.config());

    let threads: Value = serde_json::from_slice(
        &std::fs::read(repo("eval/summarize/threads.json")).expect("eval/summarize/threads.json"),
    )
    .expect("threads.json is JSON");
    let summarize: Vec<Vec<u8>> = threads["threads"]
        .as_array()
        .expect("threads")
        .iter()
        .map(|t| {
            json!({ "messages": t["messages"] })
                .to_string()
                .into_bytes()
        })
        .collect();
    let messages: usize = threads["threads"]
        .as_array()
        .expect("threads")
        .iter()
        .map(|t| t["messages"].as_array().map_or(0, Vec::len))
        .sum();

    let text = std::fs::read_to_string(repo("eval/writing-help/hundred-words.txt"))
        .expect("eval/writing-help/hundred-words.txt");
    let text = text.trim();
    let words = text.split_whitespace().count();

    println!(
        "cloister-host through HTTP (loopback, one connection per request), \
         {inference_threads} inference thread(s), {} cores; load {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    run(
        &server,
        &format!(
            "summarize ({} threads, {:.1} msgs avg)",
            summarize.len(),
            messages as f64 / summarize.len().max(1) as f64
        ),
        "/v1/features/summarize",
        &summarize,
        requests,
    );
    run(
        &server,
        &format!("writing-help ({words} words)"),
        "/v1/features/writing-help",
        &[json!({ "text": text }).to_string().into_bytes()],
        requests,
    );
    run(
        &server,
        &format!("writing-help ({words} words, formal)"),
        "/v1/features/writing-help",
        &[json!({ "text": text, "target_tone": "formal" })
            .to_string()
            .into_bytes()],
        requests,
    );
    run(
        &server,
        &format!("writing-help ({words} words, no tone)"),
        "/v1/features/writing-help",
        &[json!({ "text": text, "detect_tone": false })
            .to_string()
            .into_bytes()],
        requests,
    );
    server.stop();
}
