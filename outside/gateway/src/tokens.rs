//! Token checking: the seam where the issuer's verifier plugs in.
//!
//! The gateway asks a [`TokenCheck`] whether the `Authorization` header of a session's first
//! message carries a valid Privacy Pass token (RFC 9577, `PrivateToken token=…`) and, if so,
//! for the 32 bytes that identify the token for double-spending (its nonce). It then spends
//! those bytes once in the [`crate::store::SpentTokens`] store. Verification is stateless;
//! spending is the only state.
//!
//! The production implementation is the issuer crate's verifier
//! ([`cloister_issuer::redeem::TokenVerifier`]: type 2, blind RSA, publicly verifiable, so
//! the gateway needs only the issuer's public key). Some tests use a fake that is clearly
//! named as such and lives only in test code.

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The header is not `PrivateToken token=<base64url>` or the token does not decode.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The token is for another issuer, key or origin, or its authenticator does not verify.
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Verifies tokens. Implementations must be cheap to call concurrently and must not keep
/// per-token state (spending is the gateway's job).
pub trait TokenCheck: Send + Sync {
    /// Checks an `Authorization` header value and returns the token's nonce: the 32 bytes
    /// the gateway spends once.
    fn check(&self, authorization: &str) -> Result<[u8; 32], TokenError>;

    /// The `WWW-Authenticate` value of a 401 (a `PrivateToken` challenge, RFC 9577 section 2.1).
    fn challenge_header(&self) -> String;
}

/// Privacy Pass type-2 tokens of one issuer key, for the gateway's one challenge.
impl TokenCheck for cloister_issuer::redeem::TokenVerifier {
    fn check(&self, authorization: &str) -> Result<[u8; 32], TokenError> {
        self.check_authorization(authorization)
            .map_err(|e| match e {
                cloister_issuer::redeem::VerifyError::Header(h) => {
                    TokenError::Malformed(h.to_string())
                }
                other => TokenError::Invalid(other.to_string()),
            })
    }

    fn challenge_header(&self) -> String {
        self.www_authenticate().to_owned()
    }
}
