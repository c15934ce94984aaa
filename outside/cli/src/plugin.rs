//! `cloister plugin ...`: release keys, signing, verification, inspection.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use cloister_display::Excerpt;
use cloister_signing::{sign_release, Envelope, PublicKey, SigningKey, Zeroizing};

/// Subcommands of `cloister plugin`.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Generate an Ed25519 release signing key pair.
    ///
    /// Writes PREFIX.key.pem (PKCS#8, mode 0600) and PREFIX.pub.pem (SPKI);
    /// refuses to overwrite existing files. Prints the key id.
    Keygen {
        /// Path prefix of the key files.
        #[arg(long, value_name = "PREFIX")]
        out: PathBuf,
    },
    /// Sign a plugin component, writing a DSSE envelope.
    Sign {
        /// Private key (PKCS#8 PEM).
        #[arg(long, value_name = "KEY.pem")]
        key: PathBuf,
        /// Plugin name (`[a-z0-9][a-z0-9-]{0,62}`).
        #[arg(long)]
        name: String,
        /// Plugin version (`[0-9A-Za-z.+-]`, at most 64 characters).
        #[arg(long)]
        version: String,
        /// Output file [default: COMPONENT.dsse.json].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// The WebAssembly component to sign.
        #[arg(value_name = "COMPONENT.wasm")]
        component: PathBuf,
    },
    /// Verify a component against its signature and trusted public keys.
    Verify {
        /// Trusted public key (SPKI PEM); repeat for several.
        #[arg(long = "pubkey", value_name = "PUB.pem", required = true)]
        pubkeys: Vec<PathBuf>,
        /// The DSSE envelope (`.dsse.json`).
        #[arg(long, value_name = "FILE")]
        signature: PathBuf,
        /// The WebAssembly component.
        #[arg(value_name = "COMPONENT.wasm")]
        component: PathBuf,
    },
    /// Show a signature file's statement WITHOUT verifying it.
    Inspect {
        /// The DSSE envelope (`.dsse.json`).
        #[arg(value_name = "FILE.dsse.json")]
        file: PathBuf,
    },
}

/// Runs a `cloister plugin` subcommand.
pub fn run(cmd: PluginCommand) -> Result<()> {
    match cmd {
        PluginCommand::Keygen { out } => keygen(&out),
        PluginCommand::Sign {
            key,
            name,
            version,
            out,
            component,
        } => sign(&key, &name, &version, out.as_deref(), &component),
        PluginCommand::Verify {
            pubkeys,
            signature,
            component,
        } => verify(&pubkeys, &signature, &component),
        PluginCommand::Inspect { file } => inspect(&file),
    }
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Creates `path` (which must not exist) with `mode` on Unix, and writes `contents`.
fn create_new(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).with_context(|| {
        format!(
            "cannot create {} (refusing to overwrite an existing file)",
            path.display()
        )
    })?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn keygen(prefix: &Path) -> Result<()> {
    let key_path = with_suffix(prefix, ".key.pem");
    let pub_path = with_suffix(prefix, ".pub.pem");
    for path in [&key_path, &pub_path] {
        if path.exists() {
            bail!(
                "{} already exists; refusing to overwrite it",
                path.display()
            );
        }
    }

    let key = SigningKey::generate().context("generating the signing key")?;
    let public = key.public_key();
    let key_pem = key.to_pkcs8_pem().context("encoding the private key")?;
    let pub_pem = public.to_spki_pem().context("encoding the public key")?;

    create_new(&key_path, key_pem.as_bytes(), 0o600)?;
    create_new(&pub_path, pub_pem.as_bytes(), 0o644)?;

    println!("private key: {}", key_path.display());
    println!("public key:  {}", pub_path.display());
    println!("key id:      {}", public.key_id());
    Ok(())
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

fn read_public_key(path: &Path) -> Result<PublicKey> {
    let pem = fs::read_to_string(path)
        .with_context(|| format!("cannot read public key {}", path.display()))?;
    PublicKey::from_spki_pem(&pem)
        .with_context(|| format!("cannot load public key {}", path.display()))
}

fn sign(
    key_path: &Path,
    name: &str,
    version: &str,
    out: Option<&Path>,
    component_path: &Path,
) -> Result<()> {
    let key_pem = Zeroizing::new(
        fs::read_to_string(key_path)
            .with_context(|| format!("cannot read private key {}", key_path.display()))?,
    );
    let key = SigningKey::from_pkcs8_pem(&key_pem)
        .with_context(|| format!("cannot load private key {}", key_path.display()))?;
    let component = read(component_path, "component")?;

    let envelope = sign_release(&key, name, version, &component)
        .with_context(|| format!("cannot sign {}", component_path.display()))?;
    let statement = envelope
        .statement_unverified()
        .context("re-reading the statement just signed")?;

    let out = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| with_suffix(component_path, ".dsse.json"));
    fs::write(&out, envelope.to_json_pretty())
        .with_context(|| format!("cannot write signature {}", out.display()))?;

    println!("signed:    {}", statement.subject_name());
    println!("sha256:    {}", statement.sha256_hex());
    println!("key id:    {}", key.public_key().key_id());
    println!("signature: {}", out.display());
    Ok(())
}

fn verify(pubkey_paths: &[PathBuf], signature_path: &Path, component_path: &Path) -> Result<()> {
    let trusted = pubkey_paths
        .iter()
        .map(|p| read_public_key(p))
        .collect::<Result<Vec<_>>>()?;
    let envelope = read(signature_path, "signature")?;
    let component = read(component_path, "component")?;

    let verified =
        cloister_signing::verify_release(&envelope, &component, &trusted).with_context(|| {
            format!(
                "verification of {} with signature {} failed",
                component_path.display(),
                signature_path.display()
            )
        })?;
    println!(
        "verified: {}@{} sha256={} signer={}",
        Excerpt(&verified.name),
        Excerpt(&verified.version),
        verified.sha256_hex(),
        verified.signer_key_id
    );
    Ok(())
}

fn inspect(path: &Path) -> Result<()> {
    let json = read(path, "signature")?;
    let envelope = Envelope::from_json(&json)
        .with_context(|| format!("cannot parse signature {}", path.display()))?;

    println!("UNVERIFIED: signatures were not checked; use `cloister plugin verify` before trusting this.");
    println!("payload type: {}", Excerpt(envelope.payload_type()));
    let key_ids = envelope.key_ids();
    if key_ids.is_empty() {
        println!("signatures:   none");
    }
    for key_id in key_ids {
        let shown = if key_id.is_empty() {
            "(no key id)"
        } else {
            &key_id
        };
        println!("signature by: {}", Excerpt(shown));
    }
    let statement = envelope
        .statement_unverified()
        .with_context(|| format!("cannot read the statement in {}", path.display()))?;
    println!("subject:      {}", Excerpt(&statement.subject_name()));
    println!("sha256:       {}", Excerpt(&statement.sha256_hex()));
    Ok(())
}
