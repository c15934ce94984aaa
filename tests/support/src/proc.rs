//! What a process costs, read from `/proc` (Linux): its threads, resident
//! memory and CPU time, and a wait for it to go idle after an attack. Used by
//! the attack tests to show that the host's resources come back, measured
//! rather than assumed.

use std::time::{Duration, Instant};

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStats {
    /// Threads alive (`Threads:` of `/proc/PID/status`).
    pub threads: u64,
    /// Resident memory in KiB (`VmRSS:`).
    pub rss_kib: u64,
    /// CPU time used by the threads alive now (sum of the first field of
    /// every `/proc/PID/task/*/schedstat`, nanosecond precision).
    pub cpu: Duration,
}

/// Reads `/proc/PID`. Panics if the process is gone (a test failure).
pub fn stats(pid: u32) -> ProcStats {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"));
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    let mut cpu_ns: u64 = 0;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            // A thread may exit between the listing and the read.
            if let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) {
                cpu_ns += text
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    ProcStats {
        threads: field("Threads:"),
        rss_kib: field("VmRSS:"),
        cpu: Duration::from_nanos(cpu_ns),
    }
}

/// Waits until the process uses less than `max_busy` of one core over a
/// 100 ms window, for at most `bound`. Returns how long that took and the
/// reading at that moment, or an error saying how busy it still was.
pub fn wait_idle(
    pid: u32,
    max_busy: f64,
    bound: Duration,
) -> Result<(Duration, ProcStats), String> {
    let window = Duration::from_millis(100);
    let started = Instant::now();
    let mut last_busy = f64::NAN;
    while started.elapsed() < bound {
        let a = stats(pid);
        let t = Instant::now();
        // Measuring an idle process needs a window of real time (this is a
        // measurement, not a wait for an event).
        std::thread::sleep(window);
        let b = stats(pid);
        let busy = b.cpu.saturating_sub(a.cpu).as_secs_f64() / t.elapsed().as_secs_f64();
        if busy < max_busy {
            return Ok((started.elapsed(), b));
        }
        last_busy = busy;
    }
    Err(format!(
        "process {pid} still used {:.0}% of a core after {bound:?}",
        last_busy * 100.0
    ))
}
