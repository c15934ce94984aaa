//! End-to-end tests of the `cloister` binary, one test binary: plugin signing (`cli`),
//! `attest verify` (`attest`), `policy init`, `connect` and `run` against a real host
//! (`connect`).
use std::path::Path;
use std::process::{Command, Output};

mod attest;
mod cli;
mod connect;
mod policy;

/// Runs `cloister ARGS` in `dir`.
pub fn cloister(args: &[&str], dir: &Path) -> std::io::Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_cloister"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .output()
}

/// A command's standard output, lossily as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A command's standard error, lossily as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
