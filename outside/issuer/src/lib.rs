//! The Cloister Privacy Pass issuer: anonymous, unlinkable tokens (RFC 9576 architecture,
//! RFC 9577 HTTP authentication scheme, RFC 9578 issuance) that let the gateway admit a
//! client without learning which account it belongs to.
//!
//! ```text
//! client --(Bearer API key, TokenRequest)--> issuer --(TokenResponse)--> client
//! client --(OHTTP: Authorization: PrivateToken token=…)--> gateway (verify_token)
//! ```
//!
//! Only **publicly verifiable tokens** (token type `0x0002`, blind RSA 2048,
//! RSABSSA-SHA384-PSS-Deterministic) are issued: the gateway verifies them with the issuer's
//! public key alone, so it never holds the issuer's secret key. (Privately verifiable type-1
//! tokens would need the secret key at every redemption point.)
//!
//! - [`keys`]: the issuer's RSA key, its SPKI (`id-RSASSA-PSS`) and `token_key_id`.
//! - [`issuer`]: a `TokenResponse` for a `TokenRequest`, bytes in, bytes out.
//! - [`redeem`]: for the gateway — [`redeem::verify_token`], the `TokenChallenge` it issues
//!   and the `Authorization` / `WWW-Authenticate` header values ([`redeem::header`]).
//! - [`directory`]: the issuer directory (RFC 9578 section 4).
//! - [`accounts`]: who may obtain tokens (SHA-256 of their API keys).
//! - [`service`]: the HTTP issuer (`GET` directory, `POST` token request, rate limits).
//! - [`client`]: for the Cloister client — fetch the directory, request and finalize a token.
//!
//! The cryptography is the `privacypass` crate's (client side: `TokenRequest::new`,
//! `TokenResponse::issue_token`) and that of `blind-rsa-signatures`, the crate it is built
//! on (issuer side: `SecretKey::blind_sign`; redemption: `PublicKey::verify`). Nothing here
//! reimplements RSA, PSS or blinding. See `docs/transport.md` (section "Issuer (Privacy
//! Pass)") for what the issuer logs and what it cannot learn.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod accounts;
pub mod client;
pub mod directory;
pub mod issuer;
pub mod keys;
pub mod redeem;
pub mod service;

/// The token type this crate issues and redeems: publicly verifiable, blind RSA (2048-bit).
pub const TOKEN_TYPE: u16 = 0x0002;
/// `Nk` of token type 2: the size of the RSA modulus, of a blind signature and of a token's
/// authenticator.
pub const NK: usize = 256;
/// `Nid`: the size of a `token_key_id` (SHA-256 of the key's SPKI).
pub const NID: usize = 32;
/// Size of a type-2 `TokenRequest`: `token_type` (2) | `truncated_token_key_id` (1) |
/// `blinded_msg` (`Nk`).
pub const TOKEN_REQUEST_LEN: usize = 2 + 1 + NK;
/// Size of a type-2 `TokenResponse`: `blind_sig` (`Nk`).
pub const TOKEN_RESPONSE_LEN: usize = NK;
/// Size of a type-2 `Token`: `token_type` (2) | `nonce` (32) | `challenge_digest` (32) |
/// `token_key_id` (`Nid`) | `authenticator` (`Nk`).
pub const TOKEN_LEN: usize = 2 + 32 + 32 + NID + NK;
/// The part of a token the authenticator signs (`token_authenticator_input`).
pub const TOKEN_INPUT_LEN: usize = TOKEN_LEN - NK;

/// Where the issuer directory is served (RFC 9578 section 4).
pub const DIRECTORY_PATH: &str = "/.well-known/private-token-issuer-directory";
/// `Content-Type` of the issuer directory.
pub const DIRECTORY_TYPE: &str = "application/private-token-issuer-directory";
/// Where this issuer accepts token requests (the directory's `issuer-request-uri`).
pub const REQUEST_PATH: &str = "/token-request";
/// `Content-Type` of a `TokenRequest`.
pub const REQUEST_TYPE: &str = "application/private-token-request";
/// `Content-Type` of a `TokenResponse`.
pub const RESPONSE_TYPE: &str = "application/private-token-response";

/// The type-2 blind RSA parameters (SHA-384, PSS with a 48-byte salt, no message
/// randomizer): a secret key.
pub type RsaSecretKey = blind_rsa_signatures::SecretKey<
    blind_rsa_signatures::Sha384,
    blind_rsa_signatures::PSS,
    blind_rsa_signatures::Deterministic,
>;
/// The type-2 blind RSA parameters: a public key (the same type as
/// `privacypass::public_tokens::PublicKey`).
pub type RsaPublicKey = privacypass::public_tokens::PublicKey;
