//! `cloister-host`: the production host binary that runs inside the CVM.
//!
//! It has no simulator: `--tee sim` is refused. The development host with the
//! simulator is `cloister-host-dev` (`cvm/dev-host`). See [`cloister_host::cli`].
#![forbid(unsafe_code)]

fn main() -> anyhow::Result<()> {
    cloister_host::cli::main(None)
}
