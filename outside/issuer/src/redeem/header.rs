//! The `PrivateToken` HTTP authentication scheme's header values (RFC 9577 sections 2.1.2
//! and 2.2.2), on the grammar of RFC 9110 section 11:
//!
//! ```text
//! WWW-Authenticate: PrivateToken challenge="<base64url>", token-key="<base64url>"[, max-age="<secs>"]
//! Authorization: PrivateToken token="<base64url>"
//! ```
//!
//! Values are base64url **with padding** (the RFC's MUST; anything else is refused), as a
//! token or a quoted-string. Scheme and parameter names are case-insensitive; unknown
//! parameters are ignored; a parameter given twice is an error. A `WWW-Authenticate` value
//! may list several challenges, of any scheme (`Basic realm="x", PrivateToken …`): only
//! `PrivateToken` ones are returned, of any token type (the caller picks the type it
//! supports). The `privacypass` crate's parsers accept neither quoted values nor unknown
//! parameters, so these are written here against the RFC's grammar and its appendix A.2
//! vectors.
//!
//! Inputs are bounded ([`MAX_HEADER_LEN`]) and parsed in one left-to-right pass; only
//! visible ASCII, space and tab are accepted.

use std::borrow::Cow;

use base64::Engine as _;

/// Longest header value parsed.
pub const MAX_HEADER_LEN: usize = 16 * 1024;

/// The authentication scheme.
pub const SCHEME: &str = "PrivateToken";

/// Why a header value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// Longer than [`MAX_HEADER_LEN`].
    #[error("the header value is {0} bytes; at most {MAX_HEADER_LEN} are parsed")]
    TooLong(usize),
    /// Not RFC 9110 authentication syntax.
    #[error("the header value is malformed at byte {at}: {what}")]
    Syntax {
        /// Byte offset.
        at: usize,
        /// What was expected.
        what: &'static str,
    },
    /// The credentials are not of the `PrivateToken` scheme.
    #[error("the credentials are not of the PrivateToken scheme")]
    NotPrivateToken,
    /// More than one set of credentials.
    #[error("the Authorization value holds more than one set of credentials")]
    Several,
    /// A required parameter is missing.
    #[error("the PrivateToken parameter {0} is missing")]
    Missing(&'static str),
    /// A parameter appears twice in one challenge or credential.
    #[error("the PrivateToken parameter {0} appears twice")]
    Duplicate(&'static str),
    /// A parameter's value is empty or not base64url with padding.
    #[error("the PrivateToken parameter {0} is empty or not base64url with padding")]
    Base64(&'static str),
    /// `max-age` is not a number of seconds.
    #[error("the PrivateToken parameter max-age is not a number of seconds")]
    MaxAge,
    /// A challenge shorter than a token type.
    #[error("a PrivateToken challenge is shorter than a token type")]
    ShortChallenge,
}

/// One `PrivateToken` challenge of a `WWW-Authenticate` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WwwChallenge {
    /// The serialized `TokenChallenge`.
    pub challenge: Vec<u8>,
    /// The issuer key (`token-key`), if given: for type 2, its SPKI.
    pub token_key: Option<Vec<u8>>,
    /// How long the origin accepts the challenge, in seconds.
    pub max_age: Option<u32>,
}

impl WwwChallenge {
    /// The challenge's token type (its first two bytes).
    pub fn token_type(&self) -> u16 {
        u16::from_be_bytes([self.challenge[0], self.challenge[1]])
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

fn unb64(param: &'static str, text: &str) -> Result<Vec<u8>, HeaderError> {
    match base64::engine::general_purpose::URL_SAFE.decode(text) {
        Ok(bytes) if !bytes.is_empty() => Ok(bytes),
        _ => Err(HeaderError::Base64(param)),
    }
}

/// `PrivateToken token="…"` for a serialized token.
pub fn format_authorization(token: &[u8]) -> String {
    format!("{SCHEME} token=\"{}\"", b64(token))
}

/// `PrivateToken challenge="…", token-key="…"[, max-age="…"]`.
pub fn format_www_authenticate(
    challenge: &[u8],
    token_key: Option<&[u8]>,
    max_age: Option<u32>,
) -> String {
    let mut s = format!("{SCHEME} challenge=\"{}\"", b64(challenge));
    if let Some(k) = token_key {
        s.push_str(&format!(", token-key=\"{}\"", b64(k)));
    }
    if let Some(m) = max_age {
        s.push_str(&format!(", max-age=\"{m}\""));
    }
    s
}

/// The serialized token of an `Authorization` value. Exactly one set of credentials, of the
/// `PrivateToken` scheme, with exactly one `token` parameter.
pub fn parse_authorization(value: &str) -> Result<Vec<u8>, HeaderError> {
    let items = parse_auth_list(value)?;
    let [item] = items.as_slice() else {
        return Err(if items.is_empty() {
            HeaderError::NotPrivateToken
        } else {
            HeaderError::Several
        });
    };
    if !item.scheme.eq_ignore_ascii_case(SCHEME) || item.token68.is_some() {
        return Err(HeaderError::NotPrivateToken);
    }
    let token = item.param("token")?.ok_or(HeaderError::Missing("token"))?;
    unb64("token", token)
}

/// The `PrivateToken` challenges of a `WWW-Authenticate` value, in order (challenges of
/// other schemes are skipped). Each must have a `challenge`; `token-key` and `max-age` are
/// optional.
pub fn parse_www_authenticate(value: &str) -> Result<Vec<WwwChallenge>, HeaderError> {
    let mut out = Vec::new();
    for item in parse_auth_list(value)? {
        if !item.scheme.eq_ignore_ascii_case(SCHEME) {
            continue;
        }
        if item.token68.is_some() {
            return Err(HeaderError::Missing("challenge"));
        }
        let challenge = unb64(
            "challenge",
            item.param("challenge")?
                .ok_or(HeaderError::Missing("challenge"))?,
        )?;
        if challenge.len() < 2 {
            return Err(HeaderError::ShortChallenge);
        }
        let token_key = item
            .param("token-key")?
            .map(|k| unb64("token-key", k))
            .transpose()?;
        let max_age = item
            .param("max-age")?
            .map(|m| {
                if m.is_empty() || m.len() > 10 || !m.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(HeaderError::MaxAge);
                }
                m.parse::<u32>().map_err(|_| HeaderError::MaxAge)
            })
            .transpose()?;
        out.push(WwwChallenge {
            challenge,
            token_key,
            max_age,
        });
    }
    Ok(out)
}

/// One challenge or set of credentials.
#[derive(Debug)]
struct AuthItem<'a> {
    scheme: &'a str,
    token68: Option<&'a str>,
    params: Vec<(&'a str, Cow<'a, str>)>,
    /// Whether parameters may follow (the scheme was followed by a space).
    open: bool,
}

impl AuthItem<'_> {
    /// The value of parameter `name` (case-insensitive); an error if it appears twice.
    fn param(&self, name: &'static str) -> Result<Option<&str>, HeaderError> {
        let mut found = None;
        for (n, v) in &self.params {
            if n.eq_ignore_ascii_case(name) {
                if found.is_some() {
                    return Err(HeaderError::Duplicate(name));
                }
                found = Some(v.as_ref());
            }
        }
        Ok(found)
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 9110 `token68` characters (before the trailing `=`s).
fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

fn skip_ows(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

/// Splits a `#challenge` / `credentials` value into items (RFC 9110 section 11):
/// `auth-scheme [ 1*SP ( token68 / #auth-param ) ]`, items and parameters separated by
/// commas, `auth-param = token BWS "=" BWS ( token / quoted-string )`.
fn parse_auth_list(value: &str) -> Result<Vec<AuthItem<'_>>, HeaderError> {
    if value.len() > MAX_HEADER_LEN {
        return Err(HeaderError::TooLong(value.len()));
    }
    let b = value.as_bytes();
    if let Some(at) = b
        .iter()
        .position(|&c| !(c == b'\t' || (0x20..=0x7e).contains(&c)))
    {
        return Err(HeaderError::Syntax {
            at,
            what: "only visible ASCII, spaces and tabs are allowed",
        });
    }
    let syntax = |at, what| HeaderError::Syntax { at, what };
    let mut items: Vec<AuthItem<'_>> = Vec::new();
    let mut i = 0;
    // Right after `scheme 1*SP`, before any comma: only a parameter may follow (a new scheme
    // starts a list element, so it needs a comma before it).
    let mut params_only = false;
    loop {
        // Empty list elements (", ,") are allowed.
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b',') {
            params_only &= b[i] != b',';
            i += 1;
        }
        if i == b.len() {
            break;
        }
        let start = i;
        while i < b.len() && is_tchar(b[i]) {
            i += 1;
        }
        if i == start {
            return Err(syntax(
                i,
                "expected an authentication scheme or parameter name",
            ));
        }
        let name = &value[start..i];
        let after_name = skip_ows(b, i);
        if after_name < b.len() && b[after_name] == b'=' {
            // A parameter of the current item.
            let item = match items.last_mut() {
                Some(item) if item.open && item.token68.is_none() => item,
                _ => return Err(syntax(start, "a parameter outside a challenge")),
            };
            i = skip_ows(b, after_name + 1);
            let param_value = if i < b.len() && b[i] == b'"' {
                let (v, end) = quoted_string(b, i)?;
                i = end;
                v
            } else {
                let vs = i;
                while i < b.len() && is_tchar(b[i]) {
                    i += 1;
                }
                if i == vs {
                    return Err(syntax(i, "expected a parameter value"));
                }
                Cow::Borrowed(&value[vs..i])
            };
            item.params.push((name, param_value));
        } else if params_only {
            return Err(syntax(
                start,
                "expected a parameter (name=value) after the scheme",
            ));
        } else {
            // A new item: the scheme, then optionally 1*SP and a token68 or parameters.
            let mut item = AuthItem {
                scheme: name,
                token68: None,
                params: Vec::new(),
                open: false,
            };
            if i < b.len() && b[i] == b' ' {
                while i < b.len() && b[i] == b' ' {
                    i += 1;
                }
                item.open = true;
                // token68: 1*tchar68 *"=" then the end of the item.
                let t = i;
                let mut k = i;
                while k < b.len() && is_token68_char(b[k]) {
                    k += 1;
                }
                if k > t {
                    let mut e = k;
                    while e < b.len() && b[e] == b'=' {
                        e += 1;
                    }
                    let m = skip_ows(b, e);
                    if m == b.len() || b[m] == b',' {
                        item.token68 = Some(&value[t..e]);
                        item.open = false;
                        i = m;
                    }
                }
            }
            let open = item.open;
            items.push(item);
            if open {
                // Parameters follow, without a comma before the first.
                params_only = true;
                continue;
            }
        }
        i = skip_ows(b, i);
        if i < b.len() && b[i] != b',' {
            return Err(syntax(i, "expected a comma or the end of the value"));
        }
    }
    Ok(items)
}

/// A quoted-string starting at `b[start] == '"'`: its unescaped content and the index after
/// the closing quote.
fn quoted_string(b: &[u8], start: usize) -> Result<(Cow<'_, str>, usize), HeaderError> {
    let mut out = String::new();
    let mut escaped = false;
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let content = if escaped {
                    Cow::Owned(out)
                } else {
                    // No escapes: the content is the bytes between the quotes (ASCII).
                    Cow::Borrowed(std::str::from_utf8(&b[start + 1..i]).map_err(|_| {
                        HeaderError::Syntax {
                            at: start,
                            what: "not ASCII",
                        }
                    })?)
                };
                return Ok((content, i + 1));
            }
            b'\\' => {
                // quoted-pair = "\" ( HTAB / SP / VCHAR )
                let Some(&c) = b.get(i + 1) else {
                    break;
                };
                escaped = true;
                out.push(char::from(c));
                i += 2;
            }
            c => {
                out.push(char::from(c));
                i += 1;
            }
        }
    }
    Err(HeaderError::Syntax {
        at: start,
        what: "unterminated quoted string",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_round_trips_in_both_value_forms() {
        let token = vec![0u8, 2, 0xff, 0xfe, 7];
        let v = format_authorization(&token);
        assert_eq!(v, "PrivateToken token=\"AAL__gc=\"");
        assert_eq!(parse_authorization(&v), Ok(token.clone()));
        // Token form (no "=" in the value), odd case, spaces around "=", unknown params.
        let t = b64(&[1, 2, 3]);
        assert_eq!(
            parse_authorization(&format!("privatetoken  x=1, TOKEN = {t} ,y=\"z\"")),
            Ok(vec![1, 2, 3])
        );
        // Escapes inside the quoted string are undone.
        assert_eq!(
            parse_authorization("PrivateToken token=\"AQ\\ID\""),
            Ok(vec![1, 2, 3])
        );
    }

    #[test]
    fn hostile_authorization_values_are_refused() {
        let good = b64(&[1, 2, 3]);
        let cases: Vec<(String, HeaderError)> = vec![
            ("".into(), HeaderError::NotPrivateToken),
            ("Bearer abc".into(), HeaderError::NotPrivateToken),
            (format!("Basic {good}"), HeaderError::NotPrivateToken),
            (format!("PrivateToken {good}"), HeaderError::NotPrivateToken),
            ("PrivateToken".into(), HeaderError::Missing("token")),
            ("PrivateToken x=1".into(), HeaderError::Missing("token")),
            // Ambiguous: RFC 9110 reads a trailing `name=` as a token68.
            ("PrivateToken token=".into(), HeaderError::NotPrivateToken),
            (
                format!("PrivateToken token={good}, token={good}"),
                HeaderError::Duplicate("token"),
            ),
            (
                format!("PrivateToken token={good}, PrivateToken token={good}"),
                HeaderError::Several,
            ),
            // No padding, standard (not url-safe) alphabet, non-canonical trailing bits.
            (
                "PrivateToken token=AAL__gc".into(),
                HeaderError::Base64("token"),
            ),
            (
                "PrivateToken token=\"AAL//gc=\"".into(),
                HeaderError::Base64("token"),
            ),
            (
                "PrivateToken token=\"AQJ=\"".into(),
                HeaderError::Base64("token"),
            ),
            (
                "PrivateToken token=\"\"".into(),
                HeaderError::Base64("token"),
            ),
        ];
        for (v, want) in cases {
            assert_eq!(parse_authorization(&v), Err(want), "{v:?}");
        }
        for v in [
            "PrivateToken token=\"AQID",        // unterminated
            "PrivateToken token=\"AQID\\",      // dangling escape
            "PrivateToken token=AQID junk",     // trailing garbage
            "PrivateToken token=\"AQID\"x",     // garbage after quote
            "PrivateToken,token=AQID",          // parameter without the scheme's space
            "token=AQID",                       // parameter without a scheme
            "PrivateToken token=\"AQ\u{e9}D\"", // non-ASCII
            "PrivateToken token=\"AQ\rID\"",    // control character
            "PrivateToken token=\"AQ\nID\"",
            "PrivateToken token=\"AQ\0ID\"",
            "PrivateToken =AQID",
            "Private Token token=AQID",
            "PrivateToken abc== x=1",
        ] {
            assert!(
                matches!(parse_authorization(v), Err(HeaderError::Syntax { .. })),
                "{v:?}: {:?}",
                parse_authorization(v)
            );
        }
        let long = format!("PrivateToken token=\"{}\"", "A".repeat(MAX_HEADER_LEN));
        assert!(matches!(
            parse_authorization(&long),
            Err(HeaderError::TooLong(_))
        ));
        let commas = ",".repeat(MAX_HEADER_LEN);
        assert_eq!(
            parse_authorization(&commas),
            Err(HeaderError::NotPrivateToken)
        );
    }

    /// RFC 9577 appendix A.2 (the line folding of the RFC text removed).
    #[test]
    fn rfc9577_header_vectors() {
        let key2 = "MIIBUjA9BgkqhkiG9w0BAQowMKANMAsGCWCGSAFlAwQCAqEaMBgGCSqGSIb3DQEBCDALBglghkgBZQMEAgKiAwIBMAOCAQ8AMIIBCgKCAQEAyxrta2qV9bHOATpM_KsluUsuZKIwNOQlCn6rQ8DfOowSmTrxKxEZCNS0cb7DHUtsmtnN2pBhKi7pA1I-beWiJNawLwnlw3TQz-Adj1KcUAp4ovZ5CPpoK1orQwyB6vGvcte155T8mKMTknaHl1fORTtSbvm_bOuZl5uEI7kPRGGiKvN6qwz1cz91l6vkTTHHMttooYHGy75gfYwOUuBlX9mZbcWE7KC-h6-814ozfRex26noKLvYHikTFxROf_ifVWGXCbCWy7nqR0zq0mTCBz_kl0DAHwDhCRBgZpg9IeX4PwhuLoI8h5zUPO9wDSo1Kpur1hLQPK0C2xNLfiJaXwIDAQAB";
        let ch2 = "AAIADmlzc3Vlci5leGFtcGxlIIo-g6M9mABdLzC-9Bn6a_TNXGAF42sShbu0zNQPpLODAA5vcmlnaW4uZXhhbXBsZQ==";
        let ch1 = "AAEADmlzc3Vlci5leGFtcGxlIIo-g6M9mABdLzC-9Bn6a_TNXGAF42sShbu0zNQPpLODAA5vcmlnaW4uZXhhbXBsZQ==";
        let key1 = "67H-0zgxA2HAjQx1dpaWcSluBemaF9eSbfwopT-r1In6wPgryoYkmmaPOlv6s3TJ";
        let grease_ch = "AACsw7JXlcY2_Z3YsSmCOUq7qHd9NZeOh3_IhIiSohcjMEWsJaPVXAfFTv5jcpc_7gBz53_GG_GauIDyDt9dYnUC";
        let grease_key = "hW3jxxC4kufMoa5esSGvQsqOd5E3oRIkIoybmbBym_hNUFfQMAADCbjw0GzP-hdWH56s1MMS6YWmvGD_vqBhAmTcsXJiVTE9qB1mVpJoah2GRPFRa_YSzqAJ5t_22ampWftTjhtbI0PAkpkpQjgr3eItWzJLHkYY7SHXgGKGws4=";
        let token_key_0 = hex::decode(
            "30820152303d06092a864886f70d01010a3030a00d300b0609608648016503040202a11a301806092a864886f70d010108300b0609608648016503040202a2030201300382010f003082010a0282010100cb1aed6b6a95f5b1ce013a4cfcab25b94b2e64a23034e4250a7eab43c0df3a8c12993af12b111908d4b471bec31d4b6c9ad9cdda90612a2ee903523e6de5a224d6b02f09e5c374d0cfe01d8f529c500a78a2f67908fa682b5a2b430c81eaf1af72d7b5e794fc98a3139276879757ce453b526ef9bf6ceb99979b8423b90f4461a22af37aab0cf5733f7597abe44d31c732db68a181c6cbbe607d8c0e52e0655fd9996dc584eca0be87afbcd78a337d17b1dba9e828bbd81e291317144e7ff89f55619709b096cbb9ea474cead264c2073fe49740c01f00e109106066983d21e5f83f086e2e823c879cd43cef700d2a352a9babd612d03cad02db134b7e225a5f0203010001",
        )
        .expect("hex");
        let challenge_0 = hex::decode(
            "0002000e6973737565722e6578616d706c65208a3e83a33d98005d2f30bef419fa6bf4cd5c6005e36b1285bbb4ccd40fa4b383000e6f726967696e2e6578616d706c65",
        )
        .expect("hex");
        let mut challenge_1 = challenge_0.clone();
        challenge_1[1] = 1;
        let key_1 = hex::decode(
            "ebb1fed338310361c08d0c7576969671296e05e99a17d7926dfc28a53fabd489fac0f82bca86249a668f3a5bfab374c9",
        )
        .expect("hex");
        let grease_key_0 = hex::decode("856de3c710b892e7cca1ae5eb121af42ca8e779137a11224228c9b99b0729bf84d5057d030000309b8f0d06ccffa17561f9eacd4c312e985a6bc60ffbea0610264dcb1726255313da81d665692686a1d8644f1516bf612cea009e6dff6d9a9a959fb538e1b5b2343c092992942382bdde22d5b324b1e4618ed21d7806286c2ce").expect("hex");
        let grease_challenge_0 = hex::decode("0000acc3b25795c636fd9dd8b12982394abba8777d35978e877fc8848892a217233045ac25a3d55c07c54efe6372973fee0073e77fc61bf19ab880f20edf5d627502").expect("hex");

        let v1 = format!(
            "PrivateToken challenge=\"{ch2}\", token-key=\"{key2}\",unknownChallengeAttribute=\"ignore-me\", max-age=\"10\""
        );
        let one = WwwChallenge {
            challenge: challenge_0.clone(),
            token_key: Some(token_key_0.clone()),
            max_age: Some(10),
        };
        assert_eq!(parse_www_authenticate(&v1), Ok(vec![one.clone()]));
        assert_eq!(one.token_type(), 2);

        let v2 = format!(
            "{v1}, PrivateToken challenge=\"{ch1}\", token-key=\"{key1}\",unknownChallengeAttribute=\"ignore-me\", max-age=\"10\""
        );
        let two = WwwChallenge {
            challenge: challenge_1.clone(),
            token_key: Some(key_1.clone()),
            max_age: Some(10),
        };
        assert_eq!(
            parse_www_authenticate(&v2),
            Ok(vec![one.clone(), two.clone()])
        );

        let v3 = format!(
            "Basic realm=\"grease\", PrivateToken challenge=\"{grease_ch}\",token-key=\"{grease_key}\", PrivateToken challenge=\"{ch1}\", token-key=\"{key1}\",unknownChallengeAttribute=\"ignore-me\", max-age=\"10\""
        );
        let grease = WwwChallenge {
            challenge: grease_challenge_0,
            token_key: Some(grease_key_0),
            max_age: None,
        };
        assert_eq!(parse_www_authenticate(&v3), Ok(vec![grease.clone(), two]));
        assert_eq!(grease.token_type(), 0);

        // Our own formatting parses back, and the type-2 key and challenge are usable.
        let ours = format_www_authenticate(&challenge_0, Some(&token_key_0), Some(10));
        assert_eq!(parse_www_authenticate(&ours), Ok(vec![one]));
        let key = crate::keys::IssuerPublicKey::from_spki(&token_key_0).expect("RFC key");
        assert_eq!(
            hex::encode(key.token_key_id()),
            "ca572f8982a9ca248a3056186322d93ca147266121ddeb5632c07f1f71cd2708"
        );
        let c = crate::redeem::Challenge::parse(&challenge_0).expect("RFC challenge");
        assert_eq!(c.issuer_name(), "issuer.example");
        assert_eq!(c.origin_info(), vec!["origin.example".to_string()]);
        assert!(c.redemption_context().is_some());
    }

    #[test]
    fn hostile_www_authenticate_values_are_refused_or_skipped() {
        // Nine bytes: base64url without "=", so it can also be sent unquoted.
        let ch = b64(&[0, 2, 0, 1, b'a', 0, 0, 0, 0]);
        // Other schemes (with a token68 or parameters) are skipped.
        assert_eq!(
            parse_www_authenticate("Basic abc==, Bearer realm=x"),
            Ok(vec![])
        );
        assert_eq!(
            parse_www_authenticate(&format!("Negotiate abc, PrivateToken challenge={ch}"))
                .map(|v| v.len()),
            Ok(1)
        );
        let cases: Vec<(String, HeaderError)> = vec![
            (
                "PrivateToken token-key=AAAA".into(),
                HeaderError::Missing("challenge"),
            ),
            (
                "PrivateToken challenge==".into(),
                HeaderError::Missing("challenge"),
            ),
            (
                format!("PrivateToken {ch}"),
                HeaderError::Missing("challenge"),
            ),
            (
                format!("PrivateToken challenge={ch}, Challenge={ch}"),
                HeaderError::Duplicate("challenge"),
            ),
            (
                "PrivateToken challenge=\"AA==\"".into(),
                HeaderError::ShortChallenge,
            ),
            (
                "PrivateToken challenge=\"AAI\"".into(),
                HeaderError::Base64("challenge"),
            ),
            (
                format!("PrivateToken challenge={ch}, token-key=\"@@\""),
                HeaderError::Base64("token-key"),
            ),
            (
                format!("PrivateToken challenge={ch}, max-age=-1"),
                HeaderError::MaxAge,
            ),
            (
                format!("PrivateToken challenge={ch}, max-age=4294967296"),
                HeaderError::MaxAge,
            ),
            (
                format!("PrivateToken challenge={ch}, max-age=\"\""),
                HeaderError::MaxAge,
            ),
            (
                format!("PrivateToken challenge={ch}, max-age=+1"),
                HeaderError::MaxAge,
            ),
        ];
        for (v, want) in cases {
            assert_eq!(parse_www_authenticate(&v), Err(want), "{v:?}");
        }
        for v in [
            "PrivateToken challenge=\"AAIAAWEAAAA=\" token-key=x",
            "PrivateToken challenge=\"AAIAAWEAAAA=",
            "= PrivateToken",
            "\"PrivateToken\" challenge=x",
            "PrivateToken challenge=\"AAIAAWEAAAA=\" PrivateToken challenge=x",
            "PrivateToken challenge=AAIAAWEAAAA=",
        ] {
            assert!(
                matches!(parse_www_authenticate(v), Err(HeaderError::Syntax { .. })),
                "{v:?}: {:?}",
                parse_www_authenticate(v)
            );
        }
    }
}
