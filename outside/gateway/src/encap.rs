//! The gateway's half of OHTTP (RFC 9458 sections 4.3 to 4.4): open an Encapsulated Request,
//! seal the Encapsulated Response.
//!
//! Written on `hpke` (RFC 9180), `aes-gcm`, `chacha20poly1305` and `hkdf` rather than on the
//! `ohttp` crate's `Server`: that one picks the response nonce itself and keeps the HPKE
//! exporter private, so its response path cannot be checked against RFC 9458 Appendix A. Here
//! [`ResponseContext::encapsulate_with_nonce`] takes the nonce as a parameter (production
//! calls [`ResponseContext::encapsulate`], which draws it at random), and the tests check
//! this code byte for byte against the RFC and interoperate with the `ohttp` crate's client.

use std::fmt;

use aes_gcm::aead::{Aead as _, KeyInit};
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, OpModeR};
use zeroize::Zeroizing;

use crate::keys::{
    KeyLookup, KeySet, AEAD_AES_128_GCM, AEAD_CHACHA20_POLY1305, KDF_HKDF_SHA256, KEM_X25519_SHA256,
};

/// The HPKE info label of a request (RFC 9458 section 4.3).
pub const LABEL_REQUEST: &[u8] = b"message/bhttp request";
/// The exporter label of a response (RFC 9458 section 4.4).
pub const LABEL_RESPONSE: &[u8] = b"message/bhttp response";
/// `key_id(8) | kem_id(16) | kdf_id(16) | aead_id(16)`.
pub const HEADER_LEN: usize = 7;
/// The X25519 `enc` length.
pub const ENC_LEN: usize = 32;
/// The AEAD tag length (both AEADs).
pub const TAG_LEN: usize = 16;

/// Why an Encapsulated Request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecapError {
    /// Shorter than a header, `enc` and a tag.
    #[error("an encapsulated request is at least {min} bytes, this one is {0}", min = HEADER_LEN + ENC_LEN + TAG_LEN)]
    Truncated(usize),
    /// No key has this id.
    #[error("key id {0} is not served")]
    UnknownKey(u8),
    /// The key's validity window is not open.
    #[error("key id {0} is outside its validity window")]
    ExpiredKey(u8),
    /// The header names algorithms the key configuration does not offer.
    #[error("key id {id} does not offer KEM {kem:#06x}, KDF {kdf:#06x}, AEAD {aead:#06x}")]
    Unsupported {
        /// Key id.
        id: u8,
        /// KEM id.
        kem: u16,
        /// KDF id.
        kdf: u16,
        /// AEAD id.
        aead: u16,
    },
    /// HPKE could not open the request with this key (wrong key or altered bytes).
    #[error("the request does not decrypt with key id {0}")]
    Decrypt(u8),
}

impl DecapError {
    /// Whether the client should refetch the key configuration (RFC 9458 section 5.3): every
    /// failure after the header parsed.
    pub fn is_key_problem(&self) -> bool {
        !matches!(self, DecapError::Truncated(_))
    }
}

/// Why a response could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncapError {
    /// The nonce has the wrong length for the AEAD.
    #[error("a response nonce for this AEAD is {want} bytes, got {got}")]
    NonceLength {
        /// Required length.
        want: usize,
        /// Given length.
        got: usize,
    },
    /// No randomness for the nonce.
    #[error("no randomness for a response nonce: {0}")]
    Random(String),
    /// The AEAD refused (a response too long for it).
    #[error("the response could not be sealed")]
    Seal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aead {
    Aes128Gcm,
    ChaCha20Poly1305,
}

impl Aead {
    fn key_len(self) -> usize {
        match self {
            Aead::Aes128Gcm => 16,
            Aead::ChaCha20Poly1305 => 32,
        }
    }
    const NONCE_LEN: usize = 12;
}

/// What the gateway needs to seal the response to one request.
pub struct ResponseContext {
    aead: Aead,
    secret: Zeroizing<Vec<u8>>,
    enc: [u8; ENC_LEN],
}

impl fmt::Debug for ResponseContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseContext")
            .field("aead", &self.aead)
            .finish_non_exhaustive()
    }
}

/// An opened request.
#[derive(Debug)]
pub struct Decapsulated {
    /// The key id the request was encapsulated to.
    pub key_id: u8,
    /// The inner request (Binary HTTP).
    pub request: Vec<u8>,
    /// Seals the response.
    pub response: ResponseContext,
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// Opens an Encapsulated Request with the key its first byte names, if that key is valid at
/// `now` (unix seconds).
pub fn decapsulate(
    keys: &KeySet,
    now: u64,
    enc_request: &[u8],
) -> Result<Decapsulated, DecapError> {
    if enc_request.len() < HEADER_LEN + ENC_LEN + TAG_LEN {
        return Err(DecapError::Truncated(enc_request.len()));
    }
    let (header, rest) = enc_request.split_at(HEADER_LEN);
    let (enc, ct) = rest.split_at(ENC_LEN);
    let id = header[0];
    let key = keys.key_for(id, now).map_err(|e| match e {
        KeyLookup::Unknown => DecapError::UnknownKey(id),
        KeyLookup::NotValid => DecapError::ExpiredKey(id),
    })?;
    let (kem, kdf, aead_id) = (
        be16(&header[1..3]),
        be16(&header[3..5]),
        be16(&header[5..7]),
    );
    let aead = match (kem, kdf, aead_id) {
        (KEM_X25519_SHA256, KDF_HKDF_SHA256, AEAD_AES_128_GCM) => Aead::Aes128Gcm,
        (KEM_X25519_SHA256, KDF_HKDF_SHA256, AEAD_CHACHA20_POLY1305) => Aead::ChaCha20Poly1305,
        _ => {
            return Err(DecapError::Unsupported {
                id,
                kem,
                kdf,
                aead: aead_id,
            })
        }
    };
    let mut info = Vec::with_capacity(LABEL_REQUEST.len() + 1 + HEADER_LEN);
    info.extend_from_slice(LABEL_REQUEST);
    info.push(0);
    info.extend_from_slice(header);
    let secret_len = aead.key_len().max(Aead::NONCE_LEN);
    let opened = match aead {
        Aead::Aes128Gcm => open::<hpke::aead::AesGcm128>(key, enc, &info, ct, secret_len),
        Aead::ChaCha20Poly1305 => {
            open::<hpke::aead::ChaCha20Poly1305>(key, enc, &info, ct, secret_len)
        }
    };
    let (request, secret) = opened.ok_or(DecapError::Decrypt(id))?;
    let mut enc_arr = [0u8; ENC_LEN];
    enc_arr.copy_from_slice(enc);
    Ok(Decapsulated {
        key_id: id,
        request,
        response: ResponseContext {
            aead,
            secret,
            enc: enc_arr,
        },
    })
}

/// HPKE base-mode open and the response secret `Export("message/bhttp response", len)`.
fn open<A: hpke::aead::Aead>(
    key: &crate::keys::GatewayKey,
    enc: &[u8],
    info: &[u8],
    ct: &[u8],
    secret_len: usize,
) -> Option<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    let encapped = <X25519HkdfSha256 as hpke::Kem>::EncappedKey::from_bytes(enc).ok()?;
    let mut ctx = hpke::setup_receiver::<A, hpke::kdf::HkdfSha256, X25519HkdfSha256>(
        &OpModeR::Base,
        key.private_key(),
        &encapped,
        info,
    )
    .ok()?;
    let plain = ctx.open(ct, b"").ok()?;
    let mut secret = Zeroizing::new(vec![0u8; secret_len]);
    ctx.export(LABEL_RESPONSE, &mut secret[..]).ok()?;
    Some((plain, secret))
}

impl ResponseContext {
    /// The response nonce length: `max(Nn, Nk)` of the AEAD.
    pub fn nonce_len(&self) -> usize {
        self.aead.key_len().max(Aead::NONCE_LEN)
    }

    /// Seals `response` with a random response nonce.
    pub fn encapsulate(self, response: &[u8]) -> Result<Vec<u8>, EncapError> {
        let mut nonce = vec![0u8; self.nonce_len()];
        getrandom::fill(&mut nonce).map_err(|e| EncapError::Random(e.to_string()))?;
        self.encapsulate_with_nonce(&nonce, response)
    }

    /// Seals `response` with the given response nonce (RFC 9458 section 4.4):
    /// `prk = Extract(enc || nonce, secret)`, `key = Expand(prk, "key", Nk)`,
    /// `iv = Expand(prk, "nonce", Nn)`, result `nonce || Seal(key, iv, "", response)`.
    /// A nonce must never be used twice: production uses [`ResponseContext::encapsulate`].
    pub fn encapsulate_with_nonce(
        self,
        nonce: &[u8],
        response: &[u8],
    ) -> Result<Vec<u8>, EncapError> {
        if nonce.len() != self.nonce_len() {
            return Err(EncapError::NonceLength {
                want: self.nonce_len(),
                got: nonce.len(),
            });
        }
        let mut salt = Vec::with_capacity(ENC_LEN + nonce.len());
        salt.extend_from_slice(&self.enc);
        salt.extend_from_slice(nonce);
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(&salt), &self.secret);
        let mut key = Zeroizing::new(vec![0u8; self.aead.key_len()]);
        let mut iv = [0u8; Aead::NONCE_LEN];
        hk.expand(b"key", &mut key)
            .and_then(|_| hk.expand(b"nonce", &mut iv))
            .map_err(|_| EncapError::Seal)?;
        let sealed = match self.aead {
            Aead::Aes128Gcm => {
                let c = aes_gcm::Aes128Gcm::new_from_slice(&key).map_err(|_| EncapError::Seal)?;
                c.encrypt(&iv.into(), response)
            }
            Aead::ChaCha20Poly1305 => {
                let c = chacha20poly1305::ChaCha20Poly1305::new_from_slice(&key)
                    .map_err(|_| EncapError::Seal)?;
                c.encrypt(&iv.into(), response)
            }
        }
        .map_err(|_| EncapError::Seal)?;
        let mut out = Vec::with_capacity(nonce.len() + sealed.len());
        out.extend_from_slice(nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }
}
