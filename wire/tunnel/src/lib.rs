//! The contract of the oblivious path, shared by the client, the relay, the gateway (all
//! outside the CVM) and the host's tunnel endpoint (inside).
//!
//! ```text
//! client --(OHTTP, RFC 9458)--> relay --> gateway --(TLS records)--> host tunnel endpoint
//! ```
//!
//! * The **relay** (a third party) forwards two routes to one gateway and nothing else:
//!   `POST` [`OHTTP_PATH`] (`message/ohttp-req` in, `message/ohttp-res` out) and `GET`
//!   [`KEYS_PATH`] (`application/ohttp-keys`, RFC 9540). It sees the client's address and
//!   opaque bytes.
//! * The **gateway** (the operator's) decapsulates the OHTTP request. The inner request is
//!   Binary HTTP (RFC 9292): `POST` [`INNER_TUNNEL_PATH`] with the header [`SESSION_HEADER`]
//!   (the client-chosen random [`SessionId`], lower-case hex), on a session's first message
//!   an `Authorization: PrivateToken token=…` header (RFC 9577), and a body of TLS records.
//!   It spends the token once, picks a host for the session (sticky), and forwards the
//!   records. It sees the session id, a token it cannot link to an issuance, and TLS records.
//! * The **host tunnel endpoint** (inside the CVM) takes `POST` [`HOST_TUNNEL_PREFIX`]`{id}`
//!   with TLS records as the body and answers `200` with the TLS records that session's
//!   rustls server connection produced. Inside TLS, requests and responses are Binary HTTP
//!   messages (known-length), one request per flight.
//!
//! The host's certificate for a tunnel session is made for that session: its evidence's
//! REPORT_DATA binds the session id, the certificate's key and the measurement log
//! (`cloister_protocol::binding::report_data_tunnel_mode`). A client that chose the session
//! id checks the evidence during the handshake, so the handshake and one request take two
//! round trips.

#![forbid(unsafe_code)]

use std::fmt;
use std::str::FromStr;

/// Where the gateway (and the relay, which forwards it) accepts encapsulated requests.
pub const OHTTP_PATH: &str = "/ohttp";
/// Where the gateway (and the relay) serves the key configurations (RFC 9540).
pub const KEYS_PATH: &str = "/ohttp-keys";
/// `Content-Type` of an encapsulated request (RFC 9458).
pub const OHTTP_REQ_TYPE: &str = "message/ohttp-req";
/// `Content-Type` of an encapsulated response (RFC 9458).
pub const OHTTP_RES_TYPE: &str = "message/ohttp-res";
/// `Content-Type` of key configurations (RFC 9540).
pub const OHTTP_KEYS_TYPE: &str = "application/ohttp-keys";
/// The path of the inner (Binary HTTP) request the client sends to the gateway.
pub const INNER_TUNNEL_PATH: &str = "/v1/tunnel";
/// The header carrying the session id, on the inner request and to the host.
pub const SESSION_HEADER: &str = "cloister-session";
/// `Content-Type` of a body of TLS records.
pub const TLS_RECORDS_TYPE: &str = "application/cloister-tls-records";
/// The host tunnel endpoint's route prefix; the session id in hex follows.
pub const HOST_TUNNEL_PREFIX: &str = "/v1/tunnel/";
/// The ALPN protocol of a tunneled TLS session: Binary HTTP messages inside TLS 1.3, one
/// request per flight.
pub const TUNNEL_ALPN: &[u8] = b"cloister-tunnel/1";
/// The most TLS-record bytes one flight may carry, in either direction. A feature request of
/// the largest accepted size (writing-help, 100 kB of text) and its JSON fit.
pub const MAX_FLIGHT_BYTES: usize = 512 * 1024;
/// Problem type (RFC 9457) of a request encapsulated to a key id the gateway does not serve:
/// the client refetches the key configuration (RFC 9458 section 5.3).
pub const PROBLEM_OHTTP_KEY: &str = "https://iana.org/assignments/http-problem-types#ohttp-key";
/// Problem type of a session whose host is gone or which the host no longer knows: the
/// client starts a new session (with a new token). Retryable.
pub const PROBLEM_SESSION_LOST: &str = "https://cloister.dev/problems/session-lost";

/// A session id: 32 random bytes chosen by the client, one per TLS session.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(pub [u8; 32]);

impl SessionId {
    /// A fresh random session id.
    pub fn random() -> Result<SessionId, getrandom::Error> {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b)?;
        Ok(SessionId(b))
    }

    /// The id as 64 lower-case hex digits (its only text form).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// Session ids are not secret, but they are per-user: keep them out of logs anyway.
impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(..)")
    }
}

/// Why a session id does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionIdError {
    /// Not exactly 64 characters.
    #[error("a session id is 64 hex digits, got {0} characters")]
    Length(usize),
    /// A character that is not a lower-case hex digit.
    #[error("a session id is lower-case hex digits only")]
    NotHex,
}

impl FromStr for SessionId {
    type Err = SessionIdError;

    fn from_str(s: &str) -> Result<SessionId, SessionIdError> {
        if s.len() != 64 {
            return Err(SessionIdError::Length(s.chars().count()));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(SessionIdError::NotHex);
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| SessionIdError::NotHex)?;
        Ok(SessionId(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_round_trip_and_reject_other_forms() {
        let id = SessionId::random().expect("random");
        assert_eq!(id.to_hex().parse::<SessionId>(), Ok(id));
        assert_ne!(SessionId::random().expect("random"), id);
        assert_eq!("ab".parse::<SessionId>(), Err(SessionIdError::Length(2)));
        let upper = id.to_hex().to_uppercase();
        if upper != id.to_hex() {
            assert_eq!(upper.parse::<SessionId>(), Err(SessionIdError::NotHex));
        }
        let bad = format!("{}g", &id.to_hex()[..63]);
        assert_eq!(bad.parse::<SessionId>(), Err(SessionIdError::NotHex));
        assert!(!format!("{id:?}").contains(&id.to_hex()[..8]));
    }
}
