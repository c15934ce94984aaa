//! The issuer's key (RFC 9578 section 6.5): an RSA-2048 key pair for blind RSA
//! (RSABSSA-SHA384-PSS-Deterministic). Its public key is published as a DER
//! SubjectPublicKeyInfo with the `id-RSASSA-PSS` OID and parameters SHA-384, MGF1-SHA-384,
//! salt length 48; `token_key_id` = SHA-256 of that SPKI, and a token request carries its
//! last byte (the truncated key id).
//!
//! On disk (`keygen --out DIR`):
//!
//! | file | content | mode |
//! |---|---|---|
//! | [`KEY_FILE`] | the secret key, PKCS#8 PEM | `0600`, refused if group/other can read it |
//! | [`PUBLIC_FILE`] | the key's directory entry (`token-type`, `token-key`, `not-before`) | `0644` |
//!
//! The public file is what a gateway is configured with; [`IssuerKey::load`] checks that it
//! matches the secret key.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::directory::TokenKey;
use crate::{RsaPublicKey, RsaSecretKey, NK, TOKEN_TYPE};
use cloister_display::Excerpt;

/// The modulus size of type-2 keys (`Nk` = 256 bytes).
pub const MODULUS_BITS: usize = NK * 8;
/// The secret key's file name in a key directory.
pub const KEY_FILE: &str = "issuer-key.pem";
/// The public key's file name in a key directory (its issuer-directory entry, JSON).
pub const PUBLIC_FILE: &str = "token-key.json";
/// Largest SPKI accepted (a 2048-bit RSASSA-PSS SPKI is 342 bytes).
const MAX_SPKI_BYTES: usize = 1024;

/// Why a key is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The public key is not a 2048-bit RSA key in the RSASSA-PSS SPKI form RFC 9578 requires.
    #[error("the token key is not a 2048-bit RSASSA-PSS (SHA-384, salt 48) SPKI: {0}")]
    Spki(&'static str),
    /// The secret key does not parse or is not a valid 2048-bit RSA key.
    #[error("the issuer's secret key is unusable: {0}")]
    Secret(String),
    /// Key generation failed.
    #[error("cannot generate an RSA-{MODULUS_BITS} key: {0}")]
    Generate(String),
    /// A key file could not be read or written.
    #[error("{}: {}", .0.display(), .1)]
    Io(PathBuf, String),
    /// The key directory is inconsistent or unsafe.
    #[error("{}: {}", .0.display(), .1)]
    Files(PathBuf, String),
}

/// The issuer's public key as redeemers and clients use it: its SPKI, `token_key_id` and
/// the parsed RSA key.
#[derive(Clone)]
pub struct IssuerPublicKey {
    spki: Vec<u8>,
    key_id: [u8; 32],
    key: RsaPublicKey,
}

impl IssuerPublicKey {
    /// Parses a DER SPKI. Only the exact RFC 9578 encoding is accepted: `id-RSASSA-PSS` with
    /// SHA-384 / MGF1-SHA-384 / salt 48 and a 2048-bit modulus, re-encoding to the same bytes
    /// (so `token_key_id`, the hash of these bytes, is the one clients compute).
    pub fn from_spki(spki: &[u8]) -> Result<Self, KeyError> {
        if spki.len() > MAX_SPKI_BYTES {
            return Err(KeyError::Spki("too long"));
        }
        let key = RsaPublicKey::from_spki(spki)
            .map_err(|_| KeyError::Spki("not an RSA SubjectPublicKeyInfo"))?;
        let this = Self::from_rsa(key)?;
        if this.spki != spki {
            return Err(KeyError::Spki(
                "the algorithm parameters are not id-RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48",
            ));
        }
        Ok(this)
    }

    /// Parses the base64url (with padding) form used in directories and `token-key=`.
    pub fn from_base64url(text: &str) -> Result<Self, KeyError> {
        if text.len() > MAX_SPKI_BYTES * 2 {
            return Err(KeyError::Spki("too long"));
        }
        let spki = base64::engine::general_purpose::URL_SAFE
            .decode(text.trim())
            .map_err(|_| KeyError::Spki("not base64url with padding"))?;
        Self::from_spki(&spki)
    }

    fn from_rsa(key: RsaPublicKey) -> Result<Self, KeyError> {
        let modulus = key.components().n();
        let significant = modulus.iter().skip_while(|b| **b == 0).count();
        if significant != NK
            || modulus
                .iter()
                .find(|b| **b != 0)
                .is_none_or(|b| b & 0x80 == 0)
        {
            return Err(KeyError::Spki("the modulus is not 2048 bits"));
        }
        let spki = key
            .to_spki()
            .map_err(|_| KeyError::Spki("cannot encode the key"))?;
        let key_id = Sha256::digest(&spki).into();
        Ok(Self { spki, key_id, key })
    }

    /// The DER SPKI (the `token-key`).
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// The SPKI as base64url with padding (directory `token-key`, `token-key=` parameter).
    pub fn to_base64url(&self) -> String {
        base64::engine::general_purpose::URL_SAFE.encode(&self.spki)
    }

    /// `token_key_id` = SHA-256(SPKI).
    pub fn token_key_id(&self) -> [u8; 32] {
        self.key_id
    }

    /// The last byte of `token_key_id`, which a `TokenRequest` carries.
    pub fn truncated_key_id(&self) -> u8 {
        self.key_id[31]
    }

    /// The RSA public key (for the `privacypass` client and signature verification).
    pub fn rsa(&self) -> &RsaPublicKey {
        &self.key
    }

    /// The key's entry in an issuer directory.
    pub fn directory_entry(&self, not_before: Option<u64>) -> TokenKey {
        TokenKey {
            token_type: u64::from(TOKEN_TYPE),
            token_key: self.to_base64url(),
            not_before,
        }
    }
}

impl PartialEq for IssuerPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki == other.spki
    }
}

impl Eq for IssuerPublicKey {}

impl fmt::Debug for IssuerPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IssuerPublicKey({})", hex::encode(self.key_id))
    }
}

/// Reads a public key file ([`PUBLIC_FILE`], the key's directory entry): the key and its
/// `not-before`. This is how a gateway is configured with the issuer's key.
pub fn load_public(path: &Path) -> Result<(IssuerPublicKey, Option<u64>), KeyError> {
    let text = std::fs::read(path)
        .map_err(|e| KeyError::Io(path.to_owned(), format!("cannot read: {e}")))?;
    let entry: TokenKey = serde_json::from_slice(&text).map_err(|e| {
        KeyError::Files(
            path.to_owned(),
            format!("not a token key entry: {}", Excerpt(&e.to_string())),
        )
    })?;
    if entry.token_type != u64::from(TOKEN_TYPE) {
        return Err(KeyError::Files(
            path.to_owned(),
            format!("token type {} is not 2", entry.token_type),
        ));
    }
    let key = IssuerPublicKey::from_base64url(&entry.token_key)
        .map_err(|e| KeyError::Files(path.to_owned(), e.to_string()))?;
    Ok((key, entry.not_before))
}

/// The issuer's key pair and the time from which it is used.
pub struct IssuerKey {
    secret: RsaSecretKey,
    public: IssuerPublicKey,
    not_before: u64,
}

/// Never prints the secret key.
impl fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IssuerKey({:?}, not before {})",
            self.public, self.not_before
        )
    }
}

impl IssuerKey {
    /// A fresh RSA-2048 key pair (the randomness is the thread-local CSPRNG that
    /// `blind-rsa-signatures` uses, seeded from the operating system), used from `not_before`.
    pub fn generate(not_before: u64) -> Result<Self, KeyError> {
        let pair = blind_rsa_signatures::KeyPair::generate(
            &mut blind_rsa_signatures::DefaultRng,
            MODULUS_BITS,
        )
        .map_err(|e| KeyError::Generate(e.to_string()))?;
        Self::from_secret(pair.sk, not_before)
    }

    /// A key from its PKCS#8 (or PKCS#1) PEM.
    pub fn from_pem(pem: &str, not_before: u64) -> Result<Self, KeyError> {
        let secret = RsaSecretKey::from_pem(pem)
            .map_err(|e| KeyError::Secret(format!("not an RSA private key in PEM ({e})")))?;
        Self::from_secret(secret, not_before)
    }

    fn from_secret(secret: RsaSecretKey, not_before: u64) -> Result<Self, KeyError> {
        let public = secret
            .public_key()
            .map_err(|e| KeyError::Secret(e.to_string()))
            .and_then(|pk| {
                IssuerPublicKey::from_rsa(pk).map_err(|e| KeyError::Secret(e.to_string()))
            })?;
        Ok(Self {
            secret,
            public,
            not_before,
        })
    }

    /// The secret key as PKCS#8 PEM (wiped from memory when dropped).
    pub fn to_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        self.secret
            .to_pem()
            .map(Zeroizing::new)
            .map_err(|e| KeyError::Secret(format!("cannot encode the key ({e})")))
    }

    /// The public key.
    pub fn public(&self) -> &IssuerPublicKey {
        &self.public
    }

    /// From when (UNIX seconds) the key is used.
    pub fn not_before(&self) -> u64 {
        self.not_before
    }

    pub(crate) fn secret(&self) -> &RsaSecretKey {
        &self.secret
    }

    /// Writes the key directory: [`KEY_FILE`] (mode `0600`, must not exist) and
    /// [`PUBLIC_FILE`]. `dir` is created (mode `0700`) if missing.
    pub fn save(&self, dir: &Path) -> Result<(), KeyError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| KeyError::Io(dir.to_owned(), format!("cannot create: {e}")))?;
        }
        let write = |name: &str, mode: u32, bytes: &[u8]| -> Result<(), KeyError> {
            let path = dir.join(name);
            let io =
                |what: &str, e: std::io::Error| KeyError::Io(path.clone(), format!("{what}: {e}"));
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&path)
                .map_err(|e| io("cannot create (it must not exist)", e))?;
            f.write_all(bytes)
                .and_then(|_| f.sync_all())
                .map_err(|e| io("cannot write", e))
        };
        let pem = self.to_pem()?;
        write(KEY_FILE, 0o600, pem.as_bytes())?;
        let mut public =
            serde_json::to_vec_pretty(&self.public.directory_entry(Some(self.not_before)))
                .map_err(|e| KeyError::Io(dir.join(PUBLIC_FILE), e.to_string()))?;
        public.push(b'\n');
        write(PUBLIC_FILE, 0o644, &public)
    }

    /// Reads a key directory written by [`IssuerKey::save`], refusing a secret key file that
    /// group or others can read and a public file that does not match the secret key.
    pub fn load(dir: &Path) -> Result<Self, KeyError> {
        use std::os::unix::fs::PermissionsExt;
        let key_path = dir.join(KEY_FILE);
        let meta = std::fs::metadata(&key_path)
            .map_err(|e| KeyError::Io(key_path.clone(), format!("cannot read: {e}")))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(KeyError::Files(
                key_path,
                format!(
                    "mode {:o} lets group or others read the secret key; chmod 600 it",
                    meta.permissions().mode() & 0o777
                ),
            ));
        }
        let pem = Zeroizing::new(
            std::fs::read_to_string(&key_path)
                .map_err(|e| KeyError::Io(key_path.clone(), format!("cannot read: {e}")))?,
        );
        let pub_path = dir.join(PUBLIC_FILE);
        let text = std::fs::read(&pub_path)
            .map_err(|e| KeyError::Io(pub_path.clone(), format!("cannot read: {e}")))?;
        let entry: TokenKey = serde_json::from_slice(&text).map_err(|e| {
            KeyError::Files(
                pub_path.clone(),
                format!("not a token key entry: {}", Excerpt(&e.to_string())),
            )
        })?;
        let key = Self::from_pem(&pem, entry.not_before.unwrap_or(0))?;
        if entry.token_type != u64::from(TOKEN_TYPE) || entry.token_key != key.public.to_base64url()
        {
            return Err(KeyError::Files(
                pub_path,
                format!("does not match the secret key in {KEY_FILE}"),
            ));
        }
        Ok(key)
    }
}
