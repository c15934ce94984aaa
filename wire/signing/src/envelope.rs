//! The DSSE envelope: pre-authentication encoding, signing and verification.

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine as _;
use ed25519_dalek::Signer as _;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{SignError, VerifyError};
use crate::keys::{PublicKey, SigningKey};
use crate::names::{validate_plugin_name, validate_version};
use crate::statement::{encode_statement, parse_statement, ReleaseStatement};
use crate::PAYLOAD_TYPE;

/// DSSE v1 pre-authentication encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`,
/// lengths as ASCII decimal byte counts, SP a single space (0x20).
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let type_len = payload_type.len().to_string();
    let body_len = payload.len().to_string();
    let mut out = Vec::with_capacity(
        10 + type_len.len() + payload_type.len() + body_len.len() + payload.len(),
    );
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(type_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(body_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// One signature of an envelope (DSSE `{"keyid": ..., "sig": ...}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Signature {
    /// Claimed signer key id (unauthenticated hint; empty if absent).
    #[serde(default)]
    keyid: String,
    /// Base64 of the 64-byte Ed25519 signature.
    sig: String,
}

impl Signature {
    /// The key id the signature claims (unauthenticated; `""` if absent).
    pub fn key_id(&self) -> &str {
        &self.keyid
    }

    /// The signature, base64 as found in the envelope.
    pub fn sig_base64(&self) -> &str {
        &self.sig
    }
}

/// A DSSE envelope as found in a `.dsse.json` file.
///
/// Constructing one from JSON checks only its shape; nothing in it is
/// trusted until [`Envelope::verify`] succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Envelope {
    payload: String,
    #[serde(rename = "payloadType")]
    payload_type: String,
    signatures: Vec<Signature>,
}

/// A release whose envelope verified against a trusted key and whose
/// component matched the signed digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRelease {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// SHA-256 of the component.
    pub sha256: [u8; 32],
    /// Key id of the trusted key whose signature verified.
    pub signer_key_id: String,
}

impl VerifiedRelease {
    /// The SHA-256 as lowercase hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

impl Envelope {
    /// Parses envelope JSON. Unknown fields are ignored.
    pub fn from_json(json: &[u8]) -> Result<Self, VerifyError> {
        serde_json::from_slice(json).map_err(|e| VerifyError::MalformedEnvelope {
            reason: e.to_string(),
        })
    }

    /// Pretty-printed envelope JSON (standard padded base64, as produced by [`sign_release`]).
    pub fn to_json_pretty(&self) -> String {
        let signatures = self
            .signatures
            .iter()
            .map(|s| {
                let mut m = Map::new();
                m.insert("keyid".to_owned(), Value::String(s.keyid.clone()));
                m.insert("sig".to_owned(), Value::String(s.sig.clone()));
                Value::Object(m)
            })
            .collect();
        let mut m = Map::new();
        m.insert("payload".to_owned(), Value::String(self.payload.clone()));
        m.insert(
            "payloadType".to_owned(),
            Value::String(self.payload_type.clone()),
        );
        m.insert("signatures".to_owned(), Value::Array(signatures));
        format!("{:#}\n", Value::Object(m))
    }

    /// The envelope's `payloadType`.
    pub fn payload_type(&self) -> &str {
        &self.payload_type
    }

    /// The envelope's signatures.
    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    /// The key ids the signatures claim (unauthenticated).
    pub fn key_ids(&self) -> Vec<String> {
        self.signatures.iter().map(|s| s.keyid.clone()).collect()
    }

    /// The decoded payload bytes (unauthenticated).
    pub fn payload_unverified(&self) -> Result<Vec<u8>, VerifyError> {
        decode_base64("payload", &self.payload)
    }

    /// Parses and checks the statement **without verifying any signature**.
    ///
    /// For display only (`cloister plugin inspect`); never base a decision on it.
    pub fn statement_unverified(&self) -> Result<ReleaseStatement, VerifyError> {
        self.check_payload_type()?;
        parse_statement(&self.payload_unverified()?)
    }

    /// Verifies the envelope and the component against trusted keys.
    ///
    /// Order: payload type → a signature whose key id is trusted and that
    /// verifies (strictly) over `PAE(payloadType, payload)` → only then the
    /// statement (types, exactly one valid subject) → component SHA-256
    /// equals the signed digest.
    pub fn verify(
        &self,
        component: &[u8],
        trusted: &[PublicKey],
    ) -> Result<VerifiedRelease, VerifyError> {
        self.check_payload_type()?;
        let payload = self.payload_unverified()?;
        let signer = self.find_trusted_signature(&payload, trusted)?;

        let statement = parse_statement(&payload)?;
        let actual: [u8; 32] = Sha256::digest(component).into();
        if actual != statement.sha256 {
            return Err(VerifyError::DigestMismatch {
                expected: statement.sha256_hex(),
                actual: hex::encode(actual),
            });
        }
        Ok(VerifiedRelease {
            name: statement.name,
            version: statement.version,
            sha256: statement.sha256,
            signer_key_id: signer.key_id(),
        })
    }

    fn check_payload_type(&self) -> Result<(), VerifyError> {
        if self.payload_type != PAYLOAD_TYPE {
            return Err(VerifyError::UnexpectedPayloadType {
                expected: PAYLOAD_TYPE.to_owned(),
                found: self.payload_type.clone(),
            });
        }
        Ok(())
    }

    /// Returns the first trusted key with a valid signature. If signatures by
    /// trusted key ids exist but none verifies, the first failure is returned.
    fn find_trusted_signature(
        &self,
        payload: &[u8],
        trusted: &[PublicKey],
    ) -> Result<PublicKey, VerifyError> {
        if self.signatures.is_empty() {
            return Err(VerifyError::NoSignatures);
        }
        let message = pae(&self.payload_type, payload);
        let trusted: Vec<(String, &PublicKey)> = trusted.iter().map(|k| (k.key_id(), k)).collect();
        let mut first_failure = None;

        for (index, signature) in self.signatures.iter().enumerate() {
            let Some((key_id, key)) = trusted.iter().find(|(id, _)| *id == signature.keyid) else {
                continue;
            };
            match check_signature(index, signature, key_id, key, &message) {
                Ok(()) => return Ok(**key),
                Err(e) => {
                    first_failure.get_or_insert(e);
                }
            }
        }

        Err(
            first_failure.unwrap_or_else(|| VerifyError::NoTrustedSignature {
                present: self.key_ids(),
                trusted: trusted.into_iter().map(|(id, _)| id).collect(),
            }),
        )
    }
}

fn check_signature(
    index: usize,
    signature: &Signature,
    key_id: &str,
    key: &PublicKey,
    message: &[u8],
) -> Result<(), VerifyError> {
    let bytes = decode_base64(&format!("signatures[{index}].sig"), &signature.sig)?;
    let sig = ed25519_dalek::Signature::from_slice(&bytes).map_err(|_| {
        VerifyError::SignatureInvalid {
            key_id: key_id.to_owned(),
            reason: format!(
                "an Ed25519 signature is 64 bytes, signatures[{index}].sig has {}",
                bytes.len()
            ),
        }
    })?;
    key.dalek()
        .verify_strict(message, &sig)
        .map_err(|e| VerifyError::SignatureInvalid {
            key_id: key_id.to_owned(),
            reason: format!("Ed25519 verification over the DSSE PAE failed ({e})"),
        })
}

fn decode_base64(field: &str, text: &str) -> Result<Vec<u8>, VerifyError> {
    STANDARD
        .decode(text)
        .or_else(|e| URL_SAFE.decode(text).map_err(|_| e))
        .map_err(|e| VerifyError::BadBase64 {
            field: field.to_owned(),
            reason: e.to_string(),
        })
}

/// Signs a release: an in-toto statement that `name@version` has the
/// SHA-256 of `component`, in a DSSE envelope signed by `key`.
pub fn sign_release(
    key: &SigningKey,
    name: &str,
    version: &str,
    component: &[u8],
) -> Result<Envelope, SignError> {
    validate_plugin_name(name)?;
    validate_version(version)?;
    let sha256: [u8; 32] = Sha256::digest(component).into();
    let payload = encode_statement(name, version, &sha256).map_err(|e| SignError::Encode {
        reason: e.to_string(),
    })?;
    let signature = key
        .dalek()
        .try_sign(&pae(PAYLOAD_TYPE, &payload))
        .map_err(|e| SignError::Signing {
            reason: e.to_string(),
        })?;
    Ok(Envelope {
        payload: STANDARD.encode(&payload),
        payload_type: PAYLOAD_TYPE.to_owned(),
        signatures: vec![Signature {
            keyid: key.public_key().key_id(),
            sig: STANDARD.encode(signature.to_bytes()),
        }],
    })
}

/// Parses `envelope_json` and verifies it and `component` against `trusted`
/// keys; see [`Envelope::verify`].
pub fn verify_release(
    envelope_json: &[u8],
    component: &[u8],
    trusted: &[PublicKey],
) -> Result<VerifiedRelease, VerifyError> {
    Envelope::from_json(envelope_json)?.verify(component, trusted)
}
