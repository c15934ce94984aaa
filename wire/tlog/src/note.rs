//! C2SP signed notes (<https://c2sp.org/signed-note>): Ed25519 note signatures (type 0x01),
//! timestamped Ed25519 cosignatures (type 0x04, <https://c2sp.org/tlog-cosignature>),
//! verifier keys (`vkey`) and signer keys (`skey`).
//!
//! A note is a UTF-8 text ending in a newline, a blank line, then one or more lines
//! `— <key name> <base64(key id || signature)>`. Verification follows the spec: signatures
//! whose (name, key id) match no known key are ignored; a known key's signature that fails to
//! verify rejects the whole note; a note with no verified known signature is rejected.

use base64::Engine as _;
use cloister_display::Quoted;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::TlogError;

/// Largest note accepted, in bytes (text and signatures).
pub const MAX_NOTE_BYTES: usize = 64 * 1024;
/// Most signature lines accepted on one note (the spec requires at least 16).
pub const MAX_SIGNATURES: usize = 64;

const EM_DASH_SP: &str = "\u{2014} ";

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// A signature algorithm of a key, by its signed-note type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `0x01`: Ed25519 over the note text (logs sign checkpoints with it).
    Ed25519,
    /// `0x04`: timestamped Ed25519 checkpoint cosignature (witnesses).
    Cosignature,
}

impl KeyType {
    /// The type byte.
    pub fn byte(self) -> u8 {
        match self {
            KeyType::Ed25519 => 0x01,
            KeyType::Cosignature => 0x04,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0x01 => Some(KeyType::Ed25519),
            0x04 => Some(KeyType::Cosignature),
            _ => None,
        }
    }

    /// Length of the signature after the 4-byte key id.
    fn signature_len(self) -> usize {
        match self {
            KeyType::Ed25519 => 64,
            KeyType::Cosignature => 8 + 64,
        }
    }
}

/// Checks a key name: non-empty, no Unicode space, no `+`, no control character.
pub fn check_key_name(name: &str) -> Result<(), TlogError> {
    if name.is_empty() {
        return Err(TlogError::Key("the key name is empty".into()));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c == '+' || c.is_control())
    {
        return Err(TlogError::Key(format!(
            "key name {} contains a space, a '+' or a control character",
            Quoted(name)
        )));
    }
    Ok(())
}

/// `SHA-256(name || 0x0A || type || public key)[:4]` as a big-endian u32.
pub fn key_id(name: &str, kind: KeyType, public: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', kind.byte()]);
    h.update(public);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A public key that verifies note signatures: a log's (type 0x01) or a witness's (0x04).
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    kind: KeyType,
    key: VerifyingKey,
}

impl std::fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_vkey())
    }
}

impl VerifierKey {
    /// A key from its parts (the id is computed).
    pub fn new(name: &str, kind: KeyType, public: [u8; 32]) -> Result<Self, TlogError> {
        check_key_name(name)?;
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| TlogError::Key("not a valid Ed25519 public key".into()))?;
        Ok(Self {
            name: name.to_owned(),
            id: key_id(name, kind, &public),
            kind,
            key,
        })
    }

    /// Parses `<name>+<hex key id>+<base64(type || public key)>`. The key id must be the
    /// one the name, type and key give.
    pub fn parse(vkey: &str) -> Result<Self, TlogError> {
        let vkey = vkey.trim_end_matches('\n');
        // The base64 part may itself contain '+'.
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(material)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(TlogError::Key(
                "a verifier key is <name>+<hex key id>+<base64 key>: wrong number of '+'".into(),
            ));
        };
        check_key_name(name)?;
        let id = parse_key_id(id_hex)?;
        let raw = b64().decode(material).map_err(|e| {
            TlogError::Key(format!("verifier key of {}: base64: {e}", Quoted(name)))
        })?;
        let kind = raw.first().and_then(|b| KeyType::from_byte(*b)).ok_or_else(|| {
            TlogError::Key(format!(
                "verifier key of {}: unsupported signature type (Ed25519 0x01 and cosignature 0x04 are)",
                Quoted(name)
            ))
        })?;
        let public: [u8; 32] = raw[1..].try_into().map_err(|_| {
            TlogError::Key(format!(
                "verifier key of {}: an Ed25519 key is 32 bytes, found {}",
                Quoted(name),
                raw.len() - 1
            ))
        })?;
        let key = Self::new(name, kind, public)?;
        if key.id != id {
            return Err(TlogError::Key(format!(
                "verifier key of {}: key id {id_hex} is not the one its key gives ({:08x})",
                Quoted(name),
                key.id
            )));
        }
        Ok(key)
    }

    /// The `vkey` text form.
    pub fn to_vkey(&self) -> String {
        let mut raw = vec![self.kind.byte()];
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.id, b64().encode(raw))
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The signature type.
    pub fn kind(&self) -> KeyType {
        self.kind
    }

    /// The raw Ed25519 public key.
    pub fn public_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The same public key under another type (a witness's key id differs from a log's).
    pub fn with_kind(&self, kind: KeyType) -> Self {
        Self {
            name: self.name.clone(),
            id: key_id(&self.name, kind, self.key.as_bytes()),
            kind,
            key: self.key,
        }
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
            return false;
        };
        self.key.verify_strict(message, &sig).is_ok()
    }
}

fn parse_key_id(hex_id: &str) -> Result<u32, TlogError> {
    if hex_id.len() != 8 || !hex_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(TlogError::Key("a key id is 8 hex digits".into()));
    }
    u32::from_str_radix(hex_id, 16).map_err(|_| TlogError::Key("a key id is 8 hex digits".into()))
}

/// A private key that signs notes (as a log, type 0x01) or cosigns checkpoints (as a
/// witness, type 0x04). Its text form is `PRIVATE+KEY+<name>+<hex id>+<base64(type ||
/// 32-byte seed)>`, as golang.org/x/mod/sumdb/note writes it.
pub struct NoteSigner {
    public: VerifierKey,
    key: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// A fresh random key.
    pub fn generate(name: &str, kind: KeyType) -> Result<Self, TlogError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut())
            .map_err(|e| TlogError::Key(format!("no randomness for a new key: {e}")))?;
        Self::from_seed(name, kind, &seed)
    }

    /// A key from its 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, kind: KeyType, seed: &[u8; 32]) -> Result<Self, TlogError> {
        let key = SigningKey::from_bytes(seed);
        let public = VerifierKey::new(name, kind, key.verifying_key().to_bytes())?;
        Ok(Self { public, key })
    }

    /// Parses the `PRIVATE+KEY+…` text form.
    pub fn parse(skey: &str) -> Result<Self, TlogError> {
        let skey = skey.trim_end_matches('\n');
        let mut parts = skey.splitn(5, '+');
        let (Some("PRIVATE"), Some("KEY"), Some(name), Some(id_hex), Some(material)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(TlogError::Key(
                "a signer key is PRIVATE+KEY+<name>+<hex key id>+<base64 seed>".into(),
            ));
        };
        let id = parse_key_id(id_hex)?;
        let raw =
            Zeroizing::new(b64().decode(material).map_err(|_| {
                TlogError::Key(format!("signer key of {}: bad base64", Quoted(name)))
            })?);
        let kind = raw
            .first()
            .and_then(|b| KeyType::from_byte(*b))
            .ok_or_else(|| {
                TlogError::Key(format!(
                    "signer key of {}: unsupported signature type",
                    Quoted(name)
                ))
            })?;
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(raw[1..].try_into().map_err(|_| {
            TlogError::Key(format!(
                "signer key of {}: an Ed25519 seed is 32 bytes",
                Quoted(name)
            ))
        })?);
        let signer = Self::from_seed(name, kind, &seed)?;
        if signer.public.id != id {
            return Err(TlogError::Key(format!(
                "signer key of {}: key id {id_hex} does not match the key",
                Quoted(name)
            )));
        }
        Ok(signer)
    }

    /// The `PRIVATE+KEY+…` text form (a secret: never log it).
    pub fn to_skey(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new(vec![self.public.kind.byte()]);
        raw.extend_from_slice(&self.key.to_bytes());
        Zeroizing::new(format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.public.name,
            self.public.id,
            b64().encode(raw.as_slice())
        ))
    }

    /// The public half.
    pub fn verifier(&self) -> &VerifierKey {
        &self.public
    }

    /// A signature line over `text` (type 0x01), or, for a cosignature key, over the
    /// `cosignature/v1` message of `text` at `timestamp` (seconds since the epoch).
    pub fn sign_line(&self, text: &str, timestamp: u64) -> Result<String, TlogError> {
        let mut blob = self.public.id.to_be_bytes().to_vec();
        match self.public.kind {
            KeyType::Ed25519 => blob.extend_from_slice(&self.key.sign(text.as_bytes()).to_bytes()),
            KeyType::Cosignature => {
                if timestamp > i64::MAX as u64 {
                    return Err(TlogError::Key(
                        "a cosignature time must be below 2^63".into(),
                    ));
                }
                let msg = cosigned_message(text, timestamp);
                blob.extend_from_slice(&timestamp.to_be_bytes());
                blob.extend_from_slice(&self.key.sign(msg.as_bytes()).to_bytes());
            }
        }
        Ok(format!(
            "{EM_DASH_SP}{} {}\n",
            self.public.name,
            b64().encode(blob)
        ))
    }
}

/// The message a type-0x04 cosignature signs: `cosignature/v1\ntime <T>\n` + the note text.
pub fn cosigned_message(text: &str, timestamp: u64) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{text}")
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The key id.
    pub id: u32,
    /// The signature bytes after the key id.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The line, with its final newline.
    pub fn to_line(&self) -> String {
        let mut blob = self.id.to_be_bytes().to_vec();
        blob.extend_from_slice(&self.signature);
        format!("{EM_DASH_SP}{} {}\n", self.name, b64().encode(blob))
    }
}

/// A parsed (not yet verified) signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

/// A signature of a known key that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The key that made it.
    pub key: VerifierKey,
    /// For a cosignature: its time (seconds since the epoch).
    pub timestamp: Option<u64>,
}

impl Note {
    /// Parses a signed note. Checks the form only; see [`Note::verify`].
    pub fn parse(bytes: &[u8]) -> Result<Self, TlogError> {
        if bytes.len() > MAX_NOTE_BYTES {
            return Err(TlogError::Note(format!(
                "{} bytes is more than the {MAX_NOTE_BYTES} a note may have",
                bytes.len()
            )));
        }
        let s = std::str::from_utf8(bytes)
            .map_err(|e| TlogError::Note(format!("not UTF-8 (at byte {})", e.valid_up_to())))?;
        if let Some(at) = s.bytes().position(|b| b < 0x20 && b != b'\n') {
            return Err(TlogError::Note(format!("control character at byte {at}")));
        }
        if !s.ends_with('\n') {
            return Err(TlogError::Note("does not end with a newline".into()));
        }
        // The text ends at the last blank line.
        let split = s
            .rfind("\n\n")
            .ok_or_else(|| TlogError::Note("no blank line before the signatures".into()))?;
        let text = &s[..split + 1];
        let sigs = &s[split + 2..];
        if sigs.is_empty() {
            return Err(TlogError::Note("no signature lines".into()));
        }
        let mut signatures = Vec::new();
        for line in sigs.split_terminator('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(TlogError::Note(format!(
                    "more than {MAX_SIGNATURES} signature lines"
                )));
            }
            signatures.push(parse_signature_line(line)?);
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// A note from a text (ending in a newline) and no signatures yet.
    pub fn unsigned(text: &str) -> Result<Self, TlogError> {
        if !text.ends_with('\n') {
            return Err(TlogError::Note(
                "the text does not end with a newline".into(),
            ));
        }
        if text.bytes().any(|b| b < 0x20 && b != b'\n') {
            return Err(TlogError::Note("the text has a control character".into()));
        }
        Ok(Note {
            text: text.to_owned(),
            signatures: Vec::new(),
        })
    }

    /// The signed text, with its final newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Every signature line, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Adds a signature line (as made by [`NoteSigner::sign_line`] or returned by a
    /// witness). A line from a key that already signed replaces nothing: both are kept.
    pub fn add_signature_line(&mut self, line: &str) -> Result<(), TlogError> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        if self.signatures.len() == MAX_SIGNATURES {
            return Err(TlogError::Note(format!(
                "more than {MAX_SIGNATURES} signature lines"
            )));
        }
        let sig = parse_signature_line(line)?;
        if !self.signatures.contains(&sig) {
            self.signatures.push(sig);
        }
        Ok(())
    }

    /// Signs the text with `signer` and adds the line.
    pub fn sign(&mut self, signer: &NoteSigner, timestamp: u64) -> Result<(), TlogError> {
        let line = signer.sign_line(&self.text, timestamp)?;
        self.add_signature_line(&line)
    }

    /// Removes every signature line of `key`'s name and id.
    pub fn remove_signatures_of(&mut self, key: &VerifierKey) {
        self.signatures
            .retain(|s| !(s.name == key.name && s.id == key.id));
    }

    /// The note's bytes.
    pub fn to_text(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.to_line());
        }
        out
    }

    /// Checks every signature from a key in `known` and returns those that verified (one
    /// per key). Signatures of unknown keys are ignored. Fails if a known key's signature
    /// does not verify; an empty result is not an error here (see [`Note::open`]).
    pub fn verify(&self, known: &[VerifierKey]) -> Result<Vec<Verified>, TlogError> {
        let mut out: Vec<Verified> = Vec::new();
        for sig in &self.signatures {
            let Some(key) = known.iter().find(|k| k.name == sig.name && k.id == sig.id) else {
                continue;
            };
            let bad = || {
                TlogError::Signature(format!(
                    "the signature of {} (key id {:08x}) does not verify",
                    Quoted(&key.name),
                    key.id
                ))
            };
            if sig.signature.len() != key.kind.signature_len() {
                return Err(bad());
            }
            let timestamp = match key.kind {
                KeyType::Ed25519 => {
                    if !key.verify(self.text.as_bytes(), &sig.signature) {
                        return Err(bad());
                    }
                    None
                }
                KeyType::Cosignature => {
                    let mut t = [0u8; 8];
                    t.copy_from_slice(&sig.signature[..8]);
                    let t = u64::from_be_bytes(t);
                    if t > i64::MAX as u64
                        || !key.verify(
                            cosigned_message(&self.text, t).as_bytes(),
                            &sig.signature[8..],
                        )
                    {
                        return Err(bad());
                    }
                    Some(t)
                }
            };
            match out.iter_mut().find(|v| v.key == *key) {
                // Two valid cosignatures of one key: keep the newer time.
                Some(v) => v.timestamp = v.timestamp.max(timestamp),
                None => out.push(Verified {
                    key: key.clone(),
                    timestamp,
                }),
            }
        }
        Ok(out)
    }

    /// [`Note::verify`], and at least one known key must have signed.
    pub fn open(&self, known: &[VerifierKey]) -> Result<Vec<Verified>, TlogError> {
        let v = self.verify(known)?;
        if v.is_empty() {
            return Err(TlogError::Signature(
                "no signature from a known key (checked by name and key id)".into(),
            ));
        }
        Ok(v)
    }
}

fn parse_signature_line(line: &str) -> Result<NoteSignature, TlogError> {
    let rest = line.strip_prefix(EM_DASH_SP).ok_or_else(|| {
        TlogError::Note("a signature line does not start with an em dash and a space".into())
    })?;
    let (name, sig) = rest.split_once(' ').ok_or_else(|| {
        TlogError::Note("a signature line has no space between name and signature".into())
    })?;
    check_key_name(name).map_err(|e| TlogError::Note(format!("signature line: {e}")))?;
    let blob = b64()
        .decode(sig)
        .map_err(|_| TlogError::Note(format!("the signature of {} is not base64", Quoted(name))))?;
    if blob.len() < 5 {
        return Err(TlogError::Note(format!(
            "the signature of {} is too short",
            Quoted(name)
        )));
    }
    Ok(NoteSignature {
        name: name.to_owned(),
        id: u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]),
        signature: blob[4..].to_vec(),
    })
}
