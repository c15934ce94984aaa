//! The issuer directory (RFC 9578 section 4): a JSON object at
//! [`crate::DIRECTORY_PATH`] naming where token requests go and the issuer's token keys.
//!
//! ```json
//! {
//!   "issuer-request-uri": "/token-request",
//!   "token-keys": [ { "token-type": 2, "token-key": "MIIBUjA9…AQAB", "not-before": 1764633600 } ]
//! }
//! ```
//!
//! `token-key` is the base64url encoding, with padding, of the key's SPKI. Keys are listed
//! in order of preference; a client picks the first type-2 key whose `not-before` (UNIX
//! seconds, optional) has passed. Unknown fields and token types are ignored.

use serde::{Deserialize, Serialize};

use crate::keys::IssuerPublicKey;
use crate::TOKEN_TYPE;
use cloister_display::Excerpt;

/// Largest directory a client reads.
pub const MAX_DIRECTORY_BYTES: usize = 64 * 1024;

/// An issuer directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    /// Where token requests go: an absolute URL or a path on the directory's origin.
    #[serde(rename = "issuer-request-uri")]
    pub issuer_request_uri: String,
    /// The token keys, most preferred first.
    #[serde(rename = "token-keys")]
    pub token_keys: Vec<TokenKey>,
}

/// One entry of `token-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenKey {
    /// The token type (2 for the keys this crate uses).
    #[serde(rename = "token-type")]
    pub token_type: u64,
    /// base64url (with padding) of the key; for type 2, its SPKI.
    #[serde(rename = "token-key")]
    pub token_key: String,
    /// From when (UNIX seconds) the key may be used; absent means now.
    #[serde(
        rename = "not-before",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub not_before: Option<u64>,
}

/// Why a directory is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// Larger than [`MAX_DIRECTORY_BYTES`].
    #[error("the issuer directory is larger than {MAX_DIRECTORY_BYTES} bytes")]
    TooLarge,
    /// Not a directory object.
    #[error("the issuer directory is not valid JSON of the RFC 9578 form: {}", Excerpt(.0))]
    Json(String),
    /// No usable type-2 key.
    #[error("the issuer directory has no usable token key of type 2{}", .0.as_deref().map(|r| format!(" (first one rejected: {r})")).unwrap_or_default())]
    NoKey(Option<String>),
    /// `issuer-request-uri` cannot be resolved against the directory's URL.
    #[error("the issuer directory's issuer-request-uri {} cannot be used: {}", Excerpt(.0), .1)]
    RequestUri(String, &'static str),
}

impl Directory {
    /// A directory listing `keys` (most preferred first), with requests going to `request_uri`.
    pub fn new(request_uri: &str, keys: &[(&IssuerPublicKey, Option<u64>)]) -> Self {
        Self {
            issuer_request_uri: request_uri.to_owned(),
            token_keys: keys
                .iter()
                .map(|(k, nb)| TokenKey {
                    token_type: u64::from(TOKEN_TYPE),
                    token_key: k.to_base64url(),
                    not_before: *nb,
                })
                .collect(),
        }
    }

    /// Parses a directory.
    pub fn parse(bytes: &[u8]) -> Result<Self, DirectoryError> {
        if bytes.len() > MAX_DIRECTORY_BYTES {
            return Err(DirectoryError::TooLarge);
        }
        serde_json::from_slice(bytes).map_err(|e| DirectoryError::Json(e.to_string()))
    }

    /// The directory as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain strings and integers cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// The first type-2 key that is valid at `now` (UNIX seconds) and parses as a 2048-bit
    /// RSASSA-PSS SPKI.
    pub fn type2_key(&self, now: u64) -> Result<IssuerPublicKey, DirectoryError> {
        let mut first_error = None;
        for k in &self.token_keys {
            if k.token_type != u64::from(TOKEN_TYPE) || k.not_before.is_some_and(|nb| nb > now) {
                continue;
            }
            match IssuerPublicKey::from_base64url(&k.token_key) {
                Ok(key) => return Ok(key),
                Err(e) => {
                    first_error.get_or_insert(e.to_string());
                }
            }
        }
        Err(DirectoryError::NoKey(first_error))
    }

    /// The URL token requests go to, resolving a path against the directory's URL.
    pub fn request_url(&self, directory_url: &str) -> Result<String, DirectoryError> {
        let uri = self.issuer_request_uri.as_str();
        let err = |why| DirectoryError::RequestUri(uri.to_owned(), why);
        if uri.is_empty() || uri.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
            return Err(err("not a URL (empty, spaces or control characters)"));
        }
        if uri.starts_with("https://") || uri.starts_with("http://") {
            return Ok(uri.to_owned());
        }
        if !uri.starts_with('/') || uri.starts_with("//") {
            return Err(err("only absolute URLs and absolute paths are supported"));
        }
        let scheme_end = directory_url
            .find("://")
            .ok_or_else(|| err("the directory URL has no scheme"))?;
        let authority_end = directory_url[scheme_end + 3..]
            .find(['/', '?', '#'])
            .map_or(directory_url.len(), |i| scheme_end + 3 + i);
        Ok(format!("{}{uri}", &directory_url[..authority_end]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_urls_resolve_against_the_directory_origin() {
        let mut d = Directory {
            issuer_request_uri: "/token-request".into(),
            token_keys: vec![],
        };
        let base = "http://127.0.0.1:8080/.well-known/private-token-issuer-directory";
        assert_eq!(
            d.request_url(base).as_deref(),
            Ok("http://127.0.0.1:8080/token-request")
        );
        assert_eq!(
            d.request_url("https://issuer.example").as_deref(),
            Ok("https://issuer.example/token-request")
        );
        d.issuer_request_uri = "https://other.example/r".into();
        assert_eq!(
            d.request_url(base).as_deref(),
            Ok("https://other.example/r")
        );
        for bad in [
            "",
            "token-request",
            "//evil.example/x",
            "/a b",
            "/a\r\nX: y",
        ] {
            d.issuer_request_uri = bad.into();
            assert!(d.request_url(base).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn directories_parse_leniently_but_bounded() {
        let text = br#"{"issuer-request-uri":"/r","token-keys":[
            {"token-type":1,"token-key":"AAAA"},
            {"token-type":2,"token-key":"not base64","not-before":5,"future-field":true}],
            "extra":1}"#;
        let d = Directory::parse(text).expect("parses");
        assert_eq!(d.token_keys.len(), 2);
        assert_eq!(d.token_keys[1].not_before, Some(5));
        // Too early for the type-2 key, then a key that does not parse.
        assert_eq!(d.type2_key(4), Err(DirectoryError::NoKey(None)));
        assert!(matches!(
            d.type2_key(5),
            Err(DirectoryError::NoKey(Some(_)))
        ));
        assert!(Directory::parse(b"{}").is_err());
        assert!(Directory::parse(b"[]").is_err());
        let big = vec![b' '; MAX_DIRECTORY_BYTES + 1];
        assert_eq!(Directory::parse(&big), Err(DirectoryError::TooLarge));
    }
}
