//! The gateway's OHTTP key configurations (RFC 9458 section 3), derived from one seed.
//!
//! Every configured key id has a validity window (`not_before..not_after`, unix seconds); several
//! are live at once so that keys rotate without breaking clients that hold the previous
//! configuration. The X25519 private key of id `k` is `DeriveKeyPair(IKM)` (RFC 9180 section
//! 7.1.3) with `IKM = HKDF-SHA256(salt = "", ikm = seed, info = "cloister/ohttp-key/v1" || k)`
//! (32 bytes), so every replica with the same seed serves the same configurations. The seed
//! file is 32 random bytes (`cloister-gateway keygen`).
//!
//! Each configuration offers the suites HKDF-SHA256 with AES-128-GCM and with
//! ChaCha20-Poly1305 (the RFC 9458 Appendix A configuration's suites).

use std::fmt;
use std::path::Path;

use hpke::kem::{Kem as _, X25519HkdfSha256};
use hpke::{Deserializable, Serializable};
use zeroize::Zeroizing;

/// The HKDF info prefix of a key id's IKM.
pub const KEY_INFO: &[u8] = b"cloister/ohttp-key/v1";
/// The seed's length in bytes.
pub const SEED_LEN: usize = 32;
/// `DHKEM(X25519, HKDF-SHA256)`.
pub const KEM_X25519_SHA256: u16 = 0x0020;
/// `HKDF-SHA256`.
pub const KDF_HKDF_SHA256: u16 = 0x0001;
/// `AES-128-GCM`.
pub const AEAD_AES_128_GCM: u16 = 0x0001;
/// `ChaCha20Poly1305`.
pub const AEAD_CHACHA20_POLY1305: u16 = 0x0003;
/// The suites every configuration offers, in order: (KDF, AEAD).
pub const SUITES: [(u16, u16); 2] = [
    (KDF_HKDF_SHA256, AEAD_AES_128_GCM),
    (KDF_HKDF_SHA256, AEAD_CHACHA20_POLY1305),
];

/// Why keys could not be made or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The seed file could not be read or created.
    #[error("seed file {path}: {why}")]
    SeedFile {
        /// The file.
        path: String,
        /// What went wrong.
        why: String,
    },
    /// The seed is not 32 bytes.
    #[error("a seed is {SEED_LEN} bytes, the file has {0}")]
    SeedLength(usize),
    /// No randomness for a new seed.
    #[error("no randomness for a new seed: {0}")]
    Random(String),
    /// A key list item does not parse.
    #[error("key spec {item:?}: {why} (expected ID:NOT_BEFORE:NOT_AFTER, unix seconds, e.g. 1:1700000000:1800000000)")]
    Spec {
        /// The offending item.
        item: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The same key id appears twice.
    #[error("key id {0} is configured twice")]
    DuplicateId(u8),
    /// No key configured.
    #[error("no key configured")]
    NoKeys,
    /// A secret key is not a valid X25519 key.
    #[error("not an X25519 private key")]
    BadSecret,
}

/// The 32-byte secret all key pairs derive from. Its `Debug` form hides it.
pub struct Seed(Zeroizing<[u8; SEED_LEN]>);

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(..)")
    }
}

impl Seed {
    /// A seed from its bytes.
    pub fn from_bytes(bytes: [u8; SEED_LEN]) -> Seed {
        Seed(Zeroizing::new(bytes))
    }

    /// A fresh random seed.
    pub fn generate() -> Result<Seed, KeyError> {
        let mut b = Zeroizing::new([0u8; SEED_LEN]);
        getrandom::fill(&mut b[..]).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Seed(b))
    }

    /// Reads a seed file (exactly 32 bytes).
    pub fn read(path: &Path) -> Result<Seed, KeyError> {
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| KeyError::SeedFile {
            path: path.display().to_string(),
            why: e.to_string(),
        })?);
        let arr: [u8; SEED_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::SeedLength(bytes.len()))?;
        Ok(Seed::from_bytes(arr))
    }

    /// Writes the seed to a new file (mode 0600; it must not exist) and syncs it.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let err = |e: std::io::Error| KeyError::SeedFile {
            path: path.display().to_string(),
            why: e.to_string(),
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(err)?;
        f.write_all(&self.0[..]).map_err(err)?;
        f.sync_all().map_err(err)
    }

    /// The IKM for `DeriveKeyPair` of key id `key_id` (secret; public for cross-checks
    /// against other RFC 9180 implementations).
    pub fn key_ikm(&self, key_id: u8) -> Zeroizing<[u8; 32]> {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(None, &self.0[..]);
        let mut out = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's limit of 255 * 32: expand cannot fail.
        let _ = hk.expand_multi_info(&[KEY_INFO, &[key_id]], &mut out[..]);
        out
    }
}

/// A key id and its validity window (unix seconds, `not_before <= t < not_after`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    /// The key id (byte 0 of every request encapsulated to it).
    pub id: u8,
    /// First second the key is served and accepted.
    pub not_before: u64,
    /// First second it no longer is.
    pub not_after: u64,
}

impl KeySpec {
    /// Parses `ID:NOT_BEFORE:NOT_AFTER[,ID:NOT_BEFORE:NOT_AFTER…]`.
    pub fn parse_list(text: &str) -> Result<Vec<KeySpec>, KeyError> {
        let mut out: Vec<KeySpec> = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let bad = |why| KeyError::Spec {
                item: item.to_owned(),
                why,
            };
            let mut parts = item.split(':');
            let (Some(id), Some(nb), Some(na), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad("three fields separated by ':'"));
            };
            let spec = KeySpec {
                id: id.parse().map_err(|_| bad("the id is 0..=255"))?,
                not_before: nb.parse().map_err(|_| bad("not_before is unix seconds"))?,
                not_after: na.parse().map_err(|_| bad("not_after is unix seconds"))?,
            };
            if spec.not_after <= spec.not_before {
                return Err(bad("not_after must be later than not_before"));
            }
            if out.iter().any(|k| k.id == spec.id) {
                return Err(KeyError::DuplicateId(spec.id));
            }
            out.push(spec);
        }
        if out.is_empty() {
            return Err(KeyError::NoKeys);
        }
        Ok(out)
    }

    /// Whether the window contains `now`.
    pub fn valid_at(&self, now: u64) -> bool {
        self.not_before <= now && now < self.not_after
    }
}

/// One key pair, its window and its encoded configuration.
pub struct GatewayKey {
    spec: KeySpec,
    sk: <X25519HkdfSha256 as hpke::Kem>::PrivateKey,
    config: Vec<u8>,
}

impl fmt::Debug for GatewayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayKey")
            .field("spec", &self.spec)
            .field("config", &hex::encode(&self.config))
            .finish_non_exhaustive()
    }
}

impl GatewayKey {
    /// The key of `spec.id` derived from `seed`.
    pub fn derive(seed: &Seed, spec: KeySpec) -> GatewayKey {
        let (sk, pk) = X25519HkdfSha256::derive_keypair(&seed.key_ikm(spec.id)[..]);
        GatewayKey {
            config: encode_config(spec.id, &pk.to_bytes()),
            spec,
            sk,
        }
    }

    /// A key from a raw X25519 private key (for test vectors and imports).
    pub fn from_secret(spec: KeySpec, secret: &[u8; 32]) -> Result<GatewayKey, KeyError> {
        let sk = <X25519HkdfSha256 as hpke::Kem>::PrivateKey::from_bytes(secret)
            .map_err(|_| KeyError::BadSecret)?;
        let pk = X25519HkdfSha256::sk_to_pk(&sk);
        Ok(GatewayKey {
            config: encode_config(spec.id, &pk.to_bytes()),
            spec,
            sk,
        })
    }

    /// The key id.
    pub fn id(&self) -> u8 {
        self.spec.id
    }

    /// The key id and window.
    pub fn spec(&self) -> KeySpec {
        self.spec
    }

    /// The encoded key configuration (RFC 9458 section 3.1), without a length prefix.
    pub fn config(&self) -> &[u8] {
        &self.config
    }

    pub(crate) fn private_key(&self) -> &<X25519HkdfSha256 as hpke::Kem>::PrivateKey {
        &self.sk
    }
}

/// `key_id | kem_id | public key | suites length | (kdf_id, aead_id)…`.
fn encode_config(id: u8, pk: &[u8]) -> Vec<u8> {
    let mut c = Vec::with_capacity(3 + pk.len() + 2 + 4 * SUITES.len());
    c.push(id);
    c.extend_from_slice(&KEM_X25519_SHA256.to_be_bytes());
    c.extend_from_slice(pk);
    c.extend_from_slice(&((4 * SUITES.len()) as u16).to_be_bytes());
    for (kdf, aead) in SUITES {
        c.extend_from_slice(&kdf.to_be_bytes());
        c.extend_from_slice(&aead.to_be_bytes());
    }
    c
}

/// Why no key serves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLookup {
    /// No key has this id.
    Unknown,
    /// The key's window is not open now.
    NotValid,
}

/// All configured keys.
#[derive(Debug)]
pub struct KeySet {
    keys: Vec<GatewayKey>,
}

impl KeySet {
    /// Keys for `specs` derived from `seed`.
    pub fn derive(seed: &Seed, specs: &[KeySpec]) -> Result<KeySet, KeyError> {
        KeySet::from_keys(specs.iter().map(|s| GatewayKey::derive(seed, *s)).collect())
    }

    /// A set of keys (ids must be distinct).
    pub fn from_keys(keys: Vec<GatewayKey>) -> Result<KeySet, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::NoKeys);
        }
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.id() == k.id()) {
                return Err(KeyError::DuplicateId(k.id()));
            }
        }
        Ok(KeySet { keys })
    }

    /// The key for `id` if its window is open at `now`.
    pub fn key_for(&self, id: u8, now: u64) -> Result<&GatewayKey, KeyLookup> {
        let k = self
            .keys
            .iter()
            .find(|k| k.id() == id)
            .ok_or(KeyLookup::Unknown)?;
        if k.spec.valid_at(now) {
            Ok(k)
        } else {
            Err(KeyLookup::NotValid)
        }
    }

    /// The `application/ohttp-keys` body (RFC 9540 section 3): each configuration valid at
    /// `now` with a 2-byte length prefix, in configured order.
    pub fn encoded_configs(&self, now: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for k in self.keys.iter().filter(|k| k.spec.valid_at(now)) {
            out.extend_from_slice(&(k.config.len() as u16).to_be_bytes());
            out.extend_from_slice(&k.config);
        }
        out
    }

    /// All keys, valid or not.
    pub fn keys(&self) -> &[GatewayKey] {
        &self.keys
    }
}
