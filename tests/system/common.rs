//! Helpers every system test shares: running the workspace's binaries and the services
//! they start.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use cloister_test_support::workspace_bin;

/// A child process killed on drop.
pub(crate) struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn run(
    dir: &Path,
    bin: &str,
    args: &[&str],
) -> Result<Output, Box<dyn std::error::Error>> {
    Ok(Command::new(workspace_bin(bin))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .env("CLOISTER_LOG", "warn")
        .output()?)
}

pub(crate) fn ok(step: &str, out: Output) -> Result<String, Box<dyn std::error::Error>> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{step} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into())
    }
}

/// Spawns a service that prints `listening on <addr>` as its first line (after `skip`
/// other lines); returns it and its address.
pub(crate) fn listening(
    dir: &Path,
    bin: &str,
    args: &[&str],
) -> Result<(Killed, String), Box<dyn std::error::Error>> {
    let mut child = Command::new(workspace_bin(bin))
        .args(args)
        .current_dir(dir)
        .env("CLOISTER_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(format!("{bin} exited before listening").into());
        }
        if let Some(addr) = line.trim().strip_prefix("listening on ") {
            let addr = addr.to_owned();
            // Keep draining stdout so the service never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
            return Ok((Killed(child), addr));
        }
    }
}
