//! Fairness under CPU-bound plugins (issue 11, class 15): the latency of a
//! trivial `echo` request through a real `cloister-host serve` while N copies
//! of `hostile-loop` spin until their deadline.
//!
//! ```sh
//! cargo bench -p cloister-host --bench fairness                 # idle, 16, 64 spinners
//! cargo bench -p cloister-host --bench fairness -- --requests 400
//! ```
//!
//! For each case: echo p50, p95 and max in milliseconds over `--requests`
//! sequential requests (one per connection), and the p95 ratio to idle. The
//! goal is echo p95 under 16 spinners within 5x its idle p95. Needs
//! `scripts/build-plugins`.

use cloister_test_support::cli_arg as arg;
use cloister_test_support::host::{Fixture, Server};
use cloister_test_support::percentile;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Echo latencies (ms) while `spinners` requests keep `hostile-loop` busy.
fn run(server: &Server, spinners: usize, requests: usize) -> Vec<f64> {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..spinners {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let _ = server.request("POST", "/v1/features/hostile-loop", b"{}");
                }
            });
        }
        if spinners > 0 {
            // Let the spinners take their slots before measuring.
            std::thread::sleep(Duration::from_millis(500));
        }
        let mut ms = Vec::with_capacity(requests);
        for i in 0..requests {
            let body = format!("{{\"i\":{i}}}");
            let t = Instant::now();
            let (status, _) = server.request("POST", "/v1/features/echo", body.as_bytes());
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            assert_eq!(status, 200, "echo failed among {spinners} spinners");
        }
        stop.store(true, Ordering::Relaxed);
        ms.sort_by(f64::total_cmp);
        ms
    })
}

fn main() {
    let requests = arg("--requests", 200);
    let mut f = Fixture::new(&["echo", "hostile-loop"]);
    // Spinners run to a 1 s deadline; 64 of them fit the default caps
    // only with the per-plugin cap raised to the instance cap.
    f.limits =
        "deadline_ms = 1000\nmax_concurrent_instances = 80\nmax_concurrent_per_plugin = 64\n"
            .into();
    f.write_config();
    let server = Server::start(&f.config());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("fairness: echo latency, {requests} requests per case, {cores} cores");
    println!("| spinners | p50 ms | p95 ms | max ms | p95 / idle p95 |");
    println!("|---|---|---|---|---|");
    let mut idle_p95 = f64::NAN;
    for spinners in [0, 16, 64] {
        let ms = run(&server, spinners, requests);
        let (p50, p95, max) = (
            percentile(&ms, 0.5),
            percentile(&ms, 0.95),
            ms[ms.len() - 1],
        );
        if spinners == 0 {
            idle_p95 = p95;
        }
        println!(
            "| {spinners} | {p50:.2} | {p95:.2} | {max:.2} | {:.1}x |",
            p95 / idle_p95
        );
    }
}
