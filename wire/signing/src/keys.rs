//! Ed25519 signing and public keys, and their PEM encodings.

use std::fmt;

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::error::KeyError;

/// An Ed25519 private key used to sign releases.
///
/// The secret is zeroized on drop. `Debug` shows only the key id.
pub struct SigningKey {
    inner: ed25519_dalek::SigningKey,
}

impl SigningKey {
    /// Generates a fresh key from the operating system's random number generator.
    pub fn generate() -> Result<Self, KeyError> {
        let mut secret = [0u8; ed25519_dalek::SECRET_KEY_LENGTH];
        let filled = getrandom::fill(&mut secret);
        let result = match filled {
            Ok(()) => Ok(Self {
                inner: ed25519_dalek::SigningKey::from_bytes(&secret),
            }),
            Err(e) => Err(KeyError::Randomness {
                reason: e.to_string(),
            }),
        };
        secret.zeroize();
        result
    }

    /// Decodes a PEM-encoded PKCS#8 (`-----BEGIN PRIVATE KEY-----`) Ed25519 key.
    ///
    /// If the document also carries the public key, it must match the private key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map(|inner| Self { inner })
            .map_err(|e| KeyError::PrivateKeyPem {
                reason: e.to_string(),
            })
    }

    /// Encodes the key as PEM PKCS#8 (v2, including the public key), LF line endings.
    ///
    /// The returned string is zeroized when dropped.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        self.inner
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError::Encode {
                what: "private key",
                reason: e.to_string(),
            })
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            inner: self.inner.verifying_key(),
        }
    }

    pub(crate) fn dalek(&self) -> &ed25519_dalek::SigningKey {
        &self.inner
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.public_key().key_id())
            .finish_non_exhaustive()
    }
}

/// An Ed25519 public key that release signatures are checked against.
///
/// `Debug` shows the key id only.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey {
    inner: ed25519_dalek::VerifyingKey,
}

impl PublicKey {
    /// Decodes a PEM-encoded SPKI (`-----BEGIN PUBLIC KEY-----`) Ed25519 key.
    pub fn from_spki_pem(pem: &str) -> Result<Self, KeyError> {
        ed25519_dalek::VerifyingKey::from_public_key_pem(pem)
            .map(|inner| Self { inner })
            .map_err(|e| KeyError::PublicKeyPem {
                reason: e.to_string(),
            })
    }

    /// Encodes the key as PEM SPKI, LF line endings.
    pub fn to_spki_pem(&self) -> Result<String, KeyError> {
        self.inner
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError::Encode {
                what: "public key",
                reason: e.to_string(),
            })
    }

    /// The key from its raw 32-byte encoding; fails if the bytes are not a curve point.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, KeyError> {
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(|inner| Self { inner })
            .map_err(|e| KeyError::PublicKeyBytes {
                reason: e.to_string(),
            })
    }

    /// The raw 32-byte encoding.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.inner.as_bytes()
    }

    /// The key id: lowercase hex SHA-256 of the raw 32-byte key (64 characters).
    pub fn key_id(&self) -> String {
        hex::encode(Sha256::digest(self.inner.as_bytes()))
    }

    pub(crate) fn dalek(&self) -> &ed25519_dalek::VerifyingKey {
        &self.inner
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("key_id", &self.key_id())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trips() -> Result<(), KeyError> {
        let key = SigningKey::generate()?;
        let pem = key.to_pkcs8_pem()?;
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let again = SigningKey::from_pkcs8_pem(&pem)?;
        assert_eq!(again.public_key(), key.public_key());

        let pub_pem = key.public_key().to_spki_pem()?;
        assert!(pub_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert_eq!(PublicKey::from_spki_pem(&pub_pem)?, key.public_key());
        Ok(())
    }

    #[test]
    fn pem_rejects_wrong_kind() -> Result<(), KeyError> {
        let key = SigningKey::generate()?;
        let pub_pem = key.public_key().to_spki_pem()?;
        assert!(matches!(
            SigningKey::from_pkcs8_pem(&pub_pem),
            Err(KeyError::PrivateKeyPem { .. })
        ));
        let priv_pem = key.to_pkcs8_pem()?;
        assert!(matches!(
            PublicKey::from_spki_pem(&priv_pem),
            Err(KeyError::PublicKeyPem { .. })
        ));
        assert!(PublicKey::from_spki_pem("garbage").is_err());
        Ok(())
    }

    #[test]
    fn key_id_is_sha256_of_raw_key() -> Result<(), KeyError> {
        let key = SigningKey::generate()?.public_key();
        let id = key.key_id();
        assert_eq!(id.len(), 64);
        assert_eq!(id, hex::encode(Sha256::digest(key.as_bytes())));
        assert_eq!(PublicKey::from_bytes(*key.as_bytes())?, key);
        let debug = format!("{key:?}");
        assert!(debug.contains(&id));
        Ok(())
    }

    #[test]
    fn debug_does_not_leak_secret() -> Result<(), KeyError> {
        let key = SigningKey::generate()?;
        let debug = format!("{key:?}");
        assert!(!debug.contains(&hex::encode(key.dalek().to_bytes())));
        assert!(debug.contains(&key.public_key().key_id()));
        Ok(())
    }

    #[test]
    fn rfc8032_test_vector_1_key() -> Result<(), KeyError> {
        // RFC 8032 §7.1, TEST 1: secret key -> public key.
        let mut secret = [0u8; 32];
        hex::decode_to_slice(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            &mut secret,
        )
        .map_err(|e| KeyError::PublicKeyBytes {
            reason: e.to_string(),
        })?;
        let key = SigningKey {
            inner: ed25519_dalek::SigningKey::from_bytes(&secret),
        };
        assert_eq!(
            hex::encode(key.public_key().as_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        Ok(())
    }
}
