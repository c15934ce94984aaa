//! Issuance (RFC 9578 section 6.2): a `TokenResponse` for a `TokenRequest`.
//!
//! ```text
//! struct { uint16_t token_type = 0x0002; uint8_t truncated_token_key_id; uint8_t blinded_msg[Nk]; } TokenRequest;
//! struct { uint8_t blind_sig[Nk]; } TokenResponse;
//! ```
//!
//! `blind_sig = rsabssa_blind_sign(skI, blinded_msg)` (RFC 9474), computed by
//! `blind-rsa-signatures` (the crate `privacypass` issues with; its `IssuerServer` does the
//! same checks and call behind an async key-store interface that would clone the secret key
//! per request). The result is deterministic: the RFC vectors reproduce byte for byte.
//!
//! [`Issuer::check`] validates a request without signing, so that a caller can refuse it
//! before spending anything (the service's rate limit). The issuer keeps no state: it cannot
//! tell two requests of one client apart, and what it signs is blinded.

use crate::keys::IssuerKey;
use crate::{NK, TOKEN_REQUEST_LEN, TOKEN_TYPE};

/// Why a token request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// Too short to hold a token type and a truncated key id.
    #[error("the token request is {0} bytes, too short to be one (at least 3)")]
    Truncated(usize),
    /// A token type other than 2.
    #[error("the token request is for token type {0:#06x}; this issuer issues only type 0x0002 (blind RSA 2048)")]
    WrongTokenType(u16),
    /// Not the size of a type-2 request.
    #[error("the token request is {0} bytes; a type-2 request is {TOKEN_REQUEST_LEN}")]
    Length(usize),
    /// The truncated key id is not this issuer's key's.
    #[error("the token request is for a key whose id ends in {found:#04x}; this issuer's key id ends in {expected:#04x} (refetch the issuer directory)")]
    UnknownKey {
        /// The request's truncated key id.
        found: u8,
        /// This issuer's.
        expected: u8,
    },
    /// The blinded message is not an integer below the modulus.
    #[error("the token request's blinded message is not below the key's modulus")]
    BadBlindedMessage,
    /// Signing failed (not the request's fault).
    #[error("blind signing failed: {0}")]
    Signing(String),
}

impl IssueError {
    /// Whether the request itself is at fault (as opposed to the issuer).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, IssueError::Signing(_))
    }
}

/// A validated request: its blinded message.
#[derive(Clone, Copy)]
pub struct CheckedRequest<'a> {
    blinded_msg: &'a [u8],
}

/// Issues tokens with one key.
#[derive(Debug)]
pub struct Issuer {
    key: IssuerKey,
    modulus: Vec<u8>,
}

impl Issuer {
    /// An issuer signing with `key`.
    pub fn new(key: IssuerKey) -> Self {
        let n = key.public().rsa().components().n();
        // Big-endian, exactly Nk bytes (the key is 2048 bits, checked when it was loaded).
        let modulus = n[n.len().saturating_sub(NK)..].to_vec();
        Self { key, modulus }
    }

    /// The key.
    pub fn key(&self) -> &IssuerKey {
        &self.key
    }

    /// Validates a `TokenRequest`: type 2, this issuer's truncated key id, `Nk` bytes of
    /// blinded message below the modulus. Nothing is signed.
    pub fn check<'a>(&self, request: &'a [u8]) -> Result<CheckedRequest<'a>, IssueError> {
        if request.len() < 3 {
            return Err(IssueError::Truncated(request.len()));
        }
        let token_type = u16::from_be_bytes([request[0], request[1]]);
        if token_type != TOKEN_TYPE {
            return Err(IssueError::WrongTokenType(token_type));
        }
        if request.len() != TOKEN_REQUEST_LEN {
            return Err(IssueError::Length(request.len()));
        }
        let expected = self.key.public().truncated_key_id();
        if request[2] != expected {
            return Err(IssueError::UnknownKey {
                found: request[2],
                expected,
            });
        }
        let blinded_msg = &request[3..];
        // Equal-length big-endian byte strings compare as the integers they encode.
        if blinded_msg >= self.modulus.as_slice() {
            return Err(IssueError::BadBlindedMessage);
        }
        Ok(CheckedRequest { blinded_msg })
    }

    /// Signs a checked request: the `TokenResponse` (`Nk` bytes).
    pub fn sign(&self, request: CheckedRequest<'_>) -> Result<Vec<u8>, IssueError> {
        let sig = self
            .key
            .secret()
            .blind_sign(request.blinded_msg)
            .map_err(|e| IssueError::Signing(e.to_string()))?;
        if sig.0.len() != NK {
            return Err(IssueError::Signing(format!(
                "the blind signature is {} bytes, not {NK}",
                sig.0.len()
            )));
        }
        Ok(sig.0)
    }

    /// [`Issuer::check`] then [`Issuer::sign`]: the `TokenResponse` for `request`.
    pub fn issue(&self, request: &[u8]) -> Result<Vec<u8>, IssueError> {
        self.sign(self.check(request)?)
    }
}
