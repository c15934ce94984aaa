//! A small blocking client that a log uses to call a witness (ureq, HTTP/1.1 with
//! keep-alive when a [`WitnessClient`] is reused).
//!
//! ```no_run
//! # use std::time::Duration;
//! # use cloister_witness::client::{WitnessClient, AddOutcome};
//! # fn f(note: &str, proof: &[[u8; 32]], witness_keys: &[cloister_tlog::VerifierKey]) -> Result<(), Box<dyn std::error::Error>> {
//! let witness = WitnessClient::new("http://witness.example:8080", Duration::from_secs(10));
//! let mut old_size = 0; // or what the log remembers of this witness
//! let lines = loop {
//!     match witness.add_checkpoint(old_size, proof, note)? {
//!         AddOutcome::Cosigned(lines) => break lines,
//!         // The witness holds another size: build the proof from there and retry once.
//!         AddOutcome::Conflict { witness_size } => old_size = witness_size,
//!     }
//! };
//! let cosigned = cloister_witness::client::attach_cosignatures(note, &lines, witness_keys)?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use cloister_display::Excerpt;
use cloister_tlog::checkpoint::parse_decimal;
use cloister_tlog::note::Verified;
use cloister_tlog::{Hash, Note, TlogError, VerifierKey};

use crate::request::encode_add_checkpoint;
use crate::state::origin_hash;

/// Largest response body read from a witness, in bytes.
pub const MAX_RESPONSE_BYTES: u64 = 64 * 1024;

/// What a witness answered to `add-checkpoint`, when it is not a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    /// 200: the witness's cosignature lines (each `— <name> <base64>\n`).
    Cosigned(Vec<String>),
    /// 409: the witness's latest cosigned checkpoint has another size than the old size
    /// sent: send a proof from `witness_size` instead.
    Conflict {
        /// The size of the latest checkpoint the witness cosigned for this log.
        witness_size: u64,
    },
}

/// A refusal or a failure to talk to a witness. Messages are the witness's own (an excerpt,
/// sanitized).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// 404: the witness does not know the log (or the URL is wrong).
    #[error("witness: 404 not found: {0}")]
    NotFound(String),
    /// 403: no signature of a log key the witness trusts verified.
    #[error("witness: 403 forbidden: {0}")]
    Forbidden(String),
    /// 400: the request was malformed, or the old size was above the checkpoint's.
    #[error("witness: 400 bad request: {0}")]
    BadRequest(String),
    /// 422: the checkpoint is not consistent with what the witness cosigned (a fork, a bad
    /// proof), or a size-0 checkpoint with a non-empty root.
    #[error("witness: 422 unprocessable: {0}")]
    Unprocessable(String),
    /// Any other HTTP status.
    #[error("witness: HTTP status {status}: {message}")]
    Other {
        /// The status.
        status: u16,
        /// The witness's message.
        message: String,
    },
    /// The witness could not be reached, or the exchange failed.
    #[error("witness {}: {message}", Excerpt(url))]
    Transport {
        /// The URL called.
        url: String,
        /// What failed.
        message: String,
    },
    /// The witness answered something that is not what the protocol says.
    #[error("witness: malformed answer: {0}")]
    Response(String),
    /// Cosignature lines that do not verify.
    #[error("witness cosignature: {0}")]
    Cosignature(TlogError),
}

/// A client of one witness. Reusing it reuses connections.
#[derive(Debug, Clone)]
pub struct WitnessClient {
    agent: ureq::Agent,
    base_url: String,
}

impl WitnessClient {
    /// A client of the witness at `base_url` (its prefix, e.g. `http://127.0.0.1:8080` or
    /// `https://witness.example/w1`), each call bounded by `timeout` in all.
    pub fn new(base_url: &str, timeout: Duration) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        Self {
            agent,
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// `POST <base>/add-checkpoint` with `old_size`, the consistency proof from `old_size`
    /// to the checkpoint, and the log-signed checkpoint note (text, blank line, signatures).
    pub fn add_checkpoint(
        &self,
        old_size: u64,
        proof: &[Hash],
        signed_note: &str,
    ) -> Result<AddOutcome, ClientError> {
        let url = format!("{}/add-checkpoint", self.base_url);
        let body = encode_add_checkpoint(old_size, proof, signed_note);
        let resp = self
            .agent
            .post(&url)
            .header("Content-Type", "text/plain; charset=utf-8")
            .send(body.as_bytes())
            .map_err(|e| transport(&url, e))?;
        let (status, body) = read(&url, resp)?;
        match status {
            200 => {
                let lines: Vec<String> = body.split_inclusive('\n').map(str::to_owned).collect();
                let well_formed = |l: &String| {
                    l.starts_with("\u{2014} ") && l.ends_with('\n') && l.len() > "\u{2014} \n".len()
                };
                if lines.is_empty() || !lines.iter().all(well_formed) {
                    return Err(ClientError::Response(format!(
                        "a 200 answer is signature lines, got {}",
                        Excerpt(&body)
                    )));
                }
                Ok(AddOutcome::Cosigned(lines))
            }
            409 => {
                let witness_size = body
                    .strip_suffix('\n')
                    .and_then(|s| parse_decimal(s, "size").ok())
                    .ok_or_else(|| {
                        ClientError::Response(format!(
                            "a 409 answer is a size and a newline, got {}",
                            Excerpt(&body)
                        ))
                    })?;
                Ok(AddOutcome::Conflict { witness_size })
            }
            s => Err(refusal(s, &body)),
        }
    }

    /// `GET <base>/<origin hash>/checkpoint`: the latest checkpoint the witness cosigned
    /// for `origin` (with the log's and the witness's signatures, unverified), `None` if it
    /// never cosigned one.
    pub fn get_checkpoint(&self, origin: &str) -> Result<Option<Note>, ClientError> {
        let url = format!("{}/{}/checkpoint", self.base_url, origin_hash(origin));
        let resp = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| transport(&url, e))?;
        let (status, body) = read(&url, resp)?;
        match status {
            200 => Note::parse(body.as_bytes())
                .map(Some)
                .map_err(|e| ClientError::Response(e.to_string())),
            404 => Ok(None),
            s => Err(refusal(s, &body)),
        }
    }
}

/// [`WitnessClient::add_checkpoint`] with a client made for this one call.
pub fn add_checkpoint(
    base_url: &str,
    old_size: u64,
    proof: &[Hash],
    signed_note: &str,
    timeout: Duration,
) -> Result<AddOutcome, ClientError> {
    WitnessClient::new(base_url, timeout).add_checkpoint(old_size, proof, signed_note)
}

/// [`WitnessClient::get_checkpoint`] with a client made for this one call.
pub fn get_checkpoint(
    base_url: &str,
    origin: &str,
    timeout: Duration,
) -> Result<Option<Note>, ClientError> {
    WitnessClient::new(base_url, timeout).get_checkpoint(origin)
}

/// Adds a witness's cosignature `lines` to `signed_note` and checks them against
/// `witness_keys` (type 0x04 verifier keys): the lines of unknown keys are ignored (as
/// tlog-witness says), a known key's line that does not verify is an error, and at least
/// one known key must have cosigned. Returns the note with the verified lines added and
/// what verified.
pub fn attach_cosignatures(
    signed_note: &str,
    lines: &[String],
    witness_keys: &[VerifierKey],
) -> Result<(Note, Vec<Verified>), ClientError> {
    let mut note =
        Note::parse(signed_note.as_bytes()).map_err(|e| ClientError::Response(e.to_string()))?;
    let mut answer = Note::unsigned(note.text()).map_err(ClientError::Cosignature)?;
    for line in lines {
        answer
            .add_signature_line(line)
            .map_err(ClientError::Cosignature)?;
    }
    let verified = answer
        .open(witness_keys)
        .map_err(ClientError::Cosignature)?;
    for sig in answer.signatures() {
        if verified
            .iter()
            .any(|v| v.key.name() == sig.name && v.key.id() == sig.id)
        {
            note.add_signature_line(&sig.to_line())
                .map_err(ClientError::Cosignature)?;
        }
    }
    Ok((note, verified))
}

fn transport(url: &str, e: ureq::Error) -> ClientError {
    ClientError::Transport {
        url: url.to_owned(),
        message: e.to_string(),
    }
}

fn read(
    url: &str,
    mut resp: ureq::http::Response<ureq::Body>,
) -> Result<(u16, String), ClientError> {
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE_BYTES)
        .read_to_string()
        .map_err(|e| transport(url, e))?;
    Ok((status, body))
}

fn refusal(status: u16, body: &str) -> ClientError {
    let message = Excerpt(body.trim_end()).to_string();
    match status {
        400 => ClientError::BadRequest(message),
        403 => ClientError::Forbidden(message),
        404 => ClientError::NotFound(message),
        422 => ClientError::Unprocessable(message),
        status => ClientError::Other { status, message },
    }
}
