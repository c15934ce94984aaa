//! Redemption, for the gateway (RFC 9577 section 2.2, RFC 9578 section 6.4): the
//! `TokenChallenge` it issues and the check of a type-2 token against it. Pure: no I/O, no
//! state. Double-spend prevention (each nonce once) is the caller's.
//!
//! ```text
//! struct { uint16_t token_type = 0x0002; uint8_t nonce[32]; uint8_t challenge_digest[32];
//!          uint8_t token_key_id[32]; uint8_t authenticator[Nk]; } Token;
//! ```
//!
//! A token is valid when `challenge_digest` = SHA-256 of the challenge the gateway issued,
//! `token_key_id` = SHA-256 of the issuer key's SPKI, and `authenticator` is an
//! RSASSA-PSS (SHA-384, MGF1-SHA-384, salt 48) signature by that key over the first 98
//! bytes. The signature check is `blind-rsa-signatures`' `PublicKey::verify`, the one the
//! `privacypass` crate's `OriginServer` uses.
//!
//! [`header`] formats and parses the `WWW-Authenticate` and `Authorization` values;
//! [`TokenVerifier`] puts the pieces together for a gateway configured with one issuer key
//! and one challenge.

pub mod header;

use privacypass::auth::authenticate::TokenChallenge;
use privacypass::TokenType;
use sha2::{Digest, Sha256};

use crate::keys::IssuerPublicKey;
use crate::{NK, TOKEN_INPUT_LEN, TOKEN_LEN, TOKEN_TYPE};
use cloister_display::Excerpt;

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedeemError {
    /// Too short to hold a token type.
    #[error("the token is {0} bytes, too short to be one")]
    Truncated(usize),
    /// Not a type-2 token.
    #[error("the token is of type {0:#06x}; only type 0x0002 (blind RSA 2048) is accepted")]
    WrongTokenType(u16),
    /// Not the size of a type-2 token.
    #[error("the token is {0} bytes; a type-2 token is {TOKEN_LEN}")]
    Length(usize),
    /// Made for another challenge.
    #[error("the token was made for another challenge (its challenge digest differs)")]
    ChallengeMismatch,
    /// Made for another issuer key.
    #[error("the token names another issuer key (its token_key_id differs)")]
    KeyMismatch,
    /// The authenticator does not verify.
    #[error("the token's authenticator is not a valid signature by the issuer key")]
    BadAuthenticator,
}

/// Verifies a type-2 token for the challenge whose SHA-256 is `challenge_digest` against
/// the issuer key `key`; returns its nonce (what a double-spend store records).
pub fn verify_token(
    token: &[u8],
    challenge_digest: &[u8; 32],
    key: &IssuerPublicKey,
) -> Result<[u8; 32], RedeemError> {
    if token.len() < 2 {
        return Err(RedeemError::Truncated(token.len()));
    }
    let token_type = u16::from_be_bytes([token[0], token[1]]);
    if token_type != TOKEN_TYPE {
        return Err(RedeemError::WrongTokenType(token_type));
    }
    if token.len() != TOKEN_LEN {
        return Err(RedeemError::Length(token.len()));
    }
    let mut nonce = [0u8; 32];
    nonce.copy_from_slice(&token[2..34]);
    if &token[34..66] != challenge_digest {
        return Err(RedeemError::ChallengeMismatch);
    }
    if token[66..98] != key.token_key_id() {
        return Err(RedeemError::KeyMismatch);
    }
    let authenticator = blind_rsa_signatures::Signature(token[TOKEN_INPUT_LEN..].to_vec());
    debug_assert_eq!(authenticator.0.len(), NK);
    key.rsa()
        .verify(&authenticator, None, &token[..TOKEN_INPUT_LEN])
        .map_err(|_| RedeemError::BadAuthenticator)?;
    Ok(nonce)
}

/// Why an `Authorization` value is refused: its syntax, or its token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a `PrivateToken token=…` value (malformed).
    #[error(transparent)]
    Header(#[from] header::HeaderError),
    /// A token that is not valid for this issuer key and challenge.
    #[error(transparent)]
    Token(#[from] RedeemError),
}

/// A gateway's token check: one issuer key, the one challenge the gateway issues (cross-origin
/// or for its origins, no redemption context), and the `WWW-Authenticate` value announcing it.
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    key: IssuerPublicKey,
    challenge: Challenge,
    www_authenticate: String,
}

impl TokenVerifier {
    /// A verifier of tokens for `challenge` by `key`.
    pub fn new(key: IssuerPublicKey, challenge: Challenge) -> Self {
        let www_authenticate =
            header::format_www_authenticate(challenge.as_bytes(), Some(key.spki()), None);
        Self {
            key,
            challenge,
            www_authenticate,
        }
    }

    /// The issuer key.
    pub fn key(&self) -> &IssuerPublicKey {
        &self.key
    }

    /// The challenge.
    pub fn challenge(&self) -> &Challenge {
        &self.challenge
    }

    /// Checks an `Authorization` header value; returns the token's nonce (to be spent once).
    pub fn check_authorization(&self, value: &str) -> Result<[u8; 32], VerifyError> {
        let token = header::parse_authorization(value)?;
        Ok(verify_token(&token, &self.challenge.digest(), &self.key)?)
    }

    /// `PrivateToken challenge="…", token-key="…"`: the `WWW-Authenticate` value of a 401.
    pub fn www_authenticate(&self) -> &str {
        &self.www_authenticate
    }
}

/// SHA-256 of a serialized `TokenChallenge` (a token's `challenge_digest`).
pub fn challenge_digest(challenge: &[u8]) -> [u8; 32] {
    Sha256::digest(challenge).into()
}

/// Why a challenge cannot be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    /// A name that is not an RFC 9577 server name.
    #[error("{} is not a server name (ASCII host[:port], no userinfo, commas or spaces)", Excerpt(.0))]
    Name(String),
    /// Not a type-2 challenge.
    #[error("the challenge is of token type {0:#06x}, not 0x0002")]
    WrongTokenType(u16),
    /// Does not parse as a `TokenChallenge`.
    #[error("the challenge is not a well-formed TokenChallenge: {0}")]
    Malformed(&'static str),
}

/// A type-2 `TokenChallenge` (RFC 9577 section 2.1.1) and its digest.
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    bytes: Vec<u8>,
    digest: [u8; 32],
    inner: TokenChallenge,
}

impl std::fmt::Debug for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Challenge(issuer {:?}, origins {:?}, {} context)",
            self.issuer_name(),
            self.origin_info(),
            if self.redemption_context().is_some() {
                "with"
            } else {
                "no"
            }
        )
    }
}

fn is_server_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 1024
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        })
}

impl Challenge {
    /// The challenge a gateway issues: type 2, `issuer_name`, an empty redemption context
    /// (tokens can be fetched ahead of time and are not bound to a session, so issuance and
    /// redemption times are unlinked) and `origin_info` (the origins that accept the token;
    /// empty for any).
    pub fn new(issuer_name: &str, origin_info: &[&str]) -> Result<Self, ChallengeError> {
        for name in std::iter::once(&issuer_name).chain(origin_info) {
            if !is_server_name(name) {
                return Err(ChallengeError::Name((*name).to_owned()));
            }
        }
        let origins: Vec<String> = origin_info.iter().map(|s| (*s).to_owned()).collect();
        let inner = TokenChallenge::new(TokenType::Public, issuer_name, None, &origins);
        let bytes = inner
            .serialize()
            .map_err(|_| ChallengeError::Malformed("cannot be encoded"))?;
        Ok(Self {
            digest: challenge_digest(&bytes),
            bytes,
            inner,
        })
    }

    /// Parses a serialized `TokenChallenge`: type 2, a redemption context of 0 or 32 bytes,
    /// ASCII names, nothing after it.
    pub fn parse(bytes: &[u8]) -> Result<Self, ChallengeError> {
        if bytes.len() < 2 {
            return Err(ChallengeError::Malformed("shorter than a token type"));
        }
        let token_type = u16::from_be_bytes([bytes[0], bytes[1]]);
        if token_type != TOKEN_TYPE {
            return Err(ChallengeError::WrongTokenType(token_type));
        }
        // issuer_name<1..2^16-1>, then redemption_context<0..32> (0 or 32 bytes).
        let name_len = bytes
            .get(2..4)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or(ChallengeError::Malformed("truncated issuer_name"))?;
        if name_len == 0 {
            return Err(ChallengeError::Malformed("empty issuer_name"));
        }
        match bytes.get(4 + name_len) {
            Some(0) | Some(32) => {}
            Some(_) => {
                return Err(ChallengeError::Malformed(
                    "redemption_context is neither 0 nor 32 bytes",
                ))
            }
            None => return Err(ChallengeError::Malformed("truncated")),
        }
        let inner = TokenChallenge::deserialize(bytes)
            .map_err(|_| ChallengeError::Malformed("truncated or inconsistent lengths"))?;
        if inner.serialize().ok().as_deref() != Some(bytes) {
            return Err(ChallengeError::Malformed("bytes after the challenge"));
        }
        let this = Self {
            bytes: bytes.to_vec(),
            digest: challenge_digest(bytes),
            inner,
        };
        if !this.issuer_name().bytes().all(|b| b.is_ascii_graphic())
            || !this
                .origin_info()
                .iter()
                .all(|o| o.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(ChallengeError::Malformed("a name is not printable ASCII"));
        }
        Ok(this)
    }

    /// The serialized challenge (what `challenge=` carries, base64url).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// SHA-256 of the serialized challenge (what a token for it carries).
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// The issuer's name.
    pub fn issuer_name(&self) -> String {
        self.inner.issuer_name()
    }

    /// The origins the token is valid for (empty: any).
    pub fn origin_info(&self) -> Vec<String> {
        let o = self.inner.origin_info();
        if o.len() == 1 && o[0].is_empty() {
            Vec::new()
        } else {
            o
        }
    }

    /// The redemption context, if any.
    pub fn redemption_context(&self) -> Option<[u8; 32]> {
        self.inner.redemption_context()
    }

    /// The `privacypass` crate's form (what its `TokenRequest::new` takes).
    pub fn to_privacypass(&self) -> &TokenChallenge {
        &self.inner
    }
}
