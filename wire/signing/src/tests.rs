//! Tests of signing and verification, including envelopes that
//! `sign_release` would never produce (signed directly over arbitrary payloads).

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine as _;
use ed25519_dalek::Signer as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::*;

const COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0 pretend this is a component";

fn key() -> SigningKey {
    match SigningKey::generate() {
        Ok(k) => k,
        Err(e) => panic!("key generation failed in test: {e}"),
    }
}

fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Builds envelope JSON signing `payload` under `payload_type` with `key`.
fn envelope_json(key: &SigningKey, payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let sig = key.dalek().sign(&pae(payload_type, payload));
    serde_json::to_vec(&json!({
        "payload": STANDARD.encode(payload),
        "payloadType": payload_type,
        "signatures": [{"keyid": key.public_key().key_id(), "sig": STANDARD.encode(sig.to_bytes())}],
    }))
    .unwrap_or_default()
}

fn statement(subjects: Value, predicate_type: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": predicate_type,
        "predicate": {"plugin": "summarize", "version": "1.0.0"},
    }))
    .unwrap_or_default()
}

fn good_subject() -> Value {
    json!({"name": "summarize@1.0.0", "digest": {"sha256": sha_hex(COMPONENT)}})
}

fn signed_json(key: &SigningKey) -> Vec<u8> {
    match sign_release(key, "summarize", "1.0.0", COMPONENT) {
        Ok(env) => env.to_json_pretty().into_bytes(),
        Err(e) => panic!("signing failed in test: {e}"),
    }
}

#[test]
fn pae_known_answer_from_dsse_spec() {
    assert_eq!(
        pae("http://example.com/HelloWorld", b"hello world"),
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
    );
    assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
}

#[test]
fn round_trip() -> Result<(), VerifyError> {
    let key = key();
    let json = signed_json(&key);
    let verified = verify_release(&json, COMPONENT, &[key.public_key()])?;
    assert_eq!(verified.name, "summarize");
    assert_eq!(verified.version, "1.0.0");
    assert_eq!(verified.sha256_hex(), sha_hex(COMPONENT));
    assert_eq!(verified.signer_key_id, key.public_key().key_id());

    // Envelope and statement layout as documented.
    let env: Value = serde_json::from_slice(&json).unwrap_or_default();
    assert_eq!(env["payloadType"], PAYLOAD_TYPE);
    assert_eq!(
        env["signatures"][0]["keyid"],
        key.public_key().key_id().as_str()
    );
    let payload = STANDARD
        .decode(env["payload"].as_str().unwrap_or_default())
        .unwrap_or_default();
    let expected = format!(
        r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"summarize@1.0.0","digest":{{"sha256":"{}"}}}}],"predicateType":"https://cloister.dev/plugin-release/v1","predicate":{{"plugin":"summarize","version":"1.0.0"}}}}"#,
        sha_hex(COMPONENT)
    );
    assert_eq!(String::from_utf8_lossy(&payload), expected);

    // Parsing and re-serializing keeps the envelope intact.
    let parsed = Envelope::from_json(&json)?;
    assert_eq!(parsed.to_json_pretty().into_bytes(), json);
    let statement = parsed.statement_unverified()?;
    assert_eq!(statement.subject_name(), "summarize@1.0.0");
    assert_eq!(parsed.key_ids(), vec![key.public_key().key_id()]);
    Ok(())
}

#[test]
fn any_trusted_key_suffices() -> Result<(), VerifyError> {
    let (signer, other) = (key(), key());
    let json = signed_json(&signer);
    let verified = verify_release(&json, COMPONENT, &[other.public_key(), signer.public_key()])?;
    assert_eq!(verified.signer_key_id, signer.public_key().key_id());
    Ok(())
}

#[test]
fn wrong_key() {
    let (signer, other) = (key(), key());
    let json = signed_json(&signer);
    match verify_release(&json, COMPONENT, &[other.public_key()]) {
        Err(VerifyError::NoTrustedSignature { present, trusted }) => {
            assert_eq!(present, vec![signer.public_key().key_id()]);
            assert_eq!(trusted, vec![other.public_key().key_id()]);
        }
        other => panic!("expected NoTrustedSignature, got {other:?}"),
    }
    assert!(matches!(
        verify_release(&json, COMPONENT, &[]),
        Err(VerifyError::NoTrustedSignature { .. })
    ));
}

#[test]
fn key_id_claimed_by_another_key() {
    // The signature says it is by the trusted key but was made by another.
    let (trusted, forger) = (key(), key());
    let mut env: Value = serde_json::from_slice(&signed_json(&forger)).unwrap_or_default();
    env["signatures"][0]["keyid"] = json!(trusted.public_key().key_id());
    let json = serde_json::to_vec(&env).unwrap_or_default();
    match verify_release(&json, COMPONENT, &[trusted.public_key()]) {
        Err(VerifyError::SignatureInvalid { key_id, .. }) => {
            assert_eq!(key_id, trusted.public_key().key_id())
        }
        other => panic!("expected SignatureInvalid, got {other:?}"),
    }
}

#[test]
fn tampered_component() {
    let key = key();
    let json = signed_json(&key);
    let mut tampered = COMPONENT.to_vec();
    tampered[10] ^= 0x01;
    match verify_release(&json, &tampered, &[key.public_key()]) {
        Err(VerifyError::DigestMismatch { expected, actual }) => {
            assert_eq!(expected, sha_hex(COMPONENT));
            assert_eq!(actual, sha_hex(&tampered));
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
}

#[test]
fn tampered_payload() {
    let key = key();
    let mut env: Value = serde_json::from_slice(&signed_json(&key)).unwrap_or_default();
    let mut tampered = COMPONENT.to_vec();
    tampered[0] ^= 0x80;
    // Claim the tampered component's digest, keep the old signature.
    let forged = String::from_utf8_lossy(
        &STANDARD
            .decode(env["payload"].as_str().unwrap_or_default())
            .unwrap_or_default(),
    )
    .replace(&sha_hex(COMPONENT), &sha_hex(&tampered));
    env["payload"] = json!(STANDARD.encode(forged));
    let json = serde_json::to_vec(&env).unwrap_or_default();
    assert!(matches!(
        verify_release(&json, &tampered, &[key.public_key()]),
        Err(VerifyError::SignatureInvalid { .. })
    ));
}

#[test]
fn tampered_signature_bytes() {
    let key = key();
    let mut env: Value = serde_json::from_slice(&signed_json(&key)).unwrap_or_default();
    let mut sig = STANDARD
        .decode(env["signatures"][0]["sig"].as_str().unwrap_or_default())
        .unwrap_or_default();
    sig[5] ^= 0x01;
    env["signatures"][0]["sig"] = json!(STANDARD.encode(&sig));
    let json = serde_json::to_vec(&env).unwrap_or_default();
    assert!(matches!(
        verify_release(&json, COMPONENT, &[key.public_key()]),
        Err(VerifyError::SignatureInvalid { .. })
    ));

    sig.truncate(63);
    env["signatures"][0]["sig"] = json!(STANDARD.encode(&sig));
    let json = serde_json::to_vec(&env).unwrap_or_default();
    match verify_release(&json, COMPONENT, &[key.public_key()]) {
        Err(e @ VerifyError::SignatureInvalid { .. }) => {
            assert!(e.to_string().contains("64 bytes"), "{e}")
        }
        other => panic!("expected SignatureInvalid, got {other:?}"),
    }
}

#[test]
fn tampered_payload_type() {
    let key = key();
    let mut env: Value = serde_json::from_slice(&signed_json(&key)).unwrap_or_default();
    env["payloadType"] = json!("application/json");
    let json = serde_json::to_vec(&env).unwrap_or_default();
    match verify_release(&json, COMPONENT, &[key.public_key()]) {
        Err(VerifyError::UnexpectedPayloadType { expected, found }) => {
            assert_eq!(expected, PAYLOAD_TYPE);
            assert_eq!(found, "application/json");
        }
        other => panic!("expected UnexpectedPayloadType, got {other:?}"),
    }
}

#[test]
fn garbage_json() {
    let key = key();
    for garbage in [
        &b""[..],
        b"not json",
        b"[]",
        b"{}",
        b"{\"payload\":\"\",\"payloadType\":\"x\"}",
        b"{\"payload\":1,\"payloadType\":\"x\",\"signatures\":[]}",
    ] {
        assert!(
            matches!(
                verify_release(garbage, COMPONENT, &[key.public_key()]),
                Err(VerifyError::MalformedEnvelope { .. })
            ),
            "{}",
            String::from_utf8_lossy(garbage)
        );
    }
}

#[test]
fn bad_base64_names_the_field() {
    let key = key();
    let mut env: Value = serde_json::from_slice(&signed_json(&key)).unwrap_or_default();
    env["payload"] = json!("!!!not base64");
    let json = serde_json::to_vec(&env).unwrap_or_default();
    match verify_release(&json, COMPONENT, &[key.public_key()]) {
        Err(VerifyError::BadBase64 { field, .. }) => assert_eq!(field, "payload"),
        other => panic!("expected BadBase64, got {other:?}"),
    }

    let mut env: Value = serde_json::from_slice(&signed_json(&key)).unwrap_or_default();
    env["signatures"][0]["sig"] = json!("!!!");
    let json = serde_json::to_vec(&env).unwrap_or_default();
    match verify_release(&json, COMPONENT, &[key.public_key()]) {
        Err(VerifyError::BadBase64 { field, .. }) => assert_eq!(field, "signatures[0].sig"),
        other => panic!("expected BadBase64, got {other:?}"),
    }
}

#[test]
fn url_safe_base64_accepted() -> Result<(), VerifyError> {
    let key = key();
    let mut env: Value = serde_json::from_slice(&signed_json(&key)).unwrap_or_default();
    let to_url_safe = |v: &Value| {
        let raw = STANDARD
            .decode(v.as_str().unwrap_or_default())
            .unwrap_or_default();
        json!(URL_SAFE.encode(raw))
    };
    env["payload"] = to_url_safe(&env["payload"]);
    env["signatures"][0]["sig"] = to_url_safe(&env["signatures"][0]["sig"]);
    let json = serde_json::to_vec(&env).unwrap_or_default();
    verify_release(&json, COMPONENT, &[key.public_key()])?;
    Ok(())
}

#[test]
fn no_signatures() {
    let key = key();
    let mut env: Value = serde_json::from_slice(&signed_json(&key)).unwrap_or_default();
    env["signatures"] = json!([]);
    let json = serde_json::to_vec(&env).unwrap_or_default();
    assert!(matches!(
        verify_release(&json, COMPONENT, &[key.public_key()]),
        Err(VerifyError::NoSignatures)
    ));
}

#[test]
fn two_subjects() {
    let key = key();
    let payload = statement(json!([good_subject(), good_subject()]), PREDICATE_TYPE);
    let json = envelope_json(&key, PAYLOAD_TYPE, &payload);
    assert!(matches!(
        verify_release(&json, COMPONENT, &[key.public_key()]),
        Err(VerifyError::SubjectCount { count: 2 })
    ));
    let payload = statement(json!([]), PREDICATE_TYPE);
    let json = envelope_json(&key, PAYLOAD_TYPE, &payload);
    assert!(matches!(
        verify_release(&json, COMPONENT, &[key.public_key()]),
        Err(VerifyError::SubjectCount { count: 0 })
    ));
}

#[test]
fn bad_subject_name() {
    let key = key();
    for name in [
        "summarize",
        "Summarize@1.0.0",
        "summarize@",
        "summarize@1 0",
        "@1.0.0",
    ] {
        let subject = json!([{"name": name, "digest": {"sha256": sha_hex(COMPONENT)}}]);
        let json = envelope_json(&key, PAYLOAD_TYPE, &statement(subject, PREDICATE_TYPE));
        assert!(
            matches!(
                verify_release(&json, COMPONENT, &[key.public_key()]),
                Err(VerifyError::MalformedSubjectName { .. })
            ),
            "{name}"
        );
    }
}

#[test]
fn predicate_must_match_subject() {
    let key = key();
    let subject = json!([{"name": "summarize@2.0.0", "digest": {"sha256": sha_hex(COMPONENT)}}]);
    let json = envelope_json(&key, PAYLOAD_TYPE, &statement(subject, PREDICATE_TYPE));
    assert!(matches!(
        verify_release(&json, COMPONENT, &[key.public_key()]),
        Err(VerifyError::PredicateMismatch { .. })
    ));
}

#[test]
fn wrong_types_and_malformed_statements() {
    let key = key();
    let json = envelope_json(
        &key,
        PAYLOAD_TYPE,
        &statement(json!([good_subject()]), "https://slsa.dev/provenance/v1"),
    );
    assert!(matches!(
        verify_release(&json, COMPONENT, &[key.public_key()]),
        Err(VerifyError::WrongPredicateType { .. })
    ));

    let mut v: Value = serde_json::from_slice(&statement(json!([good_subject()]), PREDICATE_TYPE))
        .unwrap_or_default();
    v["_type"] = json!("https://in-toto.io/Statement/v0.1");
    let json = envelope_json(
        &key,
        PAYLOAD_TYPE,
        &serde_json::to_vec(&v).unwrap_or_default(),
    );
    assert!(matches!(
        verify_release(&json, COMPONENT, &[key.public_key()]),
        Err(VerifyError::WrongStatementType { .. })
    ));

    for payload in [
        b"not json".to_vec(),
        statement(
            json!([{"name": "summarize@1.0.0", "digest": {}}]),
            PREDICATE_TYPE,
        ),
        statement(
            json!([{"name": "summarize@1.0.0", "digest": {"sha256": sha_hex(COMPONENT).to_uppercase()}}]),
            PREDICATE_TYPE,
        ),
        statement(
            json!([{"name": "summarize@1.0.0", "digest": {"sha256": "abcd"}}]),
            PREDICATE_TYPE,
        ),
    ] {
        let json = envelope_json(&key, PAYLOAD_TYPE, &payload);
        assert!(
            matches!(
                verify_release(&json, COMPONENT, &[key.public_key()]),
                Err(VerifyError::MalformedStatement { .. })
            ),
            "{}",
            String::from_utf8_lossy(&payload)
        );
    }
}

#[test]
fn statement_not_parsed_before_signature_check() {
    // Garbage payload with an invalid signature: the signature error wins.
    let (signer, trusted) = (key(), key());
    let mut env: Value = serde_json::from_slice(&envelope_json(&signer, PAYLOAD_TYPE, b"not json"))
        .unwrap_or_default();
    env["signatures"][0]["keyid"] = json!(trusted.public_key().key_id());
    let json = serde_json::to_vec(&env).unwrap_or_default();
    assert!(matches!(
        verify_release(&json, COMPONENT, &[trusted.public_key()]),
        Err(VerifyError::SignatureInvalid { .. })
    ));
}

#[test]
fn sign_rejects_bad_names() {
    let key = key();
    assert!(matches!(
        sign_release(&key, "Bad Name", "1.0.0", COMPONENT),
        Err(SignError::Name(NameError::InvalidPluginName { .. }))
    ));
    assert!(matches!(
        sign_release(&key, "good", "1.0.0/evil", COMPONENT),
        Err(SignError::Name(NameError::InvalidVersion { .. }))
    ));
}

#[test]
fn error_messages_say_what_and_why() {
    let e = VerifyError::NoTrustedSignature {
        present: vec!["aa".into(), "bb".into()],
        trusted: vec!["cc".into()],
    };
    assert_eq!(
        e.to_string(),
        "no signature by a trusted key: the envelope is signed by key ids [aa, bb], trusted key ids are [cc]"
    );
}
