//! Flights through an Oblivious HTTP relay and gateway (RFC 9458), paid for with anonymous
//! Privacy Pass tokens (RFC 9577/9578): the client side of `cloister_tunnel`'s path.
//!
//! * The key configurations (`application/ohttp-keys`, RFC 9540) are fetched **through the
//!   relay**, so the gateway cannot tell who fetched which configuration, and kept for the
//!   transport's life; a gateway answer of problem type `ohttp-key` (the key was rotated
//!   out) makes the transport refetch them once and retry the flight.
//! * Each flight is a Binary HTTP request `POST /v1/tunnel` with the session id header,
//!   encapsulated to the gateway and posted to the relay. The first flight of a session also
//!   carries `Authorization: PrivateToken token=…`, a token obtained from the issuer
//!   beforehand ([`TokenSource`]); the gateway spends it once.
//! * The relay sees the client's address and ciphertext. The gateway sees a session id, a
//!   token it cannot link to an issuance, and TLS records. The host sees TLS records from
//!   the gateway.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};

use cloister_tunnel::{
    SessionId, INNER_TUNNEL_PATH, KEYS_PATH, MAX_FLIGHT_BYTES, OHTTP_KEYS_TYPE, OHTTP_PATH,
    OHTTP_REQ_TYPE, OHTTP_RES_TYPE, PROBLEM_OHTTP_KEY, PROBLEM_SESSION_LOST, SESSION_HEADER,
    TLS_RECORDS_TYPE,
};

use cloister_transparency::Statement;

use crate::published_keys::PublishedKeys;
use crate::tunnel::{problem_of, FlightTransport, HttpConn, TransportError};
use crate::ClientError;

/// Where tokens come from: one fresh token per session.
pub trait TokenSource: Send + Sync {
    /// A token (the RFC 9577 `Token` bytes) for the gateway's challenge.
    fn token(&self) -> impl Future<Output = Result<Vec<u8>, TransportError>> + Send;
}

/// Tokens fetched from a Privacy Pass issuer with an account's API key, one per session.
///
/// The issuer learns that the account obtained a token, never for which session: the
/// request is blinded. The key must be one the issuer's directory lists for everyone (it
/// is checked on every fetch), and the one the gateway was configured with.
pub struct IssuerTokens {
    client: Arc<cloister_issuer::client::IssuerClient>,
    api_key: String,
    issuer_name: String,
    challenge: cloister_issuer::redeem::Challenge,
    key: cloister_issuer::keys::IssuerPublicKey,
    published: Option<Arc<PublishedKeys>>,
}

impl std::fmt::Debug for IssuerTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerTokens").finish_non_exhaustive()
    }
}

impl IssuerTokens {
    /// Tokens from the issuer whose directory is `directory_url`, under its name
    /// `issuer_name` (the gateway's challenge: this issuer, no origin, no redemption
    /// context), for the key `key`, paid with `api_key`.
    pub fn new(
        directory_url: &str,
        issuer_name: &str,
        key: cloister_issuer::keys::IssuerPublicKey,
        api_key: String,
    ) -> Result<IssuerTokens, ClientError> {
        let challenge = cloister_issuer::redeem::Challenge::new(issuer_name, &[])
            .map_err(|e| ClientError::Http(format!("invalid issuer name {issuer_name:?}: {e}")))?;
        Ok(IssuerTokens {
            client: Arc::new(cloister_issuer::client::IssuerClient::new(
                directory_url,
                std::time::Duration::from_secs(10),
            )),
            api_key,
            issuer_name: issuer_name.to_owned(),
            challenge,
            key,
            published: None,
        })
    }

    /// Requires the issuer key to be published in the transparency log (key consistency):
    /// no token is fetched for a key the log does not show everyone.
    pub fn require_published(mut self, keys: Arc<PublishedKeys>) -> IssuerTokens {
        self.published = Some(keys);
        self
    }
}

impl TokenSource for IssuerTokens {
    async fn token(&self) -> Result<Vec<u8>, TransportError> {
        if let Some(published) = &self.published {
            let published = Arc::clone(published);
            let (issuer, id) = (self.issuer_name.clone(), self.key.token_key_id());
            tokio::task::spawn_blocking(move || {
                let id_hex = hex::encode(id);
                let what = format!(
                    "the issuer key {} of {}",
                    &id_hex[..12],
                    cloister_display::quoted(&issuer)
                );
                published.check(&id, &what, |s| {
                    matches!(s, Statement::TokenIssuerKey { issuer: i, token_type: 2, token_key_id }
                        if *i == issuer && *token_key_id == id_hex)
                })
            })
            .await
            .map_err(|e| TransportError::Http(format!("the key check task failed: {e}")))?
            .map_err(|e| TransportError::KeyNotPublished(cloister_display::error_chain(&e)))?;
        }
        let client = Arc::clone(&self.client);
        let api_key = self.api_key.clone();
        let challenge = self.challenge.clone();
        let key = self.key.clone();
        tokio::task::spawn_blocking(move || client.fetch_token_for_key(&api_key, &challenge, &key))
            .await
            .map_err(|e| TransportError::Http(format!("the token task failed: {e}")))?
            .map_err(|e| TransportError::Token(e.to_string()))
    }
}

/// Flights through an Oblivious HTTP relay (`http://HOST:PORT`, routes `/ohttp` and
/// `/ohttp-keys`) to the gateway behind it.
pub struct ObliviousTransport<S: TokenSource> {
    relay: HttpConn,
    keys: Mutex<Option<Vec<u8>>>,
    tokens: S,
    /// Sessions whose first flight (with its token) the gateway accepted.
    started: Mutex<HashSet<SessionId>>,
    /// What this transport sent and received, for demos and tests (sizes only).
    stats: Mutex<ObliviousStats>,
    /// The log the gateway's key configurations must be published in, and the gateway's name.
    published: Option<(Arc<PublishedKeys>, String)>,
}

/// Sizes seen by an [`ObliviousTransport`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObliviousStats {
    /// Encapsulated requests sent.
    pub requests: u32,
    /// Tokens spent (one per session).
    pub tokens: u32,
    /// Key configuration fetches.
    pub key_fetches: u32,
    /// Bytes posted to the relay.
    pub bytes_out: usize,
    /// Bytes received from the relay.
    pub bytes_in: usize,
}

impl<S: TokenSource> std::fmt::Debug for ObliviousTransport<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObliviousTransport")
            .field("relay", &self.relay.authority)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl<S: TokenSource> ObliviousTransport<S> {
    /// A transport through the relay at `relay_url`, paying sessions with `tokens`.
    pub fn new(relay_url: &str, tokens: S) -> Result<ObliviousTransport<S>, ClientError> {
        Ok(ObliviousTransport {
            relay: HttpConn::new(relay_url, "a relay URL is http://HOST:PORT")?,
            keys: Mutex::new(None),
            tokens,
            started: Mutex::new(HashSet::new()),
            stats: Mutex::new(ObliviousStats::default()),
            published: None,
        })
    }

    /// Requires every key configuration the gateway serves to be published in the
    /// transparency log for the gateway `gateway` and valid now (key consistency): no flight
    /// is encapsulated to a key the log does not show everyone.
    pub fn require_published(
        mut self,
        keys: Arc<PublishedKeys>,
        gateway: &str,
    ) -> ObliviousTransport<S> {
        self.published = Some((keys, gateway.to_owned()));
        self
    }

    /// What the transport sent and received so far.
    pub fn stats(&self) -> ObliviousStats {
        *lock(&self.stats)
    }

    /// The gateway's key configurations, fetched through the relay (and cached).
    pub async fn key_configs(&self) -> Result<Vec<u8>, TransportError> {
        if let Some(k) = lock(&self.keys).clone() {
            return Ok(k);
        }
        let answer = self
            .relay
            .send("GET", KEYS_PATH, None, Vec::new(), 64 * 1024)
            .await?;
        lock(&self.stats).key_fetches += 1;
        if answer.status != 200 || answer.content_type != OHTTP_KEYS_TYPE {
            return Err(TransportError::Refused {
                status: answer.status,
                code: "ohttp-keys".into(),
                detail: format!(
                    "the key configurations did not come back as {OHTTP_KEYS_TYPE} (got {:?})",
                    cloister_display::excerpt(&answer.content_type)
                ),
            });
        }
        // Parsed now, so that a bad list fails here and not at the first flight.
        ohttp::ClientRequest::from_encoded_config_list(&answer.body).map_err(|e| {
            TransportError::Refused {
                status: 200,
                code: "ohttp-keys".into(),
                detail: format!("the gateway's key configurations do not parse: {e}"),
            }
        })?;
        let keys = answer.body.to_vec();
        if let Some((published, gateway)) = &self.published {
            let (published, gateway, list) = (Arc::clone(published), gateway.clone(), keys.clone());
            tokio::task::spawn_blocking(move || check_configs(&published, &gateway, &list))
                .await
                .map_err(|e| TransportError::Http(format!("the key check task failed: {e}")))??;
        }
        *lock(&self.keys) = Some(keys.clone());
        Ok(keys)
    }

    async fn once(
        &self,
        inner: &[u8],
    ) -> Result<Result<(u16, String, Vec<u8>), (u16, String)>, TransportError> {
        let keys = self.key_configs().await?;
        let request = ohttp::ClientRequest::from_encoded_config_list(&keys)
            .map_err(|e| TransportError::Http(format!("no usable gateway key: {e}")))?;
        let (enc, response) = request
            .encapsulate(inner)
            .map_err(|e| TransportError::Http(format!("cannot encapsulate: {e}")))?;
        let sent = enc.len();
        let answer = self
            .relay
            .send(
                "POST",
                OHTTP_PATH,
                Some(OHTTP_REQ_TYPE),
                enc,
                MAX_FLIGHT_BYTES + 64 * 1024,
            )
            .await?;
        {
            let mut st = lock(&self.stats);
            st.requests += 1;
            st.bytes_out += sent;
            st.bytes_in += answer.body.len();
        }
        if answer.status != 200 {
            // Outer errors concern the encapsulation only (the relay can read them).
            let text = String::from_utf8_lossy(&answer.body);
            let code = if text.contains(PROBLEM_OHTTP_KEY) {
                PROBLEM_OHTTP_KEY.to_owned()
            } else {
                cloister_display::excerpt(&text)
            };
            return Ok(Err((answer.status, code)));
        }
        if answer.content_type != OHTTP_RES_TYPE {
            return Err(TransportError::Http(
                "the relay's answer is not message/ohttp-res".into(),
            ));
        }
        let plain = response.decapsulate(&answer.body).map_err(|e| {
            TransportError::Http(format!("the gateway's answer does not decrypt: {e}"))
        })?;
        let mut cursor = std::io::Cursor::new(plain.as_slice());
        let msg = bhttp::Message::read_bhttp(&mut cursor).map_err(|e| {
            TransportError::Http(format!("the gateway's answer is not Binary HTTP: {e}"))
        })?;
        let status =
            msg.control().status().map(|s| s.code()).ok_or_else(|| {
                TransportError::Http("the gateway's answer is not a response".into())
            })?;
        let content_type = msg
            .header()
            .get(b"content-type")
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        Ok(Ok((status, content_type, msg.content().to_vec())))
    }
}

/// Every configuration of the list must be published for `gateway` and valid now.
fn check_configs(
    published: &PublishedKeys,
    gateway: &str,
    list: &[u8],
) -> Result<(), TransportError> {
    let configs =
        crate::published_keys::split_key_configs(list).map_err(|e| TransportError::Refused {
            status: 200,
            code: "ohttp-keys".into(),
            detail: e,
        })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for config in configs {
        let hex_config = hex::encode(config);
        let what = format!(
            "the key configuration {} of gateway {}",
            config[0],
            cloister_display::quoted(gateway)
        );
        published
            .check(config, &what, |s| {
                matches!(s, Statement::OhttpKeyConfig { gateway: g, config: c, not_before, not_after, .. }
                    if g == gateway && *c == hex_config && *not_before <= now && now < *not_after)
            })
            .map_err(|e| TransportError::KeyNotPublished(cloister_display::error_chain(&e)))?;
    }
    Ok(())
}

impl<S: TokenSource> FlightTransport for ObliviousTransport<S> {
    async fn exchange(
        &self,
        session: &SessionId,
        records: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        let first = !lock(&self.started).contains(session);
        let mut msg = bhttp::Message::request(
            b"POST".to_vec(),
            b"https".to_vec(),
            b"cloister-gateway".to_vec(),
            INNER_TUNNEL_PATH.as_bytes().to_vec(),
        );
        msg.put_header(SESSION_HEADER, session.to_hex());
        msg.put_header("content-type", TLS_RECORDS_TYPE);
        if first {
            let token = self.tokens.token().await?;
            msg.put_header(
                "authorization",
                cloister_issuer::redeem::header::format_authorization(&token),
            );
            lock(&self.stats).tokens += 1;
        }
        msg.write_content(&records);
        let mut inner = Vec::new();
        msg.write_bhttp(bhttp::Mode::KnownLength, &mut inner)
            .map_err(|e| TransportError::Http(format!("cannot encode the flight: {e}")))?;
        let mut outcome = self.once(&inner).await?;
        if let Err((_, code)) = &outcome {
            if code == PROBLEM_OHTTP_KEY {
                // The gateway rotated its keys: refetch them (through the relay) once.
                *lock(&self.keys) = None;
                outcome = self.once(&inner).await?;
            }
        }
        let (status, content_type, body) = match outcome {
            Ok(inner) => inner,
            Err((status, detail)) => {
                return Err(TransportError::Refused {
                    status,
                    code: "ohttp".into(),
                    detail,
                })
            }
        };
        match status {
            200 if content_type == TLS_RECORDS_TYPE => {
                lock(&self.started).insert(*session);
                Ok(body)
            }
            200 => Err(TransportError::Http(
                "the gateway's answer is not TLS records".into(),
            )),
            503 | 404 if String::from_utf8_lossy(&body).contains(PROBLEM_SESSION_LOST) => {
                lock(&self.started).remove(session);
                Err(TransportError::SessionLost)
            }
            // A session the gateway forgot (idle) looks new to it and wants a token.
            401 if !first => {
                lock(&self.started).remove(session);
                Err(TransportError::SessionLost)
            }
            _ => {
                let (code, detail) = problem_of(&body);
                Err(TransportError::Refused {
                    status,
                    code,
                    detail,
                })
            }
        }
    }
}
