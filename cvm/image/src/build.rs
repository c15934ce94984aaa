//! `cloister-image build`: the image from the recipe (`cvm/recipe.toml`), the host and
//! init binaries, and a deployment directory (the host configuration and every file it
//! names: signed plugins, envelopes, signer keys, models).
//!
//! Output, in one directory: `vmlinuz`, `initrd.img`, `OVMF.fd` and `image.json`, the
//! image manifest with every input's SHA-256, the initramfs's listing and the launch
//! measurement computed from all of it.

use crate::initramfs::{Initramfs, InitramfsError};
use crate::kernel::{extract, KernelError};
use crate::{
    check_ovmf, ContentEntry, ImageError, ImageManifest, KernelPackage, ManifestInputs, PinnedFile,
    MANIFEST_FORMAT,
};
use cloister_model_fetch::{Downloader, HttpsDownloader};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Why an image cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The recipe is malformed.
    #[error("invalid recipe {path}: {reason}")]
    Recipe {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A file cannot be read or written.
    #[error("{what} {path}: {reason}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The kernel package could not be downloaded.
    #[error("cannot download the kernel package {url}: {reason} (the live mirror drops old versions: put the package, SHA-256 {sha256}, in {cache}, e.g. from snapshot.debian.org)")]
    Download {
        /// Where from.
        url: String,
        /// Its pin.
        sha256: String,
        /// The cache directory.
        cache: PathBuf,
        /// Why.
        reason: String,
    },
    /// A pinned file's bytes are not the pinned ones.
    #[error("{what} has SHA-256 {actual}, but the recipe pins {expected}")]
    PinMismatch {
        /// Which file.
        what: String,
        /// The pin.
        expected: String,
        /// What it hashes to.
        actual: String,
    },
    /// The kernel package is unusable.
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// The initramfs cannot be built.
    #[error(transparent)]
    Initramfs(#[from] InitramfsError),
    /// The firmware, the manifest or the measurement.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The host binary is not the variant asked for.
    #[error("{0}")]
    Variant(String),
    /// A binary's shared libraries cannot be found.
    #[error("cannot list the shared libraries of {path}: {reason}")]
    Libraries {
        /// The binary.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The host could not verify or compile the deployment's plugins.
    #[error("{0}")]
    Precompile(String),
    /// The deployment directory is not usable.
    #[error("invalid deployment directory {path}: {reason}")]
    Deploy {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// `cvm/recipe.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// The kernel package.
    pub kernel: KernelPin,
    /// The launch parameters.
    pub launch: Launch,
    /// The guest's network interface.
    pub network: NetworkPin,
}

/// The pinned kernel package.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelPin {
    /// Debian package name.
    pub package: String,
    /// Debian version.
    pub version: String,
    /// Where to download it.
    pub url: String,
    /// Its SHA-256.
    pub sha256: String,
    /// The kernel's path in the package.
    pub vmlinuz: String,
    /// Modules (paths in the package) for every image, in load order.
    pub modules: Vec<String>,
    /// Modules only the development image loads, after the others.
    #[serde(default)]
    pub development_modules: Vec<String>,
}

/// The launch parameters the measurement depends on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Launch {
    /// Kernel command line.
    pub cmdline: String,
    /// vCPU count.
    pub vcpus: u32,
    /// QEMU vCPU type.
    pub vcpu_type: String,
    /// VMSA SEV_FEATURES.
    pub guest_features: u64,
    /// VMM type.
    pub vmm: String,
    /// The QEMU version to launch with.
    pub qemu_version: String,
}

/// The guest's one network interface.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkPin {
    /// Interface name.
    pub interface: String,
    /// IPv4 address.
    pub address: std::net::Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
}

impl Recipe {
    /// Reads and checks a recipe.
    pub fn from_file(path: &Path) -> Result<Recipe, BuildError> {
        let bad = |reason: String| BuildError::Recipe {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let r: Recipe = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if r.kernel.sha256.len() != 64 || !r.kernel.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("kernel.sha256 is not 64 hex characters".into()));
        }
        let all: Vec<&String> = r
            .kernel
            .modules
            .iter()
            .chain(&r.kernel.development_modules)
            .collect();
        let mut names: Vec<String> = all.iter().map(|m| module_name(m)).collect();
        if let Some(m) = all.iter().find(|m| !m.ends_with(".ko.xz")) {
            return Err(bad(format!("module {m} is not a .ko.xz file")));
        }
        names.sort();
        names.dedup();
        if names.len() != all.len() {
            return Err(bad("a module is listed twice".into()));
        }
        crate::parse_vcpu_type(&r.launch.vcpu_type)?;
        crate::parse_vmm(&r.launch.vmm)?;
        crate::check_cmdline(&r.launch.cmdline)?;
        if r.launch.vcpus == 0 {
            return Err(bad("launch.vcpus must be at least 1".into()));
        }
        Ok(r)
    }
}

fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.strip_suffix(".xz").unwrap_or(base).to_owned()
}

/// Which image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// `cloister-host` with `--tee snp`: the image a client may trust.
    Production,
    /// `cloister-host-dev` with `--tee sim`: for tests and development; a different
    /// initramfs, hence a different measurement, and marked so in its manifest.
    Development,
}

impl Variant {
    /// The manifest's `variant`.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Production => "production",
            Variant::Development => "development",
        }
    }
}

/// Where the development host reads the simulated launch measurement: QEMU's fw_cfg item
/// `opt/cloister/launch-measurement`, which the VMM sets to the digest it computed.
pub const SIM_MEASUREMENT_FW_CFG: &str = "opt/cloister/launch-measurement";

/// Where the image keeps the plugins' precompiled artifacts.
pub const PRECOMPILED_DIR: &str = "/usr/lib/cloister/precompiled";

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The recipe.
    pub recipe: Recipe,
    /// Which image.
    pub variant: Variant,
    /// The host binary (`cloister-host`, or `cloister-host-dev` for development).
    pub host: PathBuf,
    /// The init binary (`cloister-init`).
    pub init: PathBuf,
    /// The deployment directory: `host.toml` and what it names, copied to `/etc/cloister`.
    pub deploy: PathBuf,
    /// The firmware (OVMF AmdSev build).
    pub ovmf: PathBuf,
    /// The output directory (created).
    pub out: PathBuf,
    /// Where downloads are cached by SHA-256.
    pub cache: PathBuf,
    /// Show progress bars (when stderr is a terminal).
    pub progress: bool,
}

/// What was built.
#[derive(Debug, Clone)]
pub struct Built {
    /// The manifest written to `image.json`.
    pub manifest: ImageManifest,
    /// The launch measurement.
    pub measurement: [u8; 48],
    /// Size of `initrd.img`.
    pub initrd_bytes: u64,
    /// Size of `vmlinuz`.
    pub kernel_bytes: u64,
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BuildError + 'a {
    move |e| BuildError::Io {
        what,
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

struct Stages {
    started: Instant,
}

impl Stages {
    fn say(&self, what: &str) {
        eprintln!(
            "cloister-image: [{:>6.1}s] {what}",
            self.started.elapsed().as_secs_f64()
        );
    }
}

fn bar(show: bool, len: u64, msg: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !show || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(msg.to_owned());
    bar
}

/// The kernel package from the cache, or downloaded into it; verified either way.
pub fn kernel_package(
    pin: &KernelPin,
    cache: &Path,
    progress: bool,
) -> Result<Vec<u8>, BuildError> {
    kernel_package_from(pin, cache, progress, &HttpsDownloader::new())
}

/// [`kernel_package`] with the given downloader.
pub fn kernel_package_from(
    pin: &KernelPin,
    cache: &Path,
    progress: bool,
    downloader: &dyn Downloader,
) -> Result<Vec<u8>, BuildError> {
    std::fs::create_dir_all(cache).map_err(io("cannot create the cache", cache))?;
    let path = cache.join(&pin.sha256);
    let mismatch = |actual: String| BuildError::PinMismatch {
        what: format!("the kernel package {} {}", pin.package, pin.version),
        expected: pin.sha256.clone(),
        actual,
    };
    if let Ok(bytes) = std::fs::read(&path) {
        let actual = sha256_hex(&bytes);
        if actual == pin.sha256 {
            return Ok(bytes);
        }
        eprintln!(
            "cloister-image: the cached {} does not match its pin; downloading it again",
            path.display()
        );
    }
    let download_error = |reason: String| BuildError::Download {
        url: pin.url.clone(),
        sha256: pin.sha256.clone(),
        cache: cache.to_owned(),
        reason,
    };
    let mut bytes = Vec::new();
    let b = bar(progress, 40 << 20, &pin.package);
    downloader
        .download(&pin.url, 256 << 20, &mut bytes, &|n| b.inc(n))
        .map_err(download_error)?;
    b.finish_and_clear();
    let actual = sha256_hex(&bytes);
    if actual != pin.sha256 {
        return Err(mismatch(actual));
    }
    let partial = cache.join(format!("{}.partial", pin.sha256));
    std::fs::write(&partial, &bytes).map_err(io("cannot write", &partial))?;
    std::fs::rename(&partial, &path).map_err(io("cannot rename into place", &path))?;
    Ok(bytes)
}

/// The shared libraries `binary` loads, as `(path in the image, path on this machine)`:
/// the paths the dynamic loader resolved (`ldd`), the same in the image.
pub fn shared_libraries(binary: &Path) -> Result<Vec<String>, BuildError> {
    let fail = |reason: String| BuildError::Libraries {
        path: binary.to_owned(),
        reason,
    };
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| fail(format!("cannot run ldd: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if text.contains("statically linked") || text.contains("not a dynamic executable") {
            return Ok(Vec::new());
        }
        return Err(fail(format!(
            "ldd failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    parse_ldd(&text).map_err(fail)
}

/// The library paths in `ldd` output.
pub fn parse_ldd(text: &str) -> Result<Vec<String>, String> {
    let mut libs = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.contains("not found") {
            return Err(format!("a library is missing: {line}"));
        }
        if line.contains("statically linked") {
            continue;
        }
        let path = match line.split_once(" => ") {
            Some((_, rest)) => rest.split(" (").next().unwrap_or("").trim(),
            None => line.split(" (").next().unwrap_or("").trim(),
        };
        // The vDSO has no file.
        if path.starts_with('/') {
            libs.push(path.to_owned());
        }
    }
    libs.sort();
    libs.dedup();
    Ok(libs)
}

/// Refuses a host binary that is not the variant asked for: the production image must
/// never take a host that has the simulator. The binary is asked for `--tee sim` with a
/// configuration that does not exist: the production host refuses the simulator before
/// it reads anything; the development host gets as far as the configuration.
pub fn check_host_variant(host: &Path, variant: Variant) -> Result<(), BuildError> {
    let out = Command::new(host)
        .args([
            "serve",
            "--tee",
            "sim",
            "--config",
            "/nonexistent/cloister-image-variant-probe.toml",
        ])
        .env_clear()
        .output()
        .map_err(|e| BuildError::Variant(format!("cannot run {}: {e}", host.display())))?;
    let err = String::from_utf8_lossy(&out.stderr);
    let production = err.contains("production host") && err.contains("no simulator");
    match (variant, production) {
        (Variant::Production, true) | (Variant::Development, false) if !out.status.success() => {
            Ok(())
        }
        (Variant::Production, _) => Err(BuildError::Variant(format!(
            "{} is not the production host (it does not refuse --tee sim): a production image takes cloister-host",
            host.display()
        ))),
        (Variant::Development, _) => Err(BuildError::Variant(format!(
            "{} has no simulator: the development image takes cloister-host-dev",
            host.display()
        ))),
    }
}

fn deploy_files(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, BuildError> {
    let bad = |reason: String| BuildError::Deploy {
        path: dir.to_owned(),
        reason,
    };
    if !dir.join("host.toml").is_file() {
        return Err(bad("it has no host.toml".into()));
    }
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let here = dir.join(&rel);
        let entries =
            std::fs::read_dir(&here).map_err(|e| bad(format!("{}: {e}", here.display())))?;
        for entry in entries {
            let entry = entry.map_err(|e| bad(e.to_string()))?;
            let name = entry
                .file_name()
                .into_string()
                .map_err(|n| bad(format!("{n:?} is not UTF-8")))?;
            let rel = rel.join(&name);
            let path = dir.join(&rel);
            let meta =
                std::fs::metadata(&path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
            let image_path = format!("/etc/cloister/{}", rel.to_string_lossy());
            if meta.is_dir() {
                stack.push(rel);
            } else if meta.is_file() {
                let bytes =
                    std::fs::read(&path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
                out.push((image_path, bytes));
            } else {
                return Err(bad(format!(
                    "{} is not a file or directory",
                    path.display()
                )));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Runs `<host> precompile` on the deployment: the host verifies every plugin's
/// signature (an image whose host would refuse its plugins is not built) and compiles
/// each into `<component sha256>.cwasm` for the deployment's limits, with the pinned
/// code generation (the same bytes on every machine). Returns `(file name, bytes)`.
///
/// The artifacts go into the initramfs, so the launch measurement covers them as it
/// covers the host binary; the host in the image loads them instead of compiling at
/// boot (docs/performance.md, "Cold start").
pub fn precompile(
    host: &Path,
    deploy: &Path,
    scratch: &Path,
) -> Result<Vec<(String, Vec<u8>)>, BuildError> {
    let dir = scratch.join("precompiled.tmp");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(io("cannot clear", &dir))?;
    }
    let out = Command::new(host)
        .arg("precompile")
        .arg("--config")
        .arg(deploy.join("host.toml"))
        .arg("--out")
        .arg(&dir)
        .env_clear()
        .output()
        .map_err(|e| BuildError::Precompile(format!("cannot run {}: {e}", host.display())))?;
    if !out.status.success() {
        return Err(BuildError::Precompile(format!(
            "{} precompile failed: {}",
            host.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(io("cannot list", &dir))? {
        let entry = entry.map_err(io("cannot list", &dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".cwasm") {
            return Err(BuildError::Precompile(format!(
                "unexpected file {name} among the precompiled artifacts"
            )));
        }
        let path = entry.path();
        files.push((
            name,
            std::fs::read(&path).map_err(io("cannot read", &path))?,
        ));
    }
    std::fs::remove_dir_all(&dir).map_err(io("cannot remove", &dir))?;
    files.sort();
    Ok(files)
}

/// The init configuration of a variant (see `cloister-init`).
pub fn init_config(
    recipe: &Recipe,
    variant: Variant,
    host_name: &str,
    modules: &[String],
) -> String {
    let quote = |s: &str| format!("{s:?}");
    let mut host: Vec<String> = vec![
        format!("/usr/bin/{host_name}"),
        "serve".into(),
        "--config".into(),
        "/etc/cloister/host.toml".into(),
        // The plugins' machine code, compiled by this build into the measured
        // initramfs (see `precompile`).
        "--precompiled".into(),
        PRECOMPILED_DIR.into(),
        "--tee".into(),
    ];
    match variant {
        Variant::Production => host.push("snp".into()),
        Variant::Development => host.extend([
            "sim".into(),
            // The simulated chip's root goes to the console, for the test's client policy.
            "--sim-root-out".into(),
            "/dev/console".into(),
            "--sim-measurement-file".into(),
            format!("/sys/firmware/qemu_fw_cfg/by_name/{SIM_MEASUREMENT_FW_CFG}/raw"),
        ]),
    }
    format!(
        "# cloister-init configuration ({variant} image), written by cloister-image build.\n\
         modules = [{modules}]\n\
         host = [{host}]\n\n\
         [network]\n\
         interface = {iface}\n\
         address = \"{addr}\"\n\
         prefix = {prefix}\n",
        variant = variant.name(),
        modules = modules
            .iter()
            .map(|m| quote(m))
            .collect::<Vec<_>>()
            .join(", "),
        host = host.iter().map(|a| quote(a)).collect::<Vec<_>>().join(", "),
        iface = quote(&recipe.network.interface),
        addr = recipe.network.address,
        prefix = recipe.network.prefix,
    )
}

/// Builds the image.
pub fn build(req: &BuildRequest) -> Result<Built, BuildError> {
    let stages = Stages {
        started: Instant::now(),
    };
    std::fs::create_dir_all(&req.out).map_err(io("cannot create", &req.out))?;

    stages.say("firmware: checking the OVMF build");
    let ovmf = std::fs::read(&req.ovmf).map_err(io("cannot read the firmware", &req.ovmf))?;
    check_ovmf(&ovmf)?;

    stages.say(&format!(
        "host: checking that {} is the {} host",
        req.host.display(),
        req.variant.name()
    ));
    check_host_variant(&req.host, req.variant)?;

    stages.say(&format!(
        "kernel: {} {}",
        req.recipe.kernel.package, req.recipe.kernel.version
    ));
    let deb = kernel_package(&req.recipe.kernel, &req.cache, req.progress)?;
    let mut wanted = req.recipe.kernel.modules.clone();
    if req.variant == Variant::Development {
        wanted.extend(req.recipe.kernel.development_modules.iter().cloned());
    }
    let parts = extract(&deb, &req.recipe.kernel.vmlinuz, &wanted)?;

    stages.say("initramfs: collecting files");
    let mut fs = Initramfs::new();
    let init = std::fs::read(&req.init).map_err(io("cannot read the init", &req.init))?;
    fs.file("/init", 0o755, init)?;
    let host_name = req
        .host
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| BuildError::Variant(format!("{} has no file name", req.host.display())))?
        .to_owned();
    let host = std::fs::read(&req.host).map_err(io("cannot read the host", &req.host))?;
    fs.file(&format!("/usr/bin/{host_name}"), 0o755, host)?;
    let mut libs = shared_libraries(&req.init)?;
    libs.extend(shared_libraries(&req.host)?);
    libs.sort();
    libs.dedup();
    for lib in &libs {
        let bytes = std::fs::read(lib).map_err(io("cannot read the library", Path::new(lib)))?;
        fs.file(lib, 0o755, bytes)?;
    }
    let mut module_paths = Vec::new();
    for (path, ko) in parts.modules {
        let in_image = format!("/lib/modules/{}", module_name(&path));
        fs.file(&in_image, 0o644, ko)?;
        module_paths.push(in_image);
    }
    for (path, bytes) in deploy_files(&req.deploy)? {
        fs.file(&path, 0o644, bytes)?;
    }
    stages.say("plugins: verifying and compiling them with the image's host");
    for (name, bytes) in precompile(&req.host, &req.deploy, &req.out)? {
        fs.file(&format!("{PRECOMPILED_DIR}/{name}"), 0o444, bytes)?;
    }
    fs.file(
        "/etc/cloister/init.toml",
        0o644,
        init_config(&req.recipe, req.variant, &host_name, &module_paths).into_bytes(),
    )?;
    for d in ["/proc", "/sys", "/dev", "/tmp"] {
        fs.dir(d)?;
    }

    stages.say(&format!(
        "initramfs: writing {} MiB",
        fs.content_bytes() >> 20
    ));
    let initrd_path = req.out.join("initrd.img");
    let file = std::fs::File::create(&initrd_path).map_err(io("cannot create", &initrd_path))?;
    let b = bar(req.progress, fs.content_bytes(), "initrd.img");
    let mut writer = std::io::BufWriter::new(file);
    writer = fs.write(writer, &mut |n| b.set_position(n))?;
    writer.flush().map_err(io("cannot write", &initrd_path))?;
    b.finish_and_clear();
    drop(writer);

    let kernel_path = req.out.join("vmlinuz");
    std::fs::write(&kernel_path, &parts.vmlinuz).map_err(io("cannot write", &kernel_path))?;
    let ovmf_path = req.out.join("OVMF.fd");
    std::fs::write(&ovmf_path, &ovmf).map_err(io("cannot write", &ovmf_path))?;

    stages.say("measurement: hashing the inputs");
    let initrd_bytes = std::fs::read(&initrd_path).map_err(io("cannot read", &initrd_path))?;
    let mut manifest = ImageManifest {
        format: MANIFEST_FORMAT.into(),
        variant: req.variant.name().into(),
        inputs: ManifestInputs {
            ovmf: PinnedFile {
                file: "OVMF.fd".into(),
                sha256: sha256_hex(&ovmf),
            },
            kernel: Some(PinnedFile {
                file: "vmlinuz".into(),
                sha256: sha256_hex(&parts.vmlinuz),
            }),
            initrd: Some(PinnedFile {
                file: "initrd.img".into(),
                sha256: sha256_hex(&initrd_bytes),
            }),
            cmdline: Some(req.recipe.launch.cmdline.clone()),
        },
        vcpus: req.recipe.launch.vcpus,
        vcpu_type: req.recipe.launch.vcpu_type.clone(),
        guest_features: req.recipe.launch.guest_features,
        vmm: req.recipe.launch.vmm.clone(),
        qemu_version: req.recipe.launch.qemu_version.clone(),
        kernel_package: Some(KernelPackage {
            name: req.recipe.kernel.package.clone(),
            version: req.recipe.kernel.version.clone(),
            sha256: req.recipe.kernel.sha256.clone(),
        }),
        initrd_contents: fs
            .listing()
            .into_iter()
            .map(|l| ContentEntry {
                path: l.path,
                mode: format!("{:o}", l.mode),
                sha256: l.sha256,
                size: l.size,
            })
            .collect(),
        measurement: None,
    };
    let measurement = manifest.measure(&req.out)?;
    manifest.measurement = Some(hex::encode(measurement));
    let manifest_path = req.out.join("image.json");
    let mut json =
        serde_json::to_vec_pretty(&manifest).map_err(|e| ImageError::Manifest(e.to_string()))?;
    json.push(b'\n');
    std::fs::write(&manifest_path, json).map_err(io("cannot write", &manifest_path))?;
    stages.say(&format!(
        "done: {} image, measurement {}",
        req.variant.name(),
        hex::encode(measurement)
    ));
    Ok(Built {
        manifest,
        measurement,
        initrd_bytes: initrd_bytes.len() as u64,
        kernel_bytes: parts.vmlinuz.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_is_parsed_and_missing_libraries_refused() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            parse_ldd(text).unwrap(),
            [
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib64/ld-linux-x86-64.so.2"
            ]
        );
        let err = parse_ldd("\tlibfoo.so.1 => not found\n").unwrap_err();
        assert!(err.contains("libfoo"), "{err}");
    }

    /// Serves fixed bytes for any URL (the network is not what is tested here: the pin is).
    struct Serves(Vec<u8>);

    impl Downloader for Serves {
        fn download(
            &self,
            _url: &str,
            max_bytes: u64,
            out: &mut dyn Write,
            progress: &dyn Fn(u64),
        ) -> Result<(), String> {
            if self.0.len() as u64 > max_bytes {
                return Err("too large".into());
            }
            out.write_all(&self.0).map_err(|e| e.to_string())?;
            progress(self.0.len() as u64);
            Ok(())
        }
    }

    fn pin_of(bytes: &[u8]) -> KernelPin {
        KernelPin {
            package: "linux-image-test".into(),
            version: "1".into(),
            url: "https://deb.example/linux-image-test.deb".into(),
            sha256: sha256_hex(bytes),
            vmlinuz: "boot/vmlinuz".into(),
            modules: vec![],
            development_modules: vec![],
        }
    }

    #[test]
    fn the_kernel_package_is_taken_only_with_its_pinned_hash() {
        let cache = tempfile::tempdir().unwrap();
        let pin = pin_of(b"the pinned package");
        // The mirror serves other bytes: refused, named, nothing cached.
        let e =
            kernel_package_from(&pin, cache.path(), false, &Serves(b"other".to_vec())).unwrap_err();
        assert!(matches!(e, BuildError::PinMismatch { .. }), "{e}");
        assert!(e.to_string().contains("linux-image-test"), "{e}");
        assert!(e.to_string().contains(&pin.sha256), "{e}");
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
        // The right bytes: taken and cached under their hash.
        let got = kernel_package_from(
            &pin,
            cache.path(),
            false,
            &Serves(b"the pinned package".to_vec()),
        )
        .unwrap();
        assert_eq!(got, b"the pinned package");
        assert!(cache.path().join(&pin.sha256).is_file());
        // A damaged cached copy is not used: it is fetched again (and refused if the mirror
        // is wrong too).
        std::fs::write(cache.path().join(&pin.sha256), b"damaged").unwrap();
        let e =
            kernel_package_from(&pin, cache.path(), false, &Serves(b"bad".to_vec())).unwrap_err();
        assert!(matches!(e, BuildError::PinMismatch { .. }), "{e}");
        let got = kernel_package_from(
            &pin,
            cache.path(),
            false,
            &Serves(b"the pinned package".to_vec()),
        )
        .unwrap();
        assert_eq!(got, b"the pinned package");
    }

    #[test]
    fn the_recipe_in_the_repository_is_valid() {
        let r = Recipe::from_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipe.toml"))
            .unwrap();
        assert!(r
            .kernel
            .modules
            .iter()
            .any(|m| m.ends_with("sev-guest.ko.xz")));
        assert_eq!(module_name(&r.kernel.modules[0]), "configfs.ko");
    }

    #[test]
    fn the_init_configuration_of_each_variant_parses_in_the_init() {
        let r = Recipe::from_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipe.toml"))
            .unwrap();
        let mods = vec!["/lib/modules/configfs.ko".to_owned()];
        let prod = init_config(&r, Variant::Production, "cloister-host", &mods);
        let prod = cloister_init::InitConfig::parse(&prod).unwrap();
        assert_eq!(prod.host[0], "/usr/bin/cloister-host");
        assert_eq!(prod.host[prod.host.len() - 2..], ["--tee", "snp"]);
        assert_eq!(prod.modules, mods);
        assert_eq!(prod.network.unwrap().address.to_string(), "10.0.2.15");
        let dev = init_config(&r, Variant::Development, "cloister-host-dev", &mods);
        let dev = cloister_init::InitConfig::parse(&dev).unwrap();
        assert_eq!(dev.host[0], "/usr/bin/cloister-host-dev");
        assert!(dev.host.iter().any(|a| a == "sim"));
        assert!(dev.host.iter().any(|a| a.contains(SIM_MEASUREMENT_FW_CFG)));
    }
}
