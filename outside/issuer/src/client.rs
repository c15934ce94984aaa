//! For the Cloister client: fetch the issuer directory, pick its type-2 key, and turn a
//! `TokenChallenge` into a token (RFC 9578 sections 6.1 and 6.3).
//!
//! ```text
//! begin(challenge, key)      -> TokenRequest bytes + PendingToken   (privacypass: nonce, blinding)
//! POST issuer-request-uri    -> TokenResponse bytes                 (IssuerClient::request)
//! PendingToken::finish(resp) -> Token bytes                         (privacypass: unblind, verify)
//! ```
//!
//! [`begin`] and [`PendingToken::finish`] are pure, so the request may travel by any route
//! (directly, or through a relay so the issuer does not see the client's address);
//! [`IssuerClient`] does it over plain HTTP with `ureq` (`https://` needs ureq's TLS
//! feature, which this crate does not turn on). A finished token is checked with
//! [`crate::redeem::verify_token`] before it is returned, so a token that the gateway would
//! refuse is caught at issuance.

use std::time::Duration;

use privacypass::public_tokens::{TokenRequest, TokenResponse, TokenState};
use privacypass::{Deserialize as _, Serialize as _};

use crate::directory::{Directory, DirectoryError, MAX_DIRECTORY_BYTES};
use crate::keys::IssuerPublicKey;
use crate::redeem::{verify_token, Challenge};
use crate::{REQUEST_TYPE, RESPONSE_TYPE, TOKEN_RESPONSE_LEN};
use cloister_display::Excerpt;

/// Why obtaining a token failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The request did not complete.
    #[error("{what} ({url}): {error}")]
    Transport {
        /// What was being fetched.
        what: &'static str,
        /// Where.
        url: String,
        /// The transport error.
        error: String,
    },
    /// The server answered with an error status.
    #[error("{what} ({url}): HTTP {status}: {}", Excerpt(.body))]
    Status {
        /// What was being fetched.
        what: &'static str,
        /// Where.
        url: String,
        /// The status.
        status: u16,
        /// The start of the answer's body.
        body: String,
        /// `Retry-After`, in seconds, if given.
        retry_after: Option<u64>,
    },
    /// The answer is not what was asked for.
    #[error("{what} ({url}): {why}")]
    Answer {
        /// What was being fetched.
        what: &'static str,
        /// Where.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// The directory is unusable.
    #[error("issuer directory: {0}")]
    Directory(#[from] DirectoryError),
    /// The token request could not be built.
    #[error("cannot build the token request: {0}")]
    Request(String),
    /// The directory does not list the key the gateway announced.
    #[error("the issuer directory does not list the expected token key {0} (the issuer may be tagging clients with keys of their own)")]
    KeyNotListed(String),
    /// The token response does not finalize into a valid token.
    #[error("the issuer's token response is not valid for this request: {0}")]
    Finalize(String),
}

/// A token request in flight: what is needed to finalize its response.
pub struct PendingToken {
    state: TokenState,
    challenge_digest: [u8; 32],
    key: IssuerPublicKey,
}

/// The nonce and blinding secret stay inside.
impl std::fmt::Debug for PendingToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PendingToken({:?})", self.key)
    }
}

/// Starts issuance of a token for `challenge` under `key`: a fresh random nonce, blinded
/// (`privacypass::public_tokens::TokenRequest::new`). Returns the `TokenRequest` bytes.
pub fn begin(
    challenge: &Challenge,
    key: &IssuerPublicKey,
) -> Result<(Vec<u8>, PendingToken), ClientError> {
    let (request, state) = TokenRequest::new(
        &mut blind_rsa_signatures::DefaultRng,
        key.rsa().clone(),
        challenge.to_privacypass(),
    )
    .map_err(|e| ClientError::Request(e.to_string()))?;
    let bytes = request
        .tls_serialize_detached()
        .map_err(|e| ClientError::Request(e.to_string()))?;
    Ok((
        bytes,
        PendingToken {
            state,
            challenge_digest: challenge.digest(),
            key: key.clone(),
        },
    ))
}

impl PendingToken {
    /// Finalizes the issuer's `TokenResponse` into a serialized token (unblinding and
    /// verifying the signature), then checks it as the gateway will.
    pub fn finish(self, response: &[u8]) -> Result<Vec<u8>, ClientError> {
        if response.len() != TOKEN_RESPONSE_LEN {
            return Err(ClientError::Finalize(format!(
                "{} bytes, not {TOKEN_RESPONSE_LEN}",
                response.len()
            )));
        }
        let response = TokenResponse::tls_deserialize_exact(response)
            .map_err(|e| ClientError::Finalize(e.to_string()))?;
        let token = response
            .issue_token(&self.state)
            .map_err(|e| ClientError::Finalize(e.to_string()))?;
        let bytes = token
            .tls_serialize_detached()
            .map_err(|e| ClientError::Finalize(e.to_string()))?;
        verify_token(&bytes, &self.challenge_digest, &self.key)
            .map_err(|e| ClientError::Finalize(e.to_string()))?;
        Ok(bytes)
    }
}

/// Talks to one issuer over HTTP.
pub struct IssuerClient {
    directory_url: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for IssuerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IssuerClient({})", self.directory_url)
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl IssuerClient {
    /// A client of the issuer whose directory is at `directory_url` (the full URL, e.g.
    /// `http://127.0.0.1:8080/.well-known/private-token-issuer-directory`); each HTTP request
    /// may take `timeout`.
    pub fn new(directory_url: &str, timeout: Duration) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            directory_url: directory_url.to_owned(),
            agent,
        }
    }

    fn read_body(
        what: &'static str,
        url: &str,
        resp: &mut ureq::http::Response<ureq::Body>,
        limit: usize,
    ) -> Result<Vec<u8>, ClientError> {
        resp.body_mut()
            .with_config()
            .limit(limit as u64)
            .read_to_vec()
            .map_err(|e| ClientError::Transport {
                what,
                url: url.to_owned(),
                error: e.to_string(),
            })
    }

    fn check_status(
        what: &'static str,
        url: &str,
        resp: &mut ureq::http::Response<ureq::Body>,
        content_type: &str,
    ) -> Result<(), ClientError> {
        let status = resp.status().as_u16();
        if status != 200 {
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok());
            let body = resp
                .body_mut()
                .with_config()
                .limit(1024)
                .read_to_string()
                .unwrap_or_default();
            return Err(ClientError::Status {
                what,
                url: url.to_owned(),
                status,
                body: body.trim().to_owned(),
                retry_after,
            });
        }
        let got = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let base = got.split(';').next().unwrap_or("").trim();
        if !base.eq_ignore_ascii_case(content_type) {
            return Err(ClientError::Answer {
                what,
                url: url.to_owned(),
                why: format!("Content-Type is {}, not {content_type}", Excerpt(got)),
            });
        }
        Ok(())
    }

    /// Fetches the issuer directory.
    pub fn fetch_directory(&self) -> Result<Directory, ClientError> {
        let what = "fetching the issuer directory";
        let url = self.directory_url.as_str();
        let mut resp = self
            .agent
            .get(url)
            .header("Accept", crate::DIRECTORY_TYPE)
            .call()
            .map_err(|e| ClientError::Transport {
                what,
                url: url.to_owned(),
                error: e.to_string(),
            })?;
        Self::check_status(what, url, &mut resp, crate::DIRECTORY_TYPE)?;
        let body = Self::read_body(what, url, &mut resp, MAX_DIRECTORY_BYTES)?;
        Ok(Directory::parse(&body)?)
    }

    /// The issuer's current type-2 key and the URL its token requests go to.
    pub fn fetch_key(&self) -> Result<(IssuerPublicKey, String), ClientError> {
        let directory = self.fetch_directory()?;
        let key = directory.type2_key(unix_now())?;
        let url = directory.request_url(&self.directory_url)?;
        Ok((key, url))
    }

    /// Obtains one token for `challenge` under `expected`, the key the gateway announced (its
    /// `token-key=`) or a pinned one, refusing an issuer whose directory does not list that
    /// key as a currently valid type-2 key: a key given to one client only would tag it.
    pub fn fetch_token_for_key(
        &self,
        api_key: &str,
        challenge: &Challenge,
        expected: &IssuerPublicKey,
    ) -> Result<Vec<u8>, ClientError> {
        let directory = self.fetch_directory()?;
        let now = unix_now();
        let listed = directory.token_keys.iter().any(|k| {
            k.token_type == u64::from(crate::TOKEN_TYPE)
                && k.not_before.is_none_or(|nb| nb <= now)
                && IssuerPublicKey::from_base64url(&k.token_key).is_ok_and(|key| &key == expected)
        });
        if !listed {
            return Err(ClientError::KeyNotListed(hex::encode(
                expected.token_key_id(),
            )));
        }
        let url = directory.request_url(&self.directory_url)?;
        self.fetch_token_with(api_key, challenge, expected, &url)
    }

    /// Sends a `TokenRequest` to `request_url` with the account's `api_key`; returns the
    /// `TokenResponse` bytes.
    pub fn send_request(
        &self,
        request_url: &str,
        api_key: &str,
        token_request: &[u8],
    ) -> Result<Vec<u8>, ClientError> {
        let what = "requesting a token";
        let mut resp = self
            .agent
            .post(request_url)
            .header("Authorization", &format!("Bearer {api_key}"))
            .header("Content-Type", REQUEST_TYPE)
            .header("Accept", RESPONSE_TYPE)
            .header("Cache-Control", "no-cache, no-store")
            .send(token_request)
            .map_err(|e| ClientError::Transport {
                what,
                url: request_url.to_owned(),
                error: e.to_string(),
            })?;
        Self::check_status(what, request_url, &mut resp, RESPONSE_TYPE)?;
        Self::read_body(what, request_url, &mut resp, TOKEN_RESPONSE_LEN + 1)
    }

    /// Obtains one token for `challenge`: directory, request, finalization.
    pub fn fetch_token(
        &self,
        api_key: &str,
        challenge: &Challenge,
    ) -> Result<Vec<u8>, ClientError> {
        let (key, url) = self.fetch_key()?;
        self.fetch_token_with(api_key, challenge, &key, &url)
    }

    /// Obtains one token for `challenge` with a key and request URL already fetched.
    pub fn fetch_token_with(
        &self,
        api_key: &str,
        challenge: &Challenge,
        key: &IssuerPublicKey,
        request_url: &str,
    ) -> Result<Vec<u8>, ClientError> {
        let (request, pending) = begin(challenge, key)?;
        let response = self.send_request(request_url, api_key, &request)?;
        pending.finish(&response)
    }
}
