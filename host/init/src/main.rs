//! `cloister-init`: PID 1 of the Cloister CVM image. See the library documentation
//! (`cloister_init`) for what it does and why it does nothing else.
#![forbid(unsafe_code)]

use anyhow::Context;
use cloister_init::{InitConfig, Network, CONFIG_PATH};
use nix::mount::{mount, MsFlags};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn say(msg: &str) {
    // The console is stdout and stderr (the kernel opens /dev/console for PID 1).
    eprintln!("cloister-init: {msg}");
}

fn main() {
    // Everything below mounts over /proc, /sys and /dev and powers the machine off: never
    // outside the image.
    if std::process::id() != 1 {
        eprintln!(
            "cloister-init: refusing to run as process {}: this is the CVM image's PID 1 \
             (it mounts /proc, /sys and /dev and powers the machine off when the host exits)",
            std::process::id()
        );
        std::process::exit(2);
    }
    let started = Instant::now();
    let status = match run(started) {
        Ok(code) => code,
        Err(e) => {
            say(&format!("{e:#}"));
            1
        }
    };
    say(&format!(
        "the host exited (status {status}) after {} ms; powering off",
        started.elapsed().as_millis()
    ));
    nix::unistd::sync();
    // Returns only on failure.
    let Err(e) = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    say(&format!("cannot power off: {e}"));
    // PID 1 must not return: if power-off failed, stay (the VMM sees a stopped guest).
    loop {
        std::thread::park();
    }
}

/// Everything up to the host's exit; returns its exit code.
fn run(started: Instant) -> anyhow::Result<i32> {
    mount_kernel_filesystems()?;
    let text = std::fs::read_to_string(CONFIG_PATH)
        .with_context(|| format!("cannot read {CONFIG_PATH}"))?;
    let config = InitConfig::parse(&text)?;
    for module in &config.modules {
        match load_module(module) {
            Ok(()) => say(&format!("loaded {module}")),
            // The host decides whether it can run without it (it fails closed).
            Err(e) => say(&format!("cannot load {module}: {e:#}")),
        }
    }
    if let Some(net) = &config.network {
        match configure_network(net) {
            Ok(()) => say(&format!(
                "{} up with {}/{}",
                net.interface, net.address, net.prefix
            )),
            Err(e) => say(&format!("network not configured: {e:#}")),
        }
    }
    say(&format!(
        "starting {} after {} ms",
        config.host[0],
        started.elapsed().as_millis()
    ));
    let status = Command::new(&config.host[0])
        .args(&config.host[1..])
        .env_clear()
        .env("CLOISTER_LOG", "info")
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot start {}", config.host[0]))?;
    Ok(status.code().unwrap_or(128))
}

fn mount_kernel_filesystems() -> anyhow::Result<()> {
    let hardened = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    for (source, target, fstype, flags) in [
        ("proc", "/proc", "proc", hardened),
        ("sysfs", "/sys", "sysfs", hardened),
        (
            "devtmpfs",
            "/dev",
            "devtmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        ),
    ] {
        std::fs::create_dir_all(target).with_context(|| format!("cannot create {target}"))?;
        mount(Some(source), target, Some(fstype), flags, None::<&str>)
            .with_context(|| format!("cannot mount {fstype} on {target}"))?;
    }
    Ok(())
}

fn load_module(path: &str) -> anyhow::Result<()> {
    let file = std::fs::File::open(path).context("cannot open it")?;
    match nix::kmod::finit_module(&file, c"", nix::kmod::ModuleInitFlags::empty()) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Loopback and `net.interface` up, `net.address/net.prefix` on the latter (netlink).
fn configure_network(net: &Network) -> anyhow::Result<()> {
    let index = wait_for_interface(&net.interface, Duration::from_secs(10))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("cannot start the netlink runtime")?;
    rt.block_on(async {
        let (connection, handle, _) =
            rtnetlink::new_connection().context("cannot open a netlink socket")?;
        tokio::spawn(connection);
        let lo = interface_index("lo")?;
        handle
            .link()
            .set(rtnetlink::LinkUnspec::new_with_index(lo).up().build())
            .execute()
            .await
            .context("cannot bring lo up")?;
        handle
            .address()
            .add(index, net.address.into(), net.prefix)
            .execute()
            .await
            .with_context(|| format!("cannot add {}/{}", net.address, net.prefix))?;
        handle
            .link()
            .set(rtnetlink::LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .with_context(|| format!("cannot bring {} up", net.interface))?;
        anyhow::Ok(())
    })
}

fn interface_index(name: &str) -> anyhow::Result<u32> {
    let path = format!("/sys/class/net/{name}/ifindex");
    let text = std::fs::read_to_string(&path).with_context(|| format!("no {path}"))?;
    text.trim()
        .parse()
        .with_context(|| format!("{path} is not a number"))
}

/// The driver may register the interface after its module returned: poll sysfs.
fn wait_for_interface(name: &str, limit: Duration) -> anyhow::Result<u32> {
    let deadline = Instant::now() + limit;
    loop {
        match interface_index(name) {
            Ok(i) => return Ok(i),
            Err(e) if Instant::now() >= deadline => {
                return Err(e.context(format!("{name} did not appear within {limit:?}")))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
