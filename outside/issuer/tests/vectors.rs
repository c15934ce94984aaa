//! RFC 9578 appendix A.2 (token type 2, blind RSA) vectors, from
//! `shared/vectors/privacypass/` (see its README.txt): issuance reproduces each
//! `token_response` from `token_request` with `skS`, redemption accepts each `token` for its
//! `token_challenge` and `pkS` and refuses every altered form of it.

use cloister_issuer::client;
use cloister_issuer::issuer::{IssueError, Issuer};
use cloister_issuer::keys::{IssuerKey, IssuerPublicKey, KeyError, KEY_FILE, PUBLIC_FILE};
use cloister_issuer::redeem::{
    challenge_digest, verify_token, Challenge, ChallengeError, RedeemError,
};
use cloister_issuer::{TOKEN_LEN, TOKEN_REQUEST_LEN};
use sha2::{Digest, Sha256};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/vectors/privacypass"
);

struct Vector {
    sk_pem: String,
    pk: Vec<u8>,
    challenge: Vec<u8>,
    nonce: Vec<u8>,
    request: Vec<u8>,
    response: Vec<u8>,
    token: Vec<u8>,
}

fn hex_field(v: &serde_json::Value, name: &str) -> Vec<u8> {
    let s = v[name]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {name} is missing"));
    hex::decode(s).unwrap_or_else(|e| panic!("vector field {name} is not hex: {e}"))
}

fn load(file: &str) -> Vec<serde_json::Value> {
    let path = format!("{DIR}/{file}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let json: serde_json::Value = serde_json::from_str(&text).expect("vector JSON");
    json["vectors"].as_array().expect("a vectors array").clone()
}

fn type2() -> Vec<Vector> {
    let vs: Vec<Vector> = load("rfc9578_type2_blind_rsa.json")
        .iter()
        .map(|v| Vector {
            sk_pem: String::from_utf8(hex_field(v, "skS")).expect("skS is a PEM"),
            pk: hex_field(v, "pkS"),
            challenge: hex_field(v, "token_challenge"),
            nonce: hex_field(v, "nonce"),
            request: hex_field(v, "token_request"),
            response: hex_field(v, "token_response"),
            token: hex_field(v, "token"),
        })
        .collect();
    assert_eq!(vs.len(), 5, "RFC 9578 has five type-2 vectors");
    vs
}

fn digest32(challenge: &[u8]) -> [u8; 32] {
    challenge_digest(challenge)
}

#[test]
fn keys_match_the_rfc_spki_and_key_id() {
    for v in type2() {
        let key = IssuerKey::from_pem(&v.sk_pem, 0).expect("skS loads");
        assert_eq!(
            key.public().spki(),
            v.pk.as_slice(),
            "SPKI (id-RSASSA-PSS) matches pkS"
        );
        let id: [u8; 32] = Sha256::digest(&v.pk).into();
        assert_eq!(key.public().token_key_id(), id);
        assert_eq!(&v.token[66..98], &id, "the token carries SHA-256(pkS)");
        assert_eq!(v.request[2], id[31], "the request carries its last byte");
        let parsed = IssuerPublicKey::from_spki(&v.pk).expect("pkS parses");
        assert_eq!(&parsed, key.public());
        assert_eq!(
            IssuerPublicKey::from_base64url(&parsed.to_base64url()).expect("round trip"),
            parsed
        );
    }
}

#[test]
fn issuance_reproduces_every_token_response() {
    for (i, v) in type2().iter().enumerate() {
        let issuer = Issuer::new(IssuerKey::from_pem(&v.sk_pem, 0).expect("skS"));
        assert_eq!(v.request.len(), TOKEN_REQUEST_LEN);
        let response = issuer.issue(&v.request).expect("issues");
        assert_eq!(
            hex::encode(&response),
            hex::encode(&v.response),
            "vector {i}"
        );
    }
}

/// The `privacypass` crate's own issuer gives the same bytes (our direct `blind_sign` is
/// what its `IssuerServer` does).
#[tokio::test]
async fn issuance_agrees_with_the_privacypass_issuer_server() {
    use privacypass::public_tokens::server::{IssuerKeyStore, IssuerServer};
    use privacypass::public_tokens::TokenRequest;
    use privacypass::{Deserialize as _, Serialize as _};
    type KeyPair = blind_rsa_signatures::KeyPair<
        blind_rsa_signatures::Sha384,
        blind_rsa_signatures::PSS,
        blind_rsa_signatures::Deterministic,
    >;
    struct One(std::sync::Mutex<Option<(u8, KeyPair)>>);
    #[async_trait::async_trait]
    impl IssuerKeyStore for One {
        async fn insert(&self, id: u8, kp: KeyPair) -> bool {
            *self.0.lock().expect("lock") = Some((id, kp));
            true
        }
        async fn get(&self, id: &u8) -> Option<KeyPair> {
            self.0
                .lock()
                .expect("lock")
                .as_ref()
                .filter(|(i, _)| i == id)
                .map(|(_, k)| k.clone())
        }
        async fn remove(&self, _: &u8) -> bool {
            self.0.lock().expect("lock").take().is_some()
        }
    }
    for v in type2() {
        let sk = blind_rsa_signatures::SecretKey::from_pem(&v.sk_pem).expect("skS");
        let pk = sk.public_key().expect("pk");
        let store = One(std::sync::Mutex::new(None));
        store.insert(v.request[2], KeyPair { pk, sk }).await;
        let request = TokenRequest::tls_deserialize_exact(&v.request).expect("request");
        let theirs = IssuerServer::new()
            .issue_token_response(&store, request)
            .await
            .expect("crate issues")
            .tls_serialize_detached()
            .expect("serializes");
        let ours = Issuer::new(IssuerKey::from_pem(&v.sk_pem, 0).expect("skS"))
            .issue(&v.request)
            .expect("issues");
        assert_eq!(theirs, ours);
        assert_eq!(theirs, v.response);
    }
}

#[test]
fn issuance_refuses_malformed_requests() {
    let v = &type2()[0];
    let issuer = Issuer::new(IssuerKey::from_pem(&v.sk_pem, 0).expect("skS"));
    let expected = v.request[2];
    assert_eq!(issuer.issue(&[]), Err(IssueError::Truncated(0)));
    assert_eq!(issuer.issue(&v.request[..2]), Err(IssueError::Truncated(2)));
    assert_eq!(issuer.issue(&v.request[..3]), Err(IssueError::Length(3)));
    assert_eq!(
        issuer.issue(&v.request[..TOKEN_REQUEST_LEN - 1]),
        Err(IssueError::Length(TOKEN_REQUEST_LEN - 1))
    );
    let mut long = v.request.clone();
    long.push(0);
    assert_eq!(
        issuer.issue(&long),
        Err(IssueError::Length(TOKEN_REQUEST_LEN + 1))
    );
    for t in [0u16, 1, 3, 5, 0x0200, 0xffff] {
        let mut r = v.request.clone();
        r[..2].copy_from_slice(&t.to_be_bytes());
        assert_eq!(issuer.issue(&r), Err(IssueError::WrongTokenType(t)));
    }
    // A real type-1 request (RFC 9578 A.1) is refused for its type, not its size.
    let t1 = hex_field(&load("rfc9578_type1_voprf_p384.json")[0], "token_request");
    assert_eq!(issuer.issue(&t1), Err(IssueError::WrongTokenType(1)));
    let mut other_key = v.request.clone();
    other_key[2] ^= 1;
    assert_eq!(
        issuer.issue(&other_key),
        Err(IssueError::UnknownKey {
            found: expected ^ 1,
            expected
        })
    );
    // Blinded messages at or above the modulus.
    let spki = issuer.key().public().spki().to_vec();
    let modulus = &spki[spki.len() - 5 - 256..spki.len() - 5];
    for blinded in [modulus.to_vec(), vec![0xff; 256]] {
        let mut r = v.request[..3].to_vec();
        r.extend_from_slice(&blinded);
        assert_eq!(issuer.issue(&r), Err(IssueError::BadBlindedMessage));
    }
    let mut below = v.request[..3].to_vec();
    below.extend_from_slice(modulus);
    below[TOKEN_REQUEST_LEN - 1] -= 1;
    assert!(issuer.issue(&below).is_ok(), "modulus - 1 is a valid input");
}

#[test]
fn every_rfc_token_verifies_for_its_challenge_and_key() {
    for (i, v) in type2().iter().enumerate() {
        let key = IssuerPublicKey::from_spki(&v.pk).expect("pkS");
        let nonce = verify_token(&v.token, &digest32(&v.challenge), &key)
            .unwrap_or_else(|e| panic!("vector {i}: {e}"));
        assert_eq!(nonce.as_slice(), v.nonce.as_slice());
        assert_eq!(v.token.len(), TOKEN_LEN);
        // The challenge parses, re-encodes identically, and gives the token's digest.
        let c = Challenge::parse(&v.challenge).expect("challenge parses");
        assert_eq!(c.as_bytes(), v.challenge.as_slice());
        assert_eq!(c.digest(), digest32(&v.challenge));
        assert_eq!(c.issuer_name(), "issuer.example");
    }
}

#[test]
fn one_bit_changes_anywhere_are_refused() {
    let vs = type2();
    for (i, v) in vs.iter().enumerate() {
        let key = IssuerPublicKey::from_spki(&v.pk).expect("pkS");
        let digest = digest32(&v.challenge);
        // Every bit of the first vector, every 5th bit of the others.
        let step = if i == 0 { 1 } else { 5 };
        for bit in (0..v.token.len() * 8).step_by(step) {
            let mut t = v.token.clone();
            t[bit / 8] ^= 1 << (bit % 8);
            let e = verify_token(&t, &digest, &key).expect_err("an altered token is refused");
            let want = match bit / 8 {
                0 | 1 => RedeemError::WrongTokenType(u16::from_be_bytes([t[0], t[1]])),
                34..=65 => RedeemError::ChallengeMismatch,
                66..=97 => RedeemError::KeyMismatch,
                _ => RedeemError::BadAuthenticator, // nonce or authenticator
            };
            assert_eq!(e, want, "vector {i}, bit {bit}");
        }
    }
}

#[test]
fn tokens_for_other_challenges_keys_and_types_are_refused() {
    let vs = type2();
    let key = IssuerPublicKey::from_spki(&vs[0].pk).expect("pkS");
    for (i, v) in vs.iter().enumerate() {
        for (j, w) in vs.iter().enumerate() {
            if i != j {
                assert_eq!(
                    verify_token(&v.token, &digest32(&w.challenge), &key),
                    Err(RedeemError::ChallengeMismatch),
                    "token {i} for challenge {j}"
                );
                // Rewriting the digest to the other challenge's breaks the signature.
                let mut t = v.token.clone();
                t[34..66].copy_from_slice(&digest32(&w.challenge));
                assert_eq!(
                    verify_token(&t, &digest32(&w.challenge), &key),
                    Err(RedeemError::BadAuthenticator)
                );
            }
        }
    }
    // Another issuer key: refused by key id, and by signature if the id is rewritten.
    let other = IssuerKey::generate(0).expect("keygen");
    let v = &vs[0];
    let digest = digest32(&v.challenge);
    assert_eq!(
        verify_token(&v.token, &digest, other.public()),
        Err(RedeemError::KeyMismatch)
    );
    let mut t = v.token.clone();
    t[66..98].copy_from_slice(&other.public().token_key_id());
    assert_eq!(
        verify_token(&t, &digest, other.public()),
        Err(RedeemError::BadAuthenticator)
    );
    // A type-1 (VOPRF) token from RFC 9578 A.1.
    let t1v = &load("rfc9578_type1_voprf_p384.json")[0];
    let t1 = hex_field(t1v, "token");
    assert_eq!(
        verify_token(&t1, &digest32(&hex_field(t1v, "token_challenge")), &key),
        Err(RedeemError::WrongTokenType(1))
    );
    // Truncated and extended.
    for n in [0, 1] {
        assert_eq!(
            verify_token(&v.token[..n], &digest, &key),
            Err(RedeemError::Truncated(n))
        );
    }
    for n in [2, 34, 98, TOKEN_LEN - 1] {
        assert_eq!(
            verify_token(&v.token[..n], &digest, &key),
            Err(RedeemError::Length(n))
        );
    }
    let mut long = v.token.clone();
    long.push(0);
    assert_eq!(
        verify_token(&long, &digest, &key),
        Err(RedeemError::Length(TOKEN_LEN + 1))
    );
    // An authenticator of all zeros or all ones.
    for fill in [0u8, 0xff] {
        let mut t = v.token.clone();
        t[98..].fill(fill);
        assert_eq!(
            verify_token(&t, &digest, &key),
            Err(RedeemError::BadAuthenticator)
        );
    }
}

#[test]
fn client_and_issuer_round_trip_with_the_rfc_key() {
    let v = &type2()[0];
    let issuer = Issuer::new(IssuerKey::from_pem(&v.sk_pem, 0).expect("skS"));
    let key = issuer.key().public().clone();
    let challenge = Challenge::new("issuer.example", &["gateway.example"]).expect("challenge");
    let mut nonces = Vec::new();
    for _ in 0..3 {
        let (request, pending) = client::begin(&challenge, &key).expect("begin");
        assert_eq!(request.len(), TOKEN_REQUEST_LEN);
        let response = issuer.issue(&request).expect("issue");
        let token = pending.finish(&response).expect("finish");
        nonces.push(verify_token(&token, &challenge.digest(), &key).expect("verifies"));
        // A response for another request does not finalize.
        let (_, pending2) = client::begin(&challenge, &key).expect("begin");
        assert!(pending2.finish(&response).is_err());
    }
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), 3, "fresh nonces");
    // A truncated or altered response is refused.
    let (request, pending) = client::begin(&challenge, &key).expect("begin");
    let mut response = issuer.issue(&request).expect("issue");
    response[10] ^= 1;
    assert!(pending.finish(&response).is_err());
    let (_, pending) = client::begin(&challenge, &key).expect("begin");
    assert!(pending.finish(&response[..255]).is_err());
}

#[test]
fn challenges_are_built_and_parsed_strictly() {
    let c = Challenge::new("issuer.example", &[]).expect("challenge");
    // type 2 | issuer_name | empty redemption_context | empty origin_info
    assert_eq!(
        hex::encode(c.as_bytes()),
        "0002000e6973737565722e6578616d706c65000000"
    );
    assert_eq!(
        c.as_bytes(),
        type2()[3].challenge.as_slice(),
        "RFC vector 4's challenge"
    );
    assert_eq!(Challenge::parse(c.as_bytes()).expect("parses"), c);
    assert!(c.origin_info().is_empty() && c.redemption_context().is_none());
    let two = Challenge::new("issuer.example", &["a.example", "b.example:8443"]).expect("ok");
    assert_eq!(two.origin_info(), vec!["a.example", "b.example:8443"]);
    for bad in ["", "a b", "a,b", "user@host", "é.example"] {
        assert!(
            matches!(Challenge::new(bad, &[]), Err(ChallengeError::Name(_))),
            "{bad:?}"
        );
        assert!(Challenge::new("issuer.example", &[bad]).is_err(), "{bad:?}");
    }
    let bytes = c.as_bytes().to_vec();
    let mut trailing = bytes.clone();
    trailing.push(0);
    let mut type1 = bytes.clone();
    type1[1] = 1;
    let mut bad_context = bytes.clone();
    bad_context[18] = 5; // a 5-byte redemption context
    bad_context.extend_from_slice(&[0; 5]);
    let mut empty_name = vec![0, 2, 0, 0, 0, 0, 0];
    assert!(matches!(
        Challenge::parse(&trailing),
        Err(ChallengeError::Malformed(_))
    ));
    assert_eq!(
        Challenge::parse(&type1),
        Err(ChallengeError::WrongTokenType(1))
    );
    assert!(matches!(
        Challenge::parse(&bad_context),
        Err(ChallengeError::Malformed(_))
    ));
    assert!(matches!(
        Challenge::parse(&empty_name),
        Err(ChallengeError::Malformed(_))
    ));
    empty_name.truncate(1);
    assert!(Challenge::parse(&empty_name).is_err());
    for n in 0..bytes.len() {
        assert!(Challenge::parse(&bytes[..n]).is_err(), "truncated to {n}");
    }
}

#[test]
fn public_keys_must_be_the_exact_rfc_spki() {
    let v = &type2()[0];
    assert!(IssuerPublicKey::from_spki(&v.pk).is_ok());
    // The older draft encoding (NULL hash parameters) hashes differently: refused.
    let draft = hex::decode(concat!(
        "30820156304106092a864886f70d01010a3034a00f300d06096086480165030402020500a11c301a06092a864886f70d010108300d06096086480165030402020500a2030201300382010f003082010a0282010100",
        "cb1aed6b6a95f5b1ce013a4cfcab25b94b2e64a23034e4250a7eab43c0df3a8c12993af12b111908d4b471bec31d4b6c9ad9cdda90612a2ee903523e6de5a224d6b02f09e5c374d0cfe01d8f529c500a78a2f67908fa682b5a2b430c81eaf1af72d7b5e794fc98a3139276879757ce453b526ef9bf6ceb99979b8423b90f4461a22af37aab0cf5733f7597abe44d31c732db68a181c6cbbe607d8c0e52e0655fd9996dc584eca0be87afbcd78a337d17b1dba9e828bbd81e291317144e7ff89f55619709b096cbb9ea474cead264c2073fe49740c01f00e109106066983d21e5f83f086e2e823c879cd43cef700d2a352a9babd612d03cad02db134b7e225a5f0203010001"
    ))
    .expect("hex");
    assert!(matches!(
        IssuerPublicKey::from_spki(&draft),
        Err(KeyError::Spki(_))
    ));
    // Salt length 32 instead of 48.
    let mut salt = v.pk.clone();
    assert_eq!(salt[66], 48);
    salt[66] = 32;
    assert!(matches!(
        IssuerPublicKey::from_spki(&salt),
        Err(KeyError::Spki(_))
    ));
    // Truncations, garbage, trailing bytes.
    for n in [0, 10, 24, 100, v.pk.len() - 1] {
        assert!(
            IssuerPublicKey::from_spki(&v.pk[..n]).is_err(),
            "truncated to {n}"
        );
    }
    let mut long = v.pk.clone();
    long.push(0);
    assert!(IssuerPublicKey::from_spki(&long).is_err());
    assert!(IssuerPublicKey::from_spki(&[0x30; 2000]).is_err());
    assert!(IssuerPublicKey::from_base64url("MIIB").is_err());
    assert!(IssuerPublicKey::from_base64url("!!!!").is_err());
}

#[test]
fn key_directories_are_private_and_consistent() {
    use std::os::unix::fs::PermissionsExt;
    let v = &type2()[0];
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("issuer-key");
    let key = IssuerKey::from_pem(&v.sk_pem, 1_700_000_000).expect("skS");
    key.save(&dir).expect("save");
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
    assert_eq!(mode(&dir), 0o700);
    let loaded = IssuerKey::load(&dir).expect("load");
    assert_eq!(loaded.public(), key.public());
    assert_eq!(loaded.not_before(), 1_700_000_000);
    assert!(!format!("{loaded:?}").contains("PRIVATE"));
    // Saving again does not overwrite.
    assert!(matches!(key.save(&dir), Err(KeyError::Io(..))));
    // A readable secret key file is refused.
    std::fs::set_permissions(dir.join(KEY_FILE), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    assert!(matches!(IssuerKey::load(&dir), Err(KeyError::Files(..))));
    std::fs::set_permissions(dir.join(KEY_FILE), std::fs::Permissions::from_mode(0o600))
        .expect("chmod");
    // A public file for another key is refused.
    let other = IssuerKey::generate(0).expect("keygen");
    let entry = serde_json::to_string(&other.public().directory_entry(None)).expect("json");
    std::fs::write(dir.join(PUBLIC_FILE), entry).expect("write");
    assert!(matches!(IssuerKey::load(&dir), Err(KeyError::Files(..))));
    std::fs::write(dir.join(PUBLIC_FILE), "{").expect("write");
    assert!(matches!(IssuerKey::load(&dir), Err(KeyError::Files(..))));
    // Not a key at all.
    assert!(matches!(
        IssuerKey::from_pem("not a key", 0),
        Err(KeyError::Secret(_))
    ));
}

#[test]
fn token_verifier_checks_authorization_values_for_a_gateway() {
    use cloister_issuer::redeem::header::{format_authorization, parse_www_authenticate};
    use cloister_issuer::redeem::{TokenVerifier, VerifyError};
    let vs = type2();
    let key = IssuerPublicKey::from_spki(&vs[0].pk).expect("pkS");
    let verifier = TokenVerifier::new(key.clone(), Challenge::parse(&vs[1].challenge).expect("c"));
    let nonce = verifier
        .check_authorization(&format_authorization(&vs[1].token))
        .expect("vector 2's token for vector 2's challenge");
    assert_eq!(nonce.as_slice(), vs[1].nonce.as_slice());
    assert_eq!(
        verifier.check_authorization(&format_authorization(&vs[0].token)),
        Err(VerifyError::Token(RedeemError::ChallengeMismatch))
    );
    assert!(matches!(
        verifier.check_authorization("Bearer abc"),
        Err(VerifyError::Header(_))
    ));
    // The WWW-Authenticate value announces exactly this challenge and key.
    let announced = parse_www_authenticate(verifier.www_authenticate()).expect("parses");
    assert_eq!(announced.len(), 1);
    assert_eq!(announced[0].challenge, vs[1].challenge);
    assert_eq!(announced[0].token_key.as_deref(), Some(vs[0].pk.as_slice()));
    // Vector 3's challenge lists two origins.
    let c = Challenge::parse(&vs[2].challenge).expect("c");
    assert_eq!(c.origin_info(), vec!["foo.example", "bar.example"]);
    // The public key file a gateway is configured with.
    let tmp = tempfile::tempdir().expect("tempdir");
    IssuerKey::from_pem(&vs[0].sk_pem, 7)
        .expect("skS")
        .save(tmp.path())
        .expect("save");
    let (loaded, not_before) =
        cloister_issuer::keys::load_public(&tmp.path().join(PUBLIC_FILE)).expect("load");
    assert_eq!((loaded, not_before), (key, Some(7)));
}
