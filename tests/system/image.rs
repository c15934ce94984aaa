//! The CVM image (`cvm/`), built from the binaries this test build made (no second
//! build): `cloister-image build` from `cvm/recipe.toml`, the pinned AmdSev firmware
//! (`cvm/firmware/build-ovmf`, cached), `cloister-init` and the production or development
//! host; measured; and booted under QEMU with TCG (no SEV and no usable KVM here).
//!
//! The AmdSev firmware refuses `-kernel` without SEV, so the boot uses QEMU's default
//! firmware (SeaBIOS) with the same kernel, initramfs and command line: the production
//! firmware is covered by its digest in the manifest, not by the boot.

use sha2::Digest;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cloister_test_support::host::Fixture;
use cloister_test_support::{models_dir, repo_file, workspace_bin, MODEL};

use crate::common::{ok, run};

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// The pinned AmdSev OVMF, from the cache, verified (`cvm/firmware/build-ovmf` builds it on
/// a miss: ~10 minutes; `.ci/run` starts that build before the Rust build, and the script
/// waits for a build already running).
fn ovmf() -> Res<PathBuf> {
    let out = Command::new(repo_file("cvm/firmware/build-ovmf")).output()?;
    let text = ok("cvm/firmware/build-ovmf", out)?;
    let path = PathBuf::from(
        text.lines()
            .last()
            .ok_or("build-ovmf printed no path")?
            .trim(),
    );
    if !path.is_file() {
        return Err(format!("build-ovmf printed {}, which is not a file", path.display()).into());
    }
    Ok(path)
}

/// A deployment with the echo plugin whose host listens where the image forwards.
fn deployment() -> Fixture {
    let f = Fixture::new(&["echo"]);
    let config = std::fs::read_to_string(f.config()).unwrap();
    let config = config.replace("listen = \"127.0.0.1:0\"", "listen = \"0.0.0.0:8443\"");
    assert!(config.contains("0.0.0.0:8443"), "{config}");
    std::fs::write(f.config(), config).unwrap();
    f
}

struct Build<'a> {
    recipe: PathBuf,
    variant: &'a str,
    host: PathBuf,
    deploy: &'a Path,
    ovmf: &'a Path,
}

impl<'a> Build<'a> {
    fn new(variant: &'a str, deploy: &'a Path, ovmf: &'a Path) -> Build<'a> {
        let host = match variant {
            "production" => workspace_bin("cloister-host"),
            _ => workspace_bin("cloister-host-dev"),
        };
        Build {
            recipe: repo_file("cvm/recipe.toml"),
            variant,
            host,
            deploy,
            ovmf,
        }
    }

    /// Runs `cloister-image build`; the measurement it printed, or its error output.
    fn run(&self, out: &Path) -> Result<String, String> {
        let o = Command::new(workspace_bin("cloister-image"))
            .arg("build")
            .arg("--recipe")
            .arg(&self.recipe)
            .args(["--variant", self.variant])
            .arg("--host")
            .arg(&self.host)
            .arg("--init")
            .arg(workspace_bin("cloister-init"))
            .arg("--deploy")
            .arg(self.deploy)
            .arg("--ovmf")
            .arg(self.ovmf)
            .arg("--out")
            .arg(out)
            .arg("--no-progress")
            .output()
            .map_err(|e| e.to_string())?;
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        if !o.status.success() {
            return Err(stderr);
        }
        let m = String::from_utf8_lossy(&o.stdout).trim().to_owned();
        if m.len() != 96 {
            return Err(format!("no measurement printed: {m:?}\n{stderr}"));
        }
        Ok(m)
    }

    fn ok(&self, out: &Path) -> Res<String> {
        self.run(out)
            .map_err(|e| format!("cloister-image build failed:\n{e}").into())
    }
}

fn copy_dir(from: &Path, to: &Path) -> Res {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn flip_last_byte(path: &Path) -> Res {
    let mut bytes = std::fs::read(path)?;
    let last = bytes.last_mut().ok_or("empty file")?;
    *last ^= 1;
    std::fs::write(path, bytes)?;
    Ok(())
}

/// Same inputs, same bytes; one byte of the host binary, a plugin, a model or the command
/// line, another measurement. A host binary of the wrong variant and a changed input after
/// the build are refused.
#[test]
fn the_image_is_reproducible_and_every_input_moves_its_measurement() -> Res {
    let ovmf = ovmf()?;
    let f = deployment();
    let tmp = tempfile::tempdir()?;
    let out = |name: &str| tmp.path().join(name);
    let base = Build::new("production", f.dir.path(), &ovmf);

    let started = Instant::now();
    let a = base.ok(&out("a"))?;
    let build_time = started.elapsed();
    let b = base.ok(&out("b"))?;
    assert_eq!(a, b, "two builds from the same inputs measure differently");
    for file in ["initrd.img", "vmlinuz", "OVMF.fd", "image.json"] {
        assert!(
            std::fs::read(out("a").join(file))? == std::fs::read(out("b").join(file))?,
            "{file} differs between two builds from the same inputs"
        );
    }
    let initrd_size = std::fs::metadata(out("a").join("initrd.img"))?.len();
    eprintln!(
        "image: production build {:.1} s, initrd.img {} MiB, measurement {a}",
        build_time.as_secs_f64(),
        initrd_size >> 20
    );
    // `cloister-image measure` recomputes it from the manifest.
    let measured = ok(
        "cloister-image measure",
        run(
            tmp.path(),
            "cloister-image",
            &["measure", "--manifest", "a/image.json"],
        )?,
    )?;
    assert_eq!(measured.trim(), a);
    // A second, independent calculator (PyPI sev-snp-measure, pinned) agrees on our image.
    let second = ok(
        "cvm/sev-snp-measure",
        Command::new(repo_file("cvm/sev-snp-measure"))
            .arg("--manifest")
            .arg(out("a").join("image.json"))
            .output()?,
    )?;
    assert_eq!(
        second.trim(),
        a,
        "sev-snp-measure and cloister-image disagree on the same image"
    );
    // The launch script for real SNP hosts takes this manifest: its dry run prints the
    // command with measured direct boot, the memfd backend and the manifest's vCPUs.
    let dry = ok(
        "cvm/launch-snp --dry-run",
        Command::new(repo_file("cvm/launch-snp"))
            .arg("--manifest")
            .arg(out("a").join("image.json"))
            .args(["--dry-run", "--port", "18443"])
            .output()?,
    )?;
    for want in [
        "sev-snp-guest",
        "kernel-hashes=on",
        "memory-backend-memfd",
        "EPYC-v4",
        "restrict=on",
        "console=ttyS0",
    ] {
        assert!(
            dry.contains(want),
            "{want} not in the launch command:\n{dry}"
        );
    }
    for file in ["/OVMF.fd", "/vmlinuz", "/initrd.img"] {
        assert!(
            dry.lines().any(|l| l.ends_with(file)),
            "{file} not in the launch command:\n{dry}"
        );
    }
    // The manifest names every input: the kernel package, and each file of the initramfs.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out("a").join("image.json"))?)?;
    assert_eq!(manifest["variant"], "production");
    assert_eq!(manifest["measurement"], a.as_str());
    let paths: Vec<&str> = manifest["initrd_contents"]
        .as_array()
        .ok_or("no initrd_contents")?
        .iter()
        .filter_map(|e| e["path"].as_str())
        .collect();
    for want in [
        "/init",
        "/usr/bin/cloister-host",
        "/etc/cloister/host.toml",
        "/etc/cloister/init.toml",
        "/etc/cloister/echo.wasm",
        "/lib/modules/sev-guest.ko",
    ] {
        assert!(paths.contains(&want), "{want} not in the image: {paths:?}");
    }
    // The plugin's machine code, compiled by the build with the image's own host, is in the
    // measured initramfs, named by the component's hash; the image's init tells the host to
    // load it from there.
    let echo_sha = hex::encode(sha2::Sha256::digest(std::fs::read(f.path("echo.wasm"))?));
    let artifact = format!("/usr/lib/cloister/precompiled/{echo_sha}.cwasm");
    assert!(
        paths.contains(&artifact.as_str()),
        "{artifact} not in the image: {paths:?}"
    );
    assert!(
        !paths
            .iter()
            .any(|p| p.ends_with("/sh") || p.contains("busybox")),
        "a shell in the production image: {paths:?}"
    );
    assert!(!paths.iter().any(|p| p.contains("cloister-host-dev")));

    let mut seen = vec![a.clone()];
    let mut differs = |what: &str, m: String| {
        assert!(!seen.contains(&m), "{what}: the measurement did not change");
        seen.push(m);
    };

    // One byte more in the host binary.
    let host = tmp.path().join("cloister-host");
    std::fs::copy(workspace_bin("cloister-host"), &host)?;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&host)?
        .write_all(&[0])?;
    let changed = Build {
        host: host.clone(),
        ..Build::new("production", f.dir.path(), &ovmf)
    };
    differs("host binary", changed.ok(&out("host"))?);

    // A plugin changed after signing: the build verifies signatures (it compiles the
    // plugins with the image's host) and refuses, naming the plugin; nothing is built.
    let deploy = tmp.path().join("deploy-plugin");
    copy_dir(f.dir.path(), &deploy)?;
    let mut echo = std::fs::read(deploy.join("echo.wasm"))?;
    // One more custom section: still a valid component, one more byte of content.
    echo.extend_from_slice(&[0x00, 0x03, 0x01, b'x', 0x00]);
    std::fs::write(deploy.join("echo.wasm"), &echo)?;
    let e = Build::new("production", &deploy, &ovmf)
        .run(&out("plugin-unsigned"))
        .expect_err("an image was built from a plugin whose signature does not verify");
    assert!(
        e.contains("echo") && e.contains("signature"),
        "the refusal does not name the plugin and its signature:\n{e}"
    );
    assert!(!out("plugin-unsigned").join("initrd.img").exists());
    // Signed again by the team: another component, another measurement.
    let env = cloister_signing::sign_release(&f.key, "echo", "0.1.0", &echo)?;
    std::fs::write(deploy.join("echo.wasm.dsse.json"), env.to_json_pretty())?;
    differs(
        "plugin",
        Build::new("production", &deploy, &ovmf).ok(&out("plugin"))?,
    );

    // One byte of a model: the same deployment with the model, then with one byte changed.
    let with_model = tmp.path().join("deploy-model");
    copy_dir(f.dir.path(), &with_model)?;
    copy_dir(
        &models_dir().join(MODEL),
        &with_model.join("models").join(MODEL),
    )?;
    differs(
        "model added",
        Build::new("production", &with_model, &ovmf).ok(&out("model-a"))?,
    );
    let onnx = std::fs::read_dir(with_model.join("models").join(MODEL))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "onnx"))
        .ok_or("no .onnx file in the model directory")?;
    flip_last_byte(&onnx)?;
    differs(
        "model byte",
        Build::new("production", &with_model, &ovmf).ok(&out("model-b"))?,
    );

    // The command line.
    let recipe = tmp.path().join("recipe.toml");
    let text = std::fs::read_to_string(repo_file("cvm/recipe.toml"))?;
    let changed = text.replace(
        "cmdline = \"console=ttyS0 panic=-1\"",
        "cmdline = \"console=ttyS0 panic=-1 quiet\"",
    );
    assert_ne!(
        changed, text,
        "the recipe's command line is not the one this test edits"
    );
    let text = changed;
    std::fs::write(&recipe, &text)?;
    differs(
        "command line",
        Build {
            recipe,
            ..Build::new("production", f.dir.path(), &ovmf)
        }
        .ok(&out("cmdline"))?,
    );

    // A command line the measurement cannot be computed for faithfully is refused.
    let spaced = tmp.path().join("recipe-spaced.toml");
    std::fs::write(&spaced, text.replace("panic=-1 quiet\"", "panic=-1 \""))?;
    let err = Build {
        recipe: spaced,
        ..Build::new("production", f.dir.path(), &ovmf)
    }
    .run(&out("spaced"))
    .expect_err("a command line with trailing whitespace was taken");
    assert!(err.contains("whitespace"), "{err}");

    // The development image is another image.
    differs(
        "variant",
        Build::new("development", f.dir.path(), &ovmf).ok(&out("dev"))?,
    );

    // A host of the wrong variant is refused, naming the problem.
    let err = Build {
        host: workspace_bin("cloister-host-dev"),
        ..Build::new("production", f.dir.path(), &ovmf)
    }
    .run(&out("wrong-1"))
    .expect_err("a production image took the development host");
    assert!(err.contains("not the production host"), "{err}");
    let err = Build {
        host: workspace_bin("cloister-host"),
        ..Build::new("development", f.dir.path(), &ovmf)
    }
    .run(&out("wrong-2"))
    .expect_err("a development image took the production host");
    assert!(err.contains("no simulator"), "{err}");

    // A firmware that is not the AmdSev build is refused.
    let not_ovmf = tmp.path().join("not-ovmf.fd");
    std::fs::write(&not_ovmf, vec![0u8; 1 << 20])?;
    let err = Build::new("production", f.dir.path(), &not_ovmf)
        .run(&out("bad-ovmf"))
        .expect_err("a firmware without SEV metadata was taken");
    assert!(err.contains("not an SNP-capable OVMF"), "{err}");

    // An input changed after the build: `measure` names it.
    flip_last_byte(&out("a").join("initrd.img"))?;
    let o = run(
        tmp.path(),
        "cloister-image",
        &["measure", "--manifest", "a/image.json"],
    )?;
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("initrd.img") && err.contains("pins"), "{err}");
    Ok(())
}

/// A VM under QEMU TCG, killed on drop; its console lines go to a channel and a log.
struct Vm {
    child: Child,
    lines: mpsc::Receiver<String>,
    console: Vec<String>,
    started: Instant,
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Guards a boot that hangs (this is not a timing assertion: a healthy boot takes ~10-30 s).
const BOOT_LIMIT: Duration = Duration::from_secs(300);

impl Vm {
    fn boot(image: &Path, port: u16, fw_cfg: Option<String>) -> Res<Vm> {
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(image.join("image.json"))?)?;
        let cmdline = manifest["inputs"]["cmdline"]
            .as_str()
            .ok_or("no cmdline in the manifest")?;
        // Two vCPUs, as the manifest says, but run round-robin on one emulator thread
        // (`thread=single`). With multi-threaded TCG, Debian's QEMU 7.2 sometimes ran a
        // stale translation of kernel text the guest had just patched (static keys and
        // alternatives are patched with an int3 and a cross-CPU sync): a CI boot died
        // with a page fault in `ttwu_queue_wakelist` ("Fatal exception in interrupt"),
        // and the same kernel booted 4-up on 2 busy cores oopsed at an int3 already
        // patched away. With one emulator thread there is no cross-thread code
        // modification to race; see docs/cvm-image.md for the crash counts.
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args([
            "-machine",
            "q35",
            "-accel",
            "tcg,thread=single",
            "-cpu",
            "max",
            "-smp",
            "2",
        ])
        .args([
            "-m", "2048", "-display", "none", "-serial", "stdio", "-monitor", "none",
        ])
        .args(["-no-reboot", "-kernel"])
        .arg(image.join("vmlinuz"))
        .arg("-initrd")
        .arg(image.join("initrd.img"))
        .args(["-append", cmdline, "-nic"])
        .arg(format!(
            "user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:{port}-10.0.2.15:8443"
        ));
        if let Some(item) = fw_cfg {
            cmd.arg("-fw_cfg").arg(item);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!("cannot run qemu-system-x86_64 (install Debian's qemu-system-x86): {e}")
            })?;
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().ok_or("no stdout")?) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().ok_or("no stderr")?),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(Vm {
            child,
            lines: rx,
            console: Vec::new(),
            started: Instant::now(),
        })
    }

    /// Reads console lines until one contains `needle`; `None` if the VM stopped first.
    fn until(&mut self, needle: &str) -> Res<Option<String>> {
        loop {
            let left = BOOT_LIMIT.saturating_sub(self.started.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.console.push(line.clone());
                    if line.contains(needle) {
                        return Ok(Some(line));
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(None),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "no {needle:?} on the console within {BOOT_LIMIT:?}:\n{}",
                        self.console.join("\n")
                    )
                    .into())
                }
            }
        }
    }

    fn console(&self) -> String {
        self.console.join("\n")
    }
}

fn free_port() -> Res<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The PEM certificate the development host wrote to the console (`--sim-root-out
/// /dev/console`).
fn certificate_from_console(console: &str) -> Res<String> {
    let begin = console
        .find("-----BEGIN CERTIFICATE-----")
        .ok_or("no certificate on the console")?;
    let end = console[begin..]
        .find("-----END CERTIFICATE-----")
        .ok_or("an unterminated certificate on the console")?;
    let body = &console[begin..begin + end];
    let mut pem = String::new();
    for line in body.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN")
            || line
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
        {
            pem.push_str(line);
            pem.push('\n');
        }
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    Ok(pem)
}

/// The production image boots and its host, finding no `/dev/sev-guest`, refuses to start
/// and says why; the VM then powers off. The development image serves RA-TLS on the
/// forwarded port with the launch measurement computed for it, and `cloister connect`
/// verifies it against the policy written from its manifest; a policy for the production
/// image refuses it.
#[test]
fn the_images_boot_under_qemu() -> Res {
    let ovmf = ovmf()?;
    let f = deployment();
    let tmp = tempfile::tempdir()?;
    let prod = tmp.path().join("production");
    let dev = tmp.path().join("development");
    Build::new("production", f.dir.path(), &ovmf).ok(&prod)?;
    let dev_measurement = Build::new("development", f.dir.path(), &ovmf).ok(&dev)?;

    // Production: no SEV here, so the host must refuse, on the console, and stop.
    let mut vm = Vm::boot(&prod, free_port()?, None)?;
    let refused = vm.until("SNP hardware unavailable")?;
    let boot = vm.started.elapsed();
    assert!(
        refused.is_some_and(|l| l.contains("/dev/sev-guest")),
        "the production host did not refuse for want of /dev/sev-guest:\n{}",
        vm.console()
    );
    let off = vm.until("powering off")?;
    assert!(off.is_some(), "init did not power off:\n{}", vm.console());
    let status = vm.child.wait()?;
    assert!(status.success(), "qemu: {status}\n{}", vm.console());
    assert!(
        !vm.console().contains("listening on"),
        "the production host served without SNP:\n{}",
        vm.console()
    );
    eprintln!(
        "image: production image booted to the host's refusal in {:.1} s (TCG)",
        boot.as_secs_f64()
    );

    // Development: the simulated chip reports the digest the VMM passes in fw_cfg, which is
    // the one computed for this image.
    let port = free_port()?;
    let mut vm = Vm::boot(
        &dev,
        port,
        Some(format!(
            "name=opt/cloister/launch-measurement,string={dev_measurement}"
        )),
    )?;
    let listening = vm.until("cloister-host listening on https://")?;
    let boot = vm.started.elapsed();
    assert!(
        listening.is_some(),
        "the development host did not serve:\n{}",
        vm.console()
    );
    eprintln!(
        "image: development image booted to RA-TLS in {:.1} s (TCG)",
        boot.as_secs_f64()
    );
    std::fs::write(
        tmp.path().join("sim-ark.pem"),
        certificate_from_console(&vm.console())?,
    )?;
    let log = ok(
        "cloister-host measure",
        run(
            f.dir.path(),
            "cloister-host",
            &["measure", "--canonical", "--config", "host.toml"],
        )?,
    )?;
    std::fs::write(tmp.path().join("log.json"), log)?;
    for (policy, image) in [
        ("dev-policy.toml", "development/image.json"),
        ("prod-policy.toml", "production/image.json"),
    ] {
        ok(
            "cloister policy init",
            run(
                tmp.path(),
                "cloister",
                &[
                    "policy",
                    "init",
                    "--log",
                    "log.json",
                    "--image",
                    image,
                    "--trust-simulator-root",
                    "sim-ark.pem",
                    "--out",
                    policy,
                ],
            )?,
        )?;
    }
    let url = format!("https://127.0.0.1:{port}");
    let connected = ok(
        "cloister connect (development policy)",
        run(
            tmp.path(),
            "cloister",
            &["connect", &url, "--policy", "dev-policy.toml"],
        )?,
    )?;
    assert!(
        connected.contains(&dev_measurement),
        "connect did not report the image's measurement: {connected}"
    );
    let refused = run(
        tmp.path(),
        "cloister",
        &["connect", &url, "--policy", "prod-policy.toml"],
    )?;
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "the production policy accepted the development image"
    );
    assert!(err.to_lowercase().contains("measurement"), "{err}");
    Ok(())
}
