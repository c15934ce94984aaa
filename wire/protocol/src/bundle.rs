//! The evidence bundle (`cloister-evidence/v1`): everything a verifier needs in one JSON
//! document. The host encodes it; the verifier (`cloister_verifier::verify_bundle`) decodes
//! and checks it end to end.
//!
//! # Format
//!
//! ```json
//! {
//!   "format": "cloister-evidence/v1",
//!   "report": "<base64 of the 1184-byte attestation report>",
//!   "vek": "<base64 of the VCEK or VLEK certificate, DER>",
//!   "ask": "<base64 DER>" | null,
//!   "ark": "<base64 DER>" | null,
//!   "measurement_log": "<the canonical measurement-log JSON text, as a JSON string>",
//!   "binding": {"mode": "cert", "spki_sha256": "<64 hex>"} | {"mode": "session"},
//!   "transparency": {"revocations": "<tlog-proof>", "entries": ["<tlog-proof>", ...]}
//! }
//! ```
//!
//! * base64 is the standard alphabet with padding (RFC 4648 section 4).
//! * `ask` (the ASK or ASVK) and `ark` may be `null` or absent: the trusted root's own are
//!   used. An `ark` that is given must be one of the trusted roots.
//! * `measurement_log` is the log exactly as hashed: its canonical RFC 8785 bytes
//!   (`cloister-measurement-log/v1`), carried as a JSON string.
//! * `binding` says how REPORT_DATA binds the report (see [`crate::binding`] and
//!   `docs/attestation.md`): `cert` carries the SHA-256 of the TLS key's SubjectPublicKeyInfo
//!   (a caller that holds the TLS certificate must check that this hash is its key's);
//!   `session` carries nothing, since the exporter value comes from the verifier's own TLS
//!   session.
//! * `transparency` (optional; absent when the host is not configured with a transparency
//!   log): C2SP `tlog-proof@v1` texts, all against one cosigned checkpoint — the log's
//!   revocation list at the checkpoint's last index, and one proof per measurement-log entry
//!   and for the CVM image (see `docs/transparency.md`). Decoded and checked by the verifier.
//! * No other members are allowed.

use base64::Engine as _;
use cloister_display::{Excerpt, Quoted};
use serde::Deserialize;

use crate::binding::BindingMode;
use crate::Evidence;

/// The value of the `format` member of a v1 evidence bundle.
pub const BUNDLE_FORMAT: &str = "cloister-evidence/v1";

/// How REPORT_DATA binds the report in a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleBinding {
    /// Cert mode: REPORT_DATA binds this TLS key (SHA-256 of its DER SubjectPublicKeyInfo)
    /// and the measurement log.
    Cert {
        /// SHA-256 of the TLS key's SubjectPublicKeyInfo.
        spki_sha256: [u8; 32],
    },
    /// Session mode: REPORT_DATA binds the verifier's own TLS session (exporter value) and
    /// the measurement log.
    Session,
    /// Tunnel mode: REPORT_DATA binds a tunneled session's id, the TLS key made for that
    /// session and the measurement log (`binding::report_data_tunnel_mode`).
    Tunnel {
        /// SHA-256 of the session certificate's SubjectPublicKeyInfo.
        spki_sha256: [u8; 32],
        /// The client-chosen session id.
        session_id: [u8; 32],
    },
}

impl BundleBinding {
    /// The [`BindingMode`] this binding is checked as.
    pub fn mode(&self) -> BindingMode {
        match self {
            BundleBinding::Cert { .. } => BindingMode::Cert,
            BundleBinding::Session => BindingMode::Session,
            BundleBinding::Tunnel { .. } => BindingMode::Tunnel,
        }
    }
}

/// An evidence bundle (`cloister-evidence/v1`), decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceBundle {
    /// The attestation report (1184 bytes when valid; checked by [`verify`]).
    pub report: Vec<u8>,
    /// The VCEK or VLEK certificate (DER).
    pub vek_der: Vec<u8>,
    /// The ASK or ASVK (DER), if carried.
    pub ask_der: Option<Vec<u8>>,
    /// The ARK (DER), if carried.
    pub ark_der: Option<Vec<u8>>,
    /// The measurement log's canonical bytes (checked by the verifier's `verify_bundle`).
    pub measurement_log: Vec<u8>,
    /// How REPORT_DATA binds the report.
    pub binding: BundleBinding,
    /// Transparency-log proofs, if the host carries them.
    pub transparency: Option<BundleTransparency>,
}

/// The transparency-log proofs of a bundle, as texts (`tlog-proof@v1`), not yet parsed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleTransparency {
    /// The proof of the log's revocation list (the checkpoint's last entry).
    pub revocations: String,
    /// One proof per measured artifact and for the image.
    pub entries: Vec<String>,
}

/// Why an evidence bundle could not be decoded. Every variant names the member.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// Not JSON of the bundle's shape (missing or unknown member, wrong type).
    #[error("malformed evidence bundle: {}", Excerpt(.reason))]
    Malformed {
        /// The parser's message (it names the member).
        reason: String,
    },
    /// `format` is not [`BUNDLE_FORMAT`].
    #[error("unsupported evidence bundle format {}, expected {BUNDLE_FORMAT:?}", Quoted(.found))]
    WrongFormat {
        /// The format found.
        found: String,
    },
    /// A base64 member does not decode.
    #[error("evidence bundle member `{field}` is not valid base64: {}", Excerpt(.reason))]
    Base64 {
        /// The member: "report", "vek", "ask" or "ark".
        field: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// `binding.spki_sha256` is not 64 hex characters.
    #[error("evidence bundle member `binding.spki_sha256` is not 64 hex characters")]
    SpkiHash,
    /// `binding.session` is not 64 hex characters.
    #[error("evidence bundle member `binding.session` is not 64 hex characters")]
    SessionId,
}

#[derive(serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    format: String,
    report: String,
    vek: String,
    #[serde(default)]
    ask: Option<String>,
    #[serde(default)]
    ark: Option<String>,
    measurement_log: String,
    binding: WireBinding,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    transparency: Option<BundleTransparency>,
}

#[derive(serde::Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase", deny_unknown_fields)]
enum WireBinding {
    Cert {
        spki_sha256: String,
    },
    // A struct variant, not a unit one: serde ignores unknown members next to the tag of an
    // internally tagged unit variant, even with deny_unknown_fields.
    Session {},
    Tunnel {
        spki_sha256: String,
        session: String,
    },
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn decode_b64(field: &'static str, text: &str) -> Result<Vec<u8>, BundleError> {
    b64().decode(text).map_err(|e| BundleError::Base64 {
        field,
        reason: e.to_string(),
    })
}

impl EvidenceBundle {
    /// Decode a bundle from its JSON text. Only the encoding is checked here; the content is
    /// checked by the verifier (`cloister_verifier::verify_bundle`).
    pub fn from_json(json: &[u8]) -> Result<Self, BundleError> {
        let wire: Wire = serde_json::from_slice(json).map_err(|e| BundleError::Malformed {
            reason: e.to_string(),
        })?;
        if wire.format != BUNDLE_FORMAT {
            return Err(BundleError::WrongFormat { found: wire.format });
        }
        let binding = match wire.binding {
            WireBinding::Session {} => BundleBinding::Session,
            WireBinding::Cert { spki_sha256 } => {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(&spki_sha256, &mut hash).map_err(|_| BundleError::SpkiHash)?;
                BundleBinding::Cert { spki_sha256: hash }
            }
            WireBinding::Tunnel {
                spki_sha256,
                session,
            } => {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(&spki_sha256, &mut hash).map_err(|_| BundleError::SpkiHash)?;
                let mut session_id = [0u8; 32];
                hex::decode_to_slice(&session, &mut session_id)
                    .map_err(|_| BundleError::SessionId)?;
                BundleBinding::Tunnel {
                    spki_sha256: hash,
                    session_id,
                }
            }
        };
        Ok(EvidenceBundle {
            report: decode_b64("report", &wire.report)?,
            vek_der: decode_b64("vek", &wire.vek)?,
            ask_der: wire
                .ask
                .as_deref()
                .map(|t| decode_b64("ask", t))
                .transpose()?,
            ark_der: wire
                .ark
                .as_deref()
                .map(|t| decode_b64("ark", t))
                .transpose()?,
            measurement_log: wire.measurement_log.into_bytes(),
            binding,
            transparency: wire.transparency,
        })
    }

    /// Encode the bundle as JSON (compact, members in the order of the format).
    ///
    /// The measurement log is carried as a string, so bytes that are not UTF-8 (never the
    /// case for a valid log) are replaced and the log will then fail verification.
    pub fn to_json(&self) -> String {
        let wire = Wire {
            format: BUNDLE_FORMAT.to_owned(),
            report: b64().encode(&self.report),
            vek: b64().encode(&self.vek_der),
            ask: self.ask_der.as_ref().map(|d| b64().encode(d)),
            ark: self.ark_der.as_ref().map(|d| b64().encode(d)),
            measurement_log: String::from_utf8_lossy(&self.measurement_log).into_owned(),
            binding: match self.binding {
                BundleBinding::Cert { spki_sha256 } => WireBinding::Cert {
                    spki_sha256: hex::encode(spki_sha256),
                },
                BundleBinding::Session => WireBinding::Session {},
                BundleBinding::Tunnel {
                    spki_sha256,
                    session_id,
                } => WireBinding::Tunnel {
                    spki_sha256: hex::encode(spki_sha256),
                    session: hex::encode(session_id),
                },
            },
            transparency: self.transparency.clone(),
        };
        // Strings and plain structs always serialize.
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// The SNP evidence (report and certificates) of the bundle.
    pub fn evidence(&self) -> Evidence {
        Evidence {
            report: self.report.clone(),
            vek_der: self.vek_der.clone(),
            intermediate_der: self.ask_der.clone(),
            ark_der: self.ark_der.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EvidenceBundle {
        EvidenceBundle {
            report: vec![1, 2, 3],
            vek_der: vec![4, 5],
            ask_der: None,
            ark_der: Some(vec![6]),
            measurement_log: br#"{"entries":[],"format":"cloister-measurement-log/v1"}"#.to_vec(),
            binding: BundleBinding::Cert {
                spki_sha256: [0xAB; 32],
            },
            transparency: None,
        }
    }

    #[test]
    fn json_round_trip_and_exact_text() -> Result<(), BundleError> {
        let b = sample();
        let json = b.to_json();
        assert_eq!(
            json,
            format!(
                concat!(
                    r#"{{"format":"cloister-evidence/v1","report":"AQID","vek":"BAU=","ask":null,"ark":"Bg==","#,
                    r#""measurement_log":"{{\"entries\":[],\"format\":\"cloister-measurement-log/v1\"}}","#,
                    r#""binding":{{"mode":"cert","spki_sha256":"{}"}}}}"#
                ),
                "ab".repeat(32)
            )
        );
        assert_eq!(EvidenceBundle::from_json(json.as_bytes())?, b);
        let session = EvidenceBundle {
            binding: BundleBinding::Session,
            ..b
        };
        assert!(session
            .to_json()
            .contains(r#""binding":{"mode":"session"}"#));
        assert_eq!(
            EvidenceBundle::from_json(session.to_json().as_bytes())?,
            session
        );
        let tunnel = EvidenceBundle {
            binding: BundleBinding::Tunnel {
                spki_sha256: [0xAB; 32],
                session_id: [0x5C; 32],
            },
            ..session
        };
        assert!(tunnel.to_json().contains(&format!(
            r#""binding":{{"mode":"tunnel","spki_sha256":"{}","session":"{}"}}"#,
            "ab".repeat(32),
            "5c".repeat(32)
        )));
        assert_eq!(
            EvidenceBundle::from_json(tunnel.to_json().as_bytes())?,
            tunnel
        );
        // A session id that is not 32 bytes of hex is refused, naming the member.
        assert_eq!(
            EvidenceBundle::from_json(
                tunnel
                    .to_json()
                    .replace(&"5c".repeat(32), "5c5c")
                    .as_bytes()
            ),
            Err(BundleError::SessionId)
        );
        // So is an extra member in the tunnel binding.
        assert!(matches!(
            EvidenceBundle::from_json(
                tunnel
                    .to_json()
                    .replace(r#""mode":"tunnel""#, r#""mode":"tunnel","extra":1"#)
                    .as_bytes()
            ),
            Err(BundleError::Malformed { .. })
        ));
        Ok(())
    }

    #[test]
    fn json_errors_name_the_field() {
        let ok = sample().to_json();
        let err = |json: &str| EvidenceBundle::from_json(json.as_bytes()).err();
        assert!(matches!(
            err(&ok.replace("cloister-evidence/v1", "cloister-evidence/v2")),
            Some(BundleError::WrongFormat { .. })
        ));
        assert!(matches!(
            err(&ok.replace("\"AQID\"", "\"!!\"")),
            Some(BundleError::Base64 {
                field: "report",
                ..
            })
        ));
        assert!(matches!(
            err(&ok.replace("\"BAU=\"", "\"B\"")),
            Some(BundleError::Base64 { field: "vek", .. })
        ));
        assert!(matches!(
            err(&ok.replace("\"Bg==\"", "\"*\"")),
            Some(BundleError::Base64 { field: "ark", .. })
        ));
        assert_eq!(
            err(&ok.replace(&"ab".repeat(32), "abcd")),
            Some(BundleError::SpkiHash)
        );
        match err(&ok.replace("\"vek\"", "\"vcek\"")) {
            Some(BundleError::Malformed { reason }) => assert!(reason.contains("vcek"), "{reason}"),
            other => panic!("{other:?}"),
        }
        match err(&ok.replace("\"cert\"", "\"tls\"")) {
            Some(BundleError::Malformed { reason }) => assert!(reason.contains("tls"), "{reason}"),
            other => panic!("{other:?}"),
        }
        // ask and ark may be absent.
        let minimal = ok.replace(r#""ask":null,"ark":"Bg==","#, "");
        assert!(
            EvidenceBundle::from_json(minimal.as_bytes()).is_ok(),
            "{minimal}"
        );
    }

    /// Issue 11, class 7: no member the format does not define is accepted, at any level
    /// (the binding object included, in both modes), and no member may appear twice.
    #[test]
    fn unknown_and_duplicate_members_are_refused() {
        let cert = sample().to_json();
        let session = EvidenceBundle {
            binding: BundleBinding::Session,
            ..sample()
        }
        .to_json();
        let hash = format!(r#""spki_sha256":"{}""#, "ab".repeat(32));
        let cases = [
            cert.replacen('{', r#"{"extra":1,"#, 1),
            cert.replace(r#""mode":"cert""#, r#""mode":"cert","extra":1"#),
            session.replace(r#""mode":"session""#, r#""mode":"session","extra":1"#),
            session.replace(
                r#""mode":"session""#,
                r#""mode":"session","spki_sha256":"00""#,
            ),
            cert.replacen('{', r#"{"report":"AQID","#, 1),
            cert.replace(&hash, &format!("{hash},{hash}")),
            cert.replace(r#""mode":"cert""#, r#""mode":"cert","mode":"cert""#),
            session.replace(
                r#""mode":"session""#,
                r#""mode":"session","mode":"session""#,
            ),
        ];
        for json in cases {
            assert!(
                matches!(
                    EvidenceBundle::from_json(json.as_bytes()),
                    Err(BundleError::Malformed { .. })
                ),
                "accepted: {json}"
            );
        }
    }
}
