//! `cloister-init` outside the image: it refuses at once, touching nothing (it would
//! otherwise mount over /proc and power the machine off).

use std::process::Command;

#[test]
fn outside_pid_1_it_refuses_and_does_nothing() {
    let out = Command::new(env!("CARGO_BIN_EXE_cloister-init"))
        .output()
        .expect("run cloister-init");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to run as process"), "{err}");
    assert!(err.contains("PID 1"), "{err}");
    assert!(out.stdout.is_empty());
}
